//go:build unix

package rkt

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// lockDir takes one of rkt's locks: an flock on a directory (rkt's
// pkg/lock with lock.Dir), shared or exclusive, waiting at most lockWait.
// rkt takes the store directory's shared for the life of a Store and
// exclusive to migrate, and the db/ directory's exclusive around each
// transaction. The returned file holds the lock until closed.
func lockDir(dir string, exclusive bool) (*os.File, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	deadline := time.Now().Add(lockWait)
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		switch {
		case err == nil:
			return f, nil
		case errors.Is(err, syscall.EINTR):
			continue
		case !errors.Is(err, syscall.EWOULDBLOCK):
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", dir, err)
		case time.Now().After(deadline):
			f.Close()
			return nil, fmt.Errorf("lock %s: rkt is using the store: stop it and retry", dir)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
