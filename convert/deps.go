package convert

// Which stored images depend on which: what removing an image of a
// layered import must look at, as its layer ACIs are shared.

import (
	"slices"
	"strings"

	appc "github.com/appc/spec/schema/types"
	store "github.com/imagestore/imagestore"
)

// Dependencies is the dependency graph of the images of a store, each
// dependency resolved as rendering resolves it: by imageID (the key it
// starts with), else the image GetACI picks for its name and labels.
// A dependency that resolves to no image is left out.
type Dependencies struct {
	deps   map[string][]string // key -> the keys it depends on
	users  map[string][]string // key -> the keys that depend on it
	layers map[string]bool     // layer ACIs of a layered import (below the top)
	names  map[string]string
}

// LoadDependencies reads every image's manifest in s. An image whose
// manifest cannot be read counts as depending on nothing.
func LoadDependencies(s *store.Store) (*Dependencies, error) {
	infos, err := s.GetAllACIInfos(nil, false)
	if err != nil {
		return nil, err
	}
	g := &Dependencies{deps: map[string][]string{}, users: map[string][]string{}, layers: map[string]bool{}, names: map[string]string{}}
	for _, info := range infos {
		g.names[info.BlobKey] = info.Name
	}
	for _, info := range infos {
		m, err := s.GetImageManifest(info.BlobKey)
		if err != nil {
			// Removed meanwhile, or a manifest that cannot be read: an
			// image that does not render anyway, and rm and gc must
			// still work on a damaged store (verify reports it).
			continue
		}
		if _, ok := m.Annotations.Get(annotationChainID); ok && strings.HasPrefix(info.Name, layerNamePrefix) {
			g.layers[info.BlobKey] = true
		}
		for _, d := range m.Dependencies {
			key, ok := g.resolve(s, d)
			if !ok || key == info.BlobKey {
				continue
			}
			g.deps[info.BlobKey] = append(g.deps[info.BlobKey], key)
			g.users[key] = append(g.users[key], info.BlobKey)
		}
	}
	return g, nil
}

func (g *Dependencies) resolve(s *store.Store, d appc.Dependency) (string, bool) {
	if d.ImageID != nil && !d.ImageID.Empty() {
		id := d.ImageID.String()
		for key := range g.names {
			if strings.HasPrefix(id, key) || strings.HasPrefix(key, id) {
				return key, true
			}
		}
		return "", false
	}
	key, err := s.GetACI(d.ImageName, d.Labels)
	return key, err == nil
}

// Dependants lists the images that depend on key directly, sorted.
func (g *Dependencies) Dependants(key string) []string {
	out := slices.Clone(g.users[key])
	slices.Sort(out)
	return slices.Compact(out)
}

// Name is the name of the image key.
func (g *Dependencies) Name(key string) string { return g.names[key] }

// Orphans lists the layer ACIs (of a layered import, below its top) that
// no image would depend on once the images gone are removed: those the
// images gone depend on, directly or through each other, that nothing
// else uses. They come upper first, the order to remove them in.
func (g *Dependencies) Orphans(gone ...string) []string {
	removed := map[string]bool{}
	for _, k := range gone {
		removed[k] = true
	}
	var out []string
	// Until nothing changes: a layer used by two layers that both go is
	// only found once both are marked.
	for changed := true; changed; {
		changed = false
		for _, k := range append(slices.Clone(gone), out...) {
			for _, d := range g.deps[k] {
				if removed[d] || !g.layers[d] {
					continue
				}
				if slices.ContainsFunc(g.users[d], func(u string) bool { return !removed[u] }) {
					continue
				}
				removed[d] = true
				out = append(out, d)
				changed = true
			}
		}
	}
	return out
}

// Needed lists the images that the images keep reports depend on,
// directly or through others: what a removal of unused images must keep
// so that the images it keeps still render.
func (g *Dependencies) Needed(keep func(key string) bool) map[string]bool {
	needed := map[string]bool{}
	var visit func(k string)
	visit = func(k string) {
		for _, d := range g.deps[k] {
			if !needed[d] {
				needed[d] = true
				visit(d)
			}
		}
	}
	for k := range g.names {
		if keep(k) {
			visit(k)
		}
	}
	return needed
}
