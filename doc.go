// Package store implements a content-addressable store of container images
// (ACIs, the appc image format) on local disk. It reimplements the API of
// rkt's store/imagestore (v1.30.0) on SQLite: the image tars and manifests
// live in two diskv stores (https://github.com/peterbourgon/diskv), their
// metadata in a SQLite database.
//
// An image's key is "sha512-" followed by the first 64 hex digits of the
// SHA-512 of its uncompressed tar, so the same image, plain or compressed,
// is stored once.
//
// # Layout
//
//	DIR/blob/sha512/ab/sha512-ab…          uncompressed image tars
//	DIR/imageManifest/sha512/ab/sha512-ab… manifests (JSON)
//	DIR/db/store.db (+ -wal, -shm)         SQLite: images, labels, remotes
//	DIR/db/write.lock                      the writers' queue (flock)
//	DIR/db/reserve                         space kept for removals on a full disk
//	DIR/db-backups/                        copies taken before migrations
//	DIR/imagelocks/sha512-ab…              one lock file per key
//	DIR/tmp/                               temp files (same filesystem)
//
// Directories are created 0770 with the setgid bit and files 0660, whatever
// the umask, so that the members of the directory's group can share a store.
//
// # Guarantees
//
// Atomicity: an image is either wholly in the store or absent. WriteACI
// reads the whole input first (a truncated or corrupt archive is refused
// with ErrInvalidImage and leaves nothing behind), then publishes the blob
// and the manifest by rename and only then commits the database row that
// makes the image visible. RemoveACI deletes the row (with the image's
// labels and remotes) in one transaction before it removes the files.
//
// Durability: when WriteACI, RemoveACI, WriteRemote, UpdateTreeStoreSize
// or Do return without error, their effect survives a crash or power
// loss: an image's row commits only after its blob and manifest are
// fsynced, then the directories of its intent, manifest and blob, and
// every commit's WAL (SQLite, WAL mode) is flushed with fdatasync before
// the call returns; the flush runs after the write lock is released, so
// concurrent writers share flushes (db.go). After a power cut, NewStore's
// recovery leaves a store that Verify finds clean. TestPowerCut checks all
// of this by cutting the power under a running store on a test filesystem
// that keeps only what was fsynced. LastUsed, recorded by ReadStream, is
// committed without waiting for fsync. After a failed flush (EIO) a Store
// refuses every later write until it is reopened.
//
// Full disk: on a filesystem at 100%, NewStore opens, the reads and Verify
// work, and RemoveACI and GC remove images to free space; a write that
// finds no space fails with ErrDiskFull and leaves nothing behind
// (TestFullDisk, TestDiskFillsWhileOpen). Opening needs no new block because the WAL and -shm
// files are kept across closes; a removal may use the 1 MiB that
// db/reserve keeps allocated (diskfull.go).
//
// Concurrency: a Store is safe for concurrent use by goroutines, and many
// processes may open the same directory. Each holds a shared flock on the
// directory (exclusive only while a schema migration runs); each key has a
// lock file (shared for reads, exclusive for writes and removals); SQLite
// serialises writers (BEGIN IMMEDIATE, with a busy timeout) while readers
// work from snapshots. Two processes writing the same image both succeed
// with the same key, and the image is stored once. A stream returned by
// ReadStream stays readable after the image is removed.
//
// # Locks
//
// Every lock the store takes, in the order they nest. A lock is only ever
// taken while holding locks above it in this list, never below, so that
// no two users of a store wait for each other:
//
//  1. The store lock: a flock on DIR itself, shared for a Store's life,
//     exclusive while NewStore migrates the schema or Rebuild or Adopt runs
//     (lock_unix.go: storeLock).
//  2. A key lock: a flock on imagelocks/<key>, exclusive while the key's
//     files change (WriteACI, RemoveACI, GC, recovery) and shared while
//     they are read (ReadStream, a manifest rewritten from its blob). It
//     is held only for the publishing or opening, never while a caller
//     reads a stream (lock_unix.go: lockKey). A Batch's commit holds the
//     locks of all its keys at once, taken in key order, so that two
//     batches never wait for each other; nobody else holds two.
//  3. The writers' queue: writeMu in the process, then an exclusive flock
//     on db/write.lock between processes, held for one write transaction
//     (and while a new Store's first connection is opened). Writers wait
//     here, in the kernel's queue, rather than in SQLite's busy loop
//     (db.go: transact, openWriter).
//  4. SQLite's write lock, taken by BEGIN IMMEDIATE inside the queue; its
//     readers take no lock that a writer waits for (WAL).
//
// The WAL flush that makes a commit durable runs after 3 and 4 are
// released. Temp files being ingested (tmp/.ingest-*) are flocked by
// their writer for their whole life, so that recovery can tell a live one
// from a dead one; no other lock is taken while waiting for them.
//
// # Adopting an rkt store
//
// rkt's own store has the same layout, with its metadata in a ql database
// (db/ql.db). NewStore refuses it with ErrNeedsAdoption, creating nothing;
// Adopt, with the reader of package github.com/imagestore/imagestore/rkt
// (rkt.Adopt), records every row and remote rkt kept, each image re-hashed
// against its key first. ql.db is read from a copy and left as it was.
//
// # Caveats
//
//   - flock locks are advisory and are not reliable on network filesystems
//     (NFS): keep a store on a local filesystem.
//   - Temp files live in DIR/tmp so that renames stay on one filesystem; do
//     not make tmp a mount point.
//   - RemoveACI relies on the filesystem keeping operations on names in
//     order (ext4 and xfs do): elsewhere a power cut around a removal can
//     leave the removed image's files as orphans, which Verify reports and
//     GC with Orphans removes. Nothing acknowledged is lost either way.
//   - Opening a store whose schema must be migrated waits up to 30 seconds
//     for other processes to close it.
package store
