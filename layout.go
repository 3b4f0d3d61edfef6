//go:build unix

// This file holds the store's layout: the one place that knows where the
// files of a store, and of each key, live.

package store

import "path/filepath"

// layout is where the files of the store in dir live (doc.go draws it).
// Every path in the store is made here; the rest of the package asks.
//
// The blob and manifest stores are diskv stores with shardPath as their
// Transform, so diskv reads and lists them (Read, Keys). The store writes
// around diskv, by blobPath and manifestPath: diskv's writes are neither
// fsynced nor published by a rename after the key's lock is taken, which
// the write order (write.go) needs.
type layout struct {
	dir     string // the store directory, absolute
	lockDir string // one lock file per key
	tmpDir  string // temp files: the store's own and callers'
}

func newLayout(dir string) layout {
	return layout{dir: dir, lockDir: filepath.Join(dir, "imagelocks"), tmpDir: filepath.Join(dir, "tmp")}
}

// Directories of the store below dir.
func (l layout) blobDir() string     { return filepath.Join(l.dir, "blob") }
func (l layout) manifestDir() string { return filepath.Join(l.dir, "imageManifest") }
func (l layout) dbDir() string       { return filepath.Join(l.dir, "db") }
func (l layout) backupsDir() string  { return filepath.Join(l.dir, "db-backups") }

// dirs lists the directories every store has, the store's own first.
func (l layout) dirs() []string {
	return []string{l.dir, l.lockDir, l.tmpDir, l.dbDir(), l.blobDir(), l.manifestDir()}
}

// The files of a key.
func (l layout) blobPath(key string) string     { return shardedPath(l.blobDir(), key) }
func (l layout) manifestPath(key string) string { return shardedPath(l.manifestDir(), key) }
func (l layout) intentPath(key string) string   { return filepath.Join(l.tmpDir, tmpIntentPrefix+key) }
func (l layout) keyLockPath(key string) string  { return keyLockPath(l.lockDir, key) }

// The files of the database directory. The writers' queue and the space
// reserve sit beside whichever database file is opened (the store's, or
// one being built by Rebuild or Adopt).
func (l layout) dbFile() string    { return filepath.Join(l.dbDir(), dbFileName) }
func (l layout) rktDBPath() string { return filepath.Join(l.dbDir(), "ql.db") }

func writeLockPath(dbFile string) string { return filepath.Join(filepath.Dir(dbFile), "write.lock") }
func reservePath(dbDir string) string    { return filepath.Join(dbDir, reserveName) }

// shardedPath is where a diskv store at base keeps key: base/sha512/ab/key.
func shardedPath(base, key string) string {
	return filepath.Join(base, filepath.Join(shardPath(key)...), key)
}

// keyLockPath is the lock file of key in the lock directory dir.
func keyLockPath(dir, key string) string { return filepath.Join(dir, key) }

// dbPath is the database file of the store in dir.
func dbPath(dir string) string { return newLayout(dir).dbFile() }

// rktDBPath is where rkt keeps its ql database in the store at dir.
func rktDBPath(dir string) string { return newLayout(dir).rktDBPath() }
