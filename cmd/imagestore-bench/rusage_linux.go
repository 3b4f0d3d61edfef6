package main

import (
	"os"
	"syscall"
)

// maxRSSKiB is the peak resident set of an exited child in KiB: Linux
// reports ru_maxrss in KiB.
func maxRSSKiB(ps *os.ProcessState) (int64, bool) {
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0, false
	}
	return ru.Maxrss, true
}

func osName() string { return "linux" }
