package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/appc/spec/schema/types"
	store "github.com/imagestore/imagestore"
	"github.com/spf13/cobra"
)

// storeDir is the store directory: --dir, else $IMAGESTORE_DIR, else the
// per-user data directory ($XDG_DATA_HOME/imagestore, by default
// ~/.local/share/imagestore).
func (a *app) storeDir() (string, error) {
	if a.dir != "" {
		return a.dir, nil
	}
	if d := os.Getenv("IMAGESTORE_DIR"); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "imagestore"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return "", errors.New("no store directory: give --dir or set $IMAGESTORE_DIR (there is no home directory to default to)")
	}
	return filepath.Join(home, ".local", "share", "imagestore"), nil
}

// withStore opens the existing store, runs fn and closes the store; a
// failure to close is reported too. A directory that holds no store is an
// error, and nothing is created there: only import makes a new store
// (withNewStore), so that a mistyped --dir is noticed.
func (a *app) withStore(fn func(s *store.Store) error) error {
	return a.openStore(false, fn)
}

// withNewStore is withStore for import: it creates the store if needed.
func (a *app) withNewStore(fn func(s *store.Store) error) error {
	return a.openStore(true, fn)
}

func (a *app) openStore(create bool, fn func(s *store.Store) error) error {
	dir, err := a.storeDir()
	if err != nil {
		return err
	}
	if !create && !holdsStore(dir) {
		return fmt.Errorf("no image store in %s: check --dir or $IMAGESTORE_DIR ('imagestore import' creates a store)", dir)
	}
	s, err := store.NewStore(dir)
	if err != nil {
		return err
	}
	if rerr := s.RecoveryError(); rerr != nil {
		a.note("imagestore: warning: %s: 'imagestore gc' retries it", oneLine(rerr.Error()))
	}
	err = fn(s)
	if cerr := s.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("close store %s: %w", dir, cerr)
	}
	return err
}

// holdsStore reports whether dir looks like an image store: it has a
// database (ours, or rkt's ql database, which NewStore explains), or image
// files (a store whose database was lost, which NewStore explains too).
func holdsStore(dir string) bool {
	for _, p := range []string{filepath.Join("db", "store.db"), filepath.Join("db", "ql.db"), "blob"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err == nil {
			return true
		}
	}
	return false
}

// isKeyRef reports whether ref is meant as a key (or key prefix) rather
// than an image name.
func isKeyRef(ref string) bool { return strings.HasPrefix(ref, "sha512-") }

// parseNameRef splits NAME[:version] into an image name and the labels
// that GetACI should match.
func parseNameRef(ref string) (types.ACIdentifier, types.Labels, error) {
	name, ver, hasVer := strings.Cut(ref, ":")
	id, err := types.NewACIdentifier(name)
	if err != nil {
		return "", nil, fmt.Errorf("%q is neither a key (sha512-...) nor an image name[:version]: %v", ref, err)
	}
	var labels types.Labels
	if hasVer {
		if ver == "" {
			return "", nil, fmt.Errorf("%q has an empty version after ':': give NAME or NAME:VERSION", ref)
		}
		labels = types.Labels{{Name: "version", Value: ver}}
	}
	return *id, labels, nil
}

// resolve turns KEY|NAME[:version] into a full key. A key may be any
// unambiguous prefix; a name picks the image GetACI prefers (the latest
// import, those imported as "latest" first unless a version is given).
func resolve(s *store.Store, ref string) (string, error) {
	if isKeyRef(ref) {
		return s.ResolveKey(ref)
	}
	name, labels, err := parseNameRef(ref)
	if err != nil {
		return "", err
	}
	return s.GetACI(name, labels)
}

// shortKey is a key cut to 19 characters (sha512- and 12 hex digits), as
// rkt shows them.
func shortKey(key string) string {
	const n = 19
	if len(key) > n {
		return key[:n]
	}
	return key
}

// completeImages completes image arguments with the stored names and
// short keys; maxArgs limits how many image arguments the command takes
// (-1: any number).
func (a *app) completeImages(maxArgs int) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if maxArgs >= 0 && len(args) >= maxArgs {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		err := a.withStore(func(s *store.Store) error {
			ais, err := s.GetAllACIInfos(nil, true)
			if err != nil {
				return err
			}
			seen := map[string]bool{}
			for _, ai := range ais {
				if !seen[ai.Name] && strings.HasPrefix(ai.Name, toComplete) {
					seen[ai.Name] = true
					out = append(out, cobra.CompletionWithDesc(ai.Name, "image name"))
				}
				if strings.HasPrefix(ai.BlobKey, toComplete) {
					out = append(out, cobra.CompletionWithDesc(shortKey(ai.BlobKey), ai.Name))
				}
			}
			return nil
		})
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// exactArgs, rangeArgs and minArgs check the number of arguments and
// report a wrong number as a usage error.
func exactArgs(n int) cobra.PositionalArgs { return rangeArgs(n, n) }

func minArgs(n int) cobra.PositionalArgs { return rangeArgs(n, -1) }

func rangeArgs(min, max int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < min || (max >= 0 && len(args) > max) {
			want := fmt.Sprintf("%d", min)
			switch {
			case max < 0:
				want = fmt.Sprintf("at least %d", min)
			case max != min:
				want = fmt.Sprintf("%d to %d", min, max)
			}
			return usagef("%s: want %s argument(s), got %d: usage: %s (see '%s --help')",
				subPath(cmd), want, len(args), cmd.UseLine(), cmd.CommandPath())
		}
		return nil
	}
}
