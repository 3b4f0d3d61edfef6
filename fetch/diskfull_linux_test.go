// A download that fills the disk (Linux, root: a small tmpfs).

//go:build linux

package fetch

import (
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"
	store "github.com/imagestore/imagestore"
	"golang.org/x/sys/unix"
)

// mountTmpfs mounts a tmpfs of size bytes on a new directory until the
// test ends; it skips the test where that is not possible.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			unix.Unmount(dir, unix.MNT_DETACH)
		}
	})
	return dir
}

// fillLeaving fills dir's filesystem with dir/filler until only about
// free bytes are left.
func fillLeaving(t *testing.T, dir string, free int64) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	var n int64
	for {
		m, err := f.Write(buf)
		n += int64(m)
		if err != nil {
			if !errors.Is(err, unix.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	if err := f.Truncate(max(n-free, 0)); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestFetchURLDiskFull: a download that meets a full disk fails with
// store.ErrDiskFull and leaves nothing; with space again it succeeds.
func TestFetchURLDiskFull(t *testing.T) {
	dir := mountTmpfs(t, "24m")
	s, err := store.NewStore(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	noise := make([]byte, 2<<20) // incompressible: the ACI stays 2 MiB
	rand.Read(noise)
	aci := makeACI(t, "example.com/big", "1.0.0", string(noise))
	srv := newACIServer(t)
	srv.set("/big.aci", resource{body: aci})
	filler := fillLeaving(t, dir, 256<<10)

	f := New(s, Options{Insecure: true, SkipVerify: true})
	_, err = f.FetchURL(testContext(t), srv.URL+"/big.aci")
	if !errors.Is(err, store.ErrDiskFull) {
		t.Fatalf("FetchURL on a full disk = %v; want store.ErrDiskFull", err)
	}
	assertNothingStored(t, s)

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	res, err := f.FetchURL(testContext(t), srv.URL+"/big.aci")
	if err != nil || res.Key != keyOfACI(t, aci) {
		t.Fatalf("FetchURL with space again = %+v, %v", res, err)
	}
	assertTmpEmpty(t, s)
}

// TestFetchRegistryDiskFull: a pull that meets a full disk fails with
// store.ErrDiskFull and leaves nothing; with space again it succeeds.
func TestFetchRegistryDiskFull(t *testing.T) {
	dir := mountTmpfs(t, "24m")
	s, err := store.NewStore(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	reg := newRegistry(t, nil)
	img, err := random.Image(2<<20, 1) // random bytes: the layer stays 2 MiB
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.host + "/test/big:v1"
	push(t, ref, img)
	filler := fillLeaving(t, dir, 256<<10)

	_, err = New(s, Options{}).Fetch(testContext(t), "docker://"+ref)
	if !errors.Is(err, store.ErrDiskFull) {
		t.Fatalf("pull on a full disk = %v; want store.ErrDiskFull", err)
	}
	assertNothingStored(t, s)

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if _, err := New(s, Options{}).Fetch(testContext(t), "docker://"+ref); err != nil {
		t.Fatalf("pull with space again: %v", err)
	}
	assertTmpEmpty(t, s)
}
