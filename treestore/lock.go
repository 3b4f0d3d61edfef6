// This file holds the trees' locks: flock on DIR/treestorelocks/<id>, the
// files rkt's tree store locks, so that this store and rkt's exclude each
// other on the same directory.

package treestore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

type lockMode int

const (
	shared lockMode = syscall.LOCK_SH
	// exclusive is for a render or a removal of the tree.
	exclusive lockMode = syscall.LOCK_EX
)

type treeLock struct{ f *os.File }

// lockTree takes the lock of name (a tree id, or an image's size lock),
// waiting for it.
func lockTree(dir, name string, mode lockMode) (*treeLock, error) {
	return takeLock(dir, name, int(mode))
}

// tryLockTree takes the lock without waiting; ok is false when another
// holds it.
func tryLockTree(dir, name string, mode lockMode) (l *treeLock, ok bool, err error) {
	l, err = takeLock(dir, name, int(mode)|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return nil, false, nil
	}
	return l, err == nil, err
}

func takeLock(dir, name string, how int) (*treeLock, error) {
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_RDONLY|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("error locking tree store: %w", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, err
		}
		return nil, fmt.Errorf("error locking tree store: %w", err)
	}
	return &treeLock{f: f}, nil
}

// close releases the lock.
func (l *treeLock) close() error { return l.f.Close() }
