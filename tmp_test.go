// Tests of the callers' temporary files: TmpDir, TmpFile, TmpNamedFile.

package store

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTmpFiles(t *testing.T) {
	t.Parallel()
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
