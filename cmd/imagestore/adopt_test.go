package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/imagestore/imagestore/internal/rkttest"
)

// runCLI runs the command line and returns its exit status and output.
func runCLI(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(args, strings.NewReader(""), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// Every command on an rkt store not yet adopted fails with one error that
// names the adopt command, and creates nothing; adopt then reports what it
// kept, and a second adopt has nothing to do.
func TestAdoptRktStore(t *testing.T) {
	dir := rkttest.Unpack(t, rkttest.FixtureDir(2))
	out := t.TempDir()
	before := rkttest.Snapshot(t, dir)
	key := "sha512-45aafe08adcca2cf503cd1bbb35e676653597a3928fb012b63e8b352edde7c1d"
	for _, args := range [][]string{
		{"list"}, {"list", "--json"}, {"show", key}, {"show", "example.com/hello"}, {"cat-manifest", key},
		{"export", key, filepath.Join(out, "x.aci")}, {"extract", key, filepath.Join(out, "rootfs")},
		{"rm", key}, {"remotes"}, {"remotes", "--json"}, {"gc"}, {"gc", "--orphans", "--dry-run"},
		{"verify"}, {"rebuild"}, {"import", filepath.Join("..", "..", "testdata", "hello.aci")},
	} {
		code, stdout, stderr := runCLI(append([]string{"--dir", dir}, args...)...)
		if code != exitFail || !strings.Contains(stderr, "imagestore adopt") || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 1 and one line naming imagestore adopt", args, code, stdout, stderr)
		}
		rkttest.RequireUnchanged(t, dir, before)
	}

	nowhere := filepath.Join(out, "nowhere")
	if code, _, stderr := runCLI("--dir", nowhere, "adopt"); code != exitFail || !strings.Contains(stderr, "no rkt database") {
		t.Errorf("adopt on no store: exit %d, %q", code, stderr)
	}
	if _, err := os.Lstat(nowhere); !os.IsNotExist(err) {
		t.Errorf("adopt on no store created it: %v", err)
	}

	code, stdout, stderr := runCLI("--dir", dir, "adopt")
	t.Logf("imagestore adopt:\n%s%s", stdout, stderr)
	if code != exitOK {
		t.Fatalf("adopt: exit %d: %s", code, stderr)
	}
	for _, want := range []struct {
		re    string
		count int
	}{
		{`(?m)^image sha512-[0-9a-f]{64}$`, 12},
		{`(?m)^remote \S+$`, 11},
		{`(?m)^(from-blob|corrected|skipped) `, 0},
		{`(?m)^adopted .*: 12 image\(s\) and 11 remote\(s\) with rkt's records, 0 image\(s\) without a record adopted from the file; skipped 0 image\(s\) and 0 remote\(s\)$`, 1},
	} {
		if n := len(regexp.MustCompile(want.re).FindAllString(stdout, -1)); n != want.count {
			t.Errorf("adopt printed %d lines matching %s, want %d", n, want.re, want.count)
		}
	}

	after := rkttest.Snapshot(t, dir)
	code, stdout, _ = runCLI("--dir", dir, "adopt")
	if code != exitOK || !strings.HasPrefix(stdout, "nothing to adopt: ") {
		t.Errorf("second adopt: exit %d, %q", code, stdout)
	}
	rkttest.RequireUnchanged(t, dir, after)

	code, stdout, stderr = runCLI("--dir", dir, "show", "--json", "example.com/hello")
	if code != exitOK || !strings.Contains(stdout, `"latest": true`) || !strings.Contains(stdout, "sha512-170dd26e2c31") || !strings.Contains(stdout, `"etag": "\"8bbc13f74a12-2151\""`) {
		t.Errorf("show after adoption: exit %d, %s %s", code, stdout, stderr)
	}
	code, stdout, _ = runCLI("--dir", dir, "list", "-q")
	if code != exitOK || strings.Count(stdout, "\n") != 12 {
		t.Errorf("list after adoption: exit %d, %q", code, stdout)
	}
	code, stdout, stderr = runCLI("--dir", dir, "verify")
	if code != exitOK {
		t.Errorf("verify after adoption: exit %d, %s %s", code, stdout, stderr)
	}
}

func TestAdoptJSON(t *testing.T) {
	dir := rkttest.Unpack(t, rkttest.FixtureDir(2))
	for i, want := range []struct {
		already                 bool
		images, remotes, others int
	}{{false, 12, 11, 0}, {true, 0, 0, 0}} {
		code, stdout, stderr := runCLI("--dir", dir, "adopt", "--json")
		if code != exitOK {
			t.Fatalf("adopt --json: exit %d: %s", code, stderr)
		}
		var got adoptJSON
		dec := json.NewDecoder(strings.NewReader(stdout))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&got); err != nil {
			t.Fatalf("adopt --json: %v\n%s", err, stdout)
		}
		if got.AlreadyAdopted != want.already || len(got.Images) != want.images || len(got.Remotes) != want.remotes ||
			len(got.FromBlobs)+len(got.Corrected)+len(got.SkippedImages)+len(got.SkippedRemotes) != want.others {
			t.Errorf("run %d: %s", i+1, stdout)
		}
		if got.Images == nil || got.SkippedRemotes == nil {
			t.Errorf("run %d: lists print as null: %s", i+1, stdout)
		}
	}
}
