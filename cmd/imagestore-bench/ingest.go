package main

import (
	"bytes"
	"compress/bzip2"
	"crypto/sha512"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	store "github.com/imagestore/imagestore"
	"github.com/klauspost/compress/gzip"
	"github.com/ulikunitz/xz"
)

// ingest measures WriteACI of the large image in each format, fed from
// memory, against SHA-512 of the tar and the decoders alone on the same
// bytes; then ReadStream of the stored image against reading its blob file.
// The runs of every measurement are interleaved, so that a slow moment of
// the shared machine does not fall on one figure only.
func (b *bench) ingest() error {
	c := b.cfg
	b.progress("building a %d MiB image (half random, half text files of 1 MiB)", c.imageMiB)
	var tarBuf bytes.Buffer
	tarBuf.Grow(c.imageMiB*mib + mib)
	if err := writeLargeImage(&tarBuf, "example.com/bench-large", int64(c.imageMiB)*mib, 1); err != nil {
		return fmt.Errorf("build image: %w", err)
	}
	img := tarBuf.Bytes()
	size := float64(len(img)) / mib

	type form struct {
		name string
		data []byte
	}
	forms := []form{}
	for _, f := range c.formats {
		var data []byte
		var err error
		t0 := time.Now()
		switch f {
		case "tar":
			data = img
		case "gzip":
			data, err = gzipBytes(img)
		case "xz":
			var how string
			data, how, err = xzBytes(img)
			b.note("xz input made with %s", how)
		case "bzip2":
			if _, lerr := exec.LookPath("bzip2"); lerr != nil {
				b.note("bzip2 skipped: no bzip2 command on PATH, and Go has no bzip2 encoder")
				continue
			}
			data, err = compressCmd(img, "bzip2", "-1", "-c")
			b.note("bzip2 input made with the bzip2 command (-1, one stream per core, concatenated)")
		}
		if err != nil {
			return fmt.Errorf("compress %s: %w", f, err)
		}
		if f != "tar" {
			b.progress("compressed to %s: %.1f MiB in %.1f s", f, float64(len(data))/mib, time.Since(t0).Seconds())
		}
		forms = append(forms, form{f, data})
	}

	s, err := store.NewStore(b.dirFor("ingest"))
	if err != nil {
		return err
	}
	defer s.Close()

	// This VM hands freed memory back to its host (free page reporting,
	// about 2 s after it is freed), and the first touch of such a page
	// again faults in the host: a write of 256 MiB of page cache on those
	// pages took up to 400 ms more system time. Both the removal of the
	// previous image and a long decoder run leave such pages. So before
	// every timed write the benchmark waits for the reporting of what the
	// previous step freed to be over, then writes and removes the tar
	// image, untimed, and the timed write reuses that memory at once.
	// (Instrumented, 7 runs: the gzip write, which followed the tar
	// write's removal by about 1 s, was the one with reports in its
	// window and with 230-440 ms of system time where tar had 60-140.)
	warm := func() error {
		time.Sleep(c.settle)
		if err := writeRemove(s, img); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
		return nil
	}
	b.note("before every timed write: a pause of %s (this VM hands freed memory back to its host about 2 s after it is freed, and touching it again faults in the host), then the %d MiB tar image written and removed, untimed; the timed write reuses that memory", c.settle, c.imageMiB)
	b.note("WriteACI reads its input from a bytes.Reader (in memory), so input I/O is not measured; each timed write is followed by an untimed RemoveACI")

	rates := map[string][]float64{}
	timeMiBs := func(name string, fn func() error) error {
		t0 := time.Now()
		if err := fn(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		rates[name] = append(rates[name], size/time.Since(t0).Seconds())
		return nil
	}
	for run := range c.runs {
		b.progress("ingest run %d of %d", run+1, c.runs)
		if err := timeMiBs("sha512", func() error { sha512.Sum512(img); return nil }); err != nil {
			return err
		}
		for _, f := range forms {
			if dec, ok := decoders[f.name]; ok {
				if err := timeMiBs(f.name+" decoder", func() error { return dec.decode(f.data) }); err != nil {
					return err
				}
			}
			if err := warm(); err != nil {
				return err
			}
			var key string
			err := timeMiBs(f.name, func() error {
				var err error
				key, err = s.WriteACI(bytes.NewReader(f.data), store.ACIFetchInfo{})
				return err
			})
			if err != nil {
				return err
			}
			if err := s.RemoveACI(key); err != nil {
				return fmt.Errorf("remove %s image: %w", f.name, err)
			}
		}
	}
	// Each figure's note lists its runs in the order measured.
	runs := func(name string) string { return "runs: " + runsList(rates[name], "%.0f") + " MiB/s" }
	sha := median(rates["sha512"])
	b.add("ingest", "SHA-512 of the tar in memory", sha, "MiB/s", "", 0, nil, "baseline: one core's hash rate, the ceiling; "+runs("sha512"))
	for _, f := range forms {
		input := fmt.Sprintf("input %.1f MiB; %s", float64(len(f.data))/mib, runs(f.name))
		switch f.name {
		case "tar":
			b.add("ingest", "WriteACI tar", median(rates["tar"]), "MiB/s", "sha512", sha, atLeastRatio(0.85), runs("tar"))
		case "gzip":
			b.add("ingest", "gzip decoder alone", median(rates["gzip decoder"]), "MiB/s", "", 0, nil,
				fmt.Sprintf("context, not a baseline: %s from memory to io.Discard; %s", decoders["gzip"].pkg, runs("gzip decoder")))
			b.add("ingest", "WriteACI gzip", median(rates["gzip"]), "MiB/s", "sha512", sha, atLeastRatio(0.80), input)
		case "xz", "bzip2":
			dec := median(rates[f.name+" decoder"])
			b.add("ingest", f.name+" decoder alone", dec, "MiB/s", "", 0, nil,
				fmt.Sprintf("baseline: %s from memory to io.Discard; %s", decoders[f.name].pkg, runs(f.name+" decoder")))
			b.add("ingest", "WriteACI "+f.name, median(rates[f.name]), "MiB/s", f.name+" dec", dec, atLeastRatio(0.85), input)
		}
	}
	return b.readStream(s, img)
}

// writeRemove writes img and removes it again.
func writeRemove(s *store.Store, img []byte) error {
	key, err := s.WriteACI(bytes.NewReader(img), store.ACIFetchInfo{})
	if err != nil {
		return err
	}
	return s.RemoveACI(key)
}

// decoders are the decoders alone, from memory to io.Discard: the
// baselines (xz, bzip2) and the context (gzip) of the ingest figures, each
// with the package the store decodes that format with.
var decoders = map[string]struct {
	pkg    string
	decode func(data []byte) error
}{
	"gzip": {"github.com/klauspost/compress/gzip", func(data []byte) error {
		return drain(gzip.NewReader(bytes.NewReader(data)))
	}},
	"xz": {"github.com/ulikunitz/xz", func(data []byte) error {
		return drain(xz.NewReader(bytes.NewReader(data)))
	}},
	"bzip2": {"compress/bzip2", func(data []byte) error {
		return drain(bzip2.NewReader(bytes.NewReader(data)), nil)
	}},
}

// drain reads r to its end, unless opening it failed.
func drain(r io.Reader, err error) error {
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, r)
	return err
}

// blobPath is where the store keeps the tar of key, by its documented
// layout: DIR/blob/sha512/<first two hex digits>/<key>.
func blobPath(dir, key string) string {
	return filepath.Join(dir, "blob", "sha512", key[len("sha512-"):len("sha512-")+2], key)
}

// readStream stores img and reads it back to the end with ReadStream and,
// as the baseline, straight from its blob file; both with the page cache
// warm (one untimed read of each first).
func (b *bench) readStream(s *store.Store, img []byte) error {
	key, err := s.WriteACI(bytes.NewReader(img), store.ACIFetchInfo{})
	if err != nil {
		return err
	}
	path := blobPath(b.dirFor("ingest"), key)
	size := float64(len(img)) / mib
	viaStore := func() (int64, error) {
		rc, err := s.ReadStream(key)
		if err != nil {
			return 0, err
		}
		n, err := io.Copy(io.Discard, rc)
		if cerr := rc.Close(); err == nil {
			err = cerr
		}
		return n, err
	}
	direct := func() (int64, error) {
		f, err := os.Open(path)
		if err != nil {
			return 0, err
		}
		n, err := io.Copy(io.Discard, f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return n, err
	}
	var rs, ds []float64
	for i := range b.cfg.runs + 1 {
		for _, m := range []struct {
			fn   func() (int64, error)
			into *[]float64
		}{{direct, &ds}, {viaStore, &rs}} {
			t0 := time.Now()
			n, err := m.fn()
			if err != nil {
				return fmt.Errorf("read image: %w", err)
			}
			if n != int64(len(img)) {
				return fmt.Errorf("read image: %d bytes, want %d", n, len(img))
			}
			if i > 0 { // the first round warms the page cache
				*m.into = append(*m.into, size/time.Since(t0).Seconds())
			}
		}
	}
	d := median(ds)
	b.add("read", "blob file read directly", d, "MiB/s", "", 0, nil, "baseline: os.Open + io.Copy to io.Discard")
	b.add("read", "ReadStream to the end", median(rs), "MiB/s", "direct", d, atLeastRatio(0.9), "page cache warm for both (one untimed read of each first)")
	return nil
}
