//go:build !(linux || darwin || freebsd)

// This file holds freeSpace for systems whose statfs the store does not
// read.

package store

// freeSpace cannot be told here: withRoom then goes by the error alone.
func freeSpace(dir string) int64 { return -1 }
