//go:build unix

// This file holds the database handle: opening SQLite (connections,
// settings, the writers' queue), write transactions and the WAL flush that
// makes them durable, and the time and statement helpers.

package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The database lives in db/store.db (SQLite, WAL journal). One Store keeps
// two handles open for its whole life:
//
//   - writer: a single connection for writes. Its transactions begin with
//     BEGIN IMMEDIATE, so they take SQLite's write lock at the start and wait
//     (busy timeout) instead of failing with "database is locked" half way.
//   - readers: a pool of read-only connections. In WAL mode readers see a
//     consistent snapshot and never wait for writers, nor writers for them.
//
// Commits are made durable by the store, not by SQLite: the connections
// run with synchronous=NORMAL (a commit appends to the WAL without
// waiting), and do fdatasyncs the WAL after the commit, once the write
// lock is free again. SQLite's own synchronous=FULL would fsync inside the
// lock, and fsync rather than fdatasync: every commit then waits for a
// filesystem journal commit (the WAL's mtime changed) while every other
// writer of the store waits for it. Outside the lock the next writer
// commits while this one flushes, and one flush covers the commits before
// it. The WAL is append-only between checkpoints, and a checkpoint syncs
// the WAL before it and the database after it, so a flushed WAL holds
// every commit made before the flush: when do returns, the commit is
// durable, as with FULL. What differs is that other readers may see a
// commit a moment before its flush ends; anything they write depends on it
// and flushes it too, and blob readers wait for the writer's key lock,
// which it holds until do has returned.
//
// Every statement names its columns; no caller text is ever part of SQL.
const (
	dbFileName    = "store.db"
	busyTimeoutMs = 30000
)

type db struct {
	failpoint failpoints // its Store's (failpoint.go)
	path      string     // of the database file; its WAL is path + "-wal"
	writer    *sql.DB    // one connection, for write transactions
	readers   *sql.DB    // a pool of read-only connections
	prepared  *stmtCache // readers with prepared statements, for the hot read paths

	// Writers queue here, in the process (writeMu) and between processes
	// (an flock on db/write.lock), before BEGIN IMMEDIATE: the kernel wakes
	// the next writer the moment the lock is free, where SQLite's busy
	// handler would poll with sleeps of up to 100 ms.
	writeMu   sync.Mutex
	writeLock *os.File

	// flushErr is the first failed flush of the WAL. After it, no commit
	// of this handle is durable for sure: Linux may have dropped the
	// failed pages and will not say so again (PostgreSQL's "fsyncgate"),
	// and SQLite's recovery stops at the first lost frame, dropping every
	// commit after it. So every later do fails instead of acknowledging.
	flushErr atomic.Pointer[error]
}

// connMode says what a connection is for: it sets its pragmas.
type connMode int

const (
	readConn  connMode = iota // query_only
	writeConn                 // BEGIN IMMEDIATE
)

func (m connMode) writes() bool { return m != readConn }

// SQLite's result codes for a full disk: SQLITE_FULL when a write to the
// database or the WAL found no space, SQLITE_IOERR_SHMSIZE when the -shm
// file could not grow.
const (
	sqliteFull         = 13
	sqliteIOErrShmSize = 10 | 19<<8
)

// synchronous is the SQLite synchronous setting of every connection: do
// flushes the WAL itself (see the top of this file).
const synchronous = "NORMAL"

// fileURI is the file: URI of the database at path with the driver's
// parameters q; path must be absolute.
func fileURI(path string, q url.Values) string {
	u := url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}
	return u.String()
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

	d := &db{path: path}
	defer func() {
		if d.prepared == nil { // failed half way
			d.close()
		}
	}()
	if d.writeLock, err = openShared(writeLockPath(path)); err != nil {
		return nil, wrap(err, "open database write lock")
	}
	if err := d.openWriter(); err != nil {
		return nil, err
	}
	if d.readers, err = openPool(path, readConn, runtime.GOMAXPROCS(0)*2); err != nil {
		return nil, err
	}
	d.prepared = newStmtCache(d.readers)
	return d, nil
}

// openWriter opens the write connection, which applies the connection
// settings, in turn with the other processes opening the store: on a new
// database the first connection switches the journal to WAL, which takes
// SQLite's exclusive lock after a read lock, and SQLite does not wait for
// that upgrade (it would deadlock), it fails at once with "database is
// locked". The writers' queue (db/write.lock) makes the openers take turns.
func (d *db) openWriter() (err error) {
	// the writers' queue (lock 3, doc.go "Locks")
	if err := flock(d.writeLock, syscall.LOCK_EX); err != nil {
		return wrap(err, "lock database for opening")
	}
	defer flock(d.writeLock, syscall.LOCK_UN)
	if d.writer, err = openPool(d.path, writeConn, 1); err != nil {
		return err
	}
	// The first query opens the WAL and -shm files: on a full disk, with
	// the reserve's help (diskfull.go).
	var version string
	err = withRoom(filepath.Dir(d.path), func() error {
		return d.writer.QueryRow("SELECT sqlite_version()").Scan(&version)
	}, d.releaseReserve)
	if err != nil {
		return wrap(err, "open database %s", d.path)
	}
	return nil
}

func openPool(path string, mode connMode, conns int) (*sql.DB, error) {
	p := sql.OpenDB(connector{dsn: dsn(path, mode)})
	p.SetMaxOpenConns(conns)
	p.SetMaxIdleConns(conns)
	p.SetConnMaxLifetime(0)
	return p, nil
}

// connector opens the store's connections with the driver of this build
// and keeps each one's WAL and -shm files when it closes (SQLite's
// persistent WAL). A clean close would otherwise delete both, and the next
// open would have to create them again: on a full disk it could not, and
// the store could not even be opened to remove an image. Kept, the WAL's
// blocks are reused by the next writes and the -shm file's by the next
// open (SQLite truncates it and writes it again). Nothing else changes:
// readers ignore the WAL's frames once they are in the database file.
type connector struct{ dsn string }

func (c connector) Connect(context.Context) (driver.Conn, error) {
	conn, err := sqliteDriver.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	if err := persistWAL(conn); err != nil {
		conn.Close()
		return nil, fmt.Errorf("keep the database's WAL: %w", err)
	}
	return conn, nil
}

func (c connector) Driver() driver.Driver { return sqliteDriver }

func (d *db) close() error {
	var errs []error
	if d.prepared != nil { // opened whole
		d.trimWAL()
		errs = append(errs, d.prepared.close())
	}
	for _, p := range []*sql.DB{d.readers, d.writer} {
		if p != nil {
			errs = append(errs, p.Close())
		}
	}
	if d.writeLock != nil {
		errs = append(errs, d.writeLock.Close())
	}
	return errors.Join(errs...)
}

// walKeepMax bounds the WAL that close leaves in place (the WAL is kept:
// see connector). SQLite checkpoints at 1000 pages, so a WAL is rarely
// larger than 4 MiB; one transaction of a Rebuild or a migration can make
// it as large as the database, and that space is given back.
const walKeepMax = 8 << 20

// trimWAL empties a WAL larger than walKeepMax, if no other connection
// is using it.
func (d *db) trimWAL() {
	if fi, err := os.Stat(d.path + "-wal"); err == nil && fi.Size() > walKeepMax {
		d.emptyWAL()
	}
}

// emptyWAL copies the WAL into the database file and truncates it, which
// frees its blocks, unless another connection is using it: it does not
// wait for one. It reports whether it emptied the WAL.
func (d *db) emptyWAL() bool {
	c, err := d.writer.Conn(background)
	if err != nil {
		return false
	}
	defer c.Close()
	if _, err := c.ExecContext(background, `PRAGMA busy_timeout = 0`); err != nil {
		return false
	}
	defer c.ExecContext(background, fmt.Sprintf(`PRAGMA busy_timeout = %d`, busyTimeoutMs))
	var busy, frames, copied int
	err = c.QueryRowContext(background, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &frames, &copied)
	return err == nil && busy == 0
}

// reuseWAL copies the WAL into the database file without waiting for
// anyone (a passive checkpoint), so that the next transaction may write
// the WAL from its start, into blocks it already has.
func (d *db) reuseWAL() bool {
	_, err := d.writer.Exec(`PRAGMA wal_checkpoint(PASSIVE)`)
	return err == nil
}

// releaseReserve frees the space reserve (diskfull.go).
func (d *db) releaseReserve() bool { return releaseReserve(filepath.Dir(d.path)) }

// withRoom runs op, which needs a little new space (an inode), on a disk
// that may be full (diskfull.go): if it fails for lack of space, the space
// reserve is released, then the WAL emptied, each followed by another try.
func (d *db) withRoom(op func() error) error {
	return withRoom(filepath.Dir(d.path), op, d.releaseReserve, d.emptyWAL)
}

// do runs fns in one write transaction, in order, and returns once the
// commit is durable. The transaction commits when all return nil and rolls
// back when any returns an error or panics (the panic then continues).
func (d *db) do(fns ...func(*sql.Tx) error) error {
	if err := d.flushErr.Load(); err != nil {
		return fmt.Errorf("flush database: an earlier flush failed, so no write is durable for sure until the store is reopened: %w", *err)
	}
	if err := d.transact(fns...); err != nil {
		return err
	}
	return d.syncWAL()
}

// doWithRoom is do for writes that must work on a full disk (removals,
// which free space; diskfull.go). When the transaction finds no room, the
// WAL is first made reusable from its start, which keeps its blocks for
// the next full-disk removal; then the space reserve is released; last,
// the WAL is emptied. Each is followed by another try.
func (d *db) doWithRoom(fns ...func(*sql.Tx) error) error {
	return withRoom(filepath.Dir(d.path), func() error { return d.do(fns...) },
		d.reuseWAL, d.releaseReserve, d.emptyWAL)
}

// doRelaxed is do for writes that may be lost by a power cut without harm
// (LastUsed): it returns without flushing the WAL. SQLite keeps the commit
// atomic and ordered; the next flush makes it durable too.
func (d *db) doRelaxed(fns ...func(*sql.Tx) error) error {
	return d.transact(fns...)
}

// syncWAL makes every commit so far durable: it flushes the WAL's data
// (fdatasync; its timestamps need no journal commit). SQLite takes no
// POSIX lock on the WAL, so opening and closing it here cannot drop one of
// SQLite's locks (those are on the database and -shm files). The WAL
// exists while this Store's connections are open; if it is gone, the last
// connection's checkpoint moved every commit into the database file, which
// is then flushed instead.
func (d *db) syncWAL() error {
	f, err := os.Open(d.path + "-wal")
	if errors.Is(err, fs.ErrNotExist) {
		f, err = os.Open(d.path)
	}
	if err != nil {
		return wrap(err, "flush database")
	}
	defer f.Close()
	if err := fdatasync(f); err != nil {
		d.flushErr.CompareAndSwap(nil, &err)
		return wrap(err, "flush database")
	}
	d.failpoint.at("db-flushed")
	return nil
}

// transact runs fns in one write transaction on the writer, queued behind
// the other writers of this process and of other processes.
func (d *db) transact(fns ...func(*sql.Tx) error) (err error) {
	// The writers' queue, in the process then between processes (lock 3,
	// doc.go "Locks"); SQLite's write lock (4) is taken by BEGIN IMMEDIATE.
	d.writeMu.Lock()
	defer d.writeMu.Unlock()
	if err := flock(d.writeLock, syscall.LOCK_EX); err != nil {
		return wrap(err, "lock database for writing")
	}
	defer flock(d.writeLock, syscall.LOCK_UN)
	tx, err := d.writer.Begin()
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
			return markDiskFull(err)
		}
	}
	if err := tx.Commit(); err != nil {
		return wrap(err, "commit transaction")
	}
	committed = true
	return nil
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

// fileExists reports whether path exists (errors other than "not exist"
// count as existing, so that callers go on to report them).
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, os.ErrNotExist)
}

// stmtCache is a querier over the read pool that prepares each statement
// once and reuses it (database/sql re-prepares it on each connection as
// needed). The hot read paths go through it: preparing costs more than
// running these small indexed queries.
type stmtCache struct {
	db    *sql.DB
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, stmts: map[string]*sql.Stmt{}}
}

func (c *stmtCache) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.stmts[query]; ok {
		return st, nil
	}
	if len(c.stmts) >= 64 { // GetACI's text varies with the label count
		for q, st := range c.stmts {
			st.Close()
			delete(c.stmts, q)
		}
	}
	st, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.stmts[query] = st
	return st, nil
}

func (c *stmtCache) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

func (c *stmtCache) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func (c *stmtCache) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := c.stmt(ctx, query)
	if err != nil {
		// A *sql.Row cannot be built with an error; the plain query
		// reports the same error through Scan.
		return c.db.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

func (c *stmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for q, st := range c.stmts {
		errs = append(errs, st.Close())
		delete(c.stmts, q)
	}
	return errors.Join(errs...)
}
