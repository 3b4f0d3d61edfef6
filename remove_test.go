// Tests of RemoveACI and what it reports when removal is incomplete.

package store

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestRemoveACI(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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
