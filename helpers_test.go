// Helpers shared by the tests and benchmarks: test stores and image fixtures.

package store

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/ulikunitz/xz"
)

// newTestStore opens a store in a fresh temporary directory and closes it
// when the test ends. It serves the tests and the benchmarks.
func newTestStore(tb testing.TB) *Store {
	tb.Helper()
	s, err := NewStore(filepath.Join(tb.TempDir(), "store"))
	if err != nil {
		tb.Fatalf("NewStore: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

// manifestJSON returns an image manifest named name with labels given as
// "key=value" strings.
func manifestJSON(name string, labels ...string) []byte {
	type label struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	}
	m := map[string]any{"acKind": "ImageManifest", "acVersion": "0.8.11", "name": name}
	var ls []label
	for _, l := range labels {
		k, v, _ := strings.Cut(l, "=")
		ls = append(ls, label{k, v})
	}
	if ls != nil {
		m["labels"] = ls
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

// tarEntry is one file of a test archive.
type tarEntry struct {
	name string
	body []byte
}

// tarBytes builds an uncompressed tar of entries, in order. It returns its
// error rather than failing a test, so that child processes (which have no
// testing.TB) can build fixtures too; tests call makeTar.
func tarBytes(entries ...tarEntry) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.body)), Typeflag: tar.TypeReg}
		if strings.HasSuffix(e.name, "/") {
			hdr = &tar.Header{Name: e.name, Mode: 0o755, Typeflag: tar.TypeDir}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// makeTar is tarBytes for a test: it fails tb on error.
func makeTar(tb testing.TB, entries ...tarEntry) []byte {
	tb.Helper()
	b, err := tarBytes(entries...)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// aciBytes builds a valid image with a manifest and one rootfs file whose
// content makes the image unique. Child processes call it; tests call
// makeACI.
func aciBytes(name string, labels ...string) ([]byte, error) {
	return tarBytes(
		tarEntry{"manifest", manifestJSON(name, labels...)},
		tarEntry{"rootfs/", nil},
		tarEntry{"rootfs/id", []byte(fmt.Sprintf("%s %v", name, labels))},
	)
}

// makeACI is aciBytes for a test: it fails tb on error.
func makeACI(tb testing.TB, name string, labels ...string) []byte {
	tb.Helper()
	b, err := aciBytes(name, labels...)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// gzipData compresses b with gzip. Child processes call it; tests call
// gzipBytes.
func gzipData(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// gzipBytes is gzipData for a test: it fails tb on error.
func gzipBytes(tb testing.TB, b []byte) []byte {
	tb.Helper()
	z, err := gzipData(b)
	if err != nil {
		tb.Fatal(err)
	}
	return z
}

func xzBytes(tb testing.TB, b []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw, err := xz.NewWriter(&buf)
	if err != nil {
		tb.Fatal(err)
	}
	zw.Write(b)
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// writeImage stores b and returns its key, failing the test on error.
func writeImage(tb testing.TB, s *Store, b []byte, latest bool) string {
	tb.Helper()
	key, err := s.WriteACI(bytes.NewReader(b), ACIFetchInfo{Latest: latest})
	if err != nil {
		tb.Fatalf("WriteACI: %v", err)
	}
	return key
}

// readFixture reads a file from testdata/.
func readFixture(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// listTree returns every path under root (relative), sorted.
func listTree(tb testing.TB, root string) []string {
	tb.Helper()
	var out []string
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out = append(out, rel)
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// tmpEntries lists tmp/ of a store.
func tmpEntries(tb testing.TB, s *Store) []string {
	tb.Helper()
	entries, err := os.ReadDir(s.tmpDir)
	if err != nil {
		tb.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// fakeKey returns a syntactically valid full key starting with prefix.
func fakeKey(prefix string) string {
	return hashPrefix + prefix + strings.Repeat("0", lenHashKey-len(prefix))
}

// keyOf is the key of the uncompressed image tar b.
func keyOf(b []byte) string {
	h := sha512.New()
	h.Write(b)
	return hashToKey(h)
}

func newHasher() hash.Hash { return sha512.New() }

func newPRNG(seed int64) *rand.Rand { return rand.New(rand.NewSource(seed)) }

// readBack reads key's image through ReadStream and checks that it is want.
func readBack(s *Store, key string, want []byte) error {
	rc, err := s.ReadStream(key)
	if err != nil {
		return err
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, want) {
		return fmt.Errorf("read back %s: %d bytes of %d, %v", key, len(got), len(want), err)
	}
	return nil
}

// setFailpoints makes fn the failpoints of s and of its database
// (failpoint.go); nil removes them.
func (s *Store) setFailpoints(fn func(name string)) {
	s.failpoint, s.db.failpoint = fn, fn
}
