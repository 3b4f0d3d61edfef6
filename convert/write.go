package convert

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/appc/spec/schema"
)

const copyBufferSize = 256 << 10

// epoch is the modification time of the entries the converter makes up
// (the manifest, implied directories, a rootfs without a "." entry).
var epoch = time.Unix(0, 0)

// outHeader is the ACI header for a layer entry: the fields a rootfs
// needs, from the layer, and nothing that depends on who wrote the layer
// or when it was unpacked. See the package doc.
func outHeader(h *tar.Header, name string) (*tar.Header, error) {
	o := &tar.Header{
		Name:    name,
		Mode:    h.Mode & 0o7777,
		Uid:     h.Uid,
		Gid:     h.Gid,
		ModTime: time.Unix(h.ModTime.Unix(), 0),
	}
	switch h.Typeflag {
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
		o.Typeflag, o.Size = tar.TypeReg, h.Size
	case tar.TypeDir, tar.TypeFifo:
		o.Typeflag = h.Typeflag
	case tar.TypeSymlink:
		o.Typeflag, o.Linkname = tar.TypeSymlink, h.Linkname
	case tar.TypeChar, tar.TypeBlock:
		o.Typeflag, o.Devmajor, o.Devminor = h.Typeflag, h.Devmajor, h.Devminor
	default:
		return nil, invalidf("%q: unsupported tar entry type %q", h.Name, h.Typeflag)
	}
	for k, v := range h.PAXRecords {
		if strings.HasPrefix(k, "SCHILY.xattr.") {
			if o.PAXRecords == nil {
				o.PAXRecords = map[string]string{}
			}
			o.PAXRecords[k] = v
		}
	}
	return o, nil
}

// linkHeader is a hard link to target, with the inode's metadata (which
// extractors that chmod a link apply to the shared inode).
func linkHeader(in *tar.Header, name, target string) *tar.Header {
	return &tar.Header{
		Typeflag: tar.TypeLink,
		Name:     name,
		Linkname: target,
		Mode:     in.Mode,
		Uid:      in.Uid,
		Gid:      in.Gid,
		ModTime:  in.ModTime,
	}
}

func rootfsPath(p string) string { return "rootfs/" + p }

// writeACI is the second pass: the manifest, the rootfs directory, then
// every surviving layer entry in layer order, each directory just before
// the first entry it holds (or at its own entry).
func (c *Image) writeACI(out io.Writer, p *plan, m *schema.ImageManifest) error {
	tw := tar.NewWriter(out)
	data, err := json.Marshal(m)
	if err != nil {
		return invalidf("manifest: %v", err)
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "manifest", Mode: 0o644, Size: int64(len(data)), ModTime: epoch}); err != nil {
		return err
	}
	if _, err := tw.Write(data); err != nil {
		return err
	}
	root := &tar.Header{Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch}
	if p.root != nil {
		root = p.root
	}
	h, err := outHeader(root, "rootfs")
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	for _, d := range p.dirs {
		d.written = false
	}
	buf := make([]byte, copyBufferSize)
	w := &aciWriter{tw: tw}
	for i := range p.actions {
		if p.sparse && len(p.actions[i]) == 0 {
			continue
		}
		if err := c.copyLayer(w, i, c.layers[i], p, buf); err != nil {
			return err
		}
	}
	return tw.Close()
}

// copyLayer copies one layer's surviving entries.
func (c *Image) copyLayer(w *aciWriter, i int, l layerRef, p *plan, buf []byte) error {
	tw := w.tw
	ls, err := c.open(i, l, "write")
	if err != nil {
		return err
	}
	defer ls.Close()
	tr := tar.NewReader(ls)
	acts := p.actions[i]
	count, err := eachEntry(i, tr, func(ord int, hdr *tar.Header) error {
		if len(acts) == 0 || acts[0].ord != ord {
			return nil
		}
		a := acts[0]
		acts = acts[1:]
		switch a.kind {
		case writeDir:
			if hdr.Typeflag != tar.TypeDir {
				return c.changed(i)
			}
			if err := w.dir(a.dir); err != nil {
				return err
			}
		case writeLink:
			if hdr.Typeflag != tar.TypeLink || a.inode.hdr == nil {
				return c.changed(i)
			}
			if err := w.dir(a.dir); err != nil {
				return err
			}
			if err := tw.WriteHeader(linkHeader(a.inode.hdr, rootfsPath(a.path), rootfsPath(a.inode.paths[0]))); err != nil {
				return err
			}
		case writeContent:
			if hdr.Typeflag == tar.TypeDir || hdr.Typeflag == tar.TypeLink {
				return c.changed(i)
			}
			h, err := outHeader(hdr, rootfsPath(a.path))
			if err != nil {
				return err
			}
			if err := w.dir(a.dir); err != nil {
				return err
			}
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			if h.Typeflag == tar.TypeReg {
				if _, err := io.CopyBuffer(struct{ io.Writer }{tw}, layerData{tr, i}, buf); err != nil {
					return fmt.Errorf("layer %d: %q: %w", i+1, hdr.Name, err)
				}
			}
			a.inode.hdr = h
			for _, q := range a.links {
				if err := w.dir(q.dir); err != nil {
					return err
				}
				if err := tw.WriteHeader(linkHeader(h, rootfsPath(q.path), rootfsPath(a.path))); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if count != p.counts[i] {
		return c.changed(i)
	}
	return ls.finish()
}

// aciWriter writes the ACI's tar.
type aciWriter struct {
	tw *tar.Writer
}

// dir writes d, after its parents, unless it is written already.
func (w *aciWriter) dir(d *dirOut) error {
	if d == nil || d.written {
		return nil
	}
	if err := w.dir(d.parent); err != nil {
		return err
	}
	h := &tar.Header{Typeflag: tar.TypeDir, Name: rootfsPath(d.path), Mode: 0o755, ModTime: epoch}
	if d.hdr != nil {
		var err error
		if h, err = outHeader(d.hdr, rootfsPath(d.path)); err != nil {
			return err
		}
	}
	d.written = true
	return w.tw.WriteHeader(h)
}

// layerData reads one entry's data, calling a read error what it is, a
// broken layer, apart from an error writing the ACI.
type layerData struct {
	r     io.Reader
	layer int
}

func (d layerData) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("%w: layer %d: %w", ErrInvalidImage, d.layer+1, err)
	}
	return n, err
}

func (c *Image) changed(i int) error {
	return invalidf("layer %d (%s) changed between the converter's two reads", i+1, c.layers[i].name)
}
