// Images built by appc's actool for the rkt comparison (Linux): a base,
// a middle image that depends on it, and a top given dependencies and a
// pathWhitelist by actool patch-manifest.

//go:build linux

package treestore_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
)

// actoolPath is appc's actool ($IMAGESTORE_ACTOOL or on $PATH; CI builds
// it), or "" when there is none.
func actoolPath() string {
	if p := os.Getenv("IMAGESTORE_ACTOOL"); p != "" {
		return p
	}
	return lookPath("actool")
}

// actoolImages builds images with actool from directories made on disk:
// a base (actool build), a middle built with a manifest that depends on
// the base by name, and a top built without dependencies and then given
// a manifest with dependencies (on the middle by name, on the base by
// imageID) and a pathWhitelist by actool patch-manifest.
func actoolImages(t *testing.T, actool, work string) []*aciImage {
	t.Helper()
	old := time.Date(2012, 3, 4, 5, 6, 7, 890123456, time.UTC)
	layout := func(name string, m schema.ImageManifest, fill func(rootfs string)) string {
		dir := filepath.Join(work, name)
		rootfs := filepath.Join(dir, "rootfs")
		if err := os.MkdirAll(rootfs, 0o755); err != nil {
			t.Fatal(err)
		}
		fill(rootfs)
		m.ACKind, m.ACVersion = schema.ImageManifestKind, schema.AppContainerVersion
		mj, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "manifest"), mj, 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	file := func(p string, mode os.FileMode, body string, uid, gid int) {
		t.Helper()
		must(os.MkdirAll(filepath.Dir(p), 0o755))
		must(os.WriteFile(p, []byte(body), 0o600))
		must(os.Chown(p, uid, gid))
		must(os.Chmod(p, mode))
		must(os.Chtimes(p, old, old))
	}
	// Directory times last, children first.
	dirTimes := func(rootfs string) {
		var ds []string
		filepath.Walk(rootfs, func(p string, fi os.FileInfo, err error) error {
			if err == nil && fi.IsDir() {
				ds = append(ds, p)
			}
			return nil
		})
		sort.Sort(sort.Reverse(sort.StringSlice(ds)))
		for i, d := range ds {
			tm := old.Add(time.Duration(i) * time.Second)
			must(os.Chtimes(d, tm, tm))
		}
	}

	baseDir := layout("actool-base", manifest("example.com/actool-base", "1.0"), func(r string) {
		file(filepath.Join(r, "bin/busybox"), 0o755, "busybox", 0, 0)
		must(os.Symlink("busybox", filepath.Join(r, "bin/sh")))
		must(os.Symlink("/bin/busybox", filepath.Join(r, "bin/ls")))
		file(filepath.Join(r, "bin/su"), 0o755|os.ModeSetuid, "su", 0, 0)
		file(filepath.Join(r, "etc/passwd"), 0o644, "root:x:0:0:actool base\n", 0, 0)
		file(filepath.Join(r, "home/user/.profile"), 0o600, "PS1=$\n", 1000, 1000)
		must(os.Chown(filepath.Join(r, "home/user"), 1000, 1000))
		must(os.Chmod(filepath.Join(r, "home/user"), 0o700))
		file(filepath.Join(r, "lib/liba.so"), 0o755, "liba", 0, 0)
		must(os.Link(filepath.Join(r, "lib/liba.so"), filepath.Join(r, "lib/liba.so.1")))
		must(os.MkdirAll(filepath.Join(r, "dev"), 0o755))
		must(syscallMkfifo(filepath.Join(r, "dev/fifo"), 0o600))
		must(syscallMknodChar(filepath.Join(r, "dev/null"), 0o666, 1, 3))
		must(os.MkdirAll(filepath.Join(r, "var/empty"), 0o755))
		must(os.Chmod(filepath.Join(r, "var/empty"), 0o711))
		must(os.MkdirAll(filepath.Join(r, "tmp"), 0o755))
		must(os.Chmod(filepath.Join(r, "tmp"), 0o777|os.ModeSticky))
		file(filepath.Join(r, "usr/share/doc/readme"), 0o444, "read me", 2, 3)
		dirTimes(r)
	})
	base := &aciImage{file: "actool-base.aci"}
	runTool(t, actool, "build", baseDir, filepath.Join(work, base.file))

	middleDir := layout("actool-middle", manifest("example.com/actool-middle", "1.0",
		depByName("example.com/actool-base", "version", "1.0")), func(r string) {
		file(filepath.Join(r, "etc/passwd"), 0o644, "root:x:0:0:actool middle\n", 0, 0)
		file(filepath.Join(r, "opt/mid/bin/tool"), 0o755, "tool", 0, 0)
		file(filepath.Join(r, "lib/libm.so"), 0o755, "libm", 0, 0)
		dirTimes(r)
	})
	middle := &aciImage{file: "actool-middle.aci"}
	runTool(t, actool, "build", "--no-compression", middleDir, filepath.Join(work, middle.file))
	readACI(t, work, base)
	readACI(t, work, middle)

	topDir := layout("actool-top", manifest("example.com/actool-top", "1.0"), func(r string) {
		file(filepath.Join(r, "app/run"), 0o755, "run", 0, 0)
		file(filepath.Join(r, "app/not-whitelisted"), 0o644, "gone", 0, 0)
		file(filepath.Join(r, "etc/passwd"), 0o644, "root:x:0:0:actool top\n", 0, 0)
		dirTimes(r)
	})
	unpatched := filepath.Join(work, "actool-top-unpatched.aci")
	runTool(t, actool, "build", topDir, unpatched)
	tm := manifest("example.com/actool-top", "1.0",
		depByName("example.com/actool-middle", "version", "1.0"),
		types.Dependency{ImageName: "example.com/actool-base", ImageID: base.imageID()})
	tm.PathWhitelist = []string{"/app/run", "/etc/passwd", "/bin/sh", "/bin/busybox", "/bin/su", "/lib/liba.so",
		"/lib/liba.so.1", "/lib/libm.so", "/opt/mid/bin/tool", "/dev/null", "/dev/fifo", "/home/user/.profile", "/var/empty", "/tmp"}
	tm.ACKind, tm.ACVersion = schema.ImageManifestKind, schema.AppContainerVersion
	tmj, err := json.Marshal(tm)
	must(err)
	tmFile := filepath.Join(work, "actool-top.manifest")
	must(os.WriteFile(tmFile, tmj, 0o644))
	top := &aciImage{file: "actool-top.aci"}
	runTool(t, actool, "patch-manifest", "--manifest", tmFile, unpatched, filepath.Join(work, top.file))
	readACI(t, work, top)
	return []*aciImage{base, middle, top}
}

// readACI reads an image actool wrote into a.raw and a.tar.
func readACI(t *testing.T, dir string, a *aciImage) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, a.file))
	if err != nil {
		t.Fatal(err)
	}
	a.raw, a.tar = raw, raw
	if len(raw) > 2 && raw[0] == 0x1f && raw[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if _, err := b.ReadFrom(zr); err != nil {
			t.Fatal(err)
		}
		a.tar, a.gzip = b.Bytes(), true
	}
}
