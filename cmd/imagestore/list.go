package main

import (
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/appc/spec/schema/types"
	"github.com/dustin/go-humanize"
	store "github.com/imagestore/imagestore"
	"github.com/spf13/cobra"
)

// sortFields maps the --sort names to the store's sort fields.
var sortFields = map[string]string{
	"key": "blobkey", "blobkey": "blobkey",
	"name":     "name",
	"imported": "importtime", "importtime": "importtime",
	"used": "lastused", "lastused": "lastused", "last-used": "lastused",
	"size":   "size",
	"latest": "latest",
}

const sortFieldList = "key, name, imported, used, size, latest"

// imageJSON is an image as list --json and show --json print it. The field
// names are part of the tool's interface: add fields, never rename them.
type imageJSON struct {
	Key           string            `json:"key"`
	Name          string            `json:"name"`
	Labels        map[string]string `json:"labels"`
	Size          int64             `json:"size"`
	TreeStoreSize int64             `json:"treeStoreSize"`
	ImportTime    time.Time         `json:"importTime"`
	LastUsed      time.Time         `json:"lastUsed"`
	Latest        bool              `json:"latest"`
}

// image is a stored image with the labels from its manifest.
type image struct {
	info   *store.ACIInfo
	labels types.Labels
}

func (im image) json() imageJSON {
	labels := make(map[string]string, len(im.labels))
	for _, l := range im.labels {
		labels[l.Name.String()] = l.Value
	}
	return imageJSON{
		Key:           im.info.BlobKey,
		Name:          im.info.Name,
		Labels:        labels,
		Size:          im.info.Size,
		TreeStoreSize: im.info.TreeStoreSize,
		ImportTime:    im.info.ImportTime.UTC(),
		LastUsed:      im.info.LastUsed.UTC(),
		Latest:        im.info.Latest,
	}
}

// labelString renders labels as name=value pairs in manifest order.
func labelString(labels types.Labels) string {
	parts := make([]string, len(labels))
	for i, l := range labels {
		parts[i] = l.Name.String() + "=" + l.Value
	}
	return strings.Join(parts, ",")
}

// imageFilter is one --filter: name=GLOB, latest=BOOL or LABEL=VALUE.
type imageFilter struct {
	key, value string
}

func parseFilters(specs []string) ([]imageFilter, error) {
	var out []imageFilter
	for _, f := range specs {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" {
			return nil, usagef("list: bad --filter %q: want name=GLOB, latest=true|false or LABEL=VALUE (e.g. version=1.0.0)", f)
		}
		switch k {
		case "name":
			if _, err := path.Match(v, ""); err != nil {
				return nil, usagef("list: bad --filter %q: %v", f, err)
			}
		case "latest":
			if _, err := strconv.ParseBool(v); err != nil {
				return nil, usagef("list: bad --filter %q: latest takes true or false", f)
			}
		}
		out = append(out, imageFilter{key: k, value: v})
	}
	return out, nil
}

func (f imageFilter) match(im image) bool {
	switch f.key {
	case "name":
		ok, _ := path.Match(f.value, im.info.Name)
		return ok
	case "latest":
		want, _ := strconv.ParseBool(f.value)
		return im.info.Latest == want
	}
	v, ok := im.labels.Get(f.key)
	return ok && v == f.value
}

func (a *app) listCommand() *cobra.Command {
	var (
		sortBy  string
		desc    bool
		filters []string
		asJSON  bool
		noTrunc bool
	)
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the stored images",
		Long: `List prints a table of the stored images: key (cut to 19 characters
unless --no-trunc), name, labels, size, import time and last use.

--sort takes one of ` + sortFieldList + ` (default imported);
--filter (repeatable, all must match) takes name=GLOB (path.Match
patterns such as example.com/*), latest=true|false or LABEL=VALUE.
--json prints one JSON document: {"images": [{"key", "name", "labels",
"size", "treeStoreSize", "importTime", "lastUsed", "latest"}]}.
With --quiet only the full keys are printed, one per line.`,
		Example: `  imagestore list
  imagestore list --sort size --desc --filter 'name=example.com/*'
  imagestore list --json --filter version=1.0.0`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			field, ok := sortFields[strings.ToLower(sortBy)]
			if !ok {
				return usagef("list: unknown --sort field %q: want one of %s", sortBy, sortFieldList)
			}
			fs, err := parseFilters(filters)
			if err != nil {
				return err
			}
			return a.withStore(func(s *store.Store) error {
				images, err := a.images(s, field, !desc, fs)
				if err != nil {
					return err
				}
				switch {
				case asJSON:
					out := struct {
						Images []imageJSON `json:"images"`
					}{Images: []imageJSON{}}
					for _, im := range images {
						out.Images = append(out.Images, im.json())
					}
					return writeJSON(a.stdout, out)
				case a.quiet:
					for _, im := range images {
						fmt.Fprintln(a.stdout, im.info.BlobKey)
					}
					return nil
				}
				return writeImageTable(a.stdout, images, noTrunc, time.Now())
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&sortBy, "sort", "imported", "sort by FIELD: "+sortFieldList)
	f.BoolVar(&desc, "desc", false, "sort in descending order")
	f.StringArrayVar(&filters, "filter", nil, "show only images matching name=GLOB, latest=BOOL or LABEL=VALUE (repeatable)")
	f.BoolVar(&asJSON, "json", false, "print JSON for scripts")
	f.BoolVar(&noTrunc, "no-trunc", false, "print full keys")
	cmd.RegisterFlagCompletionFunc("sort", cobra.FixedCompletions(
		[]cobra.Completion{"key", "name", "imported", "used", "size", "latest"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// images reads the images sorted by field with their labels, keeping
// those that match every filter. An image whose manifest cannot be read is
// listed without labels and a warning.
func (a *app) images(s *store.Store, field string, ascending bool, filters []imageFilter) ([]image, error) {
	ais, err := s.GetAllACIInfos([]string{field}, ascending)
	if err != nil {
		return nil, err
	}
	var out []image
	for _, ai := range ais {
		im := image{info: ai}
		if m, err := s.GetImageManifest(ai.BlobKey); err != nil {
			a.note("imagestore: warning: %s: run 'imagestore show %s' to check it", oneLine(err.Error()), shortKey(ai.BlobKey))
		} else {
			im.labels = m.Labels
		}
		keep := true
		for _, f := range filters {
			keep = keep && f.match(im)
		}
		if keep {
			out = append(out, im)
		}
	}
	return out, nil
}

func writeImageTable(w io.Writer, images []image, noTrunc bool, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tNAME\tLABELS\tSIZE\tIMPORTED\tLAST USED")
	for _, im := range images {
		key := im.info.BlobKey
		if !noTrunc {
			key = shortKey(key)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", key, im.info.Name, labelString(im.labels),
			humanize.IBytes(uint64(im.info.Size)),
			humanize.RelTime(im.info.ImportTime, now, "ago", "from now"),
			humanize.RelTime(im.info.LastUsed, now, "ago", "from now"))
	}
	return tw.Flush()
}

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
