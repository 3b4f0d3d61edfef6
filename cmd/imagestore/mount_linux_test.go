package main

import (
	"errors"
	"os"
	"path/filepath"

	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/sys/unix"
)

// canMountTmpfs reports whether this process can mount a tmpfs (the
// scripts' [tmpfs] condition): it tries once, on a scratch directory.
func canMountTmpfs() bool {
	dir, err := os.MkdirTemp("", "tmpfs-probe")
	if err != nil {
		return false
	}
	defer os.Remove(dir)
	if unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m") != nil {
		return false
	}
	return unix.Unmount(dir, 0) == nil
}

// cmdMountTmpfs mounts a tmpfs of SIZE (as mount(8) takes it: 24m) on DIR,
// a new directory, until the script ends (scripts check [tmpfs] first):
//
//	mounttmpfs DIR SIZE
func cmdMountTmpfs(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: mounttmpfs DIR SIZE")
	}
	dir := ts.MkAbs(args[0])
	ts.Check(os.MkdirAll(dir, 0o755))
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+args[1]); err != nil {
		ts.Fatalf("mounttmpfs: %v", err)
	}
	ts.Defer(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			unix.Unmount(dir, unix.MNT_DETACH)
		}
	})
}

// cmdFillFS fills the filesystem of DIR to 100% with the file DIR/filler,
// or, negated, removes that file:
//
//	fillfs DIR
func cmdFillFS(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: [!] fillfs DIR")
	}
	path := filepath.Join(ts.MkAbs(args[0]), "filler")
	if neg {
		ts.Check(os.Remove(path))
		return
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	ts.Check(err)
	defer f.Close()
	buf := make([]byte, 1<<20)
	for _, chunk := range []int{1 << 20, 4 << 10, 1} {
		for {
			if _, err := f.Write(buf[:chunk]); err != nil {
				if !errors.Is(err, unix.ENOSPC) {
					ts.Fatalf("fillfs: %v", err)
				}
				break
			}
		}
	}
	var st unix.Statfs_t
	ts.Check(unix.Statfs(path, &st))
	if st.Bavail != 0 {
		ts.Fatalf("fillfs: %d blocks still free", st.Bavail)
	}
}
