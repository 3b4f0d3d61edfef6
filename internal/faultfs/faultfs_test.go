//go:build linux

package faultfs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// mount mounts a faultfs over a fresh backing directory; the mount is
// undone when the test ends, even if it fails.
func mount(t *testing.T, model Model) (f *FS, backing, mnt string) {
	t.Helper()
	if err := Available(); err != nil {
		t.Skipf("skipped: %v", err)
	}
	root := t.TempDir()
	backing, mnt = filepath.Join(root, "backing"), filepath.Join(root, "mnt")
	for _, d := range []string{backing, mnt} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	f, err := Mount(backing, mnt, model)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	return f, backing, mnt
}

func writeFile(t *testing.T, path string, data []byte, sync bool) {
	t.Helper()
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.Write(data); err != nil {
		t.Fatal(err)
	}
	if sync {
		if err := fh.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	if err := fh.Close(); err != nil {
		t.Fatal(err)
	}
}

func syncDir(t *testing.T, path string) {
	t.Helper()
	d, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
}

func wantFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if want == nil {
		if !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s: exists (%q, %v), want it gone", path, got, err)
		}
		return
	}
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("%s: %q (%v), want %q", path, got, err, want)
	}
}

func TestModelALosesUnsyncedData(t *testing.T) {
	f, backing, mnt := mount(t, ModelA)
	big := bytes.Repeat([]byte("0123456789abcdef"), 1000)
	writeFile(t, filepath.Join(mnt, "synced"), big, true)
	writeFile(t, filepath.Join(mnt, "unsynced"), []byte("lost"), false)
	// Overwrite the middle of a synced file, grow it, and do not sync.
	fh, err := os.OpenFile(filepath.Join(mnt, "synced"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fh.WriteAt([]byte("XXXX"), 5000)
	fh.WriteAt([]byte("tail"), int64(len(big)))
	fh.Close()
	// Truncate another synced file without syncing.
	writeFile(t, filepath.Join(mnt, "truncated"), []byte("keep me"), true)
	if err := os.Truncate(filepath.Join(mnt, "truncated"), 2); err != nil {
		t.Fatal(err)
	}
	// A rename is durable at once in model A; the data it names is not.
	writeFile(t, filepath.Join(mnt, "tmp"), []byte("renamed"), false)
	if err := os.Rename(filepath.Join(mnt, "tmp"), filepath.Join(mnt, "final")); err != nil {
		t.Fatal(err)
	}
	if err := f.PowerCut(); err != nil {
		t.Fatal(err)
	}
	wantFile(t, filepath.Join(backing, "synced"), big)
	wantFile(t, filepath.Join(backing, "unsynced"), []byte{})
	wantFile(t, filepath.Join(backing, "truncated"), []byte("keep me"))
	wantFile(t, filepath.Join(backing, "final"), []byte{})
	wantFile(t, filepath.Join(backing, "tmp"), nil)
}

func TestModelBLosesUnsyncedNames(t *testing.T) {
	f, backing, mnt := mount(t, ModelB)
	if err := os.Mkdir(filepath.Join(mnt, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	syncDir(t, mnt)
	writeFile(t, filepath.Join(mnt, "d", "kept"), []byte("kept"), true)
	writeFile(t, filepath.Join(mnt, "d", "removed"), []byte("removed"), true)
	syncDir(t, filepath.Join(mnt, "d"))
	// None of these is followed by a sync of d.
	writeFile(t, filepath.Join(mnt, "d", "new"), []byte("new"), true)
	if err := os.Remove(filepath.Join(mnt, "d", "removed")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(mnt, "d", "kept"), filepath.Join(mnt, "d", "moved")); err != nil {
		t.Fatal(err)
	}
	// A rename into a synced directory from an unsynced one: both names.
	for _, d := range []string{"c", "e"} {
		if err := os.Mkdir(filepath.Join(mnt, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	syncDir(t, mnt)
	writeFile(t, filepath.Join(mnt, "c", "x"), []byte("x"), true)
	syncDir(t, filepath.Join(mnt, "c"))
	if err := os.Rename(filepath.Join(mnt, "c", "x"), filepath.Join(mnt, "e", "x")); err != nil {
		t.Fatal(err)
	}
	syncDir(t, filepath.Join(mnt, "e"))
	if err := f.PowerCut(); err != nil {
		t.Fatal(err)
	}
	if s := f.Stats(); s.Undone != 4 {
		t.Errorf("undone %d operations, want 4", s.Undone)
	}
	wantFile(t, filepath.Join(backing, "d", "kept"), []byte("kept"))
	wantFile(t, filepath.Join(backing, "d", "removed"), []byte("removed"))
	wantFile(t, filepath.Join(backing, "d", "new"), nil)
	wantFile(t, filepath.Join(backing, "d", "moved"), nil)
	wantFile(t, filepath.Join(backing, "c", "x"), []byte("x"))
	wantFile(t, filepath.Join(backing, "e", "x"), []byte("x"))
}

func TestFaults(t *testing.T) {
	f, backing, mnt := mount(t, ModelA)
	writeFile(t, filepath.Join(mnt, "a"), []byte("old"), true)
	f.SetFault(func(op Op, path string) syscall.Errno {
		switch {
		case op == OpRead && path == "a":
			return syscall.EIO
		case op == OpWrite && path == "full":
			return syscall.ENOSPC
		case op == OpFsync && path == "b":
			return syscall.EIO
		}
		return 0
	})
	if _, err := os.ReadFile(filepath.Join(mnt, "a")); !errors.Is(err, syscall.EIO) {
		t.Errorf("read: %v, want EIO", err)
	}
	if err := os.WriteFile(filepath.Join(mnt, "full"), []byte("x"), 0o644); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("write: %v, want ENOSPC", err)
	}
	// A failed fsync loses the data it was to make durable, even when a
	// later fsync succeeds (Linux marks the pages clean).
	fh, err := os.OpenFile(filepath.Join(mnt, "b"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fh.Write([]byte("first"))
	if err := fh.Sync(); !errors.Is(err, syscall.EIO) {
		t.Errorf("fsync: %v, want EIO", err)
	}
	f.SetFault(nil)
	fh.Write([]byte("second"))
	if err := fh.Sync(); err != nil {
		t.Errorf("second fsync: %v", err)
	}
	fh.Close()
	if err := f.PowerCut(); err != nil {
		t.Fatal(err)
	}
	// The model is harsher than Linux, which would keep a page rewritten
	// after the failure: the size before the failed fsync comes back.
	wantFile(t, filepath.Join(backing, "b"), []byte{})
}

// Abort frees a request that the server never answers: here a write whose
// fault function blocks, as a process serving its own mount can.
func TestAbort(t *testing.T) {
	f, _, mnt := mount(t, ModelA)
	block := make(chan struct{})
	defer close(block)
	f.SetFault(func(op Op, path string) syscall.Errno {
		if op == OpCreate && path == "stuck" {
			<-block
		}
		return 0
	})
	done := make(chan error, 1)
	go func() { done <- os.WriteFile(filepath.Join(mnt, "stuck"), []byte("x"), 0o644) }()
	select {
	case err := <-done:
		t.Fatalf("the blocked create returned: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	if err := f.Abort(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, syscall.ECONNABORTED) && !errors.Is(err, syscall.ENOTCONN) {
			t.Errorf("create after Abort: %v, want ECONNABORTED or ENOTCONN", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Abort did not free the blocked request")
	}
}
