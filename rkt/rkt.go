//go:build unix

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

// readCopy reads the rows from a private copy of rkt's database. It uses
// ql's own API rather than its database/sql driver: the driver runs each
// query on a goroutine of its own, where a panic of ql's on a damaged file
// would end the process. Here one is recovered as an ErrCorruptDB.
func readCopy(path string) (images []*store.ACIInfo, remotes []*store.Remote, err error) {
	defer func() {
		if p := recover(); p != nil {
			images, remotes = nil, nil
			err = fmt.Errorf("read rkt database: %w: %v", ErrCorruptDB, p)
		}
	}()
	db, err := ql.OpenFile(path, &ql.Options{})
	if err != nil {
		return nil, nil, corrupt(err)
	}
	defer db.Close() // a copy, only read: nothing to keep
	if err := checkSchema(db); err != nil {
		return nil, nil, err
	}
	if images, err = readImages(db); err != nil {
		return nil, nil, corrupt(err)
	}
	if remotes, err = readRemotes(db); err != nil {
		return nil, nil, corrupt(err)
	}
	return images, remotes, nil
}

func corrupt(err error) error {
	return fmt.Errorf("read rkt database: %w: %v", ErrCorruptDB, err)
}

// query runs one SELECT and returns its rows, each with want columns.
func query(db *ql.DB, q string, want int) ([][]any, error) {
	rss, _, err := db.Run(nil, q)
	if err != nil {
		return nil, err
	}
	if len(rss) != 1 {
		return nil, fmt.Errorf("%s: %d record sets", q, len(rss))
	}
	rows, err := rss[0].Rows(-1, 0)
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		if len(r) != want {
			return nil, fmt.Errorf("%s: a row of %d columns, want %d", q, len(r), want)
		}
	}
	return rows, nil
}

// checkSchema checks that the database has rkt's tables at version 7.
func checkSchema(db *ql.DB) error {
	rows, err := query(db, `SELECT Name FROM __Table`, 1)
	if err != nil {
		return corrupt(err)
	}
	tables := map[string]bool{}
	for _, r := range rows {
		if name, ok := r[0].(string); ok {
			tables[name] = true
		}
	}
	for _, t := range []string{"version", "aciinfo", "remote"} {
		if !tables[t] {
			return corrupt(fmt.Errorf("no table %s: not an rkt store database", t))
		}
	}
	rows, err = query(db, `SELECT version FROM version`, 1)
	if err != nil {
		return corrupt(err)
	}
	if len(rows) != 1 {
		return corrupt(fmt.Errorf("the version table has %d rows, want 1", len(rows)))
	}
	var v int64
	if err := scan(rows[0], &v); err != nil {
		return corrupt(fmt.Errorf("version: %v", err))
	}
	if v != SchemaVersion {
		return fmt.Errorf("read rkt database: %w: %d, this reads %d (rkt v1.30.0's): open the store once with rkt v1.30.0, which migrates it",
			ErrUnsupportedVersion, v, SchemaVersion)
	}
	return nil
}

// scan copies the values of a row into dsts (*string, *int64, *bool or
// *time.Time). NULL, which columns added by rkt's migrations may hold in
// old rows, reads as the zero value, as the columns' DEFAULT says.
func scan(row []any, dsts ...any) error {
	for i, dst := range dsts {
		v := row[i]
		if v == nil {
			continue
		}
		ok := false
		switch d := dst.(type) {
		case *string:
			*d, ok = v.(string)
		case *int64:
			*d, ok = v.(int64)
		case *bool:
			*d, ok = v.(bool)
		case *time.Time:
			*d, ok = v.(time.Time)
		}
		if !ok {
			return fmt.Errorf("column %d holds a %T, want a %T", i, v, dst)
		}
	}
	return nil
}

// readImages reads every row of aciinfo.
func readImages(db *ql.DB) ([]*store.ACIInfo, error) {
	rows, err := query(db, `SELECT blobkey, name, importtime, lastused, latest, size, treestoresize FROM aciinfo`, 7)
	if err != nil {
		return nil, err
	}
	out := make([]*store.ACIInfo, 0, len(rows))
	for _, r := range rows {
		ai := &store.ACIInfo{}
		if err := scan(r, &ai.BlobKey, &ai.Name, &ai.ImportTime, &ai.LastUsed, &ai.Latest, &ai.Size, &ai.TreeStoreSize); err != nil {
			return nil, fmt.Errorf("aciinfo row %q: %v", ai.BlobKey, err)
		}
		out = append(out, ai)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].BlobKey < out[j].BlobKey })
	return out, nil
}

// readRemotes reads every row of remote.
func readRemotes(db *ql.DB) ([]*store.Remote, error) {
	rows, err := query(db, `SELECT aciurl, sigurl, etag, blobkey, cachemaxage, downloadtime FROM remote`, 6)
	if err != nil {
		return nil, err
	}
	out := make([]*store.Remote, 0, len(rows))
	for _, row := range rows {
		r := &store.Remote{}
		var maxAge int64
		if err := scan(row, &r.ACIURL, &r.SigURL, &r.ETag, &r.BlobKey, &maxAge, &r.DownloadTime); err != nil {
			return nil, fmt.Errorf("remote row %q: %v", r.ACIURL, err)
		}
		r.CacheMaxAge = int(maxAge)
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ACIURL < out[j].ACIURL })
	return out, nil
}
