package render

import (
	"archive/tar"
	"fmt"

	"golang.org/x/sys/unix"
)

// xattrs sets the extended attributes that rkt sets (file capabilities
// and user.*), as root, on a regular file.
func (x *extractor) xattrs(fd int, hdr *tar.Header) error {
	if !x.asRoot {
		return nil
	}
	for name, value := range keptXattrs(hdr) {
		if err := unix.Fsetxattr(fd, name, []byte(value), 0); err != nil {
			return fmt.Errorf("set extended attribute %s: %w", name, err)
		}
	}
	return nil
}
