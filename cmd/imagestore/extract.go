package main

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	store "github.com/imagestore/imagestore"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

func (a *app) extractCommand() *cobra.Command {
	var allowDevices, skipDevices bool
	cmd := &cobra.Command{
		Use:   "extract KEY|NAME[:version] DIR",
		Short: "Unpack an image's root filesystem into a new directory",
		Long: `Extract unpacks the image's root filesystem (the rootfs/ entries of the
tar) into DIR, which must not exist or be empty. It is unpacked into a
temporary directory beside DIR and renamed into place when complete, so a
failure leaves nothing behind. DIR gets the rootfs entry's mode and
modification time (and its owner, as root).

Symlinks are created as they are, absolute ones included: in a root
filesystem "/bin/busybox" means DIR/bin/busybox. Nothing is ever written
outside DIR: an entry whose name is absolute or climbs out with "..", an
entry that would be written through a symlink to outside DIR, and a hard
link to outside the root filesystem make the whole extraction fail.

Every entry is extracted or the command fails: sparse files are extracted
(holes kept), and an entry type it cannot create is an error. Device nodes
need a choice: --allow-devices creates them (root only), --skip-devices
leaves them out with a warning; with neither, an image that has any fails.

As root, owners, modes and times are kept as in the image. As another
user, files belong to the caller, and the setuid and setgid bits are
dropped (the sticky bit is kept); nothing else is dropped.`,
		Example: `  imagestore extract example.com/hello:1.0.0 ./hello-rootfs
  sudo imagestore extract --allow-devices sha512-1c9abf1ff224 /var/lib/machines/hello`,
		Args: exactArgs(2),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) == 1 {
				return nil, cobra.ShellCompDirectiveFilterDirs
			}
			return a.completeImages(1)(cmd, args, toComplete)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, dir := args[0], args[1]
			if allowDevices && os.Geteuid() != 0 {
				return usagef("extract: --allow-devices needs root: run it as root, or give --skip-devices to leave device nodes out")
			}
			if allowDevices && skipDevices {
				return usagef("extract: give --allow-devices or --skip-devices, not both")
			}
			return a.withStore(func(s *store.Store) error {
				key, err := resolve(s, ref)
				if err != nil {
					return fmt.Errorf("extract %s: %w", ref, err)
				}
				rc, err := s.ReadStream(key)
				if err != nil {
					return fmt.Errorf("extract %s: %w", ref, err)
				}
				defer rc.Close()
				x := &extractor{allowDevices: allowDevices, skipDevices: skipDevices, asRoot: os.Geteuid() == 0}
				if err := x.extract(rc, dir); err != nil {
					return fmt.Errorf("extract %s: %w", ref, err)
				}
				if x.skippedDevices > 0 {
					a.note("imagestore: warning: skipped %d device node(s) (--skip-devices)", x.skippedDevices)
				}
				a.note("extracted %s to %s", shortKey(key), dir)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&allowDevices, "allow-devices", false, "create character and block device nodes (root only)")
	cmd.Flags().BoolVar(&skipDevices, "skip-devices", false, "leave character and block device nodes out, with a warning")
	return cmd
}

// extractor unpacks the rootfs of an image tar below a directory. Every file
// operation goes through an os.Root, which refuses paths that leave the
// directory through ".." or symlinks, so symlinks themselves can be created
// as the image has them.
type extractor struct {
	allowDevices bool
	skipDevices  bool
	asRoot       bool

	root           *os.Root
	dirs           []*tar.Header // applied last, deepest first
	rootHdr        *tar.Header   // the rootfs entry: DIR's own attributes
	skippedDevices int
}

// extract unpacks the rootfs entries of the tar in r into dir.
func (x *extractor) extract(r io.Reader, dir string) (err error) {
	if err := checkTarget(dir); err != nil {
		return err
	}
	parent := filepath.Dir(filepath.Clean(dir))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, ".imagestore-extract-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if x.root, err = os.OpenRoot(tmp); err != nil {
		return err
	}
	defer x.root.Close()

	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read image tar: %w", err)
		}
		rel, ok, err := rootfsPath(hdr.Name)
		if err != nil {
			return err
		}
		if !ok {
			continue // the manifest, or anything else outside rootfs/
		}
		if err := x.entry(hdr, rel, tr); err != nil {
			return fmt.Errorf("unpack %s: %w", hdr.Name, err)
		}
	}
	// Directories last, deepest first, so that read-only ones could be
	// filled and their times are not changed by what was written in them.
	slices.Reverse(x.dirs)
	for _, hdr := range x.dirs {
		rel, _, _ := rootfsPath(hdr.Name)
		if err := x.attrs(rel, hdr); err != nil {
			return fmt.Errorf("unpack %s: %w", hdr.Name, err)
		}
	}
	rootHdr := x.rootHdr
	if rootHdr == nil { // an image without a rootfs entry: what tar(1) would make
		rootHdr = &tar.Header{Typeflag: tar.TypeDir, Mode: 0o755, ModTime: time.Now(), Uid: os.Geteuid(), Gid: os.Getegid()}
	}
	if err := x.owner(".", rootHdr); err != nil {
		return err
	}
	if err := os.Chmod(tmp, x.mode(rootHdr)); err != nil {
		return err
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err // checkTarget saw it empty; it must still be
	}
	if err := os.Rename(tmp, dir); err != nil {
		return err
	}
	// After the rename, which may touch the directory's times.
	return os.Chtimes(dir, rootHdr.ModTime, rootHdr.ModTime)
}

// checkTarget accepts a directory that does not exist or is empty.
func checkTarget(dir string) error {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s exists and is not a directory: give a new or empty directory", dir)
	}
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if names, _ := f.Readdirnames(1); len(names) > 0 {
		return fmt.Errorf("%s is not empty: give a new or empty directory", dir)
	}
	return nil
}

// rootfsPath maps a tar entry name to a path relative to the root
// filesystem: ok is false for entries outside rootfs/, rel is "." for
// rootfs itself. Absolute names and names with ".." are refused, whatever
// they would resolve to.
func rootfsPath(name string) (rel string, ok bool, err error) {
	if strings.HasPrefix(name, "/") {
		return "", false, fmt.Errorf("image has an entry with an absolute name %q: refusing to extract it", name)
	}
	if slices.Contains(strings.Split(name, "/"), "..") {
		return "", false, fmt.Errorf("image has an entry %q that climbs out with \"..\": refusing to extract it", name)
	}
	clean := path.Clean(name)
	if clean == "rootfs" {
		return ".", true, nil
	}
	if rel, ok = strings.CutPrefix(clean, "rootfs/"); !ok {
		return "", false, nil
	}
	return rel, true, nil
}

func (x *extractor) entry(hdr *tar.Header, rel string, r io.Reader) error {
	if rel == "." {
		if hdr.Typeflag != tar.TypeDir {
			return errors.New("rootfs is not a directory")
		}
		x.rootHdr = hdr
		return nil
	}
	if err := x.root.MkdirAll(path.Dir(rel), 0o755); err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		if fi, err := x.root.Lstat(rel); err == nil && !fi.IsDir() {
			if err := x.root.Remove(rel); err != nil {
				return err
			}
		}
		if err := x.root.Mkdir(rel, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		x.dirs = append(x.dirs, hdr)
		return nil

	case tar.TypeReg, tar.TypeGNUSparse:
		// The reader turns old TypeRegA into TypeReg, and gives a sparse
		// file's data with its holes, which io.Copy seeks over in f.
		if err := x.replace(rel); err != nil {
			return err
		}
		f, err := x.root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		if isSparse(hdr) {
			err = copySparse(f, r, hdr.Size)
		} else {
			_, err = io.Copy(f, r)
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		return x.attrs(rel, hdr)

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
		target, ok, err := rootfsPath(hdr.Linkname)
		if err != nil {
			return err
		}
		if !ok || target == "." {
			return fmt.Errorf("hard link to %q, outside the root filesystem: refusing to extract it", hdr.Linkname)
		}
		if err := x.replace(rel); err != nil {
			return err
		}
		return x.root.Link(target, rel)

	case tar.TypeChar, tar.TypeBlock:
		if x.skipDevices {
			x.skippedDevices++
			return nil
		}
		if !x.allowDevices {
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
