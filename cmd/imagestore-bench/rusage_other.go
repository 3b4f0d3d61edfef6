//go:build !linux

package main

import (
	"os"
	"runtime"
)

// maxRSSKiB reports nothing outside Linux: the unit of ru_maxrss differs
// between systems (bytes on macOS), and some have none.
func maxRSSKiB(ps *os.ProcessState) (int64, bool) { return 0, false }

func osName() string { return runtime.GOOS }
