//go:build unix

// This file holds the ingest pipeline: the ring of buffers shared by the
// hasher, the temp file's writer and the tar parser.

package store

import (
	"crypto/sha512"
	"io"
	"os"
	"sync"
	"sync/atomic"
)

// pipeline is the reader the tar parser reads the uncompressed image from.
// Each chunk it reads from the decompressor goes to a hashing goroutine and
// to the parser, and is written to the temp file: SHA-512 (the wall for tar
// and gzip input) runs on one core while decoding, writing and parsing
// share the other. With a slow decoder (xz, bzip2: the wall then) the
// hashing goroutine writes too, so the decoder's goroutine does nothing
// but decode and parse; a third goroutine for the writes was slower, as
// was writing on the hasher with a fast decoder (docs/performance.md has
// the measurements). Chunks come from a small ring of buffers, each back
// in the ring when every stage is done with it, which bounds memory to
// pipelineBuffers x pipelineChunk whatever the image size.
type pipeline struct {
	src       io.Reader
	file      *os.File
	failpoint failpoints

	toHash    chan *chunk
	free      chan *chunk
	summed    chan []byte // the digest, once toHash is closed and drained
	hashWrite bool        // the hasher writes each chunk after hashing it

	cur      *chunk // the chunk the parser is reading
	off      int
	n        int64 // bytes read from src
	written  int64 // bytes written, touched only by write
	synced   int64 // bytes handed to writeback, touched only by write
	readErr  error // from src: a bad image
	writeErr atomic.Pointer[error]
	closed   bool
}

// chunk is one buffer of the ring and the count of stages still using it.
type chunk struct {
	buf  []byte
	data []byte
	refs atomic.Int32
}

func (p *pipeline) release(c *chunk) {
	if c.refs.Add(-1) == 0 {
		p.free <- c
	}
}

// chunkPool keeps the ring's buffers between ingests: a tiny image would
// otherwise pay for allocating and zeroing megabytes it never uses.
var chunkPool = sync.Pool{New: func() any { return &chunk{buf: make([]byte, pipelineChunk)} }}

const (
	pipelineChunk   = 1 << 20
	pipelineBuffers = 6
	// Writeback of each written span is started as it is written, so the
	// fsync before publishing finds little left to do. A long span suits
	// writes on the decoder's goroutine, which then stalls less often; a
	// short one suits writes on the hasher's, which must not hold up the
	// next chunk's hash for long. Both were chosen by measurement
	// (docs/performance.md).
	writebackFast = 8 << 20
	writebackSlow = 2 << 20
)

// newPipeline starts the hasher for an image read from src into file;
// slow says that decoding src, not hashing, is the wall.
func newPipeline(src io.Reader, file *os.File, slow bool, fp failpoints) *pipeline {
	p := &pipeline{
		src:       src,
		file:      file,
		failpoint: fp,
		toHash:    make(chan *chunk, pipelineBuffers),
		free:      make(chan *chunk, pipelineBuffers),
		summed:    make(chan []byte, 1),
		hashWrite: slow,
	}
	for i := 0; i < pipelineBuffers; i++ {
		p.free <- chunkPool.Get().(*chunk)
	}
	go func() {
		h := sha512.New()
		for c := range p.toHash {
			h.Write(c.data)
			if p.hashWrite {
				p.write(c)
			}
			p.release(c)
		}
		p.summed <- h.Sum(nil)
	}()
	return p
}

// write appends a chunk to the temp file, unless a write already failed,
// and starts writeback of each span written (writebackFast or
// writebackSlow bytes). One goroutine at a time calls it.
func (p *pipeline) write(c *chunk) {
	if p.writeErr.Load() != nil {
		return
	}
	if _, err := p.file.Write(c.data); err != nil {
		p.writeErr.Store(&err)
		return
	}
	p.written += int64(len(c.data))
	span := int64(writebackFast)
	if p.hashWrite {
		span = writebackSlow
	}
	if p.written-p.synced >= span {
		startWriteback(p.file, p.synced, p.written-p.synced)
		p.synced = p.written
	}
}

// Read serves the parser from the current chunk, filling the next one
// when it is used up.
func (p *pipeline) Read(b []byte) (int, error) {
	data, err := p.next()
	if err != nil {
		return 0, err
	}
	n := copy(b, data)
	p.off += n
	return n, nil
}

// skip passes over n bytes of the stream without copying them (they are
// still hashed and written): the tar parser skips file contents this way.
// At the end of the stream it returns src's error, io.EOF for a clean end.
func (p *pipeline) skip(n int64) (int64, error) {
	var done int64
	for done < n {
		data, err := p.next()
		if err != nil {
			return done, err
		}
		k := int(min(int64(len(data)), n-done))
		p.off += k
		done += int64(k)
	}
	return done, nil
}

// next returns the unread part of the current chunk, filling a new one
// when it is used up.
func (p *pipeline) next() ([]byte, error) {
	for p.cur == nil || p.off == len(p.cur.data) {
		if p.readErr != nil {
			return nil, p.readErr
		}
		if err := p.writeErr.Load(); err != nil {
			return nil, *err // the disk is full: stop decompressing
		}
		p.fill()
	}
	return p.cur.data[p.off:], nil
}

// fill reads the next chunk and hands it to the hasher (and writes it,
// unless the hasher does).
func (p *pipeline) fill() {
	if p.cur != nil {
		p.release(p.cur) // the parser is done with it
	}
	c := <-p.free
	n, err := readChunk(p.src, c.buf)
	c.data = c.buf[:n]
	p.n += int64(n)
	if !p.hashWrite {
		p.write(c)
	}
	c.refs.Store(2) // hasher, parser
	p.toHash <- c
	p.cur, p.off = c, 0
	if n > 0 {
		p.failpoint.at("ingest-copy")
	}
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

// finish waits for the hasher and returns the digest and the first write
// error. It must be called once, on every path, so that the hasher ends.
func (p *pipeline) finish() ([]byte, error) {
	if p.closed {
		return nil, nil
	}
	p.closed = true
	close(p.toHash)
	sum := <-p.summed
	if p.cur != nil {
		p.release(p.cur) // the parser is done too
		p.cur = nil
	}
	for i := 0; i < pipelineBuffers; i++ { // every chunk is back in the ring
		c := <-p.free
		c.data = nil
		chunkPool.Put(c)
	}
	if err := p.writeErr.Load(); err != nil {
		return sum, *err
	}
	return sum, nil
}
