//go:build unix

package store

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
	"github.com/peterbourgon/diskv"
)

// Store encapsulates a content-addressable-storage for storing ACIs on disk.
//
// A Store is safe for use by many goroutines, and many processes may open
// the same directory at once.
type Store struct {
	dir       string
	blobs     *diskv.Diskv // uncompressed image tars
	manifests *diskv.Diskv // image manifest JSON
	db        *db
	storeLock *storeLock
	lockDir   string
	tmpDir    string
	closed    *atomic.Bool // a pointer: TmpNamedFile has a value receiver
	cache     *manifestCache

	recoveryErr error // what NewStore's recovery could not settle
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
	s, err := lockedShell(dir)
	if err != nil {
		return nil, wrap(err, "open store")
	}
	if s.db, err = openDB(dbPath(s.dir)); err != nil {
		s.storeLock.close()
		if rerr := s.needsRebuild(err); rerr != nil {
			err = rerr
		}
		return nil, wrap(err, "open store %s", s.dir)
	}
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

// lockedShell is a Store without its database: the directories made, the
// diskv stores set up and the store lock held (shared). An rkt store that
// has not been adopted is refused before anything is created in it.
func lockedShell(dir string) (*Store, error) {
	s, err := newShell(dir)
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
	for _, d := range s.layout() {
		if err := mkdirShared(d); err != nil {
			return nil, wrap(err, "create store directory")
		}
	}
	if s.storeLock, err = lockStore(dir); err != nil {
		return nil, err
	}
	return s, nil
}

// newShell is the Store value for dir, with nothing created or locked.
func newShell(dir string) (*Store, error) {
	if dir == "" {
		return nil, fmt.Errorf("%w: empty store directory", ErrInvalidArgument)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	return &Store{
		dir:       dir,
		lockDir:   filepath.Join(dir, "imagelocks"),
		tmpDir:    filepath.Join(dir, "tmp"),
		blobs:     newDiskv(filepath.Join(dir, "blob")),
		manifests: newDiskv(filepath.Join(dir, "imageManifest")),
		closed:    new(atomic.Bool),
		cache:     newManifestCache(),
	}, nil
}

// layout lists the directories of a store.
func (s *Store) layout() []string {
	return []string{s.dir, s.lockDir, s.tmpDir, filepath.Join(s.dir, "db"),
		filepath.Join(s.dir, "blob"), filepath.Join(s.dir, "imageManifest")}
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

func (s *Store) blobPath(key string) string     { return keyPath(s.blobs, key) }
func (s *Store) dbDir() string                  { return filepath.Dir(dbPath(s.dir)) }
func (s *Store) manifestPath(key string) string { return keyPath(s.manifests, key) }

// keyPath is where diskv keeps key: base/sha512/ab/sha512-ab….
func keyPath(ds *diskv.Diskv, key string) string {
	return filepath.Join(ds.BasePath, filepath.Join(shardPath(key)...), key)
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

// ResolveKey resolves a partial key (of format `sha512-0c45e8c0ab2`) to a
// full key by considering the key a prefix and using the store for
// resolution. If the key is longer than the full key length, it is first
// truncated.
//
// Its errors are ErrWrongKeyPrefix ("wrong key prefix"), ErrKeyTooShort
// ("image ID too short"), ErrInvalidKey (not lowercase hex),
// ErrAmbiguousKey ("ambiguous image ID: <prefix> matches <the first few
// keys>") and ErrKeyNotFound.
func (s *Store) ResolveKey(key string) (string, error) {
	if err := s.live(); err != nil {
		return "", err
	}
	key, err := checkKey(key)
	if err != nil {
		return "", err
	}
	if len(key) == lenKey {
		// A full key needs no range: one indexed point lookup.
		found, err := hasACIInfo(s.db.q, key)
		if err != nil {
			return "", wrap(err, "resolve key")
		}
		if !found {
			return "", ErrKeyNotFound
		}
		return key, nil
	}
	ais, err := aciinfosWithKeyPrefix(s.db.q, key, ambiguousListed+1)
	if err != nil {
		return "", wrap(err, "resolve key")
	}
	switch len(ais) {
	case 0:
		return "", ErrKeyNotFound
	case 1:
		return ais[0].BlobKey, nil
	}
	matches := make([]string, 0, ambiguousListed)
	for _, ai := range ais[:min(len(ais), ambiguousListed)] {
		matches = append(matches, ai.BlobKey[:shortKeyLen])
	}
	more := ""
	if len(ais) > ambiguousListed {
		more = ", and more"
	}
	return "", fmt.Errorf("%w: %q matches %s%s", ErrAmbiguousKey, key, strings.Join(matches, ", "), more)
}

// An ambiguous key's error lists the first ambiguousListed keys it
// matches, each cut to shortKeyLen characters (sha512- and 12 hex digits,
// as rkt shows keys).
const (
	ambiguousListed = 5
	shortKeyLen     = len(hashPrefix) + 12
)

// ResolveName resolves an image name to a list of full keys and using the
// store for resolution. found is false when no image has that name.
func (s *Store) ResolveName(name string) ([]string, bool, error) {
	if err := s.live(); err != nil {
		return nil, false, err
	}
	ais, err := aciinfosWithName(s.db.q, name)
	if err != nil {
		return nil, false, wrap(err, "resolve name %q", name)
	}
	keys := make([]string, len(ais))
	for i, ai := range ais {
		keys[i] = ai.BlobKey
	}
	return keys, len(keys) > 0, nil
}

// ReadStream returns the uncompressed image tar of key (a full key or an
// unambiguous prefix) and records the image as used now. The caller closes
// it. The stream stays readable even if the image is removed meanwhile.
func (s *Store) ReadStream(key string) (io.ReadCloser, error) {
	key, err := s.ResolveKey(key)
	if err != nil {
		return nil, wrap(err, "read image")
	}
	kl, err := lockKey(s.lockDir, key, false)
	if err != nil {
		return nil, wrap(err, "read image")
	}
	defer kl.unlock()

	f, err := os.Open(s.blobPath(key))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("read image %s: blob missing: %w", key, ErrKeyNotFound)
		}
		return nil, wrap(err, "read image %s", key)
	}
	err = s.db.doRelaxed(func(tx *sql.Tx) error {
		now := time.Now()
		res, err := tx.Exec(`UPDATE aciinfo SET lastused = ? WHERE blobkey = ?`, dbTime{&now}, key)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrKeyNotFound
		}
		return nil
	})
	if isDiskFull(err) {
		// LastUsed is a hint for GC; a full disk must not stop reads.
		err = nil
	}
	if err != nil {
		f.Close()
		return nil, wrap(err, "read image %s", key)
	}
	return f, nil
}

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
	in, err := s.ingest(r)
	if err != nil {
		return "", wrap(err, "write image")
	}
	defer in.file.release()
	key := in.key

	imj, err := json.Marshal(in.manifest)
	if err != nil {
		return "", wrap(err, "write image %s: encode manifest", key)
	}
	// The manifest is a copy of the one inside the blob, but Verify and
	// every reader expect it whole: it is made durable like the blob.
	mf, err := s.writeTemp(imj)
	if err != nil {
		return "", wrap(err, "write image %s", key)
	}
	defer mf.release()

	kl, err := lockKey(s.lockDir, key, true)
	if err != nil {
		return "", wrap(err, "write image")
	}
	defer kl.unlock()
	if err := s.beginIntent(key); err != nil {
		return "", wrap(err, "write image")
	}
	committed := false
	defer func() {
		if !committed {
			s.unpublishLocked(key)
		}
	}()
	hit("write-intent")
	// The row is what makes an image exist, so a new blob may be renamed
	// into place before its fsync: until the row commits nobody reads it,
	// and a crash leaves an orphan that the intent lets recovery remove.
	// One fsync after the rename then makes the data, the inode and the
	// rename durable in one journal commit, and the directory's fsync finds
	// little left to do. A blob that replaces a committed one (the image
	// written again) is fsynced first, as it must never be seen torn.
	// The manifest goes the same way.
	replacing, err := hasACIInfo(s.db.q, key)
	if err != nil {
		return "", wrap(err, "write image %s", key)
	}
	if replacing {
		if err := in.file.Sync(); err != nil {
			return "", wrap(err, "write image %s: sync", key)
		}
		if err := fdatasync(mf.File); err != nil {
			return "", wrap(err, "write image %s: sync manifest", key)
		}
	}
	blob, manifest := s.blobPath(key), s.manifestPath(key)
	if err := rename(in.file, blob); err != nil {
		return "", wrap(err, "write image %s: publish blob", key)
	}
	hit("write-blob-renamed")
	if err := rename(mf, manifest); err != nil {
		return "", wrap(err, "write image %s: publish manifest", key)
	}
	hit("write-manifest-renamed")
	if !replacing {
		if err := in.file.Sync(); err != nil {
			return "", wrap(err, "write image %s: sync", key)
		}
		if err := fdatasync(mf.File); err != nil {
			return "", wrap(err, "write image %s: sync manifest", key)
		}
	}
	// The names: the intent before the blob's, so that a blob never
	// outlives a power cut without a row or an intent; the manifest's so
	// that the row never finds it missing. On ext4 and xfs the fsyncs
	// above already committed them and these find nothing left to do.
	for _, d := range []string{s.tmpDir, filepath.Dir(manifest), filepath.Dir(blob)} {
		if err := syncDir(d); err != nil {
			return "", wrap(err, "write image %s: sync", key)
		}
	}
	now := time.Now()
	err = s.db.do(func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO aciinfo (`+aciinfoColumns+`) VALUES (?, ?, ?, ?, ?, ?, 0)
			ON CONFLICT (blobkey) DO UPDATE SET name = excluded.name, importtime = excluded.importtime,
				lastused = excluded.lastused, latest = excluded.latest, size = excluded.size`,
			key, in.manifest.Name.String(), dbTime{&now}, dbTime{&now}, fetchInfo.Latest, in.size)
		if err != nil {
			return err
		}
		if err := writeLabels(tx, key, in.manifest.Name.String(), in.manifest.Labels); err != nil {
			return err
		}
		hit("write-in-transaction")
		return nil
	})
	if err != nil {
		return "", wrap(err, "write image %s: record", key)
	}
	committed = true
	hit("write-committed")
	s.endIntent(key)
	return key, nil
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
	found, err := hasACIInfo(s.db.q, key)
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
func rename(f *ingestFile, dst string) error {
	if err := mkdirShared(filepath.Dir(dst)); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), dst); err != nil {
		return err
	}
	f.done = true
	return nil
}

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
	if found, err := hasACIInfo(s.db.q, key); err != nil || !found {
		if err == nil {
			err = ErrKeyNotFound
		}
		return wrap(err, "remove image %s", key)
	}
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
		hit("remove-in-transaction")
		return nil
	})
	if err != nil {
		s.endIntent(key)
		return wrap(err, "remove image %s", key)
	}
	hit("remove-committed")
	s.cache.drop(key)

	// Neither the intent nor the removal of the files is fsynced: that
	// cost two more journal commits per removal (2.6 times slower), and
	// on ext4 and xfs the journal keeps them in order. Where it does not,
	// a power cut can leave the files of a removed image as orphans (the
	// README's caveats; TestPowerCut, model B).
	errs := s.removeFiles(key, false, func() { hit("remove-blob-removed") })
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

// GetImageManifestJSON gets the ImageManifest JSON bytes with the specified
// key (a full key or an unambiguous prefix).
func (s *Store) GetImageManifestJSON(key string) ([]byte, error) {
	imj, _, err := s.manifest(key, false)
	return imj, err
}

// GetImageManifest gets the ImageManifest with the specified key.
func (s *Store) GetImageManifest(key string) (*schema.ImageManifest, error) {
	_, im, err := s.manifest(key, true)
	return im, err
}

// manifest reads the stored manifest of key, and parses it when parse is
// set (else it only checks that the JSON is whole). Manifests are replaced
// only by atomic renames, so the read needs no lock. The manifest file is
// a copy of the manifest inside the blob; one found missing or torn (by a
// bad disk, or a power cut under an older version that did not fsync it)
// is rewritten from the blob, under the key's lock.
func (s *Store) manifest(key string, parse bool) ([]byte, *schema.ImageManifest, error) {
	key, err := s.ResolveKey(key)
	if err != nil {
		return nil, nil, wrap(err, "read manifest")
	}
	if imj, im, ok := s.readManifestFile(key, parse); ok {
		return imj, im, nil
	}
	kl, err := lockKey(s.lockDir, key, false)
	if err != nil {
		return nil, nil, wrap(err, "read manifest")
	}
	defer kl.unlock()
	if !s.HasFullKey(key) {
		return nil, nil, fmt.Errorf("read manifest %s: %w", key, ErrKeyNotFound) // removed meanwhile
	}
	s.cache.drop(key)
	if imj, im, ok := s.readManifestFile(key, parse); ok {
		return imj, im, nil
	}
	imj, im, err := s.healManifest(key)
	if err != nil {
		return nil, nil, wrap(err, "read manifest %s", key)
	}
	return imj, im, nil
}

func (s *Store) readManifestFile(key string, parse bool) ([]byte, *schema.ImageManifest, bool) {
	imj, cached := s.cache.get(key)
	if !cached {
		var err error
		if imj, err = s.manifests.Read(key); err != nil {
			return nil, nil, false
		}
	}
	var im *schema.ImageManifest
	var err error
	if parse || !cached {
		// Parse what comes from the disk even when only the JSON is
		// asked for: a torn file must be rewritten, not served or cached.
		if im, err = parseManifest(imj); err != nil {
			return nil, nil, false
		}
	}
	if !cached {
		s.cache.put(key, imj)
	}
	return append([]byte(nil), imj...), im, true
}

// healManifest rewrites the manifest file of key from its blob. The key is
// locked (shared is enough: concurrent healers write the same bytes, each
// by an atomic rename).
func (s *Store) healManifest(key string) ([]byte, *schema.ImageManifest, error) {
	bkey, _, im, err := inspectBlob(s.blobPath(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("blob missing: %w", ErrKeyNotFound)
	}
	if err != nil {
		return nil, nil, err
	}
	if bkey != key {
		return nil, nil, fmt.Errorf("blob is corrupt: it hashes to %s", bkey)
	}
	imj, err := json.Marshal(im)
	if err != nil {
		return nil, nil, err
	}
	if err := s.replaceManifest(key, imj); err != nil && !isDiskFull(err) {
		return nil, nil, err // on a full disk the blob's copy is served unwritten
	}
	return imj, im, nil
}

// replaceManifest writes the manifest file of key by atomic rename, synced
// first: a power cut must not turn a healed manifest into a torn one.
func (s *Store) replaceManifest(key string, imj []byte) error {
	mf, err := s.writeTemp(imj)
	if err != nil {
		return err
	}
	defer mf.release()
	if err := fdatasync(mf.File); err != nil {
		return err
	}
	return rename(mf, s.manifestPath(key))
}

// GetACI retrieves the ACI that best matches the provided app name and
// labels. The returned value is the blob store key of the retrieved ACI.
// If there are multiple matching ACIs choose the latest one (defined as the
// last one imported in the store). If no version label is requested, ACIs
// marked as latest in the ACIInfo are preferred. When none matches, the
// error is an ACINotFoundError.
func (s *Store) GetACI(name types.ACIdentifier, labels types.Labels) (string, error) {
	if err := s.live(); err != nil {
		return "", err
	}
	key, err := bestMatch(s.db.q, name.String(), labels)
	if err != nil {
		return "", err
	}
	if key == "" {
		return "", ACINotFoundError{name: name, labels: labels}
	}
	return key, nil
}

// GetRemote tries to retrieve a remote with the given ACIURL. If remote
// doesn't exist, it returns ErrRemoteNotFound error.
func (s *Store) GetRemote(aciURL string) (*Remote, error) {
	if err := s.live(); err != nil {
		return nil, err
	}
	return getRemote(s.db.q, aciURL)
}

// WriteRemote adds or updates the provided Remote.
func (s *Store) WriteRemote(remote *Remote) error {
	if err := s.live(); err != nil {
		return err
	}
	if err := checkRemote(remote); err != nil {
		return err
	}
	return s.db.do(func(tx *sql.Tx) error { return WriteRemote(tx, remote) })
}

// GetAllRemotes returns every remote, ordered by ACI URL.
func (s *Store) GetAllRemotes() ([]*Remote, error) {
	if err := s.live(); err != nil {
		return nil, err
	}
	return allRemotes(s.db.r)
}

// GetAllACIInfos returns every ACIInfo, sorted by sortfields (column names,
// see the GetAllACIInfos function) in ascending or descending order.
func (s *Store) GetAllACIInfos(sortfields []string, ascending bool) ([]*ACIInfo, error) {
	if err := s.live(); err != nil {
		return nil, err
	}
	return allACIInfos(s.db.q, sortfields, ascending)
}

// GetACIInfoWithBlobKey returns the ACIInfo of a full key; an unknown key is
// an error that matches ErrKeyNotFound.
func (s *Store) GetACIInfoWithBlobKey(blobKey string) (*ACIInfo, error) {
	if err := s.live(); err != nil {
		return nil, err
	}
	if err := checkFullKey(blobKey); err != nil {
		return nil, err
	}
	ai, found, err := aciinfoWithBlobKey(s.db.q, blobKey)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("ACI info not found with blob key %q: %w", blobKey, ErrKeyNotFound)
	}
	return ai, nil
}

// HasFullKey returns whether the image with the given key exists in the
// store. Anything that is not a full key (including malformed input, on
// which rkt panicked) returns false. The database row is what makes an image
// exist: it commits after the files are in place.
func (s *Store) HasFullKey(key string) bool {
	if s.live() != nil || checkFullKey(key) != nil {
		return false
	}
	found, err := hasACIInfo(s.db.q, key)
	return err == nil && found
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
			val, err := readHead(keyPath(ds, key), 128)
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
