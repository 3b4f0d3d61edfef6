package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// TestImportOCILayout imports an OCI layout directory holding two images:
// a usage error listing both without --image, the key with it, the same
// key again.
func TestImportOCILayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "oci")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"example.com/one:1", "example.com/two:2"} {
		img, err := random.Image(1024, 2)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": ref})); err != nil {
			t.Fatal(err)
		}
	}
	storeDir := t.TempDir()
	imp := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := run(append([]string{"--dir", storeDir, "import"}, args...), strings.NewReader(""), &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	code, out, errOut := imp(dir)
	if code != exitUsage || out != "" || !strings.Contains(errOut, "example.com/one:1") || !strings.Contains(errOut, "example.com/two:2") {
		t.Errorf("no --image: exit %d, stdout %q, stderr %q; want a usage error listing both", code, out, errOut)
	}
	code, key, errOut := imp("--image", "example.com/two:2", dir)
	if code != exitOK || !strings.HasPrefix(key, "sha512-") {
		t.Fatalf("--image: exit %d, stdout %q, stderr %q", code, key, errOut)
	}
	if _, again, _ := imp("--image", "example.com/two:2", dir); again != key {
		t.Errorf("second import printed %q, want %q", again, key)
	}
	var show bytes.Buffer
	if run([]string{"--dir", storeDir, "show", strings.TrimSpace(key)}, strings.NewReader(""), &show, &show) != exitOK ||
		!strings.Contains(show.String(), "example.com/two") {
		t.Errorf("show: %s", show.String())
	}
	if code, _, errOut := imp(t.TempDir()); code != exitFail || !strings.Contains(errOut, "is a directory: give an ACI file") {
		t.Errorf("empty directory: exit %d, %q", code, errOut)
	}
}

// TestImportCompressedArchive imports docker save | gzip: the same key as
// the plain archive; a gzip ACI still goes to WriteACI.
func TestImportCompressedArchive(t *testing.T) {
	dir := t.TempDir()
	img, err := random.Image(2048, 2)
	if err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "image.tar")
	ref, _ := name.NewTag("example.com/zipped:1")
	if err := tarball.WriteToFile(plain, ref, img); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(plain)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(data)
	zw.Close()
	zipped := filepath.Join(dir, "image.tar.gz")
	os.WriteFile(zipped, buf.Bytes(), 0o644)

	storeDir := t.TempDir()
	var out1, out2, errOut bytes.Buffer
	if code := run([]string{"--dir", storeDir, "import", plain}, strings.NewReader(""), &out1, &errOut); code != exitOK {
		t.Fatalf("plain: %d %s", code, errOut.String())
	}
	if code := run([]string{"--dir", storeDir, "import", zipped, "../../testdata/hello.aci.gz"}, strings.NewReader(""), &out2, &errOut); code != exitOK {
		t.Fatalf("gzip: %d %s", code, errOut.String())
	}
	keys := strings.Fields(out2.String())
	if len(keys) != 2 || keys[0] != strings.TrimSpace(out1.String()) {
		t.Errorf("keys %q, want the plain archive's %q first", keys, out1.String())
	}
	tmp, _ := os.ReadDir(filepath.Join(storeDir, "tmp"))
	for _, e := range tmp {
		if e.Type().IsRegular() {
			t.Errorf("left in tmp/: %s", e.Name())
		}
	}
}

// TestImportStdin: docker save IMAGE | imagestore import - gives the key
// the file gives, from a pipe and from a redirected file; an ACI on
// standard input still imports.
func TestImportStdin(t *testing.T) {
	dir := t.TempDir()
	img, err := random.Image(2048, 2)
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(dir, "image.tar")
	ref, _ := name.NewTag("example.com/piped:1")
	if err := tarball.WriteToFile(archive, ref, img); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(archive)
	aci, _ := os.ReadFile("../../testdata/hello.aci")
	storeDir := t.TempDir()
	imp := func(stdin io.Reader, args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := run(append([]string{"--dir", storeDir, "import"}, args...), stdin, &out, &errOut); code != exitOK {
			t.Fatalf("import %v: exit %d: %s", args, code, errOut.String())
		}
		return strings.TrimSpace(out.String())
	}
	want := imp(strings.NewReader(""), archive)
	if got := imp(bytes.NewReader(data), "-"); got != want {
		t.Errorf("from a pipe: %q, want %q", got, want)
	}
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := imp(f, "-"); got != want {
		t.Errorf("from a redirected file: %q, want %q", got, want)
	}
	aciKey := imp(strings.NewReader(""), "../../testdata/hello.aci")
	if got := imp(bytes.NewReader(aci), "-"); got != aciKey {
		t.Errorf("an ACI on stdin: %q, want %q", got, aciKey)
	}
	tmp, _ := os.ReadDir(filepath.Join(storeDir, "tmp"))
	for _, e := range tmp {
		if e.Type().IsRegular() {
			t.Errorf("left in tmp/: %s", e.Name())
		}
	}
}
