//go:build unix

// This file holds the remove path: an image's rows deleted in one
// transaction, then its files.

package store

import (
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// RemoveACI removes the ACI with the given key, a full key as in rkt (a
// prefix is an ErrInvalidKey error and removes nothing: resolve it with
// ResolveKey first). It firstly removes the aci infos and the remotes
// pointing at it inside the db, in one transaction, then it tries to remove
// the non transactional data. If some error occurs removing some non
// transactional data a *StoreRemovalError is returned; the image is gone
// all the same and GC removes what was left. An unknown key is an error
// that matches ErrKeyNotFound.
func (s *Store) RemoveACI(key string) error {
	if err := s.live(); err != nil {
		return err
	}
	if err := checkFullKey(key); err != nil {
		return wrap(err, "remove image")
	}
	// An unknown key gets no lock file: none is left behind by mistyped keys.
	if found, err := hasACIInfo(s.db.prepared, key); err != nil || !found {
		if err == nil {
			err = ErrKeyNotFound
		}
		return wrap(err, "remove image %s", key)
	}
	// key lock, exclusive (lock 2, doc.go "Locks")
	kl, err := lockKey(s.lockDir, key, true)
	if err != nil {
		return wrap(err, "remove image")
	}
	defer kl.unlock()
	// The key's lock file stays: removing it on every removal made writers
	// of a popular key chase replaced lock files. GC removes the lock
	// files of keys that no longer exist.
	return s.removeLocked(key)
}

// removeLocked removes the image of key, which the caller has locked
// exclusively: rows first, in one transaction, then the files.
//
// It must work on a full disk: room is made for the intent and the
// transaction (diskfull.go), and the space reserve is filled again once
// the files are gone.
func (s *Store) removeLocked(key string) error {
	if err := s.db.withRoom(func() error { return s.beginIntent(key) }); err != nil {
		return wrap(err, "remove image")
	}
	err := s.db.doWithRoom(func(tx *sql.Tx) error {
		res, err := tx.Exec(`DELETE FROM aciinfo WHERE blobkey = ?`, key)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrKeyNotFound // removed by someone else meanwhile
		}
		if err := RemoveRemote(tx, key); err != nil {
			return err
		}
		s.failpoint.at("remove-in-transaction")
		return nil
	})
	if err != nil {
		s.endIntent(key)
		return wrap(err, "remove image %s", key)
	}
	s.failpoint.at("remove-committed")
	s.cache.drop(key)

	// Neither the intent nor the removal of the files is fsynced: that
	// cost two more journal commits per removal (2.6 times slower), and
	// on ext4 and xfs the journal keeps them in order. Where it does not,
	// a power cut can leave the files of a removed image as orphans (the
	// README's caveats; TestPowerCut, model B).
	errs := s.removeFiles(key, false, func() { s.failpoint.at("remove-blob-removed") })
	if len(errs) > 0 {
		// The intent stays: recovery retries the removal.
		return &StoreRemovalError{errors: errs}
	}
	s.endIntent(key)
	fillReserve(s.dbDir()) // best effort: the next removal may need it
	return nil
}

// removeFiles removes the blob and the manifest of key, and with sync
// makes their removal durable before the key's intent goes. between runs
// after the blob's removal.
func (s *Store) removeFiles(key string, sync bool, between func()) []error {
	var errs []error
	for i, p := range []string{s.blobPath(key), s.manifestPath(key)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
		if i == 0 && between != nil {
			between()
		}
	}
	if sync {
		for _, p := range []string{s.blobPath(key), s.manifestPath(key)} {
			if err := syncDir(filepath.Dir(p)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return errs
}
