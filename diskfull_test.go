// Tests of a full disk: clear errors, nothing lost, and a store that keeps working.

package store

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// freeBytes is the space left on the filesystem of dir, once what it
// frees in the background (xfs) is freed.
func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	syncFS(t, dir)
	n := freeSpace(dir)
	if n < 0 {
		t.Skip("the free space of a filesystem cannot be told on this system")
	}
	return n
}

// fillFS grows the file "filler" at the root of the filesystem of fsDir
// until a write fails for lack of space, then gives back leave bytes (0:
// the filesystem stays at 100%). It returns the space left.
func fillFS(t *testing.T, fsDir string, leave int64) int64 {
	t.Helper()
	path := filepath.Join(fsDir, "filler")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	// A second round after an fsync: xfs gives back the blocks it had
	// set aside for the file's growth.
	for round := 0; round < 2; round++ {
		for _, chunk := range []int{1 << 20, 4 << 10, 1} {
			for {
				if _, err := f.Write(buf[:chunk]); err != nil {
					if !errors.Is(err, unix.ENOSPC) {
						t.Fatalf("fill %s: %v", fsDir, err)
					}
					break
				}
			}
		}
		f.Sync()
	}
	// xfs refuses a write while a few blocks are still free: each write
	// must also find room for the metadata the file might need.
	if free := freeBytes(t, fsDir); free > 64<<10 {
		t.Fatalf("filled %s, yet %d bytes are free", fsDir, free)
	}
	if leave > 0 {
		fi, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(max(fi.Size()-leave, 0)); err != nil {
			t.Fatal(err)
		}
	}
	return freeBytes(t, fsDir)
}

// emptyFS removes the filler: the filesystem has its space back.
func emptyFS(t *testing.T, fsDir string) {
	t.Helper()
	if err := os.Remove(filepath.Join(fsDir, "filler")); err != nil {
		t.Fatal(err)
	}
}

// fileSize is the size of the file at path.
func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// reserveBytes is the size of the store's space reserve, -1 if absent.
func reserveBytes(t *testing.T, s *Store) int64 {
	t.Helper()
	fi, err := os.Stat(filepath.Join(s.dbDir(), reserveName))
	if errors.Is(err, os.ErrNotExist) {
		return -1
	}
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// room is the space a store could use: the free space of its filesystem
// and its reserve.
func room(t *testing.T, s *Store, fsDir string) int64 {
	t.Helper()
	return freeBytes(t, fsDir) + max(reserveBytes(t, s), 0)
}

// dataFiles lists the regular files of the store in dir, but for key lock
// files: what a failed write must not add. (Like RemoveACI, a failed write
// leaves its key's empty lock file, which GC's orphan sweep removes, and
// the empty shard directories, which a concurrent writer may be about to
// use.)
func dataFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, p := range listTree(t, dir) {
		fi, err := os.Lstat(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().IsRegular() && !strings.HasPrefix(p, "imagelocks"+string(filepath.Separator)) {
			out = append(out, p)
		}
	}
	return out
}

// openStoreT opens the store in dir and closes it when the test ends
// (Close is idempotent, so the test may close it earlier).
func openStoreT(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := NewStore(dir)
	if err != nil {
		t.Fatalf("NewStore on a full disk: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// fullDiskImage is one image of TestFullDisk's store.
type fullDiskImage struct {
	name string
	data []byte
	key  string
}

// checkReads runs every read method over imgs and fails the test unless
// each answers correctly and Verify finds the store clean. remote, if not
// nil, must be the only remote recorded, for imgs[0]; else there is none.
func checkReads(t *testing.T, s *Store, imgs []*fullDiskImage, remote *Remote) {
	t.Helper()
	ais, err := s.GetAllACIInfos([]string{"importtime"}, true)
	if err != nil || len(ais) != len(imgs) {
		t.Fatalf("GetAllACIInfos: %d infos, %v; want %d", len(ais), err, len(imgs))
	}
	for _, img := range imgs {
		if got, err := s.ResolveKey(img.key[:20]); err != nil || got != img.key {
			t.Fatalf("ResolveKey(%s) = %s, %v", img.key[:20], got, err)
		}
		if keys, found, err := s.ResolveName(img.name); err != nil || !found || !slices.Contains(keys, img.key) {
			t.Fatalf("ResolveName(%s) = %v, %v, %v", img.name, keys, found, err)
		}
		if !s.HasFullKey(img.key) {
			t.Fatalf("HasFullKey(%s) = false", img.name)
		}
		if ai, err := s.GetACIInfoWithBlobKey(img.key); err != nil || ai.Name != img.name {
			t.Fatalf("GetACIInfoWithBlobKey(%s) = %+v, %v", img.name, ai, err)
		}
		if im, err := s.GetImageManifest(img.key); err != nil || im.Name.String() != img.name {
			t.Fatalf("GetImageManifest(%s) = %v", img.name, err)
		}
		if imj, err := s.GetImageManifestJSON(img.key); err != nil || !bytes.Contains(imj, []byte(img.name)) {
			t.Fatalf("GetImageManifestJSON(%s) = %s, %v", img.name, imj, err)
		}
		if err := readBack(s, img.key, img.data); err != nil {
			t.Fatalf("ReadStream(%s): %v", img.name, err)
		}
	}
	id, err := s.GetImageManifest(imgs[0].key)
	if err != nil {
		t.Fatal(err)
	}
	if key, err := s.GetACI(id.Name, nil); err != nil || key != imgs[0].key {
		t.Fatalf("GetACI(%s) = %s, %v", id.Name, key, err)
	}
	rs, err := s.GetAllRemotes()
	if err != nil {
		t.Fatalf("GetAllRemotes: %v", err)
	}
	if remote == nil {
		if len(rs) != 0 {
			t.Fatalf("GetAllRemotes = %d remotes, want none", len(rs))
		}
	} else {
		if len(rs) != 1 {
			t.Fatalf("GetAllRemotes = %d remotes, want 1", len(rs))
		}
		if r, err := s.GetRemote(remote.ACIURL); err != nil || r.BlobKey != imgs[0].key {
			t.Fatalf("GetRemote = %+v, %v", r, err)
		}
	}
	if v := mustVerify(t, s); !v.OK() {
		t.Fatalf("Verify: %v", v.Problems)
	}
}

// TestFullDisk fills the filesystem of a store to 100% and checks that the
// store opens, answers every read, verifies, refuses new images with
// ErrDiskFull leaving nothing behind, and removes images (RemoveACI, GC)
// to free the space; then, with space again, that everything works. It
// covers a store closed by a version that deleted the -shm file (the
// reserve pays for a new one) and a store whose reserve is gone (the kept
// -shm file is enough to open).
func TestFullDisk(t *testing.T) {
	fsDir := mountSmallFS(t, 24<<20)
	dir := filepath.Join(fsDir, "store")

	// A store with a 4 MiB image and a 1 MiB one (what RemoveACI and GC
	// free), small ones, a remote and a tree store size.
	s := openStoreT(t, dir)
	noise := make([]byte, 5<<20)
	newPRNG(11).Read(noise)
	old := &fullDiskImage{name: "example.com/old", data: makeTar(t,
		tarEntry{"manifest", manifestJSON("example.com/old")},
		tarEntry{"rootfs/noise", noise[4<<20:]})}
	big := &fullDiskImage{name: "example.com/big", data: makeTar(t,
		tarEntry{"manifest", manifestJSON("example.com/big", "version=1.0")},
		tarEntry{"rootfs/noise", noise[:4<<20]})}
	small := &fullDiskImage{name: "example.com/small", data: makeACI(t, "example.com/small", "version=2")}
	hello := &fullDiskImage{name: "example.com/hello", data: readFixture(t, "hello.aci")}
	old.key = writeImage(t, s, gzipBytes(t, old.data), false)
	cutoff := time.Now()
	for _, img := range []*fullDiskImage{big, small, hello} {
		img.key = writeImage(t, s, img.data, true)
	}
	imgs := []*fullDiskImage{big, small, hello, old}
	const remoteURL = "https://example.com/big.aci"
	remote := NewRemote(remoteURL, remoteURL+".asc")
	remote.BlobKey, remote.DownloadTime = big.key, time.Now()
	if err := s.WriteRemote(remote); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateTreeStoreSize(small.key, 12345); err != nil {
		t.Fatal(err)
	}
	if got := reserveBytes(t, s); got != reserveSize {
		t.Fatalf("the space reserve is %d bytes, want %d", got, reserveSize)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Full: open, read, verify, refuse a write; twice, as successive
	// commands would. Neither needs the reserve.
	fillFS(t, fsDir, 0)
	for i := 0; i < 2; i++ {
		s = openStoreT(t, dir)
		checkReads(t, s, imgs, remote)
		before := dataFiles(t, dir)
		for _, in := range [][]byte{makeACI(t, "example.com/new"), gzipBytes(t, noise[:1<<20])} {
			_, err := s.WriteACI(bytes.NewReader(in), ACIFetchInfo{})
			if !errors.Is(err, ErrDiskFull) {
				t.Fatalf("WriteACI on a full disk = %v, want ErrDiskFull", err)
			}
		}
		if after := dataFiles(t, dir); !slices.Equal(before, after) {
			t.Fatalf("a failed WriteACI left files: before %v, after %v", before, after)
		}
		// The other writes either find room in the WAL or fail with
		// ErrDiskFull; they write what is already there, so the reads
		// below answer the same either way.
		for what, err := range map[string]error{
			"WriteRemote":         s.WriteRemote(remote),
			"UpdateTreeStoreSize": s.UpdateTreeStoreSize(small.key, 12345),
		} {
			if err != nil && !errors.Is(err, ErrDiskFull) {
				t.Fatalf("%s on a full disk = %v, want nil or ErrDiskFull", what, err)
			}
			t.Logf("%s on a full disk: %v", what, err)
		}
		checkReads(t, s, imgs, remote)
		if err := s.Close(); err != nil {
			t.Fatalf("Close on a full disk: %v", err)
		}
		if got := reserveBytes(t, s); got != reserveSize {
			t.Fatalf("open and reads on a full disk used the space reserve: %d bytes left of %d", got, reserveSize)
		}
	}

	// Removal on a full disk: it succeeds and frees the image's space,
	// less the reserve it fills again. Its transaction rewrites the WAL
	// in place: the WAL needs no new block and keeps its own.
	s = openStoreT(t, dir)
	freeBefore := freeBytes(t, fsDir)
	walBefore := fileSize(t, dbPath(dir)+"-wal")
	if err := s.RemoveACI(big.key); err != nil {
		t.Fatalf("RemoveACI on a full disk: %v", err)
	}
	// (On xfs the intent file's inode needs the reserve, and the WAL then
	// grows into the space released.)
	if walAfter := fileSize(t, dbPath(dir)+"-wal"); walAfter != walBefore && smallFSType() != "xfs" {
		t.Fatalf("RemoveACI on a full disk took the WAL from %d to %d bytes, want it rewritten in place", walBefore, walAfter)
	}
	freed := freeBytes(t, fsDir) - freeBefore
	if want := int64(len(big.data)) - reserveSize - 256<<10; freed < want {
		t.Fatalf("RemoveACI of a %d-byte image freed %d bytes, want at least %d", len(big.data), freed, want)
	}
	if got := reserveBytes(t, s); got != reserveSize {
		t.Fatalf("the reserve is %d bytes after a removal, want %d", got, reserveSize)
	}
	imgs = imgs[1:]
	if s.HasFullKey(big.key) || fileExists(s.blobPath(big.key)) || fileExists(s.manifestPath(big.key)) {
		t.Fatal("the removed image is still there")
	}
	if len(tmpEntries(t, s)) != 0 {
		t.Fatalf("RemoveACI left %v in tmp/", tmpEntries(t, s))
	}

	// GC on a full disk.
	fillFS(t, fsDir, 0)
	roomBefore := room(t, s, fsDir)
	r, err := s.GC(GCOptions{UnusedSince: cutoff, Orphans: true})
	if err != nil || len(r.RemovedImages) != 1 || r.RemovedImages[0] != old.key {
		t.Fatalf("GC on a full disk = %+v, %v; want %s removed", r, err, old.key)
	}
	imgs = imgs[:len(imgs)-1]
	if room(t, s, fsDir) <= roomBefore {
		t.Fatalf("GC removed an image but freed no space: %d bytes free and in the reserve, %d before", room(t, s, fsDir), roomBefore)
	}
	fillFS(t, fsDir, 0)
	checkReads(t, s, imgs, nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// A store closed by a version that deleted the -shm file: the reserve
	// pays for a new one, and the reads work.
	emptyFS(t, fsDir)
	s = openStoreT(t, dir)
	s.Close()
	if err := os.Remove(dbPath(dir) + "-shm"); err != nil {
		t.Fatal(err)
	}
	fillFS(t, fsDir, 0)
	s = openStoreT(t, dir)
	if got := reserveBytes(t, s); got == reserveSize {
		t.Fatal("a new -shm file was made on a full disk without the reserve: is the test's disk full?")
	}
	checkReads(t, s, imgs, nil)
	s.Close()

	// A store whose reserve was used up and could not be filled again
	// (another process took the space a removal freed): the kept -shm
	// file is enough to open, and a checkpoint makes room in the WAL for
	// a removal.
	emptyFS(t, fsDir)
	if err := os.Remove(filepath.Join(s.dbDir(), reserveName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	fillFS(t, fsDir, 0)
	s = openStoreT(t, dir)
	checkReads(t, s, imgs, nil)
	if err := s.RemoveACI(small.key); err != nil {
		t.Fatalf("RemoveACI on a full disk without the reserve: %v", err)
	}
	imgs = slices.DeleteFunc(imgs, func(img *fullDiskImage) bool { return img == small })
	checkReads(t, s, imgs, nil)
	s.Close()

	// A manifest file lost (a power cut) on a full disk: it cannot be
	// rewritten from the blob, so the blob's copy is served as it is.
	if err := os.Remove(s.manifestPath(hello.key)); err != nil {
		t.Fatal(err)
	}
	fillFS(t, fsDir, 0)
	s = openStoreT(t, dir)
	if im, err := s.GetImageManifest(hello.key); err != nil || im.Name.String() != hello.name {
		t.Fatalf("GetImageManifest of a lost manifest on a full disk = %v", err)
	}
	if imj, err := s.GetImageManifestJSON(hello.key); err != nil || !bytes.Contains(imj, []byte(hello.name)) {
		t.Fatalf("GetImageManifestJSON of a lost manifest on a full disk = %v", err)
	}
	if fileExists(s.manifestPath(hello.key)) {
		t.Fatal("test setup: the manifest was rewritten on a full disk")
	}
	s.Close()

	// Space again: everything works (the lost manifest is rewritten), the
	// reserve is whole, Verify is clean.
	emptyFS(t, fsDir)
	s = openStoreT(t, dir)
	if got := reserveBytes(t, s); got != reserveSize {
		t.Fatalf("the reserve is %d bytes once there is space, want %d", got, reserveSize)
	}
	big.key = writeImage(t, s, big.data, true)
	if err := s.WriteRemote(remote); err != nil {
		t.Fatal(err)
	}
	imgs = append([]*fullDiskImage{big}, imgs...)
	checkReads(t, s, imgs, remote)
	if len(tmpEntries(t, s)) != 0 {
		t.Fatalf("tmp/ holds %v", tmpEntries(t, s))
	}
}

// TestWriteACINearlyFullDisk writes an image with every amount of free
// space from none to enough, a page more each time. Each WriteACI either
// stores the image or fails with ErrDiskFull, and a failure leaves nothing
// behind, whether it came while the image was written, while its manifest
// was, while they were published (ext4 needs a block for a new shard
// directory), or at the database commit (after both were published).
func TestWriteACINearlyFullDisk(t *testing.T) {
	fsDir := mountSmallFS(t, 8<<20)
	s := openStoreT(t, filepath.Join(fsDir, "store"))
	hello := writeImage(t, s, readFixture(t, "hello.aci"), false)
	noise := make([]byte, 64<<10)
	newPRNG(12).Read(noise)
	img := makeTar(t, tarEntry{"manifest", manifestJSON("example.com/noise")}, tarEntry{"rootfs/noise", noise})
	baseline := dataFiles(t, s.dir)
	failures := map[string]int{} // by where WriteACI failed
	const page = 4 << 10
	for leave := int64(0); ; leave += page {
		if leave > 1<<20 {
			t.Fatalf("WriteACI of a %d-byte image still fails with %d bytes free", len(img), leave)
		}
		free := fillFS(t, fsDir, leave)
		key, err := s.WriteACI(bytes.NewReader(img), ACIFetchInfo{})
		if err == nil {
			t.Logf("stored with %d bytes free, after %v", free, failures)
			if err := readBack(s, key, img); err != nil {
				t.Fatal(err)
			}
			break
		}
		if !errors.Is(err, ErrDiskFull) {
			t.Fatalf("WriteACI with %d bytes free = %v, want ErrDiskFull", free, err)
		}
		stage := "other"
		switch msg := err.Error(); {
		case strings.Contains(msg, "uncompressed image"):
			stage = "image"
		case strings.Contains(msg, "write temp file"):
			stage = "manifest"
		case strings.Contains(msg, ": publish "): // a new shard directory
			stage = "publish"
		case strings.Contains(msg, "create ingest file"): // a new inode
			stage = "create"
		case strings.Contains(msg, ": record: "):
			stage = "commit"
		}
		failures[stage]++
		if after := dataFiles(t, s.dir); !slices.Equal(baseline, after) {
			t.Fatalf("WriteACI failed (%s, %d bytes free: %v) and left files: before %v, after %v", stage, free, err, baseline, after)
		}
		if v := mustVerify(t, s); !v.OK() {
			t.Fatalf("Verify after WriteACI failed (%s, %d bytes free): %v", stage, free, v.Problems)
		}
	}
	// xfs fails them all at the creation of a temp file: it needs room
	// for a new chunk of inodes.
	if smallFSType() != "xfs" && (failures["image"] == 0 || failures["commit"] == 0) {
		t.Fatalf("failures by stage: %v; want some while writing the image and some at the commit", failures)
	}
	if err := readBack(s, hello, readFixture(t, "hello.aci")); err != nil {
		t.Fatal(err)
	}
	if v := mustVerify(t, s); !v.OK() {
		t.Fatalf("Verify: %v", v.Problems)
	}
}

// TestWALKeptAcrossClose: closing a store keeps its WAL and -shm files
// (what lets it open on a full disk), unless the WAL grew beyond
// walKeepMax: one big transaction's WAL is given back.
func TestWALKeptAcrossClose(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	s, err := NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	writeImage(t, s, readFixture(t, "hello.aci"), false)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		fi, err := os.Stat(dbPath(dir) + suffix)
		if err != nil || fi.Size() == 0 {
			t.Fatalf("after Close, store.db%s: %v (want a file kept, not empty)", suffix, err)
		}
	}

	s, err = NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	url := strings.Repeat("x", 4<<10)
	err = s.Do(func(tx *sql.Tx) error {
		for i := 0; i < 3000; i++ {
			r := NewRemote(fmt.Sprintf("https://example.com/%d/%s", i, url), "")
			r.DownloadTime = time.Now()
			if err := WriteRemote(tx, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dbPath(dir) + "-wal")
	if err != nil || fi.Size() <= walKeepMax {
		t.Fatalf("test setup: the WAL is %v bytes (%v), want more than %d", fi.Size(), err, walKeepMax)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dbPath(dir) + "-wal"); err == nil && fi.Size() > walKeepMax {
		t.Fatalf("after Close the WAL is still %d bytes, want at most %d", fi.Size(), walKeepMax)
	}
	s, err = NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if rs, err := s.GetAllRemotes(); err != nil || len(rs) != 3000 {
		t.Fatalf("after the WAL was trimmed: %d remotes, %v", len(rs), err)
	}
}

// TestDiskFillsWhileOpen lets the disk fill while a store is open and
// its database still lives in the WAL (no checkpoint yet): the
// checkpoint at Close then finds no room to grow the database file. The
// store still closes, opens, reads, refuses new images and removes old
// ones one by one on a disk filled again after each; GC removes the rest.
func TestDiskFillsWhileOpen(t *testing.T) {
	fsDir := mountSmallFS(t, 24<<20)
	dir := filepath.Join(fsDir, "store")
	s := openStoreT(t, dir)
	var keys []string
	for i := 0; i < 40; i++ {
		keys = append(keys, writeImage(t, s, makeACI(t, fmt.Sprintf("example.com/img%d", i), "version=1"), true))
	}
	cutoff := time.Now()
	walBefore := fileSize(t, dbPath(dir)+"-wal")
	fillFS(t, fsDir, 0)
	if _, err := s.WriteACI(bytes.NewReader(makeACI(t, "example.com/new")), ACIFetchInfo{}); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("WriteACI on a full disk = %v, want ErrDiskFull", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close on a full disk: %v", err)
	}
	if walAfter := fileSize(t, dbPath(dir)+"-wal"); walAfter < walBefore {
		t.Fatalf("test setup: the WAL went from %d to %d bytes at Close: it was checkpointed", walBefore, walAfter)
	}

	s = openStoreT(t, dir)
	if ais, err := s.GetAllACIInfos(nil, true); err != nil || len(ais) != len(keys) {
		t.Fatalf("GetAllACIInfos on a full disk: %d, %v; want %d", len(ais), err, len(keys))
	}
	if v := mustVerify(t, s); !v.OK() {
		t.Fatalf("Verify on a full disk: %v", v.Problems)
	}
	for _, key := range keys[:5] {
		if err := s.RemoveACI(key); err != nil {
			t.Fatalf("RemoveACI on a full disk: %v", err)
		}
		fillFS(t, fsDir, 0)
	}
	r, err := s.GC(GCOptions{UnusedSince: cutoff})
	if err != nil || len(r.RemovedImages) != len(keys)-5 {
		t.Fatalf("GC on a full disk removed %d images, %v; want %d", len(r.RemovedImages), err, len(keys)-5)
	}
	if v := mustVerify(t, s); !v.OK() {
		t.Fatalf("Verify after the removals: %v", v.Problems)
	}
	emptyFS(t, fsDir)
	key := writeImage(t, s, makeACI(t, "example.com/new"), false)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStoreT(t, dir)
	if keys, found, err := s.ResolveName("example.com/new"); err != nil || !found || len(keys) != 1 || keys[0] != key {
		t.Fatalf("after space came back: ResolveName = %v, %v, %v", keys, found, err)
	}
	if v := mustVerify(t, s); !v.OK() || v.Images != 1 {
		t.Fatalf("Verify once there is space: %d images, %v", v.Images, v.Problems)
	}
}
