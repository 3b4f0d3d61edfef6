package main

import (
	"fmt"

	store "github.com/imagestore/imagestore"
	"github.com/imagestore/imagestore/rkt"
	"github.com/spf13/cobra"
)

// adoptJSON is what adopt --json prints.
type adoptJSON struct {
	Dir            string              `json:"dir"`
	AlreadyAdopted bool                `json:"alreadyAdopted"`
	Images         []string            `json:"images"`
	Remotes        []string            `json:"remotes"`
	FromBlobs      []string            `json:"fromBlobs"`
	Corrected      []problemJSON       `json:"corrected"`
	SkippedImages  []problemJSON       `json:"skippedImages"`
	SkippedRemotes []skippedRemoteJSON `json:"skippedRemotes"`
	OldDatabase    string              `json:"oldDatabase,omitempty"`
}

type skippedRemoteJSON struct {
	ACIURL  string `json:"aciURL"`
	BlobKey string `json:"blobKey"`
	Reason  string `json:"reason"`
}

func (a *app) adoptCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "adopt",
		Short: "Adopt a store written by rkt, with everything rkt recorded",
		Long: `Adopt makes a store written by rkt (its /var/lib/rkt/cas) a store of
this tool, keeping what rkt's database (db/ql.db) recorded: each image's
import and last-use times, latest mark and tree store size, and every
remote (URLs, ETag, cache max age, download time). Each image is re-hashed
first: a record whose image file is missing or does not match its key is
skipped, with the remotes that point at it; an image file without a record
is adopted from the file alone, as rebuild does. Files and directories get
the store's modes (0660, 2770) so that a group can share the store.

db/ql.db is only read, and left in place: rkt must not use the directory
afterwards, as the two databases would diverge. Adopt needs the store to
itself and waits up to 30s for rkt to let go of it. If db/ql.db cannot be
read, nothing in the directory is changed. On a store adopted already it
says so and changes nothing.

Standard output has one line per item: "image KEY", "remote URL",
"from-blob KEY" (adopted without rkt's record), "corrected KEY: ...",
"skipped KIND KEY ...: ..." and "skipped remote URL: ...", then a summary.
--json prints {"dir", "alreadyAdopted", "images", "remotes", "fromBlobs",
"corrected", "skippedImages", "skippedRemotes"} instead.`,
		Example: `  imagestore --dir /var/lib/rkt/cas adopt
  imagestore --dir /var/lib/rkt/cas adopt --json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := a.storeDir()
			if err != nil {
				return err
			}
			rep, err := rkt.Adopt(dir)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, adoptOutput(dir, rep))
			}
			if rep.AlreadyAdopted {
				fmt.Fprintf(a.stdout, "nothing to adopt: %s already has this tool's database (db/store.db)\n", dir)
				return nil
			}
			for _, k := range rep.Images {
				fmt.Fprintf(a.stdout, "image %s\n", k)
			}
			for _, u := range rep.Remotes {
				fmt.Fprintf(a.stdout, "remote %s\n", u)
			}
			for _, k := range rep.FromBlobs {
				fmt.Fprintf(a.stdout, "from-blob %s\n", k)
			}
			for _, p := range rep.Corrected {
				fmt.Fprintf(a.stdout, "corrected %s: %s\n", p.Key, oneLine(p.Detail))
			}
			for _, p := range rep.SkippedImages {
				fmt.Fprintf(a.stdout, "skipped %s\n", oneLine(p.String()))
			}
			for _, r := range rep.SkippedRemotes {
				fmt.Fprintf(a.stdout, "skipped remote %s: %s\n", r.ACIURL, oneLine(r.Reason))
			}
			fmt.Fprintf(a.stdout, "adopted %s: %d image(s) and %d remote(s) with rkt's records, %d image(s) without a record adopted from the file; skipped %d image(s) and %d remote(s)\n",
				dir, len(rep.Images), len(rep.Remotes), len(rep.FromBlobs), len(rep.SkippedImages), len(rep.SkippedRemotes))
			if rep.OldDatabase != "" {
				a.note("an empty database left by an earlier version was moved to %s", rep.OldDatabase)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	return cmd
}

func adoptOutput(dir string, rep *store.AdoptReport) adoptJSON {
	out := adoptJSON{
		Dir: dir, AlreadyAdopted: rep.AlreadyAdopted, OldDatabase: rep.OldDatabase,
		Images: nonNil(rep.Images), Remotes: nonNil(rep.Remotes), FromBlobs: nonNil(rep.FromBlobs),
		Corrected: []problemJSON{}, SkippedImages: []problemJSON{}, SkippedRemotes: []skippedRemoteJSON{},
	}
	for _, p := range rep.Corrected {
		out.Corrected = append(out.Corrected, problemJSON{string(p.Kind), p.Key, p.Path, p.Detail})
	}
	for _, p := range rep.SkippedImages {
		out.SkippedImages = append(out.SkippedImages, problemJSON{string(p.Kind), p.Key, p.Path, p.Detail})
	}
	for _, r := range rep.SkippedRemotes {
		out.SkippedRemotes = append(out.SkippedRemotes, skippedRemoteJSON{r.ACIURL, r.BlobKey, r.Reason})
	}
	return out
}

// nonNil makes an empty list print as [] rather than null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
