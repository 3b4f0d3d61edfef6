package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	store "github.com/imagestore/imagestore"
)

// The progress bar is only drawn on a terminal, which the scripts cannot
// give the binary's stderr; here it is drawn into a buffer.
func TestProgressReader(t *testing.T) {
	var out bytes.Buffer
	data := bytes.Repeat([]byte("x"), 300<<10)
	bar := newProgressBar(&out, int64(len(data)), "hello.aci")
	pr := &progressReader{r: bytes.NewReader(data), bar: bar}
	if _, err := io.Copy(io.Discard, io.LimitReader(pr, 100<<10)); err != nil {
		t.Fatal(err)
	}
	if _, err := pr.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if got := bar.State().CurrentNum; got != 0 {
		t.Errorf("after Seek(0): bar at %d, want 0", got)
	}
	if _, err := io.Copy(io.Discard, pr); err != nil {
		t.Fatal(err)
	}
	if got := bar.State().CurrentNum; got != int64(len(data)) {
		t.Errorf("bar at %d, want %d", got, len(data))
	}
	if err := bar.Finish(); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{"hello.aci", "100%", "300/300 KiB", "iB/s", "[0s:"} {
		if !strings.Contains(s, want) {
			t.Errorf("progress output %q lacks %q", s, want)
		}
	}
}

func TestNoProgressOffTerminal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a := &app{stderr: f}
	if a.progressBar(10, "x") != nil {
		t.Error("progress bar on a regular file")
	}
	a = &app{stderr: &bytes.Buffer{}}
	if a.progressBar(10, "x") != nil {
		t.Error("progress bar on a buffer")
	}
}

func TestErrorMessageHints(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("show x: %w", store.ErrKeyNotFound), "run 'imagestore list'"},
		{fmt.Errorf("show x: %w", store.ErrAmbiguousKey), "give more characters of the key"},
		{fmt.Errorf("import: %w", store.ErrInvalidImage), "give an ACI file"},
		{store.ErrSchemaTooNew, "use a newer imagestore"},
		{fmt.Errorf("open: %w", os.ErrPermission), "check the permissions"},
		{usagef("bad"), "bad"},
		{withHint(errors.New("verify: 1 problem"), "do this"), "verify: 1 problem: do this"},
	} {
		if got := errorMessage(tc.err); !strings.Contains(got, tc.want) {
			t.Errorf("errorMessage(%v) = %q, want it to contain %q", tc.err, got, tc.want)
		}
	}
}

func TestRunExitCodes(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"--dir", dir, "list"}, exitFail}, // no store there
		{[]string{"--dir", dir, "list", "--nope"}, exitUsage},
		{[]string{"--dir", dir, "show", "sha512-00"}, exitFail},
		{[]string{"nope"}, exitUsage},
	} {
		var stdout, stderr bytes.Buffer
		if got := run(tc.args, strings.NewReader(""), &stdout, &stderr); got != tc.code {
			t.Errorf("run(%q) = %d, want %d (stderr %q)", tc.args, got, tc.code, stderr.String())
		}
		if n := strings.Count(stderr.String(), "\n"); n > 1 {
			t.Errorf("run(%q): %d lines on stderr, want at most 1", tc.args, n)
		}
	}
}
