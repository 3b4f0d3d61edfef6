// Fuzz tests of WriteACI and ResolveKey.

package store

import (
	"bytes"
	"crypto/sha512"
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"
)

// FuzzWriteACI feeds arbitrary bytes to WriteACI. Whatever the input, it
// must not panic; a refused input leaves no temp file and no row; an
// accepted one reads back as bytes whose hash is its key.
func FuzzWriteACI(f *testing.F) {
	for _, name := range []string{"hello.aci", "hello.aci.gz", "hello.aci.bz2", "hello.aci.xz"} {
		b := readFixture(f, name)
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	img := makeACI(f, "example.com/fuzz", "version=1")
	f.Add(img)
	f.Add(gzipBytes(f, img))
	f.Add(makeTar(f, tarEntry{"manifest", []byte(`{"acKind":"ImageManifest"`)}))
	f.Add([]byte{})
	s := newTestStore(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		before, err := s.GetAllACIInfos(nil, true)
		if err != nil {
			t.Fatal(err)
		}
		key, err := s.WriteACI(bytes.NewReader(in), ACIFetchInfo{})
		if left := tmpEntries(t, s); len(left) != 0 {
			t.Fatalf("temp files left: %v", left)
		}
		if err != nil {
			if after, _ := s.GetAllACIInfos(nil, true); len(after) != len(before) {
				t.Fatalf("a refused input changed the rows: %d -> %d", len(before), len(after))
			}
			return
		}
		rc, err := s.ReadStream(key)
		if err != nil {
			t.Fatal(err)
		}
		h := sha512.New()
		_, err = io.Copy(h, rc)
		rc.Close()
		if err != nil || hashToKey(h) != key {
			t.Fatalf("stored image does not hash to its key %s", key)
		}
		if err := s.RemoveACI(key); err != nil {
			t.Fatal(err)
		}
	})
}

var keyShape = regexp.MustCompile(`^sha512-[0-9a-f]{2,64}$`)

// FuzzResolveKey feeds arbitrary strings to the key parser and to every
// method taking a key: no panic, only the documented errors, and nothing
// but a well-formed key ever resolves.
func FuzzResolveKey(f *testing.F) {
	for _, k := range []string{"", "bogus", "sha512-", "sha512-zz", "sha512-../../x", "sha512-aa", "sha512-AA",
		"sha512-" + strings.Repeat("a", 200), fakeKey("ab"), "sha512-ab\x00", "sha512-ab/.."} {
		f.Add(k)
	}
	s := newTestStore(f)
	known := writeImage(f, s, makeACI(f, "example.com/fuzz"), false)
	f.Fuzz(func(t *testing.T, k string) {
		ck, err := checkKey(k)
		if err == nil && !keyShape.MatchString(ck) {
			t.Fatalf("checkKey(%q) accepted %q", k, ck)
		}
		got, err := s.ResolveKey(k)
		switch {
		case err == nil:
			if got != known {
				t.Fatalf("ResolveKey(%q) = %q", k, got)
			}
		case errors.Is(err, ErrWrongKeyPrefix), errors.Is(err, ErrKeyTooShort), errors.Is(err, ErrInvalidKey),
			errors.Is(err, ErrKeyNotFound), errors.Is(err, ErrAmbiguousKey):
		default:
			t.Fatalf("ResolveKey(%q): undocumented error %v", k, err)
		}
		if s.HasFullKey(k) != (k == known) {
			t.Fatalf("HasFullKey(%q) wrong", k)
		}
		if _, err := s.GetImageManifestJSON(k); (err == nil) != (got == known && got != "") {
			t.Fatalf("GetImageManifestJSON(%q) = %v", k, err)
		}
	})
}
