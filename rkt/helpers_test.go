package rkt

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"errors"
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

// fixtureDir is the rkt v1.30.0 store written by rkt's own code, with
// everything rkt's API reported about it (README.txt says how).
var fixtureDir = filepath.Join("..", "testdata", "rkt-v1.30-store")

// unpackFixture unpacks the fixture's store.tar.gz into a new temporary
// directory and returns the store directory (its ./cas), with the modes
// and modification times rkt left.
func unpackFixture(tb testing.TB) string {
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
		mode := h.FileInfo().Mode()
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
		if err := os.Chmod(p, mode&(fs.ModePerm|fs.ModeSetgid)); err != nil {
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

// fileState is what a snapshot records of one file or directory.
type fileState struct {
	mode  fs.FileMode
	size  int64
	mtime time.Time
	sum   [sha256.Size]byte // of a regular file's content
}

func (f fileState) String() string {
	return fmt.Sprintf("%v %d bytes, modified %s, sha256 %x", f.mode, f.size, f.mtime.Format(time.RFC3339Nano), f.sum[:6])
}

// snapshot records every file and directory under dir: type, mode, size,
// modification time and content.
func snapshot(tb testing.TB, dir string) map[string]fileState {
	tb.Helper()
	out := map[string]fileState{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		st := fileState{mode: fi.Mode(), size: fi.Size(), mtime: fi.ModTime()}
		if fi.IsDir() {
			st.size = 0
		} else {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			st.sum = sha256.Sum256(b)
		}
		out[filepath.ToSlash(rel)] = st
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// diffSnapshots lists what differs between two snapshots ("" if nothing).
func diffSnapshots(before, after map[string]fileState) string {
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

// requireUnchanged fails the test if dir differs from the snapshot before.
func requireUnchanged(tb testing.TB, dir string, before map[string]fileState) {
	tb.Helper()
	if d := diffSnapshots(before, snapshot(tb, dir)); d != "" {
		tb.Fatalf("the directory changed:\n%s", d)
	}
}

// fileSum is the SHA-256 of a file's content.
func fileSum(tb testing.TB, path string) [sha256.Size]byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return sha256.Sum256(b)
}

// isNotExist reports whether err says a file does not exist.
func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
