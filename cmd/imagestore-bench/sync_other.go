//go:build !linux

package main

import "os"

// fdatasync is fsync where the system has no fdatasync, as in the store.
func fdatasync(f *os.File) error { return f.Sync() }
