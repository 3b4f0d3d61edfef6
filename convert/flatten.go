package convert

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
)

// Flattening follows the OCI image spec's layer rules, in two passes over
// the layers so that no file content is ever held in memory:
//
// The first pass (plan) reads only the headers. It replays the layers on a
// tree of paths, bottom layer first: a layer's whiteouts (".wh.NAME") and
// opaque markers (".wh..wh..opq") remove what the layers BELOW put there,
// then its entries are added in tar order, so a layer may white a
// directory out and re-create it. Every non-directory entry is an inode;
// a hard link names the inode its target had when the link was unpacked,
// so the link keeps that content when the target is later whited out or
// overwritten. What survives is then written down per layer and entry
// ordinal: which entries to copy, under which path.
//
// The second pass (write) reads the layers again in the same order and
// copies the surviving entries, contents included, to the ACI. The output
// order is therefore the layers' own order, which the layers' bytes alone
// determine: the same image gives the same tar whatever it came in.

const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh." // aufs metadata; ".wh..wh..opq" is the opaque marker
	whiteoutOpaque = ".wh..wh..opq"
)

// inode is the content one layer entry put in the image: a file, symlink,
// device or fifo, named by one or more paths (hard links).
type inode struct {
	layer, ord int
	damagedAt  int         // the last layer that removed or replaced one of its paths; -1: none
	paths      []string    // surviving paths, in tree order; the first carries the content
	nodes      []*node     // the node of each path
	hdr        *tar.Header // the written header, kept for the links written after it
}

// node is one path of the flattened tree.
type node struct {
	children   map[string]*node // directories only
	dir        bool
	layer, ord int         // the entry that made it; layer -1: implied by a child
	inode      *inode      // non-directories
	hdr        *tar.Header // directories: the header of the entry that made it
}

// dirOut is a directory of the output. Its header is known from the first
// pass, so the second writes it as soon as anything below it is written:
// a directory always comes before its contents, even when an upper layer
// changed its metadata or a file under it comes from a lower layer.
type dirOut struct {
	path    string
	hdr     *tar.Header // nil: implied by its contents
	parent  *dirOut     // nil: the rootfs
	written bool
}

// action says what the write pass does with one layer entry.
type action struct {
	ord   int // of the entry in its layer
	kind  actionKind
	path  string    // where the entry goes
	dir   *dirOut   // writeDir: the directory; else the one path lies in
	inode *inode    // for content and links
	links []linkOut // content: hard links to write right after it
}

// linkOut is a further name of an inode, written as a hard link.
type linkOut struct {
	path string
	dir  *dirOut
}

type actionKind uint8

const (
	writeDir actionKind = iota + 1
	writeContent
	writeLink
)

// plan is the first pass's result.
type plan struct {
	root    *tar.Header // the "." entry of the top-most layer that has one
	dirs    []*dirOut   // every directory, to reset before a write pass
	actions [][]*action // per layer, by entry ordinal
	counts  []int       // entries per layer, to check the second pass reads the same
	// sparse: the write pass reads only the layers with actions (a
	// layered ACI); else every layer, as the squashed ACI does.
	sparse bool
}

// layerPath makes a layer entry's name relative to the root, refusing one
// that leaves it.
func layerPath(layer int, name string) (string, error) {
	p := path.Clean(strings.TrimLeft(name, "/"))
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", fmt.Errorf("%w: layer %d: %q", ErrUnsafePath, layer+1, name)
	}
	return p, nil
}

// layerEntry is a layer entry as the first pass keeps it, for one layer
// at a time.
type layerEntry struct {
	ord   int
	path  string
	typ   byte
	link  string      // hard links: the cleaned target
	inode *inode      // non-directories
	hdr   *tar.Header // directories
}

type flattener struct {
	root *node
	plan *plan
	// deletedAt is the first layer that removed a path of a lower layer
	// (a whiteout, an opaque directory, a directory replaced by a
	// non-directory); -1: none. A layered ACI needs a pathWhitelist from
	// there on (layered.go).
	deletedAt int
}

func newFlattener() *flattener {
	return &flattener{root: &node{dir: true, children: map[string]*node{}, layer: -1}, plan: &plan{}, deletedAt: -1}
}

// removed records that layer removed n and everything below it: the
// inodes lose a path, and rendering needs a whitelist from this layer on.
func (f *flattener) removed(layer int, n *node) {
	if f.deletedAt < 0 {
		f.deletedAt = layer
	}
	f.damage(layer, n)
}

// damage marks the inodes of n and below as changed by layer.
func (f *flattener) damage(layer int, n *node) {
	if !n.dir {
		n.inode.damagedAt = layer
		return
	}
	for _, c := range n.children {
		f.damage(layer, c)
	}
}

// lookup finds the node at p (cleaned), or nil.
func (f *flattener) lookup(p string) *node {
	n := f.root
	if p == "." {
		return n
	}
	for _, c := range strings.Split(p, "/") {
		if n.children == nil {
			return nil
		}
		if n = n.children[c]; n == nil {
			return nil
		}
	}
	return n
}

// parentOf returns the directory node that holds p, creating implied
// directories; a non-directory on the way is an error.
func (f *flattener) parentOf(layer int, p string) (*node, error) {
	n := f.root
	dir := path.Dir(p)
	if dir == "." {
		return n, nil
	}
	for _, c := range strings.Split(dir, "/") {
		next := n.children[c]
		if next == nil {
			next = &node{dir: true, children: map[string]*node{}, layer: -1}
			n.children[c] = next
		}
		if !next.dir {
			return nil, fmt.Errorf("%w: layer %d: %q lies below a non-directory", ErrUnsafePath, layer+1, p)
		}
		n = next
	}
	return n, nil
}

// eachEntry calls fn with each entry of a layer's tar and its ordinal,
// and returns how many entries there were. Both passes over a layer (the
// replay of its headers here, the copy in write.go) go through it, so that
// the plan's ordinals and counts name the same entries in both.
func eachEntry(layer int, tr *tar.Reader, fn func(ord int, hdr *tar.Header) error) (int, error) {
	for ord := 0; ; ord++ {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return ord, nil
		}
		if err != nil {
			return ord, invalidf("layer %d: read tar: %v", layer+1, err)
		}
		if err := fn(ord, hdr); err != nil {
			return ord, err
		}
	}
}

// addLayer replays one layer's headers on the tree.
func (f *flattener) addLayer(layer int, tr *tar.Reader) error {
	var (
		entries   []layerEntry
		whiteouts []string
		opaques   []string
	)
	count, err := eachEntry(layer, tr, func(ord int, hdr *tar.Header) error {
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			return nil // PAX global records (git archive writes them): not a file
		}
		p, err := layerPath(layer, hdr.Name)
		if err != nil {
			return err
		}
		base := path.Base(p)
		switch {
		case base == whiteoutOpaque:
			opaques = append(opaques, path.Dir(p))
			return nil
		case strings.HasPrefix(base, whiteoutMeta):
			return nil
		case strings.HasPrefix(base, whiteoutPrefix):
			target := base[len(whiteoutPrefix):]
			if target == "" || target == "." || target == ".." {
				return invalidf("layer %d: whiteout %q names nothing", layer+1, hdr.Name)
			}
			whiteouts = append(whiteouts, path.Join(path.Dir(p), target))
			return nil
		}
		e := layerEntry{ord: ord, path: p, typ: hdr.Typeflag}
		switch hdr.Typeflag {
		case tar.TypeDir:
			h := *hdr
			e.hdr = &h
		case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			if p == "." {
				return invalidf("layer %d: the root is not a directory", layer+1)
			}
		case tar.TypeLink:
			if p == "." {
				return invalidf("layer %d: the root is not a directory", layer+1)
			}
			if e.link, err = layerPath(layer, hdr.Linkname); err != nil {
				return err
			}
		default:
			return invalidf("layer %d: %q: unsupported tar entry type %q", layer+1, hdr.Name, hdr.Typeflag)
		}
		if p == "." && hdr.Typeflag == tar.TypeDir {
			h := *hdr
			f.plan.root = &h
		}
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		return err
	}
	f.plan.counts = append(f.plan.counts, count)

	// Hard links resolve against what existed when they were unpacked:
	// the lower layers (before this layer's whiteouts) and this layer's
	// earlier entries.
	local := map[string]*layerEntry{}
	for i := range entries {
		e := &entries[i]
		switch e.typ {
		case tar.TypeDir:
		case tar.TypeLink:
			var target *inode
			if le, ok := local[e.link]; ok {
				if le.typ == tar.TypeDir {
					return invalidf("layer %d: hard link %q to directory %q", layer+1, e.path, e.link)
				}
				target = le.inode
			} else if n := f.lookup(e.link); n != nil && !n.dir {
				target = n.inode
			} else if n != nil {
				return invalidf("layer %d: hard link %q to directory %q", layer+1, e.path, e.link)
			} else {
				return invalidf("layer %d: hard link %q to %q, which does not exist", layer+1, e.path, e.link)
			}
			e.inode = target
		default:
			e.inode = &inode{layer: layer, ord: e.ord, damagedAt: -1}
		}
		local[e.path] = e
	}

	for _, w := range whiteouts {
		if n := f.lookup(path.Dir(w)); n != nil && n.dir {
			if old := n.children[path.Base(w)]; old != nil {
				f.removed(layer, old)
				delete(n.children, path.Base(w))
			}
		}
	}
	for _, o := range opaques {
		if n := f.lookup(o); n != nil && n.dir {
			for _, c := range n.children {
				f.removed(layer, c)
			}
			clear(n.children)
		}
	}

	for _, e := range entries {
		if e.path == "." {
			f.root.layer, f.root.ord = layer, e.ord
			continue
		}
		parent, err := f.parentOf(layer, e.path)
		if err != nil {
			return err
		}
		base := path.Base(e.path)
		old := parent.children[base]
		if e.typ == tar.TypeDir {
			if old != nil && old.dir {
				// A directory over a directory merges: it only
				// replaces the directory's own metadata.
				old.layer, old.ord, old.hdr = layer, e.ord, e.hdr
				continue
			}
			if old != nil {
				f.damage(layer, old)
			}
			parent.children[base] = &node{dir: true, children: map[string]*node{}, layer: layer, ord: e.ord, hdr: e.hdr}
			continue
		}
		switch {
		case old != nil && old.dir:
			f.removed(layer, old) // what lay below it goes with it
		case old != nil:
			f.damage(layer, old)
		}
		parent.children[base] = &node{layer: layer, ord: e.ord, inode: e.inode}
	}
	return nil
}

// finish walks the flattened tree and records, per layer entry, what the
// write pass does.
func (f *flattener) finish(layers int) *plan {
	p := f.plan
	p.actions = make([][]*action, layers)
	add := func(layer int, a *action) { p.actions[layer] = append(p.actions[layer], a) }
	var (
		inodes []*inode
		dirs   = map[string]*dirOut{"": nil}
	)
	var walk func(n *node, dir string)
	walk = func(n *node, dir string) {
		names := make([]string, 0, len(n.children))
		for c := range n.children {
			names = append(names, c)
		}
		slices.Sort(names)
		for _, c := range names {
			child := n.children[c]
			full := path.Join(dir, c)
			switch {
			case child.dir:
				d := &dirOut{path: full, hdr: child.hdr, parent: dirs[dir]}
				dirs[full] = d
				p.dirs = append(p.dirs, d)
				if child.layer >= 0 {
					add(child.layer, &action{ord: child.ord, kind: writeDir, path: full, dir: d})
				}
			default:
				if len(child.inode.paths) == 0 {
					inodes = append(inodes, child.inode)
				}
				child.inode.paths = append(child.inode.paths, full)
				child.inode.nodes = append(child.inode.nodes, child)
			}
			if child.dir {
				walk(child, full)
			}
		}
	}
	walk(f.root, "")
	parentOf := func(q string) *dirOut {
		d := path.Dir(q)
		if d == "." {
			d = ""
		}
		return dirs[d]
	}

	for _, in := range inodes {
		primary := in.paths[0]
		content := &action{ord: in.ord, kind: writeContent, path: primary, dir: parentOf(primary), inode: in}
		add(in.layer, content)
		for i, q := range in.paths[1:] {
			n := in.nodes[i+1]
			if n.layer == in.layer && n.ord == in.ord {
				// The entry that made the inode survives, but not
				// as its first path: link it right after.
				content.links = append(content.links, linkOut{q, parentOf(q)})
				continue
			}
			add(n.layer, &action{ord: n.ord, kind: writeLink, path: q, dir: parentOf(q), inode: in})
		}
		in.nodes = nil
	}
	for _, acts := range p.actions {
		slices.SortFunc(acts, func(a, b *action) int { return a.ord - b.ord })
	}
	return p
}
