// Tests of Verify, GC, recovery at open, and Rebuild.

package store

import (
	"bytes"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// kinds returns the sorted problem kinds of a report.
func kinds(r *VerifyReport) []string {
	var out []string
	for _, p := range r.Problems {
		out = append(out, string(p.Kind))
	}
	sort.Strings(out)
	return out
}

func mustVerify(t *testing.T, s *Store, keys ...string) *VerifyReport {
	t.Helper()
	r, err := s.Verify(keys...)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return r
}

func TestVerifyCleanStore(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	for _, f := range []string{"hello.aci.xz"} {
		writeImage(t, s, readFixture(t, f), false)
	}
	writeImage(t, s, makeACI(t, "example.com/app", "version=1"), false)
	r := mustVerify(t, s)
	if !r.OK() || r.Images != 2 || r.Bytes == 0 {
		t.Fatalf("Verify of a clean store: %+v", r)
	}
}

func TestVerifyFindsEachProblem(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		damage func(t *testing.T, s *Store, key string)
		want   string
	}{
		{"blob removed", func(t *testing.T, s *Store, key string) { os.Remove(s.blobPath(key)) }, "blob-missing"},
		{"blob flipped", func(t *testing.T, s *Store, key string) {
			b, _ := os.ReadFile(s.blobPath(key))
			b[600] ^= 1 // inside the manifest's data block
			os.WriteFile(s.blobPath(key), b, filePerm)
		}, "blob-corrupt"},
		{"blob truncated", func(t *testing.T, s *Store, key string) { os.Truncate(s.blobPath(key), 1024) }, "blob-corrupt"},
		{"manifest removed", func(t *testing.T, s *Store, key string) { os.Remove(s.manifestPath(key)) }, "manifest-missing"},
		{"manifest garbage", func(t *testing.T, s *Store, key string) { os.WriteFile(s.manifestPath(key), []byte("{"), filePerm) }, "manifest-corrupt"},
		{"manifest of another image", func(t *testing.T, s *Store, key string) {
			os.WriteFile(s.manifestPath(key), manifestJSON("example.com/other"), filePerm)
		}, "manifest-corrupt"},
		{"size wrong", func(t *testing.T, s *Store, key string) {
			s.Do(func(tx *sql.Tx) error { _, err := tx.Exec(`UPDATE aciinfo SET size = 1`); return err })
		}, "size-mismatch"},
		{"labels lost", func(t *testing.T, s *Store, key string) {
			s.Do(func(tx *sql.Tx) error { _, err := tx.Exec(`DELETE FROM image_label`); return err })
		}, "labels-stale"},
		{"name wrong", func(t *testing.T, s *Store, key string) {
			s.Do(func(tx *sql.Tx) error { _, err := tx.Exec(`UPDATE aciinfo SET name = 'x'`); return err })
		}, "labels-stale,name-mismatch"}, // the labels are filed under the old name
		{"row removed", func(t *testing.T, s *Store, key string) {
			s.Do(func(tx *sql.Tx) error { return RemoveACIInfo(tx, key) })
		}, "orphan-blob,orphan-manifest"},
		{"stray file", func(t *testing.T, s *Store, key string) {
			os.WriteFile(filepath.Join(s.blobs.BasePath, "sha512", "notakey"), nil, filePerm)
		}, "stray-file"},
		{"dead ingest file", func(t *testing.T, s *Store, key string) {
			os.WriteFile(filepath.Join(s.tmpDir, tmpIngestPrefix+"123"), []byte("partial"), filePerm)
		}, "stale-temp"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newTestStore(t)
			key := writeImage(t, s, makeACI(t, "example.com/app", "version=1"), false)
			c.damage(t, s, key)
			r := mustVerify(t, s)
			if got := strings.Join(kinds(r), ","); got != c.want {
				t.Fatalf("Verify found %q, want %q: %v", got, c.want, r.Problems)
			}
			// Verify changes nothing: a second run finds the same.
			if again := strings.Join(kinds(mustVerify(t, s)), ","); again != c.want {
				t.Fatalf("second Verify found %q", again)
			}
		})
	}
}

func TestVerifySomeKeys(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	a := writeImage(t, s, makeACI(t, "example.com/a"), false)
	b := writeImage(t, s, makeACI(t, "example.com/b"), false)
	os.Remove(s.manifestPath(b))
	if r := mustVerify(t, s, a[:15]); !r.OK() || r.Images != 1 {
		t.Fatalf("Verify(a) = %+v", r)
	}
	// The caller's keys are the caller's: resolving prefixes must not
	// write the full keys into them.
	keys := []string{a[:15], b[:20]}
	if _, err := s.Verify(keys...); err != nil {
		t.Fatal(err)
	}
	if keys[0] != a[:15] || keys[1] != b[:20] {
		t.Fatalf("Verify changed its argument to %q", keys)
	}
	if r := mustVerify(t, s, b); r.OK() {
		t.Fatal("Verify(b) missed the missing manifest")
	}
	if _, err := s.Verify(fakeKey("00")); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("Verify(unknown) = %v", err)
	}
	if _, err := s.Verify("../x"); err == nil {
		t.Fatal("Verify(bad key) accepted")
	}
}

func TestGCUnusedImages(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	old := writeImage(t, s, makeACI(t, "example.com/old"), false)
	held := writeImage(t, s, makeACI(t, "example.com/held"), false)
	cutoff := time.Now()
	time.Sleep(2 * time.Millisecond)
	fresh := writeImage(t, s, makeACI(t, "example.com/fresh"), false)
	// Another holder of held's key (a reader in another process).
	kl, err := lockKey(s.lockDir, held, false)
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.GC(GCOptions{UnusedSince: cutoff, DryRun: true})
	if err != nil || len(r.RemovedImages) != 1 || r.RemovedImages[0] != old || !s.HasFullKey(old) {
		t.Fatalf("dry run: %+v, %v", r, err)
	}
	r, err = s.GC(GCOptions{UnusedSince: cutoff})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.RemovedImages) != 1 || r.RemovedImages[0] != old || len(r.InUse) != 1 || r.InUse[0] != held {
		t.Fatalf("GC = %+v", r)
	}
	if s.HasFullKey(old) || !s.HasFullKey(held) || !s.HasFullKey(fresh) {
		t.Fatal("GC removed the wrong images")
	}
	kl.unlock()
	if r, _ := s.GC(GCOptions{UnusedSince: cutoff}); len(r.RemovedImages) != 1 || r.RemovedImages[0] != held {
		t.Fatalf("GC after release = %+v", r)
	}
	if v := mustVerify(t, s); !v.OK() {
		t.Fatalf("Verify after GC: %v", v.Problems)
	}
}

// TestGCRechecksUnderTheKeyLock: an image read between GC's listing of
// unused images and its taking of the key lock is used, not unused, and
// stays. Only GC's re-read of the row under the lock sees that.
func TestGCRechecksUnderTheKeyLock(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	img := makeACI(t, "example.com/app")
	key := writeImage(t, s, img, false)
	cutoff := time.Now()
	var once sync.Once
	s.setFailpoints(func(name string) {
		if name != "gc-listed" {
			return
		}
		once.Do(func() {
			if err := readBack(s, key, img); err != nil { // records LastUsed
				t.Error(err)
			}
		})
	})
	r, err := s.GC(GCOptions{UnusedSince: cutoff})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.RemovedImages) != 0 || !s.HasFullKey(key) {
		t.Fatalf("GC removed an image read after its listing: %+v", r)
	}
}

// TestGCReportsOnlyWhatItRemoved: an image whose removal fails is not in
// RemovedImages, and the failure is GC's error.
func TestGCReportsOnlyWhatItRemoved(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	key := writeImage(t, s, makeACI(t, "example.com/app"), false)
	cutoff := time.Now()
	// The removal's intent cannot be recorded while tmp/ is a file.
	aside := s.tmpDir + ".aside"
	var once sync.Once
	s.setFailpoints(func(name string) {
		if name != "gc-listed" {
			return
		}
		once.Do(func() {
			if err := os.Rename(s.tmpDir, aside); err != nil {
				t.Error(err)
			}
			if err := os.WriteFile(s.tmpDir, nil, 0o600); err != nil {
				t.Error(err)
			}
		})
	})
	r, err := s.GC(GCOptions{UnusedSince: cutoff})
	if err == nil {
		t.Fatal("GC reported no error for a removal that failed")
	}
	if len(r.RemovedImages) != 0 || !s.HasFullKey(key) {
		t.Fatalf("GC = %+v, image there: %v", r, s.HasFullKey(key))
	}
	if err := os.Remove(s.tmpDir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(aside, s.tmpDir); err != nil {
		t.Fatal(err)
	}
	if r, err := s.GC(GCOptions{UnusedSince: cutoff}); err != nil || len(r.RemovedImages) != 1 {
		t.Fatalf("GC once tmp/ is back = %+v, %v", r, err)
	}
}

func TestGCOrphansAndTempFiles(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	keep := writeImage(t, s, makeACI(t, "example.com/keep"), false)
	gone := writeImage(t, s, makeACI(t, "example.com/gone"), false)
	s.Do(func(tx *sql.Tx) error { return RemoveACIInfo(tx, gone) }) // files left without row
	download, err := s.TmpNamedFile("partial-download")
	if err != nil {
		t.Fatal(err)
	}
	download.Close()
	dead := filepath.Join(s.tmpDir, tmpIngestPrefix+"dead")
	os.WriteFile(dead, []byte("x"), filePerm)
	stuck := filepath.Join(s.tmpDir, tmpNewPrefix+"stuck")
	os.WriteFile(stuck, nil, filePerm)
	old := time.Now().Add(-2 * newTmpGrace)
	os.Chtimes(stuck, old, old)

	r, err := s.GC(GCOptions{Orphans: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{s.blobPath(gone), s.manifestPath(gone), filepath.Join(s.lockDir, gone), dead, stuck} {
		if fileExists(p) {
			t.Errorf("%s survived GC", p)
		}
	}
	if len(r.RemovedFiles) != 5 {
		t.Errorf("GC reported %d files: %v", len(r.RemovedFiles), r.RemovedFiles)
	}
	if !fileExists(filepath.Join(s.tmpDir, "partial-download")) || !s.HasFullKey(keep) || !fileExists(filepath.Join(s.lockDir, keep)) {
		t.Fatal("GC removed what it must keep")
	}
	if v := mustVerify(t, s); !v.OK() {
		t.Fatalf("Verify after GC: %v", v.Problems)
	}
	// Callers' temp files go only when asked.
	r, err = s.GC(GCOptions{TmpFilesUnusedSince: time.Now().Add(time.Minute)})
	if err != nil || len(r.RemovedFiles) != 1 || fileExists(filepath.Join(s.tmpDir, "partial-download")) {
		t.Fatalf("GC of temp files: %+v, %v", r, err)
	}
}

func TestRecoveryAtOpen(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "store")
	s, err := NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	committed := writeImage(t, s, makeACI(t, "example.com/committed"), false)
	// A write that died after publishing its files, before its row: the
	// files and the intent are there, the row is not.
	crashed := writeImage(t, s, makeACI(t, "example.com/crashed"), false)
	if err := s.Do(func(tx *sql.Tx) error { return RemoveACIInfo(tx, crashed) }); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(s.intentPath(crashed), nil, filePerm)
	// An intent of a committed image (a rewrite that died): nothing to undo.
	os.WriteFile(s.intentPath(committed), nil, filePerm)
	// A dead ingest file, and a live one (locked by its writer).
	os.WriteFile(filepath.Join(dir, "tmp", tmpIngestPrefix+"dead"), []byte("x"), filePerm)
	live, err := s.createIngestFile()
	if err != nil {
		t.Fatal(err)
	}
	defer live.release()
	s.Close()

	s, err = NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, p := range []string{s.blobPath(crashed), s.manifestPath(crashed), s.intentPath(crashed), s.intentPath(committed), filepath.Join(dir, "tmp", tmpIngestPrefix+"dead")} {
		if fileExists(p) {
			t.Errorf("%s survived recovery", p)
		}
	}
	if !fileExists(live.Name()) {
		t.Error("recovery removed a live writer's file")
	}
	if !s.HasFullKey(committed) || !fileExists(s.blobPath(committed)) {
		t.Error("recovery hurt a committed image")
	}
	live.release()
	if v := mustVerify(t, s); !v.OK() {
		t.Fatalf("Verify after recovery: %v", v.Problems)
	}
	if err := s.RecoveryError(); err != nil {
		t.Fatalf("RecoveryError after a clean recovery: %v", err)
	}
}

// TestRecoveryErrorAtOpen: what recovery at open cannot settle does not
// stop NewStore, but the caller can learn of it, and it stays for later.
func TestRecoveryErrorAtOpen(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "store")
	s, err := NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	crashed := writeImage(t, s, makeACI(t, "example.com/crashed"), false)
	if err := s.Do(func(tx *sql.Tx) error { return RemoveACIInfo(tx, crashed) }); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.intentPath(crashed), nil, filePerm); err != nil {
		t.Fatal(err)
	}
	// A blob that will not go: a non-empty directory in its place.
	blob := s.blobPath(crashed)
	if err := os.Remove(blob); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(blob, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = NewStore(dir)
	if err != nil {
		t.Fatalf("NewStore failed on what recovery could not settle: %v", err)
	}
	rerr := s.RecoveryError()
	if rerr == nil || !strings.Contains(rerr.Error(), blob) {
		t.Fatalf("RecoveryError = %v, want an error naming %s", rerr, blob)
	}
	if !fileExists(s.intentPath(crashed)) {
		t.Fatal("the intent was dropped: nothing would retry")
	}
	s.Close()
	if err := os.RemoveAll(blob); err != nil {
		t.Fatal(err)
	}
	s, err = NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.RecoveryError(); err != nil || fileExists(s.intentPath(crashed)) {
		t.Fatalf("second open: RecoveryError %v, intent left: %v", err, fileExists(s.intentPath(crashed)))
	}
}

func TestRebuild(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "store")
	s, err := NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	a := writeImage(t, s, readFixture(t, "hello.aci.gz"), true)
	b := writeImage(t, s, makeACI(t, "example.com/app", "version=2"), false)
	bad := writeImage(t, s, makeACI(t, "example.com/bad"), false)
	os.Remove(s.manifestPath(b)) // Rebuild writes it again from the blob
	blob, _ := os.ReadFile(s.blobPath(bad))
	blob[len(blob)-1] = 1 // still a tar, another hash
	os.WriteFile(s.blobPath(bad), blob, filePerm)
	s.Close()

	// Corrupt the database: NewStore refuses it and says what to do.
	if err := os.WriteFile(dbPath(dir), bytes.Repeat([]byte("garbage!"), 512), filePerm); err != nil {
		t.Fatal(err)
	}
	os.Remove(dbPath(dir) + "-wal")
	os.Remove(dbPath(dir) + "-shm")
	if _, err := NewStore(dir); !errors.Is(err, ErrNeedsRebuild) || !strings.Contains(err.Error(), "Rebuild") {
		t.Fatalf("NewStore on a corrupt database = %v", err)
	}

	r, err := Rebuild(dir)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(r.Images)
	want := []string{a, b}
	sort.Strings(want)
	if strings.Join(r.Images, ",") != strings.Join(want, ",") || len(r.Skipped) != 1 || r.Skipped[0].Key != bad {
		t.Fatalf("Rebuild = %+v", r)
	}
	if got, _ := os.ReadFile(filepath.Join(r.OldDatabase, dbFileName)); !bytes.HasPrefix(got, []byte("garbage!")) {
		t.Fatalf("the broken database was not kept aside in %q", r.OldDatabase)
	}

	s, err = NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, err := s.GetACI("example.com/hello", nil); err != nil || got != a {
		t.Fatalf("GetACI after rebuild = %q, %v", got, err)
	}
	if _, err := s.GetImageManifest(b); err != nil {
		t.Fatalf("manifest of b after rebuild: %v", err)
	}
	if ai, _ := s.GetACIInfoWithBlobKey(a); ai == nil || ai.ImportTime.IsZero() || ai.Size != 10240 {
		t.Fatalf("row of a: %+v", ai)
	}
	// The corrupt blob and its manifest stay: orphans Verify reports and GC
	// may remove.
	v := mustVerify(t, s)
	if got := strings.Join(kinds(v), ","); got != "orphan-blob,orphan-manifest" {
		t.Fatalf("Verify after rebuild: %v", v.Problems)
	}
}

func TestNewStoreRefusesLostDatabase(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "store")
	s, err := NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	key := writeImage(t, s, makeACI(t, "example.com/app"), false)
	s.Close()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(dbPath(dir) + suffix)
	}
	if _, err := NewStore(dir); !errors.Is(err, ErrNeedsRebuild) || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("NewStore without its database = %v; it must not start empty", err)
	}
	if _, err := Rebuild(dir); err != nil {
		t.Fatal(err)
	}
	s, err = NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !s.HasFullKey(key) {
		t.Fatal("image lost")
	}
}
