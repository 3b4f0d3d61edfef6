package render

import (
	"archive/tar"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// xattrs sets the extended attributes that rkt sets (file capabilities
// and user.*), as root, on a regular file.
func (x *extractor) xattrs(f *os.File, hdr *tar.Header) error {
	if !x.asRoot {
		return nil
	}
	for name, value := range keptXattrs(hdr) {
		if err := unix.Fsetxattr(int(f.Fd()), name, []byte(value), 0); err != nil {
			return fmt.Errorf("set extended attribute %s: %w", name, err)
		}
	}
	return nil
}
