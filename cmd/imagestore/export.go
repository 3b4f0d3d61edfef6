package main

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	store "github.com/imagestore/imagestore"
	"github.com/spf13/cobra"
)

func (a *app) exportCommand() *cobra.Command {
	var gz bool
	cmd := &cobra.Command{
		Use:   "export KEY|NAME[:version] FILE|-",
		Short: "Write an image's tar out of the store",
		Long: `Export writes the image, as the uncompressed tar the store keeps, to FILE
or, with "-", to standard output. The tar is byte for byte the one that
was imported (decompressed), so its SHA-512 gives the key back. --gzip
compresses it.

FILE is written through a temporary file in the same directory and renamed
into place, so it is never left half written; an existing FILE is
replaced. A tar is not written to a terminal.`,
		Example: `  imagestore export sha512-1c9abf1ff224 hello.aci
  imagestore export --gzip example.com/hello:1.0.0 - | ssh host imagestore import -`,
		Args: exactArgs(2),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) == 1 {
				return nil, cobra.ShellCompDirectiveDefault // FILE
			}
			return a.completeImages(1)(cmd, args, toComplete)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, file := args[0], args[1]
			if file == "-" && isTerminal(a.stdout) {
				return usagef("export: standard output is a terminal: redirect it, or give a FILE")
			}
			return a.withStore(func(s *store.Store) error {
				key, err := resolve(s, ref)
				if err != nil {
					return fmt.Errorf("export %s: %w", ref, err)
				}
				if err := a.export(s, key, file, gz); err != nil {
					return fmt.Errorf("export %s: %w", ref, err)
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&gz, "gzip", false, "compress the tar with gzip")
	return cmd
}

func (a *app) export(s *store.Store, key, file string, gz bool) error {
	if file == "-" {
		rc, err := s.ReadStream(key)
		if err != nil {
			return err
		}
		defer rc.Close()
		return copyImage(a.stdout, rc, gz)
	}
	// Check the destination before reading the image, so that a directory
	// given by mistake costs nothing.
	if fi, err := os.Stat(file); err == nil && fi.IsDir() {
		return fmt.Errorf("%s is a directory: give a file name", file)
	}
	rc, err := s.ReadStream(key)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := writeFileAtomic(file, func(w io.Writer) error { return copyImage(w, rc, gz) }); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	return nil
}

// writeFileAtomic writes file through a temporary file beside it, synced
// and renamed into place, so that file is never seen half written. Its
// errors name file, never the temporary file, which is removed on failure.
func writeFileAtomic(file string, write func(io.Writer) error) (err error) {
	dir, base := filepath.Split(file)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-")
	if err != nil {
		return withoutPath(err, "")
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			err = withoutPath(err, tmp.Name())
		}
	}()
	if err := write(tmp); err != nil {
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), file)
}

// withoutPath drops the temporary file's name from err, keeping what went
// wrong, for a caller that names the destination itself: err is returned
// as is unless it is a *fs.PathError or *os.LinkError on tmp (any path
// when tmp is "": os.CreateTemp's errors name its pattern).
func withoutPath(err error, tmp string) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && (tmp == "" || pe.Path == tmp) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) && le.Old == tmp {
		return le.Err
	}
	return err
}

// copyImage copies the tar in r to w, compressed if gz.
func copyImage(w io.Writer, r io.Reader, gz bool) error {
	if !gz {
		_, err := io.Copy(w, r)
		return err
	}
	zw := gzip.NewWriter(w)
	_, err := io.Copy(zw, r)
	return errors.Join(err, zw.Close())
}
