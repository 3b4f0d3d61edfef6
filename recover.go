//go:build unix

// This file holds recovery at open: the intents and temp files a crash
// left in tmp/, settled at a cost proportional to what was in flight.

package store

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Recovery. A crash can leave three things behind, all in tmp/:
//
//   - .ingest-* files: images (or manifests) being written. Their writer
//     holds a flock on them while it lives; an unlocked one is dead.
//   - .new-* files: the same, killed between their creation and their lock.
//     An unlocked one may also be a live writer's in that instant: removing
//     it makes that writer start again with a new file (createIngestFile).
//   - .intent-<key> files: created under the key's exclusive lock before
//     the blob and manifest of key are published or removed, and deleted
//     after the database agrees with the files. One left behind means the
//     files of key may have no row.
//   - nothing else: callers' temp files (TmpFile, TmpNamedFile) are theirs.
//
// recoverInFlight, run by NewStore, looks only at tmp/, so it costs time in
// proportion to what was in flight, not to the size of the store. GC's
// orphan sweep is the full scan behind it.
const tmpIntentPrefix = ".intent-"

// beginIntent records that the files of key are about to change. The key
// must be locked exclusively. The file itself is not fsynced: WriteACI
// fsyncs tmp/ before the blob's directory, so the intent is durable before
// the blob's name is. A removal does not (see removeLocked).
func (s *Store) beginIntent(key string) error {
	f, err := os.OpenFile(s.intentPath(key), os.O_WRONLY|os.O_CREATE, filePerm)
	if err != nil {
		return wrap(err, "record intent for %s", key)
	}
	return f.Close()
}

// endIntent removes the record once the database and the files agree.
func (s *Store) endIntent(key string) {
	os.Remove(s.intentPath(key)) // a leftover only costs a later check
}

// recoverInFlight finishes or undoes what crashed writers and removers
// left in tmp/. Files of live writers (locked) are left alone. It returns
// the paths it removed.
func (s *Store) recoverInFlight(dryRun bool) ([]string, error) {
	if !dryRun {
		s.failpoint.at("recover-start")
	}
	entries, err := os.ReadDir(s.tmpDir)
	if err != nil {
		return nil, wrap(err, "recover: list temp files")
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasPrefix(name, tmpIngestPrefix), strings.HasPrefix(name, tmpNewPrefix):
			p := filepath.Join(s.tmpDir, name)
			dead, err := unlockedFile(p)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if dead {
				if !dryRun {
					if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
						errs = append(errs, err)
						continue
					}
				}
				removed = append(removed, p)
			}
		case strings.HasPrefix(name, tmpIntentPrefix):
			key := strings.TrimPrefix(name, tmpIntentPrefix)
			if checkFullKey(key) != nil {
				continue // not ours to judge
			}
			paths, err := s.settleIntent(key, dryRun)
			removed = append(removed, paths...)
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	return removed, errors.Join(errs...)
}

// settleIntent resolves a leftover intent of key, unless a live process
// holds the key: without a row, the key's files are removed.
func (s *Store) settleIntent(key string, dryRun bool) ([]string, error) {
	// key lock (lock 2, doc.go "Locks"); a live holder is left alone
	kl, ok, err := tryLockKey(s.lockDir, key, true)
	if err != nil || !ok {
		return nil, err
	}
	defer kl.unlock()
	if _, err := os.Stat(s.intentPath(key)); errors.Is(err, fs.ErrNotExist) {
		return nil, nil // settled by its owner meanwhile
	}
	found, err := hasACIInfo(s.db.prepared, key)
	if err != nil {
		return nil, err
	}
	s.failpoint.at("recover-settle")
	var removed []string
	if !found {
		for _, p := range []string{s.blobPath(key), s.manifestPath(key)} {
			if fileExists(p) {
				removed = append(removed, p)
			}
		}
		if !dryRun && len(removed) > 0 {
			if errs := s.removeFiles(key, true, nil); len(errs) > 0 {
				return removed, errors.Join(errs...)
			}
		}
	}
	if !dryRun {
		s.failpoint.at("recover-settled")
		s.endIntent(key)
	}
	return append(removed, s.intentPath(key)), nil
}

// unlockedFile reports whether nobody holds a flock on the file at path.
func unlockedFile(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, err
	}
	defer f.Close()
	return tryLockFile(f)
}
