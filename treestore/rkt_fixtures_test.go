// Images for the rkt comparison tests (and the tree store's own), written
// by hand per the appc spec: a tar of "manifest" and "rootfs/...". Images
// built by appc's actool are in rkt_actool_linux_test.go.

package treestore_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
)

// tarEntry is one entry of an image's rootfs: hdr.Name is relative to
// rootfs/ (and so is a hard link's Linkname).
type tarEntry struct {
	hdr  tar.Header
	body []byte
}

func dirEnt(name string, mode int64) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode}}
}

func fileEnt(name string, mode int64, body string) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(body))}, body: []byte(body)}
}

func symlinkEnt(name, target string) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}}
}

// hardlinkEnt links name to target, an entry of the same image. Its
// header gets the target's mode, owner and time, as tar and actool write
// them (build fills them in).
func hardlinkEnt(name, target string) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, Mode: -1}}
}

func fifoEnt(name string, mode int64) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: name, Mode: mode}}
}

func devEnt(name string, typ byte, mode, major, minor int64) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: typ, Name: name, Mode: mode, Devmajor: major, Devminor: minor}}
}

func (e tarEntry) owner(uid, gid int) tarEntry {
	e.hdr.Uid, e.hdr.Gid = uid, gid
	return e
}

func (e tarEntry) at(mtime time.Time) tarEntry {
	e.hdr.ModTime = mtime
	return e
}

func (e tarEntry) xattr(name, value string) tarEntry {
	recs := map[string]string{}
	for k, v := range e.hdr.PAXRecords {
		recs[k] = v
	}
	recs["SCHILY.xattr."+name] = value
	e.hdr.PAXRecords = recs
	return e
}

// aciImage is an image of a test: its manifest and its rootfs entries.
type aciImage struct {
	file     string // the .aci's name
	manifest schema.ImageManifest
	entries  []tarEntry
	gzip     bool // write it gzip-compressed
	latest   bool // import it with ACIFetchInfo{Latest: true}

	raw []byte // the image as written (gzip or not), set by build
	tar []byte // the uncompressed tar, set by build
}

// key is the image's key in both stores.
func (a *aciImage) key() string {
	sum := sha512.Sum512(a.tar)
	return "sha512-" + hex.EncodeToString(sum[:])[:64]
}

// imageID is the image's full ID, as a dependency names it.
func (a *aciImage) imageID() *types.Hash { return types.NewHashSHA512(a.tar) }

// The base of the entries' modification times: in the past, with
// nanoseconds.
var fixtureEpoch = time.Date(2009, 11, 10, 23, 0, 0, 123456789, time.UTC)

// build writes the image's tar. Entries without a modification time get
// one of their own, distinct from every other entry's.
func (a *aciImage) build(t *testing.T, seq int) {
	t.Helper()
	m := a.manifest
	m.ACKind = schema.ImageManifestKind
	m.ACVersion = schema.AppContainerVersion
	mj, err := json.Marshal(m)
	if err != nil {
		t.Fatalf("manifest of %s: %v", a.file, err)
	}
	stamp := func(i int) time.Time {
		return fixtureEpoch.Add(time.Duration(seq)*240*time.Hour + time.Duration(i)*(time.Minute+time.Duration(i)*7919*time.Nanosecond))
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	write := func(hdr tar.Header, body []byte) {
		hdr.Format = tar.FormatPAX
		if err := tw.WriteHeader(&hdr); err != nil {
			t.Fatalf("%s: %s: %v", a.file, hdr.Name, err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatalf("%s: %s: %v", a.file, hdr.Name, err)
		}
	}
	write(tar.Header{Typeflag: tar.TypeReg, Name: "manifest", Mode: 0o644, Size: int64(len(mj)), ModTime: stamp(0)}, mj)
	write(tar.Header{Typeflag: tar.TypeDir, Name: "rootfs/", Mode: 0o755, ModTime: stamp(1)}, nil)
	written := map[string]tar.Header{}
	for i, e := range a.entries {
		hdr := e.hdr
		hdr.Name = "rootfs/" + hdr.Name
		if hdr.ModTime.IsZero() {
			hdr.ModTime = stamp(i + 2)
		}
		if hdr.Typeflag == tar.TypeLink {
			hdr.Linkname = "rootfs/" + hdr.Linkname
			if hdr.Mode == -1 {
				target, ok := written[hdr.Linkname]
				if !ok {
					t.Fatalf("%s: hard link %s to %s, not written before it", a.file, hdr.Name, hdr.Linkname)
				}
				hdr.Mode, hdr.Uid, hdr.Gid, hdr.ModTime = target.Mode, target.Uid, target.Gid, target.ModTime
			}
		}
		write(hdr, e.body)
		written[hdr.Name] = hdr
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	a.tar = buf.Bytes()
	a.raw = a.tar
	if a.gzip {
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		zw.Write(a.tar)
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		a.raw = z.Bytes()
	}
}

// buildImages builds imgs in order (so a dependency by imageID can name an
// image built before it) and writes each to dir.
func buildImages(t *testing.T, dir string, imgs []*aciImage) {
	t.Helper()
	for i, a := range imgs {
		if a.tar == nil {
			a.build(t, i)
		}
		if err := os.WriteFile(filepath.Join(dir, a.file), a.raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func labels(kv ...string) types.Labels {
	var ls types.Labels
	for i := 0; i < len(kv); i += 2 {
		ls = append(ls, types.Label{Name: types.ACIdentifier(kv[i]), Value: kv[i+1]})
	}
	return ls
}

// osArch are the labels every fixture image has.
var osArch = []string{"os", "linux", "arch", "amd64"}

func manifest(name string, version string, deps ...types.Dependency) schema.ImageManifest {
	return schema.ImageManifest{
		Name:         types.ACIdentifier(name),
		Labels:       labels(append([]string{"version", version}, osArch...)...),
		Dependencies: deps,
	}
}

func depByName(name string, kv ...string) types.Dependency {
	return types.Dependency{ImageName: types.ACIdentifier(name), Labels: labels(kv...)}
}

// A comparison shape: images imported in order into both stores; the last
// is rendered.
type shape struct {
	name   string
	images func(t *testing.T) []*aciImage
	// want, if set, checks rkt's rendered rootfs, so that a fixture that
	// does not make what it means to make is noticed.
	want func(t *testing.T, rootfs string)
}

// wantFile checks that rootfs/name is a regular file holding body.
func wantFile(t *testing.T, rootfs, name, body string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(rootfs, name))
	if err != nil || string(b) != body {
		t.Errorf("fixture: the tree has %s = %q (%v), the fixture means %q", name, b, err, body)
	}
}

// wantAbsent checks that rkt did not render rootfs/name.
func wantAbsent(t *testing.T, rootfs, name string) {
	t.Helper()
	// ENOTDIR: a parent is not a directory.
	if _, err := os.Lstat(filepath.Join(rootfs, name)); err == nil || !(os.IsNotExist(err) || errors.Is(err, syscall.ENOTDIR)) {
		t.Errorf("fixture: the tree has %s (%v), the fixture means it absent", name, err)
	}
}

func chain3() []*aciImage {
	base := &aciImage{file: "base.aci", manifest: manifest("example.com/base", "1.0"), entries: []tarEntry{
		dirEnt("bin", 0o755), dirEnt("etc", 0o755), dirEnt("usr", 0o755), dirEnt("usr/lib", 0o755),
		dirEnt("var", 0o755), dirEnt("var/empty", 0o700), dirEnt("tmp", 0o1777),
		fileEnt("bin/busybox", 0o755, "busybox of base"),
		symlinkEnt("bin/sh", "busybox"), symlinkEnt("bin/ls", "/bin/busybox"),
		fileEnt("etc/passwd", 0o644, "root:x:0:0:base:/root:/bin/sh\n"),
		fileEnt("etc/hostname", 0o644, "base\n"),
		fileEnt("usr/lib/libc.so", 0o755, "libc of base"),
	}}
	middle := &aciImage{file: "middle.aci", gzip: true, manifest: manifest("example.com/middle", "2.0",
		depByName("example.com/base", "version", "1.0")), entries: []tarEntry{
		dirEnt("etc", 0o750).owner(0, 10),
		fileEnt("etc/passwd", 0o644, "root:x:0:0:middle:/root:/bin/sh\n"),
		dirEnt("usr/lib", 0o755),
		fileEnt("usr/lib/libm.so", 0o755, "libm of middle"),
		dirEnt("opt", 0o755), dirEnt("opt/app", 0o755), dirEnt("opt/app/bin", 0o755),
		fileEnt("opt/app/bin/run", 0o755, "#!/bin/sh\necho middle\n"),
	}}
	top := &aciImage{file: "top.aci", manifest: manifest("example.com/top", "3.0",
		depByName("example.com/middle", "version", "2.0", "os", "linux")), entries: []tarEntry{
		fileEnt("etc/hostname", 0o644, "top\n"),
		dirEnt("app", 0o700).owner(1000, 1000),
		fileEnt("app/config", 0o600, "key=value\n").owner(1000, 1000),
	}}
	return []*aciImage{base, middle, top}
}

// byImageID: the top depends on its base by imageID, and another image of
// the same name and labels is imported after the base: a lookup by name
// would find that one.
func byImageID(t *testing.T) []*aciImage {
	base := &aciImage{file: "idbase.aci", manifest: manifest("example.com/idbase", "1.0"), entries: []tarEntry{
		dirEnt("etc", 0o755), fileEnt("etc/release", 0o644, "the base by ID\n"),
		fileEnt("only-in-base", 0o644, "x"),
	}}
	decoy := &aciImage{file: "decoy.aci", manifest: manifest("example.com/idbase", "1.0"), entries: []tarEntry{
		dirEnt("etc", 0o755), fileEnt("etc/release", 0o644, "the decoy\n"),
		fileEnt("only-in-decoy", 0o644, "x"),
	}}
	base.build(t, 0)
	decoy.build(t, 1)
	dep := types.Dependency{ImageName: "example.com/idbase", ImageID: base.imageID(), Labels: labels("version", "1.0")}
	top := &aciImage{file: "idtop.aci", gzip: true, manifest: manifest("example.com/idtop", "1.0", dep), entries: []tarEntry{
		fileEnt("top", 0o644, "top\n"),
	}}
	return []*aciImage{base, decoy, top}
}

// dependencyOrder: several dependencies with conflicting files, files
// against directories both ways, and a dependency with a dependency.
func dependencyOrder() []*aciImage {
	a0 := &aciImage{file: "a0.aci", manifest: manifest("example.com/a0", "1"), entries: []tarEntry{
		fileEnt("conflict", 0o644, "a0"), fileEnt("a0-only", 0o644, "a0"),
		dirEnt("shared", 0o711).owner(3, 3), fileEnt("shared/a0", 0o644, "a0"),
	}}
	a := &aciImage{file: "a.aci", manifest: manifest("example.com/a", "1", depByName("example.com/a0")), entries: []tarEntry{
		fileEnt("conflict", 0o644, "a"), fileEnt("a-only", 0o640, "a").owner(0, 4),
		fileEnt("fd1", 0o644, "fd1 is a file in a"),
		dirEnt("fd2", 0o755), fileEnt("fd2/in-a", 0o644, "a"),
		dirEnt("shared", 0o700).owner(1, 1), fileEnt("shared/a", 0o644, "a"),
		dirEnt("tdir", 0o755), fileEnt("tdir/child", 0o644, "a"),
	}}
	b := &aciImage{file: "b.aci", gzip: true, manifest: manifest("example.com/b", "1"), entries: []tarEntry{
		fileEnt("conflict", 0o600, "b"), fileEnt("b-only", 0o644, "b"),
		dirEnt("fd1", 0o755), fileEnt("fd1/child", 0o644, "b"), dirEnt("fd1/sub", 0o755), fileEnt("fd1/sub/deeper", 0o644, "b"),
		fileEnt("fd2", 0o644, "fd2 is a file in b"),
		dirEnt("shared", 0o755).owner(2, 2), fileEnt("shared/b", 0o644, "b"),
	}}
	c := &aciImage{file: "c.aci", manifest: manifest("example.com/c", "1"), entries: []tarEntry{
		fileEnt("conflict", 0o444, "c"), fileEnt("c-only", 0o644, "c"),
		dirEnt("shared", 0o750).owner(5, 5), fileEnt("shared/c", 0o644, "c"),
		symlinkEnt("link-or-file", "c-only"),
	}}
	top := &aciImage{file: "ordertop.aci", manifest: manifest("example.com/ordertop", "1",
		depByName("example.com/a"), depByName("example.com/b", "version", "1"), depByName("example.com/c", "os", "linux")),
		entries: []tarEntry{
			fileEnt("top-only", 0o644, "top"),
			fileEnt("tdir", 0o644, "tdir is a file in the top"),
		}}
	return []*aciImage{a0, a, b, c, top}
}

// whitelistBase is the bottom image of the whitelist shapes.
func whitelistBase() *aciImage {
	return &aciImage{file: "wlbase.aci", manifest: manifest("example.com/wlbase", "1"), entries: []tarEntry{
		dirEnt("bin", 0o755), fileEnt("bin/sh", 0o755, "sh"), fileEnt("bin/ls", 0o755, "ls"), fileEnt("bin/cat", 0o755, "cat"),
		dirEnt("etc", 0o755), fileEnt("etc/passwd", 0o644, "passwd of base"), fileEnt("etc/shadow", 0o600, "shadow"),
		dirEnt("secret", 0o700).owner(5, 6), dirEnt("secret/dir", 0o710).owner(7, 8),
		fileEnt("secret/dir/keep", 0o640, "kept").owner(7, 8), fileEnt("secret/dir/drop", 0o640, "dropped"),
		dirEnt("lib", 0o755), fileEnt("lib/libc.so", 0o755, "libc"), fileEnt("lib/libz.so", 0o755, "libz"),
		symlinkEnt("lib/libc.so.6", "libc.so"),
		dirEnt("empty", 0o755),
	}}
}

// whitelistUpperAndMiddle: the middle image and the top both have a
// pathWhitelist (they differ: rkt applies the topmost to every image under
// it).
func whitelistUpperAndMiddle() []*aciImage {
	base := whitelistBase()
	mm := manifest("example.com/wlmiddle", "1", depByName("example.com/wlbase"))
	mm.PathWhitelist = []string{"/bin/sh", "/etc/passwd", "/secret/dir/keep", "/lib/libc.so", "/lib/libc.so.6", "/mid/m1", "/mid/m2"}
	middle := &aciImage{file: "wlmiddle.aci", manifest: mm, entries: []tarEntry{
		dirEnt("mid", 0o755), fileEnt("mid/m1", 0o644, "m1"), fileEnt("mid/m2", 0o644, "m2"), fileEnt("mid/m3", 0o644, "m3"),
		fileEnt("etc/passwd", 0o644, "passwd of middle"),
	}}
	tm := manifest("example.com/wltop", "1", depByName("example.com/wlmiddle"))
	tm.PathWhitelist = []string{"/bin/sh", "/bin/cat", "/etc/passwd", "/secret/dir/keep", "/mid/m1", "/top/t1", "/lib/libc.so", "/etc"}
	top := &aciImage{file: "wltop.aci", gzip: true, manifest: tm, entries: []tarEntry{
		dirEnt("top", 0o755), fileEnt("top/t1", 0o644, "t1"), fileEnt("top/t2", 0o644, "t2"),
	}}
	return []*aciImage{base, middle, top}
}

// whitelistMiddleOnly: only the middle image has a pathWhitelist.
func whitelistMiddleOnly() []*aciImage {
	base := whitelistBase()
	mm := manifest("example.com/wlmiddle", "1", depByName("example.com/wlbase"))
	mm.PathWhitelist = []string{"/bin/sh", "/etc/passwd", "/secret/dir/keep", "/lib", "/lib/libc.so", "/mid/m1"}
	middle := &aciImage{file: "wlmiddle.aci", manifest: mm, entries: []tarEntry{
		dirEnt("mid", 0o750), fileEnt("mid/m1", 0o644, "m1"), fileEnt("mid/m2", 0o644, "m2"),
	}}
	top := &aciImage{file: "wltop.aci", manifest: manifest("example.com/wltop", "1", depByName("example.com/wlmiddle")), entries: []tarEntry{
		dirEnt("top", 0o755), fileEnt("top/t1", 0o644, "t1"), fileEnt("top/t2", 0o644, "t2"),
		fileEnt("bin/ls", 0o755, "ls of top"),
	}}
	return []*aciImage{base, middle, top}
}

// specialFiles: symlinks, hard links, setuid and odd modes, FIFOs, device
// nodes, empty directories, odd owners, old times, and an extended
// attribute (user.*) if withXattr (the filesystem must take it: rkt fails
// to extract it otherwise).
func specialFiles(withXattr bool) []*aciImage {
	big := make([]byte, 1<<20+17)
	rand.New(rand.NewSource(1)).Read(big)
	base := &aciImage{file: "specbase.aci", manifest: manifest("example.com/specbase", "1"), entries: []tarEntry{
		dirEnt("dev", 0o755),
		// rkt's Hash reads the content of character devices (its walker
		// takes them for regular files): only /dev/null's (1,3) can be
		// read anywhere, and reads nothing. Block devices it does not read.
		devEnt("dev/null", tar.TypeChar, 0o666, 1, 3),
		devEnt("dev/null-too", tar.TypeChar, 0o620, 1, 3).owner(0, 5).at(time.Unix(1, 1)),
		devEnt("dev/loop0", tar.TypeBlock, 0o660, 7, 0).owner(0, 6),
		devEnt("dev/bigdev", tar.TypeBlock, 0o600, 259, 65537),
		fifoEnt("dev/fifo", 0o600),
		dirEnt("run", 0o755), fifoEnt("run/fifo2", 0o644).owner(1000, 1000),
		dirEnt("bin", 0o755),
		fileEnt("bin/su", 0o4755, "su"),
		fileEnt("bin/wall", 0o2755, "wall").owner(0, 5),
		fileEnt("bin/both", 0o6711, "both"),
		dirEnt("tmp", 0o1777), dirEnt("sgid", 0o2775).owner(0, 50),
		dirEnt("modes", 0o755),
		fileEnt("modes/0700", 0o700, "0700"), fileEnt("modes/0444", 0o444, "0444"),
		fileEnt("modes/0000", 0o000, "0000"), fileEnt("modes/0640", 0o640, "0640").owner(1000, 1000),
		fileEnt("modes/bigid", 0o644, "bigid").owner(123456, 654321),
		fileEnt("modes/nobody", 0o644, "nobody").owner(65534, 65534),
		fileEnt("modes/empty", 0o644, ""),
		fileEnt("modes/big", 0o644, string(big)),
		dirEnt("times", 0o755),
		fileEnt("times/epoch", 0o644, "epoch").at(time.Unix(1, 1)),
		fileEnt("times/pre-epoch", 0o644, "pre-epoch").at(time.Date(1969, 7, 20, 20, 17, 40, 500000000, time.UTC)),
		fileEnt("times/y2k", 0o644, "y2k").at(time.Date(1999, 12, 31, 23, 59, 59, 999999999, time.UTC)),
		fileEnt("times/future", 0o644, "future").at(time.Date(2040, 1, 1, 0, 0, 0, 1, time.UTC)),
		symlinkEnt("times/oldlink", "epoch").at(time.Unix(1000000000, 5)),
		dirEnt("hl", 0o755), dirEnt("hl/sub", 0o755),
		fileEnt("hl/a", 0o640, "hard linked").owner(7, 7),
		hardlinkEnt("hl/b", "hl/a"), hardlinkEnt("hl/c", "hl/a"), hardlinkEnt("hl/sub/d", "hl/a"),
		fileEnt("hl/setuid", 0o4750, "setuid linked"), hardlinkEnt("hl/setuid2", "hl/setuid"),
		dirEnt("sl", 0o755),
		symlinkEnt("sl/abs", "/etc/passwd"), symlinkEnt("sl/rel", "../hl/a"),
		symlinkEnt("sl/dangling", "/nonexistent/file"), symlinkEnt("sl/dir", "/usr"),
		symlinkEnt("sl/escape", "../../../../../../etc/shadow"),
		symlinkEnt("sl/owned", "rel").owner(1000, 1001),
		symlinkEnt("sl/self", "self"),
		dirEnt("empty", 0o755), dirEnt("empty/nested", 0o700), dirEnt("empty/nested/deeper", 0o555),
		dirEnt("ownerdir", 0o750).owner(1000, 1000).at(time.Unix(12345, 678)),
		dirEnt("etc", 0o755), fileEnt("etc/passwd", 0o644, "root:x:0:0::/:/bin/sh\n"),
	}}
	if withXattr {
		base.entries = append(base.entries, fileEnt("modes/xattr", 0o644, "xattr").xattr("user.imagestore", "v1"))
	}
	top := &aciImage{file: "spectop.aci", gzip: true, manifest: manifest("example.com/spectop", "1",
		depByName("example.com/specbase", "version", "1")), entries: []tarEntry{
		dirEnt("bin", 0o755),
		fileEnt("bin/su", 0o755, "su without setuid"),
		dirEnt("top", 0o755),
		fileEnt("top/x", 0o600, "linked in top").owner(3, 4), hardlinkEnt("top/y", "top/x"),
		fifoEnt("top/fifo", 0o640),
		devEnt("top/sda1", tar.TypeBlock, 0o660, 8, 1).owner(0, 6),
		devEnt("top/null", tar.TypeChar, 0o666, 1, 3),
		symlinkEnt("top/abs", "/bin/su"),
		dirEnt("tmp", 0o1777).at(time.Unix(2, 2)),
	}}
	return []*aciImage{base, top}
}

// hardlinkOverride: the upper image replaces the target of a hard link of
// the lower one, and another link.
func hardlinkOverride() []*aciImage {
	base := &aciImage{file: "hlbase.aci", manifest: manifest("example.com/hlbase", "1"), entries: []tarEntry{
		dirEnt("hl", 0o755),
		fileEnt("hl/a", 0o644, "a of base"), hardlinkEnt("hl/b", "hl/a"), hardlinkEnt("hl/c", "hl/a"),
		fileEnt("hl/p", 0o644, "p of base"), hardlinkEnt("hl/q", "hl/p"),
	}}
	top := &aciImage{file: "hltop.aci", manifest: manifest("example.com/hltop", "1", depByName("example.com/hlbase")), entries: []tarEntry{
		dirEnt("hl", 0o755),
		fileEnt("hl/a", 0o600, "a of top"),
		fileEnt("hl/q", 0o644, "q of top"),
	}}
	return []*aciImage{base, top}
}

// bestMatch: two versions of a dependency in the store; which one the
// dependency's labels get is GetACI's answer.
func bestMatch(v1Latest, v2Latest bool, depLabels ...string) func(*testing.T) []*aciImage {
	return func(*testing.T) []*aciImage {
		v1 := &aciImage{file: "lib-1.aci", latest: v1Latest, manifest: manifest("example.com/lib", "1"), entries: []tarEntry{
			dirEnt("lib", 0o755), fileEnt("lib/version", 0o644, "1\n"), fileEnt("lib/v1-only", 0o644, "1"),
		}}
		v2 := &aciImage{file: "lib-2.aci", latest: v2Latest, manifest: manifest("example.com/lib", "2"), entries: []tarEntry{
			dirEnt("lib", 0o755), fileEnt("lib/version", 0o644, "2\n"), fileEnt("lib/v2-only", 0o644, "2"),
		}}
		top := &aciImage{file: "app.aci", manifest: manifest("example.com/app", "1",
			depByName("example.com/lib", depLabels...)), entries: []tarEntry{
			fileEnt("app", 0o755, "app"),
		}}
		return []*aciImage{v1, v2, top}
	}
}

// randomTrees: a few hundred entries in a base and an upper image made with
// a seeded generator: overrides, new files, files against directories.
func randomTrees() []*aciImage {
	rng := rand.New(rand.NewSource(17))
	modes := []int64{0o644, 0o755, 0o600, 0o640, 0o444, 0o700, 0o4755, 0o2711, 0o1755, 0o000}
	owners := [][2]int{{0, 0}, {0, 0}, {1000, 1000}, {1, 2}, {65534, 65534}, {4242, 0}}
	content := func() []byte {
		n := rng.Intn(4096)
		if rng.Intn(20) == 0 {
			n = rng.Intn(200 << 10)
		}
		b := make([]byte, n)
		rng.Read(b)
		return b
	}
	owned := func(e tarEntry) tarEntry {
		o := owners[rng.Intn(len(owners))]
		return e.owner(o[0], o[1])
	}
	mtime := func() time.Time {
		return time.Unix(rng.Int63n(1<<31), rng.Int63n(1e9))
	}

	var baseEntries []tarEntry
	dirs := []string{""}
	var files []string
	filesIn := map[string][]string{}
	hlTarget := map[string]bool{}
	for i := 0; i < 40; i++ {
		p := path.Join(dirs[rng.Intn(len(dirs))], fmt.Sprintf("d%d", i))
		dirs = append(dirs, p)
		dm := []int64{0o755, 0o700, 0o750, 0o1777, 0o2755, 0o555}[rng.Intn(6)]
		baseEntries = append(baseEntries, owned(dirEnt(p, dm)).at(mtime()))
	}
	for i := 0; i < 260; i++ {
		p := path.Join(dirs[rng.Intn(len(dirs))], fmt.Sprintf("f%d", i))
		var e tarEntry
		// A hard link goes to a file of its own directory: the upper
		// image may make a directory a file, which drops the link and
		// its target together.
		same := filesIn[path.Dir(p)]
		switch r := rng.Intn(20); {
		case r < 15:
			e = fileEnt(p, modes[rng.Intn(len(modes))], string(content()))
			files = append(files, p)
			filesIn[path.Dir(p)] = append(same, p)
		case r < 18:
			e = symlinkEnt(p, []string{"/", "../"}[rng.Intn(2)]+fmt.Sprintf("target%d", rng.Intn(100)))
		case r < 19 && len(same) > 0:
			target := same[rng.Intn(len(same))]
			hlTarget[target] = true
			e = hardlinkEnt(p, target)
		default:
			e = fifoEnt(p, 0o644)
		}
		if e.hdr.Typeflag != tar.TypeLink {
			e = owned(e).at(mtime())
		}
		baseEntries = append(baseEntries, e)
	}

	var upperEntries []tarEntry
	used := map[string]bool{}
	for i := 0; i < 120; i++ {
		var e tarEntry
		switch r := rng.Intn(10); {
		case r < 5: // override a base file (hardlinkOverride has the targets)
			p := files[rng.Intn(len(files))]
			if used[p] || hlTarget[p] {
				continue
			}
			used[p] = true
			e = fileEnt(p, modes[rng.Intn(len(modes))], string(content()))
		case r < 7: // a new file in a base directory
			p := path.Join(dirs[rng.Intn(len(dirs))], fmt.Sprintf("u%d", i))
			used[p] = true
			e = fileEnt(p, modes[rng.Intn(len(modes))], string(content()))
		case r < 8: // a file where the base has a directory
			p := dirs[1+rng.Intn(len(dirs)-1)]
			if used[p] || usedUnder(used, p) {
				continue
			}
			used[p] = true
			e = fileEnt(p, 0o644, "was a directory in the base")
		case r < 9: // a directory where the base has a file, with a child
			p := files[rng.Intn(len(files))]
			if used[p] || hlTarget[p] { // rkt cannot link to a directory
				continue
			}
			used[p], used[p+"/child"] = true, true
			upperEntries = append(upperEntries, owned(dirEnt(p, 0o755)).at(mtime()))
			e = fileEnt(p+"/child", 0o644, "child")
		default: // a base directory again, with another mode
			p := dirs[1+rng.Intn(len(dirs)-1)]
			if used[p] || parentUsed(used, p) {
				continue
			}
			used[p] = true
			e = dirEnt(p, 0o750)
		}
		upperEntries = append(upperEntries, owned(e).at(mtime()))
	}
	// An upper entry whose parent the upper made a file must go: a tar
	// cannot have both.
	var kept []tarEntry
	for _, e := range upperEntries {
		name := path.Clean(e.hdr.Name)
		if !parentIsUpperFile(upperEntries, name) {
			kept = append(kept, e)
		}
	}
	base := &aciImage{file: "randbase.aci", gzip: true, manifest: manifest("example.com/randbase", "1"), entries: baseEntries}
	upper := &aciImage{file: "randupper.aci", manifest: manifest("example.com/randupper", "1", depByName("example.com/randbase")), entries: kept}
	return []*aciImage{base, upper}
}

func usedUnder(used map[string]bool, dir string) bool {
	for p := range used {
		if len(p) > len(dir) && p[:len(dir)+1] == dir+"/" {
			return true
		}
	}
	return false
}

func parentUsed(used map[string]bool, p string) bool {
	for d := path.Dir(p); d != "." && d != "/"; d = path.Dir(d) {
		if used[d] {
			return true
		}
	}
	return false
}

func parentIsUpperFile(entries []tarEntry, name string) bool {
	for _, e := range entries {
		n := path.Clean(e.hdr.Name)
		if e.hdr.Typeflag != tar.TypeDir && len(name) > len(n) && name[:len(n)+1] == n+"/" {
			return true
		}
	}
	return false
}
