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
// Durability: when WriteACI, RemoveACI, WriteRemote or Do return without
// error, their effect survives a crash or power loss: an image's row
// commits only after its blob and the blob's directory are fsynced, and
// every commit's WAL (SQLite, WAL mode) is flushed with fdatasync before
// the call returns; the flush runs after the write lock is released, so
// concurrent writers share flushes (db.go). The manifest file is a
// copy of the manifest inside the blob, rewritten from it if a power loss
// tore it. LastUsed, recorded by ReadStream, is committed without waiting
// for fsync.
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
//   - A crash can leave files without a database row (an interrupted write
//     or removal). They are invisible to every method and cost only disk.
//   - Opening a store whose schema must be migrated waits up to 30 seconds
//     for other processes to close it.
package store
