package rkt

import (
	"archive/tar"
	"bytes"
	"crypto/sha512"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
	store "github.com/imagestore/imagestore"
	"modernc.org/ql"
)

// rkt v1.30.0's schema (version 7), as its store creates it: rkt's "int"
// is ql's int64.
var rktSchema = []string{
	`CREATE TABLE IF NOT EXISTS version (version int)`,
	`INSERT INTO version VALUES (7)`,
	`CREATE TABLE IF NOT EXISTS remote (aciurl string, sigurl string, etag string, blobkey string, cachemaxage int, downloadtime time)`,
	`CREATE UNIQUE INDEX IF NOT EXISTS aciurlidx ON remote (aciurl)`,
	`CREATE TABLE IF NOT EXISTS aciinfo (blobkey string, name string, importtime time, lastused time, latest bool, size int64 DEFAULT 0, treestoresize int64 DEFAULT 0)`,
	`CREATE UNIQUE INDEX IF NOT EXISTS blobkeyidx ON aciinfo (blobkey)`,
	`CREATE INDEX IF NOT EXISTS nameidx ON aciinfo (name)`,
}

// The tests write rkt databases as rkt did, through ql's database/sql
// driver.
func init() { ql.RegisterDriver() }

func openQL(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("ql", path)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// execQL runs statements in one transaction, as each rkt db.Do does.
func execQL(t *testing.T, db *sql.DB, query string, args ...any) {
	t.Helper()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(query, args...); err != nil {
		tx.Rollback()
		t.Fatalf("%s: %v", query, err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// genImage is one image of a generated rkt store.
type genImage struct {
	row      store.ACIInfo
	manifest []byte // as rkt stored it (json.Marshal of the manifest)
	labels   types.Labels
	tar      []byte
}

// genStore is an rkt store made by a test: what rkt would have written,
// and what adoption must make of it.
type genStore struct {
	dir         string
	images      []*genImage          // with a row in ql.db
	rowless     []*genImage          // a blob, no row
	missing     map[string]bool      // rows whose blob was removed
	mismatched  map[string]bool      // rows whose blob holds other bytes
	remotes     []*store.Remote      // in ql.db
	names       []string             // image names
	fileTimes   map[string]time.Time // of rowless blobs
	wantRemotes map[string]*store.Remote
}

// randomTime is a time between 2015 and 2020 with nanoseconds, in a zone
// of its own: rkt stored local times, and ql keeps the offset.
func randomTime(rng *rand.Rand) time.Time {
	base := time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC)
	t := base.Add(time.Duration(rng.Int63n(int64(5 * 365 * 24 * time.Hour))))
	zone := time.FixedZone(fmt.Sprintf("Z%d", rng.Intn(27)), (rng.Intn(27)-13)*3600+rng.Intn(2)*1800)
	return t.In(zone)
}

func makeImage(t *testing.T, rng *rand.Rand, name, version, arch string) *genImage {
	t.Helper()
	im := schema.BlankImageManifest()
	im.Name = types.ACIdentifier(name)
	im.Labels = types.Labels{{Name: "version", Value: version}, {Name: "os", Value: "linux"}, {Name: "arch", Value: arch}}
	if rng.Intn(3) == 0 {
		im.Labels = append(im.Labels, types.Label{Name: "channel", Value: []string{"stable", "beta"}[rng.Intn(2)]})
	}
	imj, err := json.Marshal(im)
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 100+rng.Intn(4000))
	rng.Read(body)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range []struct {
		name string
		body []byte
		dir  bool
	}{{"manifest", imj, false}, {"rootfs/", nil, true}, {"rootfs/bin/", nil, true}, {"rootfs/bin/app", body, false}} {
		h := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.body)), Typeflag: tar.TypeReg, ModTime: time.Unix(1500000000, 0)}
		if e.dir {
			h = &tar.Header{Name: e.name, Mode: 0o755, Typeflag: tar.TypeDir, ModTime: time.Unix(1500000000, 0)}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	sum := sha512.Sum512(buf.Bytes())
	imported := randomTime(rng)
	g := &genImage{manifest: imj, labels: im.Labels, tar: buf.Bytes()}
	g.row = store.ACIInfo{
		BlobKey:    "sha512-" + hex.EncodeToString(sum[:])[:64],
		Name:       name,
		ImportTime: imported,
		LastUsed:   imported.Add(time.Duration(rng.Int63n(int64(400 * 24 * time.Hour)))).In(imported.Location()),
		Latest:     rng.Intn(3) == 0,
		Size:       int64(buf.Len()),
	}
	if rng.Intn(2) == 0 {
		g.row.TreeStoreSize = rng.Int63n(1 << 30)
	}
	return g
}

// mkdirRkt makes a directory as rkt left them: 0770, no setgid bit.
func mkdirRkt(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o770); err != nil {
		t.Fatal(err)
	}
}

// writeRktFile writes a file of the store with rkt's mode for it.
func writeRktFile(t *testing.T, p string, b []byte, mode fs.FileMode) {
	t.Helper()
	mkdirRkt(t, filepath.Dir(p))
	if err := os.WriteFile(p, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

// makeRktStore generates an rkt v1.30-format store from seed: random
// images (names, versions, arches, latest marks, times in many zones, tree
// store sizes) and remotes, with a row whose blob is gone, a row whose
// blob holds other bytes, a blob without a row and a remote that points
// at no image.
func makeRktStore(t *testing.T, seed int64) *genStore {
	rng := rand.New(rand.NewSource(seed))
	g := &genStore{
		dir:         filepath.Join(t.TempDir(), "cas"),
		missing:     map[string]bool{},
		mismatched:  map[string]bool{},
		fileTimes:   map[string]time.Time{},
		wantRemotes: map[string]*store.Remote{},
	}
	for _, d := range []string{"", "blob", "imageManifest", "imagelocks", "db", "tmp"} {
		mkdirRkt(t, filepath.Join(g.dir, d))
	}
	all := []string{"example.com/app", "coreos.com/etcd", "quay.io/acme/agent", "registry-1.docker.io/library/nginx", "example.org/tool"}
	g.names = all[:2+rng.Intn(len(all)-1)]
	n := 8 + rng.Intn(12)
	var images []*genImage
	for i := 0; i < n; i++ {
		name := g.names[rng.Intn(len(g.names))]
		arch := []string{"amd64", "amd64", "aarch64"}[rng.Intn(3)]
		im := makeImage(t, rng, name, fmt.Sprintf("%d.%d.%d", rng.Intn(3), i, rng.Intn(10)), arch)
		images = append(images, im)
		writeRktFile(t, blobPath(g.dir, im.row.BlobKey), im.tar, 0o600)
		writeRktFile(t, filepath.Join(g.dir, "imageManifest", "sha512", im.row.BlobKey[7:9], im.row.BlobKey), im.manifest, 0o660)
		writeRktFile(t, filepath.Join(g.dir, "imagelocks", im.row.BlobKey), nil, 0o660)
	}
	// The damage: images[0] has no blob, images[1] another image's bytes,
	// images[2] no row.
	if err := os.Remove(blobPath(g.dir, images[0].row.BlobKey)); err != nil {
		t.Fatal(err)
	}
	g.missing[images[0].row.BlobKey] = true
	other := makeImage(t, rng, "example.com/other", "1.0.0", "amd64")
	writeRktFile(t, blobPath(g.dir, images[1].row.BlobKey), other.tar, 0o600)
	g.mismatched[images[1].row.BlobKey] = true
	g.rowless = images[2:3]
	mtime := time.Date(2019, 6, 7, 8, 9, 10, 123456789, time.UTC)
	if err := os.Chtimes(blobPath(g.dir, images[2].row.BlobKey), mtime, mtime); err != nil {
		t.Fatal(err)
	}
	g.fileTimes[images[2].row.BlobKey] = mtime
	g.images = append(images[:2:2], images[3:]...)

	for i, im := range images {
		for j := rng.Intn(3); j > 0; j-- {
			r := &store.Remote{
				ACIURL:       fmt.Sprintf("https://%s/%d/%d.aci", im.row.Name, i, j),
				BlobKey:      im.row.BlobKey,
				CacheMaxAge:  []int{0, 300, 3600, 86400, 604800}[rng.Intn(5)],
				DownloadTime: randomTime(rng),
			}
			if rng.Intn(4) != 0 {
				r.SigURL = r.ACIURL + ".asc"
				r.ETag = fmt.Sprintf("%q", fmt.Sprintf("%x-%x", rng.Int63(), rng.Intn(1<<16)))
			}
			g.remotes = append(g.remotes, r)
			if i >= 2 { // images[0] and [1] are skipped, and so are their remotes
				g.wantRemotes[r.ACIURL] = r
			}
		}
	}
	g.remotes = append(g.remotes, &store.Remote{ACIURL: "docker://nowhere:1", BlobKey: "sha512-" + hex.EncodeToString(make([]byte, 32)), DownloadTime: randomTime(rng)})

	// The database, written as rkt writes it: schema in one transaction,
	// then one transaction per row.
	// Odd seeds keep ql's write-ahead log at 64 KiB (headroom) instead of
	// emptying it after each commit, so that the reader copies a
	// non-empty log too.
	dsn := filepath.Join(g.dir, "db", "ql.db")
	if seed%2 == 1 {
		dsn = "file://" + dsn + "?headroom=65536"
	}
	db := openQL(t, dsn)
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range rktSchema {
		if _, err := tx.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	for _, im := range g.images {
		r := im.row
		execQL(t, db, `INSERT INTO aciinfo (blobkey, name, importtime, lastused, latest, size, treestoresize) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			r.BlobKey, r.Name, r.ImportTime, r.LastUsed, r.Latest, r.Size, r.TreeStoreSize)
	}
	for _, r := range g.remotes {
		execQL(t, db, `INSERT INTO remote VALUES ($1, $2, $3, $4, $5, $6)`,
			r.ACIURL, r.SigURL, r.ETag, r.BlobKey, int64(r.CacheMaxAge), r.DownloadTime)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return g
}

// adopted is what the store must hold after adoption: the rows that
// checked out, and the rowless blob as Rebuild records it.
func (g *genStore) adopted() []*genImage {
	var out []*genImage
	for _, im := range g.images {
		if !g.missing[im.row.BlobKey] && !g.mismatched[im.row.BlobKey] {
			out = append(out, im)
		}
	}
	for _, im := range g.rowless {
		c := *im
		c.row.ImportTime, c.row.LastUsed = g.fileTimes[im.row.BlobKey], g.fileTimes[im.row.BlobKey]
		c.row.Latest, c.row.TreeStoreSize = false, 0
		out = append(out, &c)
	}
	return out
}

// rktGetACI is rkt v1.30's GetACI over the adopted images: every label
// asked for must be in the manifest; without a version label images
// marked latest win; then the latest import.
func rktGetACI(images []*genImage, name string, labels types.Labels) string {
	_, versionRequested := labels.Get("version")
	var cur *genImage
next:
	for _, im := range images {
		if im.row.Name != name {
			continue
		}
		for _, l := range labels {
			if v, ok := im.labels.Get(l.Name.String()); !ok || v != l.Value {
				continue next
			}
		}
		switch {
		case cur == nil:
			cur = im
		case !versionRequested && cur.row.Latest != im.row.Latest:
			if im.row.Latest {
				cur = im
			}
		case im.row.ImportTime.After(cur.row.ImportTime):
			cur = im
		}
	}
	if cur == nil {
		return ""
	}
	return cur.row.BlobKey
}

// Rkt stores the project has never seen, made from random rows and blobs
// in rkt's exact schema, keep every fact through adoption.
func TestAdoptGeneratedRktStores(t *testing.T) {
	for seed := int64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			g := makeRktStore(t, seed)
			qlSum := fileSum(t, filepath.Join(g.dir, "db", "ql.db"))
			wal := filepath.Join(g.dir, "db", walName("ql.db"))
			walSum := fileSum(t, wal)
			if fi, err := os.Stat(wal); err != nil || (fi.Size() > 0) != (seed%2 == 1) {
				t.Fatalf("ql's log: %v, %v; want it non-empty for odd seeds", fi.Size(), err)
			}
			rep, err := Adopt(g.dir)
			if err != nil {
				t.Fatal(err)
			}
			want := g.adopted()
			checkGenReport(t, g, rep)
			if fileSum(t, filepath.Join(g.dir, "db", "ql.db")) != qlSum || fileSum(t, wal) != walSum {
				t.Error("db/ql.db or its log changed")
			}
			s, err := store.NewStore(g.dir)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			all, err := s.GetAllACIInfos(nil, true)
			if err != nil {
				t.Fatal(err)
			}
			if len(all) != len(want) {
				t.Errorf("%d images, want %d", len(all), len(want))
			}
			for _, im := range want {
				got, err := s.GetACIInfoWithBlobKey(im.row.BlobKey)
				if err != nil || !sameACIInfo(got, &im.row) {
					t.Errorf("ACIInfo %s:\n got %+v, %v\nwant %+v", im.row.BlobKey, got, err, im.row)
				}
				imj, err := s.GetImageManifestJSON(im.row.BlobKey)
				if err != nil || !bytes.Equal(imj, im.manifest) {
					t.Errorf("manifest %s: %s, %v; want %s", im.row.BlobKey, imj, err, im.manifest)
				}
			}
			remotes, err := s.GetAllRemotes()
			if err != nil {
				t.Fatal(err)
			}
			if len(remotes) != len(g.wantRemotes) {
				t.Errorf("%d remotes, want %d", len(remotes), len(g.wantRemotes))
			}
			for _, r := range remotes {
				if w := g.wantRemotes[r.ACIURL]; w == nil || !sameRemote(r, w) {
					t.Errorf("remote %+v, want %+v", r, w)
				}
			}
			for url, w := range g.wantRemotes {
				if r, err := s.GetRemote(url); err != nil || !sameRemote(r, w) {
					t.Errorf("GetRemote(%s) = %+v, %v; want %+v", url, r, err, w)
				}
			}
			checkGenLookups(t, s, g, want)
			checkStoreModes(t, g.dir)
			vr, err := s.Verify()
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range vr.Problems {
				if !g.missing[p.Key] && !g.mismatched[p.Key] {
					t.Errorf("Verify: %v", p)
				}
			}
			s.Close()
			before := snapshot(t, g.dir)
			if rep, err := Adopt(g.dir); err != nil || !rep.AlreadyAdopted {
				t.Errorf("second Adopt: %+v, %v", rep, err)
			}
			requireUnchanged(t, g.dir, before)
		})
	}
}

func checkGenReport(t *testing.T, g *genStore, rep *store.AdoptReport) {
	t.Helper()
	var wantImages, wantSkipped, gotSkipped []string
	for _, im := range g.images {
		k := im.row.BlobKey
		switch {
		case g.missing[k]:
			wantSkipped = append(wantSkipped, string(store.ProblemBlobMissing)+" "+k)
		case g.mismatched[k]:
			wantSkipped = append(wantSkipped, string(store.ProblemBlobCorrupt)+" "+k)
		default:
			wantImages = append(wantImages, k)
		}
	}
	for _, p := range rep.SkippedImages {
		gotSkipped = append(gotSkipped, string(p.Kind)+" "+p.Key)
	}
	sort.Strings(wantImages)
	sort.Strings(wantSkipped)
	sort.Strings(gotSkipped)
	if !reflect.DeepEqual(rep.Images, wantImages) {
		t.Errorf("adopted %v, want %v", rep.Images, wantImages)
	}
	if !reflect.DeepEqual(gotSkipped, wantSkipped) {
		t.Errorf("skipped %v, want %v", gotSkipped, wantSkipped)
	}
	if len(rep.FromBlobs) != 1 || rep.FromBlobs[0] != g.rowless[0].row.BlobKey {
		t.Errorf("from blobs %v, want %s", rep.FromBlobs, g.rowless[0].row.BlobKey)
	}
	if len(rep.Remotes) != len(g.wantRemotes) || len(rep.Remotes)+len(rep.SkippedRemotes) != len(g.remotes) {
		t.Errorf("%d remotes adopted, %d skipped; want %d of %d", len(rep.Remotes), len(rep.SkippedRemotes), len(g.wantRemotes), len(g.remotes))
	}
	if len(rep.Corrected) != 0 {
		t.Errorf("corrected %v", rep.Corrected)
	}
}

// checkGenLookups compares GetACI and ResolveName with what rkt would have
// answered, for every name and a set of label queries.
func checkGenLookups(t *testing.T, s *store.Store, g *genStore, images []*genImage) {
	t.Helper()
	queries := 0
	for _, name := range append(g.names, "example.com/not-there") {
		sets := []types.Labels{nil, {{Name: "os", Value: "linux"}}, {{Name: "arch", Value: "aarch64"}},
			{{Name: "channel", Value: "stable"}}, {{Name: "version", Value: "9.9.9"}}}
		var keys []string
		for _, im := range images {
			if im.row.Name != name {
				continue
			}
			keys = append(keys, im.row.BlobKey)
			v, _ := im.labels.Get("version")
			sets = append(sets, types.Labels{{Name: "version", Value: v}},
				types.Labels{{Name: "arch", Value: "amd64"}, {Name: "version", Value: v}})
		}
		for _, labels := range sets {
			want := rktGetACI(images, name, labels)
			got, err := s.GetACI(types.ACIdentifier(name), labels)
			var nf store.ACINotFoundError
			switch {
			case want == "" && !errors.As(err, &nf):
				t.Errorf("GetACI(%s, %v) = %s, %v; want not found", name, labels, got, err)
			case want != "" && (err != nil || got != want):
				t.Errorf("GetACI(%s, %v) = %s, %v; want %s", name, labels, got, err, want)
			}
			queries++
		}
		got, found, err := s.ResolveName(name)
		sort.Strings(got)
		sort.Strings(keys)
		if err != nil || found != (len(keys) > 0) || !reflect.DeepEqual(got, keys) && len(keys) > 0 {
			t.Errorf("ResolveName(%s) = %v, %v, %v; want %v", name, got, found, err, keys)
		}
	}
	t.Logf("%d images, %d GetACI queries compared with rkt's rules", len(images), queries)
}

// checkStoreModes checks that every directory of the store is 2770 and
// every file 0660.
func checkStoreModes(t *testing.T, dir string) {
	t.Helper()
	for p, st := range snapshot(t, dir) {
		if st.Mode.IsDir() && st.Mode != wantDirMode || st.Mode.IsRegular() && st.Mode != wantFileMode {
			t.Errorf("%s: mode %v", p, st.Mode)
		}
	}
}
