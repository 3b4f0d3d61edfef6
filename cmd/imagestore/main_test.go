package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	store "github.com/imagestore/imagestore"
	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets the test binary run as the imagestore command inside the
// scripts: testscript puts it on $PATH under that name.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"imagestore": main,
	})
}

// fixtures are copied from the module's testdata/ into each script's
// $WORK/testdata, so that scripts (and the README quickstart) name them as
// testdata/hello.aci.gz.
var fixtures = []string{"hello.aci", "hello.aci.gz", "hello.aci.bz2", "hello.aci.xz"}

// TestScript runs testdata/script/*.txtar against the real binary. Each
// script gets $IMAGESTORE_DIR=$WORK/store and $KEY, the fixture's key.
func TestScript(t *testing.T) {
	key := fixtureKey(t)
	testscript.Run(t, testscript.Params{
		Dir:                 filepath.Join("testdata", "script"),
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			dst := filepath.Join(env.WorkDir, "testdata")
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return err
			}
			for _, f := range fixtures {
				b, err := os.ReadFile(filepath.Join("..", "..", "testdata", f))
				if err != nil {
					return err
				}
				if err := os.WriteFile(filepath.Join(dst, f), b, 0o644); err != nil {
					return err
				}
			}
			env.Setenv("IMAGESTORE_DIR", filepath.Join(env.WorkDir, "store"))
			env.Setenv("KEY", key)
			env.Setenv("SHORTKEY", shortKey(key))
			return nil
		},
		Condition: func(cond string) (bool, error) {
			switch cond {
			case "root":
				return os.Geteuid() == 0, nil
			case "tmpfs":
				return canMountTmpfs(), nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Cmds: scriptCmds(map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"mkaci":      cmdMkaci,
			"jsonshape":  cmdJSONShape,
			"addremote":  cmdAddRemote,
			"exits":      cmdExits,
			"mounttmpfs": cmdMountTmpfs,
			"fillfs":     cmdFillFS,
		}, fetchCmds),
	})
}

// scriptCmds merges maps of script commands.
func scriptCmds(maps ...map[string]func(ts *testscript.TestScript, neg bool, args []string)) map[string]func(ts *testscript.TestScript, neg bool, args []string) {
	out := map[string]func(ts *testscript.TestScript, neg bool, args []string){}
	for _, m := range maps {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// fixtureKey reads the key of testdata/hello.aci from fixtures.keys.
func fixtureKey(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "fixtures.keys"))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == "hello.aci" {
			return f[1]
		}
	}
	t.Fatal("no key for hello.aci in fixtures.keys")
	return ""
}

// cmdMkaci writes an ACI for a script:
//
//	mkaci FILE NAME[:VERSION] [ENTRY...]
//
// The manifest comes first; each ENTRY is TYPE:PATH[=VALUE] with TYPE one
// of dir (VALUE, if any, is the mode in octal), file (VALUE is the
// content), big (VALUE is a size in bytes), symlink and link (VALUE is
// the target), char and block (VALUE is
// MAJOR,MINOR) and fifo. Paths are used as given, so scripts can build
// hostile images. Three more go into the manifest: dep:NAME[:VERSION] (a
// dependency by name, with a version label if given), depid:NAME=ID (a
// dependency by imageID) and whitelist:PATH (a pathWhitelist entry).
func cmdMkaci(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: mkaci FILE NAME[:VERSION] [ENTRY...]")
	}
	name, version, _ := strings.Cut(args[1], ":")
	labels := []map[string]string{{"name": "os", "value": "linux"}, {"name": "arch", "value": "amd64"}}
	if version != "" {
		labels = append([]map[string]string{{"name": "version", "value": version}}, labels...)
	}
	m := map[string]any{"acKind": "ImageManifest", "acVersion": "0.8.11", "name": name, "labels": labels}
	var deps []map[string]any
	var whitelist []string
	var entries []string
	for _, e := range args[2:] {
		typ, val, _ := strings.Cut(e, ":")
		switch typ {
		case "dep":
			dname, dversion, _ := strings.Cut(val, ":")
			d := map[string]any{"imageName": dname}
			if dversion != "" {
				d["labels"] = []map[string]string{{"name": "version", "value": dversion}}
			}
			deps = append(deps, d)
		case "depid":
			dname, id, _ := strings.Cut(val, "=")
			deps = append(deps, map[string]any{"imageName": dname, "imageID": id})
		case "whitelist":
			whitelist = append(whitelist, val)
		default:
			entries = append(entries, e)
		}
	}
	if deps != nil {
		m["dependencies"] = deps
	}
	if whitelist != nil {
		m["pathWhitelist"] = whitelist
	}
	manifest, err := json.Marshal(m)
	ts.Check(err)

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	write := func(h *tar.Header, body []byte) {
		h.ModTime = mtime
		h.Format = tar.FormatPAX
		ts.Check(tw.WriteHeader(h))
		_, err := tw.Write(body)
		ts.Check(err)
	}
	write(&tar.Header{Name: "manifest", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(manifest))}, manifest)
	for _, e := range entries {
		typ, rest, ok := strings.Cut(e, ":")
		if !ok {
			ts.Fatalf("mkaci: bad entry %q", e)
		}
		p, val, _ := strings.Cut(rest, "=")
		switch typ {
		case "dir":
			mode := int64(0o755)
			if val != "" {
				var err error
				mode, err = strconv.ParseInt(val, 8, 64)
				ts.Check(err)
			}
			write(&tar.Header{Name: p, Typeflag: tar.TypeDir, Mode: mode}, nil)
		case "file":
			write(&tar.Header{Name: p, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(val))}, []byte(val))
		case "big":
			n, err := strconv.Atoi(val)
			ts.Check(err)
			write(&tar.Header{Name: p, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(n)}, bytes.Repeat([]byte("x"), n))
		case "symlink":
			write(&tar.Header{Name: p, Typeflag: tar.TypeSymlink, Linkname: val, Mode: 0o777}, nil)
		case "link":
			write(&tar.Header{Name: p, Typeflag: tar.TypeLink, Linkname: val, Mode: 0o644}, nil)
		case "char", "block":
			maj, min, _ := strings.Cut(val, ",")
			major, err := strconv.ParseInt(maj, 10, 64)
			ts.Check(err)
			minor, err := strconv.ParseInt(min, 10, 64)
			ts.Check(err)
			flag := byte(tar.TypeChar)
			if typ == "block" {
				flag = tar.TypeBlock
			}
			write(&tar.Header{Name: p, Typeflag: flag, Mode: 0o666, Devmajor: major, Devminor: minor}, nil)
		case "fifo":
			write(&tar.Header{Name: p, Typeflag: tar.TypeFifo, Mode: 0o644}, nil)
		default:
			ts.Fatalf("mkaci: unknown entry type %q", typ)
		}
	}
	ts.Check(tw.Close())
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), buf.Bytes(), 0o644))
}

// cmdJSONShape reads a JSON document (a file, or "stdout" of the last
// command) and prints it indented with its times replaced by "<time>",
// so that scripts can compare the whole document with cmp.
func cmdJSONShape(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: jsonshape FILE")
	}
	dec := json.NewDecoder(strings.NewReader(ts.ReadFile(args[0])))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		ts.Fatalf("jsonshape: %v", err)
	}
	if dec.More() {
		ts.Fatalf("jsonshape: more than one JSON document")
	}
	enc := json.NewEncoder(ts.Stdout())
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	ts.Check(enc.Encode(normalizeTimes(v)))
}

func normalizeTimes(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normalizeTimes(e)
		}
	case []any:
		for i, e := range x {
			x[i] = normalizeTimes(e)
		}
	case string:
		if _, err := time.Parse(time.RFC3339Nano, x); err == nil {
			return "<time>"
		}
	}
	return v
}

// cmdAddRemote records a remote in the store at $IMAGESTORE_DIR, as a
// fetcher would (the command-line tool has no command for that):
//
//	addremote ACIURL KEY [ETAG]
func cmdAddRemote(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 || len(args) > 3 {
		ts.Fatalf("usage: addremote ACIURL KEY [ETAG]")
	}
	s, err := store.NewStore(ts.Getenv("IMAGESTORE_DIR"))
	ts.Check(err)
	defer s.Close()
	r := store.NewRemote(args[0], args[0]+".asc")
	r.BlobKey = args[1]
	r.CacheMaxAge = 3600
	r.DownloadTime = time.Now()
	if len(args) == 3 {
		r.ETag = args[2]
	}
	ts.Check(s.WriteRemote(r))
	ts.Check(s.Close())
}

// cmdExits runs a command and checks its exit status, keeping its stdout
// and stderr for the next lines (exec only tells success from failure):
//
//	exits STATUS COMMAND [ARG...]
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits STATUS COMMAND [ARG...]")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("exits: %v", err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("exit status %d, want %d", got, want)
	}
}
