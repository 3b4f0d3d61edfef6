// Tests of image keys: their format, fixture keys, bad keys at every entry point, HashToKey.

package store

import (
	"bufio"
	"crypto/sha256"
	"crypto/sha512"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFixtureKeys(t *testing.T) {
	t.Parallel()
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

func TestHashToKey(t *testing.T) {
	t.Parallel()
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

func TestBadKeys(t *testing.T) {
	t.Parallel()
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
