// Package rkt reads the metadata database of an image store written by rkt
// (db/ql.db, rkt v1.x, schema version 7) and adopts such a store into
// github.com/imagestore/imagestore with everything rkt recorded about it.
//
// It is a package of its own so that programs that never adopt an rkt
// store do not link modernc.org/ql, the pure-Go reader of rkt's database.
//
// rkt's database is never opened in place: ql opens its files read-write
// and creates a write-ahead log and a lock file beside them. The database
// (and its write-ahead log, when it holds anything) is copied, under rkt's
// own locks, into a private temporary directory, and the copy is read.
// Nothing is created or changed in the rkt store by reading it.
package rkt

import (
	"crypto/sha1"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	store "github.com/imagestore/imagestore"
	"modernc.org/ql"
)

var (
	// ErrCorruptDB is returned when rkt's database cannot be read: it is
	// not a ql database, is damaged, or lacks rkt's tables.
	ErrCorruptDB = errors.New("rkt's database db/ql.db cannot be read")

	// ErrUnsupportedVersion is returned when rkt's database has a schema
	// version other than 7, the one rkt v1.30.0 writes (rkt migrates an
	// older store when it opens it).
	ErrUnsupportedVersion = errors.New("rkt's database has an unsupported schema version")
)

// SchemaVersion is the version of rkt's schema this package reads: rkt
// v1.30.0's (tables version, aciinfo and remote).
const SchemaVersion = 7

const dbFileName = "ql.db"

// lockWait bounds how long rkt's locks are waited for (a variable for the
// tests).
var lockWait = 30 * time.Second

func init() { ql.RegisterDriver() }

// Adopt adopts the rkt store in dir (what rkt keeps as /var/lib/rkt/cas):
// store.Adopt with the rows of rkt's database, read while store.Adopt
// holds rkt's store lock exclusively and this package rkt's database lock.
// See store.Adopt for what is kept and checked. rkt must not use the
// directory afterwards.
func Adopt(dir string) (*store.AdoptReport, error) {
	return store.Adopt(dir, readDBLocked)
}

// ReadDB returns every image row and every remote of rkt's database in the
// store at dir, exactly as rkt recorded them (times to the nanosecond, in
// the zone rkt stored them in). It holds rkt's store lock (shared, as a
// running rkt does) and its database lock (exclusive, as each rkt
// transaction does) while it copies the database.
func ReadDB(dir string) ([]*store.ACIInfo, []*store.Remote, error) {
	l, err := lockDir(dir, false)
	if err != nil {
		return nil, nil, err
	}
	defer l.Close()
	return readDBLocked(dir)
}

// readDBLocked is ReadDB for a caller that holds rkt's store lock.
func readDBLocked(dir string) ([]*store.ACIInfo, []*store.Remote, error) {
	tmp, err := os.MkdirTemp("", "imagestore-rkt-")
	if err != nil {
		return nil, nil, fmt.Errorf("read rkt database: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := copyDB(filepath.Join(dir, "db"), tmp); err != nil {
		return nil, nil, fmt.Errorf("read rkt database: %w", err)
	}
	return readCopy(filepath.Join(tmp, dbFileName))
}

// walName is the name of ql's write-ahead log of the database file name:
// "." and the SHA-1 of the name, in the same directory.
func walName(name string) string {
	return fmt.Sprintf(".%x", sha1.Sum([]byte(name)))
}

// copyDB copies rkt's database, and its write-ahead log when that is not
// empty, from dbDir to dst, holding rkt's database lock: an flock on the
// db/ directory, which rkt takes exclusively around each transaction.
func copyDB(dbDir, dst string) error {
	l, err := lockDir(dbDir, true)
	if err != nil {
		return err
	}
	defer l.Close()
	if err := copyFile(filepath.Join(dbDir, dbFileName), filepath.Join(dst, dbFileName)); err != nil {
		return err
	}
	wal := filepath.Join(dbDir, walName(dbFileName))
	fi, err := os.Stat(wal)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return err
	case fi.Size() == 0:
		return nil // what every commit leaves: nothing to replay
	}
	return copyFile(wal, filepath.Join(dst, walName(dbFileName)))
}

// copyFile copies the regular file src to a new file dst.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if fi, err := in.Stat(); err != nil {
		return err
	} else if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: %w: not a regular file", src, ErrCorruptDB)
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// readCopy reads the rows from a private copy of rkt's database. ql may
// panic on a damaged file: that is an ErrCorruptDB, not a crash.
func readCopy(path string) (images []*store.ACIInfo, remotes []*store.Remote, err error) {
	defer func() {
		if p := recover(); p != nil {
			images, remotes = nil, nil
			err = fmt.Errorf("read rkt database: %w: %v", ErrCorruptDB, p)
		}
	}()
	db, err := sql.Open("ql", path)
	if err != nil {
		return nil, nil, corrupt(err)
	}
	defer db.Close()
	tx, err := db.Begin()
	if err != nil {
		return nil, nil, corrupt(err)
	}
	defer tx.Rollback() // a read: nothing to commit
	if err := checkSchema(tx); err != nil {
		return nil, nil, err
	}
	if images, err = readImages(tx); err != nil {
		return nil, nil, corrupt(err)
	}
	if remotes, err = readRemotes(tx); err != nil {
		return nil, nil, corrupt(err)
	}
	return images, remotes, nil
}

func corrupt(err error) error {
	return fmt.Errorf("read rkt database: %w: %v", ErrCorruptDB, err)
}

// checkSchema checks that the database has rkt's tables at version 7.
func checkSchema(tx *sql.Tx) error {
	rows, err := tx.Query(`SELECT Name FROM __Table`)
	if err != nil {
		return corrupt(err)
	}
	tables := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return corrupt(err)
		}
		tables[name] = true
	}
	if err := rows.Err(); err != nil {
		return corrupt(err)
	}
	rows.Close()
	for _, t := range []string{"version", "aciinfo", "remote"} {
		if !tables[t] {
			return corrupt(fmt.Errorf("no table %s: not an rkt store database", t))
		}
	}
	var versions []int64
	rows, err = tx.Query(`SELECT version FROM version`)
	if err != nil {
		return corrupt(err)
	}
	defer rows.Close()
	for rows.Next() {
		var v sql.NullInt64
		if err := rows.Scan(&v); err != nil {
			return corrupt(err)
		}
		versions = append(versions, v.Int64)
	}
	if err := rows.Err(); err != nil {
		return corrupt(err)
	}
	if len(versions) != 1 {
		return corrupt(fmt.Errorf("the version table has %d rows, want 1", len(versions)))
	}
	if versions[0] != SchemaVersion {
		return fmt.Errorf("read rkt database: %w: %d, this reads %d (rkt v1.30.0's): open the store once with rkt v1.30.0, which migrates it",
			ErrUnsupportedVersion, versions[0], SchemaVersion)
	}
	return nil
}

// readImages reads every row of aciinfo. Columns that an old migration of
// rkt's left NULL read as their zero value, as their DEFAULT says.
func readImages(tx *sql.Tx) ([]*store.ACIInfo, error) {
	rows, err := tx.Query(`SELECT blobkey, name, importtime, lastused, latest, size, treestoresize FROM aciinfo`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*store.ACIInfo
	for rows.Next() {
		var (
			key, name           sql.NullString
			imported, used      sql.NullTime
			latest              sql.NullBool
			size, treeStoreSize sql.NullInt64
		)
		if err := rows.Scan(&key, &name, &imported, &used, &latest, &size, &treeStoreSize); err != nil {
			return nil, err
		}
		out = append(out, &store.ACIInfo{
			BlobKey:       key.String,
			Name:          name.String,
			ImportTime:    imported.Time,
			LastUsed:      used.Time,
			Latest:        latest.Bool,
			Size:          size.Int64,
			TreeStoreSize: treeStoreSize.Int64,
		})
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].BlobKey < out[j].BlobKey })
	return out, nil
}

// readRemotes reads every row of remote.
func readRemotes(tx *sql.Tx) ([]*store.Remote, error) {
	rows, err := tx.Query(`SELECT aciurl, sigurl, etag, blobkey, cachemaxage, downloadtime FROM remote`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*store.Remote
	for rows.Next() {
		var (
			aciURL, sigURL, etag, key sql.NullString
			maxAge                    sql.NullInt64
			downloaded                sql.NullTime
		)
		if err := rows.Scan(&aciURL, &sigURL, &etag, &key, &maxAge, &downloaded); err != nil {
			return nil, err
		}
		out = append(out, &store.Remote{
			ACIURL:       aciURL.String,
			SigURL:       sigURL.String,
			ETag:         etag.String,
			BlobKey:      key.String,
			CacheMaxAge:  int(maxAge.Int64),
			DownloadTime: downloaded.Time,
		})
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ACIURL < out[j].ACIURL })
	return out, nil
}
