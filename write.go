//go:build unix

// This file holds the write path: an image ingested, published under its
// key's lock and recorded, in the order that makes a crash harmless.

package store

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// WriteACI takes an ACI encapsulated in an io.ReadSeeker, decompresses it
// if necessary, and then stores it in the store under a key based on the
// image ID (i.e. the hash of the uncompressed ACI). fetchInfo.Latest marks
// the ACI as the latest, for example an ACI discovered without asking for a
// specific version (latest pattern).
//
// The input may be a tar, or a tar compressed with gzip, bzip2 or xz
// (detected by content). WriteACI seeks r to its start once
// (Seek(0, io.SeekStart)), then reads it once, forward, to its end: a
// truncated or corrupt archive, or one without a valid manifest, is
// refused with ErrInvalidImage and leaves nothing behind. Writing an image
// that is already stored is harmless: its import time, last use and latest
// flag are updated.
//
// The image is durable when WriteACI returns: the tar and the manifest
// are fsynced and renamed into place, and their directories fsynced,
// before the database row that makes them visible commits (see the
// Durability section of the package documentation).
func (s *Store) WriteACI(r io.ReadSeeker, fetchInfo ACIFetchInfo) (string, error) {
	if err := s.live(); err != nil {
		return "", err
	}
	p, err := s.prepare(r, fetchInfo)
	if err != nil {
		return "", err
	}
	defer p.release()
	if err := s.publish([]*pending{p}); err != nil {
		return "", err
	}
	return p.in.key, nil
}

// pending is an image ingested and its manifest written to a temp file,
// both not yet fsynced, waiting for publish.
type pending struct {
	in *ingested
	mf *tempFile
	fi ACIFetchInfo
}

// prepare ingests r and writes its manifest to a temp file.
func (s *Store) prepare(r io.ReadSeeker, fetchInfo ACIFetchInfo) (*pending, error) {
	in, err := s.ingest(r)
	if err != nil {
		return nil, wrap(err, "write image")
	}
	if fetchInfo.Name != "" && in.manifest.Name != fetchInfo.Name {
		in.file.release()
		return nil, fmt.Errorf("write image: %w: it is named %q, not %q", ErrInvalidImage, in.manifest.Name, fetchInfo.Name)
	}
	imj, err := json.Marshal(in.manifest)
	if err != nil {
		in.file.release()
		return nil, wrap(err, "write image %s: encode manifest", in.key)
	}
	// The manifest is a copy of the one inside the blob, but Verify and
	// every reader expect it whole: it is made durable like the blob.
	mf, err := s.writeTemp(imj)
	if err != nil {
		in.file.release()
		return nil, wrap(err, "write image %s", in.key)
	}
	return &pending{in: in, mf: mf, fi: fetchInfo}, nil
}

// release removes the temp files, unless they were published.
func (p *pending) release() {
	p.in.file.release()
	p.mf.release()
}

// publish makes the images durable and visible, all or none: their keys
// locked (in key order, so that two batches never wait for each other),
// every blob and manifest renamed into place and fsynced, their
// directories fsynced, then one transaction records them all, and the WAL
// is flushed once. The keys must be distinct.
func (s *Store) publish(ps []*pending) error {
	ps = slices.Clone(ps)
	slices.SortFunc(ps, func(a, b *pending) int { return strings.Compare(a.in.key, b.in.key) })
	// key locks, exclusive (lock 2, doc.go "Locks")
	for _, p := range ps {
		kl, err := lockKey(s.lockDir, p.in.key, true)
		if err != nil {
			return wrap(err, "write image")
		}
		defer kl.unlock()
	}
	for _, p := range ps {
		if err := s.beginIntent(p.in.key); err != nil {
			return wrap(err, "write image")
		}
	}
	committed := false
	defer func() {
		if !committed {
			for _, p := range ps {
				s.unpublishLocked(p.in.key)
			}
		}
	}()
	s.failpoint.at("write-intent")
	what := "write image " + ps[0].in.key // for messages about all of them
	if len(ps) > 1 {
		what = fmt.Sprintf("write %d images", len(ps))
	}
	var (
		syncs []func() error
		dirs  []string
	)
	for _, p := range ps {
		after, err := s.publishFiles(p)
		if err != nil {
			return err
		}
		syncs = append(syncs, after...)
		for _, d := range []string{filepath.Dir(s.manifestPath(p.in.key)), filepath.Dir(s.blobPath(p.in.key))} {
			if !slices.Contains(dirs, d) {
				dirs = append(dirs, d)
			}
		}
	}
	// The files' fsyncs run side by side: the filesystem commits them
	// together (ext4 and xfs join concurrent fsyncs in one journal
	// commit), where one after the other each waits for its own.
	if err := syncAll(syncs); err != nil {
		return wrap(err, "%s: sync", what)
	}
	// The names: the intents (tmp/) before the blobs', so that a blob
	// never outlives a power cut without a row or an intent; the
	// manifests' so that a row never finds its manifest missing. On ext4
	// and xfs the fsyncs of the files already committed them and these
	// find nothing left to do.
	if err := syncDir(s.tmpDir); err != nil {
		return wrap(err, "%s: sync", what)
	}
	var dirSyncs []func() error
	for _, d := range dirs {
		dirSyncs = append(dirSyncs, func() error { return syncDir(d) })
	}
	if err := syncAll(dirSyncs); err != nil {
		return wrap(err, "%s: sync", what)
	}
	now := time.Now()
	err := s.db.do(func(tx *sql.Tx) error {
		for _, p := range ps {
			name := p.in.manifest.Name.String()
			_, err := tx.Exec(`INSERT INTO aciinfo (`+aciinfoColumns+`) VALUES (?, ?, ?, ?, ?, ?, 0)
			ON CONFLICT (blobkey) DO UPDATE SET name = excluded.name, importtime = excluded.importtime,
				lastused = excluded.lastused, latest = excluded.latest, size = excluded.size`,
				p.in.key, name, dbTime{&now}, dbTime{&now}, p.fi.Latest, p.in.size)
			if err != nil {
				return err
			}
			if err := writeLabels(tx, p.in.key, name, p.in.manifest.Labels); err != nil {
				return err
			}
		}
		s.failpoint.at("write-in-transaction")
		return nil
	})
	if err != nil {
		return wrap(err, "%s: record", what)
	}
	committed = true
	s.failpoint.at("write-committed")
	for _, p := range ps {
		s.endIntent(p.in.key)
	}
	return nil
}

// publishFiles renames one image's blob and manifest into place. It
// returns the fsyncs that must follow before the directories' (those of a
// new image: a replacing one is fsynced before its rename). Its key is
// locked and its intent recorded.
func (s *Store) publishFiles(p *pending) ([]func() error, error) {
	key := p.in.key
	// The row is what makes an image exist, so a new blob may be renamed
	// into place before its fsync: until the row commits nobody reads it,
	// and a crash leaves an orphan that the intent lets recovery remove.
	// One fsync after the rename then makes the data, the inode and the
	// rename durable in one journal commit, and the directory's fsync finds
	// little left to do. A blob that replaces a committed one (the image
	// written again) is fsynced first, as it must never be seen torn.
	// The manifest goes the same way.
	replacing, err := hasACIInfo(s.db.prepared, key)
	if err != nil {
		return nil, wrap(err, "write image %s", key)
	}
	syncBlob := func() error { return wrap(p.in.file.Sync(), "blob %s", key) }
	syncManifest := func() error { return wrap(fdatasync(p.mf.File), "manifest %s", key) }
	if replacing {
		if err := syncBlob(); err != nil {
			return nil, wrap(err, "write image %s: sync", key)
		}
		if err := syncManifest(); err != nil {
			return nil, wrap(err, "write image %s: sync", key)
		}
	}
	blob, manifest := s.blobPath(key), s.manifestPath(key)
	if err := rename(p.in.file, blob); err != nil {
		return nil, wrap(err, "write image %s: publish blob", key)
	}
	s.failpoint.at("write-blob-renamed")
	if err := rename(p.mf, manifest); err != nil {
		return nil, wrap(err, "write image %s: publish manifest", key)
	}
	s.failpoint.at("write-manifest-renamed")
	if replacing {
		return nil, nil
	}
	return []func() error{syncBlob, syncManifest}, nil
}

// maxSyncs bounds the fsyncs publish runs at once.
const maxSyncs = 16

// syncAll runs the syncs, up to maxSyncs at a time, and returns their
// errors once all have returned.
func syncAll(syncs []func() error) error {
	if len(syncs) == 1 {
		return syncs[0]()
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, maxSyncs)
	)
	for _, fn := range syncs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// unpublishLocked removes the files of key that a failed WriteACI may
// have published (a full disk: no room for a shard directory, for the
// manifest or for the commit), so that the failed call leaves nothing
// behind. Files that a row names stay, and so does the intent: the image
// was stored before, or only the flush after the commit failed, and then
// the row may not be durable (TestFailingDisk): recovery decides from the
// row it finds after a reboot. On any doubt the intent stays. The key is
// locked exclusively.
func (s *Store) unpublishLocked(key string) {
	found, err := hasACIInfo(s.db.prepared, key)
	if err != nil || found {
		return
	}
	for _, p := range []string{s.blobPath(key), s.manifestPath(key)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return
		}
	}
	s.endIntent(key)
}

// rename moves a written store temp file to dst, creating dst's directory.
func rename(f *tempFile, dst string) error {
	if err := mkdirShared(filepath.Dir(dst)); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), dst); err != nil {
		return err
	}
	f.done = true
	return nil
}

// UpdateTreeStoreSize records the size of the image's rendered tree, as
// rkt's tree store did after rendering an image; GetAllACIInfos and the
// ACIInfo helpers return it. The size is the caller's: the store does not
// look at the tree. A negative size is ErrInvalidArgument, an unknown key
// ErrKeyNotFound.
func (s *Store) UpdateTreeStoreSize(key string, newSize int64) error {
	if err := s.live(); err != nil {
		return err
	}
	if err := checkFullKey(key); err != nil {
		return err
	}
	if newSize < 0 {
		return fmt.Errorf("%w: negative tree store size %d", ErrInvalidArgument, newSize)
	}
	return s.db.do(func(tx *sql.Tx) error {
		res, err := tx.Exec(`UPDATE aciinfo SET treestoresize = ? WHERE blobkey = ?`, newSize, key)
		if err != nil {
			return wrap(err, "update tree store size of %s", key)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("update tree store size of %s: %w", key, ErrKeyNotFound)
		}
		return nil
	})
}
