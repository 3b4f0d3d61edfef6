//go:build unix && cgo

package store

import (
	"fmt"
	"net/url"

	_ "github.com/mattn/go-sqlite3" // registers "sqlite3"
)

// With cgo the store uses github.com/mattn/go-sqlite3, the SQLite C library
// compiled in. db_nocgo.go selects a pure-Go driver instead; both read and
// write the same database file.
const sqliteDriver = "sqlite3"

// driverHint is added to the error NewStore returns when the driver cannot
// work at all, which for go-sqlite3 means a build with CGO_ENABLED=0.
const driverHint = "go-sqlite3 needs cgo: build with CGO_ENABLED=1 and a C compiler"

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
