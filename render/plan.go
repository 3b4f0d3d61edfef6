// This file holds the plan of a render: which files of which image make
// the tree (appc's acirenderer decides, from the images' headers), and the
// check of every image's data against its key as it is written.

package render

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"

	"github.com/appc/spec/pkg/acirenderer"
)

// Plan is what a render writes: the images, upper first, and the files
// each contributes.
type Plan struct {
	Images acirenderer.Images
	Files  acirenderer.RenderedACI

	pinned map[string]*depNode // images named by imageID, by key
}

// NewPlan resolves the image's dependencies and decides which files of
// which image make the tree (see Deps.Plan).
func NewPlan(reg Registry, key string) (*Plan, error) {
	deps, err := Resolve(reg, key)
	if err != nil {
		return nil, err
	}
	return deps.Plan(reg)
}

// Plan decides, with acirenderer, which files of which image make the
// tree. acirenderer needs only the entries' names and types, so it is
// given each image's headers alone (the data is seeked over); the data is
// checked against its key, and against the whole imageID a dependant
// named, as the render writes it (Tree, Rootfs): an image whose data does
// not match fails the render.
func (d *Deps) Plan(reg Registry) (*Plan, error) {
	imgs := d.Images()
	hp := &headerProvider{reg: reg, keys: map[string]string{}}
	files, err := acirenderer.GetRenderedACIFromList(imgs, hp)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.list[0], err)
	}
	p := &Plan{Images: imgs, Files: files, pinned: map[string]*depNode{}}
	for _, n := range d.list {
		if n.pinned() != "" {
			p.pinned[n.img.Key] = n
		}
	}
	return p, nil
}

// headerProvider gives acirenderer the images as tars of their headers
// only. Its HashToKey answers for those streams: the key of the image
// whose header stream has that hash.
type headerProvider struct {
	reg  Registry
	keys map[string]string // SHA-512 of a header stream -> image key
}

func (h *headerProvider) ResolveKey(key string) (string, error) { return h.reg.ResolveKey(key) }

func (h *headerProvider) HashToKey(sum hash.Hash) string {
	return h.keys[hex.EncodeToString(sum.Sum(nil))]
}

func (h *headerProvider) ReadStream(key string) (io.ReadCloser, error) {
	rc, err := h.reg.ReadStream(key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tr := tar.NewReader(newSkipReader(rc))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("image %s: read image tar: %w", key, err)
		}
		// What acirenderer looks at: the name, and whether it is a
		// directory (anything else is some other file).
		typ := hdr.Typeflag
		if typ != tar.TypeDir {
			typ = tar.TypeReg
		}
		if err := tw.WriteHeader(&tar.Header{Name: hdr.Name, Typeflag: typ, Mode: 0o600, Format: tar.FormatPAX}); err != nil {
			return nil, fmt.Errorf("image %s: entry %q: %w", key, hdr.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	sum := sha512.Sum512(buf.Bytes())
	h.keys[hex.EncodeToString(sum[:])] = key
	return io.NopCloser(&buf), nil
}

// writeImage writes one image's share of the tree, and checks the
// image's data, read whole, against its key (and its imageID).
func (p *Plan) writeImage(reg Registry, x *extractor, files *acirenderer.ACIFiles, name nameMap) (err error) {
	rc, err := reg.ReadStream(files.Key)
	if err != nil {
		return fmt.Errorf("image %s: %w", files.Key, err)
	}
	defer rc.Close()
	sum := newHashPipe()
	defer func() {
		h := sum.wait()
		if err != nil {
			return
		}
		if got := reg.HashToKey(h); got != files.Key {
			err = fmt.Errorf("image %s: its data does not match its key (it hashes to %s)", files.Key, got)
		} else if n := p.pinned[files.Key]; n != nil {
			if full := "sha512-" + hex.EncodeToString(h.Sum(nil)); !strings.HasPrefix(full, n.pinned()) {
				err = fmt.Errorf("%s: dependency %s: the image in the store is %s, not that imageID", n.parent, describeDep(n.dep), full)
			}
		}
	}()
	// Buffered: the tar reader asks for a header at a time.
	r := io.TeeReader(bufio.NewReaderSize(rc, 1<<20), sum)
	if err := x.apply(r, name, files.FileMap); err != nil {
		return fmt.Errorf("image %s: %w", files.Key, err)
	}
	if _, err := io.Copy(io.Discard, r); err != nil { // what follows the tar, hashed too
		return fmt.Errorf("image %s: %w", files.Key, err)
	}
	return nil
}

// hashPipe computes a SHA-512 on its own goroutine, so that hashing an
// image takes the second core while the first writes its files.
type hashPipe struct {
	h    hash.Hash
	buf  []byte
	full chan []byte
	free chan []byte
	done chan struct{}
}

const hashPipeBuffers, hashPipeBufferSize = 8, 256 << 10

func newHashPipe() *hashPipe {
	p := &hashPipe{h: sha512.New(), full: make(chan []byte, hashPipeBuffers), free: make(chan []byte, hashPipeBuffers), done: make(chan struct{})}
	for range hashPipeBuffers {
		p.free <- make([]byte, 0, hashPipeBufferSize)
	}
	go func() {
		defer close(p.done)
		for b := range p.full {
			p.h.Write(b)
			p.free <- b[:0]
		}
	}()
	return p
}

// Write copies b to the hashing goroutine.
func (p *hashPipe) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		if p.buf == nil {
			p.buf = <-p.free
		}
		c := copy(p.buf[len(p.buf):cap(p.buf)], b)
		p.buf, b = p.buf[:len(p.buf)+c], b[c:]
		if len(p.buf) == cap(p.buf) {
			p.full <- p.buf
			p.buf = nil
		}
	}
	return n, nil
}

// wait hashes what is left and returns the hash of everything written.
func (p *hashPipe) wait() hash.Hash {
	if p.buf != nil {
		p.full <- p.buf
		p.buf = nil
	}
	close(p.full)
	<-p.done
	return p.h
}

// skipReader buffers a stream for a tar reader that wants its headers
// only: the tar reader reads a header a block at a time and skips the data
// with Seek, which skipReader does within its buffer when it can, so that
// an image of thousands of small files costs a few large reads rather than
// several system calls per entry.
type skipReader struct {
	r    io.Reader
	buf  []byte
	off  int   // next byte in buf
	n    int   // bytes in buf
	pos  int64 // position of buf[off] in the stream
	seek io.Seeker
}

func newSkipReader(r io.Reader) *skipReader {
	s := &skipReader{r: r, buf: make([]byte, 256<<10)}
	s.seek, _ = r.(io.Seeker)
	return s
}

func (s *skipReader) Read(p []byte) (int, error) {
	if s.off == s.n {
		n, err := s.r.Read(s.buf)
		s.off, s.n = 0, n
		if n == 0 {
			return 0, err
		}
	}
	n := copy(p, s.buf[s.off:s.n])
	s.off += n
	s.pos += int64(n)
	return n, nil
}

// Seek moves forward only (io.SeekCurrent), as the tar reader does.
func (s *skipReader) Seek(offset int64, whence int) (int64, error) {
	if whence != io.SeekCurrent || offset < 0 {
		return 0, errors.New("skipReader: only forward seeks")
	}
	if left := int64(s.n - s.off); offset <= left {
		s.off += int(offset)
		s.pos += offset
		return s.pos, nil
	}
	if s.seek == nil {
		// Read over it.
		if _, err := io.CopyN(io.Discard, s, offset); err != nil {
			return s.pos, err
		}
		return s.pos, nil
	}
	skip := offset - int64(s.n-s.off)
	if _, err := s.seek.Seek(skip, io.SeekCurrent); err != nil {
		return s.pos, err
	}
	s.off, s.n = 0, 0
	s.pos += offset
	return s.pos, nil
}
