package rkt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/appc/spec/schema/types"
	store "github.com/imagestore/imagestore"
)

// The store's modes after adoption, whatever rkt left.
const (
	wantDirMode  = fs.ModeDir | fs.ModeSetgid | 0o770
	wantFileMode = fs.FileMode(0o660)
)

// TestAdoptRktFixture adopts the store written by rkt v1.30.0 and checks
// every fact of expected.json against the adopted store. expected.json is
// decoded generically: a fact this test does not know fails it.
func TestAdoptRktFixture(t *testing.T) {
	dir := unpackFixture(t)
	qlSum := fileSum(t, filepath.Join(dir, "db", "ql.db"))
	walSum := fileSum(t, filepath.Join(dir, "db", walName("ql.db")))

	rep, err := Adopt(dir)
	if err != nil {
		t.Fatalf("Adopt: %v", err)
	}
	exp := loadExpected(t)
	if rep.AlreadyAdopted || len(rep.Images) != len(exp.list("images")) || len(rep.Remotes) != len(exp.list("remotes")) ||
		len(rep.FromBlobs) != 0 || len(rep.Corrected) != 0 || len(rep.SkippedImages) != 0 || len(rep.SkippedRemotes) != 0 {
		t.Fatalf("report: %+v, want %d images and %d remotes adopted, nothing else", rep, len(exp.list("images")), len(exp.list("remotes")))
	}
	if got := fileSum(t, filepath.Join(dir, "db", "ql.db")); got != qlSum {
		t.Error("db/ql.db changed")
	}
	if got := fileSum(t, filepath.Join(dir, "db", walName("ql.db"))); got != walSum {
		t.Error("ql's write-ahead log changed")
	}

	s, err := store.NewStore(dir)
	if err != nil {
		t.Fatalf("NewStore after adoption: %v", err)
	}
	checkExpected(t, s, dir, exp)
	vr, err := s.Verify()
	if err != nil {
		t.Fatal(err)
	}
	if !vr.OK() {
		t.Errorf("Verify after adoption: %v", vr.Problems)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// A second adoption finds the store adopted and changes nothing.
	before := snapshot(t, dir)
	rep, err = Adopt(dir)
	if err != nil {
		t.Fatalf("second Adopt: %v", err)
	}
	if !rep.AlreadyAdopted || len(rep.Images)+len(rep.Remotes)+len(rep.FromBlobs) != 0 {
		t.Errorf("second Adopt: %+v, want AlreadyAdopted and nothing else", rep)
	}
	requireUnchanged(t, dir, before)
}

// expected is expected.json, decoded generically.
type expected map[string]any

func loadExpected(tb testing.TB) expected {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, "expected.json"))
	if err != nil {
		tb.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var e expected
	if err := dec.Decode(&e); err != nil {
		tb.Fatal(err)
	}
	return e
}

func (e expected) list(key string) []any {
	l, _ := e[key].([]any)
	return l
}

// fact is one object of expected.json. Every field read is marked, and
// done fails the test for a field nobody read: a fact left unchecked.
type fact struct {
	tb   testing.TB
	what string
	m    map[string]any
	read map[string]bool
}

func newFact(tb testing.TB, what string, v any) *fact {
	m, ok := v.(map[string]any)
	if !ok {
		tb.Fatalf("%s: not an object: %v", what, v)
	}
	return &fact{tb: tb, what: what, m: m, read: map[string]bool{}}
}

func (f *fact) get(k string) any {
	f.tb.Helper()
	v, ok := f.m[k]
	if !ok {
		f.tb.Fatalf("%s: no field %q", f.what, k)
	}
	f.read[k] = true
	return v
}

func (f *fact) str(k string) string {
	f.tb.Helper()
	s, ok := f.get(k).(string)
	if !ok {
		f.tb.Fatalf("%s.%s: not a string", f.what, k)
	}
	return s
}

func (f *fact) boolean(k string) bool {
	f.tb.Helper()
	b, ok := f.get(k).(bool)
	if !ok {
		f.tb.Fatalf("%s.%s: not a bool", f.what, k)
	}
	return b
}

func (f *fact) int(k string) int64 {
	f.tb.Helper()
	n, ok := f.get(k).(json.Number)
	if !ok {
		f.tb.Fatalf("%s.%s: not a number", f.what, k)
	}
	i, err := n.Int64()
	if err != nil {
		f.tb.Fatal(err)
	}
	return i
}

func (f *fact) time(k string) time.Time {
	f.tb.Helper()
	t, err := time.Parse(time.RFC3339Nano, f.str(k))
	if err != nil {
		f.tb.Fatalf("%s.%s: %v", f.what, k, err)
	}
	return t
}

func (f *fact) labels(k string) types.Labels {
	f.tb.Helper()
	l, ok := f.get(k).([]any)
	if !ok {
		f.tb.Fatalf("%s.%s: not a list", f.what, k)
	}
	out := types.Labels{}
	for i, v := range l {
		lf := newFact(f.tb, fmt.Sprintf("%s.%s[%d]", f.what, k, i), v)
		out = append(out, types.Label{Name: types.ACIdentifier(lf.str("name")), Value: lf.str("value")})
		lf.done()
	}
	return out
}

func (f *fact) strings(k string) []string {
	f.tb.Helper()
	l, ok := f.get(k).([]any)
	if !ok {
		f.tb.Fatalf("%s.%s: not a list", f.what, k)
	}
	out := []string{}
	for _, v := range l {
		s, ok := v.(string)
		if !ok {
			f.tb.Fatalf("%s.%s: not a list of strings", f.what, k)
		}
		out = append(out, s)
	}
	return out
}

func (f *fact) done() {
	f.tb.Helper()
	for k := range f.m {
		if !f.read[k] {
			f.tb.Errorf("%s: field %q is not checked by this test", f.what, k)
		}
	}
}

// checkExpected checks every fact of expected.json against the store s in
// dir.
func checkExpected(t *testing.T, s *store.Store, dir string, e expected) {
	t.Helper()
	checked := map[string]bool{}
	for _, section := range []struct {
		key   string
		check func(*testing.T, *store.Store, string, []any)
	}{
		{"images", checkImages},
		{"remotes", checkRemotes},
		{"getACI", checkGetACI},
		{"resolveName", checkResolveName},
		{"removed", checkRemoved},
		{"files", checkFiles},
	} {
		l := e.list(section.key)
		if len(l) == 0 {
			t.Errorf("expected.json: no %s", section.key)
		}
		t.Run(section.key, func(t *testing.T) { section.check(t, s, dir, l) })
		checked[section.key] = true
	}
	// What describes the fixture rather than the store.
	for _, k := range []string{"comment", "rkt", "set", "seed", "tz", "operations"} {
		checked[k] = true
	}
	if v := e["rkt"].(map[string]any)["dbVersion"]; v != fmt.Sprint(SchemaVersion) {
		t.Errorf("fixture written at rkt schema version %v, this package reads %d", v, SchemaVersion)
	}
	for k := range e {
		if !checked[k] {
			t.Errorf("expected.json: section %q is not checked by this test", k)
		}
	}
}

func checkImages(t *testing.T, s *store.Store, _ string, images []any) {
	all, err := s.GetAllACIInfos([]string{"importtime"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(images) {
		t.Errorf("GetAllACIInfos: %d images, want %d", len(all), len(images))
	}
	for i, v := range images {
		f := newFact(t, fmt.Sprintf("images[%d]", i), v)
		key := f.str("key")
		want := store.ACIInfo{
			BlobKey: key, Name: f.str("name"), ImportTime: f.time("importTime"), LastUsed: f.time("lastUsed"),
			Latest: f.boolean("latest"), Size: f.int("size"), TreeStoreSize: f.int("treeStoreSize"),
		}
		got, err := s.GetACIInfoWithBlobKey(key)
		if err != nil {
			t.Errorf("GetACIInfoWithBlobKey(%s): %v", key, err)
			continue
		}
		if !sameACIInfo(got, &want) {
			t.Errorf("ACIInfo of %s:\n got %+v\nwant %+v", key, *got, want)
		}
		// expected.json lists the images as GetAllACIInfos(["importtime"], true) did.
		if i < len(all) && !sameACIInfo(all[i], &want) {
			t.Errorf("GetAllACIInfos(importtime)[%d] = %+v, want %+v", i, *all[i], want)
		}
		if k, err := s.ResolveKey(key[:19]); err != nil || k != key {
			t.Errorf("ResolveKey(%s) = %q, %v", key[:19], k, err)
		}
		if !s.HasFullKey(key) {
			t.Errorf("HasFullKey(%s) false", key)
		}
		imj, err := s.GetImageManifestJSON(key)
		if err != nil || string(imj) != f.str("manifestJSON") {
			t.Errorf("manifest JSON of %s:\n got %s (%v)\nwant %s", key, imj, err, f.str("manifestJSON"))
		}
		im, err := s.GetImageManifest(key)
		if err != nil {
			t.Errorf("GetImageManifest(%s): %v", key, err)
		} else {
			if im.Name.String() != want.Name {
				t.Errorf("manifest name of %s: %s, want %s", key, im.Name, want.Name)
			}
			if labels := f.labels("labels"); !reflect.DeepEqual(im.Labels, labels) {
				t.Errorf("labels of %s: %v, want %v", key, im.Labels, labels)
			}
		}
		// What WriteACI was given (tar, gzip, ...): the blob is the
		// uncompressed tar whatever it was, so nothing of it is left to
		// compare but its form.
		for _, format := range f.strings("inputFormats") {
			switch format {
			case "tar", "gzip", "bzip2", "xz":
			default:
				t.Errorf("%s: unknown input format %q", key, format)
			}
		}
		f.done()
	}
}

func sameACIInfo(a, b *store.ACIInfo) bool {
	return a.BlobKey == b.BlobKey && a.Name == b.Name && a.ImportTime.Equal(b.ImportTime) &&
		a.LastUsed.Equal(b.LastUsed) && a.Latest == b.Latest && a.Size == b.Size && a.TreeStoreSize == b.TreeStoreSize
}

func sameRemote(a, b *store.Remote) bool {
	return a.ACIURL == b.ACIURL && a.SigURL == b.SigURL && a.ETag == b.ETag && a.BlobKey == b.BlobKey &&
		a.CacheMaxAge == b.CacheMaxAge && a.DownloadTime.Equal(b.DownloadTime)
}

func checkRemotes(t *testing.T, s *store.Store, _ string, remotes []any) {
	all, err := s.GetAllRemotes()
	if err != nil {
		t.Fatal(err)
	}
	byURL := map[string]*store.Remote{}
	for _, r := range all {
		byURL[r.ACIURL] = r
	}
	if len(all) != len(remotes) {
		t.Errorf("GetAllRemotes: %d remotes, want %d", len(all), len(remotes))
	}
	for i, v := range remotes {
		f := newFact(t, fmt.Sprintf("remotes[%d]", i), v)
		want := store.Remote{
			ACIURL: f.str("aciURL"), SigURL: f.str("sigURL"), ETag: f.str("etag"), BlobKey: f.str("blobKey"),
			CacheMaxAge: int(f.int("cacheMaxAge")), DownloadTime: f.time("downloadTime"),
		}
		f.done()
		got, err := s.GetRemote(want.ACIURL)
		if err != nil {
			t.Errorf("GetRemote(%s): %v", want.ACIURL, err)
			continue
		}
		if !sameRemote(got, &want) {
			t.Errorf("GetRemote(%s):\n got %+v\nwant %+v", want.ACIURL, *got, want)
		}
		if r := byURL[want.ACIURL]; r == nil || !sameRemote(r, &want) {
			t.Errorf("GetAllRemotes has %+v for %s, want %+v", r, want.ACIURL, want)
		}
	}
}

func checkGetACI(t *testing.T, s *store.Store, _ string, queries []any) {
	for i, v := range queries {
		f := newFact(t, fmt.Sprintf("getACI[%d]", i), v)
		name, labels := f.str("name"), f.labels("labels")
		wantKey, notFound := f.str("key"), f.boolean("notFound")
		f.done()
		key, err := s.GetACI(types.ACIdentifier(name), labels)
		var nf store.ACINotFoundError
		switch {
		case notFound && !errors.As(err, &nf):
			t.Errorf("GetACI(%s, %v) = %q, %v; want an ACINotFoundError", name, labels, key, err)
		case !notFound && (err != nil || key != wantKey):
			t.Errorf("GetACI(%s, %v) = %q, %v; want %s", name, labels, key, err, wantKey)
		}
	}
}

func checkResolveName(t *testing.T, s *store.Store, _ string, names []any) {
	for i, v := range names {
		f := newFact(t, fmt.Sprintf("resolveName[%d]", i), v)
		name, want, wantFound := f.str("name"), f.strings("keys"), f.boolean("found")
		f.done()
		keys, found, err := s.ResolveName(name)
		if err != nil {
			t.Errorf("ResolveName(%s): %v", name, err)
			continue
		}
		got := append([]string{}, keys...)
		sort.Strings(got)
		if found != wantFound || !reflect.DeepEqual(got, want) {
			t.Errorf("ResolveName(%s) = %v, %v; want %v, %v", name, got, found, want, wantFound)
		}
	}
}

func checkRemoved(t *testing.T, s *store.Store, dir string, removed []any) {
	for i, v := range removed {
		f := newFact(t, fmt.Sprintf("removed[%d]", i), v)
		key, name := f.str("key"), f.str("name")
		f.done()
		if s.HasFullKey(key) {
			t.Errorf("removed image %s is back", key)
		}
		if _, err := s.GetACIInfoWithBlobKey(key); !errors.Is(err, store.ErrKeyNotFound) {
			t.Errorf("GetACIInfoWithBlobKey(removed %s): %v, want ErrKeyNotFound", key, err)
		}
		if _, err := s.ResolveKey(key); !errors.Is(err, store.ErrKeyNotFound) {
			t.Errorf("ResolveKey(removed %s): %v, want ErrKeyNotFound", key, err)
		}
		keys, _, err := s.ResolveName(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if k == key {
				t.Errorf("ResolveName(%s) lists removed %s", name, key)
			}
		}
		remotes, err := s.GetAllRemotes()
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range remotes {
			if r.BlobKey == key {
				t.Errorf("remote %s points at removed %s", r.ACIURL, key)
			}
		}
		for _, sub := range []string{"blob", "imageManifest"} {
			p := filepath.Join(dir, sub, "sha512", key[7:9], key)
			if _, err := os.Lstat(p); !isNotExist(err) {
				t.Errorf("removed image has %s: %v", p, err)
			}
		}
	}
}

// checkFiles checks that every file rkt left is still there, with its
// size (and so, for ql.db, its bytes: checked by the caller), and that
// every file and directory has the store's mode now. The only files
// adoption adds are the new database and its write lock (and, as the store
// is open, SQLite's -wal and -shm files).
func checkFiles(t *testing.T, _ *store.Store, dir string, files []any) {
	listed := map[string]bool{}
	for i, v := range files {
		f := newFact(t, fmt.Sprintf("files[%d]", i), v)
		p, rktMode, size := f.str("path"), f.str("mode"), f.int("size")
		f.done()
		listed[p] = true
		fi, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(p)))
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		isDir := strings.HasPrefix(rktMode, "d")
		switch {
		case isDir != fi.IsDir():
			t.Errorf("%s: mode %v, rkt had %s", p, fi.Mode(), rktMode)
		case isDir && fi.Mode() != wantDirMode:
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), wantDirMode)
		case !isDir && fi.Mode() != wantFileMode:
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), wantFileMode)
		case !isDir && fi.Size() != size:
			t.Errorf("%s: %d bytes, rkt left %d", p, fi.Size(), size)
		}
	}
	var added []string
	for p, st := range snapshot(t, dir) {
		if listed[p] {
			continue
		}
		added = append(added, p)
		if st.Mode.IsDir() && st.Mode != wantDirMode || st.Mode.IsRegular() && st.Mode != wantFileMode {
			t.Errorf("%s: mode %v", p, st.Mode)
		}
	}
	sort.Strings(added)
	if want := []string{"db/reserve", "db/store.db", "db/store.db-shm", "db/store.db-wal", "db/write.lock"}; !reflect.DeepEqual(added, want) {
		t.Errorf("adoption added %v, want %v", added, want)
	}
}
