//go:build unix

// This file holds the Store itself: opening and closing it, its
// directories and lock, Do, and the small methods of rkt's API.

package store

import (
	"database/sql"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/peterbourgon/diskv"
)

// Store encapsulates a content-addressable-storage for storing ACIs on disk.
//
// A Store is safe for use by many goroutines, and many processes may open
// the same directory at once.
type Store struct {
	layout                 // where its files live (layout.go)
	blobs     *diskv.Diskv // uncompressed image tars, read and listed
	manifests *diskv.Diskv // image manifest JSON, read and listed
	db        *db
	storeLock *storeLock
	closed    *atomic.Bool // a pointer: TmpNamedFile has a value receiver
	cache     *manifestCache

	recoveryErr error      // what NewStore's recovery could not settle
	failpoint   failpoints // nil but in tests (failpoint.go)
}

// NewStore opens the store in dir, creating it (and dir) if needed. Several
// Stores, in one process or many, may be open on the same directory. A
// store written by rkt is refused with ErrNeedsAdoption until it has been
// adopted (Adopt), and nothing is created in it.
//
// The database schema is migrated when it is older than this code: the
// store lock is then taken exclusively (waiting up to 30 s for other users)
// and the database is backed up into db-backups/ first.
func NewStore(dir string) (*Store, error) {
	s, err := createLocked(dir)
	if err != nil {
		return nil, wrap(err, "open store")
	}
	if s.db, err = openDB(s.dbFile()); err != nil {
		s.storeLock.close()
		if rerr := s.needsRebuild(err); rerr != nil {
			err = rerr
		}
		return nil, wrap(err, "open store %s", s.dir)
	}
	s.failpoint, s.db.failpoint = newStoreFailpoints, newStoreFailpoints
	if err := s.openSchema(); err != nil {
		s.db.close()
		s.storeLock.close()
		return nil, wrap(err, "open store %s", s.dir)
	}
	// Best effort: what cannot be settled now (a file that will not go)
	// stays recorded for the next open and for GC; RecoveryError tells.
	if _, err := s.recoverInFlight(false); err != nil {
		s.recoveryErr = wrap(err, "open store %s: recover what crashed processes left", s.dir)
	}
	fillReserve(s.dbDir()) // best effort too: on a full disk it waits for a removal
	return s, nil
}

// RecoveryError returns what NewStore could not settle of the writes and
// removals that crashed processes left in flight (a leftover file it could
// not remove, for example), or nil. The store works all the same: such
// leftovers have no database row, so no method sees them, and the next
// NewStore and GC try again. GC returns the same kind of error.
func (s *Store) RecoveryError() error {
	return s.recoveryErr
}

// createLocked is a Store without its database: the directories made, the
// diskv stores set up and the store lock held (shared). An rkt store that
// has not been adopted is refused before anything is created in it.
func createLocked(dir string) (*Store, error) {
	s, err := unopenedStore(dir)
	if err != nil {
		return nil, err
	}
	dir = s.dir
	if err := checkAdopted(dir); err != nil {
		return nil, err
	}
	// Missing parents are made as mkdir -p makes them (the umask decides);
	// nothing above the store directory takes the store's modes.
	if err := os.MkdirAll(filepath.Dir(dir), 0o777); err != nil {
		return nil, wrap(err, "create store directory")
	}
	for _, d := range s.dirs() {
		if err := mkdirShared(d); err != nil {
			return nil, wrap(err, "create store directory")
		}
	}
	// store lock, shared for the Store's life (lock 1, doc.go "Locks")
	if s.storeLock, err = lockStore(dir); err != nil {
		return nil, err
	}
	return s, nil
}

// unopenedStore is the Store value for dir, with nothing created or locked.
func unopenedStore(dir string) (*Store, error) {
	if dir == "" {
		return nil, fmt.Errorf("%w: empty store directory", ErrInvalidArgument)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	l := newLayout(dir)
	return &Store{
		layout:    l,
		blobs:     newDiskv(l.blobDir()),
		manifests: newDiskv(l.manifestDir()),
		closed:    new(atomic.Bool),
		cache:     newManifestCache(),
	}, nil
}

func newDiskv(base string) *diskv.Diskv {
	return diskv.New(diskv.Options{
		BasePath:  base,
		Transform: shardPath,
		PathPerm:  dirPerm,
		FilePerm:  filePerm,
	})
}

// Close closes a Store opened with NewStore(), releasing its database and
// its lock on the store directory. Calling it again does nothing.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	return errors.Join(s.db.close(), s.storeLock.close())
}

func (s *Store) live() error {
	if s.closed.Load() {
		return ErrClosed
	}
	return nil
}

// Do runs fns in one write transaction, in order, so that the *sql.Tx
// helpers of this package (WriteACIInfo, WriteRemote, …) can be combined
// atomically. If any fn returns an error (or panics) the transaction is
// rolled back and that error returned; otherwise it commits.
//
// A fn must not call methods of the Store: the write connection is held
// for the length of the transaction.
func (s *Store) Do(fns ...func(*sql.Tx) error) error {
	if err := s.live(); err != nil {
		return err
	}
	return s.db.do(fns...)
}

// HashToKey takes a hash.Hash (which currently _MUST_ represent a full
// SHA512), calculates its sum, and returns a string which should be used as
// the key to store the data matching the hash. For any other hash it returns
// "" (rkt panicked), which no method accepts as a key.
func (s *Store) HashToKey(h hash.Hash) string {
	return hashToKey(h)
}

// Dump prints, for the blob and the manifest stores, each key with the
// start of its value (128 bytes, in hex if hex is true), then a count. It is
// a debugging aid that writes to standard output.
func (s *Store) Dump(hex bool) {
	for _, ds := range []*diskv.Diskv{s.blobs, s.manifests} {
		count := 0
		for key := range ds.Keys(nil) {
			var out string
			val, err := readHead(shardedPath(ds.BasePath, key), 128)
			switch {
			case err != nil:
				out = "error: " + err.Error()
			case hex:
				out = fmt.Sprintf("%x", val)
			default:
				out = string(val)
			}
			fmt.Printf("%s/%s: %s\n", ds.BasePath, key, out)
			count++
		}
		fmt.Printf("%d total image ID(s)\n", count)
	}
}

func readHead(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, n)
	m, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf[:m], nil
}
