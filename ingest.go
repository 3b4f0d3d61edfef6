//go:build unix

// This file holds the ingest of an image: format detection,
// decompression, and the one pass that hashes, writes and checks it.

package store

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"crypto/sha512"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"
	"os"
	"path"
	"sync"
	"syscall"

	"github.com/appc/spec/schema"
	"github.com/klauspost/compress/gzip"
	"github.com/ulikunitz/xz"
)

// The WriteACI pipeline reads its input once: detect the format by its magic
// bytes, decompress in-process, and feed the uncompressed tar at the same
// time to SHA-512 (the key), to a locked temp file in tmp/ (the blob to be)
// and to a tar reader that finds and validates the manifest and checks that
// the archive is complete. Nothing is published until all of it succeeded.

const (
	// maxManifestSize bounds the manifest read into memory.
	maxManifestSize = 1 << 20
	copyBufferSize  = 1 << 20
)

var (
	magicGzip  = []byte{0x1f, 0x8b}
	magicBzip2 = []byte("BZh")
	magicXz    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
)

// ingested is an image read to its end and kept in a temp file, written but
// not yet fsynced: WriteACI syncs it when it publishes it.
type ingested struct {
	file     *tempFile
	key      string
	size     int64
	manifest *schema.ImageManifest
}

func invalidImage(err error, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %w", ErrInvalidImage, fmt.Sprintf(format, args...), err)
}

// readerPool keeps the input buffers between ingests.
var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, copyBufferSize) }}

// decompressor returns a reader of the uncompressed tar in r, which is at
// its start; slow says that decoding, not hashing, will be the wall.
func decompressor(r io.ReadSeeker) (dr io.Reader, slow bool, closer func(), err error) {
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(r)
	nop := func() { br.Reset(nil); readerPool.Put(br) }
	defer func() {
		if err != nil {
			nop()
		}
	}()
	magic, err := br.Peek(len(magicXz))
	if len(magic) == 0 {
		if err == nil || errors.Is(err, io.EOF) {
			return nil, false, nil, fmt.Errorf("%w: empty input", ErrInvalidImage)
		}
		return nil, false, nil, wrap(err, "read image")
	}
	switch {
	case bytes.HasPrefix(magic, magicGzip):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, false, nil, invalidImage(err, "gzip")
		}
		return zr, false, func() { zr.Close(); nop() }, nil
	case bytes.HasPrefix(magic, magicBzip2):
		return bzip2.NewReader(br), true, nop, nil
	case bytes.HasPrefix(magic, magicXz):
		if err := checkXzDict(r); err != nil {
			return nil, false, nil, invalidImage(err, "xz")
		}
		br.Reset(r)
		zr, err := xz.NewReader(br)
		if err != nil {
			return nil, false, nil, invalidImage(err, "xz")
		}
		return zr, true, nop, nil
	}
	return br, false, nop, nil
}

// countingReader counts the bytes the tar reader consumes.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// Seek lets the tar reader skip file contents without copying them, when
// the reader below can (the ingest pipeline). It only moves forward from
// the current position; anything else, or a reader that cannot skip, is
// refused and the tar reader falls back to reading.
func (c *countingReader) Seek(offset int64, whence int) (int64, error) {
	sk, ok := c.r.(interface{ skip(int64) (int64, error) })
	if !ok || whence != io.SeekCurrent || offset < 0 {
		return -1, errors.ErrUnsupported
	}
	n, err := sk.skip(offset)
	c.n += n
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF // the tar ended inside an entry
	}
	return c.n, err
}

// countingHash is a SHA-512 that counts the bytes it hashed.
type countingHash struct {
	hash.Hash
	n int64
}

func (c *countingHash) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.Hash.Write(p)
}

// ingest reads an image from r into a new temp file. On success the file is
// written (not yet fsynced) and still open and locked; the caller syncs and
// publishes or releases it.
func (s *Store) ingest(r io.ReadSeeker) (_ *ingested, err error) {
	if r == nil {
		return nil, fmt.Errorf("%w: nil reader", ErrInvalidArgument)
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return nil, wrap(err, "seek to start of image")
	}
	dr, slow, closeDR, err := decompressor(r)
	if err != nil {
		return nil, err
	}
	defer closeDR()

	f, err := s.createIngestFile()
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			f.release()
		}
	}()

	p := newPipeline(dr, f.File, slow, s.failpoint)
	im, err := readManifest(p)
	if err == nil {
		// The tar reader stops at the end-of-archive marker; the rest
		// (record padding) is part of the image too, and draining it
		// checks a compressed stream's trailer.
		if _, serr := p.skip(math.MaxInt64); !errors.Is(serr, io.EOF) {
			err = invalidImage(serr, "read image")
		}
	}
	sum, werr := p.finish()
	if werr != nil {
		return nil, writeError(werr, p.n)
	}
	if err != nil {
		return nil, err
	}
	s.failpoint.at("ingest-done")
	return &ingested{file: f, key: sumToKey(sum), size: p.n, manifest: im}, nil
}

// writeError explains a failure to write an image's temp file.
func writeError(err error, written int64) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("write image: the disk is full after %d bytes of uncompressed image (free space, or import a smaller image): %w", written, err)
	}
	return wrap(err, "write image")
}

// readManifest reads a tar to its end-of-archive marker and returns its
// validated manifest. A tar that ends before its marker (cut off at an
// entry boundary) is refused, like one cut inside an entry.
func readManifest(r io.Reader) (*schema.ImageManifest, error) {
	cr := &countingReader{r: r}
	tr := tar.NewReader(cr)
	var (
		im      *schema.ImageManifest
		dataEnd int64 // where the last entry's data (padded) ends
	)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, invalidImage(err, "read tar")
		}
		dataEnd = cr.n + (hdr.Size+511)/512*512
		if hdr.Typeflag == tar.TypeGNUSparse {
			dataEnd = cr.n // stored size differs from hdr.Size: no check
		}
		if path.Clean(hdr.Name) != "manifest" {
			continue
		}
		if im != nil {
			return nil, fmt.Errorf("%w: more than one manifest", ErrInvalidImage)
		}
		if hdr.Typeflag != tar.TypeReg { // the reader turns old TypeRegA into TypeReg
			return nil, fmt.Errorf("%w: manifest is not a regular file", ErrInvalidImage)
		}
		if hdr.Size > maxManifestSize {
			return nil, fmt.Errorf("%w: manifest is %d bytes, more than the limit of %d", ErrInvalidImage, hdr.Size, maxManifestSize)
		}
		data, err := io.ReadAll(io.LimitReader(tr, maxManifestSize+1))
		if err != nil {
			return nil, invalidImage(err, "read manifest")
		}
		if im, err = parseManifest(data); err != nil {
			return nil, err
		}
	}
	if cr.n < dataEnd+512 {
		return nil, fmt.Errorf("%w: read tar: %v (no end-of-archive marker)", ErrInvalidImage, io.ErrUnexpectedEOF)
	}
	if im == nil {
		return nil, fmt.Errorf("%w: missing manifest", ErrInvalidImage)
	}
	return im, nil
}

// parseManifest decodes and validates (appc schema) a manifest.
func parseManifest(data []byte) (*schema.ImageManifest, error) {
	var im schema.ImageManifest
	if err := json.Unmarshal(data, &im); err != nil {
		return nil, invalidImage(err, "manifest")
	}
	return &im, nil
}

// writeTemp writes data to a new store temp file, not yet fsynced.
func (s *Store) writeTemp(data []byte) (*tempFile, error) {
	f, err := s.createIngestFile()
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(data); err != nil {
		f.release()
		return nil, wrap(err, "write temp file")
	}
	return f, nil
}

// inspectBlob reads a stored image tar once: its key (the hash of its
// bytes), its size and its manifest.
func inspectBlob(path string) (key string, size int64, im *schema.ImageManifest, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, nil, err
	}
	defer f.Close()
	hw := &countingHash{Hash: sha512.New()}
	tee := bufio.NewReaderSize(io.TeeReader(f, hw), copyBufferSize)
	im, err = readManifest(tee)
	if err == nil {
		if _, cerr := io.Copy(io.Discard, tee); cerr != nil {
			err = cerr
		}
	}
	return sumToKey(hw.Sum(nil)), hw.n, im, err
}
