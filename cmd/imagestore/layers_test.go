package main

// Tests of import --layers and of rm on the layers images share.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// layerCLI runs imagestore on one store directory.
type layerCLI struct {
	t   *testing.T
	dir string
}

func (c layerCLI) run(args ...string) (int, string, string) {
	c.t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(append([]string{"--dir", c.dir, "--quiet"}, args...), strings.NewReader(""), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// ok runs a command that must succeed and returns its output lines.
func (c layerCLI) ok(args ...string) []string {
	c.t.Helper()
	code, out, errOut := c.run(args...)
	if code != exitOK {
		c.t.Fatalf("%v: exit %d, %s", args, code, errOut)
	}
	return strings.Fields(out)
}

// keys lists the stored images' keys.
func (c layerCLI) keys() []string {
	c.t.Helper()
	code, out, errOut := c.run("list", "--json")
	if code != exitOK {
		c.t.Fatalf("list: %d %s", code, errOut)
	}
	var list struct {
		Images []struct {
			Key string `json:"key"`
		} `json:"images"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		c.t.Fatalf("list --json: %v: %s", err, out)
	}
	var keys []string
	for _, l := range list.Images {
		keys = append(keys, l.Key)
	}
	return keys
}

// layerImages writes an OCI layout of two images on one base layer.
func layerImages(t *testing.T) string {
	t.Helper()
	base, err := random.Layer(4096, types.OCILayer)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "oci")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	for i, ref := range []string{"example.com/one:1", "example.com/two:2"} {
		top, err := random.Layer(int64(1000+i), types.OCILayer)
		if err != nil {
			t.Fatal(err)
		}
		img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), base, top)
		if err != nil {
			t.Fatal(err)
		}
		img, err = mutate.Config(img, v1.Config{Cmd: []string{"/bin/true"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": ref})); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// treeOf lists a directory's entries: path, mode, size.
func treeOf(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		size := fi.Size()
		if fi.IsDir() {
			size = 0
		}
		fmt.Fprintf(&b, "%s %v %d\n", rel, fi.Mode(), size)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestImportLayers: --layers prints every layer's key, the image's last;
// two images share their base; extract renders the squashed tree; --json
// lists the layers.
func TestImportLayers(t *testing.T) {
	src := layerImages(t)
	c := layerCLI{t, t.TempDir()}
	one := c.ok("import", "--layers", "--image", "example.com/one:1", src)
	two := c.ok("import", "--layers", "--image", "example.com/two:2", src)
	if len(one) != 2 || len(two) != 2 {
		t.Fatalf("printed %v and %v; want two keys each", one, two)
	}
	if one[0] != two[0] || one[1] == two[1] {
		t.Errorf("keys %v and %v: want one shared base and two tops", one, two)
	}
	if n := len(c.keys()); n != 3 {
		t.Errorf("%d images stored, want 3", n)
	}
	squashed := c.ok("import", "--image", "example.com/one:1", src)
	layered, flat := filepath.Join(t.TempDir(), "l"), filepath.Join(t.TempDir(), "s")
	c.ok("extract", one[1], layered)
	c.ok("extract", squashed[0], flat)
	if got, want := treeOf(t, layered), treeOf(t, flat); got != want || strings.Count(got, "\n") < 3 {
		t.Errorf("layered tree:\n%s\nsquashed tree:\n%s", got, want)
	}
	// The tree store renders the same tree, and verify finds the store
	// sound, rendered tree included.
	rendered := c.ok("render", "-q", one[1])
	if len(rendered) != 1 {
		t.Fatalf("render -q printed %v", rendered)
	}
	if got, want := treeOf(t, rendered[0]), treeOf(t, flat); got != want {
		t.Errorf("rendered tree:\n%s\nsquashed tree:\n%s", got, want)
	}
	c.ok("verify")
	code, out, errOut := c.run("import", "--layers", "--json", "--image", "example.com/one:1", src)
	var j importJSON
	if code != exitOK || json.Unmarshal([]byte(out), &j) != nil || len(j.Imported) != 1 ||
		j.Imported[0].Key != one[1] || len(j.Imported[0].Layers) != 1 || j.Imported[0].Layers[0] != one[0] {
		t.Errorf("--json: exit %d, %s %s", code, out, errOut)
	}
}

// TestRmSharedLayer: rm refuses a base other images use and lists them;
// rm of an image removes its layers that nothing else uses, keeps the
// others; --force removes a base anyway.
func TestRmSharedLayer(t *testing.T) {
	src := layerImages(t)
	c := layerCLI{t, t.TempDir()}
	one := c.ok("import", "--layers", "--image", "example.com/one:1", src)
	two := c.ok("import", "--layers", "--image", "example.com/two:2", src)
	base := one[0]

	code, out, errOut := c.run("rm", base)
	if code != exitFail || out != "" || !strings.Contains(errOut, one[1]) || !strings.Contains(errOut, two[1]) || !strings.Contains(errOut, "--force") {
		t.Errorf("rm of the shared base: exit %d, stdout %q, stderr %q; want a refusal naming both images", code, out, errOut)
	}
	if n := len(c.keys()); n != 3 {
		t.Fatalf("the refused rm left %d images, want 3", n)
	}

	if got := c.ok("rm", one[1]); len(got) != 1 || got[0] != one[1] {
		t.Errorf("rm of image one printed %v, want its key only (the base is still used)", got)
	}
	c.ok("extract", two[1], filepath.Join(t.TempDir(), "two"))

	if got := c.ok("rm", "example.com/two:2"); len(got) != 2 || got[0] != two[1] || got[1] != base {
		t.Errorf("rm of image two printed %v, want its key and then the base's", got)
	}
	if keys := c.keys(); len(keys) != 0 {
		t.Errorf("left: %v", keys)
	}

	// The image, then its base: the base went with the image.
	one = c.ok("import", "--layers", "--image", "example.com/one:1", src)
	if got := c.ok("rm", one[1], one[0]); len(got) != 2 || got[0] != one[1] || got[1] != one[0] {
		t.Errorf("rm of an image and its base printed %v", got)
	}

	one = c.ok("import", "--layers", "--image", "example.com/one:1", src)
	if got := c.ok("rm", "--force", one[0]); len(got) != 1 || got[0] != one[0] {
		t.Errorf("rm --force printed %v", got)
	}
	if code, _, _ := c.run("extract", one[1], filepath.Join(t.TempDir(), "broken")); code != exitFail {
		t.Errorf("extract of an image whose base was forced out: exit %d", code)
	}
}

// TestImportLayersBadInput: a broken image fails as the squashed import
// does: exit 1, nothing stored.
func TestImportLayersBadInput(t *testing.T) {
	src := layerImages(t)
	// Break the layer blobs (the configs and manifests are smaller).
	var blobs []string
	filepath.WalkDir(filepath.Join(src, "blobs"), func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			if fi, _ := e.Info(); fi.Size() > 900 {
				blobs = append(blobs, p)
			}
		}
		return err
	})
	for _, b := range blobs {
		data, _ := os.ReadFile(b)
		data[len(data)/2] ^= 0xff
		os.WriteFile(b, data, 0o644)
	}
	c := layerCLI{t, t.TempDir()}
	code, out, errOut := c.run("import", "--layers", "--image", "example.com/one:1", src)
	if code != exitFail || out != "" || errOut == "" {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 and an error", code, out, errOut)
	}
	if keys := c.keys(); len(keys) != 0 {
		t.Errorf("stored: %v", keys)
	}
	var files []string
	filepath.WalkDir(c.dir, func(p string, e fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(c.dir, p)
		if err == nil && !e.IsDir() && (strings.HasPrefix(rel, "blob/") || strings.HasPrefix(rel, "tmp/") || strings.HasPrefix(rel, "imageManifest/")) {
			files = append(files, p)
		}
		return err
	})
	if len(files) != 0 {
		t.Errorf("left behind: %v", files)
	}
}

// TestGCKeepsLayerOfUsedImage: gc removes unused images, but not the
// layers an image it keeps depends on, even when they were last used
// before it (an image read without being rendered).
func TestGCKeepsLayerOfUsedImage(t *testing.T) {
	src := layerImages(t)
	c := layerCLI{t, t.TempDir()}
	one := c.ok("import", "--layers", "--image", "example.com/one:1", src)
	two := c.ok("import", "--layers", "--image", "example.com/two:2", src)
	time.Sleep(1500 * time.Millisecond)
	c.ok("export", one[1], filepath.Join(t.TempDir(), "one.aci")) // uses the top only
	c.ok("gc", "--grace-period", "1s")
	keys := c.keys()
	slices.Sort(keys)
	want := []string{one[0], one[1]}
	slices.Sort(want)
	if !slices.Equal(keys, want) {
		t.Errorf("after gc: %v; want image one and its base (image two's top, unused, gone: %s)", keys, two[1])
	}
	c.ok("extract", one[1], filepath.Join(t.TempDir(), "one"))
}

// TestImportLayersStdinCompressed: an OCI archive, gzipped, on standard
// input gives the same layer keys as the layout directory.
func TestImportLayersStdinCompressed(t *testing.T) {
	src := layerImages(t)
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	err := filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil || p == src {
			return err
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		h, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		h.Name, _ = filepath.Rel(src, p)
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			_, err = tw.Write(data)
			return err
		}
		return nil
	})
	if err != nil || tw.Close() != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(tarBuf.Bytes())
	zw.Close()

	c := layerCLI{t, t.TempDir()}
	want := c.ok("import", "--layers", "--image", "example.com/two:2", src)
	var stdout, stderr bytes.Buffer
	code := run([]string{"--dir", c.dir, "--quiet", "import", "--layers", "--image", "example.com/two:2", "-"}, bytes.NewReader(gz.Bytes()), &stdout, &stderr)
	if got := strings.Fields(stdout.String()); code != exitOK || !slices.Equal(got, want) {
		t.Errorf("stdin: exit %d, %v, %s; want %v", code, got, stderr.String(), want)
	}
}

// TestRmWithDamagedLayerManifest: rm and gc read every manifest for the
// dependencies; one that cannot be read does not stop them.
func TestRmWithDamagedLayerManifest(t *testing.T) {
	src := layerImages(t)
	c := layerCLI{t, t.TempDir()}
	one := c.ok("import", "--layers", "--image", "example.com/one:1", src)
	two := c.ok("import", "--image", "example.com/two:2", src)
	// The top's files gone, its row left: its manifest cannot be read,
	// from the manifest file or from the blob.
	var victims []string
	filepath.WalkDir(c.dir, func(p string, e fs.DirEntry, err error) error {
		if err == nil && e.Name() == one[1] && !strings.Contains(p, "imagelocks") {
			victims = append(victims, p)
		}
		return err
	})
	if len(victims) != 2 {
		t.Fatalf("files of the top image: %v", victims)
	}
	for _, v := range victims {
		if err := os.Remove(v); err != nil {
			t.Fatal(err)
		}
	}
	if got := c.ok("rm", two[0]); len(got) != 1 || got[0] != two[0] {
		t.Errorf("rm beside a damaged manifest printed %v", got)
	}
	c.ok("gc", "--grace-period", "1h")
}
