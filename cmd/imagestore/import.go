package main

import (
	"fmt"
	"io"
	"os"
	"time"

	store "github.com/imagestore/imagestore"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
)

// importJSON is what import --json prints.
type importJSON struct {
	Imported []importedJSON `json:"imported"`
	Failed   []failedJSON   `json:"failed"`
}

type importedJSON struct {
	File   string   `json:"file"`
	Key    string   `json:"key"`
	Layers []string `json:"layers,omitempty"` // --layers: the keys of the layers below Key, bottom first
}

// failedJSON is an argument that failed, in the --json output of the
// commands that take several.
type failedJSON struct {
	Arg   string `json:"arg"`
	Error string `json:"error"`
}

func (a *app) importCommand() *cobra.Command {
	var latest, asJSON bool
	cmd := &cobra.Command{
		Use:   "import FILE...",
		Short: "Import ACI files into the store and print their keys",
		Long: `Import reads each ACI (a tar, plain or compressed with gzip, bzip2 or xz;
the format is detected from the content) into the store and prints its key
on standard output, one line per file. "-" reads an image from standard
input.

Importing an image that is already stored only updates its import time.
On a terminal a progress bar (bytes, rate, ETA) is shown on standard error,
unless --quiet. --json prints one JSON document: {"imported": [{"file",
"key"}], "failed": [{"arg", "error"}]}.`,
		Example: `  imagestore import hello.aci.gz
  curl -sL https://example.com/hello.aci | imagestore import --latest -`,
		Args: minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, f := range args {
				if f == "-" && isTerminal(a.stdin) {
					return usagef("import: standard input is a terminal: pipe an image into it, or give a FILE")
				}
			}
			out := importJSON{Imported: []importedJSON{}, Failed: []failedJSON{}}
			err := a.withNewStore(func(s *store.Store) error {
				return a.each("import", args, func(file string) error {
					keys, err := a.importFile(s, file, store.ACIFetchInfo{Latest: latest})
					if err != nil {
						out.Failed = append(out.Failed, failedJSON{file, oneLine(errorMessage(err))})
						return err
					}
					top := len(keys) - 1
					out.Imported = append(out.Imported, importedJSON{File: file, Key: keys[top], Layers: keys[:top]})
					if !asJSON {
						for _, key := range keys {
							fmt.Fprintln(a.stdout, key)
						}
					}
					return nil
				})
			})
			return a.finishJSON(asJSON, len(out.Imported)+len(out.Failed) > 0, out, err)
		},
	}
	cmd.Flags().BoolVar(&latest, "latest", false, "mark the images as the latest of their name (as fetched without a version)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	a.addImageFlag(cmd)
	return cmd
}

// importFile writes one file ("-": standard input) into the store. It
// returns the image's key, after its layers' with --layers.
func (a *app) importFile(s *store.Store, file string, fi store.ACIFetchInfo) ([]string, error) {
	if keys, ok, err := a.importImage(s, file, fi); ok {
		return keys, err
	}
	var (
		in   *os.File
		name = file
	)
	if file == "-" {
		name = "stdin"
		f, cleanup, err := a.seekableStdin(s)
		if err != nil {
			return nil, fmt.Errorf("import from standard input: %w", err)
		}
		defer cleanup()
		in = f
	} else {
		f, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("import: %w", err)
		}
		defer f.Close()
		in = f
	}
	st, err := in.Stat()
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", name, err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("import %s: is a directory: give an ACI file", name)
	}

	var r io.ReadSeeker = in
	bar := a.progressBar(st.Size(), name)
	if bar != nil {
		r = &progressReader{r: in, bar: bar}
	}
	key, err := s.WriteACI(r, fi)
	if bar != nil {
		if err == nil {
			bar.Finish()
		} else {
			bar.Exit()
			fmt.Fprintln(a.stderr)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", name, err)
	}
	return []string{key}, nil
}

// seekableStdin returns standard input as a file that WriteACI can seek:
// itself when it is a regular file, else a copy in the store's temp
// directory, removed by cleanup.
func (a *app) seekableStdin(s *store.Store) (*os.File, func(), error) {
	if f, ok := a.stdin.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			if _, err := f.Seek(0, io.SeekCurrent); err == nil {
				return f, func() {}, nil
			}
		}
	}
	tmp, err := a.spoolStdin(s)
	if err != nil {
		return nil, nil, err
	}
	return tmp, func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}, nil
}

// spoolStdin copies standard input to a new temp file in the store, with a
// progress bar on a terminal, and returns it; on error nothing is left.
func (a *app) spoolStdin(s *store.Store) (*os.File, error) {
	tmp, err := s.TmpFile()
	if err != nil {
		return nil, err
	}
	var w io.Writer = tmp
	bar := a.progressBar(-1, "reading stdin")
	if bar != nil {
		w = io.MultiWriter(tmp, bar)
	}
	_, err = io.Copy(w, a.stdin)
	if bar != nil {
		bar.Finish()
	}
	if err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, err
	}
	return tmp, nil
}

// progressBar returns a bar for size bytes (-1: unknown) drawn on standard
// error, or nil when that is not a terminal or --quiet is set.
func (a *app) progressBar(size int64, desc string) *progressbar.ProgressBar {
	if a.quiet || !isTerminal(a.stderr) {
		return nil
	}
	return newProgressBar(a.stderr, size, desc)
}

func newProgressBar(w io.Writer, size int64, desc string) *progressbar.ProgressBar {
	return progressbar.NewOptions64(size,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowBytes(true),
		progressbar.OptionUseIECUnits(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
	)
}

// progressReader advances a progress bar as WriteACI reads (and rewinds
// it when WriteACI seeks).
type progressReader struct {
	r   io.ReadSeeker
	bar *progressbar.ProgressBar
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.bar.Add(n)
	return n, err
}

func (p *progressReader) Seek(offset int64, whence int) (int64, error) {
	pos, err := p.r.Seek(offset, whence)
	if err == nil {
		p.bar.Set64(pos)
	}
	return pos, err
}

// finishJSON prints out as the command's JSON document when asJSON and
// the command got as far as trying (not when the store could not even be
// opened), and returns err.
func (a *app) finishJSON(asJSON, tried bool, out any, err error) error {
	if asJSON && tried {
		if jerr := writeJSON(a.stdout, out); jerr != nil && err == nil {
			err = jerr
		}
	}
	return err
}

// each runs fn for every argument, going on after a failure. A single
// failure is returned as is; with several arguments, each failure is
// printed on its own line and a summary returned.
func (a *app) each(verb string, args []string, fn func(arg string) error) error {
	var failed int
	var last error
	for _, arg := range args {
		err := fn(arg)
		if err == nil {
			continue
		}
		failed++
		last = err
		if len(args) > 1 {
			fmt.Fprintln(a.stderr, "imagestore: "+oneLine(errorMessage(err)))
		}
	}
	switch {
	case failed == 0:
		return nil
	case len(args) == 1:
		return last
	}
	return fmt.Errorf("%s: %d of %d failed (see the errors above)", verb, failed, len(args))
}
