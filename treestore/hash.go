// This file holds the tree's hash and size, computed as rkt computes
// them, so that rkt's trees pass Check here and ours pass rkt's.

package treestore

import (
	"archive/tar"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	"golang.org/x/sys/unix"
)

// keyOf is the store's key of data: "sha512-" and the first 64 hex
// digits of its SHA-512.
func keyOf(data []byte) string {
	sum := sha512.Sum512(data)
	return "sha512-" + hex.EncodeToString(sum[:32])
}

// fileInfo is what rkt's tree hash records of each entry, JSON-encoded
// in this field order (rkt's treestore.fileInfo).
type fileInfo struct {
	Name     string
	Mode     int64
	UID      int
	GID      int
	Size     int64
	Typeflag byte
	Linkname string
	Devmajor int64
	Devminor int64
	Xattrs   []xattr
}

type xattr struct {
	Name  string
	Value string
}

// Hash computes the tree's hash as rkt's does: the SHA-512, as a key, of
// every entry below the tree's directory in lexical order (the manifest,
// hash, rendered and image files left out), each as the JSON of its
// fileInfo followed by its data. A second link to a file already seen is
// an entry of type hard link without data.
//
// The walk (stat and read) and the hashing run on two goroutines, so a
// Check uses two cores: the hashing is one sequential SHA-512 by design.
func (ts *Store) Hash(id string) (string, error) {
	if err := checkID(id); err != nil {
		return "", err
	}
	root := ts.GetPath(id)
	chunks := make(chan []byte, 64)
	free := make(chan []byte, 64)
	for range cap(free) {
		free <- make([]byte, 0, 256<<10)
	}
	var walkErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(chunks)
		w := &hashWalker{root: root, seen: map[uint64]string{}, out: chunks, free: free}
		walkErr = w.walk(".", true)
	}()
	h := sha512.New()
	for c := range chunks {
		h.Write(c)
		free <- c[:0]
	}
	<-done
	if walkErr != nil {
		return "", fmt.Errorf("error walking rootfs: %w", walkErr)
	}
	return "sha512-" + hex.EncodeToString(h.Sum(nil))[:64], nil
}

// hashWalker walks a tree in filepath.Walk's order and sends what the
// hash covers, in order, as chunks of at most a buffer's size.
type hashWalker struct {
	root string
	seen map[uint64]string // inode -> first path, for hard links
	out  chan<- []byte
	free <-chan []byte
	buf  []byte
}

func (w *hashWalker) walk(rel string, top bool) error {
	path := filepath.Join(w.root, rel)
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	if !top {
		if err := w.entry(rel, path, fi); err != nil {
			return err
		}
	}
	if !fi.IsDir() {
		return w.flushIf(top)
	}
	names, err := readDirNames(path)
	if err != nil {
		return err
	}
	for _, name := range names {
		if top && (name == manifestFile || name == hashFile || name == renderedFile || name == imageFile) {
			continue
		}
		if err := w.walk(filepath.Join(rel, name), false); err != nil {
			return err
		}
	}
	return w.flushIf(top)
}

func (w *hashWalker) flushIf(top bool) error {
	if top && len(w.buf) > 0 {
		w.out <- w.buf
		w.buf = nil
	}
	return nil
}

func readDirNames(dir string) ([]string, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	return names, nil
}

// entry adds one entry: its header's JSON, then its data.
func (w *hashWalker) entry(rel, path string, fi fs.FileInfo) error {
	if fi.Mode()&fs.ModeSocket != 0 {
		return nil // rkt leaves sockets out
	}
	link := ""
	if fi.Mode()&fs.ModeSymlink != 0 {
		var err error
		if link, err = os.Readlink(path); err != nil {
			return err
		}
	}
	hdr, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return err
	}
	hdr.Name = rel
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%s: no stat information", path)
	}
	hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
	if t := st.Mode & syscall.S_IFMT; t == syscall.S_IFBLK || t == syscall.S_IFCHR {
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(uint64(st.Rdev))), int64(unix.Minor(uint64(st.Rdev)))
	}
	if first, ok := w.seen[uint64(st.Ino)]; ok {
		hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
	} else {
		w.seen[uint64(st.Ino)] = rel
	}
	j, err := json.Marshal(&fileInfo{
		Name: hdr.Name, Mode: hdr.Mode, UID: hdr.Uid, GID: hdr.Gid, Size: hdr.Size,
		Typeflag: hdr.Typeflag, Linkname: hdr.Linkname, Devmajor: hdr.Devmajor, Devminor: hdr.Devminor,
		Xattrs: []xattr{}, // tar.FileInfoHeader reads none
	})
	if err != nil {
		return err
	}
	w.write(j)
	if hdr.Typeflag != tar.TypeReg {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	for {
		if w.buf == nil {
			w.buf = <-w.free
		}
		n, err := f.Read(w.buf[len(w.buf):cap(w.buf)])
		w.buf = w.buf[:len(w.buf)+n]
		if len(w.buf) == cap(w.buf) {
			w.out <- w.buf
			w.buf = nil
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// write adds small data (a header) to the current chunk.
func (w *hashWalker) write(p []byte) {
	for len(p) > 0 {
		if w.buf == nil {
			w.buf = <-w.free
		}
		n := copy(w.buf[len(w.buf):cap(w.buf)], p)
		w.buf = w.buf[:len(w.buf)+n]
		p = p[n:]
		if len(w.buf) == cap(w.buf) {
			w.out <- w.buf
			w.buf = nil
		}
	}
}

// dirSize adds up the sizes of everything below dir and dir itself, as
// rkt's fileutil.DirSize does: a file with several links counts once.
func dirSize(dir string) (int64, error) {
	seen := map[uint64]bool{}
	var total int64
	err := filepath.Walk(dir, func(path string, fi fs.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
			if seen[uint64(st.Ino)] {
				return nil
			}
			seen[uint64(st.Ino)] = true
		}
		total += fi.Size()
		return nil
	})
	return total, err
}
