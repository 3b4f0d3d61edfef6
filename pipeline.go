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
// share the other. With a slow decoder (xz, bzip2: the wall then) the write
// gets a goroutine of its own, so that a slow page-cache allocation never
// stalls the decoder; with a fast one a third goroutine only costs
// hand-offs (measured: tar and gzip slower, xz faster). Chunks come from a
// small ring of buffers, each back in the ring when every stage is done
// with it, which bounds memory to pipelineBuffers x pipelineChunk whatever
// the image size.
type pipeline struct {
	src  io.Reader
	file *os.File

	toHash  chan *chunk
	toWrite chan *chunk // nil when fill writes itself
	free    chan *chunk
	summed  chan []byte // the digest, once toHash is closed and drained
	written sync.WaitGroup

	cur       *chunk // the chunk the parser is reading
	off       int
	n         int64 // bytes read from src
	written64 int64 // bytes written, touched only by write
	synced    int64 // bytes handed to writeback, touched only by write
	readErr   error // from src: a bad image
	writeErr  atomic.Pointer[error]
	closed    bool
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
	// writebackEvery starts the kernel's writeback of each written span,
	// so the fsync before publishing finds little left to do.
	writebackEvery = 8 << 20
)

func newPipeline(src io.Reader, file *os.File, asyncWrite bool) *pipeline {
	p := &pipeline{
		src:    src,
		file:   file,
		toHash: make(chan *chunk, pipelineBuffers),
		free:   make(chan *chunk, pipelineBuffers),
		summed: make(chan []byte, 1),
	}
	for i := 0; i < pipelineBuffers; i++ {
		p.free <- chunkPool.Get().(*chunk)
	}
	go func() {
		h := sha512.New()
		for c := range p.toHash {
			h.Write(c.data)
			p.release(c)
		}
		p.summed <- h.Sum(nil)
	}()
	if asyncWrite {
		p.toWrite = make(chan *chunk, pipelineBuffers)
		p.written.Add(1)
		go func() {
			defer p.written.Done()
			for c := range p.toWrite {
				p.write(c)
				p.release(c)
			}
		}()
	}
	return p
}

// write appends a chunk to the temp file, unless a write already failed,
// and starts writeback every writebackEvery bytes. One goroutine at a
// time calls it.
func (p *pipeline) write(c *chunk) {
	if p.writeErr.Load() != nil {
		return
	}
	if _, err := p.file.Write(c.data); err != nil {
		p.writeErr.Store(&err)
		return
	}
	p.written64 += int64(len(c.data))
	if p.written64-p.synced >= writebackEvery {
		startWriteback(p.file, p.synced, p.written64-p.synced)
		p.synced = p.written64
	}
}

// Read serves the parser from the current chunk, filling the next one
// when it is used up.
func (p *pipeline) Read(b []byte) (int, error) {
	for p.cur == nil || p.off == len(p.cur.data) {
		if p.readErr != nil {
			return 0, p.readErr
		}
		if err := p.writeErr.Load(); err != nil {
			return 0, *err // the disk is full: stop decompressing
		}
		p.fill()
	}
	n := copy(b, p.cur.data[p.off:])
	p.off += n
	return n, nil
}

// fill reads the next chunk and hands it to the hasher and the writer.
func (p *pipeline) fill() {
	if p.cur != nil {
		p.release(p.cur) // the parser is done with it
	}
	c := <-p.free
	n, err := readChunk(p.src, c.buf)
	c.data = c.buf[:n]
	p.n += int64(n)
	if p.toWrite == nil {
		p.write(c)
		c.refs.Store(2) // hasher, parser
		p.toHash <- c
	} else {
		c.refs.Store(3) // hasher, writer, parser
		p.toHash <- c
		p.toWrite <- c
	}
	p.cur, p.off = c, 0
	if n > 0 {
		hit("ingest-copy")
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

// finish waits for the hasher and the writer and returns the digest and
// the first write error. It must be called once, on every path, so that
// both goroutines end.
func (p *pipeline) finish() ([]byte, error) {
	if p.closed {
		return nil, nil
	}
	p.closed = true
	close(p.toHash)
	if p.toWrite != nil {
		close(p.toWrite)
	}
	sum := <-p.summed
	p.written.Wait()
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
