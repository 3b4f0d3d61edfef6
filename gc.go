//go:build unix

// This file holds GC: unused images, and on request the leftovers of
// crashes and callers' old temp files.

package store

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// GCOptions says what GC removes. The zero value removes only what crashed
// writers and removers left in tmp/ (what NewStore also settles).
type GCOptions struct {
	// UnusedSince removes the images last used (read or written) before
	// it, as rkt's "image gc --grace-period" did. Zero removes none.
	UnusedSince time.Time
	// Keep, when set, is asked about each unused image before it is
	// removed: an image it reports (one that an image kept depends on, a
	// layer shared by a layered import) stays. The store does not read
	// dependencies itself; the caller decides.
	Keep func(key string) bool
	// Orphans also sweeps the whole store for what crashes and failed
	// removals leave: blobs and manifests without a row, stale lock files
	// of keys that no longer exist, and half-created temp files.
	Orphans bool
	// TmpFilesUnusedSince removes callers' temp files (TmpFile,
	// TmpNamedFile: partial downloads) not modified since it. Zero keeps
	// them all: the store never removes them unless asked.
	TmpFilesUnusedSince time.Time
	// DryRun reports what would be removed and removes nothing.
	DryRun bool
}

// GCReport is what GC removed (or, with DryRun, would remove).
type GCReport struct {
	RemovedImages []string // keys
	RemovedFiles  []string // paths, other than those of removed images
	InUse         []string // keys skipped: held by another process
}

// newTmpGrace is how old a .new- temp file must be before GC takes it for
// abandoned: it is never locked, so only its age tells.
const newTmpGrace = time.Minute

// GC removes unused images and, on request, the garbage of crashes. It never
// removes an image whose key another process holds (a read or a write in
// progress): that key is listed in InUse and left for a later GC. Errors do
// not stop it; they are returned joined, after everything else was tried.
func (s *Store) GC(opts GCOptions) (*GCReport, error) {
	if err := s.live(); err != nil {
		return nil, err
	}
	r := &GCReport{}
	var errs []error
	removed, err := s.recoverInFlight(opts.DryRun)
	r.RemovedFiles = append(r.RemovedFiles, removed...)
	errs = append(errs, err)
	if !opts.UnusedSince.IsZero() {
		errs = append(errs, s.gcUnused(r, opts))
	}
	if opts.Orphans {
		errs = append(errs, s.gcOrphans(r, opts.DryRun))
	}
	if !opts.TmpFilesUnusedSince.IsZero() {
		errs = append(errs, s.gcTmpFiles(r, opts))
	}
	return r, errors.Join(errs...)
}

func (s *Store) gcUnused(r *GCReport, opts GCOptions) error {
	rows, err := s.db.readers.QueryContext(background, `SELECT blobkey FROM aciinfo WHERE lastused < ? ORDER BY blobkey`, dbTime{&opts.UnusedSince})
	if err != nil {
		return wrap(err, "gc: list unused images")
	}
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			rows.Close()
			return wrap(err, "gc: list unused images")
		}
		keys = append(keys, k)
	}
	rows.Close()
	s.failpoint.at("gc-listed")
	var errs []error
	for _, key := range keys {
		// key lock (lock 2, doc.go "Locks"); never waited for
		kl, ok, err := tryLockKey(s.lockDir, key, true)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !ok {
			r.InUse = append(r.InUse, key)
			continue
		}
		// Re-read under the lock: it may have been used meanwhile.
		ai, found, err := aciinfoWithBlobKey(s.db.prepared, key)
		switch {
		case err != nil:
			errs = append(errs, err)
		case !found || !ai.LastUsed.Before(opts.UnusedSince):
		case opts.Keep != nil && opts.Keep(key):
		case opts.DryRun:
			r.RemovedImages = append(r.RemovedImages, key)
		default:
			err := s.removeLocked(key)
			var leftovers *StoreRemovalError
			if err == nil || errors.As(err, &leftovers) {
				// Gone from the database; leftover files are in the error.
				r.RemovedImages = append(r.RemovedImages, key)
			}
			if err != nil {
				errs = append(errs, err)
			}
		}
		kl.unlock()
	}
	return errors.Join(errs...)
}

func (s *Store) gcOrphans(r *GCReport, dryRun bool) error {
	var errs []error
	remove := func(p string) {
		if !dryRun {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
				return
			}
		}
		r.RemovedFiles = append(r.RemovedFiles, p)
	}
	// removeUnowned removes path, a file of key, if no row names key and no
	// other process holds it (a writer publishes under the key's lock). A
	// lock file stays while an intent of its key is left to settle.
	removeUnowned := func(key, path string, isLock bool) {
		// key lock (lock 2, doc.go "Locks"); never waited for
		kl, ok, err := tryLockKey(s.lockDir, key, true)
		if err != nil {
			errs = append(errs, err)
		}
		if !ok {
			return
		}
		defer kl.unlock()
		found, err := hasACIInfo(s.db.prepared, key)
		switch {
		case err != nil:
			errs = append(errs, err)
		case !found && !(isLock && fileExists(s.intentPath(key))):
			remove(path)
		}
	}
	for _, base := range []string{s.blobs.BasePath, s.manifests.BasePath} {
		files, err := listStored(base)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, f := range files {
			if f.key != "" { // a file not named by a key is not ours to judge
				removeUnowned(f.key, f.path, false)
			}
		}
	}
	// Lock files of keys without images. Removing one while holding it is
	// safe: a waiter on the old file re-checks the inode and retries.
	entries, err := os.ReadDir(s.lockDir)
	errs = append(errs, err)
	for _, e := range entries {
		if key := e.Name(); checkFullKey(key) == nil {
			removeUnowned(key, s.keyLockPath(key), true)
		}
	}
	// Temp files that crashed between their creation and their lock.
	entries, err = os.ReadDir(s.tmpDir)
	errs = append(errs, err)
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), tmpNewPrefix) {
			continue
		}
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > newTmpGrace {
			remove(filepath.Join(s.tmpDir, e.Name()))
		}
	}
	return errors.Join(errs...)
}

// gcTmpFiles removes callers' temp files not modified since the cutoff.
func (s *Store) gcTmpFiles(r *GCReport, opts GCOptions) error {
	entries, err := os.ReadDir(s.tmpDir)
	if err != nil {
		return wrap(err, "gc: list temp files")
	}
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if isStoreTemp(name) || !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil || !fi.ModTime().Before(opts.TmpFilesUnusedSince) {
			continue
		}
		p := filepath.Join(s.tmpDir, name)
		if !opts.DryRun {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
				continue
			}
		}
		r.RemovedFiles = append(r.RemovedFiles, p)
	}
	return errors.Join(errs...)
}

// isStoreTemp reports whether a name in tmp/ is one of the store's own.
func isStoreTemp(name string) bool {
	return strings.HasPrefix(name, tmpIngestPrefix) || strings.HasPrefix(name, tmpNewPrefix) || strings.HasPrefix(name, tmpIntentPrefix)
}
