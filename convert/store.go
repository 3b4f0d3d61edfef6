package convert

import (
	"errors"
	"fmt"
	"io"

	store "github.com/imagestore/imagestore"
)

// Import converts the selected image and writes the ACI into s, returning
// its key. The first pass runs before the store sees anything, so a bad
// image is refused without a trace; the second streams the ACI through a
// pipe into WriteACI, which hashes and stores it in one pass, so neither
// the image nor the ACI is held in memory or in a temporary file of ours.
// A failure during the second pass fails WriteACI, which keeps nothing.
func (c *Image) Import(s *store.Store, fi store.ACIFetchInfo) (string, error) {
	p, err := c.Plan()
	if err != nil {
		return "", err
	}
	return p.Import(s, fi)
}

// Import writes the planned ACI into s; see Image.Import.
func (p *Plan) Import(s *store.Store, fi store.ACIFetchInfo) (string, error) {
	return streamInto(func(w io.Writer) error {
		_, err := p.WriteTo(w)
		return err
	}, func(r io.ReadSeeker) (string, error) {
		return s.WriteACI(r, fi)
	})
}

// streamInto runs write in a goroutine, into a pipe that store (WriteACI,
// or a Batch's Add) reads, and returns store's key. The converter's error
// wins over the store's, as it says more.
func streamInto(write func(io.Writer) error, store func(io.ReadSeeker) (string, error)) (string, error) {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := write(pw)
		pw.CloseWithError(err) // nil: EOF
		done <- err
	}()
	key, err := store(&pipeReader{r: pr})
	// Unblock the writer if the store stopped early, then wait for it.
	pr.CloseWithError(errStoreStopped)
	werr := <-done
	if werr != nil && !errors.Is(werr, errStoreStopped) {
		return "", werr
	}
	if err != nil {
		return "", err
	}
	if werr != nil {
		return "", fmt.Errorf("write image: %w", werr)
	}
	return key, nil
}

// pipeReader lets WriteACI, which takes an io.ReadSeeker, read a pipe: the
// ingest reads forward only, and its one seek is to the start before it
// reads anything. Any other seek fails.
type pipeReader struct {
	r   io.Reader
	pos int64
}

func (p *pipeReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.pos += int64(n)
	return n, err
}

// errStoreStopped ends the converter's writes when WriteACI returned.
var errStoreStopped = errors.New("the store stopped reading the ACI")

// errSeek is returned by a seek the pipe cannot do.
var errSeek = errors.New("seek on a converter's pipe: it only reads forward")

func (p *pipeReader) Seek(offset int64, whence int) (int64, error) {
	var target int64
	switch whence {
	case io.SeekStart:
		target = offset
	case io.SeekCurrent:
		target = p.pos + offset
	default:
		return p.pos, errSeek
	}
	if target != p.pos {
		return p.pos, errSeek
	}
	return p.pos, nil
}
