package convert

import (
	"archive/tar"
	"fmt"
	mathrand "math/rand"
	"math/rand/v2"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"
)

// randomLayers generates a layer stack of files, directories, symlinks,
// hard links, whiteouts and opaque markers, tracking the tree so that
// every entry is one GNU tar can unpack (no file over a directory, no
// link to what this layer removed).
func randomLayers(t testing.TB, seed uint64) [][]byte {
	r := rand.New(rand.NewPCG(seed, 0x0c1))
	state := map[string]byte{} // path -> 'd', 'f', 's'
	names := []string{"a", "b", "c", "d", "e.txt"}
	pick := func(kind byte) []string {
		var out []string
		for p, k := range state {
			if kind == 0 || k == kind {
				out = append(out, p)
			}
		}
		slices.Sort(out)
		return out
	}
	under := func(p, d string) bool { return p == d || strings.HasPrefix(p, d+"/") }
	var layers [][]byte
	for range 2 + r.IntN(4) {
		var (
			ents    []ent
			removed []string            // whited out in this layer, with what is below
			added   = map[string]byte{} // this layer's entries
			targets []string            // of this layer's hard links
		)
		// GNU tar (the reference) removes a layer's whiteouts before it
		// unpacks the layer, so no link may target what they remove
		// (that case has its own test).
		linked := func(w string) bool {
			return slices.ContainsFunc(targets, func(q string) bool { return under(q, w) })
		}
		gone := func(p string) bool {
			for _, w := range removed {
				if under(p, w) {
					return true
				}
			}
			return false
		}
		kindOf := func(p string) (byte, bool) {
			if k, ok := added[p]; ok {
				return k, true
			}
			k, ok := state[p]
			if ok && gone(p) {
				return 0, false
			}
			return k, ok
		}
		dirs := func() []string {
			out := []string{"."}
			for _, p := range pick('d') {
				if !gone(p) {
					out = append(out, p)
				}
			}
			for p, k := range added {
				if k == 'd' && !slices.Contains(out, p) {
					out = append(out, p)
				}
			}
			slices.Sort(out)
			return out
		}
		for range 4 + r.IntN(16) {
			ds := dirs()
			p := path.Join(ds[r.IntN(len(ds))], names[r.IntN(len(names))])
			k, exists := kindOf(p)
			if _, dup := added[p]; dup {
				// One entry per path and layer: GNU tar creates
				// symlinks only at the end of an archive, so it
				// cannot be the reference for a path written twice.
				continue
			}
			switch op := r.IntN(10); {
			case op < 3: // file
				if exists && k == 'd' {
					continue
				}
				ents = append(ents, ent{name: p, body: fmt.Sprint(seed, p, r.IntN(3)), mode: []int64{0o644, 0o755, 0o600, 0o4755}[r.IntN(4)], uid: r.IntN(3)})
				added[p] = 'f'
			case op < 5: // directory
				if exists && k != 'd' {
					continue
				}
				ents = append(ents, ent{name: p, typ: tar.TypeDir, mode: []int64{0o755, 0o700, 0o1777}[r.IntN(3)], uid: r.IntN(3)})
				added[p] = 'd'
			case op < 6: // symlink
				if exists && k == 'd' {
					continue
				}
				ents = append(ents, symlink(p, []string{"/etc/passwd", "../a", "a/b"}[r.IntN(3)]))
				added[p] = 's'
			case op < 8: // hard link to a file that is there now
				var files []string
				for _, q := range pick('f') {
					if !gone(q) && added[q] == 0 {
						files = append(files, q)
					}
				}
				for q, k := range added {
					if k == 'f' {
						files = append(files, q)
					}
				}
				slices.Sort(files)
				if len(files) == 0 || exists && k == 'd' {
					continue
				}
				target := files[r.IntN(len(files))]
				if target == p {
					continue
				}
				ents = append(ents, hardlink(p, target))
				targets = append(targets, target)
				added[p] = 'f'
			case op < 9: // whiteout of something below
				lower := pick(0)
				if len(lower) == 0 {
					continue
				}
				w := lower[r.IntN(len(lower))]
				if _, mine := added[w]; mine || gone(w) || linked(w) {
					continue
				}
				if slices.ContainsFunc(sortedKeys(added), func(a string) bool { return under(a, w) }) {
					continue
				}
				ents = append(ents, whiteout(w))
				removed = append(removed, w)
			default: // opaque directory
				lower := pick('d')
				if len(lower) == 0 {
					continue
				}
				d := lower[r.IntN(len(lower))]
				if gone(d) || linked(d) || slices.ContainsFunc(sortedKeys(added), func(a string) bool { return under(a, d) && a != d }) {
					continue
				}
				ents = append(ents, opaque(d))
				for _, q := range pick(0) {
					if under(q, d) && q != d {
						removed = append(removed, q)
					}
				}
			}
		}
		for p := range state {
			if gone(p) {
				delete(state, p)
			}
		}
		for p, k := range added {
			state[p] = k
		}
		layers = append(layers, layerTar(t, ents...))
	}
	return layers
}

// TestFlattenRandomMatchesGNUTar compares generated layer stacks with GNU
// tar's flattening, in one format of each reader.
func TestFlattenRandomMatchesGNUTar(t *testing.T) {
	seeds := 60
	if testing.Short() {
		seeds = 10
	}
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			layers := randomLayers(t, seed)
			want := referenceTree(t, layers)
			img := buildImage(t, []layerKind{plainLayers, gzipLayers, zstdLayers}[seed%3], layers...)
			f := formats[seed%uint64(len(formats))]
			p := f.write(t, t.TempDir(), namedImage{"random:" + fmt.Sprint(seed), img})
			aci, _ := convertFile(t, p, "")
			compareTrees(t, aciTree(t, aci), want)
		})
	}
}

// TestRandomImage converts go-containerregistry's random images.
func TestRandomImage(t *testing.T) {
	img, err := random.Image(4096, 4, random.WithSource(mathrand.NewSource(1)))
	if err != nil {
		t.Fatal(err)
	}
	want := referenceTree(t, uncompressedLayers(t, img))
	if len(want) == 0 {
		t.Fatal("the random image has no files")
	}
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			p := f.write(t, t.TempDir(), namedImage{"random/image:v1", img})
			aci, _ := convertFile(t, p, "")
			compareTrees(t, aciTree(t, aci), want)
		})
	}
}
