package main

import (
	"slices"

	"fmt"
	"github.com/imagestore/imagestore/treestore"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	store "github.com/imagestore/imagestore"
	"github.com/imagestore/imagestore/convert"
	"github.com/spf13/cobra"
)

// gcJSON is what gc --json prints.
type gcJSON struct {
	DryRun        bool     `json:"dryRun"`
	RemovedImages []string `json:"removedImages"`
	RemovedFiles  []string `json:"removedFiles"`
	RemovedTrees  []string `json:"removedTrees"`
	InUse         []string `json:"inUse"`
	Error         string   `json:"error,omitempty"`
}

func (a *app) gcCommand() *cobra.Command {
	var (
		grace   time.Duration
		orphans bool
		dryRun  bool
		asJSON  bool
	)
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Remove unused images and the leftovers of crashes",
		Long: `Gc removes the images not used (read or imported) for longer than the
grace period, and what crashed writers left in the store's tmp/. With
--orphans it also sweeps the whole store for files without an image:
blobs and manifests left by interrupted removals, stale lock files and
half-created temp files.

It also removes the rendered trees (see 'imagestore render') whose image
is gone, and partial trees that no render is writing.

An unused image that a kept image depends on (a layer shared by images
imported with 'import --layers', or any ACI named as a dependency) is
kept, so that gc never breaks an image it keeps.

An image another process is reading or writing is never removed; it is
reported as in use and left for a later gc. Each removal is printed on
standard output ("removed image KEY", "removed file PATH", "removed tree ID"; with --quiet
only KEY or PATH); --dry-run prints what would be removed ("would remove
...") and removes nothing. When there is nothing to remove, it says so.
--json prints one JSON document: {"dryRun", "removedImages",
"removedFiles", "removedTrees", "inUse", "error"}.`,
		Example: `  imagestore gc --dry-run
  imagestore gc --grace-period 168h --orphans`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if grace < 0 {
				return usagef("gc: --grace-period %v is negative: give a duration such as 24h or 0s", grace)
			}
			return a.withTreeStore(false, func(s *store.Store, ts *treestore.Store) error {
				since := time.Now().Add(-grace)
				keep, err := dependenciesOfKept(s, since)
				if err != nil {
					return fmt.Errorf("gc: %w", err)
				}
				rep, err := s.GC(store.GCOptions{
					UnusedSince: since,
					Keep:        keep,
					Orphans:     orphans,
					DryRun:      dryRun,
				})
				if err != nil {
					err = fmt.Errorf("gc: %w", err)
				}
				if rep == nil {
					return err
				}
				trees, terr := gcTrees(ts, dryRun)
				if terr != nil && err == nil {
					err = fmt.Errorf("gc: trees: %w", terr)
				}
				if asJSON {
					out := gcJSON{DryRun: dryRun, RemovedImages: []string{}, RemovedFiles: []string{}, RemovedTrees: []string{}, InUse: []string{}}
					out.RemovedTrees = append(out.RemovedTrees, trees...)
					out.RemovedImages = append(out.RemovedImages, rep.RemovedImages...)
					out.RemovedFiles = append(out.RemovedFiles, rep.RemovedFiles...)
					out.InUse = append(out.InUse, rep.InUse...)
					if err != nil {
						out.Error = oneLine(errorMessage(err))
					}
					return a.finishJSON(true, true, out, err)
				}
				verb := "removed"
				if dryRun {
					verb = "would remove"
				}
				for _, k := range rep.RemovedImages {
					a.result(k, "%s image %s", verb, k)
				}
				for _, f := range rep.RemovedFiles {
					a.result(f, "%s file %s", verb, f)
				}
				for _, id := range trees {
					a.result(id, "%s tree %s", verb, id)
				}
				for _, k := range rep.InUse {
					a.note("imagestore: %s is in use by another process: left for a later gc", k)
				}
				if len(rep.RemovedImages)+len(rep.RemovedFiles)+len(trees) == 0 && err == nil {
					a.note("gc: nothing to remove")
				}
				return err
			})
		},
	}
	f := cmd.Flags()
	f.DurationVar(&grace, "grace-period", 24*time.Hour, "remove images unused for longer than this (0s: every unused image)")
	f.BoolVar(&orphans, "orphans", false, "also remove files that belong to no image (crash and removal leftovers)")
	f.BoolVar(&dryRun, "dry-run", false, "print what would be removed, remove nothing")
	f.BoolVar(&asJSON, "json", false, "print JSON for scripts")
	return cmd
}

// problemJSON is a problem as verify --json prints it.
type problemJSON struct {
	Kind   string `json:"kind"`
	Key    string `json:"key"`
	Path   string `json:"path"`
	Detail string `json:"detail"`
}

func (a *app) verifyCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify [KEY|NAME[:version]...]",
		Short: "Check the stored images against their keys; change nothing",
		Long: `Verify re-hashes each image (all of them, or those given) and checks it
against its key and recorded size, checks that its manifest file matches
the manifest in the image and that the database agrees with it. Without
arguments it also looks for files that belong to no image and temp files
left by crashes. It changes nothing.

Each problem is printed on a line of standard output: KIND [KEY] [PATH]:
DETAIL, and the command then exits 1. Kinds: blob-missing, blob-corrupt,
size-mismatch, manifest-missing, manifest-corrupt, labels-stale,
name-mismatch, orphan-blob, orphan-manifest, stray-file, stale-temp,
and for the rendered trees (of the images given, or all): tree-corrupt
(its files no longer match its hash), tree-partial (a render that did not
finish; gc removes it). --json prints {"images", "bytes", "trees",
"problems": [{"kind", "key", "path", "detail"}]} instead.`,
		Example: `  imagestore verify
  imagestore verify example.com/hello:1.0.0 sha512-1c9abf1ff224`,
		ValidArgsFunction: a.completeImages(-1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withTreeStore(false, func(s *store.Store, ts *treestore.Store) error {
				var keys []string
				for _, ref := range args {
					key, err := resolve(s, ref)
					if err != nil {
						return fmt.Errorf("verify %s: %w", ref, err)
					}
					keys = append(keys, key)
				}
				rep, err := s.Verify(keys...)
				if err != nil {
					return fmt.Errorf("verify: %w", err)
				}
				trees, err := verifyTrees(ts, rep, keys)
				if err != nil {
					return fmt.Errorf("verify: trees: %w", err)
				}
				if asJSON {
					out := struct {
						Images   int           `json:"images"`
						Bytes    int64         `json:"bytes"`
						Trees    int           `json:"trees"`
						Problems []problemJSON `json:"problems"`
					}{rep.Images, rep.Bytes, trees, []problemJSON{}}
					for _, p := range rep.Problems {
						out.Problems = append(out.Problems, problemJSON{string(p.Kind), p.Key, p.Path, p.Detail})
					}
					if err := writeJSON(a.stdout, out); err != nil {
						return err
					}
				} else {
					for _, p := range rep.Problems {
						fmt.Fprintln(a.stdout, oneLine(p.String()))
					}
				}
				if !rep.OK() {
					return withHint(fmt.Errorf("verify: %d problem(s) in %d image(s) checked", len(rep.Problems), rep.Images),
						verifyHint(rep.Problems))
				}
				if !asJSON && !a.quiet {
					treeNote := ""
					if trees > 0 {
						treeNote = fmt.Sprintf(", %d rendered tree(s) checked", trees)
					}
					fmt.Fprintf(a.stdout, "ok: %d image(s), %s verified%s\n", rep.Images, humanize.IBytes(uint64(rep.Bytes)), treeNote)
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	return cmd
}

// verifyHint says what to do about the problems Verify found.
func verifyHint(problems []store.Problem) string {
	var hints []string
	seen := map[string]bool{}
	add := func(h string) {
		if !seen[h] {
			seen[h] = true
			hints = append(hints, h)
		}
	}
	for _, p := range problems {
		switch p.Kind {
		case store.ProblemOrphanBlob, store.ProblemOrphanManifest, store.ProblemStaleTemp:
			add("'imagestore gc --orphans' removes leftover files")
		case store.ProblemBlobMissing, store.ProblemBlobCorrupt, store.ProblemSizeMismatch:
			add("remove damaged images with 'imagestore rm KEY' and import them again")
		case store.ProblemStrayFile:
			add("move stray files out of the store by hand")
		default:
			add("'imagestore rebuild' recreates the database from the images")
		}
	}
	return strings.Join(hints, "; ")
}

// rebuildJSON is what rebuild --json prints.
type rebuildJSON struct {
	Images      []string      `json:"images"`
	Skipped     []problemJSON `json:"skipped"`
	OldDatabase string        `json:"oldDatabase"`
}

func (a *app) rebuildCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "rebuild",
		Short: "Recreate the store's database from its images",
		Long: `Rebuild recreates the database from the image files: every image is
re-hashed and checked, its manifest re-read, and its record written anew
with the file's modification time as import time. Remotes and latest marks
are not kept in the images and are lost. The old database is moved into
db-backups/, never deleted. A store written by rkt is refused: 'imagestore
adopt' keeps what rkt recorded, which rebuild would lose.

Run it when a command says the database must be rebuilt (corrupt or lost).
It needs the store to itself and waits up to 30s for other users. The keys
recorded are printed on standard output; images that could not be
recorded are reported as warnings on standard error. --json prints one
JSON document: {"images", "skipped": [{"kind", "key", "path", "detail"}],
"oldDatabase"}.`,
		Example: `  imagestore rebuild
  imagestore --dir /var/lib/imagestore rebuild --json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := a.storeDir()
			if err != nil {
				return err
			}
			rep, err := store.Rebuild(dir)
			if err != nil {
				return err
			}
			if asJSON {
				out := rebuildJSON{Images: []string{}, Skipped: []problemJSON{}, OldDatabase: rep.OldDatabase}
				out.Images = append(out.Images, rep.Images...)
				for _, p := range rep.Skipped {
					out.Skipped = append(out.Skipped, problemJSON{string(p.Kind), p.Key, p.Path, p.Detail})
				}
				return writeJSON(a.stdout, out)
			}
			for _, k := range rep.Images {
				fmt.Fprintln(a.stdout, k)
			}
			for _, p := range rep.Skipped {
				a.note("imagestore: warning: not recorded: %s", oneLine(p.String()))
			}
			if rep.OldDatabase != "" {
				a.note("rebuilt: %d image(s) recorded, %d skipped; the old database is in %s", len(rep.Images), len(rep.Skipped), rep.OldDatabase)
			} else {
				a.note("rebuilt: %d image(s) recorded, %d skipped", len(rep.Images), len(rep.Skipped))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	return cmd
}

// verifyTrees checks the trees of the given images (all trees when none
// are given) and adds their problems to rep; it returns how many rendered
// trees it checked.
func verifyTrees(ts *treestore.Store, rep *store.VerifyReport, keys []string) (int, error) {
	if ts == nil {
		return 0, nil
	}
	ids, err := ts.GetIDs()
	if err != nil {
		return 0, err
	}
	checked := 0
	for _, id := range ids {
		key, _ := ts.GetImageHash(id)
		if len(keys) > 0 && !slices.Contains(keys, key) {
			continue
		}
		rendered, err := ts.IsRendered(id)
		if err != nil {
			return checked, err
		}
		if !rendered {
			rep.Problems = append(rep.Problems, store.Problem{Kind: "tree-partial", Key: key, Path: ts.GetPath(id), Detail: "a render that did not finish: 'imagestore gc' removes it"})
			continue
		}
		checked++
		if _, err := ts.Check(id); err != nil {
			rep.Problems = append(rep.Problems, store.Problem{Kind: "tree-corrupt", Key: key, Path: ts.GetPath(id), Detail: err.Error() + ": 'imagestore render --rebuild' renders it again"})
		}
	}
	return checked, nil
}

// gcTrees removes the trees whose image is gone and partial trees; with
// dryRun it lists the trees whose image is gone.
func gcTrees(ts *treestore.Store, dryRun bool) ([]string, error) {
	if ts == nil {
		return nil, nil
	}
	if !dryRun {
		return ts.GC()
	}
	return ts.Garbage()
}

// dependenciesOfKept reports the images that the images gc keeps (used
// since since) depend on, directly or not.
func dependenciesOfKept(s *store.Store, since time.Time) (func(string) bool, error) {
	infos, err := s.GetAllACIInfos(nil, false)
	if err != nil {
		return nil, err
	}
	used := map[string]bool{}
	for _, info := range infos {
		used[info.BlobKey] = !info.LastUsed.Before(since)
	}
	g, err := convert.LoadDependencies(s)
	if err != nil {
		return nil, err
	}
	needed := g.Needed(func(k string) bool { return used[k] })
	return func(k string) bool { return needed[k] }, nil
}
