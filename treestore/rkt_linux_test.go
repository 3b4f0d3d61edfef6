// Comparison with rkt v1.30.0's own tree store (built from rkt's sources by
// rkt_oracle_linux_test.go): the same images, rendered by both, must give the
// same tree IDs, hashes, sizes and trees, entry by entry; each accepts the
// other's trees; an adopted rkt store keeps its trees; both refuse a missing
// dependency and a wrong imageID (Linux, root).

//go:build linux

package treestore_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/appc/spec/schema/types"
	store "github.com/imagestore/imagestore"
	"github.com/imagestore/imagestore/rkt"
	"github.com/imagestore/imagestore/treestore"
	"golang.org/x/sys/unix"
)

func runTool(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func lookPath(name string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		return ""
	}
	return p
}

func syscallMkfifo(p string, mode uint32) error { return unix.Mkfifo(p, mode) }

func syscallMknodChar(p string, mode uint32, major, minor uint32) error {
	return unix.Mknod(p, unix.S_IFCHR|mode, int(unix.Mkdev(major, minor)))
}

// treeEntry is what the comparison looks at of one entry of a tree.
type treeEntry struct {
	Type   string
	Perm   uint32 // permission, setuid, setgid and sticky bits
	UID    uint32
	GID    uint32
	Size   int64  // regular files and symlinks
	SHA256 string // regular files
	Target string // symlinks
	Rdev   string // devices: "major,minor"
	Links  string // the tree's paths of a hard-linked inode, sorted
	Mtime  time.Time
	Xattrs string
}

func fileType(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return "dir"
	case unix.S_IFREG:
		return "file"
	case unix.S_IFLNK:
		return "symlink"
	case unix.S_IFIFO:
		return "fifo"
	case unix.S_IFCHR:
		return "char"
	case unix.S_IFBLK:
		return "block"
	case unix.S_IFSOCK:
		return "socket"
	}
	return fmt.Sprintf("type %#o", mode&unix.S_IFMT)
}

// describeTree describes every entry under root (root itself is ".").
func describeTree(t *testing.T, root string) map[string]treeEntry {
	t.Helper()
	entries := map[string]treeEntry{}
	inodes := map[uint64][]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		e := treeEntry{
			Type:  fileType(st.Mode),
			Perm:  st.Mode & 0o7777,
			UID:   st.Uid,
			GID:   st.Gid,
			Mtime: time.Unix(st.Mtim.Unix()).UTC(),
		}
		switch e.Type {
		case "file":
			e.Size = st.Size
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			h := sha256.New()
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return err
			}
			e.SHA256 = hex.EncodeToString(h.Sum(nil))
		case "symlink":
			e.Size = st.Size
			if e.Target, err = os.Readlink(p); err != nil {
				return err
			}
		case "char", "block":
			e.Rdev = fmt.Sprintf("%d,%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
		}
		if e.Type != "dir" && st.Nlink > 1 {
			inodes[st.Ino] = append(inodes[st.Ino], rel)
		}
		e.Xattrs = xattrs(p)
		entries[rel] = e
		return nil
	})
	if err != nil {
		t.Fatalf("describing %s: %v", root, err)
	}
	for _, paths := range inodes {
		if len(paths) < 2 {
			continue // linked from outside the tree only
		}
		sort.Strings(paths)
		for _, p := range paths {
			e := entries[p]
			e.Links = strings.Join(paths, " ")
			entries[p] = e
		}
	}
	return entries
}

// userXattrs says whether the filesystem of the tests' temporary
// directories takes user.* extended attributes (tmpfs did not before
// Linux 6.6).
func userXattrs(t *testing.T) bool {
	t.Helper()
	p := filepath.Join(t.TempDir(), "probe")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(p, "user.probe", []byte("1"), 0); err != nil {
		t.Logf("no user.* extended attributes in %s (%v): the images have none", os.TempDir(), err)
		return false
	}
	return true
}

// xattrs lists an entry's extended attributes as "name=value" lines.
func xattrs(p string) string {
	buf := make([]byte, 4096)
	n, err := unix.Llistxattr(p, buf)
	if err != nil || n == 0 {
		return ""
	}
	var out []string
	for _, name := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
		val := make([]byte, 4096)
		m, err := unix.Lgetxattr(p, name, val)
		if err != nil {
			out = append(out, name+" (unreadable: "+err.Error()+")")
			continue
		}
		out = append(out, fmt.Sprintf("%s=%q", name, val[:m]))
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// The files of a tree's directory that the tree store writes when it
// renders: their times are the render's, and "rendered" only has to be
// there.
var renderFiles = map[string]bool{"hash": true, "image": true, "rendered": true}

// diffTrees compares two trees' descriptions, entry by entry: diffs are
// the differences that fail a comparison, notes those that do not (a
// directory's mtime: rkt leaves some as the time of the render).
func diffTrees(aName string, a map[string]treeEntry, bName string, b map[string]treeEntry) (diffs, notes []string) {
	var paths []string
	for p := range a {
		paths = append(paths, p)
	}
	for p := range b {
		if _, ok := a[p]; !ok {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	for _, p := range paths {
		ea, inA := a[p]
		eb, inB := b[p]
		switch {
		case !inA:
			diffs = append(diffs, fmt.Sprintf("%s: only in %s's tree (%s %#o %d:%d)", p, bName, eb.Type, eb.Perm, eb.UID, eb.GID))
			continue
		case !inB:
			diffs = append(diffs, fmt.Sprintf("%s: only in %s's tree (%s %#o %d:%d)", p, aName, ea.Type, ea.Perm, ea.UID, ea.GID))
			continue
		}
		field := func(name string, va, vb any) {
			if fmt.Sprint(va) != fmt.Sprint(vb) {
				diffs = append(diffs, fmt.Sprintf("%s: %s: %s %v, %s %v", p, name, aName, va, bName, vb))
			}
		}
		field("type", ea.Type, eb.Type)
		field("mode", fmt.Sprintf("%#o", ea.Perm), fmt.Sprintf("%#o", eb.Perm))
		field("uid", ea.UID, eb.UID)
		field("gid", ea.GID, eb.GID)
		if p != "rendered" {
			field("size", ea.Size, eb.Size)
			field("sha256", ea.SHA256, eb.SHA256)
		}
		field("symlink target", ea.Target, eb.Target)
		field("device", ea.Rdev, eb.Rdev)
		field("hard links", ea.Links, eb.Links)
		field("xattrs", ea.Xattrs, eb.Xattrs)
		mtimes := fmt.Sprintf("%s: mtime: %s %s, %s %s", p, aName, ea.Mtime.Format(time.RFC3339Nano), bName, eb.Mtime.Format(time.RFC3339Nano))
		switch {
		case ea.Mtime.Equal(eb.Mtime):
		case renderFiles[p] || p == ".":
			// Written by the render (the tree's own directory too).
		case ea.Type == "dir" && eb.Type == "dir":
			notes = append(notes, "directory "+mtimes)
		default:
			diffs = append(diffs, mtimes)
		}
	}
	return diffs, notes
}

// compareTrees reports diffTrees' differences as errors (the first 60),
// and its notes in the log. It returns the number of differences.
func compareTrees(t *testing.T, aName string, a map[string]treeEntry, bName string, b map[string]treeEntry) int {
	t.Helper()
	diffs, notes := diffTrees(aName, a, bName, b)
	for i, d := range diffs {
		if i == 60 {
			t.Errorf("... and %d more differences", len(diffs)-i)
			break
		}
		t.Error(d)
	}
	for _, n := range notes {
		t.Log(n + " (not a failure)")
	}
	t.Logf("compared the trees (%s: %d entries, %s: %d): %d differences, %d directory times differ",
		aName, len(a), bName, len(b), len(diffs), len(notes))
	return len(diffs)
}

// ourStore opens our store in dir, closed when the test ends.
func ourStore(t *testing.T, dir string) *store.Store {
	t.Helper()
	s, err := store.NewStore(dir)
	if err != nil {
		t.Fatalf("store.NewStore(%s): %v", dir, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ourTreeStore(t *testing.T, dir string, s *store.Store) *treestore.Store {
	t.Helper()
	ts, err := treestore.NewStore(dir, s)
	if err != nil {
		t.Fatalf("treestore.NewStore(%s): %v", dir, err)
	}
	return ts
}

func writeOurs(t *testing.T, s *store.Store, imgs []*aciImage) []string {
	t.Helper()
	var keys []string
	for _, a := range imgs {
		k, err := s.WriteACI(bytes.NewReader(a.raw), store.ACIFetchInfo{Latest: a.latest})
		if err != nil {
			t.Fatalf("our WriteACI(%s): %v", a.file, err)
		}
		keys = append(keys, k)
	}
	return keys
}

// rktArgs are the oracle's arguments that write imgs (in dir) in order.
func rktArgs(dir string, imgs []*aciImage) []string {
	var args []string
	for _, a := range imgs {
		if a.latest {
			args = append(args, "-latest")
		}
		args = append(args, filepath.Join(dir, a.file))
	}
	return args
}

func sameStrings(a, b []string) bool {
	return strings.Join(a, "\n") == strings.Join(b, "\n")
}

// copyTree copies a tree with everything (cp -a keeps owners, modes,
// times, hard links, devices and extended attributes), into dstParent.
// Directories copied into a setgid directory (the store's) keep the
// setgid bit they inherit there, whatever cp -a does: their modes are
// set again.
func copyTree(t *testing.T, src, dstParent string) {
	t.Helper()
	if err := os.MkdirAll(dstParent, 0o755); err != nil {
		t.Fatal(err)
	}
	runTool(t, "cp", "-a", src, dstParent+"/")
	dst := filepath.Join(dstParent, filepath.Base(src))
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		q := filepath.Join(dst, rel)
		if err := unix.Chmod(q, st.Mode&0o7777); err != nil {
			return err
		}
		return unix.UtimesNano(q, []unix.Timespec{st.Atim, st.Mtim})
	})
	if err != nil {
		t.Fatalf("copying %s: %v", src, err)
	}
}

// compareWithRkt writes imgs into an rkt store (through the oracle) and
// into ours, renders the last with both and compares everything. It
// returns rkt's rootfs for the shape's own checks.
func compareWithRkt(t *testing.T, imgs []*aciImage) string {
	work := t.TempDir()
	buildImages(t, work, imgs)
	top := imgs[len(imgs)-1]

	rktDir := filepath.Join(work, "rkt")
	rk := mustRkt(t, append([]string{"render", rktDir}, rktArgs(work, imgs)...)...)
	if rk.Key != top.key() {
		t.Fatalf("rkt rendered %s, the top image's key is %s", rk.Key, top.key())
	}
	t.Logf("rkt: tree %s hash %s size %d, rendered in %.3fs", rk.ID, rk.Hash, *rk.Size, *rk.Seconds)

	ourDir := filepath.Join(work, "ours")
	s := ourStore(t, ourDir)
	keys := writeOurs(t, s, imgs)
	if !sameStrings(keys, rk.Keys) {
		t.Fatalf("keys: ours %v, rkt's %v", keys, rk.Keys)
	}
	ts := ourTreeStore(t, ourDir, s)
	for _, d := range []string{rktDir, ourDir} { // NewStore makes it, in rkt
		if fi, err := os.Stat(filepath.Join(d, "treestorelocks")); err != nil || !fi.IsDir() {
			t.Errorf("%s has no directory treestorelocks: %v", d, err)
		}
	}
	start := time.Now()
	id, hash, err := ts.Render(top.key(), false)
	if err != nil {
		t.Fatalf("our Render(%s): %v", top.file, err)
	}
	t.Logf("ours: rendered in %.3fs", time.Since(start).Seconds())

	if id != rk.ID {
		t.Errorf("tree ID: ours %s, rkt's %s", id, rk.ID)
	}
	if hash != rk.Hash {
		t.Errorf("Render's hash: ours %s, rkt's %s", hash, rk.Hash)
	}
	if *rk.RenderHash != rk.Hash {
		t.Errorf("rkt's Render returned hash %q, its Hash says %s", *rk.RenderHash, rk.Hash)
	}
	if h, err := ts.Hash(id); err != nil || h != rk.Hash {
		t.Errorf("our Hash(%s) = %s, %v; rkt's %s", id, h, err, rk.Hash)
	}
	if gid, err := ts.GetID(top.key()); err != nil || gid != rk.ID {
		t.Errorf("our GetID = %s, %v; rkt's %s", gid, err, rk.ID)
	}
	if g := mustRkt(t, "getid", rktDir, top.key()); g.ID != rk.ID {
		t.Errorf("rkt's GetID %s, its Render's tree %s", g.ID, rk.ID)
	}
	if r, err := ts.IsRendered(id); err != nil || !r {
		t.Errorf("our IsRendered(%s) = %v, %v after Render", id, r, err)
	}
	if p := ts.GetPath(id); p != filepath.Join(ourDir, "tree", id) {
		t.Errorf("GetPath = %s, want %s", p, filepath.Join(ourDir, "tree", id))
	}
	if p := ts.GetRootFS(id); p != filepath.Join(ourDir, "tree", id, "rootfs") {
		t.Errorf("GetRootFS = %s, want %s", p, filepath.Join(ourDir, "tree", id, "rootfs"))
	}
	if k, err := ts.GetImageHash(id); err != nil || k != top.key() {
		t.Errorf("our GetImageHash = %s, %v; want %s", k, err, top.key())
	}
	if ids, err := ts.GetIDs(); err != nil || !sameStrings(ids, []string{id}) {
		t.Errorf("our GetIDs = %v, %v; want [%s]", ids, err, id)
	}

	// Sizes: of each store's own tree, and what each recorded.
	size, err := ts.Size(id)
	if err != nil || size != *rk.Size {
		t.Errorf("Size: ours %d (%v), rkt's %d", size, err, *rk.Size)
	}
	if *rk.TreeStoreSize != *rk.Size {
		t.Errorf("rkt's TreeStoreSize %d, its Size %d", *rk.TreeStoreSize, *rk.Size)
	}
	if info, err := s.GetACIInfoWithBlobKey(top.key()); err != nil || info.TreeStoreSize != size {
		t.Errorf("our TreeStoreSize of %s: %+v, %v; our Size %d", top.file, info, err, size)
	}
	if rs := mustRkt(t, "size", ourDir, id); *rs.Size != size {
		t.Errorf("rkt's Size of our tree %d, our Size %d", *rs.Size, size)
	}

	// Each accepts the other's tree.
	if h, err := ts.Check(id); err != nil || h != rk.Hash {
		t.Errorf("our Check of our tree = %s, %v; want %s", h, err, rk.Hash)
	}
	if res, err := runRkt(t, "check", ourDir, id); err != nil {
		t.Errorf("rkt's Check of our tree: %v", err)
	} else if res.Hash != rk.Hash {
		t.Errorf("rkt's Check of our tree = %s, want %s", res.Hash, rk.Hash)
	}
	chkDir := filepath.Join(work, "rkt-tree-in-ours")
	cs := ourStore(t, chkDir)
	copyTree(t, rk.Path, filepath.Join(chkDir, "tree"))
	cts := ourTreeStore(t, chkDir, cs)
	rktTree := describeTree(t, rk.Path)
	if compareTrees(t, "rkt", rktTree, "copy", describeTree(t, cts.GetPath(rk.ID))) != 0 {
		t.Errorf("cp -a did not copy rkt's tree faithfully into our store")
	}
	if h, err := cts.Check(rk.ID); err != nil || h != rk.Hash {
		t.Errorf("our Check of rkt's tree = %s, %v; want %s", h, err, rk.Hash)
	}

	// The trees, entry by entry.
	ourTree := describeTree(t, ts.GetPath(id))
	compareTrees(t, "rkt", rktTree, "ours", ourTree)

	// A second Render finds the tree, and says so as rkt does: no hash.
	if again := mustRkt(t, "renderkey", rktDir, top.key()); again.ID != rk.ID || *again.RenderHash != "" {
		t.Errorf("rkt's second Render = %s, %q; want %s, \"\"", again.ID, *again.RenderHash, rk.ID)
	}
	id2, hash2, err := ts.Render(top.key(), false)
	if err != nil || id2 != id || hash2 != "" {
		t.Errorf("our second Render = %s, %q, %v; rkt's Render of a rendered tree gives %s, \"\", nil", id2, hash2, err, id)
	}
	if again := describeTree(t, ts.GetPath(id)); compareTrees(t, "first render", ourTree, "after a second Render", again) != 0 {
		t.Errorf("a second Render (rebuild false) changed the tree")
	}
	return rk.RootFS
}

func TestRktRenderSameTrees(t *testing.T) {
	rktOracle(t)
	shapes := []shape{
		{name: "chain3-by-name", images: func(*testing.T) []*aciImage { return chain3() },
			want: func(t *testing.T, r string) {
				wantFile(t, r, "etc/hostname", "top\n")
				wantFile(t, r, "etc/passwd", "root:x:0:0:middle:/root:/bin/sh\n")
				wantFile(t, r, "bin/busybox", "busybox of base")
				wantFile(t, r, "opt/app/bin/run", "#!/bin/sh\necho middle\n")
			}},
		{name: "by-imageID", images: byImageID,
			want: func(t *testing.T, r string) {
				wantFile(t, r, "etc/release", "the base by ID\n")
				wantAbsent(t, r, "only-in-decoy")
			}},
		{name: "dependency-order", images: func(*testing.T) []*aciImage { return dependencyOrder() },
			want: func(t *testing.T, r string) {
				// rkt layers the last dependency over the first.
				wantFile(t, r, "conflict", "c")
				wantFile(t, r, "fd1/child", "b")
				wantFile(t, r, "fd2", "fd2 is a file in b")
				wantFile(t, r, "tdir", "tdir is a file in the top")
				wantFile(t, r, "a0-only", "a0")
				wantAbsent(t, r, "fd2/in-a")
				wantAbsent(t, r, "tdir/child")
			}},
		{name: "whitelist-upper-and-middle", images: func(*testing.T) []*aciImage { return whitelistUpperAndMiddle() },
			want: func(t *testing.T, r string) {
				wantFile(t, r, "etc/passwd", "passwd of middle")
				wantFile(t, r, "secret/dir/keep", "kept")
				wantFile(t, r, "top/t1", "t1")
				wantAbsent(t, r, "top/t2")
				wantAbsent(t, r, "mid/m2")
				wantAbsent(t, r, "mid/m3")
				wantAbsent(t, r, "secret/dir/drop")
				wantAbsent(t, r, "bin/ls")
			}},
		{name: "whitelist-middle-only", images: func(*testing.T) []*aciImage { return whitelistMiddleOnly() },
			want: func(t *testing.T, r string) {
				wantFile(t, r, "top/t2", "t2")
				wantFile(t, r, "bin/ls", "ls of top")
				wantFile(t, r, "mid/m1", "m1")
				wantAbsent(t, r, "mid/m2")
				wantAbsent(t, r, "bin/cat")
				wantAbsent(t, r, "lib/libz.so")
			}},
		{name: "special-files", images: func(t *testing.T) []*aciImage { return specialFiles(userXattrs(t)) },
			want: func(t *testing.T, r string) {
				wantFile(t, r, "bin/su", "su without setuid")
				wantFile(t, r, "hl/sub/d", "hard linked")
			}},
		{name: "hardlink-target-overridden", images: func(*testing.T) []*aciImage { return hardlinkOverride() }},
		{name: "best-match-latest-import", images: bestMatch(false, false, "os", "linux"),
			want: func(t *testing.T, r string) { wantFile(t, r, "lib/version", "2\n") }},
		{name: "best-match-latest-mark", images: bestMatch(true, false),
			want: func(t *testing.T, r string) { wantFile(t, r, "lib/version", "1\n") }},
		{name: "best-match-version", images: bestMatch(false, true, "version", "1"),
			want: func(t *testing.T, r string) { wantFile(t, r, "lib/version", "1\n") }},
		{name: "random-tree", images: func(*testing.T) []*aciImage { return randomTrees() }},
	}
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			rootfs := compareWithRkt(t, sh.images(t))
			if sh.want != nil {
				sh.want(t, rootfs)
			}
		})
	}
	t.Run("actool", func(t *testing.T) {
		actool := actoolPath()
		if actool == "" {
			t.Skip("actool not found: set $IMAGESTORE_ACTOOL (.ci/run builds it)")
		}
		work := t.TempDir()
		rootfs := compareWithRkt(t, actoolImages(t, actool, work))
		wantFile(t, rootfs, "etc/passwd", "root:x:0:0:actool top\n")
		wantFile(t, rootfs, "opt/mid/bin/tool", "tool")
		wantFile(t, rootfs, "lib/liba.so.1", "liba")
		wantAbsent(t, rootfs, "app/not-whitelisted")
		wantAbsent(t, rootfs, "bin/ls")
	})
}

// TestRktRenderRebuild: Render with rebuild renders again, to the same ID,
// hash and tree, as rkt's does.
func TestRktRenderRebuild(t *testing.T) {
	rktOracle(t)
	work := t.TempDir()
	imgs := chain3()
	buildImages(t, work, imgs)
	top := imgs[len(imgs)-1]
	rktDir := filepath.Join(work, "rkt")
	mustRkt(t, append([]string{"render", rktDir}, rktArgs(work, imgs)...)...)
	rk := mustRkt(t, "renderkey", "-rebuild", rktDir, top.key())

	ourDir := filepath.Join(work, "ours")
	s := ourStore(t, ourDir)
	writeOurs(t, s, imgs)
	ts := ourTreeStore(t, ourDir, s)
	if _, _, err := ts.Render(top.key(), false); err != nil {
		t.Fatal(err)
	}
	// A file changed in the tree: a rebuild must put it right.
	if err := os.WriteFile(filepath.Join(ts.GetRootFS(rk.ID), "etc", "hostname"), []byte("damaged\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Check(rk.ID); err == nil {
		t.Errorf("our Check passed a tree with a changed file")
	}
	id, hash, err := ts.Render(top.key(), true)
	if err != nil || id != rk.ID || hash != rk.Hash || *rk.RenderHash != rk.Hash {
		t.Errorf("Render(rebuild): ours %s, %s, %v; rkt's %s, %s (returned %q)", id, hash, err, rk.ID, rk.Hash, *rk.RenderHash)
	}
	if h, err := ts.Check(id); err != nil || h != rk.Hash {
		t.Errorf("our Check after the rebuild = %s, %v; want %s", h, err, rk.Hash)
	}
	compareTrees(t, "rkt", describeTree(t, rk.Path), "ours", describeTree(t, ts.GetPath(id)))
}

// TestRktAdoptKeepsTrees: the trees of an rkt store survive its adoption:
// same IDs, rendered, unchanged, passing both Checks.
func TestRktAdoptKeepsTrees(t *testing.T) {
	rktOracle(t)
	work := t.TempDir()
	chain, special := chain3(), specialFiles(userXattrs(t))
	for i, a := range special {
		a.build(t, 10+i)
	}
	buildImages(t, work, chain)
	buildImages(t, work, special)
	dir := filepath.Join(work, "cas")
	rkTop := mustRkt(t, append([]string{"render", dir}, rktArgs(work, chain)...)...)
	rkMiddle := mustRkt(t, "renderkey", dir, chain[1].key())
	rkSpecial := mustRkt(t, append([]string{"render", dir}, rktArgs(work, special)...)...)
	trees := []*rktOracleResult{rkTop, rkMiddle, rkSpecial}
	before := map[string]map[string]treeEntry{}
	for _, rk := range trees {
		before[rk.ID] = describeTree(t, rk.Path)
	}
	ids := mustRkt(t, "ids", dir)
	if len(ids.IDs) != 3 {
		t.Fatalf("rkt's store has trees %v, want 3", ids.IDs)
	}

	if _, err := rkt.Adopt(dir); err != nil {
		t.Fatalf("rkt.Adopt: %v", err)
	}

	for _, rk := range trees {
		if compareTrees(t, "rkt", before[rk.ID], "adopted", describeTree(t, rk.Path)) != 0 {
			t.Errorf("tree %s (of %s) changed in the adoption", rk.ID, rk.Key)
		}
	}
	s := ourStore(t, dir)
	ts := ourTreeStore(t, dir, s)
	got, err := ts.GetIDs()
	sort.Strings(got)
	sort.Strings(ids.IDs)
	if err != nil || !sameStrings(got, ids.IDs) {
		t.Errorf("our GetIDs on the adopted store = %v, %v; rkt's %v", got, err, ids.IDs)
	}
	for _, rk := range trees {
		if id, err := ts.GetID(rk.Key); err != nil || id != rk.ID {
			t.Errorf("our GetID(%s) = %s, %v; rkt's %s", rk.Key, id, err, rk.ID)
		}
		if r, err := ts.IsRendered(rk.ID); err != nil || !r {
			t.Errorf("our IsRendered(%s) = %v, %v on the adopted store", rk.ID, r, err)
		}
		if h, err := ts.Check(rk.ID); err != nil || h != rk.Hash {
			t.Errorf("our Check(%s) = %s, %v on the adopted store; rkt's hash %s", rk.ID, h, err, rk.Hash)
		}
		if k, err := ts.GetImageHash(rk.ID); err != nil || k != rk.Key {
			t.Errorf("our GetImageHash(%s) = %s, %v; want %s", rk.ID, k, err, rk.Key)
		}
		if res, err := runRkt(t, "check", dir, rk.ID); err != nil || res.Hash != rk.Hash {
			t.Errorf("rkt's Check(%s) on the adopted store: %v", rk.ID, err)
		}
		if info, err := s.GetACIInfoWithBlobKey(rk.Key); err != nil || info.TreeStoreSize != *rk.TreeStoreSize {
			t.Errorf("TreeStoreSize of %s after adoption: %+v, %v; rkt recorded %d", rk.Key, info, err, *rk.TreeStoreSize)
		}
		// Rendering an adopted tree finds it: no new render.
		hashFile := filepath.Join(rk.Path, "hash")
		fi1, err1 := os.Stat(hashFile)
		id, hash, err := ts.Render(rk.Key, false)
		fi2, err2 := os.Stat(hashFile)
		if err != nil || id != rk.ID || hash != "" {
			t.Errorf("our Render(%s) of an adopted tree = %s, %q, %v; want %s, \"\", nil", rk.Key, id, hash, err, rk.ID)
		}
		if err1 != nil || err2 != nil || !os.SameFile(fi1, fi2) || !fi1.ModTime().Equal(fi2.ModTime()) {
			t.Errorf("our Render(%s) rendered an adopted tree again", rk.Key)
		}
	}
}

// TestRktRefuses: a missing dependency, or a dependency by an imageID that
// is not in the store: rkt refuses to render, and so do we, naming the
// image, and neither leaves a tree.
func TestRktRefuses(t *testing.T) {
	rktOracle(t)
	cases := []struct {
		name   string
		images func(t *testing.T) []*aciImage
		named  []string // our error must name one of these
	}{
		{name: "missing-dependency", images: func(*testing.T) []*aciImage {
			base := &aciImage{file: "base.aci", manifest: manifest("example.com/present", "1"), entries: []tarEntry{fileEnt("f", 0o644, "f")}}
			top := &aciImage{file: "top.aci", manifest: manifest("example.com/needs-absent", "1",
				depByName("example.com/present"), depByName("example.com/absent", "version", "1")), entries: []tarEntry{fileEnt("g", 0o644, "g")}}
			return []*aciImage{base, top}
		}, named: []string{"example.com/absent"}},
		{name: "wrong-imageID", images: func(t *testing.T) []*aciImage {
			base := &aciImage{file: "base.aci", manifest: manifest("example.com/idbase", "1"), entries: []tarEntry{fileEnt("f", 0o644, "f")}}
			base.build(t, 0)
			wrong := types.NewHashSHA512([]byte("not the base"))
			top := &aciImage{file: "top.aci", manifest: manifest("example.com/wrongid", "1",
				types.Dependency{ImageName: "example.com/idbase", ImageID: wrong}), entries: []tarEntry{fileEnt("g", 0o644, "g")}}
			return []*aciImage{base, top}
		}, named: []string{"example.com/idbase", "example.com/wrongid", types.NewHashSHA512([]byte("not the base")).String()[:20]}},
	}
	// A dependency whose imageID has the key of an image in the store
	// (its first 256 bits) but not its hash: rkt looks the key up and
	// renders that image (and so its tree store); the issue asks
	// for the hash to match.
	cases = append(cases, struct {
		name   string
		images func(t *testing.T) []*aciImage
		named  []string
	}{name: "imageID-differs-beyond-key", images: func(t *testing.T) []*aciImage {
		return imageIDBeyondKey(t)
	}, named: []string{"example.com/idbase", "example.com/wrongid"}})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			work := t.TempDir()
			imgs := c.images(t)
			buildImages(t, work, imgs)
			top := imgs[len(imgs)-1]
			rktDir := filepath.Join(work, "rkt")
			res, err := runRkt(t, append([]string{"render", rktDir}, rktArgs(work, imgs)...)...)
			switch {
			case err != nil:
				t.Logf("rkt refuses: %v", err)
				if ids := mustRkt(t, "ids", rktDir); len(ids.IDs) != 0 {
					t.Errorf("rkt left trees %v", ids.IDs)
				}
			case c.name == "imageID-differs-beyond-key":
				t.Logf("rkt renders it (a known difference: rkt compares keys, the first 256 bits): tree %s", res.ID)
			default:
				t.Errorf("rkt rendered %s: tree %s", top.file, res.ID)
			}

			ourDir := filepath.Join(work, "ours")
			s := ourStore(t, ourDir)
			writeOurs(t, s, imgs)
			ts := ourTreeStore(t, ourDir, s)
			id, _, err := ts.Render(top.key(), false)
			if err == nil {
				t.Fatalf("our Render of %s succeeded: tree %s", top.file, id)
			}
			t.Logf("ours refuses: %v", err)
			named := false
			for _, n := range c.named {
				named = named || strings.Contains(err.Error(), n)
			}
			if !named {
				t.Errorf("our error %q names none of %v", err, c.named)
			}
			if _, err := ts.GetID(top.key()); err == nil && c.name != "imageID-differs-beyond-key" {
				t.Errorf("our GetID(%s) succeeded; rkt's fails", top.file)
			}
			ids, err := ts.GetIDs()
			if err != nil || len(ids) != 0 {
				t.Errorf("our GetIDs after the refusal = %v, %v; want none", ids, err)
			}
			if entries, err := os.ReadDir(filepath.Join(ourDir, "tree")); err == nil && len(entries) != 0 {
				t.Errorf("our tree directory holds %d entries after the refusal", len(entries))
			}
		})
	}
}

// imageIDBeyondKey: the top depends on its base by an imageID that agrees
// with the base's hash in the first 256 bits (the store's key) and not
// after.
func imageIDBeyondKey(t *testing.T) []*aciImage {
	base := &aciImage{file: "base.aci", manifest: manifest("example.com/idbase", "1"), entries: []tarEntry{fileEnt("f", 0o644, "f")}}
	base.build(t, 0)
	full := base.imageID().String()
	last := "0"
	if full[len(full)-1] == '0' {
		last = "1"
	}
	wrong, err := types.NewHash(full[:len(full)-1] + last)
	if err != nil {
		t.Fatal(err)
	}
	top := &aciImage{file: "top.aci", manifest: manifest("example.com/wrongid", "1",
		types.Dependency{ImageName: "example.com/idbase", ImageID: wrong}), entries: []tarEntry{fileEnt("g", 0o644, "g")}}
	return []*aciImage{base, top}
}

// TestRktTreeDiffDetects: the entry-by-entry comparison of the rkt tests
// sees each kind of difference it claims to see, in the field it names,
// and only notes a directory's time.
func TestRktTreeDiffDetects(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (owners, device nodes), as the rkt comparison does")
	}
	work := t.TempDir()
	src := filepath.Join(work, "src")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	old := time.Date(2001, 2, 3, 4, 5, 6, 789, time.UTC)
	must(os.MkdirAll(filepath.Join(src, "rootfs", "d"), 0o755))
	for _, f := range []string{"f", "g", "h", "d/x"} {
		must(os.WriteFile(filepath.Join(src, "rootfs", f), []byte("content "+f), 0o644))
	}
	must(os.Link(filepath.Join(src, "rootfs", "h"), filepath.Join(src, "rootfs", "h2")))
	must(os.Symlink("f", filepath.Join(src, "rootfs", "l")))
	must(syscallMkfifo(filepath.Join(src, "rootfs", "p"), 0o600))
	must(syscallMknodChar(filepath.Join(src, "rootfs", "c"), 0o600, 1, 3))
	for _, f := range []string{"f", "g", "h", "d/x", "p", "c", "d", "."} {
		must(os.Chtimes(filepath.Join(src, "rootfs", f), old, old))
	}

	mutations := []struct {
		path, field string
		note        bool // a note, not a difference
		mutate      func(root string) error
	}{
		{"rootfs/f", "mode", false, func(r string) error { return os.Chmod(filepath.Join(r, "rootfs/f"), 0o640) }},
		{"rootfs/f", "mode", false, func(r string) error { return os.Chmod(filepath.Join(r, "rootfs/f"), 0o644|os.ModeSetuid) }},
		{"rootfs/d", "mode", false, func(r string) error { return os.Chmod(filepath.Join(r, "rootfs/d"), 0o755|os.ModeSticky) }},
		{"rootfs/g", "uid", false, func(r string) error { return os.Lchown(filepath.Join(r, "rootfs/g"), 1, 0) }},
		{"rootfs/g", "gid", false, func(r string) error { return os.Lchown(filepath.Join(r, "rootfs/g"), 0, 1) }},
		{"rootfs/l", "uid", false, func(r string) error { return os.Lchown(filepath.Join(r, "rootfs/l"), 7, 0) }},
		{"rootfs/f", "sha256", false, func(r string) error {
			p := filepath.Join(r, "rootfs/f")
			if err := os.WriteFile(p, []byte("content F"), 0o644); err != nil {
				return err
			}
			return os.Chtimes(p, old, old)
		}},
		{"rootfs/f", "mtime", false, func(r string) error {
			return os.Chtimes(filepath.Join(r, "rootfs/f"), old, old.Add(time.Nanosecond))
		}},
		{"rootfs/l", "symlink target", false, func(r string) error {
			p := filepath.Join(r, "rootfs/l")
			if err := os.Remove(p); err != nil {
				return err
			}
			return os.Symlink("g", p)
		}},
		{"rootfs/c", "device", false, func(r string) error {
			p := filepath.Join(r, "rootfs/c")
			if err := os.Remove(p); err != nil {
				return err
			}
			if err := syscallMknodChar(p, 0o600, 1, 5); err != nil {
				return err
			}
			return os.Chtimes(p, old, old)
		}},
		{"rootfs/h2", "hard links", false, func(r string) error {
			p := filepath.Join(r, "rootfs/h2")
			if err := os.Remove(p); err != nil {
				return err
			}
			if err := os.WriteFile(p, []byte("content h"), 0o644); err != nil {
				return err
			}
			return os.Chtimes(p, old, old)
		}},
		{"rootfs/p", "type", false, func(r string) error {
			p := filepath.Join(r, "rootfs/p")
			if err := os.Remove(p); err != nil {
				return err
			}
			return os.WriteFile(p, nil, 0o600)
		}},
		{"rootfs/f", "xattrs", false, func(r string) error {
			if !userXattrs(t) {
				return errors.ErrUnsupported
			}
			return unix.Setxattr(filepath.Join(r, "rootfs/f"), "user.test", []byte("1"), 0)
		}},
		{"rootfs/d/x", "only in", false, func(r string) error { return os.Remove(filepath.Join(r, "rootfs/d/x")) }},
		{"rootfs/new", "only in", false, func(r string) error { return os.WriteFile(filepath.Join(r, "rootfs/new"), nil, 0o644) }},
		{"rootfs/d", "mtime", true, func(r string) error {
			return os.Chtimes(filepath.Join(r, "rootfs/d"), old, old.Add(time.Second))
		}},
	}
	want := describeTree(t, src)
	for i, m := range mutations {
		dst := filepath.Join(work, fmt.Sprint(i))
		copyTree(t, src, dst)
		root := filepath.Join(dst, "src")
		if diffs, notes := diffTrees("src", want, "copy", describeTree(t, root)); len(diffs)+len(notes) != 0 {
			t.Fatalf("a copy differs before any change: %v %v", diffs, notes)
		}
		if err := m.mutate(root); errors.Is(err, errors.ErrUnsupported) {
			t.Logf("mutation %d (%s %s): not here", i, m.path, m.field)
			continue
		} else if err != nil {
			t.Fatalf("mutation %d (%s %s): %v", i, m.path, m.field, err)
		}
		diffs, notes := diffTrees("src", want, "copy", describeTree(t, root))
		got := diffs
		if m.note {
			got = notes
			if len(diffs) != 0 {
				t.Errorf("mutation %d (%s %s) is a failing difference: %v", i, m.path, m.field, diffs)
			}
		}
		found := false
		for _, d := range got {
			found = found || (strings.HasPrefix(d, m.path+": ") || strings.HasPrefix(d, "directory "+m.path+": ")) && strings.Contains(d, m.field)
		}
		if !found {
			t.Errorf("mutation %d: %s %s not seen: differences %q, notes %q", i, m.path, m.field, diffs, notes)
		}
	}
}
