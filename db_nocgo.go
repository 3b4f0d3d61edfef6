//go:build unix && !cgo

// This file holds what is particular to the pure-Go SQLite driver
// (modernc.org/sqlite): its settings and how it reports errors.

package store

import (
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"

	"modernc.org/sqlite"
)

// Without cgo the store uses modernc.org/sqlite, SQLite translated to Go,
// so that CGO_ENABLED=0 builds (static binaries) work. The schema, the SQL
// and the file format are the same as with go-sqlite3 (db_cgo.go): a store
// written by one build opens with the other. The store opens its
// connections through its own instance of the driver (db.go's connector),
// so it registers nothing and changes no other user of the driver.
var sqliteDriver driver.Driver = &sqlite.Driver{}

// SQLiteDriver names the SQLite driver this build of the package uses,
// for programs that report it (imagestore --version, the benchmark).
const SQLiteDriver = "modernc.org/sqlite (pure Go, CGO_ENABLED=0)"

// SQLite's primary result codes for a file that is not a database or is
// corrupt (sqlite3.h).
const (
	sqliteCorrupt = 11
	sqliteNotADB  = 26
)

// sqliteUnreadable reports whether err is SQLite saying that the database
// file is not a database or is corrupt (SQLITE_NOTADB, SQLITE_CORRUPT).
func sqliteUnreadable(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	code := se.Code() & 0xff
	return code == sqliteCorrupt || code == sqliteNotADB
}

// persistWAL sets SQLITE_FCNTL_PERSIST_WAL on a new connection (db.go).
func persistWAL(c driver.Conn) error {
	fc, ok := c.(sqlite.FileControl)
	if !ok {
		return fmt.Errorf("unexpected connection type %T", c)
	}
	_, err := fc.FileControlPersistWAL("main", 1)
	return err
}

// sqliteDiskFull reports whether err is modernc.org/sqlite's way of saying
// that the disk is full (see sqliteFull). The driver reports extended
// result codes, but not the OS's errno.
func sqliteDiskFull(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	return se.Code()&0xff == sqliteFull || se.Code() == sqliteIOErrShmSize
}

// dsn is the modernc.org/sqlite data source name of the database at path,
// with the same settings as the go-sqlite3 one: WAL, synchronous=NORMAL
// (db.go flushes the WAL), a busy timeout, foreign keys on, and either
// BEGIN IMMEDIATE transactions (the writer) or a read-only connection (the
// readers). The driver runs each _pragma on every new connection,
// busy_timeout first.
func dsn(path string, mode connMode) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeoutMs))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous("+synchronous+")")
	q.Add("_pragma", "foreign_keys(1)")
	if mode.writes() {
		q.Set("_txlock", "immediate")
	} else {
		q.Add("_pragma", "query_only(1)")
	}
	return fileURI(path, q)
}
