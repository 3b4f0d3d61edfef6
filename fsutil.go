//go:build unix

// This file holds the file helpers: the store's modes, directory creation
// and fsync, shared opens.

package store

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// Modes of everything the store creates. They are set explicitly with chmod,
// whatever the process umask, so that members of the store directory's group
// can share it; the setgid bit makes new entries inherit that group.
const (
	dirPerm  = 0o770 | fs.ModeSetgid
	filePerm = 0o660
)

// mkdirShared creates dir, and any of its missing parents, with dirPerm.
// It is called only for the store directory, whose parent exists
// (createLocked makes it), and for directories inside the store, so it never
// makes or changes anything above the store. A parent directory is fsynced
// after a child is created in it, so that a new directory survives a crash
// along with the files renamed into it.
func mkdirShared(dir string) error {
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return &fs.PathError{Op: "mkdir", Path: dir, Err: errors.New("not a directory")}
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := mkdirShared(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil // another process made it first
		}
		return err
	}
	if err := os.Chmod(dir, dirPerm); err != nil {
		return err
	}
	return syncDir(parent)
}

// syncDir fsyncs a directory so that renames and creations in it are durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	serr := d.Sync()
	cerr := d.Close()
	if serr != nil {
		return serr
	}
	return cerr
}

// openShared opens path for reading, creating it with filePerm if missing.
// The file may be removed by another process between a failed create and
// the open (GC removes unused lock files): then it is created again.
func openShared(path string) (*os.File, error) {
	for try := 0; ; try++ {
		f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, filePerm)
		if err == nil {
			if err := f.Chmod(filePerm); err != nil {
				f.Close()
				return nil, err
			}
			return f, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		f, err = os.Open(path)
		if errors.Is(err, fs.ErrNotExist) && try < 10 {
			continue // removed since the create failed
		}
		return f, err
	}
}
