package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/dustin/go-humanize"
	store "github.com/imagestore/imagestore"
	"github.com/imagestore/imagestore/treestore"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
)

func (a *app) renderCommand() *cobra.Command {
	var rebuild, asJSON bool
	cmd := &cobra.Command{
		Use:   "render KEY|NAME[:version]",
		Short: "Render an image with its dependencies into the tree store",
		Long: `Render renders the image and every image it depends on into the tree
store (DIR/tree/<id>, rkt's tree store layout) unless that tree is already
rendered, and prints the tree's id and the path of its root filesystem.
The tree's id depends on the images its dependencies resolve to, so it
changes when a dependency does. A render is durable before it is
reported: a crash or power cut leaves no tree that looks complete.
--rebuild renders it again. --json prints {"id", "key", "rootfs",
"hash", "rendered"} ("rendered" is false when the tree was already there).`,
		Example: `  imagestore render example.com/hello:1.0.0
  sudo systemd-nspawn -D "$(imagestore render -q example.com/hello:1.0.0)"`,
		Args:              exactArgs(1),
		ValidArgsFunction: a.completeImages(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref := args[0]
			return a.withTreeStore(true, func(s *store.Store, ts *treestore.Store) error {
				key, err := resolve(s, ref)
				if err != nil {
					return fmt.Errorf("render %s: %w", ref, err)
				}
				bar := a.renderProgress("rendering " + shortKey(key))
				ts.Progress = bar.add
				id, hash, err := ts.Render(key, rebuild)
				bar.finish()
				if err != nil {
					return fmt.Errorf("render %s: %w", ref, err)
				}
				if asJSON {
					return writeJSON(a.stdout, struct {
						ID       string `json:"id"`
						Key      string `json:"key"`
						Rootfs   string `json:"rootfs"`
						Hash     string `json:"hash"`
						Rendered bool   `json:"rendered"`
					}{id, key, ts.GetRootFS(id), hash, hash != ""})
				}
				if hash == "" {
					a.note("render: %s is already rendered", shortKey(key))
				}
				a.result(ts.GetRootFS(id), "%s %s", id, ts.GetRootFS(id))
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&rebuild, "rebuild", false, "render again even if the tree is already rendered")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	return cmd
}

// treeJSON is a tree as trees --json prints it.
type treeJSON struct {
	ID       string `json:"id"`
	Image    string `json:"image"`
	Size     int64  `json:"size"`
	Rendered bool   `json:"rendered"`
	Rootfs   string `json:"rootfs"`
}

func (a *app) treesCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "trees",
		Short: "List the rendered trees of the tree store",
		Long: `Trees lists the trees of the tree store: id, image key, size and state
("rendered", or "partial" for a render that did not finish, which gc
removes). --json prints a list of {"id", "image", "size", "rendered",
"rootfs"}; -q prints only the ids.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withTreeStore(false, func(s *store.Store, ts *treestore.Store) error {
				trees, err := listTrees(ts)
				if err != nil {
					return fmt.Errorf("trees: %w", err)
				}
				if asJSON {
					return writeJSON(a.stdout, trees)
				}
				if a.quiet {
					for _, t := range trees {
						fmt.Fprintln(a.stdout, t.ID)
					}
					return nil
				}
				w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "ID\tIMAGE\tSIZE\tSTATE")
				for _, t := range trees {
					state := "partial"
					if t.Rendered {
						state = "rendered"
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", t.ID, shortKey(t.Image), humanize.IBytes(uint64(t.Size)), state)
				}
				return w.Flush()
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	return cmd
}

func listTrees(ts *treestore.Store) ([]treeJSON, error) {
	trees := []treeJSON{}
	if ts == nil {
		return trees, nil
	}
	ids, err := ts.GetIDs()
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		t := treeJSON{ID: id, Rootfs: ts.GetRootFS(id)}
		t.Image, _ = ts.GetImageHash(id) // a partial tree may have none
		if t.Rendered, err = ts.IsRendered(id); err != nil {
			return nil, err
		}
		if t.Size, err = ts.Size(id); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		trees = append(trees, t)
	}
	return trees, nil
}

// withTreeStore runs fn on the store and its tree store. Without create,
// a store that has never had a tree gets none made (read-only commands
// change nothing): fn is then given a nil tree store.
func (a *app) withTreeStore(create bool, fn func(s *store.Store, ts *treestore.Store) error) error {
	dir, err := a.storeDir()
	if err != nil {
		return err
	}
	return a.withStore(func(s *store.Store) error {
		if !create && !hasTrees(dir) {
			return fn(s, nil)
		}
		ts, err := treestore.NewStore(dir, s)
		if err != nil {
			return err
		}
		return fn(s, ts)
	})
}

func hasTrees(dir string) bool {
	fi, err := os.Stat(filepath.Join(dir, "tree"))
	return err == nil && fi.IsDir()
}

// renderBar shows the bytes written by a render on a terminal.
type renderBar struct{ bar *progressbar.ProgressBar }

func (a *app) renderProgress(desc string) *renderBar {
	return &renderBar{bar: a.progressBar(-1, desc)}
}

func (b *renderBar) add(n int64) {
	if b.bar != nil {
		b.bar.Add64(n)
	}
}

func (b *renderBar) finish() {
	if b.bar != nil {
		b.bar.Finish()
	}
}
