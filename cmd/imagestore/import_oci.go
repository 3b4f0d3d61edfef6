package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	store "github.com/imagestore/imagestore"
	"github.com/imagestore/imagestore/convert"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
)

// addImageFlag teaches import about docker and OCI images (package
// convert): the --image flag and the help text.
func (a *app) addImageFlag(cmd *cobra.Command) {
	cmd.Flags().StringVar(&a.image, "image", "", "with a docker or OCI input holding several images: the one to import, by reference as written in it or by sha256: digest")
	cmd.Flags().BoolVar(&a.layers, "layers", false, "with a docker or OCI input: one ACI per layer, shared with other images on the same layers; prints every layer's key, the image's last")
	cmd.Long += `

A FILE may also be a docker or OCI image: a docker save archive (any
docker version), an OCI image layout directory, or an OCI archive. It is
converted to an ACI (its layers flattened, its config mapped to an appc
manifest as docker2aci did) and streamed into the store; the same image
always gives the same key; "-" takes one from standard input too. When
the input holds several images, --image selects one by reference
("myuser/two:V2.0_rc1") or by sha256: digest.

With --layers, a docker or OCI image becomes one ACI per layer, each
depending on the one below (pinned by its hash), the image's config on
the top one: images built on the same layers store them once. Every
layer's key is printed, bottom first; the last line is the image's key.
Rendering the image's key (render, extract) gives the same tree as the
squashed import.`
	cmd.Example += `
  docker save busybox:1.36 -o busybox.tar && imagestore import busybox.tar
  docker save busybox:1.36 | imagestore import -
  imagestore import --image myuser/two:V2.0_rc1 images.tar
  imagestore import --layers busybox.tar`
}

// importImage imports file ("-": standard input) when it is a docker or
// OCI image; handled is false when it is not (an ACI, or something
// WriteACI will judge).
// keys holds one key, or with --layers every layer's, the image's last.
func (a *app) importImage(s *store.Store, file string, fi store.ACIFetchInfo) (keys []string, handled bool, err error) {
	if file == "-" {
		return a.importImageStdin(s, fi)
	}
	return a.importImagePath(s, file, file, fi)
}

// importImageStdin handles "docker save IMAGE | imagestore import -". The
// converter reads an archive by offset, so a pipe is first copied to a
// temp file in the store; when it holds an ACI after all, that copy
// becomes the standard input importFile reads (it would have made the
// same copy), unlinked so that nothing is left behind.
func (a *app) importImageStdin(s *store.Store, fi store.ACIFetchInfo) ([]string, bool, error) {
	if f, ok := a.stdin.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			if pos, err := f.Seek(0, io.SeekCurrent); err == nil && pos == 0 {
				// A redirected file: the converter opens it by name,
				// and standard input stays unread for importFile.
				return a.importImagePath(s, f.Name(), "stdin", fi)
			}
		}
	}
	tmp, err := a.spoolStdin(s)
	if err != nil {
		return nil, true, fmt.Errorf("import from standard input: %w", err)
	}
	keys, handled, err := a.importImagePath(s, tmp.Name(), "stdin", fi)
	os.Remove(tmp.Name())
	if handled {
		tmp.Close()
		return keys, true, err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		tmp.Close()
		return nil, true, fmt.Errorf("import from standard input: %w", err)
	}
	a.stdin = tmp // closed by its finalizer with the app
	return nil, false, nil
}

// importImagePath imports the file or directory at file, named display in
// messages.
func (a *app) importImagePath(s *store.Store, file, display string, fi store.ACIFetchInfo) (keys []string, handled bool, err error) {
	st, err := os.Stat(file)
	if err != nil {
		return nil, false, nil // importFile says what is wrong
	}
	name := file
	if !st.IsDir() {
		tmp, cleanup, compressed, err := a.decompressArchive(s, file, display)
		switch {
		case err != nil:
			return nil, true, fmt.Errorf("import %s: %w", display, err)
		case compressed && tmp == "":
			return nil, false, nil // a compressed ACI: WriteACI reads those itself
		case compressed:
			defer cleanup()
			name = tmp
		}
	}
	src, err := convert.Open(name)
	if errors.Is(err, convert.ErrUnknownFormat) {
		if st.IsDir() {
			return nil, true, fmt.Errorf("import %s: is a directory: give an ACI file, a docker or OCI archive, or an OCI image layout directory", display)
		}
		return nil, false, nil
	}
	if err != nil {
		return nil, true, fmt.Errorf("import %s: %w", display, err)
	}
	defer src.Close()
	im, err := src.Image(a.image)
	var several *convert.SeveralImagesError
	if errors.As(err, &several) {
		var list []string
		for _, i := range several.Images {
			list = append(list, i.String())
		}
		return nil, true, usagef("import %s: it holds %d images: select one with --image REF or --image sha256:DIGEST: %s",
			display, len(several.Images), strings.Join(list, "; "))
	}
	if err != nil {
		return nil, true, fmt.Errorf("import %s: %w", display, err)
	}
	if !a.quiet && isTerminal(a.stderr) {
		bars := &layerBars{a: a}
		im.Progress = bars.update
		defer bars.done()
	}
	if a.layers {
		keys, err = im.ImportLayers(s, fi)
	} else {
		var key string
		key, err = im.Import(s, fi)
		keys = []string{key}
	}
	if err != nil {
		return nil, true, fmt.Errorf("import %s: %w", display, err)
	}
	return keys, true, nil
}

// layerBars draws one progress bar per layer and pass.
type layerBars struct {
	a     *app
	bar   *progressbar.ProgressBar
	pass  string
	layer int
}

func (b *layerBars) update(p convert.Progress) {
	if b.bar == nil || p.Pass != b.pass || p.Layer != b.layer {
		b.done()
		digest := p.Digest
		if len(digest) > 19 {
			digest = digest[:19]
		}
		b.pass, b.layer = p.Pass, p.Layer
		b.bar = newProgressBar(b.a.stderr, p.Total, fmt.Sprintf("%s layer %d/%d %s", p.Pass, p.Layer, p.Layers, digest))
	}
	b.bar.Set64(p.Done)
}

func (b *layerBars) done() {
	if b.bar != nil {
		b.bar.Finish()
		b.bar = nil
	}
}

// decompressArchive handles a compressed docker or OCI archive (docker
// save | gzip): the converter reads archives in place, by offset, so the
// tar is first written out to a temp file in the store (tmp, removed by
// cleanup). compressed is false when file is not gzip, zstd or xz; tmp is
// "" (and nothing was written) when the tar inside starts like an ACI.
func (a *app) decompressArchive(s *store.Store, file, display string) (tmp string, cleanup func(), compressed bool, err error) {
	open := func() (io.Reader, func(), error) {
		f, err := os.Open(file)
		if err != nil {
			return nil, nil, err
		}
		br := bufio.NewReaderSize(f, 1<<20)
		magic, _ := br.Peek(6)
		var r io.Reader
		closers := []func(){func() { f.Close() }}
		switch {
		case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
			zr, err := gzip.NewReader(br)
			if err != nil {
				f.Close()
				return nil, nil, err
			}
			r = zr
		case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
			zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
			if err != nil {
				f.Close()
				return nil, nil, err
			}
			r, closers = zr, append(closers, zr.Close)
		case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}):
			zr, err := xz.NewReader(br)
			if err != nil {
				f.Close()
				return nil, nil, err
			}
			r = zr
		default:
			f.Close()
			return nil, nil, nil
		}
		return r, func() {
			for _, c := range closers {
				c()
			}
		}, nil
	}
	r, done, err := open()
	if err != nil || r == nil {
		return "", nil, false, nil // importFile and WriteACI say what is wrong
	}
	hdr, herr := tar.NewReader(r).Next()
	done()
	if herr != nil || path.Clean(hdr.Name) == "manifest" || path.Clean(hdr.Name) == "rootfs" {
		// An ACI, or not a tar: WriteACI judges it.
		return "", nil, true, nil
	}
	if r, done, err = open(); err != nil {
		return "", nil, false, err
	}
	defer done()
	f, err := s.TmpFile()
	if err != nil {
		return "", nil, false, err
	}
	cleanup = func() {
		f.Close()
		os.Remove(f.Name())
	}
	var w io.Writer = f
	if bar := a.progressBar(-1, "decompressing "+display); bar != nil {
		w = io.MultiWriter(f, bar)
		defer bar.Finish()
	}
	if _, err := io.Copy(w, r); err != nil {
		cleanup()
		return "", nil, false, fmt.Errorf("decompress: %w", err)
	}
	return f.Name(), cleanup, true, nil
}
