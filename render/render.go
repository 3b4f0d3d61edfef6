// Package render renders an image together with its dependencies into a
// directory, as appc's pkg/acirenderer and rkt's tree store do: the
// dependency list is flattened upper image first, each image contributes
// the files no upper image has already provided (and that the
// pathWhitelists above it keep), and the files are written by a hardened
// extractor that never writes outside the directory.
//
// Which files of which image make the tree is decided by appc/spec's own
// acirenderer (GetRenderedACIFromList). The dependency list is built here,
// with the same order as acirenderer's CreateDepList but refusing what it
// does not: a dependency cycle (acirenderer would loop forever), and an
// imageID that does not match its image in full (acirenderer compares only
// the store's key, the first half of the SHA-512).
package render

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/appc/spec/pkg/acirenderer"
	"github.com/appc/spec/schema/types"
)

// Registry is where images and their dependencies are found: a
// *store.Store is one.
type Registry = acirenderer.ACIRegistry

// maxImages bounds the flattened dependency list: acirenderer repeats a
// dependency once for every path that leads to it, so a diamond-shaped
// graph grows exponentially.
const maxImages = 1000

// Deps is an image's flattened dependency list, upper image first, in
// acirenderer's order.
type Deps struct {
	list []*depNode
}

// Resolve builds the flattened dependency list of the image with the
// given key from the manifests alone (no image is read). A dependency
// that is not in the registry, an imageID that matches no image, and a
// cycle are errors that name the image that asked for it.
func Resolve(reg Registry, key string) (*Deps, error) {
	list, err := depList(reg, key)
	if err != nil {
		return nil, err
	}
	return &Deps{list: list}, nil
}

// Images returns the list as acirenderer has it.
func (d *Deps) Images() acirenderer.Images {
	imgs := make(acirenderer.Images, len(d.list))
	for i, n := range d.list {
		imgs[i] = n.img
	}
	return imgs
}

// Keys lists the images' keys, upper first (a dependency reached by two
// paths is listed twice, as acirenderer lists it).
func (d *Deps) Keys() []string {
	keys := make([]string, len(d.list))
	for i, n := range d.list {
		keys[i] = n.img.Key
	}
	return keys
}

// depNode is one image of a flattened dependency list.
type depNode struct {
	img    acirenderer.Image
	parent *depNode
	dep    types.Dependency // how parent named it
}

func depList(reg Registry, key string) ([]*depNode, error) {
	im, err := reg.GetImageManifest(key)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", key, err)
	}
	list := []*depNode{{img: acirenderer.Image{Im: im, Key: key}}}
	// Walk the list while inserting each image's dependencies right after
	// it, in reverse, as acirenderer's linked list ends up ordering them.
	for i := 0; i < len(list); i++ {
		n := list[i]
		var deps []*depNode
		for _, d := range n.img.Im.Dependencies {
			dep, err := resolveDep(reg, d)
			if err != nil {
				return nil, fmt.Errorf("%s: dependency %s: %w", n, describeDep(d), err)
			}
			for a := n; a != nil; a = a.parent {
				if a.img.Key == dep {
					return nil, fmt.Errorf("%s: dependency %s is %s, which depends on it: a dependency cycle", n, describeDep(d), dep)
				}
			}
			dim, err := reg.GetImageManifest(dep)
			if err != nil {
				return nil, fmt.Errorf("%s: dependency %s: %w", n, describeDep(d), err)
			}
			deps = append(deps, &depNode{img: acirenderer.Image{Im: dim, Key: dep, Level: n.img.Level + 1}, parent: n, dep: d})
		}
		slices.Reverse(deps)
		list = slices.Insert(list, i+1, deps...)
		if len(list) > maxImages {
			return nil, fmt.Errorf("%s: more than %d images in its flattened dependency list", list[0], maxImages)
		}
	}
	return list, nil
}

func (n *depNode) String() string {
	return fmt.Sprintf("image %s (%s)", n.img.Im.Name, n.img.Key)
}

// pinned is the imageID the image was named by, if any.
func (n *depNode) pinned() string {
	if n.dep.ImageID == nil || n.dep.ImageID.Empty() {
		return ""
	}
	return n.dep.ImageID.String()
}

// resolveDep finds the key of a dependency: by imageID when it has one
// (the whole ID must then match, checked when the image is read: pinned
// is that ID; NewPlan checks it when the image is read), else the best
// match of its name and labels.
func resolveDep(reg Registry, d types.Dependency) (string, error) {
	if d.ImageID == nil || d.ImageID.Empty() {
		return reg.GetACI(d.ImageName, d.Labels)
	}
	id := d.ImageID.String()
	if len(strings.TrimPrefix(id, "sha512-")) < 64 {
		return "", fmt.Errorf("imageID %s is shorter than a key (sha512- and 64 hex digits): it could name more than one image", id)
	}
	return reg.ResolveKey(id)
}

func describeDep(d types.Dependency) string {
	s := string(d.ImageName)
	if d.ImageID != nil && !d.ImageID.Empty() {
		s += " " + d.ImageID.String()
	}
	for _, l := range d.Labels {
		s += fmt.Sprintf(" %s=%s", l.Name, l.Value)
	}
	return s
}

// Result says what a render did.
type Result struct {
	Plan           *Plan
	SkippedDevices int

	root *tar.Header // the attributes the target directory gets
}

// Tree renders the image with its dependencies into dir, an existing
// empty directory, laid out as rkt's tree store lays out a tree: the upper
// image's manifest at dir/manifest and the root filesystem at dir/rootfs.
// The attributes of rootfs itself come from the last image written (the
// lowest), as rkt's renderer leaves them.
func (p *Plan) Tree(reg Registry, dir string, opts Options) (*Result, error) {
	return p.write(reg, dir, opts, treeName)
}

// Rootfs renders the root filesystem of the image with its dependencies
// into dir, which must not exist or be empty. It is written into a
// temporary directory beside dir and renamed into place when complete, so
// a failure leaves nothing behind. dir gets the rootfs entry's mode,
// owner (as root) and modification time.
func Rootfs(reg Registry, key, dir string, opts Options) (*Result, error) {
	if err := checkTarget(dir); err != nil {
		return nil, err // before any image is read
	}
	plan, err := NewPlan(reg, key)
	if err != nil {
		return nil, err
	}
	var res *Result
	err = intoNewDir(dir, func(tmp string) (*tar.Header, error) {
		res, err = plan.write(reg, tmp, opts, rootfsName)
		return res.rootHdr(), err
	})
	return res, err
}

// ExtractRootfs writes the root filesystem of one image tar, without its
// dependencies, into dir as Rootfs does.
func ExtractRootfs(r io.Reader, dir string, opts Options) (*Result, error) {
	res := &Result{}
	err := intoNewDir(dir, func(tmp string) (*tar.Header, error) {
		x, err := newExtractor(tmp, opts)
		if err != nil {
			return nil, err
		}
		defer x.close()
		err = x.apply(r, rootfsName, nil)
		if err == nil {
			err = x.finish()
		}
		res.SkippedDevices = x.skippedDevices
		return x.dirs["."], err
	})
	return res, err
}

func (r *Result) rootHdr() *tar.Header {
	if r == nil {
		return nil
	}
	return r.root
}

// write renders the plan into dir through name, which maps a cleaned tar
// name to a path below dir.
func (p *Plan) write(reg Registry, dir string, opts Options, name nameMap) (*Result, error) {
	x, err := newExtractor(dir, opts)
	if err != nil {
		return nil, err
	}
	defer x.close()
	res := &Result{Plan: p}
	for _, files := range p.Files {
		if err := p.writeImage(reg, x, files, name); err != nil {
			return nil, err
		}
	}
	if err := x.finish(); err != nil {
		return nil, err
	}
	res.SkippedDevices = x.skippedDevices
	res.root = x.dirs["."]
	return res, x.close()
}

// nameMap maps a tar entry's cleaned name to a path below the target
// directory; ok is false for entries that are not written.
type nameMap func(clean string) (rel string, ok bool)

// treeName keeps the names of rkt's tree layout: rootfs/… and manifest.
func treeName(clean string) (string, bool) {
	return clean, clean == "rootfs" || clean == "manifest" || strings.HasPrefix(clean, "rootfs/")
}

// rootfsName writes rootfs/… at the top of the directory.
func rootfsName(clean string) (string, bool) {
	if clean == "rootfs" {
		return ".", true
	}
	if rel, ok := strings.CutPrefix(clean, "rootfs/"); ok {
		return rel, true
	}
	return "", false
}

// apply writes the entries of the tar in r that keep names (all when keep
// is nil).
func (x *extractor) apply(r io.Reader, name nameMap, keep map[string]struct{}) error {
	tr := tar.NewReader(r)
	own := ownEntries{}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read image tar: %w", err)
		}
		if err := checkName(hdr.Name); err != nil {
			return err
		}
		clean := cleanName(hdr.Name)
		if keep != nil {
			if _, ok := keep[clean]; !ok {
				if err := own.check(clean); err != nil {
					return fmt.Errorf("unpack %s: %w", hdr.Name, err)
				}
				continue
			}
			own[clean] = hdr.Typeflag
		}
		rel, ok := name(clean)
		if !ok {
			continue // the manifest, or anything else outside rootfs/
		}
		var link string
		if hdr.Typeflag == tar.TypeLink {
			if err := checkName(hdr.Linkname); err != nil {
				return err
			}
			target, ok := name(cleanName(hdr.Linkname))
			if !ok || target == "." || !strings.HasPrefix(cleanName(hdr.Linkname), "rootfs/") {
				return fmt.Errorf("unpack %s: hard link to %q, outside the root filesystem: refusing to extract it", hdr.Name, hdr.Linkname)
			}
			link = target
		}
		if err := x.entry(hdr, rel, link, tr); err != nil {
			return fmt.Errorf("unpack %s: %w", hdr.Name, err)
		}
	}
	return nil
}

// cleanName is an entry's name as acirenderer's file maps have it.
func cleanName(name string) string { return path.Clean(name) }

// ownEntries are the types of the entries one image has written so far.
type ownEntries map[string]byte

// check refuses an entry that acirenderer left out because the same
// image made one of its parents something other than a directory: tar(1)
// would write it through a symlink, so the image means to write outside
// the tree, or is broken. (Below an upper image's non-directory, a lower
// image's entries are left out, as layering means.)
func (own ownEntries) check(clean string) error {
	for p := path.Dir(clean); p != "." && p != "/"; p = path.Dir(p) {
		if typ, ok := own[p]; ok && typ != tar.TypeDir {
			return fmt.Errorf("it is below %s, which the same image makes a non-directory (type %q): refusing to extract it", p, typ)
		}
	}
	return nil
}

// checkName refuses absolute names and names with "..", whatever they
// would resolve to.
func checkName(name string) error {
	if strings.HasPrefix(name, "/") {
		return fmt.Errorf("image has an entry with an absolute name %q: refusing to extract it", name)
	}
	if slices.Contains(strings.Split(name, "/"), "..") {
		return fmt.Errorf("image has an entry %q that climbs out with \"..\": refusing to extract it", name)
	}
	return nil
}

// intoNewDir runs write on a temporary directory beside dir, which must
// not exist or be empty, and renames it into place when write succeeds.
// write returns the header whose attributes dir gets (nil: what tar(1)
// would give a directory it makes).
func intoNewDir(dir string, write func(tmp string) (*tar.Header, error)) (err error) {
	if err := checkTarget(dir); err != nil {
		return err
	}
	parent := filepath.Dir(filepath.Clean(dir))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, ".imagestore-extract-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	hdr, err := write(tmp)
	if err != nil {
		return err
	}
	asRoot := os.Geteuid() == 0
	if hdr == nil {
		hdr = &tar.Header{Typeflag: tar.TypeDir, Mode: 0o755, ModTime: time.Now(), Uid: os.Geteuid(), Gid: os.Getegid()}
	}
	if asRoot {
		if err := os.Lchown(tmp, hdr.Uid, hdr.Gid); err != nil {
			return err
		}
	}
	if err := os.Chmod(tmp, entryMode(hdr, asRoot)); err != nil {
		return err
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err // checkTarget saw it empty; it must still be
	}
	if err := os.Rename(tmp, dir); err != nil {
		return err
	}
	// After the rename, which may touch the directory's times.
	return os.Chtimes(dir, hdr.ModTime, hdr.ModTime)
}

// checkTarget accepts a directory that does not exist or is empty.
func checkTarget(dir string) error {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s exists and is not a directory: give a new or empty directory", dir)
	}
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if names, _ := f.Readdirnames(1); len(names) > 0 {
		return fmt.Errorf("%s is not empty: give a new or empty directory", dir)
	}
	return nil
}
