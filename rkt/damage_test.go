package rkt

import (
	"errors"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	store "github.com/imagestore/imagestore"
)

// Keys of the fixture used below.
const (
	etcd320  = "sha512-842eedc325aac4e620efe54f83d06c23c81271f2c5aac349d56f04f160869652" // two remotes
	hello100 = "sha512-45aafe08adcca2cf503cd1bbb35e676653597a3928fb012b63e8b352edde7c1d" // Latest, TreeStoreSize
)

func blobPath(dir, key string) string {
	return filepath.Join(dir, "blob", "sha512", key[7:9], key)
}

// A damaged or foreign db/ql.db is a clear error and leaves the directory
// exactly as it was; the store still asks to be adopted.
func TestAdoptCorruptDatabase(t *testing.T) {
	for _, tc := range []struct {
		name    string
		damage  func(t *testing.T, ql string)
		wantErr error
	}{
		{"garbage", func(t *testing.T, ql string) {
			write(t, ql, []byte(strings.Repeat("this is not a ql database\n", 400)))
		}, ErrCorruptDB},
		{"empty", func(t *testing.T, ql string) { write(t, ql, nil) }, ErrCorruptDB},
		{"truncated", func(t *testing.T, ql string) {
			if err := os.Truncate(ql, 4096); err != nil {
				t.Fatal(err)
			}
		}, ErrCorruptDB},
		{"zeroed middle", func(t *testing.T, ql string) {
			b := read(t, ql)
			for i := 16; i < len(b)-16; i++ {
				b[i] = 0
			}
			write(t, ql, b)
		}, ErrCorruptDB},
		{"a directory", func(t *testing.T, ql string) {
			if err := os.Remove(ql); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(ql, 0o770); err != nil {
				t.Fatal(err)
			}
		}, ErrCorruptDB},
		{"schema version 6", func(t *testing.T, ql string) {
			setVersion(t, ql, 6)
		}, ErrUnsupportedVersion},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := unpackFixture(t)
			tc.damage(t, filepath.Join(dir, "db", "ql.db"))
			before := snapshot(t, dir)
			rep, err := Adopt(dir)
			if err == nil {
				t.Fatalf("Adopt succeeded: %+v", rep)
			}
			t.Logf("Adopt: %v", err)
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("Adopt: %v, want %v", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), "ql.db") && !strings.Contains(err.Error(), "rkt") {
				t.Errorf("Adopt: %q names neither rkt nor ql.db", err)
			}
			requireUnchanged(t, dir, before)
			if _, err := store.NewStore(dir); !errors.Is(err, store.ErrNeedsAdoption) {
				t.Errorf("NewStore after a failed adoption: %v, want ErrNeedsAdoption", err)
			}
			requireUnchanged(t, dir, before)
		})
	}
}

// setVersion rewrites the version row of a copy of rkt's database and puts
// the copy back, as a store of another rkt version would have it.
func setVersion(t *testing.T, ql string, v int) {
	tmp := filepath.Join(t.TempDir(), "ql.db")
	write(t, tmp, read(t, ql))
	db := openQL(t, tmp)
	execQL(t, db, `DELETE FROM version`)
	execQL(t, db, `INSERT INTO version VALUES ($1)`, int64(v))
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	write(t, ql, read(t, tmp))
}

// Rows whose blob is missing, or does not hash to its key, are reported
// and skipped with the remotes that point at them; the rest is adopted
// whole.
func TestAdoptDamagedBlobs(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, blob string)
		kind   store.ProblemKind
	}{
		{"missing", func(t *testing.T, blob string) {
			if err := os.Remove(blob); err != nil {
				t.Fatal(err)
			}
		}, store.ProblemBlobMissing},
		{"another image's content", func(t *testing.T, blob string) {
			other := read(t, blobPath(filepath.Dir(filepath.Dir(filepath.Dir(filepath.Dir(blob)))), hello100))
			write(t, blob, other)
		}, store.ProblemBlobCorrupt},
		{"one bit flipped", func(t *testing.T, blob string) {
			b := read(t, blob)
			b[len(b)/2] ^= 1
			write(t, blob, b)
		}, store.ProblemBlobCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := unpackFixture(t)
			ims, rems, err := ReadDB(dir)
			if err != nil {
				t.Fatal(err)
			}
			tc.damage(t, blobPath(dir, etcd320))
			qlSum := fileSum(t, filepath.Join(dir, "db", "ql.db"))
			rep, err := Adopt(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.SkippedImages) != 1 || rep.SkippedImages[0].Key != etcd320 || rep.SkippedImages[0].Kind != tc.kind {
				t.Errorf("skipped images %v, want %s as %s", rep.SkippedImages, etcd320, tc.kind)
			}
			if len(rep.SkippedRemotes) != 2 || rep.SkippedRemotes[0].BlobKey != etcd320 || rep.SkippedRemotes[1].BlobKey != etcd320 {
				t.Errorf("skipped remotes %+v, want the two of %s", rep.SkippedRemotes, etcd320)
			}
			if len(rep.Images) != len(ims)-1 || len(rep.Remotes) != len(rems)-2 || len(rep.FromBlobs) != 0 {
				t.Errorf("report %+v, want %d images and %d remotes", rep, len(ims)-1, len(rems)-2)
			}
			if fileSum(t, filepath.Join(dir, "db", "ql.db")) != qlSum {
				t.Error("db/ql.db changed")
			}
			s, err := store.NewStore(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if s.HasFullKey(etcd320) {
				t.Errorf("%s adopted", etcd320)
			}
			for _, want := range ims {
				if want.BlobKey == etcd320 {
					continue
				}
				got, err := s.GetACIInfoWithBlobKey(want.BlobKey)
				if err != nil || !sameACIInfo(got, want) {
					t.Errorf("%s: %+v, %v; want %+v", want.BlobKey, got, err, want)
				}
			}
			for _, want := range rems {
				got, err := s.GetRemote(want.ACIURL)
				switch {
				case want.BlobKey == etcd320 && !errors.Is(err, store.ErrRemoteNotFound):
					t.Errorf("remote %s of a skipped image: %+v, %v", want.ACIURL, got, err)
				case want.BlobKey != etcd320 && (err != nil || !sameRemote(got, want)):
					t.Errorf("remote %s: %+v, %v; want %+v", want.ACIURL, got, err, want)
				}
			}
			// The damaged file is left for the operator; Verify reports it.
			vr, err := s.Verify()
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range vr.Problems {
				if p.Key != etcd320 {
					t.Errorf("Verify: %v", p)
				}
			}
		})
	}
}

// A blob rkt had no row for (its row lost) is adopted from the blob, as
// Rebuild does, and reported.
func TestAdoptBlobWithoutRow(t *testing.T) {
	dir := unpackFixture(t)
	tmp := filepath.Join(t.TempDir(), "ql.db")
	ql := filepath.Join(dir, "db", "ql.db")
	write(t, tmp, read(t, ql))
	db := openQL(t, tmp)
	execQL(t, db, `DELETE FROM aciinfo WHERE blobkey == $1`, hello100)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	write(t, ql, read(t, tmp))
	fi, err := os.Stat(blobPath(dir, hello100))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Adopt(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.FromBlobs) != 1 || rep.FromBlobs[0] != hello100 || len(rep.Images) != 11 || len(rep.SkippedImages) != 0 {
		t.Fatalf("report %+v, want 11 images and %s from its blob", rep, hello100)
	}
	s, err := store.NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ai, err := s.GetACIInfoWithBlobKey(hello100)
	if err != nil {
		t.Fatal(err)
	}
	if ai.Latest || ai.TreeStoreSize != 0 || !ai.ImportTime.Equal(fi.ModTime()) || !ai.LastUsed.Equal(fi.ModTime()) || ai.Size != fi.Size() {
		t.Errorf("image adopted from its blob: %+v, want the file's time and size, no marks", ai)
	}
}

// NewStore, Rebuild and ReadDB on an rkt store not yet adopted create
// nothing in it; the first two say to adopt it.
func TestUnadoptedStoreIsLeftAlone(t *testing.T) {
	dir := unpackFixture(t)
	before := snapshot(t, dir)
	_, err := store.NewStore(dir)
	if !errors.Is(err, store.ErrNeedsAdoption) || !errors.Is(err, store.ErrNeedsRebuild) {
		t.Errorf("NewStore: %v, want ErrNeedsAdoption matching ErrNeedsRebuild", err)
	}
	if err == nil || !strings.Contains(err.Error(), "imagestore adopt") {
		t.Errorf("NewStore: %v: does not name the adopt command", err)
	}
	requireUnchanged(t, dir, before)
	if _, err := store.Rebuild(dir); !errors.Is(err, store.ErrNeedsAdoption) {
		t.Errorf("Rebuild: %v, want ErrNeedsAdoption", err)
	}
	requireUnchanged(t, dir, before)
	if _, _, err := ReadDB(dir); err != nil {
		t.Fatal(err)
	}
	requireUnchanged(t, dir, before)

	// An empty db/store.db, what earlier versions left when they opened
	// the store, does not count as an adoption.
	write(t, filepath.Join(dir, "db", "store.db"), nil)
	if _, err := store.NewStore(dir); !errors.Is(err, store.ErrNeedsAdoption) {
		t.Errorf("NewStore with an empty store.db: %v, want ErrNeedsAdoption", err)
	}
	rep, err := Adopt(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Images) != 12 || rep.OldDatabase == "" {
		t.Errorf("report %+v, want 12 images and the empty database moved aside", rep)
	}
}

// Programs that never adopt must not link ql: the store package does not
// import it.
func TestStorePackageDoesNotImportQL(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	out, err := exec.Command(gobin, "list", "-deps", "github.com/imagestore/imagestore").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.Contains(dep, "modernc.org/ql") || strings.Contains(dep, "cznic/ql") {
			t.Errorf("the store package imports %s", dep)
		}
	}
}

func read(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func write(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o660); err != nil {
		t.Fatal(err)
	}
}

// While rkt holds its database lock (an exclusive flock on db/, taken
// around each of its transactions), the database is not copied: reading
// and adopting fail with an error that says rkt is using the store, and
// change nothing.
func TestReadWaitsForRktDatabaseLock(t *testing.T) {
	dir := unpackFixture(t)
	before := snapshot(t, dir)
	held, err := lockDir(filepath.Join(dir, "db"), true)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	defer func(w time.Duration) { lockWait = w }(lockWait)
	lockWait = 200 * time.Millisecond
	if _, _, err := ReadDB(dir); err == nil || !strings.Contains(err.Error(), "rkt is using the store") {
		t.Errorf("ReadDB under rkt's database lock: %v", err)
	}
	if _, err := Adopt(dir); err == nil || !strings.Contains(err.Error(), "rkt is using the store") {
		t.Errorf("Adopt under rkt's database lock: %v", err)
	}
	requireUnchanged(t, dir, before)
	if err := held.Close(); err != nil {
		t.Fatal(err)
	}
	if rep, err := Adopt(dir); err != nil || len(rep.Images) != 12 {
		t.Errorf("Adopt once rkt let go: %+v, %v", rep, err)
	}
}

// Random damage to ql.db gives rows or a clear error, never a crash: ql
// panics on some damaged files, and a panic on the database/sql driver's
// own goroutine could not be recovered.
func TestReadRandomlyDamagedDatabase(t *testing.T) {
	orig := read(t, filepath.Join(unpackFixture(t), "db", "ql.db"))
	rng := rand.New(rand.NewSource(7))
	errs := 0
	const trials = 300
	for i := 0; i < trials; i++ {
		b := append([]byte(nil), orig...)
		for j := 1 + rng.Intn(8); j > 0; j-- {
			b[rng.Intn(len(b))] = byte(rng.Intn(256))
		}
		p := filepath.Join(t.TempDir(), "ql.db")
		write(t, p, b)
		_, _, err := readCopy(p)
		if err != nil {
			errs++
			if !errors.Is(err, ErrCorruptDB) && !errors.Is(err, ErrUnsupportedVersion) {
				t.Errorf("trial %d: %v, want ErrCorruptDB", i, err)
			}
		}
	}
	if errs == 0 {
		t.Error("no damage was noticed: the test damages nothing")
	}
	t.Logf("%d of %d damaged copies refused", errs, trials)
}
