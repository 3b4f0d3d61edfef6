// Tests of image manifests: healing a missing, empty or torn manifest file from the blob.

package store

import (
	"bytes"
	"errors"
	"os"
	"testing"
)

// TestManifestRewrittenFromBlob: the manifest file is a copy of the one in
// the blob, written without fsync; a missing, empty or torn one (what a
// power loss can leave) is rewritten from the blob when read.
func TestManifestRewrittenFromBlob(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	key := writeImage(t, s, makeACI(t, "example.com/app", "version=1"), false)
	want, err := os.ReadFile(s.manifestPath(key))
	if err != nil {
		t.Fatal(err)
	}
	for name, damage := range map[string]func(){
		"missing": func() { os.Remove(s.manifestPath(key)) },
		"empty":   func() { os.Truncate(s.manifestPath(key), 0) },
		"torn":    func() { os.Truncate(s.manifestPath(key), int64(len(want)/2)) },
	} {
		damage()
		im, err := s.GetImageManifest(key)
		if err != nil || im.Name != "example.com/app" {
			t.Fatalf("%s: GetImageManifest = %v, %v", name, im, err)
		}
		if got, _ := os.ReadFile(s.manifestPath(key)); !bytes.Equal(got, want) {
			t.Fatalf("%s: manifest file not rewritten: %q", name, got)
		}
		if v := mustVerify(t, s); !v.OK() {
			t.Fatalf("%s: Verify after the rewrite: %v", name, v.Problems)
		}
	}
	// Without a sound blob there is nothing to rewrite from.
	os.Remove(s.manifestPath(key))
	os.Remove(s.blobPath(key))
	if _, err := s.GetImageManifestJSON(key); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("no manifest, no blob: %v", err)
	}
}
