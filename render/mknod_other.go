//go:build unix && !linux && !freebsd

package render

import (
	"errors"
	"fmt"
	"runtime"
)

// mknodat would create a device node or FIFO named name in the directory
// dirfd. golang.org/x/sys offers no mknodat on this system, and creating
// the node by path could follow a symlink out of the extraction directory,
// so extract refuses such entries here rather than leave them out.
func mknodat(dirfd int, name string, mode uint32, dev uint64) error {
	return fmt.Errorf("creating device nodes and FIFOs is not supported on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}
