package render

import (
	"os"

	"golang.org/x/sys/unix"
)

// The filesystems whose syncfs(2) writes back every file and directory
// changed on them and commits their journal: the local disk filesystems.
// Elsewhere (FUSE, network and stacked filesystems, where syncfs may not
// reach the storage) every file and directory is fsynced instead.
var syncfsTypes = map[int64]bool{
	unix.EXT4_SUPER_MAGIC:  true, // also ext2 and ext3
	unix.XFS_SUPER_MAGIC:   true,
	unix.BTRFS_SUPER_MAGIC: true,
	unix.F2FS_SUPER_MAGIC:  true,
	unix.TMPFS_MAGIC:       true, // nothing to write back
}

// syncWhole returns a function that makes everything written below dir
// durable with one syncfs(2), or nil where files must be fsynced one by
// one.
func syncWhole(dir string) func() error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil || !syncfsTypes[int64(st.Type)] {
		return nil
	}
	return func() error {
		d, err := os.Open(dir)
		if err != nil {
			return err
		}
		defer d.Close()
		if err := unix.Syncfs(int(d.Fd())); err != nil {
			return &os.PathError{Op: "syncfs", Path: dir, Err: err}
		}
		return nil
	}
}
