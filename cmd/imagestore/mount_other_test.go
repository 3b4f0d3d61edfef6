//go:build !linux

package main

import "github.com/rogpeppe/go-internal/testscript"

// canMountTmpfs: the scripts' tmpfs mounts are Linux mounts.
func canMountTmpfs() bool { return false }

// cmdMountTmpfs is not reached where canMountTmpfs is false: scripts check
// [tmpfs] first.
func cmdMountTmpfs(ts *testscript.TestScript, neg bool, args []string) {
	ts.Fatalf("mounttmpfs: tmpfs mounts need Linux")
}

// cmdFillFS is not reached either: it fills the tmpfs of mounttmpfs.
func cmdFillFS(ts *testscript.TestScript, neg bool, args []string) {
	ts.Fatalf("fillfs: tmpfs mounts need Linux")
}
