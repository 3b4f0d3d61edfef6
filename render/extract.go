// This file holds the extractor: tar entries written below a directory
// that nothing can leave.

package render

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Options say how entries are written.
type Options struct {
	// AllowDevices creates character and block device nodes (root only).
	AllowDevices bool
	// SkipDevices leaves device nodes out and counts them; with neither
	// AllowDevices nor SkipDevices an image with a device node fails.
	SkipDevices bool
	// Sync makes everything written durable before the render returns:
	// with one syncfs(2) on Linux's local disk filesystems (ext4, xfs,
	// btrfs, f2fs, tmpfs), elsewhere by an fsync of every file (in the
	// background, while the next are written) and directory.
	Sync bool
	// Progress, if set, is called with the number of bytes of file data
	// written since its last call.
	Progress func(n int64)
	// WhileSyncing, if set, is called once everything is written, while
	// it is being made durable (the tree store hashes the tree then); its
	// error fails the render.
	WhileSyncing func() error
}

// extractor writes tar entries below a directory. Every file operation
// goes through an os.Root, which refuses paths that leave the directory
// through ".." or symlinks, so symlinks themselves can be created as the
// image has them.
type extractor struct {
	opts   Options
	asRoot bool

	root           *os.Root
	dirs           map[string]*tar.Header // attributes applied at finish
	made           map[string]bool        // directories known to exist
	written        map[string]bool        // other entries written so far
	skippedDevices int
	syncer         *syncer      // fsyncs files, where syncAll is nil
	syncAll        func() error // syncfs, where it reaches the disk

	// Directories entries went into, open: working from a directory's
	// descriptor saves walking the path from the root for each entry.
	open map[string]*os.File
	buf  [64 << 10]byte // copying file data
}

// maxOpenDirs bounds the directories kept open.
const maxOpenDirs = 128

func newExtractor(dir string, opts Options) (*extractor, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	x := &extractor{
		opts:    opts,
		asRoot:  os.Geteuid() == 0,
		root:    root,
		dirs:    map[string]*tar.Header{},
		made:    map[string]bool{".": true},
		written: map[string]bool{},
		open:    map[string]*os.File{},
	}
	if opts.Sync {
		if x.syncAll = syncWhole(dir); x.syncAll == nil {
			x.syncer = newSyncer()
		}
	}
	return x, nil
}

// close releases the directory and waits for pending syncs; it is safe
// after finish and on every error path.
func (x *extractor) close() error {
	x.forgetDirs()
	var err error
	if x.syncer != nil {
		err = x.syncer.wait()
		x.syncer = nil
	}
	if cerr := x.root.Close(); err == nil {
		err = cerr
	}
	return err
}

// finish applies the directories' attributes, deepest first, so that
// read-only ones could be filled and their times are not changed by what
// was written in them; with Sync it then waits for every file's fsync and
// fsyncs every directory.
func (x *extractor) finish() error {
	rels := make([]string, 0, len(x.dirs))
	for rel := range x.dirs {
		rels = append(rels, rel)
	}
	// Deepest first: a longer path is never the parent of a shorter one.
	slices.SortFunc(rels, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	for _, rel := range rels {
		if rel == "." {
			continue // the caller's directory: the caller decides (see rootAttrs)
		}
		if err := x.attrs(rel, x.dirs[rel]); err != nil {
			return fmt.Errorf("unpack %s: %w", x.dirs[rel].Name, err)
		}
	}
	if x.opts.WhileSyncing == nil {
		return x.sync()
	}
	synced := make(chan error, 1)
	go func() { synced <- x.sync() }()
	err := x.opts.WhileSyncing()
	if serr := <-synced; err == nil {
		err = serr
	}
	return err
}

// sync makes everything written durable, as Options.Sync says.
func (x *extractor) sync() error {
	if x.syncAll != nil {
		return x.syncAll()
	}
	if x.syncer == nil {
		return nil
	}
	err := x.syncer.wait()
	x.syncer = nil
	if err != nil {
		return err
	}
	for rel := range x.made {
		if err := x.syncDir(rel); err != nil {
			return err
		}
	}
	return nil
}

func (x *extractor) syncDir(rel string) error {
	d, err := x.root.Open(rel)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// entry writes the entry hdr at rel, a cleaned path relative to the
// directory ("." is the directory itself, whose attributes are only
// recorded). link is the hard link target of a TypeLink entry, mapped the
// same way.
func (x *extractor) entry(hdr *tar.Header, rel, link string, r io.Reader) error {
	if rel == "." {
		if hdr.Typeflag != tar.TypeDir {
			return errors.New("the root filesystem is not a directory")
		}
		x.dirs["."] = hdr
		return nil
	}
	if err := x.mkdirAll(path.Dir(rel)); err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		x.forgetDirs() // what was at rel may have been a symlink to a directory
		if !x.made[rel] {
			if fi, err := x.root.Lstat(rel); err == nil && !fi.IsDir() {
				if err := x.root.Remove(rel); err != nil {
					return err
				}
			}
			if err := x.root.Mkdir(rel, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
			x.made[rel] = true
		}
		x.dirs[rel] = hdr // the last entry of a directory gives its attributes
		return nil

	case tar.TypeReg, tar.TypeGNUSparse:
		return x.file(hdr, rel, r)

	case tar.TypeSymlink:
		d, base, err := x.newEntry(rel)
		if err != nil {
			return err
		}
		if err := unix.Symlinkat(hdr.Linkname, int(d.Fd()), base); err != nil {
			return &fs.PathError{Op: "symlink", Path: rel, Err: err}
		}
		if x.asRoot {
			if err := unix.Fchownat(int(d.Fd()), base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return &fs.PathError{Op: "lchown", Path: rel, Err: err}
			}
		}
		return setTimeAt(d, base, rel, hdr)

	case tar.TypeLink:
		if _, _, err := x.newEntry(rel); err != nil {
			return err
		}
		if err := x.root.Link(link, rel); err != nil {
			return err
		}
		return x.attrs(rel, hdr)

	case tar.TypeChar, tar.TypeBlock:
		if x.opts.SkipDevices {
			x.skippedDevices++
			return nil
		}
		if !x.opts.AllowDevices {
			return errors.New("image has a device node: give --allow-devices (as root) to create device nodes, or --skip-devices to leave them out")
		}
		kind := uint32(unix.S_IFCHR)
		if hdr.Typeflag == tar.TypeBlock {
			kind = unix.S_IFBLK
		}
		return x.mknod(rel, hdr, kind, unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))

	case tar.TypeFifo:
		return x.mknod(rel, hdr, unix.S_IFIFO, 0)
	}
	return fmt.Errorf("cannot extract a tar entry of type %q", hdr.Typeflag)
}

// mkdirAll makes the directories leading to an entry that the tar has not
// given yet, 0755 whatever the umask (as tar(1) and rkt make them).
func (x *extractor) mkdirAll(rel string) error {
	if x.made[rel] {
		return nil
	}
	if err := x.mkdirAll(path.Dir(rel)); err != nil {
		return err
	}
	fi, err := x.root.Lstat(rel)
	switch {
	case err == nil && fi.IsDir():
	case err == nil:
		return fmt.Errorf("%s is not a directory", rel)
	case errors.Is(err, fs.ErrNotExist):
		if err := x.root.Mkdir(rel, 0o755); err != nil {
			return err
		}
		if err := x.root.Chmod(rel, 0o755); err != nil {
			return err
		}
	default:
		return err
	}
	x.made[rel] = true
	return nil
}

// file writes a regular file, with its holes if the tar holds it sparse.
// It works on the raw descriptor: an *os.File would ask the poller about
// every file, two system calls each time for nothing.
func (x *extractor) file(hdr *tar.Header, rel string, r io.Reader) error {
	// The reader turns old TypeRegA into TypeReg, and gives a sparse
	// file's data with its holes, which copySparse seeks over.
	d, base, err := x.newEntry(rel)
	if err != nil {
		return err
	}
	fd, err := unix.Openat(int(d.Fd()), base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return &fs.PathError{Op: "open", Path: rel, Err: err}
	}
	f := fdFile(fd)
	if x.opts.Progress != nil {
		r = progressReader{r, x.opts.Progress}
	}
	if isSparse(hdr) {
		err = copySparse(f, r, hdr.Size)
	} else {
		_, err = io.CopyBuffer(f, r, x.buf[:])
	}
	if err == nil {
		err = x.xattrs(fd, hdr)
	}
	if err == nil && x.asRoot {
		err = ignoringEINTR(func() error { return unix.Fchown(fd, hdr.Uid, hdr.Gid) })
	}
	if err == nil {
		// After chown, which may clear setuid.
		err = ignoringEINTR(func() error { return unix.Fchmod(fd, uint32(unixMode(x.mode(hdr)))) })
	}
	if err == nil {
		err = setTimeAt(d, base, rel, hdr)
	}
	if err != nil {
		unix.Close(fd)
		return &fs.PathError{Op: "write", Path: rel, Err: err}
	}
	if x.syncer != nil {
		x.syncer.add(fd, rel) // fsynced and closed in the background
		return nil
	}
	return unix.Close(fd)
}

// fdFile writes to a raw descriptor.
type fdFile int

func (f fdFile) Write(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := unix.Write(int(f), b[n:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return n, err
		}
		n += m
	}
	return n, nil
}

func (f fdFile) WriteAt(b []byte, off int64) (int, error) {
	n := 0
	for n < len(b) {
		m, err := unix.Pwrite(int(f), b[n:], off+int64(n))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return n, err
		}
		n += m
	}
	return n, nil
}

func (f fdFile) Truncate(size int64) error {
	return ignoringEINTR(func() error { return unix.Ftruncate(int(f), size) })
}

func ignoringEINTR(fn func() error) error {
	for {
		if err := fn(); !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// unixMode is the mode bits of chmod(2) for m.
func unixMode(m fs.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		u |= unix.S_ISUID
	}
	if m&fs.ModeSetgid != 0 {
		u |= unix.S_ISGID
	}
	if m&fs.ModeSticky != 0 {
		u |= unix.S_ISVTX
	}
	return u
}

// newEntry makes room for a new non-directory entry at rel: it removes
// what an earlier entry of that name wrote (the later entry wins, as with
// tar(1)) and returns rel's directory, open, and its last element.
func (x *extractor) newEntry(rel string) (*os.File, string, error) {
	if x.made[rel] {
		return nil, "", errors.New("a directory of that name is already there")
	}
	if x.written[rel] {
		if err := x.replace(rel); err != nil {
			return nil, "", err
		}
	}
	x.written[rel] = true
	d, err := x.dir(path.Dir(rel))
	return d, path.Base(rel), err
}

// dir returns the directory rel, open (it stays open for the next
// entries).
func (x *extractor) dir(rel string) (*os.File, error) {
	if d, ok := x.open[rel]; ok {
		return d, nil
	}
	if len(x.open) >= maxOpenDirs {
		x.forgetDirs()
	}
	d, err := x.root.Open(rel)
	if err != nil {
		return nil, err
	}
	x.open[rel] = d
	return d, nil
}

// forgetDirs closes the open directories; after anything that may change
// what a directory's path leads to.
func (x *extractor) forgetDirs() {
	for rel, d := range x.open {
		d.Close()
		delete(x.open, rel)
	}
}

// setTimeAt sets the modification time of base in d, not following a
// symlink.
func setTimeAt(d *os.File, base, rel string, hdr *tar.Header) error {
	mtime := hdr.ModTime
	if mtime.IsZero() {
		mtime = time.Now()
	}
	ts := unix.NsecToTimespec(mtime.UnixNano())
	if err := unix.UtimesNanoAt(int(d.Fd()), base, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &fs.PathError{Op: "utimes", Path: rel, Err: err}
	}
	return nil
}

// keptXattrs are the extended attributes of a file entry that rkt keeps:
// file capabilities and user.*.
func keptXattrs(hdr *tar.Header) map[string]string {
	var kept map[string]string
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if ok && (name == "security.capability" || strings.HasPrefix(name, "user.")) {
			if kept == nil {
				kept = map[string]string{}
			}
			kept[name] = v
		}
	}
	return kept
}

type progressReader struct {
	r  io.Reader
	fn func(int64)
}

func (p progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.fn(int64(n))
	}
	return n, err
}

// isSparse tells whether the tar holds an entry as a sparse file, in GNU's
// old format (type S) or in one of its PAX formats.
func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// sparseBlock is the unit in which copySparse looks for holes: a
// filesystem block on most systems.
const sparseBlock = 4096

// copySparse writes the size bytes of r into f, seeking over blocks of
// zeros instead of writing them, so that a sparse file's holes stay holes
// (the tar reader gives them as zeros).
func copySparse(f fdFile, r io.Reader, size int64) error {
	buf := make([]byte, sparseBlock)
	var off int64
	for off < size {
		n, err := io.ReadFull(r, buf[:min(int64(len(buf)), size-off)])
		if err != nil {
			return err
		}
		if !allZero(buf[:n]) {
			if _, err := f.WriteAt(buf[:n], off); err != nil {
				return err
			}
		}
		off += int64(n)
	}
	return f.Truncate(size)
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// replace removes what an earlier entry of the same name left, so that the
// later entry wins as with tar(1). A directory is not replaced.
func (x *extractor) replace(rel string) error {
	fi, err := x.root.Lstat(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return errors.New("a directory of that name is already there")
	}
	x.forgetDirs() // rel may have been a symlink to an open directory
	return x.root.Remove(rel)
}

// mknod creates a device node or FIFO, through a descriptor of its parent
// directory opened in the root, so that no symlink is followed to outside.
func (x *extractor) mknod(rel string, hdr *tar.Header, kind uint32, dev uint64) error {
	d, base, err := x.newEntry(rel)
	if err != nil {
		return err
	}
	if err := mknodat(int(d.Fd()), base, kind|0o600, dev); err != nil {
		return &fs.PathError{Op: "mknod", Path: rel, Err: err}
	}
	return x.attrs(rel, hdr)
}

// mode is the permission bits to give an entry: setuid and setgid only
// when running as root (files then belong to the image's owners).
func (x *extractor) mode(hdr *tar.Header) fs.FileMode { return entryMode(hdr, x.asRoot) }

func entryMode(hdr *tar.Header, asRoot bool) fs.FileMode {
	m := hdr.FileInfo().Mode()
	keep := fs.ModePerm | fs.ModeSticky
	if asRoot {
		keep |= fs.ModeSetuid | fs.ModeSetgid
	}
	return m & keep
}

// attrs sets owner (as root), mode and modification time of a file,
// directory or node.
func (x *extractor) attrs(rel string, hdr *tar.Header) error {
	if err := x.owner(rel, hdr); err != nil {
		return err
	}
	if err := x.root.Chmod(rel, x.mode(hdr)); err != nil {
		return err
	}
	return x.setTime(rel, hdr)
}

func (x *extractor) setTime(rel string, hdr *tar.Header) error {
	mtime := hdr.ModTime
	if mtime.IsZero() {
		mtime = time.Now()
	}
	return x.root.Chtimes(rel, mtime, mtime)
}

func (x *extractor) owner(rel string, hdr *tar.Header) error {
	if !x.asRoot {
		return nil
	}
	return x.root.Lchown(rel, hdr.Uid, hdr.Gid)
}

// syncer fsyncs and closes files in the background while extraction goes
// on, so that the data reaches the disk on the second core while the
// first writes the next files.
type syncer struct {
	files chan syncFile
	wg    sync.WaitGroup
	mu    sync.Mutex
	err   error
}

type syncFile struct {
	fd  int
	rel string
}

const syncWorkers = 4

func newSyncer() *syncer {
	s := &syncer{files: make(chan syncFile, 256)}
	for range syncWorkers {
		s.wg.Go(func() {
			for f := range s.files {
				err := ignoringEINTR(func() error { return unix.Fsync(f.fd) })
				if cerr := unix.Close(f.fd); err == nil {
					err = cerr
				}
				if err != nil {
					s.mu.Lock()
					if s.err == nil {
						s.err = &fs.PathError{Op: "fsync", Path: f.rel, Err: err}
					}
					s.mu.Unlock()
				}
			}
		})
	}
	return s
}

func (s *syncer) add(fd int, rel string) { s.files <- syncFile{fd, rel} }

// wait waits for every file added and returns the first error.
func (s *syncer) wait() error {
	close(s.files)
	s.wg.Wait()
	return s.err
}
