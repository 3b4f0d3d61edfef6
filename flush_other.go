//go:build unix && !linux

// This file holds fdatasync and the writeback hint where Linux's are not
// available.

package store

import "os"

// startWriteback is a no-op where sync_file_range does not exist; the
// fsync before publishing does all the work.
func startWriteback(f *os.File, off, n int64) {}

// fdatasync is f.Sync where Linux's fdatasync is not available.
func fdatasync(f *os.File) error { return f.Sync() }
