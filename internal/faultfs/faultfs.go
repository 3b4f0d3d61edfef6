//go:build linux

package faultfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// Model says what a power cut takes back.
type Model int

const (
	// ModelA loses file data and sizes not yet fsynced.
	ModelA Model = iota
	// ModelB also loses operations on names not yet made durable by an
	// fsync of their directory.
	ModelB
)

func (m Model) String() string {
	if m == ModelB {
		return "B"
	}
	return "A"
}

// Op names a kind of operation, for a Fault.
type Op string

const (
	OpRead   Op = "read"
	OpWrite  Op = "write" // also truncate and fallocate
	OpFsync  Op = "fsync" // of a file or a directory
	OpCreate Op = "create"
	OpRename Op = "rename"
	OpRemove Op = "remove" // unlink and rmdir
)

// Fault returns the error that an operation on path (relative to the root
// of the mount, "" for the root) fails with, or 0 to let it run.
type Fault func(op Op, path string) syscall.Errno

// Available says why faultfs cannot run here, or nil.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("faultfs needs root (it mounts FUSE itself)")
	}
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("faultfs needs /dev/fuse: %w", err)
	}
	return f.Close()
}

// Stats counts what the filesystem saw and what the last power cut undid.
type Stats struct {
	Writes, Fsyncs, DirFsyncs int // since the mount
	Restored                  int // files whose data the cut put back
	Undone                    int // operations on names the cut undid
}

// FS is one mount of the test filesystem.
type FS struct {
	backing, mnt, stash string
	model               Model
	server              *fuse.Server
	conn                uint64 // the mount's device: its fusectl connection

	mu      sync.Mutex
	cut     bool
	gone    bool // unmounted
	fault   Fault
	dirty   map[uint64]*dirtyFile // by inode, changed since its last sync
	lost    []*dirtyFile          // changes whose fsync failed, oldest first
	journal []*nameOp             // model B: operations on names, in order
	nstash  int
	stats   Stats
}

const blockSize = 4096

// dirtyFile is what a power cut must put back in one file: its size and
// the first pre-image of every block changed since its last sync.
type dirtyFile struct {
	fd     int // our own descriptor of the inode, valid after unlink
	size0  int64
	blocks map[int64][]byte
}

// save keeps the pre-image of the blocks of [off, end) not saved yet.
func (d *dirtyFile) save(off, end int64) error {
	for b := off / blockSize; b*blockSize < end && b*blockSize < d.size0; b++ {
		if _, ok := d.blocks[b]; ok {
			continue
		}
		buf := make([]byte, min(blockSize, d.size0-b*blockSize))
		n, err := unix.Pread(d.fd, buf, b*blockSize)
		if err != nil {
			return err
		}
		d.blocks[b] = buf[:n]
	}
	return nil
}

func (d *dirtyFile) restore() error {
	err := unix.Ftruncate(d.fd, d.size0)
	for b, buf := range d.blocks {
		if _, werr := unix.Pwrite(d.fd, buf, b*blockSize); werr != nil && err == nil {
			err = werr
		}
	}
	return errors.Join(err, unix.Close(d.fd))
}

// nameOp is an operation on a name, as model B keeps it until its
// directory (dir) is synced. Paths are relative to the backing root.
type nameOp struct {
	kind    string // create, mkdir, unlink, rmdir, rename
	dir     string // the directory of the name created, removed or renamed to
	name    string
	odir    string // rename: where it came from
	oname   string
	stash   string      // unlink, rename over a file: the file the name held
	mode    os.FileMode // rmdir: the directory's mode
	synced  bool        // dir synced since
	osynced bool        // odir synced since
	wasDir  bool        // rename: it renamed a directory
}

// Mount mounts a faultfs over backing at mnt. The power-cut stash (links
// to removed files) lives next to backing, on the same filesystem.
func Mount(backing, mnt string, model Model) (*FS, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	backing, err := filepath.Abs(backing)
	if err != nil {
		return nil, err
	}
	var st syscall.Stat_t
	if err := syscall.Stat(backing, &st); err != nil {
		return nil, fmt.Errorf("faultfs: backing directory: %w", err)
	}
	f := &FS{backing: backing, mnt: mnt, stash: backing + ".faultfs-stash", model: model,
		dirty: map[uint64]*dirtyFile{}}
	if err := os.RemoveAll(f.stash); err != nil {
		return nil, err
	}
	if err := os.Mkdir(f.stash, 0o700); err != nil {
		return nil, err
	}
	root := &fs.LoopbackRoot{Path: backing, Dev: uint64(st.Dev)}
	root.NewNode = func(r *fs.LoopbackRoot, _ *fs.Inode, _ string, _ *syscall.Stat_t) fs.InodeEmbedder {
		return &node{LoopbackNode: fs.LoopbackNode{RootData: r}, fs: f}
	}
	rn := root.NewNode(root, nil, "", &st)
	root.RootNode = rn
	f.server, err = fs.Mount(mnt, rn, &fs.Options{MountOptions: fuse.MountOptions{
		DirectMount:       true,
		DirectMountStrict: true,
		FsName:            "faultfs",
		Name:              "faultfs",
	}})
	if err != nil {
		os.RemoveAll(f.stash)
		return nil, fmt.Errorf("faultfs: mount: %w", err)
	}
	var mst syscall.Stat_t
	if err := syscall.Stat(mnt, &mst); err != nil { // answered by the server, which runs now
		f.server.Unmount()
		os.RemoveAll(f.stash)
		return nil, fmt.Errorf("faultfs: mount: %w", err)
	}
	f.conn = mst.Dev
	return f, nil
}

// Abort aborts the FUSE connection through the kernel's fusectl
// filesystem (mounted if it is not): every request in flight fails
// (ECONNABORTED), and every later one (ENOTCONN). It is the way out when a process that
// serves the mount waits on it itself and nothing answers; it touches
// nothing in the mount. Unmount or PowerCut still has to follow.
func (f *FS) Abort() error {
	const ctl = "/sys/fs/fuse/connections"
	abort := filepath.Join(ctl, strconv.FormatUint(f.conn, 10), "abort")
	if _, err := os.Stat(abort); err != nil {
		if merr := syscall.Mount("fusectl", ctl, "fusectl", 0, ""); merr != nil {
			return fmt.Errorf("faultfs: abort: %v (mount fusectl: %v)", err, merr)
		}
	}
	return os.WriteFile(abort, []byte("1"), 0o200)
}

// SetFault installs fn (nil: none) to decide the errors of operations.
func (f *FS) SetFault(fn Fault) {
	f.mu.Lock()
	f.fault = fn
	f.mu.Unlock()
}

// Stats returns the counts so far.
func (f *FS) Stats() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}

// Cut turns the power off: from now on no change reaches the disk; every
// operation that would change something fails with EIO.
func (f *FS) Cut() {
	f.mu.Lock()
	f.cut = true
	f.mu.Unlock()
}

// PowerCut cuts the power, kills -9 every process using the mount,
// unmounts it and puts back everything that was not durable. The FS is
// then done with; mount again to go on.
func (f *FS) PowerCut() error {
	f.Cut()
	if err := f.KillUsers(); err != nil {
		return err
	}
	if err := f.unmount(); err != nil {
		return err
	}
	return f.restore()
}

// Unmount unmounts cleanly (a shutdown, not a power cut): everything
// written stays. Calling it after PowerCut or again does nothing.
func (f *FS) Unmount() error {
	if err := f.unmount(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var errs []error
	for ino, d := range f.dirty {
		errs = append(errs, unix.Close(d.fd))
		delete(f.dirty, ino)
	}
	for _, d := range f.lost {
		errs = append(errs, unix.Close(d.fd))
	}
	f.lost, f.journal = nil, nil
	errs = append(errs, os.RemoveAll(f.stash))
	return errors.Join(errs...)
}

// KillUsers kills -9 every other process with a file, a mapping or its
// working directory in the mount, and waits until none is left.
func (f *FS) KillUsers() error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids := f.users()
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("faultfs: processes %v still use %s", pids, f.mnt)
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (f *FS) users() []int {
	procs, _ := os.ReadDir("/proc")
	var pids []int
	self := os.Getpid()
	inMount := func(p string) bool { return p == f.mnt || strings.HasPrefix(p, f.mnt+"/") }
	for _, e := range procs {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		dir := filepath.Join("/proc", e.Name())
		uses := false
		if cwd, err := os.Readlink(filepath.Join(dir, "cwd")); err == nil && inMount(cwd) {
			uses = true
		}
		fds, _ := os.ReadDir(filepath.Join(dir, "fd"))
		for _, fd := range fds {
			if p, err := os.Readlink(filepath.Join(dir, "fd", fd.Name())); err == nil && inMount(p) {
				uses = true
				break
			}
		}
		if maps, err := os.ReadFile(filepath.Join(dir, "maps")); err == nil && strings.Contains(string(maps), " "+f.mnt+"/") {
			uses = true
		}
		if uses {
			pids = append(pids, pid)
		}
	}
	return pids
}

// unmount unmounts, detaching the mount if it stays busy, and never waits
// more than about 20 s.
func (f *FS) unmount() error {
	f.mu.Lock()
	if f.gone {
		f.mu.Unlock()
		return nil
	}
	f.gone = true
	f.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- f.server.Unmount() }()
	select {
	case err := <-done:
		if err == nil {
			return nil
		}
		if derr := syscall.Unmount(f.mnt, syscall.MNT_DETACH); derr != nil {
			return fmt.Errorf("faultfs: unmount %s: %w (detach: %v)", f.mnt, err, derr)
		}
		return nil
	case <-time.After(20 * time.Second):
		syscall.Unmount(f.mnt, syscall.MNT_DETACH)
		return fmt.Errorf("faultfs: unmount %s timed out; detached", f.mnt)
	}
}

// restore puts back what the cut took: names first (model B), newest
// first, then file data, newest first.
func (f *FS) restore() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stats.Restored, f.stats.Undone = 0, 0
	var errs []error
	for i := len(f.journal) - 1; i >= 0; i-- {
		undone, err := f.undo(f.journal[i])
		if undone {
			f.stats.Undone++
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	f.journal = nil
	for ino, d := range f.dirty {
		errs = append(errs, d.restore())
		delete(f.dirty, ino)
		f.stats.Restored++
	}
	for i := len(f.lost) - 1; i >= 0; i-- {
		errs = append(errs, f.lost[i].restore())
		f.stats.Restored++
	}
	f.lost = nil
	errs = append(errs, os.RemoveAll(f.stash))
	return errors.Join(errs...)
}

func (f *FS) path(rel ...string) string {
	return filepath.Join(append([]string{f.backing}, rel...)...)
}

func (f *FS) undo(op *nameOp) (bool, error) {
	p := f.path(op.dir, op.name)
	switch op.kind {
	case "create", "mkdir":
		if op.synced {
			return false, nil
		}
		return true, os.RemoveAll(p)
	case "unlink":
		if op.synced {
			return false, nil
		}
		return true, os.Rename(op.stash, p)
	case "rmdir":
		if op.synced {
			return false, nil
		}
		if err := os.Mkdir(p, 0o700); err != nil {
			return true, err
		}
		return true, os.Chmod(p, op.mode)
	case "rename":
		old := f.path(op.odir, op.oname)
		switch {
		case !op.synced:
			err := os.Rename(p, old)
			if err == nil && op.stash != "" {
				err = os.Rename(op.stash, p)
			}
			return true, err
		case !op.osynced && !op.wasDir:
			return true, os.Link(p, old) // the old name is back too
		}
		return false, nil
	}
	return false, fmt.Errorf("faultfs: unknown operation %q", op.kind)
}

// begin checks whether an operation may run: not after the cut (changes
// fail with EIO), and not if the fault says no. f.mu is held.
func (f *FS) begin(op Op, rel string) syscall.Errno {
	if f.cut && op != OpRead {
		return syscall.EIO
	}
	if f.fault != nil {
		return f.fault(op, rel)
	}
	return 0
}

// state returns the dirty record of the file open as fd, making one.
// f.mu is held.
func (f *FS) state(fd int) (*dirtyFile, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	if d, ok := f.dirty[st.Ino]; ok {
		return d, nil
	}
	own, err := unix.Open("/proc/self/fd/"+strconv.Itoa(fd), unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	d := &dirtyFile{fd: own, size0: st.Size, blocks: map[int64][]byte{}}
	f.dirty[st.Ino] = d
	return d, nil
}

// changing records that [off, end) of the file open as fd is about to
// change, and newSize >= 0 that it will be truncated to that size.
// f.mu is held.
func (f *FS) changing(fd int, off, end, newSize int64) error {
	d, err := f.state(fd)
	if err != nil {
		return err
	}
	if newSize >= 0 {
		return d.save(newSize, d.size0)
	}
	return d.save(off, end)
}

// synced records that the file open as fd is durable now.
func (f *FS) synced(fd int, failed bool) {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil {
		return
	}
	d, ok := f.dirty[st.Ino]
	if !ok {
		return
	}
	delete(f.dirty, st.Ino)
	if failed {
		// As Linux after a failed writeback: the pages are clean again,
		// their data never reached the disk, and the next fsync succeeds.
		f.lost = append(f.lost, d)
		return
	}
	unix.Close(d.fd)
}

// dirSynced records that the directory rel is durable now (model B).
func (f *FS) dirSynced(rel string) {
	for _, op := range f.journal {
		if op.dir == rel {
			op.synced = true
		}
		if op.odir == rel {
			op.osynced = true
		}
	}
}

func (f *FS) record(op *nameOp) {
	if f.model == ModelB {
		f.journal = append(f.journal, op)
	}
}

// stashFile keeps a link to the file at rel so that a cut can bring it
// back (model B); "" if there is nothing to keep.
func (f *FS) stashFile(rel string) (string, error) {
	if f.model != ModelB {
		return "", nil
	}
	fi, err := os.Lstat(f.path(rel))
	if err != nil || fi.IsDir() {
		return "", nil
	}
	f.nstash++
	s := filepath.Join(f.stash, strconv.Itoa(f.nstash))
	return s, os.Link(f.path(rel), s)
}

// node is a loopback node whose changes faultfs keeps track of.
type node struct {
	fs.LoopbackNode
	fs *FS
}

func (n *node) rel(name ...string) string {
	return filepath.Join(append([]string{n.Path(nil)}, name...)...)
}

func (n *node) wrap(fh fs.FileHandle) fs.FileHandle {
	lf, ok := fh.(*fs.LoopbackFile)
	if !ok {
		return fh
	}
	fd, _ := lf.PassthroughFd() // only reads the descriptor
	return &file{lf: lf, fd: fd, n: n}
}

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	f := n.fs
	if flags&syscall.O_TRUNC != 0 {
		f.mu.Lock()
		defer f.mu.Unlock()
		if errno := f.begin(OpWrite, n.rel()); errno != 0 {
			return nil, 0, errno
		}
		fd, err := unix.Open(f.path(n.rel()), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			err = f.changing(fd, 0, 0, 0)
			unix.Close(fd)
		}
		if err != nil {
			return nil, 0, fs.ToErrno(err)
		}
	}
	fh, flags, errno := n.LoopbackNode.Open(ctx, flags)
	if errno != 0 {
		return nil, 0, errno
	}
	return n.wrap(fh), flags, 0
}

func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	f := n.fs
	f.mu.Lock()
	defer f.mu.Unlock()
	if errno := f.begin(OpCreate, n.rel(name)); errno != 0 {
		return nil, nil, 0, errno
	}
	ch, fh, fflags, errno := n.LoopbackNode.Create(ctx, name, flags, mode, out)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	f.record(&nameOp{kind: "create", dir: n.rel(), name: name})
	if cn, ok := ch.Operations().(*node); ok {
		return ch, cn.wrap(fh), fflags, 0
	}
	return ch, fh, fflags, 0
}

// makeEntry runs mk, which makes the entry name in n (a directory, file,
// node, symlink or hard link), under the filesystem's lock and unless an
// injected fault refuses it first, and records it as an operation of kind
// that model B undoes unless n is fsynced.
func (n *node) makeEntry(kind, name string, mk func() (*fs.Inode, syscall.Errno)) (*fs.Inode, syscall.Errno) {
	f := n.fs
	f.mu.Lock()
	defer f.mu.Unlock()
	if errno := f.begin(OpCreate, n.rel(name)); errno != 0 {
		return nil, errno
	}
	ch, errno := mk()
	if errno == 0 {
		f.record(&nameOp{kind: kind, dir: n.rel(), name: name})
	}
	return ch, errno
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return n.makeEntry("mkdir", name, func() (*fs.Inode, syscall.Errno) {
		return n.LoopbackNode.Mkdir(ctx, name, mode, out)
	})
}

func (n *node) Mknod(ctx context.Context, name string, mode, rdev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return n.makeEntry("create", name, func() (*fs.Inode, syscall.Errno) {
		return n.LoopbackNode.Mknod(ctx, name, mode, rdev, out)
	})
}

func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return n.makeEntry("create", name, func() (*fs.Inode, syscall.Errno) {
		return n.LoopbackNode.Symlink(ctx, target, name, out)
	})
}

func (n *node) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return n.makeEntry("create", name, func() (*fs.Inode, syscall.Errno) {
		return n.LoopbackNode.Link(ctx, target, name, out)
	})
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	f := n.fs
	f.mu.Lock()
	defer f.mu.Unlock()
	if errno := f.begin(OpRemove, n.rel(name)); errno != 0 {
		return errno
	}
	stash, err := f.stashFile(n.rel(name))
	if err != nil {
		return fs.ToErrno(err)
	}
	if errno := n.LoopbackNode.Unlink(ctx, name); errno != 0 {
		if stash != "" {
			os.Remove(stash)
		}
		return errno
	}
	f.record(&nameOp{kind: "unlink", dir: n.rel(), name: name, stash: stash})
	return 0
}

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	f := n.fs
	f.mu.Lock()
	defer f.mu.Unlock()
	if errno := f.begin(OpRemove, n.rel(name)); errno != 0 {
		return errno
	}
	fi, err := os.Lstat(f.path(n.rel(name)))
	if err != nil {
		return fs.ToErrno(err)
	}
	if errno := n.LoopbackNode.Rmdir(ctx, name); errno != 0 {
		return errno
	}
	f.record(&nameOp{kind: "rmdir", dir: n.rel(), name: name, mode: fi.Mode()})
	return 0
}

func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	f := n.fs
	np, ok := newParent.(*node)
	if !ok {
		return syscall.EXDEV
	}
	if flags&^unix.RENAME_NOREPLACE != 0 {
		return syscall.EINVAL // an exchange cannot be undone the simple way
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if errno := f.begin(OpRename, np.rel(newName)); errno != 0 {
		return errno
	}
	fi, err := os.Lstat(f.path(n.rel(name)))
	if err != nil {
		return fs.ToErrno(err)
	}
	stash, err := f.stashFile(np.rel(newName))
	if err != nil {
		return fs.ToErrno(err)
	}
	if errno := n.LoopbackNode.Rename(ctx, name, newParent, newName, flags); errno != 0 {
		if stash != "" {
			os.Remove(stash)
		}
		return errno
	}
	f.record(&nameOp{kind: "rename", dir: np.rel(), name: newName, odir: n.rel(), oname: name,
		stash: stash, wasDir: fi.IsDir()})
	return 0
}

func (n *node) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if size, ok := in.GetSize(); ok {
		f := n.fs
		f.mu.Lock()
		errno := f.begin(OpWrite, n.rel())
		if errno == 0 {
			var err error
			if wf, ok := fh.(*file); ok {
				err = f.changing(wf.fd, 0, 0, int64(size))
			} else {
				var fd int
				if fd, err = unix.Open(f.path(n.rel()), unix.O_RDONLY|unix.O_CLOEXEC, 0); err == nil {
					err = f.changing(fd, 0, 0, int64(size))
					unix.Close(fd)
				}
			}
			errno = fs.ToErrno(err)
		}
		f.mu.Unlock()
		if errno != 0 {
			return errno
		}
	}
	return n.LoopbackNode.Setattr(ctx, fh, in, out)
}

// CopyFileRange is refused so that the kernel copies with reads and
// writes, which are tracked.
func (n *node) CopyFileRange(ctx context.Context, fhIn fs.FileHandle, offIn uint64, out *fs.Inode, fhOut fs.FileHandle, offOut uint64, length uint64, flags uint64) (uint32, syscall.Errno) {
	return 0, syscall.ENOSYS
}

func (n *node) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	fh, fflags, errno := n.LoopbackNode.OpendirHandle(ctx, flags)
	if errno != 0 {
		return nil, 0, errno
	}
	return &dir{inner: fh, n: n}, fflags, 0
}

// dir is a directory handle whose fsync makes the names in it durable.
type dir struct {
	inner fs.FileHandle
	n     *node
}

func (d *dir) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno {
	f := d.n.fs
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stats.DirFsyncs++
	if errno := f.begin(OpFsync, d.n.rel()); errno != 0 {
		return errno
	}
	f.dirSynced(d.n.rel())
	return 0
}

func (d *dir) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	if r, ok := d.inner.(fs.FileReaddirenter); ok {
		return r.Readdirent(ctx)
	}
	return nil, syscall.ENOTSUP
}

func (d *dir) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	if s, ok := d.inner.(fs.FileSeekdirer); ok {
		return s.Seekdir(ctx, off)
	}
	return syscall.ENOTSUP
}

func (d *dir) Releasedir(ctx context.Context, flags uint32) {
	if r, ok := d.inner.(fs.FileReleasedirer); ok {
		r.Releasedir(ctx, flags)
	}
}

// file is an open file whose writes and syncs faultfs keeps track of. It
// offers no passthrough descriptor: every read and write must come here.
type file struct {
	lf *fs.LoopbackFile
	fd int
	n  *node
}

func (h *file) Read(ctx context.Context, buf []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	f := h.n.fs
	f.mu.Lock()
	errno := f.begin(OpRead, h.n.rel())
	f.mu.Unlock()
	if errno != 0 {
		return nil, errno
	}
	// Read now, not later from the descriptor: a cut must not change what
	// a read already returned.
	n, err := unix.Pread(h.fd, buf, off)
	if err != nil {
		return nil, fs.ToErrno(err)
	}
	return fuse.ReadResultData(buf[:n]), 0
}

func (h *file) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	f := h.n.fs
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stats.Writes++
	if errno := f.begin(OpWrite, h.n.rel()); errno != 0 {
		return 0, errno
	}
	if err := f.changing(h.fd, off, off+int64(len(data)), -1); err != nil {
		return 0, fs.ToErrno(err)
	}
	return h.lf.Write(ctx, data, off)
}

func (h *file) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	f := h.n.fs
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stats.Fsyncs++
	errno := f.begin(OpFsync, h.n.rel())
	if f.cut {
		return errno
	}
	f.synced(h.fd, errno != 0)
	return errno
}

func (h *file) Allocate(ctx context.Context, off uint64, size uint64, mode uint32) syscall.Errno {
	f := h.n.fs
	f.mu.Lock()
	defer f.mu.Unlock()
	if errno := f.begin(OpWrite, h.n.rel()); errno != 0 {
		return errno
	}
	if err := f.changing(h.fd, int64(off), int64(off+size), -1); err != nil {
		return fs.ToErrno(err)
	}
	return h.lf.Allocate(ctx, off, size, mode)
}

func (h *file) Setattr(ctx context.Context, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return h.lf.Setattr(ctx, in, out) // the node recorded a truncation
}

func (h *file) Flush(ctx context.Context) syscall.Errno { return h.lf.Flush(ctx) }

func (h *file) Release(ctx context.Context) syscall.Errno { return h.lf.Release(ctx) }

func (h *file) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	return h.lf.Getattr(ctx, out)
}

func (h *file) Lseek(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	return h.lf.Lseek(ctx, off, whence)
}

var (
	_ fs.NodeOpener         = (*node)(nil)
	_ fs.NodeCreater        = (*node)(nil)
	_ fs.NodeRenamer        = (*node)(nil)
	_ fs.NodeSetattrer      = (*node)(nil)
	_ fs.NodeCopyFileRanger = (*node)(nil)
	_ fs.FileFsyncdirer     = (*dir)(nil)
	_ fs.FileWriter         = (*file)(nil)
	_ fs.FileFsyncer        = (*file)(nil)
	_ fs.FileAllocater      = (*file)(nil)
)
