package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
	store "github.com/imagestore/imagestore"
	"github.com/spf13/cobra"
)

// remoteJSON is a remote as remotes --json and show --json print it. The
// field names are part of the tool's interface.
type remoteJSON struct {
	ACIURL       string    `json:"aciURL"`
	SigURL       string    `json:"sigURL"`
	ETag         string    `json:"etag"`
	Key          string    `json:"key"`
	CacheMaxAge  int       `json:"cacheMaxAge"`
	DownloadTime time.Time `json:"downloadTime"`
}

func toRemoteJSON(r *store.Remote) remoteJSON {
	return remoteJSON{
		ACIURL:       r.ACIURL,
		SigURL:       r.SigURL,
		ETag:         r.ETag,
		Key:          r.BlobKey,
		CacheMaxAge:  r.CacheMaxAge,
		DownloadTime: r.DownloadTime.UTC(),
	}
}

// remotesOf returns the remotes recorded for key.
func remotesOf(s *store.Store, key string) ([]remoteJSON, error) {
	all, err := s.GetAllRemotes()
	if err != nil {
		return nil, err
	}
	out := []remoteJSON{}
	for _, r := range all {
		if r.BlobKey == key {
			out = append(out, toRemoteJSON(r))
		}
	}
	return out, nil
}

func (a *app) remotesCommand() *cobra.Command {
	var (
		asJSON  bool
		noTrunc bool
	)
	cmd := &cobra.Command{
		Use:   "remotes",
		Short: "List the remotes: where stored images were fetched from",
		Long: `Remotes lists the recorded remotes, ordered by ACI URL: the URL an image
was fetched from, its signature URL, ETag, the image's key, the cache max
age and when it was downloaded. Fetchers record them; the store uses them
to revalidate a download instead of repeating it.

--json prints one JSON document: {"remotes": [{"aciURL", "sigURL", "etag",
"key", "cacheMaxAge", "downloadTime"}]}. With --quiet only the ACI URLs
are printed, one per line.`,
		Example: `  imagestore remotes
  imagestore remotes --json | jq -r '.remotes[].aciURL'`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withStore(func(s *store.Store) error {
				all, err := s.GetAllRemotes()
				if err != nil {
					return err
				}
				if asJSON {
					out := struct {
						Remotes []remoteJSON `json:"remotes"`
					}{Remotes: []remoteJSON{}}
					for _, r := range all {
						out.Remotes = append(out.Remotes, toRemoteJSON(r))
					}
					return writeJSON(a.stdout, out)
				}
				if a.quiet {
					for _, r := range all {
						fmt.Fprintln(a.stdout, r.ACIURL)
					}
					return nil
				}
				now := time.Now()
				tw := tabwriter.NewWriter(a.stdout, 0, 8, 2, ' ', 0)
				fmt.Fprintln(tw, "ACI URL\tSIG URL\tETAG\tKEY\tMAX AGE\tDOWNLOADED")
				for _, r := range all {
					key := r.BlobKey
					if !noTrunc {
						key = shortKey(key)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ACIURL, dash(r.SigURL), dash(r.ETag), dash(key),
						(time.Duration(r.CacheMaxAge) * time.Second).String(),
						humanize.RelTime(r.DownloadTime, now, "ago", "from now"))
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	cmd.Flags().BoolVar(&noTrunc, "no-trunc", false, "print full keys")
	return cmd
}

// dash shows an empty table cell as "-".
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
