// Tests of adopting a store written by rkt v1.30.0.

package store

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// rktLayout lays out a store as rkt leaves it: the blob and manifest of
// hello.aci, and a database in db/ql.db (whose content only package rkt
// reads). It returns the store directory and the image's key.
func rktLayout(t *testing.T) (string, string, []byte) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "cas")
	img := readFixture(t, "hello.aci")
	key := "sha512-1c9abf1ff224a84ca981cdc055b964f83e457e08bd4a3a95006f7de38c5916d2"
	blob := filepath.Join(dir, "blob", "sha512", key[7:9], key)
	for _, d := range []string{filepath.Dir(blob), filepath.Join(dir, "db"), filepath.Join(dir, "imagelocks")} {
		if err := os.MkdirAll(d, 0o770); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(blob, img, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "db", "ql.db"), []byte("ql database"), 0o666); err != nil {
		t.Fatal(err)
	}
	return dir, key, img
}

// TestAdoptRktStore: NewStore and Rebuild refuse a store laid out by rkt,
// creating nothing in it, and say to adopt it; Adopt records the rows its
// source read as they are, checked against the blobs.
func TestAdoptRktStore(t *testing.T) {
	t.Parallel()
	dir, key, img := rktLayout(t)
	before := listTree(t, dir)
	_, err := NewStore(dir)
	if !errors.Is(err, ErrNeedsAdoption) || !errors.Is(err, ErrNeedsRebuild) || !strings.Contains(err.Error(), "imagestore adopt") {
		t.Fatalf("NewStore on an rkt store = %v, want ErrNeedsAdoption naming the adopt command", err)
	}
	if _, err := Rebuild(dir); !errors.Is(err, ErrNeedsAdoption) {
		t.Fatalf("Rebuild on an rkt store = %v, want ErrNeedsAdoption", err)
	}
	if after := listTree(t, dir); !reflect.DeepEqual(after, before) {
		t.Fatalf("NewStore and Rebuild changed the rkt store: %v, was %v", after, before)
	}

	// A source that fails leaves the store as it was.
	broken := errors.New("cannot read")
	if _, err := Adopt(dir, func(string) ([]*ACIInfo, []*Remote, error) { return nil, nil, broken }); !errors.Is(err, broken) {
		t.Fatalf("Adopt with a failing source = %v", err)
	}
	if after := listTree(t, dir); !reflect.DeepEqual(after, before) {
		t.Fatalf("a failed adoption changed the store: %v, was %v", after, before)
	}

	imported := time.Date(2017, 3, 4, 5, 6, 7, 890123456, time.FixedZone("rkt-local", 3600))
	row := &ACIInfo{BlobKey: key, Name: "example.com/hello", ImportTime: imported, LastUsed: imported.Add(time.Hour),
		Latest: true, Size: int64(len(img)), TreeStoreSize: 4096}
	kept := &Remote{ACIURL: "https://example.com/hello.aci", SigURL: "https://example.com/hello.aci.asc", ETag: `"e1"`,
		BlobKey: key, CacheMaxAge: 3600, DownloadTime: imported.Add(time.Minute)}
	gone := &Remote{ACIURL: "https://example.com/gone.aci", BlobKey: fakeKey("ab"), DownloadTime: imported}
	lost := &ACIInfo{BlobKey: fakeKey("cd"), Name: "example.com/lost", ImportTime: imported, LastUsed: imported}
	lostRemote := &Remote{ACIURL: "https://example.com/lost.aci", BlobKey: lost.BlobKey, DownloadTime: imported}
	rep, err := Adopt(dir, func(string) ([]*ACIInfo, []*Remote, error) {
		return []*ACIInfo{row, lost}, []*Remote{kept, gone, lostRemote}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rep.Images, []string{key}) || !reflect.DeepEqual(rep.Remotes, []string{kept.ACIURL}) ||
		len(rep.SkippedImages) != 1 || rep.SkippedImages[0].Key != lost.BlobKey || rep.SkippedImages[0].Kind != ProblemBlobMissing ||
		len(rep.SkippedRemotes) != 2 || len(rep.FromBlobs) != 0 || len(rep.Corrected) != 0 {
		t.Fatalf("report %+v", rep)
	}

	s, err := NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ai, err := s.GetACIInfoWithBlobKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if !ai.ImportTime.Equal(row.ImportTime) || !ai.LastUsed.Equal(row.LastUsed) || !ai.Latest || ai.TreeStoreSize != 4096 ||
		ai.Size != row.Size || ai.Name != row.Name {
		t.Errorf("adopted %+v, want %+v", ai, row)
	}
	r, err := s.GetRemote(kept.ACIURL)
	if err != nil || r.ETag != kept.ETag || r.SigURL != kept.SigURL || r.CacheMaxAge != kept.CacheMaxAge ||
		!r.DownloadTime.Equal(kept.DownloadTime) || r.BlobKey != key {
		t.Errorf("remote %+v, %v; want %+v", r, err, kept)
	}
	for _, u := range []string{gone.ACIURL, lostRemote.ACIURL} {
		if _, err := s.GetRemote(u); !errors.Is(err, ErrRemoteNotFound) {
			t.Errorf("remote %s of no image: %v", u, err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "db", "ql.db")); err != nil || string(b) != "ql database" {
		t.Errorf("rkt's database: %q, %v", b, err)
	}
	if fi, err := os.Stat(s.blobPath(key)); err != nil || fi.Mode() != filePerm {
		t.Errorf("blob mode after adoption: %v, %v", fi.Mode(), err)
	}
	if rep, err := Adopt(dir, nil); err != nil || !rep.AlreadyAdopted {
		t.Errorf("second Adopt: %+v, %v", rep, err)
	}
}

// A row whose name or size differs from its blob is adopted with the
// blob's, and the correction reported; its other fields are kept.
func TestAdoptCorrectsNameAndSize(t *testing.T) {
	t.Parallel()
	dir, key, img := rktLayout(t)
	imported := time.Date(2018, 1, 2, 3, 4, 5, 6, time.UTC)
	row := &ACIInfo{BlobKey: key, Name: "example.com/renamed", ImportTime: imported, LastUsed: imported,
		Latest: true, Size: 1, TreeStoreSize: 77}
	rep, err := Adopt(dir, func(string) ([]*ACIInfo, []*Remote, error) { return []*ACIInfo{row}, nil, nil })
	if err != nil {
		t.Fatal(err)
	}
	var kinds []ProblemKind
	for _, p := range rep.Corrected {
		kinds = append(kinds, p.Kind)
	}
	if !reflect.DeepEqual(kinds, []ProblemKind{ProblemNameMismatch, ProblemSizeMismatch}) || !reflect.DeepEqual(rep.Images, []string{key}) {
		t.Fatalf("report %+v", rep)
	}
	s, err := NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ai, err := s.GetACIInfoWithBlobKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if ai.Name != "example.com/hello" || ai.Size != int64(len(img)) || !ai.Latest || ai.TreeStoreSize != 77 || !ai.ImportTime.Equal(imported) {
		t.Errorf("adopted %+v", ai)
	}
	if vr, err := s.Verify(); err != nil || !vr.OK() {
		t.Errorf("Verify: %+v, %v", vr, err)
	}
}
