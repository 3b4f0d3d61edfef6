// Package faultfs is a test filesystem (FUSE, over a backing directory)
// that models what a disk keeps after a power cut, and injects errors.
//
// Everything is written through to the backing directory at once, but the
// filesystem remembers what a power cut would take back: the pre-image of
// every block and the size of every file changed since its last fsync or
// fdatasync, and, in model B, every create, link, rename, unlink, mkdir and
// rmdir since the last fsync of its directory. PowerCut kills every process
// using the mount, unmounts it and puts all of that back, so the backing
// directory is then what a machine would find after a reboot:
//
//   - Model A (LazyFS's): only file data and sizes not yet synced are lost;
//     operations on names are durable at once, as ext4's ordered journal
//     makes them in practice.
//   - Model B: also every operation on names since the last fsync of the
//     directory holding the name. A rename is kept once its destination
//     directory is synced; until its source directory is synced too, the
//     old name comes back as well (a second link).
//
// Not modelled: a rename over a directory (the directory does not come
// back) and RENAME_EXCHANGE (refused with EINVAL); the store uses neither.
//
// Faults (EIO, ENOSPC, ...) are injected by a function that sees every
// operation and the path it works on.
//
// It runs on Linux only and needs root and /dev/fuse (Available says why
// not); it mounts with mount(2) itself (DirectMount), needing no
// fusermount. It is for tests: a single lock serialises its bookkeeping.
package faultfs
