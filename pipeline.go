package store

import (
	"crypto/sha512"
	"io"
	"os"
)

// pipeline is the reader the tar parser reads the uncompressed image from.
// Each chunk it reads from the decompressor is, before the parser sees it,
// written to the temp file and handed to a hashing goroutine, so that
// SHA-512 (the slowest stage) runs on one core while decompression, the
// write and the parse run on another. Chunks come from a small ring of
// buffers that the hasher hands back, which bounds memory to
// pipelineBuffers x pipelineChunk whatever the image size.
type pipeline struct {
	src  io.Reader
	file *os.File

	toHash chan []byte
	free   chan []byte
	summed chan []byte // the digest, once toHash is closed and drained

	cur      []byte // the chunk the parser is reading
	off      int
	n        int64 // bytes read from src (and written, when werr is nil)
	synced   int64 // bytes handed to writeback so far
	readErr  error // from src: a bad image
	writeErr error // from the file: a full disk, not a bad image
	closed   bool
}

const (
	pipelineChunk   = 1 << 20
	pipelineBuffers = 4
	// writebackEvery starts the kernel's writeback of each written span,
	// so the fsync before publishing finds little left to do.
	writebackEvery = 8 << 20
)

func newPipeline(src io.Reader, file *os.File) *pipeline {
	p := &pipeline{
		src:    src,
		file:   file,
		toHash: make(chan []byte, pipelineBuffers),
		free:   make(chan []byte, pipelineBuffers),
		summed: make(chan []byte, 1),
	}
	for i := 0; i < pipelineBuffers; i++ {
		p.free <- make([]byte, pipelineChunk)
	}
	go func() {
		h := sha512.New()
		for b := range p.toHash {
			h.Write(b)
			p.free <- b[:cap(b)]
		}
		p.summed <- h.Sum(nil)
	}()
	return p
}

// Read serves the parser from the current chunk, filling the next one
// when it is used up.
func (p *pipeline) Read(b []byte) (int, error) {
	for p.off == len(p.cur) {
		if p.readErr != nil {
			return 0, p.readErr
		}
		if p.writeErr != nil {
			return 0, p.writeErr
		}
		p.fill()
	}
	n := copy(b, p.cur[p.off:])
	p.off += n
	return n, nil
}

// fill reads the next chunk, writes it, and sends it to the hasher.
func (p *pipeline) fill() {
	buf := <-p.free
	n, err := readChunk(p.src, buf)
	buf = buf[:n]
	if n > 0 {
		if _, werr := p.file.Write(buf); werr != nil {
			p.writeErr = werr
		}
		p.n += int64(n)
		if p.n-p.synced >= writebackEvery {
			startWriteback(p.file, p.synced, p.n-p.synced)
			p.synced = p.n
		}
		hit("ingest-copy")
	}
	p.toHash <- buf
	p.cur, p.off = buf, 0
	if err != nil {
		p.readErr = err
	}
}

// readChunk reads until buf is full or src fails. Unlike io.ReadFull it
// keeps src's own errors: a decompressor's io.ErrUnexpectedEOF (a
// truncated stream) must not read as a clean end.
func readChunk(src io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := src.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// finish stops the hasher and returns the digest. It must be called once,
// on every path, so that the hashing goroutine ends.
func (p *pipeline) finish() []byte {
	if p.closed {
		return nil
	}
	p.closed = true
	close(p.toHash)
	return <-p.summed
}
