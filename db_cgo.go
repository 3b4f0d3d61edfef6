//go:build unix && cgo

// This file holds what is particular to the cgo SQLite driver
// (github.com/mattn/go-sqlite3): its settings and how it reports errors.

package store

import (
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"syscall"

	"github.com/mattn/go-sqlite3"
)

// With cgo the store uses github.com/mattn/go-sqlite3, the SQLite C library
// compiled in. db_nocgo.go selects a pure-Go driver instead; both read and
// write the same database file. The store opens its connections through
// its own instance of the driver (db.go's connector), so it registers
// nothing in database/sql and changes no other user of the driver.
var sqliteDriver driver.Driver = &sqlite3.SQLiteDriver{}

// SQLiteDriver names the SQLite driver this build of the package uses,
// for programs that report it (imagestore --version, the benchmark).
const SQLiteDriver = "github.com/mattn/go-sqlite3 (cgo)"

// sqliteUnreadable reports whether err is SQLite saying that the database
// file is not a database or is corrupt (SQLITE_NOTADB, SQLITE_CORRUPT).
func sqliteUnreadable(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && (se.Code == sqlite3.ErrNotADB || se.Code == sqlite3.ErrCorrupt)
}

// persistWAL sets SQLITE_FCNTL_PERSIST_WAL on a new connection (db.go).
func persistWAL(c driver.Conn) error {
	sc, ok := c.(*sqlite3.SQLiteConn)
	if !ok {
		return fmt.Errorf("unexpected connection type %T", c)
	}
	return sc.SetFileControlInt("main", sqlite3.SQLITE_FCNTL_PERSIST_WAL, 1)
}

// sqliteDiskFull reports whether err is go-sqlite3's way of saying that the
// disk is full (see sqliteFull).
func sqliteDiskFull(err error) bool {
	var se sqlite3.Error
	if !errors.As(err, &se) {
		return false
	}
	return int(se.Code) == sqliteFull || int(se.ExtendedCode) == sqliteIOErrShmSize ||
		se.SystemErrno == syscall.ENOSPC || se.SystemErrno == syscall.EDQUOT
}

// dsn is the go-sqlite3 data source name of the database at path: WAL,
// synchronous=NORMAL (db.go flushes the WAL), a busy timeout, foreign keys
// on, and either BEGIN IMMEDIATE transactions (the writer) or a read-only
// connection (the readers).
func dsn(path string, mode connMode) string {
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", synchronous)
	q.Set("_busy_timeout", fmt.Sprint(busyTimeoutMs))
	q.Set("_foreign_keys", "1")
	if mode.writes() {
		q.Set("_txlock", "immediate")
	} else {
		q.Set("_query_only", "1")
	}
	return fileURI(path, q)
}
