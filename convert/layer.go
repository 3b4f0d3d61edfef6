package convert

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// layerCompression of a layer blob.
type layerCompression int

const (
	sniff layerCompression = iota // docker archives record no media type
	uncompressed
	gzipped
	zstdCompressed
)

// layerRef is one layer of an image as the input describes it.
type layerRef struct {
	path   string           // of the blob in the input
	comp   layerCompression // from the media type, or sniff
	digest v1.Hash          // of the blob as stored; zero: nothing to check
	diffID v1.Hash          // of the uncompressed tar; zero: nothing to check
	name   string           // for messages and progress: the best digest known
}

// compressionOf maps a layer media type to its layerCompression.
func compressionOf(mt types.MediaType) (layerCompression, error) {
	switch mt {
	case types.OCIUncompressedLayer, types.OCIUncompressedRestrictedLayer, types.DockerUncompressedLayer:
		return uncompressed, nil
	case types.OCILayer, types.OCIRestrictedLayer, types.DockerLayer, types.DockerForeignLayer:
		return gzipped, nil
	case types.OCILayerZStd, "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd":
		return zstdCompressed, nil
	}
	return 0, fmt.Errorf("%w: layer media type %q", ErrUnsupportedMediaType, mt)
}

func newHasher(h v1.Hash) (hash.Hash, error) {
	switch h.Algorithm {
	case "sha256":
		return sha256.New(), nil
	case "sha512":
		return sha512.New(), nil
	}
	return nil, invalidf("digest %s: unsupported algorithm", h)
}

// checkDigest compares a finished hash with the digest expected.
func checkDigest(what string, want v1.Hash, got hash.Hash) error {
	if sum := fmt.Sprintf("%x", got.Sum(nil)); sum != want.Hex {
		return fmt.Errorf("%w: %s: want %s, have %s:%s", ErrDigestMismatch, what, want, want.Algorithm, sum)
	}
	return nil
}

// progressReader reports the bytes read of a blob.
type progressReader struct {
	r     io.Reader
	n     int64
	total int64
	step  func(done, total int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if p.step != nil && n > 0 {
		p.step(p.n, p.total)
	}
	return n, err
}

// layerStream reads one layer's uncompressed tar and checks its digests
// when it has been read to the end.
type layerStream struct {
	io.Reader // the uncompressed tar
	raw       io.Reader
	closers   []func() error
	blobHash  hash.Hash
	diffHash  hash.Hash // always set: the layered import names layers by it
	ref       layerRef
}

// openLayer opens a layer for reading; step (may be nil) is told the
// bytes of the blob read so far, and its size.
func openLayer(fsys files, l layerRef, step func(done, total int64)) (_ *layerStream, size int64, err error) {
	rc, size, err := fsys.open(l.path)
	if err != nil {
		return nil, 0, fmt.Errorf("layer %s: %w", l.name, err)
	}
	s := &layerStream{ref: l, closers: []func() error{rc.Close}}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if step != nil {
		step(0, size)
	}
	var raw io.Reader = &progressReader{r: rc, total: size, step: step}
	if l.digest.Hex != "" {
		if s.blobHash, err = newHasher(l.digest); err != nil {
			return nil, 0, err
		}
		raw = io.TeeReader(raw, s.blobHash)
	}
	br := bufio.NewReaderSize(raw, 64<<10)
	s.raw = br
	comp := l.comp
	if comp == sniff {
		magic, _ := br.Peek(6)
		switch {
		case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
			comp = gzipped
		case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
			comp = zstdCompressed
		case bytes.HasPrefix(magic, []byte("BZh")):
			s.Reader = bzip2.NewReader(br)
		case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}):
			zr, err := xz.NewReader(br)
			if err != nil {
				return nil, 0, invalidf("layer %s: xz: %v", l.name, err)
			}
			s.Reader = zr
		default:
			comp = uncompressed
		}
	}
	switch comp {
	case uncompressed:
		s.Reader = br
	case gzipped:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, 0, invalidf("layer %s: gzip: %v", l.name, err)
		}
		s.closers = append(s.closers, zr.Close)
		s.Reader = zr
	case zstdCompressed:
		// One goroutine and low memory: the decoder's buffers are the
		// bulk of the converter's memory otherwise.
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, 0, invalidf("layer %s: zstd: %v", l.name, err)
		}
		s.closers = append(s.closers, func() error { zr.Close(); return nil })
		s.Reader = zr
	}
	// The uncompressed layer is hashed even when the input records no
	// diff_id (a pre-1.10 archive): a layered import names each layer
	// ACI after the diff_ids of its chain, whatever the format.
	want := l.diffID
	if want.Hex == "" {
		want = v1.Hash{Algorithm: "sha256"}
	}
	if s.diffHash, err = newHasher(want); err != nil {
		return nil, 0, err
	}
	s.Reader = io.TeeReader(s.Reader, s.diffHash)
	return s, size, nil
}

// finish reads what the tar reader left (the end-of-archive padding, a
// compressed stream's trailer) and checks the digests.
func (s *layerStream) finish() error {
	if _, err := io.Copy(io.Discard, s.Reader); err != nil {
		return invalidf("layer %s: %v", s.ref.name, err)
	}
	if _, err := io.Copy(io.Discard, s.raw); err != nil {
		return invalidf("layer %s: %v", s.ref.name, err)
	}
	if s.blobHash != nil {
		if err := checkDigest("layer "+s.ref.path, s.ref.digest, s.blobHash); err != nil {
			return err
		}
	}
	if s.ref.diffID.Hex != "" {
		if err := checkDigest("uncompressed layer "+s.ref.path, s.ref.diffID, s.diffHash); err != nil {
			return err
		}
	}
	return nil
}

// diffID is the digest of the uncompressed layer, once finish has
// checked it: the one the input records, else the sha256 computed.
func (s *layerStream) diffID() string {
	if s.ref.diffID.Hex != "" {
		return s.ref.diffID.String()
	}
	return fmt.Sprintf("sha256:%x", s.diffHash.Sum(nil))
}

func (s *layerStream) Close() error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i]())
	}
	return errors.Join(errs...)
}
