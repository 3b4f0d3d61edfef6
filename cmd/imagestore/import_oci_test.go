package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
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
