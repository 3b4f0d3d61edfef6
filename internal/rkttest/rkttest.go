// Package rkttest holds what the tests of package rkt and of the
// imagestore command share: the rkt v1.30.0 store fixture in the module's
// testdata/rkt-v1.30-store, unpacked as rkt left it, and snapshots of a
// directory tree to show that an operation changed nothing.
package rkttest

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// FixtureDir is the fixture's directory as seen from a test's package
// directory depth levels below the module root (tests run in their own
// package's directory).
func FixtureDir(depth int) string {
	return filepath.Join(append(repeat("..", depth), "testdata", "rkt-v1.30-store")...)
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// Unpack unpacks the fixture's store.tar.gz (in fixtureDir) into a new
// temporary directory and returns the store directory (its ./cas), with
// the modes and modification times rkt left.
func Unpack(tb testing.TB, fixtureDir string) string {
	tb.Helper()
	f, err := os.Open(filepath.Join(fixtureDir, "store.tar.gz"))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		tb.Fatal(err)
	}
	root := tb.TempDir()
	tr := tar.NewReader(zr)
	type dirTime struct {
		path string
		t    time.Time
	}
	var dirs []dirTime
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			tb.Fatal(err)
		}
		p := filepath.Join(root, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(p, root+string(filepath.Separator)) {
			tb.Fatalf("fixture entry %q outside the directory", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o700); err != nil {
				tb.Fatal(err)
			}
			dirs = append(dirs, dirTime{p, h.ModTime})
		case tar.TypeReg:
			out, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				tb.Fatal(err)
			}
			if _, err := io.Copy(out, tr); err != nil {
				tb.Fatal(err)
			}
			if err := out.Close(); err != nil {
				tb.Fatal(err)
			}
			if err := os.Chtimes(p, h.ModTime, h.ModTime); err != nil {
				tb.Fatal(err)
			}
		default:
			tb.Fatalf("fixture entry %q of unexpected type %c", h.Name, h.Typeflag)
		}
		if err := os.Chmod(p, h.FileInfo().Mode()&(fs.ModePerm|fs.ModeSetgid)); err != nil {
			tb.Fatal(err)
		}
	}
	// Directory times last: creating their entries changed them.
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := os.Chtimes(dirs[i].path, dirs[i].t, dirs[i].t); err != nil {
			tb.Fatal(err)
		}
	}
	return filepath.Join(root, "cas")
}

// FileState is what a snapshot records of one file or directory.
type FileState struct {
	Mode  fs.FileMode
	Size  int64 // 0 for a directory
	MTime time.Time
	Sum   [sha256.Size]byte // of a regular file's content
}

func (f FileState) String() string {
	return fmt.Sprintf("%v %d bytes, modified %s, sha256 %x", f.Mode, f.Size, f.MTime.Format(time.RFC3339Nano), f.Sum[:6])
}

// Snapshot records every file and directory under dir, by slash-separated
// path relative to dir: type, mode, size, modification time and content.
func Snapshot(tb testing.TB, dir string) map[string]FileState {
	tb.Helper()
	out := map[string]FileState{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		st := FileState{Mode: fi.Mode(), Size: fi.Size(), MTime: fi.ModTime()}
		if fi.IsDir() {
			st.Size = 0
		} else if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			st.Sum = sha256.Sum256(b)
		}
		out[filepath.ToSlash(rel)] = st
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// Diff lists what differs between two snapshots, "" if nothing.
func Diff(before, after map[string]FileState) string {
	var out []string
	for p, b := range before {
		a, ok := after[p]
		switch {
		case !ok:
			out = append(out, "removed "+p)
		case a != b:
			out = append(out, fmt.Sprintf("changed %s: %v -> %v", p, b, a))
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			out = append(out, "created "+p)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// RequireUnchanged fails the test if dir differs from the snapshot before.
func RequireUnchanged(tb testing.TB, dir string, before map[string]FileState) {
	tb.Helper()
	if d := Diff(before, Snapshot(tb, dir)); d != "" {
		tb.Fatalf("the directory changed:\n%s", d)
	}
}
