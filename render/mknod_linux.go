package render

import "golang.org/x/sys/unix"

// mknodat creates a device node or FIFO named name in the directory dirfd.
func mknodat(dirfd int, name string, mode uint32, dev uint64) error {
	return unix.Mknodat(dirfd, name, mode, int(dev))
}
