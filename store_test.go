package store

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"database/sql"
	"errors"
	"io"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/appc/spec/schema/types"
)

func TestFixtureKeys(t *testing.T) {
	s := newTestStore(t)
	f, err := os.Open(filepath.Join("testdata", "fixtures.keys"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	plain := readFixture(t, "hello.aci")
	sum := sha512.Sum512(plain)
	wantFromTar := sumToKey(sum[:])
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, want, _ := strings.Cut(sc.Text(), " ")
		t.Run(name, func(t *testing.T) {
			if want != wantFromTar {
				t.Fatalf("fixtures.keys says %s, sha512 of hello.aci gives %s", want, wantFromTar)
			}
			got := writeImage(t, s, readFixture(t, name), false)
			if got != want {
				t.Fatalf("WriteACI(%s) = %s, want %s", name, got, want)
			}
		})
		n++
	}
	if n != 4 {
		t.Fatalf("fixtures.keys lists %d fixtures, want 4 (tar, gzip, bzip2, xz)", n)
	}
	// Four writes of one image in four forms: one row.
	ais, err := s.GetAllACIInfos(nil, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(ais) != 1 || ais[0].BlobKey != wantFromTar || ais[0].Name != "example.com/hello" || ais[0].Size != int64(len(plain)) {
		t.Fatalf("rows after four writes: %+v", ais)
	}
}

func TestWriteACIStoresTarAndManifest(t *testing.T) {
	s := newTestStore(t)
	img := makeACI(t, "example.com/app", "version=1.0", "os=linux")
	before := time.Now()
	key := writeImage(t, s, gzipBytes(t, img), true)

	rc, err := s.ReadStream(key)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, img) {
		t.Fatalf("ReadStream returned %d bytes (err %v), want the %d-byte uncompressed tar", len(got), err, len(img))
	}

	im, err := s.GetImageManifest(key)
	if err != nil {
		t.Fatal(err)
	}
	if im.Name != "example.com/app" {
		t.Fatalf("manifest name %q", im.Name)
	}
	if v, _ := im.Labels.Get("version"); v != "1.0" {
		t.Fatalf("manifest version label %q", v)
	}
	imj, err := s.GetImageManifestJSON(key[:20])
	if err != nil || !bytes.Contains(imj, []byte(`"example.com/app"`)) {
		t.Fatalf("GetImageManifestJSON by prefix: %s, %v", imj, err)
	}

	ai, err := s.GetACIInfoWithBlobKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if !ai.Latest || ai.Size != int64(len(img)) || ai.Name != "example.com/app" || ai.ImportTime.Before(before) || ai.LastUsed.Before(ai.ImportTime) {
		t.Fatalf("ACIInfo %+v", ai)
	}
	if !s.HasFullKey(key) {
		t.Fatal("HasFullKey(stored key) = false")
	}
	if got := tmpEntries(t, s); len(got) != 0 {
		t.Fatalf("tmp/ after a write: %v", got)
	}
}

// TestWriteACILargeImages: images of several pipeline chunks, whose file
// contents the tar parser skips rather than reads, come through every
// decoder (writes on the decoder's goroutine for tar and gzip, on the
// hasher's for xz) with the key of their tar and their bytes intact.
func TestWriteACILargeImages(t *testing.T) {
	img := largeACI(t, 3*pipelineChunk+pipelineChunk/3)
	sum := sha512.Sum512(img)
	want := sumToKey(sum[:])
	for name, in := range map[string][]byte{"tar": img, "gzip": gzipBytes(t, img), "xz": xzBytes(t, img)} {
		t.Run(name, func(t *testing.T) {
			s := newTestStore(t)
			if key := writeImage(t, s, in, false); key != want {
				t.Fatalf("key %s, want %s", key, want)
			}
			if err := readBack(s, want, img); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestWriteACIAgainUpdatesRow(t *testing.T) {
	s := newTestStore(t)
	img := makeACI(t, "example.com/app")
	key := writeImage(t, s, img, false)
	if err := s.UpdateTreeStoreSize(key, 1234); err != nil {
		t.Fatal(err)
	}
	first, _ := s.GetACIInfoWithBlobKey(key)
	time.Sleep(2 * time.Millisecond)
	if k := writeImage(t, s, xzBytes(t, img), true); k != key {
		t.Fatalf("xz form got key %s, plain form %s", k, key)
	}
	second, err := s.GetACIInfoWithBlobKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if !second.Latest || !second.ImportTime.After(first.ImportTime) || second.TreeStoreSize != 1234 {
		t.Fatalf("after rewrite: %+v (before: %+v)", second, first)
	}
}

func TestWriteACIRejectsBadInput(t *testing.T) {
	good := makeACI(t, "example.com/app")
	gz := gzipBytes(t, good)
	rnd := make([]byte, 4096)
	rand.New(rand.NewSource(1)).Read(rnd)
	manifest := manifestJSON("example.com/app")
	large := largeACI(t, 2*pipelineChunk+pipelineChunk/2)
	cutLarge := large[:len(large)/2] // inside a file the parser skips
	cases := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"random bytes", rnd},
		{"tar without manifest", makeTar(t, tarEntry{"rootfs/a", []byte("x")})},
		{"invalid manifest JSON", makeTar(t, tarEntry{"manifest", []byte(`{"acKind": `)})},
		{"manifest of wrong kind", makeTar(t, tarEntry{"manifest", []byte(`{"acKind":"PodManifest","acVersion":"0.8.11","name":"a"}`)})},
		{"manifest without name", makeTar(t, tarEntry{"manifest", []byte(`{"acKind":"ImageManifest","acVersion":"0.8.11"}`)})},
		{"two manifests", makeTar(t, tarEntry{"manifest", manifest}, tarEntry{"./manifest", manifest})},
		{"oversized manifest", makeTar(t, tarEntry{"manifest", bytes.Repeat([]byte(" "), maxManifestSize+1)})},
		{"truncated gzip", gz[:len(gz)-10]},
		{"gzip with bad checksum", append(append([]byte{}, gz[:len(gz)-8]...), 0, 0, 0, 0, 0, 0, 0, 0)},
		{"truncated xz", xzBytes(t, good)[:100]},
		{"tar cut inside an entry", good[:700]},
		{"tar cut at an entry boundary", good[:len(good)-2048]},
		{"gzip header only", gz[:10]},
		{"large tar cut inside a skipped file", cutLarge},
		{"gzip of a large tar cut inside a skipped file", gzipBytes(t, cutLarge)},
		{"xz of a large tar cut inside a skipped file", xzBytes(t, cutLarge)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newTestStore(t)
			key, err := s.WriteACI(bytes.NewReader(c.in), ACIFetchInfo{})
			if !errors.Is(err, ErrInvalidImage) {
				t.Fatalf("WriteACI = %q, %v; want ErrInvalidImage", key, err)
			}
			if got := tmpEntries(t, s); len(got) != 0 {
				t.Fatalf("temp files left: %v", got)
			}
			if ais, _ := s.GetAllACIInfos(nil, true); len(ais) != 0 {
				t.Fatalf("rows after a failed write: %v", ais)
			}
			for _, d := range []string{"blob", "imageManifest", "imagelocks"} {
				if got := listTree(t, filepath.Join(s.dir, d)); len(got) != 1 {
					t.Fatalf("%s/ after a failed write: %v", d, got)
				}
			}
		})
	}
}

func TestWriteACINilReader(t *testing.T) {
	s := newTestStore(t)
	if _, err := s.WriteACI(nil, ACIFetchInfo{}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("WriteACI(nil) = %v", err)
	}
}

func TestBadKeys(t *testing.T) {
	s := newTestStore(t)
	key := writeImage(t, s, makeACI(t, "example.com/app"), false)
	parent := filepath.Dir(s.dir)
	outside := listTree(t, parent)
	bad := []string{"", "bogus", "sha512-", "sha512-zz", "sha512-../../x", "sha512-" + strings.Repeat("a", 193),
		"SHA512-" + key[7:], "sha512-" + strings.ToUpper(key[7:]), "sha512-ab/../../x", "sha512-a"}
	for _, k := range bad {
		t.Run(quoteKey(k), func(t *testing.T) {
			if s.HasFullKey(k) {
				t.Error("HasFullKey = true")
			}
			if _, err := s.ResolveKey(k); err == nil {
				t.Error("ResolveKey: no error")
			}
			if _, err := s.ReadStream(k); err == nil {
				t.Error("ReadStream: no error")
			}
			if _, err := s.GetImageManifestJSON(k); err == nil {
				t.Error("GetImageManifestJSON: no error")
			}
			if _, err := s.GetImageManifest(k); err == nil {
				t.Error("GetImageManifest: no error")
			}
			if _, err := s.GetACIInfoWithBlobKey(k); err == nil {
				t.Error("GetACIInfoWithBlobKey: no error")
			}
			if err := s.UpdateTreeStoreSize(k, 1); err == nil {
				t.Error("UpdateTreeStoreSize: no error")
			}
			if err := s.RemoveACI(k); err == nil {
				t.Error("RemoveACI: no error")
			}
			if err := s.WriteRemote(&Remote{ACIURL: "https://x/" + k, BlobKey: k}); err == nil && k != "" {
				t.Error("WriteRemote with a bad BlobKey: no error")
			}
			err := s.Do(func(tx *sql.Tx) error {
				if err := WriteACIInfo(tx, &ACIInfo{BlobKey: k}); err == nil {
					t.Error("WriteACIInfo: no error")
				}
				if err := RemoveACIInfo(tx, k); err == nil {
					t.Error("RemoveACIInfo: no error")
				}
				if err := RemoveRemote(tx, k); err == nil {
					t.Error("RemoveRemote: no error")
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
	if got := listTree(t, parent); strings.Join(got, "\n") != strings.Join(outside, "\n") {
		t.Fatalf("files appeared around the store:\nbefore %v\nafter  %v", outside, got)
	}
	if locks := listTree(t, s.lockDir); len(locks) != 2 { // "." and the real key's lock
		t.Fatalf("imagelocks/ holds %v", locks)
	}
	if !s.HasFullKey(key) {
		t.Fatal("the stored image was lost")
	}
}

func TestResolveKey(t *testing.T) {
	s := newTestStore(t)
	k1, k2, k3 := fakeKey("aa11"), fakeKey("aa22"), fakeKey("bb33")
	err := s.Do(func(tx *sql.Tx) error {
		for _, k := range []string{k1, k2, k3} {
			if err := WriteACIInfo(tx, NewACIInfo(k, false, time.Now(), 1, 0)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		in, want string
		err      error
		msg      string
	}{
		{in: "sha256-aa11", err: ErrWrongKeyPrefix, msg: "wrong key prefix"},
		{in: "sha512-a", err: ErrKeyTooShort, msg: "image ID too short"},
		{in: "sha512-aa", err: ErrAmbiguousKey, msg: `ambiguous image ID: "sha512-aa" matches sha512-aa1100000000, sha512-aa2200000000`},
		{in: "sha512-cc", err: ErrKeyNotFound, msg: "no image IDs found"},
		{in: "sha512-aa1", want: k1},
		{in: "sha512-bb", want: k3},
		{in: k2, want: k2},
		{in: k2 + strings.Repeat("f", 64), want: k2}, // longer than a full key: truncated
		{in: k2 + "junk/../\x00", want: k2},          // truncated first, as documented and in rkt
		{in: k2 + strings.Repeat("z", 1<<20), want: k2},
		{in: "sha512-aazz" + strings.Repeat("0", 60) + "aa", err: ErrInvalidKey},
		{in: "sha512-xx", err: ErrInvalidKey},
	}
	for _, c := range cases {
		got, err := s.ResolveKey(c.in)
		if c.err != nil {
			if !errors.Is(err, c.err) || (c.msg != "" && err.Error() != c.msg) {
				t.Errorf("ResolveKey(%q) = %q, %v; want error %q", c.in, got, err, c.msg)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ResolveKey(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestResolveName(t *testing.T) {
	s := newTestStore(t)
	a := writeImage(t, s, makeACI(t, "example.com/a", "version=1"), false)
	b := writeImage(t, s, makeACI(t, "example.com/a", "version=2"), false)
	writeImage(t, s, makeACI(t, "example.com/b"), false)
	keys, found, err := s.ResolveName("example.com/a")
	if err != nil || !found || len(keys) != 2 || !(keys[0] == a && keys[1] == b) {
		t.Fatalf("ResolveName = %v, %v, %v; want [%s %s] in import order", keys, found, err, a, b)
	}
	keys, found, err = s.ResolveName("example.com/none")
	if err != nil || found || len(keys) != 0 {
		t.Fatalf("ResolveName(unknown) = %v, %v, %v", keys, found, err)
	}
}

func TestGetACI(t *testing.T) {
	s := newTestStore(t)
	// Imported in this order; import time breaks ties.
	v1 := writeImage(t, s, makeACI(t, "example.com/app", "version=1.0", "os=linux"), false)
	v2 := writeImage(t, s, makeACI(t, "example.com/app", "version=2.0", "os=linux"), true)
	v3 := writeImage(t, s, makeACI(t, "example.com/app", "version=3.0", "os=linux"), false)
	other := writeImage(t, s, makeACI(t, "example.com/other", "version=1.0"), false)

	lbl := func(kv ...string) types.Labels {
		var ls types.Labels
		for _, x := range kv {
			k, v, _ := strings.Cut(x, "=")
			ls = append(ls, types.Label{Name: types.ACIdentifier(k), Value: v})
		}
		return ls
	}
	cases := []struct {
		name   string
		labels types.Labels
		want   string
	}{
		{"example.com/app", nil, v2},                               // latest preferred without a version
		{"example.com/app", lbl("os=linux"), v2},                   // still no version: latest
		{"example.com/app", lbl("version=1.0"), v1},                // exact version
		{"example.com/app", lbl("version=3.0", "os=linux"), v3},    // all labels must match
		{"example.com/app", lbl("version=3.0", "os=darwin"), ""},   // one label differs
		{"example.com/app", lbl("arch=amd64"), ""},                 // label the manifest lacks
		{"example.com/app", lbl("version=1.0", "version=2.0"), ""}, // contradictory
		{"example.com/other", nil, other},                          // another name
		{"example.com/missing", nil, ""},                           // unknown name
		{"example.com/app'; DROP TABLE aciinfo; --", nil, ""},      // names are values, not SQL
	}
	for _, c := range cases {
		got, err := s.GetACI(types.ACIdentifier(c.name), c.labels)
		if c.want == "" {
			var nf ACINotFoundError
			if !errors.As(err, &nf) || !errors.Is(err, ErrKeyNotFound) {
				t.Errorf("GetACI(%s, %v) = %q, %v; want ACINotFoundError", c.name, c.labels, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("GetACI(%s, %v) = %q, %v; want %q", c.name, c.labels, got, err, c.want)
		}
	}

	// Without any image marked latest, the last imported wins.
	s2 := newTestStore(t)
	writeImage(t, s2, makeACI(t, "example.com/app", "version=1.0"), false)
	last := writeImage(t, s2, makeACI(t, "example.com/app", "version=2.0"), false)
	if got, err := s2.GetACI("example.com/app", nil); err != nil || got != last {
		t.Fatalf("GetACI without latest marks = %q, %v; want the last imported %q", got, err, last)
	}
	_, err := s2.GetACI("example.com/x", lbl("version=9"))
	if err == nil || !strings.Contains(err.Error(), `"version":"9"`) {
		t.Fatalf("ACINotFoundError message %q should name the labels", err)
	}
}

func TestRemoveACI(t *testing.T) {
	s := newTestStore(t)
	key := writeImage(t, s, makeACI(t, "example.com/app"), false)
	keep := writeImage(t, s, makeACI(t, "example.com/keep"), false)
	for _, r := range []*Remote{
		{ACIURL: "https://example.com/app.aci", BlobKey: key},
		{ACIURL: "https://mirror.example.com/app.aci", BlobKey: key},
		{ACIURL: "https://example.com/keep.aci", BlobKey: keep},
	} {
		if err := s.WriteRemote(r); err != nil {
			t.Fatal(err)
		}
	}
	// As in rkt, RemoveACI takes a full key: a prefix, even an unambiguous
	// one, is an error and removes nothing, and so is an unknown key.
	for _, k := range []string{key[:20], key + "ff"} {
		if err := s.RemoveACI(k); !errors.Is(err, ErrInvalidKey) {
			t.Fatalf("RemoveACI(%q) = %v, want ErrInvalidKey", k, err)
		}
	}
	if err := s.RemoveACI(fakeKey("ee")); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("RemoveACI(unknown key) = %v, want ErrKeyNotFound", err)
	}
	if !s.HasFullKey(key) {
		t.Fatal("RemoveACI of a prefix removed the image")
	}
	// A reader that opened the image before the removal keeps reading it.
	rc, err := s.ReadStream(key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()

	if err := s.RemoveACI(key); err != nil {
		t.Fatal(err)
	}
	if s.HasFullKey(key) {
		t.Fatal("HasFullKey after RemoveACI")
	}
	for _, p := range []string{s.blobPath(key), s.manifestPath(key)} {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s still there: %v", p, err)
		}
	}
	remotes, err := s.GetAllRemotes()
	if err != nil || len(remotes) != 1 || remotes[0].BlobKey != keep {
		t.Fatalf("remotes after removal: %v, %v", remotes, err)
	}
	if _, err := s.GetACI("example.com/app", nil); err == nil {
		t.Fatal("GetACI finds a removed image")
	}
	if b, err := io.ReadAll(rc); err != nil || len(b) == 0 {
		t.Fatalf("open stream after removal: %d bytes, %v", len(b), err)
	}
	if err := s.RemoveACI(key); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("second RemoveACI = %v, want ErrKeyNotFound", err)
	}
	if err := s.RemoveACI(fakeKey("ff")); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("RemoveACI(unknown) = %v", err)
	}
	if !s.HasFullKey(keep) {
		t.Fatal("the other image went too")
	}
}

func TestRemoveACIReportsLeftovers(t *testing.T) {
	s := newTestStore(t)
	key := writeImage(t, s, makeACI(t, "example.com/app"), false)
	// Replace the blob by a non-empty directory: os.Remove fails on it,
	// even for root.
	p := s.blobPath(key)
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(p, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	err := s.RemoveACI(key)
	var re *StoreRemovalError
	if !errors.As(err, &re) || len(re.errors) != 1 {
		t.Fatalf("RemoveACI = %v, want a StoreRemovalError with one error", err)
	}
	var pe *fs.PathError
	if !errors.As(err, &pe) {
		t.Fatalf("StoreRemovalError does not unwrap to the *fs.PathError: %v", err)
	}
	if s.HasFullKey(key) {
		t.Fatal("the row must be gone even when files stay")
	}
	if _, err := os.Stat(s.manifestPath(key)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("the manifest should have been removed")
	}
}

func TestReadStreamRecordsLastUsed(t *testing.T) {
	s := newTestStore(t)
	key := writeImage(t, s, makeACI(t, "example.com/app"), false)
	before, _ := s.GetACIInfoWithBlobKey(key)
	time.Sleep(2 * time.Millisecond)
	rc, err := s.ReadStream(key[:12])
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	after, _ := s.GetACIInfoWithBlobKey(key)
	if !after.LastUsed.After(before.LastUsed) || !after.ImportTime.Equal(before.ImportTime) {
		t.Fatalf("LastUsed %v -> %v, ImportTime %v -> %v", before.LastUsed, after.LastUsed, before.ImportTime, after.ImportTime)
	}
	if _, err := s.ReadStream(fakeKey("0")); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("ReadStream(unknown) = %v", err)
	}
}

func TestRemotes(t *testing.T) {
	s := newTestStore(t)
	if _, err := s.GetRemote("https://example.com/none.aci"); !errors.Is(err, ErrRemoteNotFound) {
		t.Fatalf("GetRemote(unknown) = %v", err)
	}
	r := NewRemote("https://example.com/app.aci", "https://example.com/app.aci.asc")
	r.ETag = `"abc"`
	r.BlobKey = fakeKey("12") // no such image (yet): allowed
	r.CacheMaxAge = 3600
	r.DownloadTime = time.Date(2026, 11, 29, 10, 0, 0, 123456789, time.FixedZone("X", 3600))
	if err := s.WriteRemote(r); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetRemote(r.ACIURL)
	if err != nil {
		t.Fatal(err)
	}
	if got.ACIURL != r.ACIURL || got.SigURL != r.SigURL || got.ETag != r.ETag || got.BlobKey != r.BlobKey ||
		got.CacheMaxAge != r.CacheMaxAge || !got.DownloadTime.Equal(r.DownloadTime) {
		t.Fatalf("GetRemote = %+v, want %+v", got, r)
	}
	// Writing the same URL again replaces the remote.
	r2 := NewRemote(r.ACIURL, "")
	if err := s.WriteRemote(r2); err != nil {
		t.Fatal(err)
	}
	all, err := s.GetAllRemotes()
	if err != nil || len(all) != 1 || all[0].SigURL != "" || all[0].BlobKey != "" || !all[0].DownloadTime.IsZero() {
		t.Fatalf("after replace: %+v, %v", all, err)
	}
	for _, bad := range []*Remote{nil, {}, {ACIURL: "u", BlobKey: "sha512-12"}} {
		if err := s.WriteRemote(bad); err == nil {
			t.Errorf("WriteRemote(%+v) accepted", bad)
		}
	}
}

func TestTxHelpers(t *testing.T) {
	s := newTestStore(t)
	t0 := time.Date(2020, 1, 2, 3, 4, 5, 999999999, time.UTC)
	rows := []*ACIInfo{
		{BlobKey: fakeKey("a1"), Name: "n/b", ImportTime: t0, LastUsed: t0.Add(3 * time.Hour), Size: 30, Latest: true},
		{BlobKey: fakeKey("a2"), Name: "n/a", ImportTime: t0.Add(time.Hour), LastUsed: t0.Add(time.Hour), Size: 10},
		{BlobKey: fakeKey("b1"), Name: "n/a", ImportTime: t0.Add(2 * time.Hour), LastUsed: t0, Size: 20, TreeStoreSize: 7},
	}
	err := s.Do(func(tx *sql.Tx) error {
		for _, ai := range rows {
			if err := WriteACIInfo(tx, ai); err != nil {
				return err
			}
		}
		return WriteRemote(tx, &Remote{ACIURL: "u1", BlobKey: fakeKey("a1")})
	})
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, got []*ACIInfo, want ...string) {
		t.Helper()
		var keys []string
		for _, ai := range got {
			keys = append(keys, ai.BlobKey)
		}
		if strings.Join(keys, ",") != strings.Join(want, ",") {
			t.Errorf("%s = %v, want %v", what, keys, want)
		}
	}
	err = s.Do(func(tx *sql.Tx) error {
		ai, found, err := GetACIInfoWithBlobKey(tx, fakeKey("b1"))
		if err != nil || !found || !sameInfo(ai, rows[2]) {
			t.Errorf("GetACIInfoWithBlobKey = %+v, %v, %v; want %+v", ai, found, err, rows[2])
		}
		if _, found, err := GetACIInfoWithBlobKey(tx, fakeKey("cc")); found || err != nil {
			t.Errorf("GetACIInfoWithBlobKey(unknown) found=%v err=%v", found, err)
		}
		ais, err := GetACIInfosWithKeyPrefix(tx, "sha512-a")
		if err != nil {
			t.Errorf("GetACIInfosWithKeyPrefix: %v", err)
		}
		check("GetACIInfosWithKeyPrefix(sha512-a)", ais, fakeKey("a1"), fakeKey("a2"))
		ais, _ = GetACIInfosWithKeyPrefix(tx, "")
		check("GetACIInfosWithKeyPrefix(\"\")", ais, fakeKey("a1"), fakeKey("a2"), fakeKey("b1"))
		ais, found, err = GetACIInfosWithName(tx, "n/a")
		check("GetACIInfosWithName(n/a)", ais, fakeKey("a2"), fakeKey("b1"))
		if !found || err != nil {
			t.Errorf("GetACIInfosWithName found=%v err=%v", found, err)
		}
		if _, found, _ := GetACIInfosWithName(tx, "n/none"); found {
			t.Error("GetACIInfosWithName(unknown) found")
		}
		ais, _ = GetAllACIInfos(tx, []string{"importtime"}, false)
		check("by importtime desc", ais, fakeKey("b1"), fakeKey("a2"), fakeKey("a1"))
		ais, _ = GetAllACIInfos(tx, []string{"Name", "size"}, true)
		check("by name, size", ais, fakeKey("a2"), fakeKey("b1"), fakeKey("a1"))
		ais, _ = GetAllACIInfos(tx, []string{"lastused"}, true)
		check("by lastused", ais, fakeKey("b1"), fakeKey("a2"), fakeKey("a1"))
		ais, _ = GetAllACIInfos(tx, nil, true)
		check("unsorted (key order)", ais, fakeKey("a1"), fakeKey("a2"), fakeKey("b1"))
		for _, bad := range []string{"name; DROP TABLE aciinfo", "nosuch", "", "name desc"} {
			if _, err := GetAllACIInfos(tx, []string{bad}, true); !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("GetAllACIInfos sort field %q: %v", bad, err)
			}
		}
		r, err := GetRemote(tx, "u1")
		if err != nil || r.BlobKey != fakeKey("a1") {
			t.Errorf("GetRemote(tx) = %+v, %v", r, err)
		}
		if _, err := GetRemote(tx, "u2"); !errors.Is(err, ErrRemoteNotFound) {
			t.Errorf("GetRemote(tx, unknown) = %v", err)
		}
		if rs, err := GetAllRemotes(tx); err != nil || len(rs) != 1 {
			t.Errorf("GetAllRemotes(tx) = %v, %v", rs, err)
		}
		if err := RemoveRemote(tx, fakeKey("a1")); err != nil {
			return err
		}
		return RemoveACIInfo(tx, fakeKey("a1"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if all, _ := s.GetAllACIInfos(nil, true); len(all) != 2 {
		t.Fatalf("after RemoveACIInfo: %d rows", len(all))
	}
	if rs, _ := s.GetAllRemotes(); len(rs) != 0 {
		t.Fatalf("after RemoveRemote: %v", rs)
	}

	// An error from any function rolls the whole transaction back.
	boom := errors.New("boom")
	err = s.Do(func(tx *sql.Tx) error {
		return RemoveACIInfo(tx, fakeKey("a2"))
	}, func(tx *sql.Tx) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("Do = %v, want boom", err)
	}
	if all, _ := s.GetAllACIInfos(nil, true); len(all) != 2 {
		t.Fatalf("rollback failed: %d rows", len(all))
	}
	// So does a panic, which then goes on.
	func() {
		defer func() {
			if recover() == nil {
				t.Error("panic was swallowed")
			}
		}()
		s.Do(func(tx *sql.Tx) error {
			RemoveACIInfo(tx, fakeKey("a2"))
			panic("in tx")
		})
	}()
	if all, _ := s.GetAllACIInfos(nil, true); len(all) != 2 {
		t.Fatalf("rollback on panic failed: %d rows", len(all))
	}
}

// sameInfo compares two ACIInfos, times with Equal.
func sameInfo(a, b *ACIInfo) bool {
	return a.BlobKey == b.BlobKey && a.Name == b.Name && a.ImportTime.Equal(b.ImportTime) &&
		a.LastUsed.Equal(b.LastUsed) && a.Size == b.Size && a.TreeStoreSize == b.TreeStoreSize && a.Latest == b.Latest
}

func TestTimesRoundTrip(t *testing.T) {
	s := newTestStore(t)
	times := []time.Time{
		{},
		time.Date(1999, 12, 31, 23, 59, 59, 1, time.FixedZone("A", -7*3600)),
		time.Now(), // with a monotonic reading
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
	}
	for i, tm := range times {
		ai := &ACIInfo{BlobKey: fakeKey("0" + string(rune('a'+i))), ImportTime: tm, LastUsed: tm}
		if err := s.Do(func(tx *sql.Tx) error { return WriteACIInfo(tx, ai) }); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetACIInfoWithBlobKey(ai.BlobKey)
		if err != nil {
			t.Fatal(err)
		}
		if !got.ImportTime.Equal(tm) || !got.LastUsed.Equal(tm) || got.ImportTime.Location() != time.UTC {
			t.Errorf("time %v came back as %v", tm, got.ImportTime)
		}
	}
	bad := &ACIInfo{BlobKey: fakeKey("ff"), ImportTime: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	if err := s.Do(func(tx *sql.Tx) error { return WriteACIInfo(tx, bad) }); err == nil {
		t.Error("a year-10000 time was accepted")
	}
}

func TestUpdateTreeStoreSize(t *testing.T) {
	s := newTestStore(t)
	key := writeImage(t, s, makeACI(t, "example.com/app"), false)
	if err := s.UpdateTreeStoreSize(key, 42); err != nil {
		t.Fatal(err)
	}
	if ai, _ := s.GetACIInfoWithBlobKey(key); ai.TreeStoreSize != 42 {
		t.Fatalf("TreeStoreSize = %d", ai.TreeStoreSize)
	}
	if err := s.UpdateTreeStoreSize(fakeKey("00"), 1); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("unknown key: %v", err)
	}
	if err := s.UpdateTreeStoreSize(key, -1); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("negative size: %v", err)
	}
}

func TestGetACIInfoWithBlobKeyNotFound(t *testing.T) {
	s := newTestStore(t)
	_, err := s.GetACIInfoWithBlobKey(fakeKey("00"))
	if !errors.Is(err, ErrKeyNotFound) || !strings.Contains(err.Error(), "ACI info not found with blob key") {
		t.Fatalf("err = %v", err)
	}
}

func TestHashToKey(t *testing.T) {
	s := newTestStore(t)
	h := sha512.New()
	h.Write([]byte("x"))
	sum := sha512.Sum512([]byte("x"))
	want := "sha512-" + strings.ToLower(hexString(sum[:]))[:64]
	if got := s.HashToKey(h); got != want || len(got) != lenKey {
		t.Fatalf("HashToKey = %q, want %q", got, want)
	}
	if got := s.HashToKey(sha256.New()); got != "" {
		t.Fatalf("HashToKey(sha256) = %q, want \"\"", got)
	}
	if got := s.HashToKey(sha512.New384()); got != "" {
		t.Fatalf("HashToKey(sha384) = %q, want \"\"", got)
	}
	if got := s.HashToKey(nil); got != "" {
		t.Fatalf("HashToKey(nil) = %q", got)
	}
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 2*len(b))
	for i, c := range b {
		out[2*i], out[2*i+1] = digits[c>>4], digits[c&15]
	}
	return string(out)
}

func TestTmpFiles(t *testing.T) {
	s := newTestStore(t)
	dir, err := s.TmpDir()
	if err != nil || dir != filepath.Join(s.dir, "tmp") {
		t.Fatalf("TmpDir = %q, %v", dir, err)
	}
	f, err := s.TmpFile()
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	if filepath.Dir(f.Name()) != dir || fi.Mode().Perm() != filePerm {
		t.Fatalf("TmpFile %s mode %v", f.Name(), fi.Mode())
	}
	f.Close()

	nf, err := s.TmpNamedFile("download-1")
	if err != nil {
		t.Fatal(err)
	}
	nf.WriteString("hello ")
	nf.Close()
	nf, err = s.TmpNamedFile("download-1")
	if err != nil {
		t.Fatal(err)
	}
	if off, _ := nf.Seek(0, io.SeekCurrent); off != 6 {
		t.Fatalf("reopened file at offset %d, want 6", off)
	}
	nf.WriteString("world")
	nf.Close()
	if b, _ := os.ReadFile(filepath.Join(dir, "download-1")); string(b) != "hello world" {
		t.Fatalf("resumed file holds %q", b)
	}
	// A write of an image does not touch callers' temp files.
	writeImage(t, s, makeACI(t, "example.com/app"), false)
	if _, err := os.Stat(filepath.Join(dir, "download-1")); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", ".", "..", "../x", "a/b", ".ingest-x", strings.Repeat("n", 256)} {
		if f, err := s.TmpNamedFile(bad); !errors.Is(err, ErrInvalidArgument) {
			if f != nil {
				f.Close()
			}
			t.Errorf("TmpNamedFile(%q) = %v", bad, err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "adir"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TmpNamedFile("adir"); err == nil {
		t.Error("TmpNamedFile opened a directory")
	}
}

func TestConcurrentWritesOfOneImage(t *testing.T) {
	s := newTestStore(t)
	img := makeACI(t, "example.com/app")
	forms := [][]byte{img, gzipBytes(t, img), xzBytes(t, img), img}
	const n = 8
	keys := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			keys[i], errs[i] = s.WriteACI(bytes.NewReader(forms[i%len(forms)]), ACIFetchInfo{})
		}(i)
	}
	wg.Wait()
	for i := range keys {
		if errs[i] != nil || keys[i] != keys[0] {
			t.Fatalf("writer %d: %q, %v (writer 0: %q)", i, keys[i], errs[i], keys[0])
		}
	}
	ais, err := s.GetAllACIInfos(nil, true)
	if err != nil || len(ais) != 1 {
		t.Fatalf("rows: %v, %v", ais, err)
	}
	if got := tmpEntries(t, s); len(got) != 0 {
		t.Fatalf("tmp/ holds %v", got)
	}
	rc, err := s.ReadStream(keys[0])
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if b, _ := io.ReadAll(rc); !bytes.Equal(b, img) {
		t.Fatal("stored image differs")
	}
}

func TestConcurrentMixedOperations(t *testing.T) {
	s := newTestStore(t)
	shared := makeACI(t, "example.com/shared")
	var wg sync.WaitGroup
	errc := make(chan error, 64)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				own := makeACI(t, "example.com/own", "g="+string(rune('a'+g)), "i="+string(rune('a'+i)))
				key, err := s.WriteACI(bytes.NewReader(own), ACIFetchInfo{})
				if err != nil {
					errc <- err
					return
				}
				if _, err := s.WriteACI(bytes.NewReader(shared), ACIFetchInfo{}); err != nil {
					errc <- err
					return
				}
				rc, err := s.ReadStream(key)
				if err != nil {
					errc <- err
					return
				}
				io.Copy(io.Discard, rc)
				rc.Close()
				if err := s.WriteRemote(&Remote{ACIURL: key, BlobKey: key}); err != nil {
					errc <- err
					return
				}
				if err := s.RemoveACI(key); err != nil {
					errc <- err
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	ais, _ := s.GetAllACIInfos(nil, true)
	rs, _ := s.GetAllRemotes()
	if len(ais) != 1 || ais[0].Name != "example.com/shared" || len(rs) != 0 {
		t.Fatalf("left: %d rows, %d remotes", len(ais), len(rs))
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	s, err := NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	key := writeImage(t, s, makeACI(t, "example.com/app", "version=1"), true)
	if err := s.WriteRemote(&Remote{ACIURL: "https://x/app.aci", BlobKey: key}); err != nil {
		t.Fatal(err)
	}
	before, _ := s.GetACIInfoWithBlobKey(key)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.ResolveKey(key); !errors.Is(err, ErrClosed) {
		t.Fatalf("ResolveKey after Close = %v", err)
	}
	if _, err := s.WriteACI(bytes.NewReader(nil), ACIFetchInfo{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("WriteACI after Close = %v", err)
	}
	if s.HasFullKey(key) {
		t.Fatal("HasFullKey after Close")
	}

	s, err = NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	after, err := s.GetACIInfoWithBlobKey(key)
	if err != nil || after.Name != before.Name || !after.ImportTime.Equal(before.ImportTime) || !after.Latest || after.Size != before.Size {
		t.Fatalf("after reopen: %+v, %v (before %+v)", after, err, before)
	}
	if got, err := s.GetACI("example.com/app", types.Labels{{Name: "version", Value: "1"}}); err != nil || got != key {
		t.Fatalf("GetACI after reopen = %q, %v", got, err)
	}
	if r, err := s.GetRemote("https://x/app.aci"); err != nil || r.BlobKey != key {
		t.Fatalf("GetRemote after reopen = %v, %v", r, err)
	}
}

func TestNewStoreErrors(t *testing.T) {
	if _, err := NewStore(""); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("NewStore(\"\") = %v", err)
	}
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, []byte("x"), 0o600)
	if s, err := NewStore(file); err == nil {
		s.Close()
		t.Fatal("NewStore on a regular file succeeded")
	}
}

// TestNewStoreLeavesParentsAlone: the store's modes stop at the store
// directory. Missing parents are made as mkdir -p makes them, and an
// existing parent keeps its mode.
func TestNewStoreLeavesParentsAlone(t *testing.T) {
	base := t.TempDir()
	if err := os.Chmod(base, 0o751); err != nil {
		t.Fatal(err)
	}
	s, err := NewStore(filepath.Join(base, "p1", "p2", "store"))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	// What mkdir -p gives under this process's umask, made beside them.
	if err := os.MkdirAll(filepath.Join(base, "q1", "q2"), 0o777); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ got, want string }{{"p1", "q1"}, {"p1/p2", "q1/q2"}} {
		got, err := os.Stat(filepath.Join(base, c.got))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.Stat(filepath.Join(base, c.want))
		if err != nil {
			t.Fatal(err)
		}
		if got.Mode() != want.Mode() {
			t.Errorf("%s: mode %v, want %v as mkdir -p makes it", c.got, got.Mode(), want.Mode())
		}
	}
	if fi, err := os.Stat(base); err != nil || fi.Mode()&(fs.ModePerm|fs.ModeSetgid) != 0o751 {
		t.Errorf("existing parent: mode %v, %v; want it left at 0751", fi.Mode(), err)
	}
}

func TestFileModes(t *testing.T) {
	s := newTestStore(t)
	key := writeImage(t, s, makeACI(t, "example.com/app"), false)
	rc, err := s.ReadStream(key)
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	for _, d := range []string{"", "blob", "imageManifest", "imagelocks", "db", "tmp", filepath.Dir(s.blobPath(key)), filepath.Dir(s.manifestPath(key))} {
		p := d
		if !filepath.IsAbs(p) {
			p = filepath.Join(s.dir, d)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode()&(fs.ModePerm|fs.ModeSetgid) != dirPerm&(fs.ModePerm|fs.ModeSetgid) {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), dirPerm)
		}
	}
	for _, p := range []string{s.blobPath(key), s.manifestPath(key), filepath.Join(s.lockDir, key), dbPath(s.dir), dbPath(s.dir) + "-wal", dbPath(s.dir) + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != filePerm {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), fs.FileMode(filePerm))
		}
	}
}

func TestDump(t *testing.T) {
	s := newTestStore(t)
	key := writeImage(t, s, readFixture(t, "hello.aci"), false)
	capture := func(hex bool) string {
		t.Helper()
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout := os.Stdout
		os.Stdout = w
		s.Dump(hex)
		os.Stdout = stdout
		w.Close()
		out, _ := io.ReadAll(r)
		return string(out)
	}
	plain := capture(false)
	if !strings.Contains(plain, "blob/"+key+": manifest") || !strings.Contains(plain, `imageManifest/`+key+`: {"acKind":"ImageManifest"`) ||
		strings.Count(plain, "1 total image ID(s)") != 2 {
		t.Fatalf("Dump(false):\n%s", plain)
	}
	if hexOut := capture(true); !strings.Contains(hexOut, key+": 6d616e6966657374") { // "manifest"
		t.Fatalf("Dump(true):\n%s", hexOut)
	}
	// A value that cannot be read is reported, not a panic (rkt panicked).
	os.Remove(s.manifestPath(key))
	os.Mkdir(s.manifestPath(key), 0o700)
	os.WriteFile(filepath.Join(s.manifestPath(key), "x"), nil, 0o600)
	if out := capture(false); !strings.Contains(out, "error:") {
		t.Fatalf("Dump with an unreadable value:\n%s", out)
	}
}

// TestGetACIFollowsRenames: label rows are filed under the image's name;
// WriteACIInfo with a new name moves them.
func TestGetACIFollowsRenames(t *testing.T) {
	s := newTestStore(t)
	key := writeImage(t, s, makeACI(t, "example.com/a", "version=1"), false)
	ai, err := s.GetACIInfoWithBlobKey(key)
	if err != nil {
		t.Fatal(err)
	}
	ai.Name = "example.com/b"
	if err := s.Do(func(tx *sql.Tx) error { return WriteACIInfo(tx, ai) }); err != nil {
		t.Fatal(err)
	}
	v1 := types.Labels{{Name: "version", Value: "1"}}
	if got, err := s.GetACI("example.com/b", v1); err != nil || got != key {
		t.Fatalf("GetACI under the new name = %q, %v", got, err)
	}
	if _, err := s.GetACI("example.com/a", v1); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("GetACI under the old name = %v", err)
	}
}

// TestGetACIQueryPlan guards what keeps GetACI fast at any store size
// without timing it: with a version label the candidates come from one
// range of image_label's primary key, without labels from aciinfo_pick.
func TestGetACIQueryPlan(t *testing.T) {
	s := newTestStore(t)
	plan := func(labels types.Labels) string {
		t.Helper()
		var got []string
		// bestMatch's text, through the same builder, behind EXPLAIN.
		q := &planQuerier{db: s.db.readers, t: t, out: &got}
		bestMatch(q, "example.com/app", labels)
		return strings.Join(got, "; ")
	}
	if p := plan(types.Labels{{Name: "os", Value: "linux"}, {Name: "version", Value: "1"}}); !strings.HasPrefix(p, "SEARCH l0 USING PRIMARY KEY (appname=? AND name=? AND value=?)") {
		t.Errorf("plan with labels: %s", p)
	}
	if p := plan(nil); !strings.HasPrefix(p, "SEARCH a USING COVERING INDEX aciinfo_pick (name=?)") {
		t.Errorf("plan without labels: %s", p)
	}
}

// The point lookups read one B-tree each: HasFullKey the key's index (not
// the row), GetRemote the remote rows kept in their primary key's tree.
func TestLookupQueryPlans(t *testing.T) {
	s := newTestStore(t)
	var got []string
	q := &planQuerier{db: s.db.readers, t: t, out: &got}
	hasACIInfo(q, fakeKey("aa"))
	getRemote(q, "https://example.com/app.aci")
	want := []string{
		"SEARCH aciinfo USING COVERING INDEX sqlite_autoindex_aciinfo_1 (blobkey=?)",
		"SEARCH remote USING PRIMARY KEY (aciurl=?)",
	}
	if !slices.Equal(got, want) {
		t.Errorf("plans:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// planQuerier answers QueryRowContext and QueryContext with no rows, and
// records the query plan of each query.
type planQuerier struct {
	querier
	db  *sql.DB
	t   *testing.T
	out *[]string
}

func (p *planQuerier) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	p.record(ctx, query, args)
	return p.db.QueryContext(ctx, "SELECT NULL WHERE 0")
}

func (p *planQuerier) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	p.record(ctx, query, args)
	return p.db.QueryRowContext(ctx, "SELECT NULL WHERE 0")
}

// record appends the plan of query to p.out, a line per step.
func (p *planQuerier) record(ctx context.Context, query string, args []any) {
	rows, err := p.db.QueryContext(ctx, "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		p.t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, parent, unused int
		var detail string
		rows.Scan(&id, &parent, &unused, &detail)
		*p.out = append(*p.out, detail)
	}
}
