// Tests of Batch: several images written with one commit, all or none.

package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// storeContents lists the files below blob/ and imageManifest/ and the
// temp files in tmp/ but intents (a failed write leaves the intent of an
// image that was stored before, for recovery to check: unpublishLocked).
func storeContents(t *testing.T, s *Store) []string {
	t.Helper()
	var out []string
	for _, d := range []string{s.blobDir(), s.manifestDir(), s.tmpDir} {
		filepath.WalkDir(d, func(p string, e os.DirEntry, err error) error {
			if err == nil && !e.IsDir() && !strings.HasPrefix(e.Name(), tmpIntentPrefix) {
				out = append(out, p)
			}
			return err
		})
	}
	return out
}

func TestBatchCommit(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	b := s.NewBatch()
	var keys []string
	for i, name := range []string{"example.com/a", "example.com/b", "example.com/c"} {
		key, err := b.Add(bytes.NewReader(makeACI(t, name)), ACIFetchInfo{Latest: i == 2})
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, key)
	}
	again, err := b.Add(bytes.NewReader(gzipBytes(t, makeACI(t, "example.com/a"))), ACIFetchInfo{})
	if err != nil || again != keys[0] {
		t.Fatalf("the same image again: %s, %v; want %s", again, err, keys[0])
	}
	if b.Len() != 3 {
		t.Errorf("Len %d, want 3", b.Len())
	}
	if infos, _ := s.GetAllACIInfos(nil, false); len(infos) != 0 {
		t.Fatalf("%d images visible before the commit", len(infos))
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	for i, key := range keys {
		info, err := s.GetACIInfoWithBlobKey(key)
		if err != nil {
			t.Fatalf("image %d: %v", i, err)
		}
		if info.Latest != (i == 2) {
			t.Errorf("image %d: latest %v", i, info.Latest)
		}
		rc, err := s.ReadStream(key)
		if err != nil {
			t.Fatal(err)
		}
		rc.Close()
		if _, err := s.GetImageManifest(key); err != nil {
			t.Errorf("image %d: manifest: %v", i, err)
		}
	}
	if n := len(storeContents(t, s)); n != 6 {
		t.Errorf("%d files in the store, want 3 blobs and 3 manifests: %v", n, storeContents(t, s))
	}
	if _, err := b.Add(bytes.NewReader(makeACI(t, "example.com/d")), ACIFetchInfo{}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Add after Commit: %v", err)
	}
	if err := b.Commit(); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Commit twice: %v", err)
	}
	if n := len(storeContents(t, s)); n != 6 {
		t.Errorf("the refused Add left %d files", n)
	}
}

func TestBatchDiscard(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	b := s.NewBatch()
	for _, name := range []string{"example.com/a", "example.com/b"} {
		if _, err := b.Add(bytes.NewReader(makeACI(t, name)), ACIFetchInfo{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Add(bytes.NewReader([]byte("not an image")), ACIFetchInfo{}); !errors.Is(err, ErrInvalidImage) {
		t.Errorf("a bad image: %v", err)
	}
	b.Discard()
	b.Discard()
	if files := storeContents(t, s); len(files) != 0 {
		t.Errorf("left behind: %v", files)
	}
	if infos, _ := s.GetAllACIInfos(nil, false); len(infos) != 0 {
		t.Errorf("%d images stored", len(infos))
	}
}

// TestBatchFailsWhole: a failure after some of the batch's files were
// published removes them all; nothing is recorded.
func TestBatchFailsWhole(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	kept := writeImage(t, s, makeACI(t, "example.com/kept"), false)
	b := s.NewBatch()
	for _, name := range []string{"example.com/a", "example.com/b", "example.com/c", "example.com/kept"} {
		if _, err := b.Add(bytes.NewReader(makeACI(t, name)), ACIFetchInfo{}); err != nil {
			t.Fatal(err)
		}
	}
	renamed := 0
	s.setFailpoints(func(name string) {
		if name == "write-manifest-renamed" {
			if renamed++; renamed == 3 {
				panic("disk gone")
			}
		}
	})
	func() {
		defer func() {
			if r := recover(); r != "disk gone" {
				t.Fatalf("recovered %v", r)
			}
		}()
		b.Commit()
	}()
	s.setFailpoints(nil)
	infos, err := s.GetAllACIInfos(nil, false)
	if err != nil || len(infos) != 1 || infos[0].BlobKey != kept {
		t.Fatalf("stored %v, %v; want only the image stored before", infos, err)
	}
	if files := storeContents(t, s); len(files) != 2 {
		t.Errorf("files left: %v; want the first image's blob and manifest", files)
	}
	if _, err := s.ReadStream(kept); err != nil {
		t.Errorf("the image stored before: %v", err)
	}
}
