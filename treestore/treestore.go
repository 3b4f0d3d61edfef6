// Package treestore keeps rendered images: each image of the store
// rendered together with its dependencies into a tree that a container
// runtime can use as a root filesystem. It reimplements rkt v1.30.0's
// store/treestore API and layout over package store, so code written
// against rkt's moves over by changing an import path, and trees rendered
// by rkt in an adopted store are found and pass Check:
//
//	DIR/tree/<id>/rootfs     the rendered root filesystem
//	DIR/tree/<id>/manifest   the upper image's manifest
//	DIR/tree/<id>/hash       the tree's hash (Hash), written at render
//	DIR/tree/<id>/image      the key of the image the tree renders
//	DIR/tree/<id>/rendered   present once the tree is complete and durable
//	DIR/treestorelocks/<id>  one lock file per tree (flock)
//
// A tree's id is "deps-" followed by a key of the SHA-512 of the
// comma-joined keys of the image's flattened dependency list, so the id
// changes when a dependency resolves to another image.
//
// What it fixes of rkt's: a render is crash-safe (every file and
// directory of the tree, and the hash and image files, are fsynced before
// "rendered" is created, so a tree IsRendered reports is whole after a
// power cut); TreeStoreSize is the sum of all the rendered trees of an
// image, not the last one's size; Remove of a tree whose image is gone
// succeeds; ids are checked, so no id names a path outside DIR/tree; GC
// removes the trees of images that are gone and partial trees that no
// render holds.
package treestore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	store "github.com/imagestore/imagestore"
	"github.com/imagestore/imagestore/render"
)

// The files of a tree beside its rootfs, as rkt names them.
const (
	hashFile     = "hash"
	renderedFile = "rendered"
	imageFile    = "image"
	manifestFile = "manifest"
)

// ErrReadHashfile is returned (wrapped) by Check when a tree's hash file
// cannot be read.
var ErrReadHashfile = errors.New("cannot read hash file")

// ErrInvalidID is returned for an id that is not a tree id
// ("deps-sha512-" and 64 hex digits).
var ErrInvalidID = errors.New("invalid tree id")

var idPattern = regexp.MustCompile(`^deps-sha512-[0-9a-f]{64}$`)

func checkID(id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("%w %q: want deps-sha512- and 64 hex digits", ErrInvalidID, id)
	}
	return nil
}

// Store is a store of rendered images. It is safe for concurrent use, and
// several processes may use the same directory: each tree has a lock
// file, exclusive while the tree is rendered or removed, shared while it
// is checked.
type Store struct {
	// Progress, if set (before the Store is used), is called as a render
	// writes file data, with the bytes written since its last call.
	Progress func(n int64)

	dir     string // DIR/tree
	lockDir string // DIR/treestorelocks
	store   *store.Store
}

// NewStore returns the tree store in dir (usually the image store's own
// directory), rendering the images of s.
func NewStore(dir string, s *store.Store) (*Store, error) {
	if s == nil {
		return nil, errors.New("treestore: no image store given")
	}
	ts := &Store{dir: filepath.Join(dir, "tree"), lockDir: filepath.Join(dir, "treestorelocks"), store: s}
	for _, d := range []string{ts.dir, ts.lockDir} {
		if err := mkdirDurable(d); err != nil {
			return nil, fmt.Errorf("treestore: %w", err)
		}
	}
	return ts, nil
}

// mkdirDurable makes dir (and its parents) if it is not there, and
// fsyncs its parent then, so that a tree rendered in it survives a power
// cut.
func mkdirDurable(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return syncDir(filepath.Dir(dir))
}

// GetID computes the tree id of the image with the given key: a hash of
// the keys of its flattened dependency list. The same key may give
// another id once its dependencies resolve to other images.
func (ts *Store) GetID(key string) (string, error) {
	deps, err := ts.resolve(key)
	if err != nil {
		return "", err
	}
	return treeID(deps.Keys()), nil
}

func (ts *Store) resolve(key string) (*render.Deps, error) {
	full, err := ts.store.ResolveKey(key)
	if err != nil {
		return nil, err
	}
	return render.Resolve(ts.store, full)
}

// treeID is rkt's: "deps-" and the store's key of the SHA-512 of the
// comma-joined keys.
func treeID(keys []string) string {
	return "deps-" + keyOf([]byte(strings.Join(keys, ",")))
}

// Render renders the image with the given key and its dependencies, unless
// a complete tree is already there (and rebuild is false). It returns the
// tree's id, and its hash when it was rendered now ("" when it was already
// there), as rkt's does. Processes rendering the same tree at once render
// it once: the others wait and find it rendered.
func (ts *Store) Render(key string, rebuild bool) (id, hash string, err error) {
	deps, err := ts.resolve(key)
	if err != nil {
		return "", "", fmt.Errorf("cannot calculate treestore id: %w", err)
	}
	id = treeID(deps.Keys())
	lock, err := lockTree(ts.lockDir, id, exclusive)
	if err != nil {
		return "", "", err
	}
	defer lock.close()
	if !rebuild {
		rendered, err := ts.IsRendered(id)
		if err != nil {
			return "", "", fmt.Errorf("cannot determine if tree is already rendered: %w", err)
		}
		if rendered {
			return id, "", nil
		}
	}
	// A partial tree (a render or a removal that did not finish) goes first.
	if err := ts.remove(id); err != nil {
		return "", "", err
	}
	if hash, err = ts.render(id, deps); err != nil {
		return "", "", err
	}
	return id, hash, nil
}

// render writes the tree id of deps' upper image. The order makes a crash
// harmless: the tree, its hash and image files are fsynced before
// "rendered" is created, and that before the size is recorded.
func (ts *Store) render(id string, deps *render.Deps) (hash string, err error) {
	key := deps.Keys()[0]
	treepath := ts.GetPath(id)
	if err := os.Mkdir(treepath, 0o755); err != nil {
		return "", fmt.Errorf("cannot create treestore directory %s: %w", treepath, err)
	}
	// 0755 as rkt's, not the setgid bit that the store's directories pass
	// on to new directories.
	if err := os.Chmod(treepath, 0o755); err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(treepath) // never leave a partial tree behind
		}
	}()
	if err := syncDir(ts.dir); err != nil {
		return "", err
	}
	plan, err := deps.Plan(ts.store)
	if err != nil {
		return "", fmt.Errorf("cannot render aci: %w", err)
	}
	opts := render.Options{
		Sync:         true,
		AllowDevices: os.Geteuid() == 0,
		Progress:     ts.Progress,
		// The hash reads the tree from the page cache while the disk
		// writes it back.
		WhileSyncing: func() (err error) {
			if hash, err = ts.Hash(id); err != nil {
				return fmt.Errorf("cannot calculate tree hash: %w", err)
			}
			return nil
		},
	}
	if _, err := plan.Tree(ts.store, treepath, opts); err != nil {
		return "", fmt.Errorf("cannot render aci: %w", err)
	}
	for name, content := range map[string]string{hashFile: hash, imageFile: key} {
		if err := writeSynced(filepath.Join(treepath, name), content); err != nil {
			return "", err
		}
	}
	if err := syncDir(treepath); err != nil {
		return "", err
	}
	if err := writeSynced(filepath.Join(treepath, renderedFile), ""); err != nil {
		return "", err
	}
	if err := syncDir(treepath); err != nil {
		return "", err
	}
	if err := ts.updateSize(key); err != nil {
		return "", err
	}
	return hash, nil
}

// writeSynced writes a small file and fsyncs it.
func writeSynced(path, content string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteString(content)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Check computes the tree's hash and compares it with the one recorded at
// render; it returns the hash.
func (ts *Store) Check(id string) (string, error) {
	if err := checkID(id); err != nil {
		return "", err
	}
	lock, err := lockTree(ts.lockDir, id, shared)
	if err != nil {
		return "", err
	}
	defer lock.close()
	want, err := os.ReadFile(filepath.Join(ts.GetPath(id), hashFile))
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrReadHashfile, err)
	}
	got, err := ts.Hash(id)
	if err != nil {
		return "", fmt.Errorf("cannot calculate tree hash: %w", err)
	}
	if got != string(want) {
		return "", fmt.Errorf("wrong tree hash: %s, expected: %s", got, want)
	}
	return got, nil
}

// Remove removes the tree with the given id, rendered or partial.
func (ts *Store) Remove(id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	lock, err := lockTree(ts.lockDir, id, exclusive)
	if err != nil {
		return err
	}
	defer lock.close()
	if err := ts.remove(id); err != nil {
		return fmt.Errorf("error removing the tree store: %w", err)
	}
	return nil
}

// remove deletes a tree under its exclusive lock: "rendered" first (and
// durably), so that a removal cut short leaves a tree IsRendered denies.
func (ts *Store) remove(id string) error {
	treepath := ts.GetPath(id)
	if _, err := os.Lstat(treepath); errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	err := os.Remove(filepath.Join(treepath, renderedFile))
	if err == nil {
		err = syncDir(treepath)
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	key, _ := ts.GetImageHash(id) // a partial tree may have none
	if err := os.RemoveAll(treepath); err != nil {
		return err
	}
	if err := syncDir(ts.dir); err != nil {
		return err
	}
	if key == "" {
		return nil
	}
	return ts.updateSize(key)
}

// updateSize records in the image store the size of all the image's
// rendered trees. It runs under the image's size lock and adds up what is
// on disk, so concurrent renders and removals of the image's trees leave
// the sum of those there when the last one is done.
func (ts *Store) updateSize(key string) error {
	lock, err := lockTree(ts.lockDir, "size-"+key, exclusive)
	if err != nil {
		return err
	}
	defer lock.close()
	ids, err := ts.GetIDs()
	if err != nil {
		return err
	}
	var total int64
	for _, id := range ids {
		if k, err := ts.GetImageHash(id); err != nil || k != key {
			continue
		}
		if ok, err := ts.IsRendered(id); err != nil || !ok {
			continue
		}
		size, err := ts.Size(id)
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed meanwhile
		}
		if err != nil {
			return err
		}
		total += size
	}
	err = ts.store.UpdateTreeStoreSize(key, total)
	if errors.Is(err, store.ErrKeyNotFound) {
		return nil // the image is gone: nothing to record
	}
	return err
}

// GetIDs lists the ids of the trees there, rendered or partial.
func (ts *Store) GetIDs() ([]string, error) {
	entries, err := os.ReadDir(ts.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read treestore directory: %w", err)
	}
	var ids []string
	for _, e := range entries {
		if e.IsDir() && checkID(e.Name()) == nil {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil
}

// IsRendered tells whether the tree is complete.
func (ts *Store) IsRendered(id string) (bool, error) {
	if err := checkID(id); err != nil {
		return false, err
	}
	_, err := os.Stat(filepath.Join(ts.GetPath(id), renderedFile))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// GetPath returns the tree's directory. It does not check that the tree
// exists or is rendered (IsRendered does).
func (ts *Store) GetPath(id string) string {
	return filepath.Join(ts.dir, filepath.Base(filepath.Clean("/"+id)))
}

// GetRootFS returns the tree's root filesystem. It does not check that
// the tree exists or is rendered (IsRendered does).
func (ts *Store) GetRootFS(id string) string {
	return filepath.Join(ts.GetPath(id), "rootfs")
}

// Size returns the bytes the tree takes, as rkt counts them: the sizes of
// every file, directory and symlink in it, a file with several links once.
func (ts *Store) Size(id string) (int64, error) {
	if err := checkID(id); err != nil {
		return 0, err
	}
	return dirSize(ts.GetPath(id))
}

// GetImageHash returns the key of the image the tree renders.
func (ts *Store) GetImageHash(id string) (string, error) {
	if err := checkID(id); err != nil {
		return "", err
	}
	b, err := os.ReadFile(filepath.Join(ts.GetPath(id), imageFile))
	if err != nil {
		return "", fmt.Errorf("cannot read image file: %w", err)
	}
	return string(b), nil
}
