package convert

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/appc/spec/schema"
)

// Source is an opened input: a docker archive, an OCI archive or an OCI
// image layout directory. Close it when done.
type Source struct {
	files  files
	format Format
	images []*candidate
}

// Open opens an input and lists its images. A directory is read as an
// OCI image layout (or an unpacked docker archive); a file as an archive,
// which must be an uncompressed tar (as docker save writes it).
func Open(name string) (_ *Source, err error) {
	st, err := os.Stat(name)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	var fsys files
	if st.IsDir() {
		if fsys, err = openDir(name); err != nil {
			return nil, err
		}
	} else {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", name, err)
		}
		t, err := openTar(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("open %s: %w", name, err)
		}
		fsys = t
	}
	defer func() {
		if err != nil {
			fsys.Close()
		}
	}()
	format, images, err := detect(fsys)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	return &Source{files: fsys, format: format, images: images}, nil
}

// Close releases the input.
func (s *Source) Close() error { return s.files.Close() }

// Format tells the input's layout.
func (s *Source) Format() Format { return s.format }

// Images lists the input's images.
func (s *Source) Images() []ImageInfo {
	out := make([]ImageInfo, len(s.images))
	for i, c := range s.images {
		out[i] = c.info
	}
	return out
}

// Image selects one image: by a reference as written in the input
// ("myuser/two:V2.0_rc1"; "busybox" and "docker.io/library/busybox:latest"
// match each other), or by a "sha256:" manifest or config digest. An empty
// selection picks the only image; with several it fails with a
// *SeveralImagesError that lists them.
func (s *Source) Image(sel string) (*Image, error) {
	var (
		matches []*candidate
		used    string
	)
	switch {
	case sel == "":
		matches = s.images
	case strings.HasPrefix(sel, "sha256:") || strings.HasPrefix(sel, "sha512:"):
		for _, c := range s.images {
			if c.info.ManifestDigest == sel || c.info.ConfigDigest == sel {
				matches = append(matches, c)
			}
		}
	default:
		for _, c := range s.images {
			if r := matchRef(c.info.Refs, sel); r != "" {
				matches = append(matches, c)
				used = r
			}
		}
	}
	switch {
	case len(matches) == 0 && sel == "":
		return nil, fmt.Errorf("%w: the input holds no image", ErrNoImage)
	case len(matches) == 0:
		return nil, fmt.Errorf("%w: %q; the input holds: %s", ErrNoImage, sel, listImages(s.Images()))
	case len(matches) > 1:
		e := &SeveralImagesError{}
		for _, c := range matches {
			e.Images = append(e.Images, c.info)
		}
		return nil, e
	}
	c := matches[0]
	r, err := c.load()
	if err != nil {
		return nil, err
	}
	refs := c.info.Refs
	if used != "" {
		// The selected reference names the image, before any other.
		refs = append([]string{used}, refs...)
	}
	m, err := buildManifest(refs, r.config, r.configDigest)
	if err != nil {
		return nil, err
	}
	return &Image{files: s.files, info: c.info, layers: r.layers, manifest: m}, nil
}

func listImages(ims []ImageInfo) string {
	var parts []string
	for _, im := range ims {
		parts = append(parts, im.String())
	}
	return strings.Join(parts, "; ")
}

// matchRef returns the reference of refs that sel names, or "".
func matchRef(refs []string, sel string) string {
	for _, r := range refs {
		if r == sel {
			return r
		}
	}
	want, err := parseRef(sel)
	if err != nil {
		return ""
	}
	for _, r := range refs {
		if isBareTag(r) {
			continue
		}
		if got, err := parseRef(r); err == nil && got == want {
			return r
		}
	}
	return ""
}

// Progress reports how far a conversion is. Pass is "scan" (reading
// the layers' headers and checking digests) or "write" (copying them into
// the ACI); Layer counts from 1 within Layers; Done and Total are bytes of
// the layer's blob as stored (Total is -1 when unknown).
type Progress struct {
	Pass          string
	Layer, Layers int
	Digest        string
	Done, Total   int64
}

// Image is one image of a Source, selected and with its config read.
type Image struct {
	files    files
	info     ImageInfo
	layers   []layerRef
	manifest *schema.ImageManifest

	// Progress, when set, is called as the layers are read.
	Progress func(Progress)
}

// Info describes the image.
func (c *Image) Info() ImageInfo { return c.info }

// Manifest is the appc manifest the ACI will carry.
func (c *Image) Manifest() *schema.ImageManifest { return c.manifest }

// open opens layer i for a pass, reporting progress.
func (c *Image) open(i int, l layerRef, pass string) (*layerStream, error) {
	var step func(done, total int64)
	if c.Progress != nil {
		step = func(done, total int64) {
			c.Progress(Progress{Pass: pass, Layer: i + 1, Layers: len(c.layers), Digest: l.name, Done: done, Total: total})
		}
	}
	ls, _, err := openLayer(c.files, l, step)
	return ls, err
}

// Plan is a checked image, ready to be written: every layer has been read
// once, its digests verified and its headers replayed. Nothing of the
// image has been written anywhere yet.
type Plan struct {
	image *Image
	plan  *plan
}

// Plan runs the first pass: it reads every layer's headers and checks
// every digest, so that a bad layer is found before anything is written.
func (c *Image) Plan() (*Plan, error) {
	f := newFlattener()
	for i, l := range c.layers {
		if _, err := c.scanLayer(f, i, l); err != nil {
			return nil, err
		}
	}
	return &Plan{image: c, plan: f.finish(len(c.layers))}, nil
}

// scanLayer replays layer i's headers on f and checks its digests; it
// returns the layer's diff_id.
func (c *Image) scanLayer(f *flattener, i int, l layerRef) (string, error) {
	ls, err := c.open(i, l, "scan")
	if err != nil {
		return "", err
	}
	defer ls.Close()
	err = f.addLayer(i, tar.NewReader(ls))
	// A layer that is not what its digest says is reported as such, even
	// when its damage first showed as a broken tar or a strange path.
	if ferr := ls.finish(); errors.Is(ferr, ErrDigestMismatch) || err == nil {
		if ferr != nil {
			return "", ferr
		}
		return ls.diffID(), nil
	}
	return "", err
}

// WriteTo writes the ACI (an uncompressed tar) to w, reading every layer a
// second time. It fails if a layer no longer matches its digest.
func (p *Plan) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	err := p.image.writeACI(cw, p.plan, p.image.manifest)
	return cw.n, err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Convert writes the ACI of the selected image to w: Plan, then WriteTo.
func (c *Image) Convert(w io.Writer) error {
	p, err := c.Plan()
	if err != nil {
		return err
	}
	_, err = p.WriteTo(w)
	return err
}
