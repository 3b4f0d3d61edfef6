// Small filesystems for the full-disk tests: none outside Linux, so those tests skip.

//go:build !linux

package store

import "testing"

// mountSmallFS needs Linux (mount(2), tmpfs, loop devices).
func mountSmallFS(t *testing.T, size int64) string {
	t.Helper()
	t.Skip("mounting a small filesystem needs Linux")
	return ""
}

func smallFSType() string { return "" }

func syncFS(t *testing.T, dir string) {}
