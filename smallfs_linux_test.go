// Small filesystems for the full-disk tests: tmpfs, or a loop device (Linux).

//go:build linux

package store

import (
	"cmp"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// mountSmallFS mounts a small filesystem of size bytes on a new directory
// and unmounts it when the test ends. It is a tmpfs, or with
// IMAGESTORE_TEST_SMALLFS=ext4 (or xfs) that filesystem on a loop device
// (xfs takes at least 300 MiB). It skips the test where it cannot mount
// (not root, no tmpfs, no loop device).
func mountSmallFS(t *testing.T, size int64) string {
	t.Helper()
	fstype := smallFSType()
	if os.Geteuid() != 0 {
		t.Skipf("mounting a small %s needs root", fstype)
	}
	dir := t.TempDir()
	source, data := "tmpfs", fmt.Sprintf("size=%d", size)
	if fstype != "tmpfs" {
		source, data = loopDevice(t, fstype, size), ""
	}
	if err := unix.Mount(source, dir, fstype, 0, data); err != nil {
		t.Skipf("cannot mount a small %s (needs root and %s): %v", fstype, fstype, err)
	}
	// Cleanups run last-in first-out: stores opened after this are
	// closed before the unmount, and the unmount comes before the loop
	// device's release and TempDir's removal.
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
			unix.Unmount(dir, unix.MNT_DETACH)
		}
	})
	return dir
}

// smallFSType is the type of filesystem mountSmallFS mounts.
func smallFSType() string { return cmp.Or(os.Getenv("IMAGESTORE_TEST_SMALLFS"), "tmpfs") }

// loopDevice makes a filesystem of fstype in an image file of size bytes
// and returns the loop device it is attached to, detached when the test
// ends.
func loopDevice(t *testing.T, fstype string, size int64) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), fstype+".img")
	if fstype == "xfs" {
		size = max(size, 300<<20)
	}
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, size); err != nil {
		t.Fatal(err)
	}
	mkfs := exec.Command("mkfs."+fstype, "-q", img)
	if fstype == "ext4" {
		mkfs.Args = append(mkfs.Args, "-m", "0") // no blocks kept for root: full is full
	}
	if out, err := mkfs.CombinedOutput(); err != nil {
		t.Skipf("cannot make a %s filesystem: %v %s", fstype, err, out)
	}
	out, err := exec.Command("losetup", "-f", "--show", img).Output()
	if err != nil {
		t.Skipf("cannot attach a loop device: %v", err)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	return dev
}

// syncFS flushes the filesystem of dir: xfs frees the blocks of removed
// files in the background, and a sync waits for that.
func syncFS(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		t.Fatal(err)
	}
}
