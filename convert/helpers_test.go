package convert

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/compression"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	store "github.com/imagestore/imagestore"
)

// ent is one entry of a hand-made layer.
type ent struct {
	name string
	typ  byte // tar.TypeReg when 0
	body string
	link string
	mode int64
	uid  int
}

func file(name, body string) ent       { return ent{name: name, body: body} }
func dir(name string) ent              { return ent{name: name, typ: tar.TypeDir} }
func symlink(name, target string) ent  { return ent{name: name, typ: tar.TypeSymlink, link: target} }
func hardlink(name, target string) ent { return ent{name: name, typ: tar.TypeLink, link: target} }
func whiteout(p string) ent            { return file(path.Join(path.Dir(p), ".wh."+path.Base(p)), "") }
func opaque(d string) ent              { return file(path.Join(d, ".wh..wh..opq"), "") }

var testTime = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

// layerTar builds an uncompressed layer.
func layerTar(t testing.TB, entries ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode, Uid: e.uid, Gid: e.uid,
			ModTime: testTime.Add(time.Duration(i) * time.Second), Uname: "someone", Format: tar.FormatPAX}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if h.Typeflag == tar.TypeXGlobalHeader {
			h = &tar.Header{Typeflag: h.Typeflag, Name: e.name, PAXRecords: map[string]string{"comment": "made by a test"}}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil && h.Size > 0 {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// layerKind says how a test image's layers are stored.
type layerKind int

const (
	plainLayers layerKind = iota
	gzipLayers
	zstdLayers
)

// testConfig is the config of the test images.
func testConfig() v1.Config {
	return v1.Config{
		Entrypoint:   []string{"/bin/sh", "-c"},
		Cmd:          []string{"echo hi"},
		User:         "1000:1001",
		Env:          []string{"PATH=/usr/bin:/bin", "EMPTY=", "A=b=c"},
		WorkingDir:   "/srv",
		ExposedPorts: map[string]struct{}{"80/tcp": {}, "53/udp": {}, "8080": {}},
		Volumes:      map[string]struct{}{"/data": {}, "/var/log": {}},
		Labels:       map[string]string{"x": "y"},
	}
}

// buildImage makes an image of the given uncompressed layers.
func buildImage(t testing.TB, kind layerKind, layers ...[]byte) v1.Image {
	t.Helper()
	var ls []v1.Layer
	for _, b := range layers {
		b := b
		var l v1.Layer
		var err error
		switch kind {
		case plainLayers:
			l = static.NewLayer(b, types.OCIUncompressedLayer)
		case gzipLayers:
			l, err = tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
				tarball.WithMediaType(types.OCILayer))
		case zstdLayers:
			l, err = tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
				tarball.WithCompression(compression.ZStd), tarball.WithMediaType(types.OCILayerZStd))
		}
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), ls...)
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Author = "Jane Doe <jane@example.com>"
	cf.Created = v1.Time{Time: testTime}
	cf.Config = testConfig()
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// namedImage is an image with the reference it is saved under.
type namedImage struct {
	ref string // "" for none
	img v1.Image
}

// The input formats the tests write.
type format struct {
	name  string
	write func(t testing.TB, dst string, ims ...namedImage) string // returns the input's path
}

var formats = []format{
	{"oci-dir", writeOCIDir},
	{"oci-archive", writeOCIArchive},
	{"docker25", writeDocker25},
	{"docker1.10", writeDocker110},
	{"gcr-tarball", writeGCRTarball},
	{"docker-legacy", writeDockerLegacy},
}

// must returns v, or panics (failing the test with a stack) on a setup
// error; only for test fixtures.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func writeOCIDir(t testing.TB, dst string, ims ...namedImage) string {
	t.Helper()
	dir := filepath.Join(dst, "oci")
	p := must(layout.Write(dir, empty.Index))
	for _, im := range ims {
		var opts []layout.Option
		if im.ref != "" {
			opts = append(opts, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": im.ref}))
		}
		if err := p.AppendImage(im.img, opts...); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func writeOCIArchive(t testing.TB, dst string, ims ...namedImage) string {
	t.Helper()
	dir := writeOCIDir(t, dst, ims...)
	out := filepath.Join(dst, "oci.tar")
	tarDir(t, dir, out)
	return out
}

// tarDir archives a directory the way tar(1) would, in sorted order.
func tarDir(t testing.TB, dir, out string) {
	t.Helper()
	f := must(os.Create(out))
	defer f.Close()
	tw := tar.NewWriter(f)
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel := must(filepath.Rel(dir, p))
		h := must(tar.FileInfoHeader(fi, ""))
		h.Name = filepath.ToSlash(rel)
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			data := must(os.ReadFile(p))
			_, err = tw.Write(data)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

// archive builds a tar of named files in order.
type archive struct {
	t     testing.TB
	names []string
	files map[string][]byte
}

func newArchive(t testing.TB) *archive { return &archive{t: t, files: map[string][]byte{}} }

func (a *archive) add(name string, data []byte) {
	if _, ok := a.files[name]; !ok {
		a.names = append(a.names, name)
	}
	a.files[name] = data
}

func (a *archive) addJSON(name string, v any) { a.add(name, must(json.Marshal(v))) }

func (a *archive) write(out string) string {
	a.t.Helper()
	f := must(os.Create(out))
	defer f.Close()
	tw := tar.NewWriter(f)
	dirs := map[string]bool{}
	for _, n := range a.names {
		if d := path.Dir(n); d != "." && !dirs[d] {
			dirs[d] = true
			tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: testTime})
		}
		data := a.files[n]
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: n, Mode: 0o644, Size: int64(len(data)), ModTime: testTime}); err != nil {
			a.t.Fatal(err)
		}
		tw.Write(data)
	}
	if err := tw.Close(); err != nil {
		a.t.Fatal(err)
	}
	return out
}

func uncompressedLayers(t testing.TB, img v1.Image) [][]byte {
	t.Helper()
	var out [][]byte
	for _, l := range must(img.Layers()) {
		rc := must(l.Uncompressed())
		out = append(out, must(io.ReadAll(rc)))
		rc.Close()
	}
	return out
}

func hexOf(h v1.Hash) string { return h.Hex }

// writeDocker25 writes what docker 25+ saves: an OCI layout with
// uncompressed layers, containerd's name annotations, and manifest.json.
func writeDocker25(t testing.TB, dst string, ims ...namedImage) string {
	t.Helper()
	a := newArchive(t)
	a.add("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	var index v1.IndexManifest
	index.SchemaVersion = 2
	index.MediaType = types.OCIImageIndex
	var manifest tarball.Manifest
	for _, im := range ims {
		img := plainCopy(t, im.img)
		rawCfg := must(img.RawConfigFile())
		cfgName := must(img.ConfigName())
		a.add("blobs/sha256/"+cfgName.Hex, rawCfg)
		d := tarball.Descriptor{Config: "blobs/sha256/" + cfgName.Hex}
		for _, l := range must(img.Layers()) {
			dg := must(l.Digest())
			rc := must(l.Compressed())
			a.add("blobs/sha256/"+dg.Hex, must(io.ReadAll(rc)))
			d.Layers = append(d.Layers, "blobs/sha256/"+dg.Hex)
		}
		raw := must(img.RawManifest())
		mdg := must(img.Digest())
		a.add("blobs/sha256/"+mdg.Hex, raw)
		desc := v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: mdg, Size: int64(len(raw))}
		if im.ref != "" {
			ref := must(name.NewTag(im.ref, name.WeakValidation))
			desc.Annotations = map[string]string{
				"io.containerd.image.name":          strings.Replace(ref.Name(), name.DefaultRegistry, "docker.io", 1),
				"org.opencontainers.image.ref.name": ref.TagStr(),
			}
			d.RepoTags = []string{im.ref}
		}
		index.Manifests = append(index.Manifests, desc)
		manifest = append(manifest, d)
	}
	a.addJSON("index.json", index)
	a.addJSON("manifest.json", manifest)
	return a.write(filepath.Join(dst, "docker25.tar"))
}

// plainCopy is img with uncompressed layers (as docker saves them).
func plainCopy(t testing.TB, img v1.Image) v1.Image {
	t.Helper()
	cf := must(img.ConfigFile())
	var ls []v1.Layer
	for _, b := range uncompressedLayers(t, img) {
		ls = append(ls, static.NewLayer(b, types.OCIUncompressedLayer))
	}
	out := must(mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), ls...))
	out = mutate.ConfigMediaType(out, types.OCIConfigJSON)
	return must(mutate.ConfigFile(out, cf))
}

// v1IDs makes docker 1.10-24's v1 layer IDs: any stable hex per layer.
func v1IDs(t testing.TB, img v1.Image, salt string) []string {
	var ids []string
	for i, l := range must(img.Layers()) {
		d := must(l.DiffID())
		ids = append(ids, sha256Of([]byte(fmt.Sprint(salt, i, d)))[7:])
	}
	return ids
}

// v1JSON is the <id>/json docker writes for layer i of ids: the chain,
// and on the top layer the image's config.
func v1JSON(cf *v1.ConfigFile, ids []string, i int) map[string]any {
	j := map[string]any{"id": ids[i], "created": cf.Created, "container_config": map[string]any{}, "os": cf.OS}
	if i > 0 {
		j["parent"] = ids[i-1]
	}
	if i == len(ids)-1 {
		j["config"], j["architecture"], j["author"] = cf.Config, cf.Architecture, cf.Author
	}
	return j
}

// writeDocker110 writes what docker 1.10-24 saved: manifest.json,
// <config>.json, <id>/layer.tar, <id>/json and a repositories file.
func writeDocker110(t testing.TB, dst string, ims ...namedImage) string {
	t.Helper()
	a := newArchive(t)
	var manifest tarball.Manifest
	repos := map[string]map[string]string{}
	for n, im := range ims {
		rawCfg := must(im.img.RawConfigFile())
		cfgName := must(im.img.ConfigName())
		a.add(cfgName.Hex+".json", rawCfg)
		d := tarball.Descriptor{Config: cfgName.Hex + ".json"}
		ids := v1IDs(t, im.img, fmt.Sprint("docker110", n))
		cf := must(im.img.ConfigFile())
		for i, b := range uncompressedLayers(t, im.img) {
			a.add(ids[i]+"/VERSION", []byte("1.0"))
			a.addJSON(ids[i]+"/json", v1JSON(cf, ids, i))
			a.add(ids[i]+"/layer.tar", b)
			d.Layers = append(d.Layers, ids[i]+"/layer.tar")
		}
		if im.ref != "" {
			d.RepoTags = []string{im.ref}
			tag := must(name.NewTag(im.ref, name.WeakValidation))
			repo := strings.TrimSuffix(im.ref, ":"+tag.TagStr())
			if repos[repo] == nil {
				repos[repo] = map[string]string{}
			}
			repos[repo][tag.TagStr()] = ids[len(ids)-1]
		}
		manifest = append(manifest, d)
	}
	a.addJSON("manifest.json", manifest)
	a.addJSON("repositories", repos)
	return a.write(filepath.Join(dst, "docker110.tar"))
}

// writeGCRTarball writes go-containerregistry's own docker archive
// (compressed layers named by digest).
func writeGCRTarball(t testing.TB, dst string, ims ...namedImage) string {
	t.Helper()
	out := filepath.Join(dst, "gcr.tar")
	refs := map[name.Reference]v1.Image{}
	for i, im := range ims {
		r := im.ref
		if r == "" {
			r = fmt.Sprintf("unnamed/image%d:latest", i) // gcr's writer needs a name
		}
		refs[must(name.NewTag(r, name.WeakValidation))] = im.img
	}
	f := must(os.Create(out))
	defer f.Close()
	if err := tarball.MultiRefWrite(refs, f); err != nil {
		t.Fatal(err)
	}
	return out
}

// writeDockerLegacy writes a pre-1.10 docker archive: repositories and
// <id>/{json,layer.tar,VERSION}, the top layer's json carrying the config.
func writeDockerLegacy(t testing.TB, dst string, ims ...namedImage) string {
	t.Helper()
	a := newArchive(t)
	repos := map[string]map[string]string{}
	for n, im := range ims {
		cf := must(im.img.ConfigFile())
		ids := v1IDs(t, im.img, fmt.Sprint("legacy", n))
		for i, b := range uncompressedLayers(t, im.img) {
			a.add(ids[i]+"/VERSION", []byte("1.0"))
			a.addJSON(ids[i]+"/json", v1JSON(cf, ids, i))
			a.add(ids[i]+"/layer.tar", b)
		}
		r := im.ref
		if r == "" {
			r = fmt.Sprintf("unnamed/image%d:latest", n)
		}
		tag := must(name.NewTag(r, name.WeakValidation))
		repo := strings.TrimSuffix(r, ":"+tag.TagStr())
		if repos[repo] == nil {
			repos[repo] = map[string]string{}
		}
		repos[repo][tag.TagStr()] = ids[len(ids)-1]
	}
	a.addJSON("repositories", repos)
	return a.write(filepath.Join(dst, "legacy.tar"))
}

// newStore opens a store in a temp directory.
func newStore(t testing.TB) *store.Store {
	t.Helper()
	s := must(store.NewStore(t.TempDir()))
	t.Cleanup(func() { s.Close() })
	return s
}

// convertFile converts the input at p (selecting sel) to ACI bytes.
func convertFile(t testing.TB, p, sel string) ([]byte, *Image) {
	t.Helper()
	src := must(Open(p))
	defer src.Close()
	im := must(src.Image(sel))
	var buf bytes.Buffer
	if err := im.Convert(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), im
}
