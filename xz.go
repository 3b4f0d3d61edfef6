//go:build unix

// This file holds the xz decoder's guard: the dictionary size checked
// before any allocation.

package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// An xz block names the dictionary size its LZMA2 decoder needs, up to
// 4 GiB, and the decoder allocates it: a few hundred bytes of input could
// make a host process allocate gigabytes. checkXzDict reads the index at
// the end of each xz stream (the input is seekable), visits every block
// header, and refuses a dictionary larger than maxXzDict before anything
// is decompressed. xz -9 uses 64 MiB.
const (
	maxXzDict      = 64 << 20
	maxXzIndexSize = 16 << 20
)

var (
	xzFooterMagic = []byte("YZ")
	errXzIndex    = errors.New("xz: malformed stream index")
)

func checkXzDict(r io.ReadSeeker) error {
	end, err := r.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	defer r.Seek(0, io.SeekStart)
	read := func(off, n int64) ([]byte, error) {
		if off < 0 || n < 0 || off+n > end {
			return nil, errXzIndex
		}
		b := make([]byte, n)
		if _, err := r.Seek(off, io.SeekStart); err != nil {
			return nil, err
		}
		_, err := io.ReadFull(r, b)
		return b, err
	}
	pos := end
	for pos > 0 {
		// Stream padding: groups of four zero bytes.
		if pos >= 4 {
			pad, err := read(pos-4, 4)
			if err != nil {
				return err
			}
			if bytes.Equal(pad, []byte{0, 0, 0, 0}) {
				pos -= 4
				continue
			}
		}
		footer, err := read(pos-12, 12)
		if err != nil || !bytes.Equal(footer[10:], xzFooterMagic) {
			return errXzIndex
		}
		indexSize := (int64(binary.LittleEndian.Uint32(footer[4:8])) + 1) * 4
		if indexSize > maxXzIndexSize {
			return errXzIndex
		}
		indexStart := pos - 12 - indexSize
		index, err := read(indexStart, indexSize)
		if err != nil {
			return err
		}
		blocks, err := xzBlockSizes(index)
		if err != nil {
			return err
		}
		var total int64
		for _, b := range blocks {
			total += b
		}
		streamStart := indexStart - total - 12
		header, err := read(streamStart, 12)
		if err != nil || !bytes.Equal(header[:6], magicXz) {
			return errXzIndex
		}
		off := streamStart + 12
		for _, size := range blocks {
			if err := checkXzBlockHeader(read, off); err != nil {
				return err
			}
			off += size
		}
		pos = streamStart
	}
	return nil
}

// xzBlockSizes parses an index: the size each block takes in the stream.
func xzBlockSizes(index []byte) ([]int64, error) {
	// At least the indicator, a record count, padding and the CRC32.
	if len(index) < 8 || index[0] != 0 {
		return nil, errXzIndex
	}
	rd := bytes.NewReader(index[1 : len(index)-4]) // without the CRC32
	n, err := binary.ReadUvarint(rd)
	if err != nil || n > uint64(len(index)) {
		return nil, errXzIndex
	}
	sizes := make([]int64, 0, n)
	for i := uint64(0); i < n; i++ {
		unpadded, err1 := binary.ReadUvarint(rd)
		_, err2 := binary.ReadUvarint(rd) // uncompressed size
		if err1 != nil || err2 != nil || unpadded == 0 || unpadded > 1<<62 {
			return nil, errXzIndex
		}
		sizes = append(sizes, int64((unpadded+3)&^3))
	}
	return sizes, nil
}

// checkXzBlockHeader reads the block header at off and checks the
// dictionary size of its LZMA2 filter.
func checkXzBlockHeader(read func(off, n int64) ([]byte, error), off int64) error {
	first, err := read(off, 1)
	if err != nil {
		return err
	}
	if first[0] == 0 {
		return errXzIndex // an index where a block should be
	}
	h, err := read(off, (int64(first[0])+1)*4) // at least 8 bytes
	if err != nil {
		return err
	}
	rd := bytes.NewReader(h[2 : len(h)-4])
	flags := h[1]
	if flags&0x40 != 0 {
		if _, err := binary.ReadUvarint(rd); err != nil {
			return errXzIndex
		}
	}
	if flags&0x80 != 0 {
		if _, err := binary.ReadUvarint(rd); err != nil {
			return errXzIndex
		}
	}
	for i := 0; i < int(flags&0x03)+1; i++ {
		id, err1 := binary.ReadUvarint(rd)
		n, err2 := binary.ReadUvarint(rd)
		if err1 != nil || err2 != nil || n > uint64(rd.Len()) {
			return errXzIndex
		}
		props := make([]byte, n)
		io.ReadFull(rd, props)
		if id == 0x21 { // LZMA2
			if n != 1 {
				return errXzIndex
			}
			if dict := xzDictSize(props[0]); dict > maxXzDict {
				return fmt.Errorf("xz: block needs a %d MiB dictionary, more than the limit of %d MiB", dict>>20, maxXzDict>>20)
			}
		}
	}
	return nil
}

// xzDictSize decodes an LZMA2 dictionary size byte.
func xzDictSize(b byte) int64 {
	if b >= 40 {
		return 1<<32 - 1
	}
	return int64(2|b&1) << (b/2 + 11)
}
