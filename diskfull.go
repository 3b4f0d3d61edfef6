//go:build unix

// This file holds what keeps a store usable on a full disk: the space
// reserve, the remedies tried when a removal finds no room, and ErrDiskFull's
// recognition.

package store

import (
	"errors"
	"io/fs"
	"os"
	"strings"
	"syscall"
)

// A full disk. Image pulls fill /var, so a store must stay usable on a
// filesystem with no free block: it must open, answer every read, and
// remove images to free space. Only writes that add data may fail, and
// they fail with ErrDiskFull and leave nothing behind. What this needs:
//
//   - Opening: SQLite's -shm file. A clean close would delete it with the
//     WAL, and the next open could not create it again. The connections
//     keep both (persistent WAL, db.go); the first opener truncates the
//     -shm file and rewrites it into the blocks it has just freed.
//   - Locks: the store lock is an open of the directory, the database's
//     write.lock and an image's key lock file exist from the image's
//     write on. Intent files in tmp/ are empty: an inode, no block.
//   - Removing: the intent file needs an inode (xfs allocates them on
//     demand) and the transaction appends a few pages to the WAL, which
//     may have to grow. A transaction that finds no room first
//     checkpoints, so that it can write the WAL from its start, into
//     blocks the WAL has. Next, db/reserve, which keeps reserveSize bytes
//     allocated, is released. Last, the WAL is emptied (checkpointed and
//     truncated, which frees its blocks). Each is followed by another try
//     (db.withRoom, db.doWithRoom). A removal, which frees space, and
//     NewStore fill the reserve again.
//   - Opening a store whose -shm file is missing (closed by a version
//     that deleted it) releases the reserve if it must.
//   - Reading: ReadStream records LastUsed, which needs WAL space; on a
//     full disk the stream is returned without it. A manifest file that
//     must be rewritten from its blob is served from the blob.
//
// Verify, GC and the reads write nothing else.

// reserveName is the reserve's file, in the database's directory.
const reserveName = "reserve"

// reserveSize is the reserve: room for a new -shm file (32 KiB) and for
// the WAL pages of many removals (a few pages each).
const reserveSize = 1 << 20

// isDiskFull reports whether err says that the filesystem has no space
// left (or the user's quota is used up), whether the OS or SQLite said it.
func isDiskFull(err error) bool {
	return errors.Is(err, ErrDiskFull) || errors.Is(err, syscall.ENOSPC) ||
		errors.Is(err, syscall.EDQUOT) || sqliteDiskFull(err)
}

// diskFullError marks an error that isDiskFull recognised so that
// errors.Is(err, ErrDiskFull) holds; the cause stays reachable.
type diskFullError struct{ err error }

func (e *diskFullError) Error() string {
	msg := e.err.Error()
	if strings.Contains(msg, "full") || strings.Contains(msg, "no space") || strings.Contains(msg, "quota") {
		return msg
	}
	return msg + " (" + ErrDiskFull.Error() + ")"
}

func (e *diskFullError) Unwrap() error        { return e.err }
func (e *diskFullError) Is(target error) bool { return target == ErrDiskFull }

// markDiskFull returns err marked as ErrDiskFull when it says the disk is
// full, and err itself otherwise.
func markDiskFull(err error) error {
	if err == nil || errors.Is(err, ErrDiskFull) || !isDiskFull(err) {
		return err
	}
	return &diskFullError{err: err}
}

// withRoom runs op, which needs at most a little new space (an open, a
// removal), on the filesystem of dbDir. While op fails because the disk is
// full, each of makeRoom in turn tries to make room, and op runs again
// after each that did. The disk counts as full by op's error, or by the
// space left: SQLite reports a -shm file it could not create (xfs needs
// room for a new inode) as "unable to open database file", with a
// meaningless errno.
func withRoom(dbDir string, op func() error, makeRoom ...func() bool) error {
	err := op()
	for _, mk := range makeRoom {
		if err == nil || !(isDiskFull(err) || freeSpace(dbDir) < reserveSize) {
			break
		}
		if mk() {
			err = op()
		}
	}
	return err
}

// releaseReserve removes the reserve in dbDir and reports whether there
// was one to free.
func releaseReserve(dbDir string) bool {
	path := reservePath(dbDir)
	fi, err := os.Stat(path)
	if err != nil || fi.Size() == 0 {
		return false
	}
	return os.Remove(path) == nil
}

// fillReserve makes the reserve in dbDir whole again. It is best effort:
// on a disk with less room it stays as large as it could be made, and a
// later call tops it up. Concurrent callers write the same zeros at the
// same offsets, so the file needs no lock and no rename. Its data is not
// fsynced: a reserve lost in a crash is made again by the next open.
func fillReserve(dbDir string) error {
	path := reservePath(dbDir)
	if fi, err := os.Stat(path); err == nil && fi.Size() >= reserveSize {
		return nil
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return wrap(err, "fill space reserve")
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, filePerm)
	if err != nil {
		return wrap(err, "fill space reserve")
	}
	defer f.Close()
	if err := f.Chmod(filePerm); err != nil {
		return wrap(err, "fill space reserve")
	}
	fi, err := f.Stat()
	if err != nil {
		return wrap(err, "fill space reserve")
	}
	// Zeros written, not a sparse file nor a bare size: the blocks must be
	// allocated to be of use. Writing works on every filesystem, where
	// fallocate does not.
	zeros := make([]byte, 64<<10)
	for off := fi.Size() / int64(len(zeros)) * int64(len(zeros)); off < reserveSize; off += int64(len(zeros)) {
		if _, err := f.WriteAt(zeros, off); err != nil {
			return wrap(err, "fill space reserve")
		}
	}
	return nil
}
