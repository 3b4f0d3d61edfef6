package convert

// The layered import: one ACI per layer, each depending on the one below
// by imageID, so that images built on the same layers share their ACIs.
//
// A layer ACI must depend only on its layer and the layers below it, and
// rendering the top one with its dependencies (upper image first, files
// of lower images only where no upper image has them, the topmost
// pathWhitelist filtering every lower image; appc's acirenderer) must
// give exactly the squashed image. Let P(i) be the tree the squashed
// flattener makes of layers 0..i. Layer i's ACI holds:
//
//   - every path of P(i) that layer i wrote (files, links, directories),
//     with P(i)'s header: a path survives to the top unchanged exactly
//     when no upper layer writes it, so the topmost layer ACI holding a
//     path holds its final version;
//   - the parents of those paths, with P(i)'s headers (an upper layer
//     that only adds a file to a lower directory keeps its mode);
//   - every path of an inode (hard links) of which it holds one path, or
//     one of whose paths layer i removed or replaced: a hard link can
//     only be rendered within one image, and the image holding an
//     inode's first path must be the one that provides all of it. The
//     content is copied from the layer that made it, so such an ACI
//     repeats a file of a lower layer; hard links across layers are rare.
//
// Deletions are a pathWhitelist: from the first layer that removed
// anything of a lower one (a whiteout, an opaque directory, a directory
// replaced by a file), each layer ACI lists every path of P(i),
// directories included (acirenderer filters lower directories too). An
// upper ACI's whitelist is what acirenderer applies to all the images
// below it, so the top's decides. A chain that never deleted anything
// needs none, and has none, which keeps base images' manifests small.
// When everything was deleted, the whitelist is "/", which keeps no file.

import (
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"slices"

	"github.com/appc/spec/schema"
	appc "github.com/appc/spec/schema/types"
	store "github.com/imagestore/imagestore"
)

// Annotations of every layer ACI below the top (the top's are the image's).
const (
	// annotationDiffID is the digest of the layer's uncompressed tar.
	annotationDiffID = "imagestore/layer-diffid"
	// annotationChainID is the OCI ChainID of the layer and those below.
	annotationChainID = "imagestore/layer-chainid"
)

// layerNamePrefix starts a lower layer ACI's name, followed by its ChainID
// ("layer/sha256-HEX"): the name says which stack of layers the ACI
// renders, and nothing of the image or the host that converted it.
const layerNamePrefix = "layer/"

// maxManifest is the store's limit on a manifest (store.WriteACI refuses
// a larger one): a whitelist of every path of a large image may pass it.
const maxManifest = 1 << 20

// layerACI is the plan of one layer's ACI.
type layerACI struct {
	plan      *plan
	whitelist []string
	diffID    string // of this layer
	chainID   string // of this layer and those below
}

// LayeredPlan is a checked image, ready to be written as one ACI per
// layer: every layer has been read once and its digests verified.
type LayeredPlan struct {
	image  *Image
	layers []*layerACI
}

// PlanLayers runs the first pass of a layered import: it reads every
// layer's headers and checks every digest, before anything is written.
func (c *Image) PlanLayers() (*LayeredPlan, error) {
	f := newFlattener()
	lp := &LayeredPlan{image: c}
	chain := ""
	for i, l := range c.layers {
		diffID, err := c.scanLayer(f, i, l)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			chain = diffID
		} else {
			chain = sha256Of([]byte(chain + " " + diffID))
		}
		p, wl := f.layerPlan(i)
		size := 0
		for _, w := range wl {
			size += len(w) + 3
		}
		if size > maxManifest-64<<10 {
			return nil, invalidf("layer %d: the image deletes files, and the list of the %d paths it keeps (appc's pathWhitelist) would pass the store's manifest limit of %d bytes: import it squashed", i+1, len(wl), maxManifest)
		}
		lp.layers = append(lp.layers, &layerACI{plan: p, whitelist: wl, diffID: diffID, chainID: chain})
	}
	return lp, nil
}

// layerPlan is what layer's ACI holds, computed from the tree of the
// layers up to it (see the top of this file), and its whitelist.
func (f *flattener) layerPlan(layer int) (*plan, []string) {
	p := &plan{root: f.plan.root, counts: slices.Clone(f.plan.counts), actions: make([][]*action, layer+1), sparse: true}
	var (
		all      []string
		dirNodes = map[string]*node{}
		outs     = map[string]*dirOut{"": nil}
		groups   = map[*inode][]string{}
		inodes   []*inode
		selected = map[*inode]bool{}
	)
	var dirOf func(d string) *dirOut
	dirOf = func(d string) *dirOut {
		if d == "." {
			d = ""
		}
		if o, ok := outs[d]; ok {
			return o
		}
		o := &dirOut{path: d, hdr: dirNodes[d].hdr, parent: dirOf(path.Dir(d))}
		outs[d] = o
		p.dirs = append(p.dirs, o)
		return o
	}
	add := func(from int, a *action) { p.actions[from] = append(p.actions[from], a) }
	var walk func(n *node, dir string)
	walk = func(n *node, dir string) {
		for _, c := range sortedKeys(n.children) {
			child := n.children[c]
			full := path.Join(dir, c)
			all = append(all, full)
			if child.dir {
				dirNodes[full] = child
				if child.layer == layer {
					add(layer, &action{ord: child.ord, kind: writeDir, path: full, dir: dirOf(full)})
				}
				walk(child, full)
				continue
			}
			in := child.inode
			if _, seen := groups[in]; !seen {
				inodes = append(inodes, in)
			}
			groups[in] = append(groups[in], full)
			if child.layer == layer || in.damagedAt == layer {
				selected[in] = true
			}
		}
	}
	walk(f.root, "")
	for _, in := range inodes {
		if !selected[in] {
			continue
		}
		paths := groups[in]
		content := &action{ord: in.ord, kind: writeContent, path: paths[0], dir: dirOf(path.Dir(paths[0])), inode: in}
		for _, q := range paths[1:] {
			content.links = append(content.links, linkOut{q, dirOf(path.Dir(q))})
		}
		add(in.layer, content)
	}
	for _, acts := range p.actions {
		slices.SortFunc(acts, func(a, b *action) int { return a.ord - b.ord })
	}
	if f.deletedAt < 0 {
		return p, nil
	}
	wl := make([]string, len(all))
	for i, q := range all {
		wl[i] = "/" + q
	}
	slices.Sort(wl)
	if len(wl) == 0 {
		wl = []string{"/"} // keeps nothing: an empty whitelist would keep all
	}
	return p, wl
}

// Layers tells how many layer ACIs the plan writes.
func (lp *LayeredPlan) Layers() int { return len(lp.layers) }

// manifest is the manifest of layer i's ACI, below that of the layer
// under it and its full SHA-512 ("sha512-" and 128 hex digits).
func (lp *LayeredPlan) manifest(i int, below *schema.ImageManifest, belowID string) (*schema.ImageManifest, error) {
	l := lp.layers[i]
	var m *schema.ImageManifest
	if i == len(lp.layers)-1 {
		// The top carries the image: its name, labels, app and
		// annotations, exactly as the squashed import maps them.
		cp := *lp.image.manifest
		m = &cp
	} else {
		m = schema.BlankImageManifest()
		id, err := appc.NewACIdentifier(layerNamePrefix + sanitizeDigest(l.chainID))
		if err != nil {
			return nil, invalidf("layer %d: name: %v", i+1, err)
		}
		m.Name = *id
		m.Annotations.Set(annotationDiffID, l.diffID)
		m.Annotations.Set(annotationChainID, l.chainID)
	}
	if below != nil {
		h, err := appc.NewHash(belowID)
		if err != nil {
			return nil, invalidf("layer %d: dependency: %v", i+1, err)
		}
		m.Dependencies = appc.Dependencies{{ImageName: below.Name, ImageID: h}}
	}
	m.PathWhitelist = l.whitelist
	if _, err := json.Marshal(m); err != nil {
		return nil, invalidf("layer %d: manifest: %v", i+1, err)
	}
	return m, nil
}

// sanitizeDigest makes "sha256:HEX" a name part, "sha256-HEX".
func sanitizeDigest(d string) string {
	b := []byte(d)
	for i, c := range b {
		if c == ':' {
			b[i] = '-'
		}
	}
	return string(b)
}

// ImportLayers converts the selected image one ACI per layer and writes
// them into s with one commit, returning their keys, bottom layer first:
// the last is the image's. See LayeredPlan.Import.
func (c *Image) ImportLayers(s *store.Store, fi store.ACIFetchInfo) ([]string, error) {
	lp, err := c.PlanLayers()
	if err != nil {
		return nil, err
	}
	return lp.Import(s, fi)
}

// Import writes the planned layer ACIs into s, bottom first, each
// streamed into a store.Batch, which commits them all at once: a failure
// anywhere (a layer that changed since the plan) stores nothing. Layer
// ACIs already in the store are written again, as WriteACI does (the
// same bytes: nothing new is stored). fi applies to the image's ACI (the
// top); the others are written with a zero ACIFetchInfo. An image of no
// layers is one ACI, the squashed import's.
func (lp *LayeredPlan) Import(s *store.Store, fi store.ACIFetchInfo) ([]string, error) {
	if len(lp.layers) == 0 {
		key, err := (&Plan{image: lp.image, plan: newFlattener().finish(0)}).Import(s, fi)
		if err != nil {
			return nil, err
		}
		return []string{key}, nil
	}
	b := s.NewBatch()
	defer b.Discard()
	var (
		keys    []string
		below   *schema.ImageManifest
		belowID string
	)
	for i, l := range lp.layers {
		m, err := lp.manifest(i, below, belowID)
		if err != nil {
			return nil, err
		}
		lfi := store.ACIFetchInfo{}
		if i == len(lp.layers)-1 {
			lfi = fi
		}
		h := sha512.New()
		key, err := streamInto(func(w io.Writer) error {
			return lp.image.writeACI(io.MultiWriter(w, h), l.plan, m)
		}, func(r io.ReadSeeker) (string, error) {
			return b.Add(r, lfi)
		})
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i+1, err)
		}
		keys = append(keys, key)
		below, belowID = m, "sha512-"+hex.EncodeToString(h.Sum(nil))
	}
	if err := b.Commit(); err != nil {
		return nil, err
	}
	return keys, nil
}
