package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
	store "github.com/imagestore/imagestore"
	"github.com/spf13/cobra"
)

func (a *app) showCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show KEY|NAME[:version]",
		Short: "Show what the store records about an image",
		Long: `Show prints the store's record of one image: full key, name, labels,
size, import time, last use, whether it was imported as latest, and the
remotes it was fetched from.

The image is a key (or an unambiguous prefix), or a name with an optional
version label, resolved like GetACI: the most recent import wins, and
without a version the images imported with --latest come first.
--json prints the fields of list --json plus "remotes".`,
		Example: `  imagestore show sha512-1c9abf1ff224
  imagestore show example.com/hello:1.0.0
  imagestore show --json example.com/hello`,
		Args:              exactArgs(1),
		ValidArgsFunction: a.completeImages(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withStore(func(s *store.Store) error {
				key, err := resolve(s, args[0])
				if err != nil {
					return fmt.Errorf("show %s: %w", args[0], err)
				}
				ai, err := s.GetACIInfoWithBlobKey(key)
				if err != nil {
					return fmt.Errorf("show %s: %w", args[0], err)
				}
				im := image{info: ai}
				m, err := s.GetImageManifest(key)
				if err != nil {
					return fmt.Errorf("show %s: %w", args[0], err)
				}
				im.labels = m.Labels
				remotes, err := remotesOf(s, key)
				if err != nil {
					return fmt.Errorf("show %s: %w", args[0], err)
				}
				if asJSON {
					return writeJSON(a.stdout, struct {
						imageJSON
						Remotes []remoteJSON `json:"remotes"`
					}{im.json(), remotes})
				}
				return a.printImage(im, remotes, time.Now())
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	return cmd
}

func (a *app) printImage(im image, remotes []remoteJSON, now time.Time) error {
	ai := im.info
	when := func(t time.Time) string {
		return fmt.Sprintf("%s (%s)", t.UTC().Format(time.RFC3339), humanize.RelTime(t, now, "ago", "from now"))
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 8, 1, ' ', 0)
	fmt.Fprintf(tw, "Key:\t%s\n", ai.BlobKey)
	fmt.Fprintf(tw, "Name:\t%s\n", ai.Name)
	fmt.Fprintf(tw, "Labels:\t%s\n", labelString(im.labels))
	fmt.Fprintf(tw, "Size:\t%s (%d bytes)\n", humanize.IBytes(uint64(ai.Size)), ai.Size)
	fmt.Fprintf(tw, "Tree store size:\t%s\n", humanize.IBytes(uint64(ai.TreeStoreSize)))
	fmt.Fprintf(tw, "Imported:\t%s\n", when(ai.ImportTime))
	fmt.Fprintf(tw, "Last used:\t%s\n", when(ai.LastUsed))
	fmt.Fprintf(tw, "Latest:\t%t\n", ai.Latest)
	if len(remotes) == 0 {
		fmt.Fprintf(tw, "Remotes:\tnone\n")
	}
	for i, r := range remotes {
		label := ""
		if i == 0 {
			label = "Remotes:"
		}
		fmt.Fprintf(tw, "%s\t%s (downloaded %s)\n", label, r.ACIURL, when(r.DownloadTime))
	}
	return tw.Flush()
}

func (a *app) catManifestCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "cat-manifest KEY|NAME[:version]",
		Short: "Print an image's manifest",
		Long: `Cat-manifest prints the image manifest (JSON, indented) of one image,
given by key (or an unambiguous prefix) or by name with an optional version
label, resolved like GetACI (see 'imagestore help show').`,
		Example: `  imagestore cat-manifest example.com/hello:1.0.0
  imagestore cat-manifest sha512-1c9abf1ff224 | jq .labels`,
		Args:              exactArgs(1),
		ValidArgsFunction: a.completeImages(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withStore(func(s *store.Store) error {
				key, err := resolve(s, args[0])
				if err != nil {
					return fmt.Errorf("cat-manifest %s: %w", args[0], err)
				}
				raw, err := s.GetImageManifestJSON(key)
				if err != nil {
					return fmt.Errorf("cat-manifest %s: %w", args[0], err)
				}
				var out bytes.Buffer
				if err := json.Indent(&out, raw, "", "  "); err != nil {
					return fmt.Errorf("cat-manifest %s: stored manifest is not JSON: %w", args[0], err)
				}
				out.WriteByte('\n')
				_, err = a.stdout.Write(out.Bytes())
				return err
			})
		},
	}
}
