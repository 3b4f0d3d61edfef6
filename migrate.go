//go:build unix

// This file holds the schema: its versions, the migrations between them,
// and the backups taken first.

package store

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// The schema is the sum of its migrations: a new database is created by
// running every step from version 0, an old one by running the steps it
// lacks. Each step runs in the same transaction that records its version,
// so a store is always at exactly one version. Never edit a released step;
// append a new one.
type migration struct {
	version int
	apply   func(tx *sql.Tx, m *migrateEnv) error
}

// migrateEnv is what a step may use besides the transaction.
type migrateEnv struct {
	// manifest returns the stored manifest JSON of a key.
	manifest func(key string) ([]byte, error)
}

var migrations = []migration{
	{1, migrateToV1},
	{2, migrateToV2},
	{3, migrateToV3},
	{4, migrateToV4},
}

// dbVersion is the schema version this code writes.
var dbVersion = migrations[len(migrations)-1].version

// canWriteDir is a variable so that tests can play a process without
// write access (root always has it).
var canWriteDir = canWrite

const (
	backupsNumber   = 5
	migrateLockWait = 30 * time.Second
)

// migrateToV1 is the first schema: rkt's tables, typed for SQLite.
func migrateToV1(tx *sql.Tx, _ *migrateEnv) error {
	return execAll(tx,
		`CREATE TABLE version (version INTEGER NOT NULL)`,
		`CREATE TABLE aciinfo (
			blobkey       TEXT    NOT NULL PRIMARY KEY,
			name          TEXT    NOT NULL,
			importtime    TEXT    NOT NULL,
			lastused      TEXT    NOT NULL,
			latest        INTEGER NOT NULL DEFAULT 0,
			size          INTEGER NOT NULL DEFAULT 0,
			treestoresize INTEGER NOT NULL DEFAULT 0
		)`,
		`CREATE INDEX aciinfo_name ON aciinfo (name)`,
		`CREATE TABLE remote (
			aciurl       TEXT    NOT NULL PRIMARY KEY,
			sigurl       TEXT    NOT NULL DEFAULT '',
			etag         TEXT    NOT NULL DEFAULT '',
			blobkey      TEXT    NOT NULL DEFAULT '',
			cachemaxage  INTEGER NOT NULL DEFAULT 0,
			downloadtime TEXT    NOT NULL
		)`,
	)
}

// migrateToV2 keeps each image's labels in the database, so that GetACI
// filters in SQL instead of opening one manifest file per candidate, and
// indexes remotes by key for RemoveACI. The manifests stay the source of
// truth: the label rows are derived from them here and on every write.
func migrateToV2(tx *sql.Tx, m *migrateEnv) error {
	err := execAll(tx,
		`CREATE INDEX remote_blobkey ON remote (blobkey)`,
		`CREATE TABLE aciinfo_label (
			blobkey TEXT NOT NULL REFERENCES aciinfo (blobkey) ON DELETE CASCADE,
			name    TEXT NOT NULL,
			value   TEXT NOT NULL,
			PRIMARY KEY (blobkey, name, value)
		) WITHOUT ROWID`,
	)
	if err != nil {
		return err
	}
	keys, err := allKeys(tx)
	if err != nil {
		return err
	}
	for _, key := range keys {
		imj, err := m.manifest(key)
		if err != nil {
			// A missing or unreadable manifest must not make the whole
			// store unopenable: the image keeps no label rows (it still
			// matches GetACI without labels) and Verify reports it.
			continue
		}
		im, err := parseManifest(imj)
		if err != nil {
			continue
		}
		// A step writes with its own statements: the helpers of this
		// package follow the current schema, not version 2's.
		for _, l := range im.Labels {
			_, err := tx.Exec(`INSERT INTO aciinfo_label (blobkey, name, value) VALUES (?, ?, ?)
				ON CONFLICT DO NOTHING`, key, l.Name.String(), l.Value)
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// migrateToV3 keys the label rows by the image's name first, so that
// GetACI with a version label finds its candidates with one range of one
// index instead of one probe per image of that name, each in another
// page: at 100,000 images that was more than 2x slower than at 1,000. A
// covering index serves GetACI without labels the same way.
func migrateToV3(tx *sql.Tx, _ *migrateEnv) error {
	return execAll(tx,
		`CREATE TABLE image_label (
			appname TEXT NOT NULL,
			name    TEXT NOT NULL,
			value   TEXT NOT NULL,
			blobkey TEXT NOT NULL REFERENCES aciinfo (blobkey) ON DELETE CASCADE,
			PRIMARY KEY (appname, name, value, blobkey)
		) WITHOUT ROWID`,
		`CREATE INDEX image_label_blobkey ON image_label (blobkey)`,
		`INSERT INTO image_label (appname, name, value, blobkey)
			SELECT a.name, l.name, l.value, l.blobkey
			FROM aciinfo_label l JOIN aciinfo a ON a.blobkey = l.blobkey`,
		`DROP TABLE aciinfo_label`,
		`DROP INDEX aciinfo_name`,
		`CREATE INDEX aciinfo_pick ON aciinfo (name, latest, importtime, blobkey)`,
	)
}

// migrateToV4 keeps the remote rows in their primary key's B-tree
// (WITHOUT ROWID): GetRemote then reads one tree, not an index and then the
// table. At 100,000 images, where most pages are not in SQLite's cache,
// GetRemote went from 79,000-87,000 to 101,000-112,000 per second.
func migrateToV4(tx *sql.Tx, _ *migrateEnv) error {
	return execAll(tx,
		`CREATE TABLE remote_v4 (
			aciurl       TEXT    NOT NULL PRIMARY KEY,
			sigurl       TEXT    NOT NULL DEFAULT '',
			etag         TEXT    NOT NULL DEFAULT '',
			blobkey      TEXT    NOT NULL DEFAULT '',
			cachemaxage  INTEGER NOT NULL DEFAULT 0,
			downloadtime TEXT    NOT NULL
		) WITHOUT ROWID`,
		`INSERT INTO remote_v4 (aciurl, sigurl, etag, blobkey, cachemaxage, downloadtime)
			SELECT aciurl, sigurl, etag, blobkey, cachemaxage, downloadtime FROM remote`,
		`DROP TABLE remote`, // and its index remote_blobkey
		`ALTER TABLE remote_v4 RENAME TO remote`,
		`CREATE INDEX remote_blobkey ON remote (blobkey)`,
	)
}

func execAll(tx *sql.Tx, stmts ...string) error {
	for _, stmt := range stmts {
		if _, err := tx.Exec(stmt); err != nil {
			return wrap(err, "exec %q", firstLine(stmt))
		}
	}
	return nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// schemaVersion returns the version recorded in the database, 0 for a
// database without tables.
func schemaVersion(q querier) (int, error) {
	var n int
	err := q.QueryRowContext(background, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'version'`).Scan(&n)
	if err != nil {
		return 0, wrap(err, "read schema version")
	}
	if n == 0 {
		return 0, nil
	}
	var v int
	err = q.QueryRowContext(background, `SELECT version FROM version`).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, errors.New("read schema version: version table is empty")
	}
	if err != nil {
		return 0, wrap(err, "read schema version")
	}
	return v, nil
}

// migrate brings the database to dbVersion inside tx, starting from the
// version it finds there (another process may have migrated meanwhile).
func migrate(tx *sql.Tx, m *migrateEnv) error {
	return migrateTo(tx, m, dbVersion)
}

// migrateTo runs the steps after the database's version up to target.
func migrateTo(tx *sql.Tx, m *migrateEnv, target int) error {
	from, err := schemaVersion(tx)
	if err != nil {
		return err
	}
	if from > dbVersion {
		return schemaTooNew(from)
	}
	for _, step := range migrations {
		if step.version <= from || step.version > target {
			continue
		}
		if err := step.apply(tx, m); err != nil {
			return wrap(err, "migrate database to version %d", step.version)
		}
		if _, err := tx.Exec(`DELETE FROM version`); err != nil {
			return wrap(err, "record schema version")
		}
		if _, err := tx.Exec(`INSERT INTO version (version) VALUES (?)`, step.version); err != nil {
			return wrap(err, "record schema version")
		}
	}
	return nil
}

func schemaTooNew(v int) error {
	return fmt.Errorf("%w: the store is at version %d, this library writes version %d: use a newer version of the library", ErrSchemaTooNew, v, dbVersion)
}

// openSchema creates or migrates the store's database. A migration of an
// existing database takes the store lock exclusively and backs the database
// up into db-backups/ first.
func (s *Store) openSchema() error {
	v, err := schemaVersion(s.db.readers)
	if err != nil {
		if rerr := s.needsRebuild(err); rerr != nil {
			return rerr
		}
		return err
	}
	switch {
	case v > dbVersion:
		return schemaTooNew(v)
	case v == dbVersion:
		return nil
	case v == 0:
		if err := s.needsRebuild(nil); err != nil {
			return err
		}
		// A new database: BEGIN IMMEDIATE serialises concurrent creators
		// and migrate starts from whatever the winner left.
		return s.db.do(func(tx *sql.Tx) error { return migrate(tx, s.migrateEnv()) })
	}
	if !canWriteDir(s.dbDir()) {
		return ErrDBUpdateNeedsRoot
	}
	return s.migrateExclusive()
}

// migrateExclusive backs up and migrates the database under the store lock
// taken exclusively, so that no user of an older schema has it open. Other
// processes opening the store at the same moment want the same lock for
// the same migration: the first to get it migrates, and the others see the
// new version while they wait, and go on without waiting for it. The
// version is read again under the lock, so the backup is of the schema
// actually migrated, and is taken once.
func (s *Store) migrateExclusive() error {
	current := func() bool {
		v, err := schemaVersion(s.db.readers)
		return err == nil && v >= dbVersion
	}
	// store lock, exclusive (lock 1, doc.go "Locks")
	locked, err := s.storeLock.exclusive(migrateLockWait, current)
	if err != nil || !locked {
		return err
	}
	defer s.storeLock.shared()
	v, err := schemaVersion(s.db.readers)
	switch {
	case err != nil:
		return err
	case v > dbVersion:
		return schemaTooNew(v)
	case v == dbVersion:
		return nil // migrated by another process before this one had the lock
	}
	if err := s.backupDB(v); err != nil {
		return err
	}
	return s.db.do(func(tx *sql.Tx) error { return migrate(tx, s.migrateEnv()) })
}

func (s *Store) migrateEnv() *migrateEnv {
	return &migrateEnv{manifest: func(key string) ([]byte, error) {
		return s.manifests.Read(key)
	}}
}

// backupDB writes a consistent copy of the database (VACUUM INTO) to
// db-backups/ and keeps the newest backupsNumber copies.
func (s *Store) backupDB(fromVersion int) error {
	dir := s.backupsDir()
	if err := mkdirShared(dir); err != nil {
		return wrap(err, "back up database")
	}
	name := fmt.Sprintf("store-%s-v%d.db", time.Now().UTC().Format("20060102T150405.000000000Z"), fromVersion)
	path := filepath.Join(dir, name)
	if _, err := s.db.writer.Exec(`VACUUM INTO ?`, path); err != nil {
		return wrap(err, "back up database to %s", path)
	}
	if err := os.Chmod(path, filePerm); err != nil {
		return wrap(err, "back up database")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return wrap(err, "list database backups")
	}
	var backups []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "store-") && strings.HasSuffix(e.Name(), ".db") {
			backups = append(backups, e.Name())
		}
	}
	sort.Strings(backups) // names start with a sortable UTC time
	for len(backups) > backupsNumber {
		if err := os.Remove(filepath.Join(dir, backups[0])); err != nil {
			return wrap(err, "remove old database backup")
		}
		backups = backups[1:]
	}
	return nil
}
