//go:build unix && !linux

package render

import (
	"archive/tar"
	"errors"
	"fmt"
	"runtime"
)

// xattrs would set the extended attributes rkt sets; here the image's
// are refused rather than left out.
func (x *extractor) xattrs(fd int, hdr *tar.Header) error {
	if !x.asRoot {
		return nil
	}
	for name := range keptXattrs(hdr) {
		return fmt.Errorf("extended attribute %s: setting extended attributes is not supported on %s: %w", name, runtime.GOOS, errors.ErrUnsupported)
	}
	return nil
}
