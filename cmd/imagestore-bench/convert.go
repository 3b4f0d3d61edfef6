package main

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/klauspost/compress/gzip"

	store "github.com/imagestore/imagestore"
	"github.com/imagestore/imagestore/convert"
)

// convertMemory writes an OCI image layout of --rss-mib and has a child
// process convert it into a store (package convert, streamed into
// WriteACI); the figure is the child's peak RSS. The converter reads every
// layer twice and never holds a file's content, so the figure should not
// grow with the image.
func (b *bench) convertMemory() error {
	c := b.cfg
	if c.skipRSS {
		b.note("converter peak RSS not measured (--skip-rss)")
		return nil
	}
	dir := b.dirFor("convert")
	layout := filepath.Join(dir, "oci")
	b.progress("writing a %d MiB OCI image layout (two layers, one gzip) to %s", c.rssMiB, layout)
	if err := writeLargeLayout(layout, int64(c.rssMiB)*mib); err != nil {
		return fmt.Errorf("write image layout: %w", err)
	}
	b.progress("child process: convert + WriteACI of the %d MiB image", c.rssMiB)
	ch, err := startChild("convert", filepath.Join(dir, "store"), layout)
	if err != nil {
		return err
	}
	rep, err := ch.wait()
	if err != nil {
		return err
	}
	if kib, ok := maxRSSKiB(ch.cmd.ProcessState); ok {
		note := fmt.Sprintf("ru_maxrss of the child; it saw VmHWM %.1f MiB itself; the conversion took %.1f s", float64(rep.VmHWMKiB)/1024, rep.Seconds)
		b.add("memory", "peak RSS, convert an OCI image", float64(kib)/1024, "MiB", "", 0, below(64), note)
	} else {
		b.note("converter peak RSS not measured: no ru_maxrss in KiB on %s", osName())
	}
	return os.RemoveAll(dir)
}

// childConvert opens the store args[0] and imports the OCI layout args[1].
func childConvert(args []string) error {
	if len(args) != 2 {
		return errors.New("want STORE-DIR OCI-LAYOUT")
	}
	s, err := store.NewStore(args[0])
	if err != nil {
		return err
	}
	src, err := convert.Open(args[1])
	if err == nil {
		var im *convert.Image
		if im, err = src.Image(""); err == nil {
			_, err = im.Import(s, store.ACIFetchInfo{})
		}
		src.Close()
	}
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	return err
}

// blobWriter writes a blob of an image layout, hashing it on the way, and
// names it by its digest when done.
type blobWriter struct {
	dir string
	f   *os.File
	h   hash.Hash
	n   int64
}

func newBlob(dir string) (*blobWriter, error) {
	f, err := os.CreateTemp(dir, "blob-")
	if err != nil {
		return nil, err
	}
	return &blobWriter{dir: dir, f: f, h: sha256.New()}, nil
}

func (w *blobWriter) Write(p []byte) (int, error) {
	w.h.Write(p)
	w.n += int64(len(p))
	return w.f.Write(p)
}

// done closes the blob and returns its descriptor fields.
func (w *blobWriter) done() (digest string, size int64, err error) {
	if err := w.f.Close(); err != nil {
		return "", 0, err
	}
	hex := fmt.Sprintf("%x", w.h.Sum(nil))
	return "sha256:" + hex, w.n, os.Rename(w.f.Name(), filepath.Join(w.dir, hex))
}

// writeLargeLayout writes an OCI image layout of about size bytes: an
// uncompressed layer of 1 MiB files (3/4 of the size) and a gzip layer
// with the rest, whiting out some of the first layer's files and linking
// others, so that both passes of the converter have work to do.
func writeLargeLayout(dir string, size int64) error {
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return err
	}
	rnd := rand.NewChaCha8(seedBytes(7))
	body := make([]byte, mib)
	type desc struct {
		MediaType string `json:"mediaType"`
		Digest    string `json:"digest"`
		Size      int64  `json:"size"`
	}
	var layers []desc
	var diffIDs []string
	files := size / mib
	for l, span := range [][2]int64{{0, files * 3 / 4}, {files * 3 / 4, files}} {
		bw, err := newBlob(blobs)
		if err != nil {
			return err
		}
		var w io.Writer = bw
		var zw *gzip.Writer
		mt := "application/vnd.oci.image.layer.v1.tar"
		if l == 1 {
			zw, _ = gzip.NewWriterLevel(bw, gzip.BestSpeed)
			w, mt = zw, "application/vnd.oci.image.layer.v1.tar+gzip"
		}
		diff := sha256.New()
		tw := tar.NewWriter(io.MultiWriter(w, diff))
		if err := tw.WriteHeader(&tar.Header{Name: "data/", Mode: 0o755, Typeflag: tar.TypeDir}); err != nil {
			return err
		}
		for i := span[0]; i < span[1]; i++ {
			rnd.Read(body[:mib/2]) // half random, half zeros: gzip has work, but not all of it in vain
			if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("data/f%05d", i), Mode: 0o644, Size: mib, Typeflag: tar.TypeReg}); err != nil {
				return err
			}
			if _, err := tw.Write(body); err != nil {
				return err
			}
			if l == 0 && i%16 == 0 {
				if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("data/l%05d", i), Linkname: fmt.Sprintf("data/f%05d", i), Typeflag: tar.TypeLink}); err != nil {
					return err
				}
			}
		}
		if l == 1 {
			for i := int64(0); i < span[0]; i += 8 {
				if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("data/.wh.f%05d", i), Mode: 0o644, Typeflag: tar.TypeReg}); err != nil {
					return err
				}
			}
		}
		if err := tw.Close(); err != nil {
			return err
		}
		if zw != nil {
			if err := zw.Close(); err != nil {
				return err
			}
		}
		d, n, err := bw.done()
		if err != nil {
			return err
		}
		layers = append(layers, desc{mt, d, n})
		diffIDs = append(diffIDs, fmt.Sprintf("sha256:%x", diff.Sum(nil)))
	}
	writeJSONBlob := func(v any) (desc, error) {
		data, err := json.Marshal(v)
		if err != nil {
			return desc{}, err
		}
		bw, err := newBlob(blobs)
		if err != nil {
			return desc{}, err
		}
		bw.Write(data)
		d, n, err := bw.done()
		return desc{Digest: d, Size: n}, err
	}
	cfg, err := writeJSONBlob(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Cmd": []string{"/bin/true"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs},
	})
	if err != nil {
		return err
	}
	cfg.MediaType = "application/vnd.oci.image.config.v1+json"
	man, err := writeJSONBlob(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": cfg, "layers": layers})
	if err != nil {
		return err
	}
	man.MediaType = "application/vnd.oci.image.manifest.v1+json"
	index, err := json.Marshal(map[string]any{"schemaVersion": 2, "manifests": []any{map[string]any{
		"mediaType": man.MediaType, "digest": man.Digest, "size": man.Size,
		"annotations": map[string]string{"org.opencontainers.image.ref.name": "example.com/bench-convert:1"},
	}}})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "index.json"), index, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
}
