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
	// Sync makes everything written durable before Finish returns: every
	// file and directory is fsynced.
	Sync bool
	// Progress, if set, is called with the number of bytes of file data
	// written since its last call.
	Progress func(n int64)
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
	skippedDevices int
	syncer         *syncer
}

func newExtractor(dir string, opts Options) (*extractor, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	x := &extractor{
		opts:   opts,
		asRoot: os.Geteuid() == 0,
		root:   root,
		dirs:   map[string]*tar.Header{},
		made:   map[string]bool{".": true},
	}
	if opts.Sync {
		x.syncer = newSyncer()
	}
	return x, nil
}

// close releases the directory and waits for pending syncs; it is safe
// after finish and on every error path.
func (x *extractor) close() error {
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
	if x.syncer == nil {
		return nil
	}
	if err := x.syncer.wait(); err != nil {
		return err
	}
	x.syncer = nil
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
		if err := x.replace(rel); err != nil {
			return err
		}
		if err := x.root.Symlink(hdr.Linkname, rel); err != nil {
			return err
		}
		if err := x.owner(rel, hdr); err != nil {
			return err
		}
		return x.symlinkTime(rel, hdr)

	case tar.TypeLink:
		if err := x.replace(rel); err != nil {
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
func (x *extractor) file(hdr *tar.Header, rel string, r io.Reader) error {
	// The reader turns old TypeRegA into TypeReg, and gives a sparse
	// file's data with its holes, which copySparse seeks over.
	if err := x.replace(rel); err != nil {
		return err
	}
	f, err := x.root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if x.opts.Progress != nil {
		r = progressReader{r, x.opts.Progress}
	}
	if isSparse(hdr) {
		err = copySparse(f, r, hdr.Size)
	} else {
		_, err = io.Copy(f, r)
	}
	if err == nil {
		err = x.xattrs(f, hdr)
	}
	if err == nil && x.asRoot {
		err = f.Chown(hdr.Uid, hdr.Gid)
	}
	if err == nil {
		err = f.Chmod(x.mode(hdr)) // after chown, which may clear setuid
	}
	if err == nil {
		err = x.setTime(rel, hdr)
	}
	if err != nil {
		f.Close()
		return err
	}
	if x.syncer != nil {
		x.syncer.add(f) // fsynced and closed in the background
		return nil
	}
	return f.Close()
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
func copySparse(f *os.File, r io.Reader, size int64) error {
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
	return x.root.Remove(rel)
}

// mknod creates a device node or FIFO, through a descriptor of its parent
// directory opened in the root, so that no symlink is followed to outside.
func (x *extractor) mknod(rel string, hdr *tar.Header, kind uint32, dev uint64) error {
	if err := x.replace(rel); err != nil {
		return err
	}
	d, err := x.root.Open(path.Dir(rel))
	if err != nil {
		return err
	}
	defer d.Close()
	if err := mknodat(int(d.Fd()), path.Base(rel), kind|0o600, dev); err != nil {
		return &fs.PathError{Op: "mknod", Path: rel, Err: err}
	}
	return x.attrs(rel, hdr)
}

// symlinkTime sets a symlink's own modification time (os.Root has no
// Lchtimes), through a descriptor of its parent directory opened in the
// root, as mknod does.
func (x *extractor) symlinkTime(rel string, hdr *tar.Header) error {
	if hdr.ModTime.IsZero() {
		return nil
	}
	d, err := x.root.Open(path.Dir(rel))
	if err != nil {
		return err
	}
	defer d.Close()
	ts := unix.NsecToTimespec(hdr.ModTime.UnixNano())
	if err := unix.UtimesNanoAt(int(d.Fd()), path.Base(rel), []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &fs.PathError{Op: "lutimes", Path: rel, Err: err}
	}
	return nil
}

// mode is the permission bits to give an entry: setuid and setgid only
// when running as root (files then belong to the image's owners).
func (x *extractor) mode(hdr *tar.Header) fs.FileMode {
	m := hdr.FileInfo().Mode()
	keep := fs.ModePerm | fs.ModeSticky
	if x.asRoot {
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
	files chan *os.File
	wg    sync.WaitGroup
	mu    sync.Mutex
	err   error
}

const syncWorkers = 4

func newSyncer() *syncer {
	s := &syncer{files: make(chan *os.File, 256)}
	for range syncWorkers {
		s.wg.Go(func() {
			for f := range s.files {
				err := f.Sync()
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					s.mu.Lock()
					if s.err == nil {
						s.err = fmt.Errorf("sync %s: %w", f.Name(), err)
					}
					s.mu.Unlock()
				}
			}
		})
	}
	return s
}

func (s *syncer) add(f *os.File) { s.files <- f }

// wait waits for every file added and returns the first error.
func (s *syncer) wait() error {
	close(s.files)
	s.wg.Wait()
	return s.err
}
