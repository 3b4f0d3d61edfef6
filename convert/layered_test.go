package convert

// This file holds the tests of the layered import: every image the
// squashed import is tested with, imported one ACI per layer, rendered
// with its dependencies and compared with the squashed import rendered.

import (
	"archive/tar"
	"bytes"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	mathrand "math/rand"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/appc/spec/schema"
	"github.com/google/go-containerregistry/pkg/v1/random"
	store "github.com/imagestore/imagestore"
	"github.com/imagestore/imagestore/render"
)

// importLayers imports the input at p into s one ACI per layer.
func importLayers(t testing.TB, s *store.Store, p, sel string) ([]string, error) {
	t.Helper()
	src, err := Open(p)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	im, err := src.Image(sel)
	if err != nil {
		return nil, err
	}
	return im.ImportLayers(s, store.ACIFetchInfo{})
}

// renderedTree renders the image key of s with its dependencies, as the
// tree store and extract do, and reads the tree back.
func renderedTree(t testing.TB, s *store.Store, key string) map[string]rec {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "rootfs")
	if _, err := render.Rootfs(s, key, dir, render.Options{}); err != nil {
		t.Fatalf("render %s: %v", key, err)
	}
	return walkTree(t, dir)
}

// checkLayered imports the input at p both ways into s, renders both and
// compares the trees, entry by entry; it returns the layer keys.
func checkLayered(t testing.TB, s *store.Store, p string, layers int) []string {
	t.Helper()
	keys, err := importLayers(t, s, p, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != max(layers, 1) {
		t.Fatalf("%d ACIs for %d layers", len(keys), layers)
	}
	squashed, err := importFile(t, s, p, "")
	if err != nil {
		t.Fatal(err)
	}
	want := renderedTree(t, s, squashed)
	compareTrees(t, renderedTree(t, s, keys[len(keys)-1]), want)
	return keys
}

// layeredCases are stacks aimed at the layered import's own rules, which
// the squashed import's cases leave out (some GNU tar cannot unpack, so
// they are compared with the squashed import only).
var layeredCases = []struct {
	name   string
	layers [][]ent
}{
	{"directory replaced by a file, then by a directory again", [][]ent{
		{dir("d"), file("d/x", "x")},
		{file("d", "now a file")},
		{dir("d"), file("d/y", "y")},
	}},
	{"a lower directory keeps its mode when an upper layer adds to it", [][]ent{
		{{name: "d", typ: tar.TypeDir, mode: 0o700, uid: 7}, file("d/x", "x")},
		{file("d/y", "y"), file("e/f/g", "implied parents")},
	}},
	{"hard link whose first name an upper layer overwrites", [][]ent{
		{file("a", "A"), hardlink("b", "a"), hardlink("c", "a")},
		{file("a", "new A")},
	}},
	{"hard link whose first name an upper layer whites out", [][]ent{
		{file("a", "A"), hardlink("b", "a")},
		{whiteout("a")},
	}},
	{"upper layer links to a lower file", [][]ent{
		{dir("bin"), file("bin/busybox", "BUSYBOX")},
		{hardlink("bin/sh", "bin/busybox"), file("other", "o")},
		{file("top", "t")},
	}},
	{"everything deleted", [][]ent{
		{file("a", "a"), dir("d"), file("d/b", "b")},
		{whiteout("a"), whiteout("d")},
	}},
	{"whiteout of nothing", [][]ent{
		{file("a", "a")},
		{whiteout("nothing"), opaque("nodir")},
	}},
	{"empty layers", [][]ent{
		{}, {file("a", "a")}, {}, {whiteout("a")}, {},
	}},
}

// allCases are the squashed import's cases and the layered import's.
func allCases() []struct {
	name   string
	layers [][]ent
} {
	return append(slices.Clone(flattenCases), layeredCases...)
}

// TestLayeredMatchesSquashed: for every hand-made case and every input
// format, the layered import renders to the squashed import's tree, and
// the layer keys are the same from every format.
func TestLayeredMatchesSquashed(t *testing.T) {
	for _, tc := range allCases() {
		t.Run(tc.name, func(t *testing.T) {
			layers := buildLayers(t, tc.layers)
			img := buildImage(t, gzipLayers, layers...)
			s := newStore(t)
			var first []string
			for _, f := range formats {
				t.Run(f.name, func(t *testing.T) {
					p := f.write(t, t.TempDir(), namedImage{"example.com/test/flatten:1", img})
					keys := checkLayered(t, s, p, len(layers))
					if first == nil {
						first = keys
						return
					}
					// The lower layers are the same ACIs whatever the
					// format; the top carries the image's config, whose
					// imageid a pre-1.10 archive lacks.
					n := len(keys) - 1
					if f.name != "docker-legacy" {
						n++
					}
					if !slices.Equal(keys[:n], first[:n]) {
						t.Errorf("keys differ from %s's:\n%v\n%v", formats[0].name, keys, first)
					}
				})
			}
		})
	}
}

// TestLayeredRandomMatchesSquashed does the same for generated stacks.
func TestLayeredRandomMatchesSquashed(t *testing.T) {
	seeds := 60
	if testing.Short() {
		seeds = 10
	}
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			layers := randomLayers(t, seed)
			img := buildImage(t, []layerKind{plainLayers, gzipLayers, zstdLayers}[seed%3], layers...)
			f := formats[seed%uint64(len(formats))]
			p := f.write(t, t.TempDir(), namedImage{"random:" + fmt.Sprint(seed), img})
			checkLayered(t, newStore(t), p, len(layers))
		})
	}
}

// TestLayeredEveryPrefix: each layer ACI, rendered as the top of its own
// chain, is the squashed image of the layers up to it, so that another
// image built on those layers renders right.
func TestLayeredEveryPrefix(t *testing.T) {
	for _, tc := range allCases() {
		t.Run(tc.name, func(t *testing.T) {
			layers := buildLayers(t, tc.layers)
			s := newStore(t)
			keys, err := importLayers(t, s, writeOCIDir(t, t.TempDir(), namedImage{"x:1", buildImage(t, plainLayers, layers...)}), "")
			if err != nil {
				t.Fatal(err)
			}
			for i := range layers {
				sq, err := importFile(t, s, writeOCIDir(t, t.TempDir(), namedImage{"x:1", buildImage(t, plainLayers, layers[:i+1]...)}), "")
				if err != nil {
					t.Fatal(err)
				}
				compareTrees(t, renderedTree(t, s, keys[i]), renderedTree(t, s, sq))
			}
		})
	}
}

// TestLayeredManifests checks what each layer ACI's manifest says: names
// from the chain, dependencies pinned by the whole SHA-512, the config on
// the top only, whitelists where something was deleted.
func TestLayeredManifests(t *testing.T) {
	base := layerTar(t, dir("etc"), file("etc/a", "a"), file("etc/b", "b"))
	img := buildImage(t, gzipLayers, base, layerTar(t, file("x", "x")), layerTar(t, whiteout("etc/a")))
	s := newStore(t)
	keys, err := importLayers(t, s, writeDocker25(t, t.TempDir(), namedImage{"busybox:1.36", img}), "")
	if err != nil {
		t.Fatal(err)
	}
	diffIDs := must(img.ConfigFile()).RootFS.DiffIDs
	chain := diffIDs[0].String()
	var ms []*schema.ImageManifest
	for i, key := range keys {
		m := must(s.GetImageManifest(key))
		ms = append(ms, m)
		if i > 0 {
			chain = sha256Of([]byte(chain + " " + diffIDs[i].String()))
		}
		if i == len(keys)-1 {
			break
		}
		if got, _ := m.Annotations.Get(annotationChainID); got != chain {
			t.Errorf("layer %d: chainid %s, want %s", i+1, got, chain)
		}
		if got, _ := m.Annotations.Get(annotationDiffID); got != diffIDs[i].String() {
			t.Errorf("layer %d: diffid %s, want %s", i+1, got, diffIDs[i])
		}
		if want := "layer/" + strings.Replace(chain, ":", "-", 1); m.Name.String() != want {
			t.Errorf("layer %d: name %s, want %s", i+1, m.Name, want)
		}
		if len(m.Labels) != 0 || m.App != nil {
			t.Errorf("layer %d: labels %v, app %v: a lower layer has neither", i+1, m.Labels, m.App)
		}
	}
	// The top is the squashed import's manifest, plus the dependency and
	// the whitelist.
	top := ms[len(ms)-1]
	src := must(Open(writeDocker25(t, t.TempDir(), namedImage{"busybox:1.36", img})))
	defer src.Close()
	squashed := *must(src.Image("")).Manifest()
	squashed.Dependencies, squashed.PathWhitelist = top.Dependencies, top.PathWhitelist
	if got, want := mustJSON(top), mustJSON(&squashed); !bytes.Equal(got, want) {
		t.Errorf("top manifest:\n%s\nwant the squashed import's:\n%s", got, want)
	}
	if v, _ := top.GetLabel("version"); v != "1.36" {
		t.Errorf("top: version %q", v)
	}
	for i := 1; i < len(keys); i++ {
		deps := ms[i].Dependencies
		if len(deps) != 1 || deps[0].ImageName != ms[i-1].Name || deps[0].ImageID == nil {
			t.Fatalf("layer %d: dependencies %v", i+1, deps)
		}
		full := sha512Hex(t, s, keys[i-1])
		if deps[0].ImageID.String() != full {
			t.Errorf("layer %d: depends on %s, want the whole %s", i+1, deps[0].ImageID, full)
		}
	}
	if len(ms[0].Dependencies) != 0 {
		t.Errorf("the bottom layer depends on %v", ms[0].Dependencies)
	}
	if len(ms[0].PathWhitelist) != 0 || len(ms[1].PathWhitelist) != 0 {
		t.Errorf("a whitelist before any deletion: %v %v", ms[0].PathWhitelist, ms[1].PathWhitelist)
	}
	if want := []string{"/etc", "/etc/b", "/x"}; !slices.Equal(top.PathWhitelist, want) {
		t.Errorf("top whitelist %v, want %v", top.PathWhitelist, want)
	}
}

func sha512Hex(t testing.TB, s *store.Store, key string) string {
	t.Helper()
	rc := must(s.ReadStream(key))
	defer rc.Close()
	return "sha512-" + hashHex(t, rc)
}

// TestLayeredSharedBase: images built on one base share its ACIs, whatever
// their names or formats, and a re-import writes nothing new.
func TestLayeredSharedBase(t *testing.T) {
	base := layerTar(t, dir("usr"), file("usr/big", strings.Repeat("b", 1<<20)))
	one := buildImage(t, gzipLayers, base, layerTar(t, file("one", "1")))
	two := buildImage(t, zstdLayers, base, layerTar(t, file("two", "2")))
	s := newStore(t)
	k1, err := importLayers(t, s, writeDocker110(t, t.TempDir(), namedImage{"example.com/one:1", one}), "")
	if err != nil {
		t.Fatal(err)
	}
	k2, err := importLayers(t, s, writeOCIArchive(t, t.TempDir(), namedImage{"other.org/two:latest", two}), "")
	if err != nil {
		t.Fatal(err)
	}
	if k1[0] != k2[0] {
		t.Errorf("the shared base is two ACIs: %s, %s", k1[0], k2[0])
	}
	if k1[1] == k2[1] {
		t.Error("two images, one top ACI")
	}
	before := storeFiles(t, s)
	again, err := importLayers(t, s, writeOCIDir(t, t.TempDir(), namedImage{"example.com/one:1", one}), "")
	if err != nil || !slices.Equal(again, k1) {
		t.Fatalf("re-import: %v, %v; want %v", again, err, k1)
	}
	if after := storeFiles(t, s); !maps2Equal(before, after) {
		t.Errorf("the re-import changed the store's files:\n%v\n%v", before, after)
	}
	if n := len(must(s.GetAllACIInfos(nil, true))); n != 3 {
		t.Errorf("%d images stored, want 3", n)
	}
}

// storeFiles lists the blobs and manifests of s with their sizes.
func storeFiles(t testing.TB, s *store.Store) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	tmp := must(s.TmpDir())
	root := filepath.Dir(tmp)
	for _, d := range []string{"blob", "imageManifest"} {
		filepath.WalkDir(filepath.Join(root, d), func(p string, e fs.DirEntry, err error) error {
			if err == nil && e.Type().IsRegular() {
				out[p] = must(e.Info()).Size()
			}
			return err
		})
	}
	return out
}

func maps2Equal(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestLayeredBadInput: every fault of TestBadInput fails the layered
// import too, and the store keeps nothing.
func TestLayeredBadInput(t *testing.T) {
	img := buildImage(t, plainLayers, layerTar(t, file("a", strings.Repeat("x", 2000))), layerTar(t, file("b", "b")))
	cases := map[string]func(t *testing.T) string{
		"missing layer": func(t *testing.T) string {
			p := writeOCIDir(t, t.TempDir(), namedImage{"x:1", img})
			d := must(must(img.Layers())[1].Digest())
			os.Remove(filepath.Join(p, "blobs", d.Algorithm, d.Hex))
			return p
		},
		"digest mismatch": func(t *testing.T) string {
			p := writeOCIDir(t, t.TempDir(), namedImage{"x:1", img})
			d := must(must(img.Layers())[0].Digest())
			lp := filepath.Join(p, "blobs", d.Algorithm, d.Hex)
			b := must(os.ReadFile(lp))
			b[1000] ^= 1
			os.WriteFile(lp, b, 0o644)
			return p
		},
		"entry below a symlink": func(t *testing.T) string {
			bad := buildImage(t, gzipLayers, layerTar(t, symlink("etc", "/tmp")), layerTar(t, file("etc/x", "x")))
			return writeDocker110(t, t.TempDir(), namedImage{"x:1", bad})
		},
	}
	for name, make := range cases {
		t.Run(name, func(t *testing.T) {
			s := newStore(t)
			if keys, err := importLayers(t, s, make(t), ""); err == nil {
				t.Fatalf("imported %v", keys)
			}
			storeIsEmpty(t, s)
		})
	}
}

// TestLayeredFailureWhileStreaming: a layer that changes between the two
// passes fails the import after some layer ACIs were streamed into the
// batch; none of them is stored.
func TestLayeredFailureWhileStreaming(t *testing.T) {
	img := buildImage(t, plainLayers, layerTar(t, file("a", "a")), layerTar(t, file("b", strings.Repeat("x", 1<<20))))
	p := writeOCIDir(t, t.TempDir(), namedImage{"x:1", img})
	src := must(Open(p))
	defer src.Close()
	im := must(src.Image(""))
	plan := must(im.PlanLayers())
	d := must(must(img.Layers())[1].Digest())
	lp := filepath.Join(p, "blobs", d.Algorithm, d.Hex)
	b := must(os.ReadFile(lp))
	b[len(b)/2] ^= 1
	os.WriteFile(lp, b, 0o644)
	s := newStore(t)
	if _, err := plan.Import(s, store.ACIFetchInfo{}); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("got %v, want a digest mismatch", err)
	}
	storeIsEmpty(t, s)
}

// hashHex is the SHA-512 of what r reads, in hex.
func hashHex(t testing.TB, r io.Reader) string {
	t.Helper()
	h := sha512.New()
	if _, err := io.Copy(h, r); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// blobBytes is the size of every file below the store's blob/.
func blobBytes(t testing.TB, s *store.Store) int64 {
	t.Helper()
	var n int64
	for _, size := range storeFiles(t, s) {
		n += size
	}
	for p, size := range storeFiles(t, s) {
		if strings.Contains(p, "/imageManifest/") {
			n -= size
		}
	}
	return n
}

// TestLayeredBaseStoredOnce: three images on one 16 MiB base grow blob/
// by the base once (within 15%) when imported layered, three times when
// squashed.
func TestLayeredBaseStoredOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 100 MiB")
	}
	const baseSize = 16 << 20
	big := make([]byte, baseSize)
	rand.NewChaCha8([32]byte{1}).Read(big)
	base := layerTar(t, dir("usr"), file("usr/base.bin", string(big)), file("etc-release", "base"))
	var ims []namedImage
	for i := range 3 {
		top := layerTar(t, file(fmt.Sprintf("app%d", i), fmt.Sprint("app ", i)), whiteout("etc-release"))
		ims = append(ims, namedImage{fmt.Sprintf("example.com/app%d:1", i), buildImage(t, plainLayers, base, top)})
	}
	p := writeOCIDir(t, t.TempDir(), ims...)
	layered, squashed := newStore(t), newStore(t)
	for _, im := range ims {
		if _, err := importLayers(t, layered, p, im.ref); err != nil {
			t.Fatal(err)
		}
		if _, err := importFile(t, squashed, p, im.ref); err != nil {
			t.Fatal(err)
		}
	}
	l, sq := blobBytes(t, layered), blobBytes(t, squashed)
	t.Logf("blob/ after three images on a %d-byte base: layered %d bytes (%.2f× the base), squashed %d bytes (%.2f×)",
		baseSize, l, float64(l)/baseSize, sq, float64(sq)/baseSize)
	if float64(l) > 1.15*baseSize {
		t.Errorf("layered: %d bytes, more than the base once and 15%%", l)
	}
	if float64(sq) < 2.9*baseSize {
		t.Errorf("squashed: %d bytes, less than three bases: the measure is wrong", sq)
	}
	if n := len(must(layered.GetAllACIInfos(nil, true))); n != 4 {
		t.Errorf("layered: %d images, want the base and three tops", n)
	}
}

// TestLayeredRandomImage does the same for go-containerregistry's random
// images, from every format.
func TestLayeredRandomImage(t *testing.T) {
	img, err := random.Image(4096, 4, random.WithSource(mathrand.NewSource(1)))
	if err != nil {
		t.Fatal(err)
	}
	s := newStore(t)
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			checkLayered(t, s, f.write(t, t.TempDir(), namedImage{"random/image:v1", img}), 4)
		})
	}
}
