package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// The database lives in db/store.db (SQLite, WAL journal). One Store keeps
// two handles open for its whole life:
//
//   - w: a single connection for writes. Its transactions begin with
//     BEGIN IMMEDIATE, so they take SQLite's write lock at the start and wait
//     (busy timeout) instead of failing with "database is locked" half way.
//   - r: a pool of read-only connections. In WAL mode readers see a
//     consistent snapshot and never wait for writers, nor writers for them.
//
// Every statement names its columns; no caller text is ever part of SQL.
const (
	dbFileName    = "store.db"
	busyTimeoutMs = 30000
)

type db struct {
	w *sql.DB
	r *sql.DB
}

// querier is what both a *sql.Tx and a *sql.DB offer; the row helpers take
// it so that the Store's hot paths can read without opening a transaction.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// openDB opens (creating if needed) the database file at path.
func openDB(path string) (*db, error) {
	path, err := filepath.Abs(path) // a relative path is no file: URI
	if err != nil {
		return nil, wrap(err, "open database")
	}
	// Create the file ourselves so that its mode is filePerm whatever the
	// umask; SQLite gives its -wal and -shm files the mode of the database.
	f, err := openShared(path)
	if err != nil {
		return nil, wrap(err, "create database file")
	}
	f.Close()

	w, err := sql.Open(sqliteDriver, dsn(path, true))
	if err != nil {
		return nil, wrap(err, "open database")
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)

	var version string
	if err := w.QueryRow("SELECT sqlite_version()").Scan(&version); err != nil {
		w.Close()
		if strings.Contains(err.Error(), "CGO_ENABLED") {
			// go-sqlite3 built without cgo is a stub that fails here.
			return nil, fmt.Errorf("open database %s: %w (%s)", path, err, driverHint)
		}
		return nil, wrap(err, "open database %s", path)
	}

	r, err := sql.Open(sqliteDriver, dsn(path, false))
	if err != nil {
		w.Close()
		return nil, wrap(err, "open database")
	}
	n := runtime.GOMAXPROCS(0) * 2
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	r.SetConnMaxLifetime(0)
	return &db{w: w, r: r}, nil
}

func (d *db) close() error {
	return errors.Join(d.r.Close(), d.w.Close())
}

// do runs fns in one write transaction, in order. The transaction commits
// when all return nil and rolls back when any returns an error or panics
// (the panic then continues).
func (d *db) do(fns ...func(*sql.Tx) error) (err error) {
	tx, err := d.w.Begin()
	if err != nil {
		return wrap(err, "begin transaction")
	}
	committed := false
	defer func() {
		if !committed {
			tx.Rollback()
		}
	}()
	for _, fn := range fns {
		if err := fn(tx); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return wrap(err, "commit transaction")
	}
	committed = true
	return nil
}

// view runs fn in one read-only transaction: a consistent snapshot.
func (d *db) view(fn func(*sql.Tx) error) error {
	tx, err := d.r.Begin()
	if err != nil {
		return wrap(err, "begin read transaction")
	}
	defer tx.Rollback()
	return fn(tx)
}

// dbTime stores a time.Time as fixed-width UTC text with nanoseconds, so
// that values sort as text in time order and come back Equal to what was
// written. Years outside 0000-9999 are refused.
type dbTime struct{ t *time.Time }

const dbTimeLayout = "2006-01-02T15:04:05.000000000Z"

func (v dbTime) Value() (driver.Value, error) {
	t := v.t.UTC()
	if t.Year() < 0 || t.Year() > 9999 {
		return nil, fmt.Errorf("%w: time %v is outside years 0-9999", ErrInvalidArgument, t)
	}
	return t.Format(dbTimeLayout), nil
}

func (v dbTime) Scan(src any) error {
	var s string
	switch x := src.(type) {
	case string:
		s = x
	case []byte:
		s = string(x)
	case time.Time: // a driver that parsed the column itself
		*v.t = x.UTC()
		return nil
	case nil:
		*v.t = time.Time{}
		return nil
	default:
		return fmt.Errorf("scan time: unexpected %T", src)
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return wrap(err, "scan time")
	}
	*v.t = t.UTC()
	return nil
}

// dbPath is where the database file of the store at dir lives.
func dbPath(dir string) string { return filepath.Join(dir, "db", dbFileName) }

// fileExists reports whether path exists (errors other than "not exist"
// count as existing, so that callers go on to report them).
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, os.ErrNotExist)
}
