//go:build !unix

package store

// The store needs flock(2) for its locks, fsync of directories for its
// durability and POSIX rename and unlink semantics (a removed file stays
// readable while open): it builds on unix systems only (Linux, macOS, the
// BSDs, ...). On any other system the build stops here, with this name in
// the error.
var _ = imagestore_builds_only_on_unix_systems_flock_and_directory_fsync_are_required
