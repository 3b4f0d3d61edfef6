package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	store "github.com/imagestore/imagestore"
	"github.com/imagestore/imagestore/convert"
	"github.com/imagestore/imagestore/treestore"
	"github.com/spf13/cobra"
)

// rmJSON is what rm --json prints.
type rmJSON struct {
	Removed []removedJSON `json:"removed"`
	Failed  []failedJSON  `json:"failed"`
}

type removedJSON struct {
	Arg   string `json:"arg"`
	Key   string `json:"key"`
	Layer bool   `json:"layer,omitempty"` // a layer ACI of a layered import that nothing uses any more

	Trees   []string `json:"trees,omitempty"`   // its rendered trees, removed with it
	Warning string   `json:"warning,omitempty"` // files left behind
}

func (a *app) rmCommand() *cobra.Command {
	var asJSON, force bool
	cmd := &cobra.Command{
		Use:     "rm KEY|NAME[:version]...",
		Aliases: []string{"remove"},
		Short:   "Remove images from the store",
		Long: `Rm removes images and prints the key of each removed image on standard
output. An argument is a key (or an unambiguous prefix), a name with a
version (the image GetACI picks for it), or a bare name, which removes
every image of that name.

The image's rendered trees (see 'imagestore render') are removed with it;
trees of other images that depend on it stay, as rendered copies, until
their own image goes.

An image that other images depend on (a layer shared by images imported
with 'import --layers', or any ACI named as a dependency) is not removed:
rm fails and lists them, unless --force, after which they no longer
render. The layer ACIs of a removed image that no other image uses are
removed with it (and printed); those that other images use stay.

It goes on after an argument that fails and exits 1 if any did. When an
image's files cannot all be deleted the image is still removed from the
database (a warning names the files left behind). --json prints one JSON
document: {"removed": [{"arg", "key", "trees", "warning"}], "failed":
[{"arg", "error"}]}.`,
		Example: `  imagestore rm sha512-1c9abf1ff224
  imagestore rm example.com/hello:1.0.0 example.com/old`,
		Args:              minArgs(1),
		ValidArgsFunction: a.completeImages(-1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := rmJSON{Removed: []removedJSON{}, Failed: []failedJSON{}}
			var pruned []string // layers removed with an image, for the arguments after it
			err := a.withTreeStore(false, func(s *store.Store, ts *treestore.Store) error {
				return a.each("rm", args, func(ref string) (err error) {
					defer func() {
						if err != nil {
							out.Failed = append(out.Failed, failedJSON{ref, oneLine(errorMessage(err))})
						}
					}()
					keys, err := resolveForRemoval(s, ref)
					if errors.Is(err, store.ErrKeyNotFound) && isKeyRef(ref) {
						// A layer an earlier argument's image took with it.
						if i := slices.IndexFunc(pruned, func(k string) bool { return strings.HasPrefix(k, ref) }); i >= 0 {
							a.note("imagestore: %s: already removed, as a layer nothing else used", pruned[i])
							return nil
						}
					}
					if err != nil {
						return fmt.Errorf("rm %s: %w", ref, err)
					}
					g, err := convert.LoadDependencies(s)
					if err != nil {
						return fmt.Errorf("rm %s: %w", ref, err)
					}
					if !force {
						for _, key := range keys {
							if err := inUse(g, key, keys); err != nil {
								return fmt.Errorf("rm %s: %w", ref, err)
							}
						}
					}
					remove := func(key string, layer bool) error {
						removed := removedJSON{Arg: ref, Key: key, Layer: layer}
						err := s.RemoveACI(key)
						var partial *store.StoreRemovalError
						if errors.As(err, &partial) {
							removed.Warning = "image removed, but " + oneLine(err.Error())
							a.note("imagestore: warning: %s: %s", key, removed.Warning)
							err = nil
						}
						if err != nil {
							return fmt.Errorf("rm %s: %w", ref, err)
						}
						if removed.Trees, err = removeTrees(ts, key); err != nil {
							return fmt.Errorf("rm %s: image removed, but its trees: %w", ref, err)
						}
						out.Removed = append(out.Removed, removed)
						if !asJSON {
							fmt.Fprintln(a.stdout, key)
						}
						return nil
					}
					for _, key := range keys {
						if err := remove(key, false); err != nil {
							return err
						}
					}
					for _, key := range g.Orphans(keys...) {
						if err := remove(key, true); err != nil {
							return err
						}
						pruned = append(pruned, key)
					}
					return nil
				})
			})
			return a.finishJSON(asJSON, len(out.Removed)+len(out.Failed) > 0, out, err)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	cmd.Flags().BoolVar(&force, "force", false, "remove images that other images depend on (those then fail to render)")
	return cmd
}

// inUse refuses to remove key while images other than those removed with
// it depend on it.
func inUse(g *convert.Dependencies, key string, removing []string) error {
	var users []string
	for _, u := range g.Dependants(key) {
		if !slices.Contains(removing, u) {
			users = append(users, fmt.Sprintf("%s (%s)", u, g.Name(u)))
		}
	}
	if len(users) == 0 {
		return nil
	}
	return fmt.Errorf("%w: image %s (%s) is a dependency of %d other images, which would no longer render: %s; remove them first, or give --force",
		errInUse, key, g.Name(key), len(users), strings.Join(users, ", "))
}

// removeTrees removes the rendered trees of the image key.
func removeTrees(ts *treestore.Store, key string) ([]string, error) {
	if ts == nil {
		return nil, nil
	}
	ids, err := ts.IDsOf(key)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		if err := ts.Remove(id); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// resolveForRemoval is resolve, except that a bare name means every image
// of that name.
func resolveForRemoval(s *store.Store, ref string) ([]string, error) {
	if isKeyRef(ref) {
		key, err := s.ResolveKey(ref)
		return []string{key}, err
	}
	name, labels, err := parseNameRef(ref)
	if err != nil {
		return nil, err
	}
	if len(labels) > 0 {
		key, err := s.GetACI(name, labels)
		return []string{key}, err
	}
	keys, found, err := s.ResolveName(name.String())
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("no image named %q: %w", name, store.ErrKeyNotFound)
	}
	return keys, nil
}
