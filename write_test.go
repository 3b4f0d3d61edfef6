// Tests of WriteACI: what it stores, the forms and sizes it reads, what it rejects.

package store

import (
	"bytes"
	"crypto/sha512"
	"errors"
	"io"
	"math/rand"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestWriteACIStoresTarAndManifest(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
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

// TestWriteACIExpectedName: with ACIFetchInfo.Name set, an image named
// otherwise is refused and leaves nothing; the right name is stored.
func TestWriteACIExpectedName(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	img := xzBytes(t, makeACI(t, "example.com/other"))
	key, err := s.WriteACI(bytes.NewReader(img), ACIFetchInfo{Name: "example.com/app"})
	if !errors.Is(err, ErrInvalidImage) || !strings.Contains(err.Error(), `"example.com/other"`) {
		t.Fatalf("WriteACI of a wrongly named image = %q, %v; want ErrInvalidImage naming it", key, err)
	}
	if ais, _ := s.GetAllACIInfos(nil, true); len(ais) != 0 {
		t.Fatalf("rows after a refused write: %v", ais)
	}
	if got := tmpEntries(t, s); len(got) != 0 {
		t.Fatalf("temp files left: %v", got)
	}
	if got := listTree(t, filepath.Join(s.dir, "blob")); len(got) != 1 {
		t.Fatalf("blob/ after a refused write: %v", got)
	}
	if _, err := s.WriteACI(bytes.NewReader(img), ACIFetchInfo{Name: "example.com/other"}); err != nil {
		t.Fatalf("WriteACI with the right name: %v", err)
	}
}

func TestWriteACINilReader(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	if _, err := s.WriteACI(nil, ACIFetchInfo{}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("WriteACI(nil) = %v", err)
	}
}

func TestConcurrentWritesOfOneImage(t *testing.T) {
	t.Parallel()
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
