package main

import (
	"errors"
	"fmt"

	store "github.com/imagestore/imagestore"
	"github.com/spf13/cobra"
)

func (a *app) rmCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "rm KEY|NAME[:version]...",
		Aliases: []string{"remove"},
		Short:   "Remove images from the store",
		Long: `Rm removes images and prints the key of each removed image on standard
output. An argument is a key (or an unambiguous prefix), a name with a
version (the image GetACI picks for it), or a bare name, which removes
every image of that name.

It goes on after an argument that fails and exits 1 if any did. When an
image's files cannot all be deleted the image is still removed from the
database (a warning names the files left behind).`,
		Example: `  imagestore rm sha512-1c9abf1ff224
  imagestore rm example.com/hello:1.0.0 example.com/old`,
		Args:              minArgs(1),
		ValidArgsFunction: a.completeImages(-1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withStore(func(s *store.Store) error {
				return a.each("rm", args, func(ref string) error {
					keys, err := resolveForRemoval(s, ref)
					if err != nil {
						return fmt.Errorf("rm %s: %w", ref, err)
					}
					for _, key := range keys {
						err := s.RemoveACI(key)
						var partial *store.StoreRemovalError
						if errors.As(err, &partial) {
							a.note("imagestore: warning: %s: image removed, but %s", key, oneLine(err.Error()))
							err = nil
						}
						if err != nil {
							return fmt.Errorf("rm %s: %w", ref, err)
						}
						if !a.quiet {
							fmt.Fprintln(a.stdout, key)
						}
					}
					return nil
				})
			})
		},
	}
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
