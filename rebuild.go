//go:build unix

// This file holds Rebuild: a database recreated from the blobs, the old
// one set aside, and the checks that tell when a store needs it.

package store

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// ErrNeedsRebuild is returned by NewStore when the store's database is
// corrupt, or missing while blob/ holds images. Rebuild recreates the
// database from the blobs. (A store written by rkt gets ErrNeedsAdoption,
// which matches ErrNeedsRebuild too.)
var ErrNeedsRebuild = errors.New("the store's database must be rebuilt from its images: run store.Rebuild (imagestore rebuild)")

// RebuildReport is what Rebuild did.
type RebuildReport struct {
	// Images are the keys recorded in the new database.
	Images []string
	// Skipped are the blobs that could not be imported: they hash to
	// another key, or are not valid images. Their files are left alone.
	Skipped []Problem
	// OldDatabase is where the previous database files were moved, "" if
	// there were none.
	OldDatabase string
}

// Rebuild recreates the database of the store in dir from its blob store:
// every blob is re-hashed and checked against its name, its manifest read
// from the tar (and the manifest file rewritten from it when different),
// and a row recorded with the file's modification time as ImportTime and
// LastUsed. Remotes and latest marks are not in the blobs and are lost.
//
// The previous database, if any, is moved aside into
// db-backups/broken-<time>/ (or previous-<time>/ when it was readable),
// never deleted. Rebuild needs the store to
// itself: it waits up to 30 s for other processes to close it.
//
// A store written by rkt and not yet adopted is refused with
// ErrNeedsAdoption, before anything is changed: Adopt keeps what rkt
// recorded, which Rebuild would lose.
func Rebuild(dir string) (*RebuildReport, error) {
	s, err := createLocked(dir)
	if err != nil {
		return nil, wrap(err, "rebuild")
	}
	dir = s.dir
	defer s.storeLock.close()
	// store lock, exclusive (lock 1, doc.go "Locks")
	if _, err := s.storeLock.exclusive(migrateLockWait, func() bool { return false }); err != nil {
		return nil, wrap(err, "rebuild")
	}

	r := &RebuildReport{}
	if r.OldDatabase, err = moveDatabaseAside(dir); err != nil {
		return nil, wrap(err, "rebuild")
	}
	if s.db, err = openDB(dbPath(dir)); err != nil {
		return nil, wrap(err, "rebuild")
	}
	defer s.db.close()
	if err := s.db.do(func(tx *sql.Tx) error { return migrate(tx, s.migrateEnv()) }); err != nil {
		return nil, wrap(err, "rebuild")
	}

	files, err := listStored(s.blobs.BasePath)
	if err != nil {
		return nil, wrap(err, "rebuild")
	}
	err = s.db.do(func(tx *sql.Tx) error {
		for _, f := range files {
			if err := s.rebuildOne(tx, r, f); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, wrap(err, "rebuild")
	}
	return r, nil
}

// rebuildOne records the blob f in the new database, if it is sound.
func (s *Store) rebuildOne(tx *sql.Tx, r *RebuildReport, f storedFile) error {
	ai, p, err := s.recordBlob(tx, f, nil)
	switch {
	case err != nil:
		return err
	case p != nil:
		r.Skipped = append(r.Skipped, *p)
	default:
		r.Images = append(r.Images, ai.BlobKey)
	}
	return nil
}

// recordBlob re-hashes the blob f, checks it against its key and records
// it, with its label rows, in tx. The row is a copy of row, the previous
// owner's record of the image (Adopt), with the name and size taken from
// the blob; without one (Rebuild) it gets the file's modification time as
// ImportTime and LastUsed and no latest mark. The manifest file is
// rewritten from the blob when it differs. A blob that cannot be recorded
// comes back as a Problem, with nothing written for it.
func (s *Store) recordBlob(tx *sql.Tx, f storedFile, row *ACIInfo) (*ACIInfo, *Problem, error) {
	problem := func(kind ProblemKind, format string, args ...any) (*ACIInfo, *Problem, error) {
		return nil, &Problem{Kind: kind, Key: f.key, Path: f.path, Detail: fmt.Sprintf(format, args...)}, nil
	}
	if f.key == "" {
		return problem(ProblemStrayFile, "not named by a key")
	}
	key, size, im, err := inspectBlob(f.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return problem(ProblemBlobMissing, "no blob file")
	case err != nil:
		return problem(ProblemBlobCorrupt, "%v", err)
	case key != f.key:
		return problem(ProblemBlobCorrupt, "content hashes to %s", key)
	}
	imj, err := json.Marshal(im)
	if err != nil {
		return nil, nil, err
	}
	if old, err := os.ReadFile(s.manifestPath(key)); err != nil || string(old) != string(imj) {
		if err := s.replaceManifest(key, imj); err != nil {
			return nil, nil, err
		}
	}
	var ai ACIInfo
	if row != nil {
		ai = *row
	} else {
		fi, err := os.Stat(f.path)
		if err != nil {
			return nil, nil, err
		}
		ai.ImportTime, ai.LastUsed = fi.ModTime(), fi.ModTime()
	}
	ai.BlobKey, ai.Name, ai.Size = key, im.Name.String(), size
	if err := WriteACIInfo(tx, &ai); err != nil {
		return nil, nil, err
	}
	if err := writeLabels(tx, key, ai.Name, im.Labels); err != nil {
		return nil, nil, err
	}
	return &ai, nil, nil
}

// moveDatabaseAside moves db/store.db and its -wal and -shm files into
// db-backups/broken-<time>/, or db-backups/previous-<time>/ when the
// database could be read (a rebuild of a healthy store), and returns that
// directory ("" if there was no database).
func moveDatabaseAside(dir string) (string, error) {
	db := dbPath(dir)
	var present []string
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if fileExists(db + suffix) {
			present = append(present, db+suffix)
		}
	}
	if len(present) == 0 {
		return "", nil
	}
	kind := "broken-"
	if databaseReadable(db) {
		kind = "previous-"
	}
	aside := filepath.Join(newLayout(dir).backupsDir(), kind+time.Now().UTC().Format("20060102T150405.000000000Z"))
	if err := mkdirShared(aside); err != nil {
		return "", err
	}
	for _, p := range present {
		if err := os.Rename(p, filepath.Join(aside, filepath.Base(p))); err != nil {
			return "", err
		}
	}
	return aside, syncDir(filepath.Dir(db))
}

// databaseReadable reports whether the database at path opens read-only
// and has a schema version this library knows.
func databaseReadable(path string) bool {
	d := sql.OpenDB(connector{dsn: dsn(path, readConn)})
	defer d.Close()
	v, err := schemaVersion(d)
	return err == nil && v >= 1 && v <= dbVersion
}

// needsRebuild explains why a database that NewStore could not read, or
// found empty, must be rebuilt, or returns nil when it need not.
func (s *Store) needsRebuild(dbErr error) error {
	if dbErr != nil {
		if sqliteUnreadable(dbErr) || errors.Is(dbErr, syscall.EIO) {
			return fmt.Errorf("%w (the database is unreadable: %v)", ErrNeedsRebuild, dbErr)
		}
		return nil
	}
	if fileExists(s.rktDBPath()) {
		return fmt.Errorf("%w (this is a store written by rkt: its images are kept, its ql database is not read)", ErrNeedsRebuild)
	}
	if hasAnyFile(s.blobs.BasePath) {
		return fmt.Errorf("%w (the database is missing but blob/ holds images)", ErrNeedsRebuild)
	}
	return nil
}

// hasAnyFile reports whether the tree under base holds a regular file,
// stopping at the first.
func hasAnyFile(base string) bool {
	found := errors.New("found")
	err := filepath.WalkDir(base, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			return found
		}
		return nil
	})
	return err == found
}
