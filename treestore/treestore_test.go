// treestore_test.go holds the tree store's own behaviour: rendering
// chains, refusing bad dependency graphs without leaving a tree, sizes,
// checks, removal and GC. The comparisons with rkt are in rkt_*_test.go.
package treestore_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/appc/spec/schema/types"
	store "github.com/imagestore/imagestore"
	"github.com/imagestore/imagestore/treestore"
)

// openStores opens an image store and its tree store in a new directory.
func openStores(t *testing.T) (string, *store.Store, *treestore.Store) {
	t.Helper()
	dir := t.TempDir()
	s, err := store.NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ts, err := treestore.NewStore(dir, s)
	if err != nil {
		t.Fatal(err)
	}
	return dir, s, ts
}

// importImages builds the images in order and writes them into s.
func importImages(t *testing.T, s *store.Store, imgs ...*aciImage) {
	t.Helper()
	for i, a := range imgs {
		if a.tar == nil {
			a.build(t, i)
		}
		key, err := s.WriteACI(bytes.NewReader(a.raw), store.ACIFetchInfo{Latest: a.latest})
		if err != nil {
			t.Fatalf("WriteACI %s: %v", a.file, err)
		}
		if key != a.key() {
			t.Fatalf("WriteACI %s: key %s, want %s", a.file, key, a.key())
		}
	}
}

// noTrees fails unless the tree store holds no tree at all.
func noTrees(t *testing.T, dir string, ts *treestore.Store) {
	t.Helper()
	ids, err := ts.GetIDs()
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) > 0 {
		t.Errorf("trees left behind: %v", ids)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "tree")); len(ents) > 0 {
		t.Errorf("tree/ holds %d entries after a failed render", len(ents))
	}
}

// A chain: top depends on mid by imageID, mid on base by name, with
// whitelists and overrides at each level.
func chainImages() (base, mid, top *aciImage) {
	base = &aciImage{file: "base.aci", manifest: manifest("example.com/base", "1.0"), entries: []tarEntry{
		dirEnt("bin", 0o755), fileEnt("bin/sh", 0o755, "base sh"), fileEnt("bin/ls", 0o755, "base ls"),
		dirEnt("etc", 0o755), fileEnt("etc/os-release", 0o644, "base"), fileEnt("etc/dropped", 0o644, "not whitelisted"),
		symlinkEnt("bin/ash", "/bin/sh"),
	}}
	mid = &aciImage{file: "mid.aci", manifest: manifest("example.com/mid", "1.0", depByName("example.com/base", "version", "1.0")), entries: []tarEntry{
		dirEnt("etc", 0o700), fileEnt("etc/os-release", 0o600, "mid"), fileEnt("etc/mid", 0o644, "mid only"),
	}}
	mid.manifest.PathWhitelist = []string{"/bin/sh", "/bin/ash", "/etc/os-release", "/etc/mid"}
	top = &aciImage{file: "top.aci", manifest: manifest("example.com/top", "1.0"), entries: []tarEntry{
		fileEnt("app", 0o755, "the app"),
	}}
	return base, mid, top
}

func TestRenderChain(t *testing.T) {
	dir, s, ts := openStores(t)
	base, mid, top := chainImages()
	importImages(t, s, base, mid)
	top.manifest.Dependencies = types.Dependencies{{ImageName: "example.com/mid", ImageID: mid.imageID()}}
	importImages(t, s, top)

	id, hash, err := ts.Render(top.key(), false)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(id, "deps-sha512-") || !strings.HasPrefix(hash, "sha512-") {
		t.Fatalf("Render = %q, %q", id, hash)
	}
	rootfs := ts.GetRootFS(id)
	wantFile(t, rootfs, "app", "the app")
	wantFile(t, rootfs, "etc/os-release", "mid") // the upper image wins
	wantFile(t, rootfs, "etc/mid", "mid only")
	wantFile(t, rootfs, "bin/sh", "base sh")
	wantAbsent(t, rootfs, "bin/ls")      // mid's whitelist
	wantAbsent(t, rootfs, "etc/dropped") // mid's whitelist
	if target, err := os.Readlink(filepath.Join(rootfs, "bin/ash")); err != nil || target != "/bin/sh" {
		t.Errorf("bin/ash -> %q, %v", target, err)
	}
	if fi, err := os.Stat(filepath.Join(rootfs, "etc")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("etc: %v, %v; want mid's 0700", fi.Mode(), err)
	}
	if m, err := os.ReadFile(filepath.Join(ts.GetPath(id), "manifest")); err != nil || !bytes.Contains(m, []byte("example.com/top")) {
		t.Errorf("manifest is not the upper image's: %s, %v", m, err)
	}
	if got, err := ts.GetImageHash(id); err != nil || got != top.key() {
		t.Errorf("GetImageHash = %q, %v", got, err)
	}
	if ok, err := ts.IsRendered(id); !ok || err != nil {
		t.Errorf("IsRendered = %v, %v", ok, err)
	}
	if got, err := ts.Check(id); err != nil || got != hash {
		t.Errorf("Check = %q, %v; want %q", got, err, hash)
	}
	if ids, _ := ts.GetIDs(); len(ids) != 1 || ids[0] != id {
		t.Errorf("GetIDs = %v", ids)
	}
	if got, err := ts.GetID(top.key()); err != nil || got != id {
		t.Errorf("GetID = %q, %v; want %q", got, err, id)
	}

	// Cached: the same id, no hash, nothing rendered again.
	stamp := time.Now().Add(-time.Hour)
	os.Chtimes(filepath.Join(rootfs, "app"), stamp, stamp)
	id2, hash2, err := ts.Render(top.key(), false)
	if err != nil || id2 != id || hash2 != "" {
		t.Errorf("second Render = %q, %q, %v; want %q, \"\"", id2, hash2, err, id)
	}
	if fi, _ := os.Stat(filepath.Join(rootfs, "app")); !fi.ModTime().Equal(stamp) {
		t.Error("a cached Render wrote the tree again")
	}
	// rebuild renders again, to the same hash.
	if id3, hash3, err := ts.Render(top.key(), true); err != nil || id3 != id || hash3 != hash {
		t.Errorf("Render(rebuild) = %q, %q, %v", id3, hash3, err)
	}

	size, err := ts.Size(id)
	if err != nil || size <= 0 {
		t.Fatalf("Size = %d, %v", size, err)
	}
	info, err := s.GetACIInfoWithBlobKey(top.key())
	if err != nil || info.TreeStoreSize != size {
		t.Errorf("TreeStoreSize = %d (%v), want %d", info.TreeStoreSize, err, size)
	}
	if err := ts.Remove(id); err != nil {
		t.Fatal(err)
	}
	noTrees(t, dir, ts)
	if info, _ := s.GetACIInfoWithBlobKey(top.key()); info.TreeStoreSize != 0 {
		t.Errorf("TreeStoreSize after Remove = %d", info.TreeStoreSize)
	}
}

// Every refused graph names the image that asked, and leaves no tree.
func TestRenderRefusesBadDependencies(t *testing.T) {
	base, mid, _ := chainImages()
	wrongTail := func() *types.Hash {
		h := *base.imageID()
		v := []byte(h.Val)
		v[len(v)-1] ^= 1 // the store's key still matches: only the tail differs
		hh, _ := types.NewHash("sha512-" + string(v))
		return hh
	}
	for _, tc := range []struct {
		name string
		deps func() types.Dependencies
		want string
	}{
		{"missing", func() types.Dependencies { return types.Dependencies{depByName("example.com/nowhere")} }, "example.com/nowhere"},
		{"missing-version", func() types.Dependencies {
			return types.Dependencies{depByName("example.com/base", "version", "9.9")}
		}, "example.com/base"},
		{"unknown-imageID", func() types.Dependencies {
			return types.Dependencies{{ImageName: "example.com/base", ImageID: types.NewHashSHA512([]byte("no such image"))}}
		}, "example.com/base"},
		{"imageID-tail-differs", func() types.Dependencies {
			return types.Dependencies{{ImageName: "example.com/base", ImageID: wrongTail()}}
		}, "not that imageID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, s, ts := openStores(t)
			base.tar, mid.tar = nil, nil
			importImages(t, s, base)
			top := &aciImage{file: "top.aci", manifest: manifest("example.com/top", "1.0", tc.deps()...), entries: []tarEntry{fileEnt("app", 0o755, "x")}}
			importImages(t, s, top)
			_, _, err := ts.Render(top.key(), false)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "example.com/top") {
				t.Fatalf("Render = %v; want an error naming example.com/top and %q", err, tc.want)
			}
			noTrees(t, dir, ts)
		})
	}
}

func TestRenderRefusesCycle(t *testing.T) {
	dir, s, ts := openStores(t)
	a := &aciImage{file: "a.aci", manifest: manifest("example.com/a", "1.0", depByName("example.com/b")), entries: []tarEntry{fileEnt("a", 0o644, "a")}}
	b := &aciImage{file: "b.aci", manifest: manifest("example.com/b", "1.0", depByName("example.com/a")), entries: []tarEntry{fileEnt("b", 0o644, "b")}}
	importImages(t, s, a, b)
	_, _, err := ts.Render(a.key(), false)
	if err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Fatalf("Render = %v, want a cycle error", err)
	}
	if _, err := ts.GetID(a.key()); err == nil {
		t.Error("GetID of an image in a cycle succeeded")
	}
	noTrees(t, dir, ts)
}

// With two trees of one image (its dependency changed in between), the
// image's TreeStoreSize is the sum of both; rkt kept the last one's.
func TestTreeStoreSizeOfSeveralTrees(t *testing.T) {
	_, s, ts := openStores(t)
	base1 := &aciImage{file: "b1.aci", manifest: manifest("example.com/base", "1.0"), latest: true, entries: []tarEntry{fileEnt("base", 0o644, "one")}}
	top := &aciImage{file: "top.aci", manifest: manifest("example.com/top", "1.0", depByName("example.com/base")), entries: []tarEntry{fileEnt("app", 0o644, strings.Repeat("x", 5000))}}
	importImages(t, s, base1, top)
	id1, _, err := ts.Render(top.key(), false)
	if err != nil {
		t.Fatal(err)
	}
	base2 := &aciImage{file: "b2.aci", manifest: manifest("example.com/base", "2.0"), latest: true, entries: []tarEntry{fileEnt("base", 0o644, strings.Repeat("two", 3000))}}
	base2.build(t, 7)
	importImages(t, s, base2)
	id2, _, err := ts.Render(top.key(), false)
	if err != nil {
		t.Fatal(err)
	}
	if id1 == id2 {
		t.Fatal("the tree id did not change with the dependency")
	}
	size1, _ := ts.Size(id1)
	size2, _ := ts.Size(id2)
	if size1 == size2 {
		t.Fatalf("fixture: both trees have size %d", size1)
	}
	wantTreeSize(t, s, top.key(), size1+size2)
	if err := ts.Remove(id1); err != nil {
		t.Fatal(err)
	}
	wantTreeSize(t, s, top.key(), size2)
}

func wantTreeSize(t *testing.T, s *store.Store, key string, want int64) {
	t.Helper()
	info, err := s.GetACIInfoWithBlobKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if info.TreeStoreSize != want {
		t.Errorf("TreeStoreSize = %d, want %d", info.TreeStoreSize, want)
	}
}

func TestCheckFindsChanges(t *testing.T) {
	for name, change := range map[string]func(rootfs string) error{
		"content": func(r string) error { return os.WriteFile(filepath.Join(r, "bin/sh"), []byte("base sH"), 0o755) },
		"mode":    func(r string) error { return os.Chmod(filepath.Join(r, "bin/sh"), 0o700) },
		"added":   func(r string) error { return os.WriteFile(filepath.Join(r, "new"), nil, 0o644) },
		"removed": func(r string) error { return os.Remove(filepath.Join(r, "etc/os-release")) },
		"symlink": func(r string) error {
			os.Remove(filepath.Join(r, "bin/ash"))
			return os.Symlink("/bin/ls", filepath.Join(r, "bin/ash"))
		},
	} {
		t.Run(name, func(t *testing.T) {
			_, s, ts := openStores(t)
			base, _, _ := chainImages()
			importImages(t, s, base)
			id, hash, err := ts.Render(base.key(), false)
			if err != nil {
				t.Fatal(err)
			}
			if err := change(ts.GetRootFS(id)); err != nil {
				t.Fatal(err)
			}
			if got, err := ts.Check(id); err == nil {
				t.Errorf("Check passed (%s) after a change; rendered hash %s", got, hash)
			}
		})
	}
}

func TestIDsAreChecked(t *testing.T) {
	dir, _, ts := openStores(t)
	victim := filepath.Join(dir, "tree", "keep")
	if err := os.MkdirAll(victim, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"", ".", "..", "../tree", "keep", "deps-sha512-../../x", "/etc", "deps-sha512-" + strings.Repeat("0", 63)} {
		if err := ts.Remove(id); !errors.Is(err, treestore.ErrInvalidID) {
			t.Errorf("Remove(%q) = %v, want ErrInvalidID", id, err)
		}
		if _, err := ts.Check(id); !errors.Is(err, treestore.ErrInvalidID) {
			t.Errorf("Check(%q) = %v, want ErrInvalidID", id, err)
		}
		if _, err := ts.IsRendered(id); !errors.Is(err, treestore.ErrInvalidID) {
			t.Errorf("IsRendered(%q) = %v, want ErrInvalidID", id, err)
		}
		if p := ts.GetPath(id); !strings.HasPrefix(p, filepath.Join(dir, "tree")) {
			t.Errorf("GetPath(%q) = %s, outside the tree store", id, p)
		}
	}
	if _, err := os.Stat(victim); err != nil {
		t.Errorf("a directory of the tree store was removed: %v", err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	}
}

// GC removes the trees of images that are gone and partial trees, and
// leaves the rest.
func TestGCRemovesTreesOfGoneImages(t *testing.T) {
	dir, s, ts := openStores(t)
	base, mid, top := chainImages()
	importImages(t, s, base, mid)
	top.manifest.Dependencies = types.Dependencies{depByName("example.com/mid")}
	importImages(t, s, top)
	keep, _, err := ts.Render(mid.key(), false)
	if err != nil {
		t.Fatal(err)
	}
	gone, _, err := ts.Render(top.key(), false)
	if err != nil {
		t.Fatal(err)
	}
	partial, _, err := ts.Render(base.key(), false)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(ts.GetPath(partial), "rendered")); err != nil {
		t.Fatal(err)
	}
	if ids, err := ts.IDsOf(top.key()); err != nil || len(ids) != 1 || ids[0] != gone {
		t.Errorf("IDsOf = %v, %v; want [%s]", ids, err, gone)
	}
	if err := s.RemoveACI(top.key()); err != nil {
		t.Fatal(err)
	}
	would, err := ts.Garbage()
	if err != nil || len(would) != 2 {
		t.Errorf("Garbage = %v, %v; want 2 trees", would, err)
	}
	removed, err := ts.GC()
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 2 || !contains(removed, gone) || !contains(removed, partial) {
		t.Errorf("GC removed %v, want %s and %s", removed, gone, partial)
	}
	if ids, _ := ts.GetIDs(); len(ids) != 1 || ids[0] != keep {
		t.Errorf("after GC: %v, want [%s]", ids, keep)
	}
	if _, err := ts.Check(keep); err != nil {
		t.Errorf("the kept tree: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "tree")); len(ents) != 1 {
		t.Errorf("tree/ holds %d entries, want 1", len(ents))
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// An image whose blob no longer matches its key fails the render, and
// leaves no tree: the data is checked as it is written.
func TestRenderRefusesCorruptImage(t *testing.T) {
	// bin/ls is left out by mid's whitelist, bin/sh is written.
	for _, where := range []string{"base ls", "base sh"} {
		t.Run(where, func(t *testing.T) {
			dir, s, ts := openStores(t)
			base, mid, _ := chainImages()
			importImages(t, s, base, mid)
			blob := filepath.Join(dir, "blob", "sha512", base.key()[7:9], base.key())
			b, err := os.ReadFile(blob)
			if err != nil {
				t.Fatal(err)
			}
			b[bytes.Index(b, []byte(where))] ^= 1
			if err := os.WriteFile(blob, b, 0o600); err != nil {
				t.Fatal(err)
			}
			_, _, err = ts.Render(mid.key(), false)
			if err == nil || !strings.Contains(err.Error(), "does not match its key") {
				t.Fatalf("Render = %v, want a mismatch error", err)
			}
			noTrees(t, dir, ts)
		})
	}
}
