//go:build linux || darwin || freebsd

// This file holds freeSpace, from statfs(2).

package store

import "golang.org/x/sys/unix"

// freeSpace is the space left for this process on the filesystem of dir,
// or -1 if it cannot be told.
func freeSpace(dir string) int64 {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return -1
	}
	return int64(st.Bavail) * int64(st.Bsize)
}
