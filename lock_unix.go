//go:build unix

// This file holds the locks: the store lock and the key locks (flock),
// in the order doc.go gives.

package store

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// flock takes (or converts) a lock on f, retrying on EINTR.
func flock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// storeLock is the lock on the whole store directory: shared for a Store's
// life, exclusive while the database schema is migrated.
type storeLock struct {
	f *os.File
}

func lockStore(dir string) (*storeLock, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, wrap(err, "open store directory")
	}
	if err := flock(f, syscall.LOCK_SH); err != nil {
		f.Close()
		return nil, wrap(err, "lock store %s", dir)
	}
	return &storeLock{f: f}, nil
}

// exclusive trades the shared lock for an exclusive one, waiting at most
// timeout for the other processes using the store to let go. flock cannot
// convert a lock atomically (Linux drops the shared lock first), so while
// it waits this Store holds no lock at all; it polls unneeded meanwhile,
// and when that says the exclusive lock is no longer needed (another
// process did the work) it takes the shared lock again and returns false.
// On error the shared lock is taken again too, if it can be at once.
func (l *storeLock) exclusive(timeout time.Duration, unneeded func() bool) (bool, error) {
	deadline := time.Now().Add(timeout)
	for {
		err := flock(l.f, syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			flock(l.f, syscall.LOCK_SH|syscall.LOCK_NB)
			return false, wrap(err, "lock store exclusively")
		}
		if unneeded() {
			return false, l.shared()
		}
		if time.Now().After(deadline) {
			flock(l.f, syscall.LOCK_SH|syscall.LOCK_NB)
			return false, fmt.Errorf("store is in use by another process and its database must be migrated: close the other users of %s and retry", l.f.Name())
		}
		time.Sleep(storeLockPoll)
	}
}

// storeLockPoll is how often exclusive retries.
const storeLockPoll = 50 * time.Millisecond

func (l *storeLock) shared() error {
	return wrap(flock(l.f, syscall.LOCK_SH), "lock store")
}

func (l *storeLock) close() error {
	return l.f.Close() // closing the descriptor drops the flock
}

// keyLock is a lock file per image key in imagelocks/. Lock files may be
// removed by GC while unlocked, so after locking we check that the file we
// hold is still the one at the path (same device and inode); if not, a
// remover won and we retry on the new file.
type keyLock struct {
	f *os.File
}

// keyLockRetries bounds how often lockKey follows a replaced lock file;
// each replacement means another process made progress (GC removed it).
const keyLockRetries = 20

// lockKey locks the key's lock file. key must have passed checkFullKey.
func lockKey(dir, key string, exclusive bool) (*keyLock, error) {
	for try := 0; try < keyLockRetries; try++ {
		l, err := lockKeyOnce(dir, key, exclusive, true)
		if l != nil || err != nil {
			return l, err
		}
	}
	return nil, fmt.Errorf("lock key %s: lock file kept changing after %d tries", key, keyLockRetries)
}

// tryLockKey is lockKey without waiting: ok is false when another holder
// has the key in a conflicting mode (or replaced its lock file meanwhile).
func tryLockKey(dir, key string, exclusive bool) (l *keyLock, ok bool, err error) {
	l, err = lockKeyOnce(dir, key, exclusive, false)
	return l, l != nil, err
}

// lockKeyOnce opens and locks the key's lock file once. It returns a nil
// lock and no error when the lock is not held: the file was replaced
// after we opened it, or (without wait) another holder has it.
func lockKeyOnce(dir, key string, exclusive, wait bool) (*keyLock, error) {
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	if !wait {
		how |= syscall.LOCK_NB
	}
	path := keyLockPath(dir, key)
	f, err := openShared(path)
	if err != nil {
		return nil, wrap(err, "open key lock")
	}
	if err := flock(f, how); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, nil
		}
		return nil, wrap(err, "lock key %s", key)
	}
	same, err := sameFile(f, path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		f.Close()
		return nil, wrap(err, "check key lock %s", key)
	}
	if !same {
		f.Close()
		return nil, nil
	}
	return &keyLock{f: f}, nil
}

func (l *keyLock) unlock() error {
	return l.f.Close()
}

// sameFile reports whether the open file f is still the file at path.
func sameFile(f *os.File, path string) (bool, error) {
	var held, cur syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &held); err != nil {
		return false, err
	}
	if err := syscall.Stat(path, &cur); err != nil {
		return false, err
	}
	return held.Dev == cur.Dev && held.Ino == cur.Ino, nil
}

// tryLockFile takes an exclusive lock on f without waiting.
func tryLockFile(f *os.File) (bool, error) {
	err := flock(f, syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return false, nil
	}
	return err == nil, err
}

// canWrite reports whether this process may create files in dir.
func canWrite(dir string) bool {
	return syscall.Access(dir, 0x2 /* W_OK */) == nil
}
