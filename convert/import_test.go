package convert

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/appc/spec/schema"
	appc "github.com/appc/spec/schema/types"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	store "github.com/imagestore/imagestore"
)

// sampleImage is a small image with a file, a link and a whiteout.
func sampleImage(t testing.TB, kind layerKind) v1.Image {
	return buildImage(t, kind,
		layerTar(t, dir("etc"), file("etc/hostname", "sample"), file("etc/old", "x"), hardlink("etc/hn", "etc/hostname")),
		layerTar(t, whiteout("etc/old"), file("hello", "hello world\n")),
	)
}

// importFile imports the input at p into s.
func importFile(t testing.TB, s *store.Store, p, sel string) (string, error) {
	t.Helper()
	src, err := Open(p)
	if err != nil {
		return "", err
	}
	defer src.Close()
	im, err := src.Image(sel)
	if err != nil {
		return "", err
	}
	return im.Import(s, store.ACIFetchInfo{})
}

// TestFormatBlindKeys imports one image from every format: one key (the
// pre-1.10 archive has no config digest, so its manifest lacks the
// imageid annotation), and a second import stores nothing new.
func TestFormatBlindKeys(t *testing.T) {
	img := sampleImage(t, gzipLayers)
	s := newStore(t)
	keys := map[string]string{}
	for _, f := range formats {
		p := f.write(t, t.TempDir(), namedImage{"busybox:1.36", img})
		key, err := importFile(t, s, p, "")
		if err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		again, err := importFile(t, s, p, "")
		if err != nil || again != key {
			t.Fatalf("%s: re-import gave %s, %v; want %s", f.name, again, err, key)
		}
		keys[f.name] = key
	}
	for _, f := range formats {
		if f.name != "docker-legacy" && keys[f.name] != keys["oci-dir"] {
			t.Errorf("%s: key %s, oci-dir's %s", f.name, keys[f.name], keys["oci-dir"])
		}
	}
	infos, err := s.GetAllACIInfos(nil, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 2 {
		t.Errorf("%d images stored, want 2 (one, and its legacy twin)", len(infos))
	}
	m1, _ := s.GetImageManifest(keys["oci-dir"])
	m2, _ := s.GetImageManifest(keys["docker-legacy"])
	if m1 == nil || m2 == nil {
		t.Fatal("manifests not found")
	}
	m1.Annotations = slices.DeleteFunc(m1.Annotations, func(a appc.Annotation) bool { return a.Name == annotationImageID })
	if !bytes.Equal(mustJSON(m1), mustJSON(m2)) {
		t.Errorf("legacy manifest differs beyond the imageid:\n%s\n%s", mustJSON(m1), mustJSON(m2))
	}
	// The stored blob reads back as the converter's bytes.
	aci, _ := convertFile(t, formats[0].write(t, t.TempDir(), namedImage{"busybox:1.36", img}), "")
	rc, err := s.ReadStream(keys["oci-dir"])
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(stored, aci) {
		t.Error("the stored ACI differs from the converter's output")
	}
}

func mustJSON(m *schema.ImageManifest) []byte {
	b, err := m.MarshalJSON()
	if err != nil {
		panic(err)
	}
	return b
}

// TestManifestMapping checks the docker2aci mapping on one image.
func TestManifestMapping(t *testing.T) {
	img := sampleImage(t, plainLayers)
	p := writeDocker110(t, t.TempDir(), namedImage{"busybox:1.36", img})
	_, im := convertFile(t, p, "")
	m := im.Manifest()
	cfgName, _ := img.ConfigName()
	check := func(what, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %q, want %q", what, got, want)
		}
	}
	check("name", m.Name.String(), "registry-1.docker.io/library/busybox")
	for k, want := range map[string]string{"version": "1.36", "os": "linux", "arch": "amd64"} {
		got, _ := m.GetLabel(k)
		check("label "+k, got, want)
	}
	for k, want := range map[string]string{
		"author":             "Jane Doe <jane@example.com>",
		"created":            "2024-05-06T07:08:09Z",
		annotationRegistry:   "registry-1.docker.io",
		annotationRepository: "library/busybox",
		annotationTag:        "1.36",
		annotationImageID:    cfgName.String(),
		annotationEntrypoint: `["/bin/sh","-c"]`,
		annotationCmd:        `["echo hi"]`,
	} {
		got, _ := m.Annotations.Get(k)
		check("annotation "+k, got, want)
	}
	if len(m.Annotations) != 8 {
		t.Errorf("%d annotations, want 8: %v", len(m.Annotations), m.Annotations)
	}
	a := m.App
	if a == nil {
		t.Fatal("no app")
	}
	check("exec", strings.Join(a.Exec, "|"), "/bin/sh|-c|echo hi")
	check("user", a.User, "1000")
	check("group", a.Group, "1001")
	check("workingDirectory", a.WorkingDirectory, "/srv")
	check("environment", string(mustMarshal(a.Environment)), `[{"name":"PATH","value":"/usr/bin:/bin"},{"name":"EMPTY","value":""},{"name":"A","value":"b=c"}]`)
	check("ports", string(mustMarshal(a.Ports)), `[{"name":"53-udp","protocol":"udp","port":53,"count":1,"socketActivated":false},{"name":"80-tcp","protocol":"tcp","port":80,"count":1,"socketActivated":false},{"name":"8080","protocol":"tcp","port":8080,"count":1,"socketActivated":false}]`)
	check("mountPoints", string(mustMarshal(a.MountPoints)), `[{"name":"volume-data","path":"/data"},{"name":"volume-var-log","path":"/var/log"}]`)
}

func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(err.Error())
	}
	return b
}

// TestManifestNames checks names, versions and platforms.
func TestManifestNames(t *testing.T) {
	cases := []struct {
		refs                      []string
		os, arch, variant         string
		name, version, aOS, aArch string
	}{
		{[]string{"busybox:1.36"}, "linux", "amd64", "", "registry-1.docker.io/library/busybox", "1.36", "linux", "amd64"},
		{[]string{"docker.io/library/busybox:1.36"}, "linux", "arm64", "v8", "registry-1.docker.io/library/busybox", "1.36", "linux", "aarch64"},
		{[]string{"localhost:5000/multi/one"}, "linux", "arm", "v7", "localhost_5000/multi/one", "latest", "linux", "armv7l"},
		{[]string{"myuser/two:V2.0_rc1"}, "linux", "386", "", "registry-1.docker.io/myuser/two", "V2.0_rc1", "linux", "i386"},
		{[]string{"quay.io/coreos/etcd@sha256:" + strings.Repeat("ab", 32)}, "linux", "riscv64", "", "quay.io/coreos/etcd", "", "", ""},
		{[]string{"latest"}, "linux", "amd64", "", "sha256-" + strings.Repeat("cd", 32), "latest", "linux", "amd64"},
		{nil, "", "", "", "sha256-" + strings.Repeat("cd", 32), "", "", ""},
	}
	for _, tc := range cases {
		cfg := &v1.ConfigFile{OS: tc.os, Architecture: tc.arch, Variant: tc.variant}
		m, err := buildManifest(tc.refs, cfg, "sha256:"+strings.Repeat("cd", 32))
		if err != nil {
			t.Errorf("%v: %v", tc.refs, err)
			continue
		}
		v, _ := m.GetLabel("version")
		o, _ := m.GetLabel("os")
		a, _ := m.GetLabel("arch")
		if m.Name.String() != tc.name || v != tc.version || o != tc.aOS || a != tc.aArch {
			t.Errorf("%v %s/%s/%s: got %s version=%q os=%q arch=%q; want %s %q %q %q",
				tc.refs, tc.os, tc.arch, tc.variant, m.Name, v, o, a, tc.name, tc.version, tc.aOS, tc.aArch)
		}
		if m.App != nil {
			t.Errorf("%v: an app without a command", tc.refs)
		}
	}
	for user, want := range map[string]string{"": "0:0", "nobody": "nobody:nobody", "1:2": "1:2", "www:staff": "www:staff"} {
		app, err := buildApp(v1.Config{Cmd: []string{"x"}, User: user})
		if err != nil || app.User+":"+app.Group != want {
			t.Errorf("user %q: %v %v, want %s", user, app, err, want)
		}
	}
}

// TestSelectImage selects among several images of one input.
func TestSelectImage(t *testing.T) {
	one := sampleImage(t, gzipLayers)
	two := buildImage(t, gzipLayers, layerTar(t, file("two", "2")))
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			p := f.write(t, t.TempDir(), namedImage{"localhost:5000/multi/one:latest", one}, namedImage{"myuser/two:V2.0_rc1", two})
			src, err := Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			_, err = src.Image("")
			var several *SeveralImagesError
			if !errors.As(err, &several) || !errors.Is(err, ErrSeveralImages) || len(several.Images) != 2 {
				t.Fatalf("no selection: %v, want a list of 2 images", err)
			}
			if !strings.Contains(err.Error(), "myuser/two") || !strings.Contains(err.Error(), "one") {
				t.Errorf("the list does not name the images: %v", err)
			}
			im, err := src.Image("myuser/two:V2.0_rc1")
			if err != nil {
				t.Fatal(err)
			}
			if v, _ := im.Manifest().GetLabel("version"); im.Manifest().Name.String() != "registry-1.docker.io/myuser/two" || v != "V2.0_rc1" {
				t.Errorf("selected %s %s", im.Manifest().Name, v)
			}
			if _, err := src.Image("myuser/three"); !errors.Is(err, ErrNoImage) {
				t.Errorf("unknown reference: %v", err)
			}
			if f.name == "docker-legacy" {
				return // no digests in that format
			}
			cfg, _ := one.ConfigName()
			dg := cfg.String()
			if f.name == "oci-dir" || f.name == "oci-archive" || f.name == "docker25" {
				d, _ := one.Digest()
				if f.name == "docker25" {
					d, _ = plainCopy(t, one).Digest()
				}
				dg = d.String()
			}
			im, err = src.Image(dg)
			if err != nil {
				t.Fatalf("select %s: %v", dg, err)
			}
			if im.Manifest().Name.String() != "localhost_5000/multi/one" {
				t.Errorf("selected by digest: %s", im.Manifest().Name)
			}
		})
	}
}

// storeIsEmpty fails when s holds an image or a leftover temp file.
func storeIsEmpty(t testing.TB, s *store.Store) {
	t.Helper()
	infos, err := s.GetAllACIInfos(nil, true)
	if err != nil || len(infos) != 0 {
		t.Errorf("store holds %d images (%v)", len(infos), err)
	}
	tmp, err := s.TmpDir()
	if err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(tmp)
	for _, e := range ents {
		if e.Type().IsRegular() {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

// TestBadInput: each fault is a clear error, and the store keeps nothing.
func TestBadInput(t *testing.T) {
	plain := buildImage(t, plainLayers, layerTar(t, file("a", strings.Repeat("x", 2000))), layerTar(t, file("b", "b")))
	layerPath := func(t *testing.T, dir string, img v1.Image, i int) string {
		ls, _ := img.Layers()
		d, _ := ls[i].Digest()
		return filepath.Join(dir, "blobs", d.Algorithm, d.Hex)
	}
	cases := []struct {
		name string
		make func(t *testing.T) string
		want error
	}{
		{"missing layer", func(t *testing.T) string {
			p := writeOCIDir(t, t.TempDir(), namedImage{"x:1", plain})
			os.Remove(layerPath(t, p, plain, 1))
			return p
		}, ErrMissingBlob},
		{"missing layer in a docker archive", func(t *testing.T) string {
			a := newArchive(t)
			a.addJSON("manifest.json", []map[string]any{{"Config": "c.json", "Layers": []string{"nope/layer.tar"}}})
			a.add("c.json", []byte(`{"rootfs":{"type":"layers","diff_ids":["sha256:`+strings.Repeat("0", 64)+`"]}}`))
			return a.write(filepath.Join(t.TempDir(), "x.tar"))
		}, ErrMissingBlob},
		{"digest mismatch", func(t *testing.T) string {
			p := writeOCIDir(t, t.TempDir(), namedImage{"x:1", plain})
			lp := layerPath(t, p, plain, 0)
			b, _ := os.ReadFile(lp)
			b[1000] ^= 1 // inside a's content: still a valid tar
			os.WriteFile(lp, b, 0o644)
			return p
		}, ErrDigestMismatch},
		{"digest mismatch that breaks the tar", func(t *testing.T) string {
			p := writeOCIDir(t, t.TempDir(), namedImage{"x:1", plain})
			lp := layerPath(t, p, plain, 0)
			b, _ := os.ReadFile(lp)
			copy(b[148:156], "garbage!") // the first header's checksum
			os.WriteFile(lp, b, 0o644)
			return p
		}, ErrDigestMismatch},
		{"diff_id mismatch in a docker 1.10 archive", func(t *testing.T) string {
			bad := mutate.ConfigMediaType(plain, types.OCIConfigJSON)
			cf, _ := bad.ConfigFile()
			cf = cf.DeepCopy()
			cf.RootFS.DiffIDs[1] = cf.RootFS.DiffIDs[0]
			bad, _ = mutate.ConfigFile(bad, cf)
			return writeDocker110(t, t.TempDir(), namedImage{"x:1", bad})
		}, ErrDigestMismatch},
		{"path escaping the root", func(t *testing.T) string {
			img := buildImage(t, gzipLayers, layerTar(t, file("ok", "1"), file("../../evil", "x")))
			return writeOCIArchive(t, t.TempDir(), namedImage{"x:1", img})
		}, ErrUnsafePath},
		{"hard link escaping the root", func(t *testing.T) string {
			img := buildImage(t, gzipLayers, layerTar(t, hardlink("passwd", "../../../etc/passwd")))
			return writeDocker25(t, t.TempDir(), namedImage{"x:1", img})
		}, ErrUnsafePath},
		{"entry below a symlink", func(t *testing.T) string {
			img := buildImage(t, gzipLayers, layerTar(t, symlink("etc", "/tmp")), layerTar(t, file("etc/x", "x")))
			return writeDocker110(t, t.TempDir(), namedImage{"x:1", img})
		}, ErrUnsafePath},
		{"unknown layer media type", func(t *testing.T) string {
			img, _ := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1),
				static.NewLayer(layerTar(t, file("a", "a")), "application/vnd.example.layer.v1+lz4"))
			return writeOCIDir(t, t.TempDir(), namedImage{"x:1", img})
		}, ErrUnsupportedMediaType},
		{"hard link to nothing", func(t *testing.T) string {
			img := buildImage(t, gzipLayers, layerTar(t, hardlink("a", "b")))
			return writeOCIDir(t, t.TempDir(), namedImage{"x:1", img})
		}, ErrInvalidImage},
		{"not an image", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "x.tar")
			os.WriteFile(p, []byte("hello, this is not a tar"), 0o644)
			return p
		}, ErrUnknownFormat},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.make(t)
			s := newStore(t)
			key, err := importFile(t, s, p, "")
			if !errors.Is(err, tc.want) {
				t.Fatalf("got key %q, error %v; want %v", key, err, tc.want)
			}
			t.Log(err)
			storeIsEmpty(t, s)
		})
	}
}

// TestFailureWhileStreaming makes the second pass fail (the layer changes
// after the first): the store's WriteACI fails and keeps nothing.
func TestFailureWhileStreaming(t *testing.T) {
	img := buildImage(t, plainLayers, layerTar(t, file("a", strings.Repeat("x", 4<<20))))
	p := writeOCIDir(t, t.TempDir(), namedImage{"x:1", img})
	src := must(Open(p))
	defer src.Close()
	im := must(src.Image(""))
	plan := must(im.Plan())
	ls, _ := img.Layers()
	d, _ := ls[0].Digest()
	lp := filepath.Join(p, "blobs", d.Algorithm, d.Hex)
	b, _ := os.ReadFile(lp)
	b[3<<20] ^= 1
	os.WriteFile(lp, b, 0o644)
	s := newStore(t)
	if _, err := plan.Import(s, store.ACIFetchInfo{}); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("got %v, want a digest mismatch", err)
	}
	storeIsEmpty(t, s)
}

func TestPipeReaderSeek(t *testing.T) {
	r := &pipeReader{r: bytes.NewReader([]byte("abc"))}
	if pos, err := r.Seek(0, io.SeekStart); pos != 0 || err != nil {
		t.Errorf("seek to the start before reading: %d %v", pos, err)
	}
	io.ReadFull(r, make([]byte, 2))
	if pos, err := r.Seek(0, io.SeekCurrent); pos != 2 || err != nil {
		t.Errorf("where are we: %d %v", pos, err)
	}
	for _, s := range [][2]int64{{0, io.SeekStart}, {1, io.SeekCurrent}, {0, io.SeekEnd}} {
		if _, err := r.Seek(s[0], int(s[1])); err == nil {
			t.Errorf("seek %v succeeded on a pipe", s)
		}
	}
}

// TestStoreStaysFree keeps the core package's import graph free of
// go-containerregistry.
func TestStoreStaysFree(t *testing.T) {
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.Command(gobin, "list", "-deps", "github.com/imagestore/imagestore").CombinedOutput()
	if err != nil {
		t.Skipf("go list: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "go-containerregistry") {
		t.Error("package store depends on go-containerregistry")
	}
	if !strings.Contains(string(out), "github.com/appc/spec") {
		t.Errorf("go list printed no dependencies we know:\n%s", out)
	}
}

// TestProgress: every layer reports both passes, from 0 to its size.
func TestProgress(t *testing.T) {
	img := sampleImage(t, gzipLayers)
	p := writeOCIDir(t, t.TempDir(), namedImage{"x:1", img})
	src := must(Open(p))
	defer src.Close()
	im := must(src.Image(""))
	last := map[string]Progress{}
	im.Progress = func(p Progress) {
		key := p.Pass + " " + string(rune('0'+p.Layer))
		if prev, ok := last[key]; ok && p.Done < prev.Done {
			t.Errorf("%s went back from %d to %d", key, prev.Done, p.Done)
		}
		last[key] = p
	}
	if err := im.Convert(io.Discard); err != nil {
		t.Fatal(err)
	}
	ls, _ := img.Layers()
	for _, pass := range []string{"scan", "write"} {
		for i, l := range ls {
			size, _ := l.Size()
			got := last[pass+" "+string(rune('1'+i))]
			if got.Layers != 2 || got.Total != size || got.Done != size || got.Digest == "" {
				t.Errorf("%s layer %d: last report %+v, want done = total = %d", pass, i+1, got, size)
			}
		}
	}
}

// TestPartialIndex: an index listing platforms whose manifests the layout
// does not hold (docker 25+ saves one platform) offers the one it holds.
func TestPartialIndex(t *testing.T) {
	amd := sampleImage(t, gzipLayers)
	arm := buildImage(t, gzipLayers, layerTar(t, file("arm", "arm")))
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}})
	dir := filepath.Join(t.TempDir(), "oci")
	p := must(layout.Write(dir, empty.Index))
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "example.com/multi:1"})); err != nil {
		t.Fatal(err)
	}
	src := must(Open(dir))
	if n := len(src.Images()); n != 2 {
		t.Fatalf("%d images listed, want 2", n)
	}
	_, err := src.Image("example.com/multi:1")
	var several *SeveralImagesError
	if !errors.As(err, &several) || !strings.Contains(err.Error(), "linux/arm64") {
		t.Errorf("two platforms, no digest: %v", err)
	}
	src.Close()
	armDigest := must(arm.Digest())
	os.Remove(filepath.Join(dir, "blobs", "sha256", armDigest.Hex))
	src = must(Open(dir))
	defer src.Close()
	im, err := src.Image("")
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := im.Manifest().GetLabel("arch"); a != "amd64" || im.Info().Platform != "linux/amd64" {
		t.Errorf("picked %s %s", a, im.Info().Platform)
	}
}

// TestDockerLayerSymlinks: docker 1.10-24 saves a layer that repeats an
// earlier one as a symlink to the earlier layer.tar.
func TestDockerLayerSymlinks(t *testing.T) {
	same := layerTar(t, file("same", "same"))
	img := buildImage(t, plainLayers, same, layerTar(t, whiteout("same")), same)
	p := writeDocker110(t, t.TempDir(), namedImage{"x:1", img})
	ids := v1IDs(t, img, "docker1100")
	in := must(os.Open(p))
	defer in.Close()
	out := filepath.Join(t.TempDir(), "linked.tar")
	f := must(os.Create(out))
	tr, tw := tar.NewReader(in), tar.NewWriter(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == ids[2]+"/layer.tar" {
			h = &tar.Header{Typeflag: tar.TypeSymlink, Name: h.Name, Linkname: "../" + ids[0] + "/layer.tar", ModTime: h.ModTime}
		}
		tw.WriteHeader(h)
		io.Copy(tw, tr)
	}
	tw.Close()
	f.Close()
	aci, _ := convertFile(t, out, "")
	compareTrees(t, aciTree(t, aci), referenceTree(t, uncompressedLayers(t, img)))
	if tree := aciTree(t, aci); tree["same"].sum != sumOf("same") {
		t.Errorf("the repeated layer was not applied: %v", tree)
	}
}
