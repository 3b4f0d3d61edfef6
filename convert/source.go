package convert

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
)

// files gives random access to the files of an input, an archive or a
// directory, by slash-separated path relative to its root. Every format
// reader goes through it, so a path in a manifest that escapes the input
// is refused in one place.
type files interface {
	// open returns the file's content and size. A missing file is an
	// error wrapping ErrMissingBlob.
	open(name string) (io.ReadCloser, int64, error)
	exists(name string) bool
	Close() error
}

// cleanInputPath makes name relative to the input's root, refusing one that
// leaves it.
func cleanInputPath(name string) (string, error) {
	p := path.Clean(strings.TrimLeft(name, "/"))
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", fmt.Errorf("%w: %q in the input", ErrUnsafePath, name)
	}
	return p, nil
}

// dirFiles reads an image layout directory through os.Root, so symbolic
// links inside it cannot lead out of it.
type dirFiles struct {
	root *os.Root
}

func openDir(dir string) (*dirFiles, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", dir, err)
	}
	return &dirFiles{root: root}, nil
}

func (d *dirFiles) open(name string) (io.ReadCloser, int64, error) {
	p, err := cleanInputPath(name)
	if err != nil {
		return nil, 0, err
	}
	f, err := d.root.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, 0, fmt.Errorf("%w: %s", ErrMissingBlob, name)
		}
		return nil, 0, fmt.Errorf("open %s: %w", name, err)
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = invalidf("%s is not a regular file", name)
	}
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, st.Size(), nil
}

func (d *dirFiles) exists(name string) bool {
	p, err := cleanInputPath(name)
	if err != nil {
		return false
	}
	st, err := d.root.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

func (d *dirFiles) Close() error { return d.root.Close() }

// tarFiles reads an archive (docker save's output, an OCI archive) in
// place: one pass over its headers records where each file's data lies,
// and opening a file is then a section of the archive, so a multi-GiB
// archive is neither copied nor scanned again for each layer.
type tarFiles struct {
	f       *os.File
	entries map[string]tarFile
}

type tarFile struct {
	typ      byte
	offset   int64
	size     int64
	linkname string // cleaned; for links
}

// seekCounter tells the tar reader it may seek (so it skips file data
// without reading it) and tracks the offset where each file's data starts.
type seekCounter struct {
	f   *os.File
	pos int64
}

func (s *seekCounter) Read(p []byte) (int, error) {
	n, err := s.f.Read(p)
	s.pos += int64(n)
	return n, err
}

func (s *seekCounter) Seek(offset int64, whence int) (int64, error) {
	pos, err := s.f.Seek(offset, whence)
	if err == nil {
		s.pos = pos
	}
	return pos, err
}

// openTar indexes the archive f. It fails with ErrUnknownFormat when f is
// not a tar.
func openTar(f *os.File) (*tarFiles, error) {
	sc := &seekCounter{f: f}
	tr := tar.NewReader(sc)
	t := &tarFiles{f: f, entries: make(map[string]tarFile)}
	for n := 0; ; n++ {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			if n == 0 {
				return nil, fmt.Errorf("%w: an empty archive", ErrUnknownFormat)
			}
			return t, nil
		}
		if err != nil {
			if n == 0 || !t.hasMarker() {
				return nil, fmt.Errorf("%w: %s is not a tar archive (a compressed archive must be decompressed first): %v", ErrUnknownFormat, f.Name(), err)
			}
			return nil, invalidf("read archive %s: %v", f.Name(), err)
		}
		// A name that leaves the archive is left out: no image file
		// can refer to it (and the archive may be an ACI, judged by
		// the store).
		name, err := cleanInputPath(hdr.Name)
		if err != nil {
			continue
		}
		if n == 0 && (name == "manifest" || name == "rootfs") {
			// An ACI: no image archive has these at its top.
			return nil, fmt.Errorf("%w: %s is an ACI", ErrUnknownFormat, f.Name())
		}
		e := tarFile{typ: hdr.Typeflag, offset: sc.pos, size: hdr.Size}
		switch hdr.Typeflag {
		case tar.TypeReg, tar.TypeRegA:
			e.typ = tar.TypeReg
		case tar.TypeSymlink:
			target := hdr.Linkname
			if !path.IsAbs(target) {
				target = path.Join(path.Dir(name), target)
			}
			if e.linkname, err = cleanInputPath(target); err != nil {
				continue
			}
		case tar.TypeLink:
			if e.linkname, err = cleanInputPath(hdr.Linkname); err != nil {
				continue
			}
		default:
			continue
		}
		t.entries[name] = e
	}
}

// hasMarker tells whether the archive has shown a file that only image
// archives have.
func (t *tarFiles) hasMarker() bool {
	for _, m := range []string{"manifest.json", "index.json", "oci-layout", "repositories"} {
		if _, ok := t.entries[m]; ok {
			return true
		}
	}
	return false
}

// resolve follows links to a regular file.
func (t *tarFiles) resolve(name string) (tarFile, error) {
	p, err := cleanInputPath(name)
	if err != nil {
		return tarFile{}, err
	}
	for range 16 {
		e, ok := t.entries[p]
		if !ok {
			return tarFile{}, fmt.Errorf("%w: %s", ErrMissingBlob, name)
		}
		if e.typ == tar.TypeReg {
			return e, nil
		}
		p = e.linkname
	}
	return tarFile{}, invalidf("%s: too many links", name)
}

func (t *tarFiles) open(name string) (io.ReadCloser, int64, error) {
	e, err := t.resolve(name)
	if err != nil {
		return nil, 0, err
	}
	return io.NopCloser(io.NewSectionReader(t.f, e.offset, e.size)), e.size, nil
}

func (t *tarFiles) exists(name string) bool {
	_, err := t.resolve(name)
	return err == nil
}

func (t *tarFiles) Close() error { return t.f.Close() }

// maxJSONSize bounds the JSON documents (manifests, configs, indexes) read
// into memory.
const maxJSONSize = 16 << 20

// readSmall reads a whole JSON document of the input.
func readSmall(fsys files, name string) ([]byte, error) {
	rc, size, err := fsys.open(name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if size > maxJSONSize {
		return nil, invalidf("%s is %d bytes, more than the limit of %d", name, size, maxJSONSize)
	}
	data, err := io.ReadAll(io.LimitReader(rc, maxJSONSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return data, nil
}
