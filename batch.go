//go:build unix

// This file holds Batch: several images written with one commit.

package store

import (
	"io"
	"sync"
)

// Batch writes several images that become visible together, with one
// database commit and one WAL flush (a layered import writes an image's
// layers so). Add ingests each image into the store's tmp/ as WriteACI
// does; Commit publishes them all in WriteACI's order: every blob and
// manifest renamed into place and fsynced, their directories fsynced, then
// one transaction records every row. A crash before that commit leaves
// none of them (recovery removes the files, as for WriteACI); after it,
// all. Discard drops what was added and not committed.
//
// A Batch is safe for use by several goroutines. Each image costs the
// fsync of its blob and of its manifest; the directories are fsynced once
// per batch each, and the WAL once, where WriteACI pays all of them for
// every image.
type Batch struct {
	s    *Store
	mu   sync.Mutex
	ps   []*pending
	done bool
}

// NewBatch starts an empty batch.
func (s *Store) NewBatch() *Batch { return &Batch{s: s} }

// Add reads an image from r, as WriteACI reads it, into a temp file of the
// store, and returns its key. Nothing is visible before Commit. An image
// added twice is written once, marked latest if either asked for it.
func (b *Batch) Add(r io.ReadSeeker, fetchInfo ACIFetchInfo) (string, error) {
	if err := b.s.live(); err != nil {
		return "", err
	}
	p, err := b.s.prepare(r, fetchInfo)
	if err != nil {
		return "", err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		p.release()
		return "", wrap(ErrInvalidArgument, "write image: the batch was committed or discarded")
	}
	for _, q := range b.ps {
		if q.in.key == p.in.key {
			q.fi.Latest = q.fi.Latest || p.fi.Latest
			p.release()
			return q.in.key, nil
		}
	}
	b.ps = append(b.ps, p)
	return p.in.key, nil
}

// Len tells how many distinct images were added.
func (b *Batch) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.ps)
}

// Commit publishes every image added, durably, in one commit. Whether it
// succeeds or fails, the batch is then spent: its temp files are gone.
func (b *Batch) Commit() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return wrap(ErrInvalidArgument, "write images: the batch was committed or discarded")
	}
	b.done = true
	defer b.releaseLocked()
	if err := b.s.live(); err != nil {
		return err
	}
	if len(b.ps) == 0 {
		return nil
	}
	return b.s.publish(b.ps)
}

// Discard drops the images added and not committed. It may be called
// after Commit, and more than once.
func (b *Batch) Discard() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done = true
	b.releaseLocked()
}

func (b *Batch) releaseLocked() {
	for _, p := range b.ps {
		p.release()
	}
	b.ps = nil
}
