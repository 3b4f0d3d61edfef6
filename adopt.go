//go:build unix

// This file holds the adoption of an rkt store: its rows, read by the
// caller (package rkt), checked against the blobs and recorded in a new
// database.

package store

import (
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// Adoption. rkt's store (/var/lib/rkt/cas) has the same blob/,
// imageManifest/ and imagelocks/ layout as this library's, and keeps what
// it knows about the images (import and last-use times, latest marks, tree
// store sizes, remotes) in a ql database, db/ql.db. Adopt carries every
// row of that database over into db/store.db, checking each against its
// blob. This package does not read ql: the rows come from an AdoptSource,
// such as the one in package github.com/imagestore/imagestore/rkt, so that
// programs that never adopt do not link a second database engine.
//
// A store is adopted once db/store.db exists and is not empty: Adopt
// builds the new database beside it and renames it into place last, so
// that an adoption cut short leaves an unadopted rkt store that Adopt can
// start again.

// ErrNeedsAdoption is returned by NewStore, Rebuild and every other
// function that opens a store, when the directory is a store written by rkt
// that has not been adopted yet (db/ql.db and no db/store.db). Nothing is
// created in the directory. Adopt it with rkt.Adopt (imagestore adopt).
// It also matches ErrNeedsRebuild, which NewStore returned for such a store
// before adoption kept rkt's records; Rebuild now refuses such a store
// with this error, so a caller that rebuilds on ErrNeedsRebuild loses
// nothing.
var ErrNeedsAdoption error = &aliasError{
	msg:  "this is a store written by rkt that has not been adopted yet: run rkt.Adopt (imagestore adopt) to keep its images with everything rkt recorded about them",
	also: ErrNeedsRebuild,
}

// aliasError is a sentinel error that also matches another sentinel.
type aliasError struct {
	msg  string
	also error
}

func (e *aliasError) Error() string        { return e.msg }
func (e *aliasError) Is(target error) bool { return target == e.also }

// adopting is the name of the database Adopt builds before it renames it
// to db/store.db.
const adoptingDBFileName = "adopting.db"

// isAdopted reports whether dir has a database of this library: a
// db/store.db that is not empty (an empty one is what versions before
// adoption created when they opened an rkt store, and holds nothing).
func isAdopted(dir string) bool {
	fi, err := os.Stat(dbPath(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return false
	}
	return err != nil || fi.Size() > 0 // an unreadable one is reported by its opener
}

// checkAdopted returns ErrNeedsAdoption when dir is an rkt store that has
// not been adopted. It only looks.
func checkAdopted(dir string) error {
	if fileExists(rktDBPath(dir)) && !isAdopted(dir) {
		return fmt.Errorf("%s: %w", dir, ErrNeedsAdoption)
	}
	return nil
}

// AdoptSource reads what rkt recorded about the store in dir: every image
// row and every remote, exactly as rkt had them. Adopt calls it once, with
// the store locked exclusively (rkt's store lock), before it changes
// anything; an error from it leaves the directory as it was.
type AdoptSource func(dir string) (images []*ACIInfo, remotes []*Remote, err error)

// AdoptReport is what Adopt did.
type AdoptReport struct {
	// AlreadyAdopted is set when the store had been adopted before (it has
	// a db/store.db): Adopt then changed nothing and the lists are empty.
	AlreadyAdopted bool
	// Images are the keys adopted with rkt's row: every field kept, but
	// for Corrected ones.
	Images []string
	// Remotes are the ACI URLs of the remotes adopted, every field kept.
	Remotes []string
	// FromBlobs are the keys of blobs rkt had no row for, adopted from the
	// blob alone as Rebuild does: the file's time as ImportTime and
	// LastUsed, no latest mark, no tree store size.
	FromBlobs []string
	// Corrected are rows adopted with a field taken from their blob
	// instead (name-mismatch, size-mismatch).
	Corrected []Problem
	// SkippedImages are rows and files not adopted, and why: blob-missing,
	// blob-corrupt (the blob does not hash to its key, or is not an
	// image), stray-file (a file not named by a key, left in place), or
	// invalid-row (a key that is not a full key, a duplicate row).
	SkippedImages []Problem
	// SkippedRemotes are the remotes not adopted, and why (most often:
	// their image was skipped).
	SkippedRemotes []SkippedRemote
	// OldDatabase is where an empty db/store.db, left by an earlier
	// version that opened the rkt store, was moved ("" if there was none).
	OldDatabase string
}

// SkippedRemote is a remote that Adopt left out.
type SkippedRemote struct {
	ACIURL  string
	BlobKey string
	Reason  string
}

// ProblemInvalidRow: a row of the previous owner's database that cannot be
// adopted as it is (its key is not a full key, or is there twice).
const ProblemInvalidRow ProblemKind = "invalid-row"

// Adopt makes the rkt store in dir a store of this library, keeping what
// rkt knew about its images: the rows read by read (ACIInfos with their
// ImportTime, LastUsed, Latest and TreeStoreSize; remotes with every
// field) are recorded as they are, once each row's blob has been re-hashed
// and found to match its key. A row whose blob is missing or does not
// match is skipped, and so are the remotes that point at an image not
// adopted; a blob without a row is adopted from the blob alone, as Rebuild
// does. All are listed in the report. Every directory in the store then
// gets the store's mode (2770) and every file 0660, so that a group can
// share the store; rkt left its blobs 0600.
//
// db/ql.db is read, never written, and left in place; rkt must not use the
// directory afterwards, as the two databases would diverge. Adopt needs the
// store to itself (rkt holds a shared lock on the directory while it uses
// it): it waits up to 30 s. If read fails, or dir has no db/ql.db, nothing
// in dir is changed. A store adopted already is left alone, with
// AlreadyAdopted set.
func Adopt(dir string, read AdoptSource) (*AdoptReport, error) {
	s, err := unopenedStore(dir)
	if err != nil {
		return nil, wrap(err, "adopt")
	}
	dir = s.dir
	if isAdopted(dir) {
		return &AdoptReport{AlreadyAdopted: true}, nil
	}
	if read == nil {
		return nil, fmt.Errorf("adopt: %w: no AdoptSource", ErrInvalidArgument)
	}
	if _, err := os.Stat(rktDBPath(dir)); err != nil {
		return nil, fmt.Errorf("adopt %s: no rkt database: %w", dir, err)
	}
	// store lock (lock 1, doc.go "Locks")
	if s.storeLock, err = lockStore(dir); err != nil {
		return nil, wrap(err, "adopt")
	}
	defer s.storeLock.close()
	locked, err := s.storeLock.exclusive(migrateLockWait, func() bool { return isAdopted(dir) })
	if err != nil {
		return nil, wrap(err, "adopt %s", dir)
	}
	if !locked || isAdopted(dir) { // by another process while we waited
		return &AdoptReport{AlreadyAdopted: true}, nil
	}
	images, remotes, err := read(dir)
	if err != nil {
		return nil, wrap(err, "adopt %s", dir)
	}

	// Nothing has changed in dir so far; from here on the store is made.
	for _, d := range s.dirs() {
		if err := mkdirShared(d); err != nil {
			return nil, wrap(err, "adopt: create store directory")
		}
	}
	r := &AdoptReport{}
	if r.OldDatabase, err = moveDatabaseAside(dir); err != nil {
		return nil, wrap(err, "adopt")
	}
	adopting := filepath.Join(newLayout(dir).dbDir(), adoptingDBFileName)
	for _, suffix := range []string{"", "-wal", "-shm"} { // an adoption cut short
		if err := os.Remove(adopting + suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, wrap(err, "adopt")
		}
	}
	if err := s.adoptInto(adopting, r, images, remotes); err != nil {
		return nil, wrap(err, "adopt %s", dir)
	}
	// The database is whole in its file (adoptInto checkpointed it); the
	// WAL and -shm files that its connections keep (db.go) are not needed.
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := os.Remove(adopting + suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, wrap(err, "adopt")
		}
	}
	if err := shareModes(dir); err != nil {
		return nil, wrap(err, "adopt %s: set file modes", dir)
	}
	if err := os.Rename(adopting, dbPath(dir)); err != nil {
		return nil, wrap(err, "adopt %s", dir)
	}
	if err := syncDir(filepath.Dir(adopting)); err != nil {
		return nil, wrap(err, "adopt %s", dir)
	}
	return r, nil
}

// adoptInto builds the database at path from the rows and the blobs, and
// closes it, flushed.
func (s *Store) adoptInto(path string, r *AdoptReport, images []*ACIInfo, remotes []*Remote) (err error) {
	if s.db, err = openDB(path); err != nil {
		return err
	}
	defer func() {
		if cerr := s.db.close(); cerr != nil && err == nil {
			err = cerr
		}
		s.db = nil
	}()
	err = s.db.do(
		func(tx *sql.Tx) error { return migrate(tx, s.migrateEnv()) },
		func(tx *sql.Tx) error { return s.adoptRows(tx, r, images, remotes) },
	)
	if err != nil {
		return err
	}
	// Fold the WAL into the database file, so that the one file renamed
	// into place is the whole database.
	if _, err := s.db.writer.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return wrap(err, "checkpoint")
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// adoptRows records the rows whose blobs check out, then the blobs
// without a row, then the remotes whose image was adopted.
func (s *Store) adoptRows(tx *sql.Tx, r *AdoptReport, images []*ACIInfo, remotes []*Remote) error {
	files, err := listStored(s.blobs.BasePath)
	if err != nil {
		return err
	}
	adopted := map[string]bool{}
	seen := map[string]bool{}
	rows := append([]*ACIInfo(nil), images...)
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].BlobKey < rows[j].BlobKey })
	for _, row := range rows {
		if row == nil {
			continue
		}
		if err := checkFullKey(row.BlobKey); err != nil {
			r.SkippedImages = append(r.SkippedImages, Problem{Kind: ProblemInvalidRow, Key: row.BlobKey, Detail: err.Error()})
			continue
		}
		if seen[row.BlobKey] {
			r.SkippedImages = append(r.SkippedImages, Problem{Kind: ProblemInvalidRow, Key: row.BlobKey, Detail: "a second row for this key"})
			continue
		}
		seen[row.BlobKey] = true
		ai, p, err := s.recordBlob(tx, storedFile{path: s.blobPath(row.BlobKey), key: row.BlobKey}, row)
		if err != nil {
			return err
		}
		if p != nil {
			r.SkippedImages = append(r.SkippedImages, *p)
			continue
		}
		if ai.Name != row.Name {
			r.Corrected = append(r.Corrected, Problem{Kind: ProblemNameMismatch, Key: ai.BlobKey,
				Detail: fmt.Sprintf("rkt recorded name %q, the manifest says %q: the manifest's kept", row.Name, ai.Name)})
		}
		if ai.Size != row.Size {
			r.Corrected = append(r.Corrected, Problem{Kind: ProblemSizeMismatch, Key: ai.BlobKey,
				Detail: fmt.Sprintf("rkt recorded size %d, the blob has %d bytes: the blob's kept", row.Size, ai.Size)})
		}
		adopted[ai.BlobKey] = true
		r.Images = append(r.Images, ai.BlobKey)
	}
	for _, f := range files {
		if seen[f.key] {
			continue // its row was adopted, or skipped and reported
		}
		ai, p, err := s.recordBlob(tx, f, nil)
		if err != nil {
			return err
		}
		if p != nil {
			r.SkippedImages = append(r.SkippedImages, *p)
			continue
		}
		adopted[ai.BlobKey] = true
		r.FromBlobs = append(r.FromBlobs, ai.BlobKey)
	}
	for _, rem := range remotes {
		if rem == nil {
			continue
		}
		skip := func(format string, args ...any) {
			r.SkippedRemotes = append(r.SkippedRemotes, SkippedRemote{ACIURL: rem.ACIURL, BlobKey: rem.BlobKey, Reason: fmt.Sprintf(format, args...)})
		}
		switch {
		case rem.BlobKey == "":
			skip("it names no image")
		case !adopted[rem.BlobKey]:
			skip("its image %s was not adopted", rem.BlobKey)
		default:
			if err := checkRemote(rem); err != nil {
				skip("%v", err)
				continue
			}
			if _, err := getRemote(tx, rem.ACIURL); err == nil {
				skip("a second remote for this URL")
				continue
			}
			if err := WriteRemote(tx, rem); err != nil {
				return err
			}
			r.Remotes = append(r.Remotes, rem.ACIURL)
		}
	}
	return nil
}

// shareModes gives every directory of the store under dir the store's
// directory mode and every regular file there the store's file mode.
// Symbolic links and other files are left alone, and so is what others
// keep in dir: rkt's tree store (tree/, treestorelocks/) holds rendered
// trees whose modes are the images' and are covered by their hashes.
func shareModes(dir string) error {
	l := newLayout(dir)
	own := map[string]bool{}
	for _, d := range append(l.dirs(), l.backupsDir()) {
		own[d] = true
	}
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && filepath.Dir(p) == filepath.Clean(dir) && !own[p] {
			return fs.SkipDir
		}
		want := fs.FileMode(filePerm)
		switch {
		case d.IsDir():
			want = dirPerm
		case !d.Type().IsRegular():
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if fi.Mode()&(fs.ModePerm|fs.ModeSetgid|fs.ModeSetuid|fs.ModeSticky) == want&^fs.ModeDir {
			return nil
		}
		return os.Chmod(p, want)
	})
}
