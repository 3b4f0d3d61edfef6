// Tests of the Store as a whole: opening, reopening, modes, mixed concurrent use, UpdateTreeStoreSize, Dump.

package store

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/appc/spec/schema/types"
)

func TestNewStoreErrors(t *testing.T) {
	t.Parallel()
	if _, err := NewStore(""); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("NewStore(\"\") = %v", err)
	}
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, []byte("x"), 0o600)
	if s, err := NewStore(file); err == nil {
		s.Close()
		t.Fatal("NewStore on a regular file succeeded")
	}
}

// TestNewStoreLeavesParentsAlone: the store's modes stop at the store
// directory. Missing parents are made as mkdir -p makes them, and an
// existing parent keeps its mode.
func TestNewStoreLeavesParentsAlone(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	if err := os.Chmod(base, 0o751); err != nil {
		t.Fatal(err)
	}
	s, err := NewStore(filepath.Join(base, "p1", "p2", "store"))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	// What mkdir -p gives under this process's umask, made beside them.
	if err := os.MkdirAll(filepath.Join(base, "q1", "q2"), 0o777); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ got, want string }{{"p1", "q1"}, {"p1/p2", "q1/q2"}} {
		got, err := os.Stat(filepath.Join(base, c.got))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.Stat(filepath.Join(base, c.want))
		if err != nil {
			t.Fatal(err)
		}
		if got.Mode() != want.Mode() {
			t.Errorf("%s: mode %v, want %v as mkdir -p makes it", c.got, got.Mode(), want.Mode())
		}
	}
	if fi, err := os.Stat(base); err != nil || fi.Mode()&(fs.ModePerm|fs.ModeSetgid) != 0o751 {
		t.Errorf("existing parent: mode %v, %v; want it left at 0751", fi.Mode(), err)
	}
}

func TestFileModes(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	key := writeImage(t, s, makeACI(t, "example.com/app"), false)
	rc, err := s.ReadStream(key)
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	for _, d := range []string{"", "blob", "imageManifest", "imagelocks", "db", "tmp", filepath.Dir(s.blobPath(key)), filepath.Dir(s.manifestPath(key))} {
		p := d
		if !filepath.IsAbs(p) {
			p = filepath.Join(s.dir, d)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode()&(fs.ModePerm|fs.ModeSetgid) != dirPerm&(fs.ModePerm|fs.ModeSetgid) {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), dirPerm)
		}
	}
	for _, p := range []string{s.blobPath(key), s.manifestPath(key), filepath.Join(s.lockDir, key), dbPath(s.dir), dbPath(s.dir) + "-wal", dbPath(s.dir) + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != filePerm {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), fs.FileMode(filePerm))
		}
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "store")
	s, err := NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	key := writeImage(t, s, makeACI(t, "example.com/app", "version=1"), true)
	if err := s.WriteRemote(&Remote{ACIURL: "https://x/app.aci", BlobKey: key}); err != nil {
		t.Fatal(err)
	}
	before, _ := s.GetACIInfoWithBlobKey(key)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.ResolveKey(key); !errors.Is(err, ErrClosed) {
		t.Fatalf("ResolveKey after Close = %v", err)
	}
	if _, err := s.WriteACI(bytes.NewReader(nil), ACIFetchInfo{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("WriteACI after Close = %v", err)
	}
	if s.HasFullKey(key) {
		t.Fatal("HasFullKey after Close")
	}

	s, err = NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	after, err := s.GetACIInfoWithBlobKey(key)
	if err != nil || after.Name != before.Name || !after.ImportTime.Equal(before.ImportTime) || !after.Latest || after.Size != before.Size {
		t.Fatalf("after reopen: %+v, %v (before %+v)", after, err, before)
	}
	if got, err := s.GetACI("example.com/app", types.Labels{{Name: "version", Value: "1"}}); err != nil || got != key {
		t.Fatalf("GetACI after reopen = %q, %v", got, err)
	}
	if r, err := s.GetRemote("https://x/app.aci"); err != nil || r.BlobKey != key {
		t.Fatalf("GetRemote after reopen = %v, %v", r, err)
	}
}

func TestConcurrentMixedOperations(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	shared := makeACI(t, "example.com/shared")
	var wg sync.WaitGroup
	errc := make(chan error, 64)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				own := makeACI(t, "example.com/own", "g="+string(rune('a'+g)), "i="+string(rune('a'+i)))
				key, err := s.WriteACI(bytes.NewReader(own), ACIFetchInfo{})
				if err != nil {
					errc <- err
					return
				}
				if _, err := s.WriteACI(bytes.NewReader(shared), ACIFetchInfo{}); err != nil {
					errc <- err
					return
				}
				rc, err := s.ReadStream(key)
				if err != nil {
					errc <- err
					return
				}
				io.Copy(io.Discard, rc)
				rc.Close()
				if err := s.WriteRemote(&Remote{ACIURL: key, BlobKey: key}); err != nil {
					errc <- err
					return
				}
				if err := s.RemoveACI(key); err != nil {
					errc <- err
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	ais, _ := s.GetAllACIInfos(nil, true)
	rs, _ := s.GetAllRemotes()
	if len(ais) != 1 || ais[0].Name != "example.com/shared" || len(rs) != 0 {
		t.Fatalf("left: %d rows, %d remotes", len(ais), len(rs))
	}
}

func TestUpdateTreeStoreSize(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	key := writeImage(t, s, makeACI(t, "example.com/app"), false)
	if err := s.UpdateTreeStoreSize(key, 42); err != nil {
		t.Fatal(err)
	}
	if ai, _ := s.GetACIInfoWithBlobKey(key); ai.TreeStoreSize != 42 {
		t.Fatalf("TreeStoreSize = %d", ai.TreeStoreSize)
	}
	if err := s.UpdateTreeStoreSize(fakeKey("00"), 1); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("unknown key: %v", err)
	}
	if err := s.UpdateTreeStoreSize(key, -1); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("negative size: %v", err)
	}
}

func TestDump(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	key := writeImage(t, s, readFixture(t, "hello.aci"), false)
	capture := func(hex bool) string {
		t.Helper()
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout := os.Stdout
		os.Stdout = w
		s.Dump(hex)
		os.Stdout = stdout
		w.Close()
		out, _ := io.ReadAll(r)
		return string(out)
	}
	plain := capture(false)
	if !strings.Contains(plain, "blob/"+key+": manifest") || !strings.Contains(plain, `imageManifest/`+key+`: {"acKind":"ImageManifest"`) ||
		strings.Count(plain, "1 total image ID(s)") != 2 {
		t.Fatalf("Dump(false):\n%s", plain)
	}
	if hexOut := capture(true); !strings.Contains(hexOut, key+": 6d616e6966657374") { // "manifest"
		t.Fatalf("Dump(true):\n%s", hexOut)
	}
	// A value that cannot be read is reported, not a panic (rkt panicked).
	os.Remove(s.manifestPath(key))
	os.Mkdir(s.manifestPath(key), 0o700)
	os.WriteFile(filepath.Join(s.manifestPath(key), "x"), nil, 0o600)
	if out := capture(false); !strings.Contains(out, "error:") {
		t.Fatalf("Dump with an unreadable value:\n%s", out)
	}
}
