package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/ulikunitz/xz"
)

const mib = 1 << 20

// manifest returns an appc image manifest named name with labels given as
// "key=value" strings.
func manifest(name string, labels ...string) ([]byte, error) {
	type label struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	}
	m := struct {
		ACKind    string  `json:"acKind"`
		ACVersion string  `json:"acVersion"`
		Name      string  `json:"name"`
		Labels    []label `json:"labels,omitempty"`
	}{ACKind: "ImageManifest", ACVersion: "0.8.11", Name: name}
	for _, l := range labels {
		k, v, _ := strings.Cut(l, "=")
		m.Labels = append(m.Labels, label{k, v})
	}
	return json.Marshal(m)
}

// writeLargeImage writes to w an image tar of size bytes of file content
// (rounded down to whole MiB): a manifest, then files of 1 MiB, every other
// one random and the rest lines of text. It streams; nothing is held whole.
func writeLargeImage(w io.Writer, name string, size int64, seed uint64) error {
	m, err := manifest(name, "version=1.0.0", "os=linux", "arch=amd64")
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	if err := tw.WriteHeader(&tar.Header{Name: "manifest", Mode: 0o644, Size: int64(len(m)), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := tw.Write(m); err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: "rootfs/", Mode: 0o755, Typeflag: tar.TypeDir}); err != nil {
		return err
	}
	rnd := rand.NewChaCha8(seedBytes(seed))
	body := make([]byte, mib)
	for i := range size / mib {
		if i%2 == 0 {
			rnd.Read(body)
		} else {
			var line []byte
			for j := 0; j < len(body); j += len(line) {
				line = fmt.Appendf(line[:0], "file %d line %d: the store keeps images by the SHA-512 of their tar\n", i, j)
				copy(body[j:], line)
			}
		}
		hdr := &tar.Header{Name: fmt.Sprintf("rootfs/data/f%05d", i), Mode: 0o644, Size: mib, Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(body); err != nil {
			return err
		}
	}
	return tw.Close()
}

func seedBytes(seed uint64) [32]byte {
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	return s
}

// tinyImage returns a small image named name with labels; its rootfs file
// makes it unique for each name and label set.
func tinyImage(name string, labels ...string) ([]byte, error) {
	m, err := manifest(name, labels...)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	id := fmt.Sprintf("%s %s\n", name, strings.Join(labels, " "))
	for _, e := range []struct {
		hdr  tar.Header
		body string
	}{
		{tar.Header{Name: "manifest", Mode: 0o644, Size: int64(len(m)), Typeflag: tar.TypeReg}, string(m)},
		{tar.Header{Name: "rootfs/", Mode: 0o755, Typeflag: tar.TypeDir}, ""},
		{tar.Header{Name: "rootfs/id", Mode: 0o644, Size: int64(len(id)), Typeflag: tar.TypeReg}, id},
	} {
		if err := tw.WriteHeader(&e.hdr); err != nil {
			return nil, err
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// gzipBytes compresses data with the default level.
func gzipBytes(data []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// xzBytes compresses data with the xz command when there is one (fast,
// -0), else with github.com/ulikunitz/xz. It says which.
func xzBytes(data []byte) ([]byte, string, error) {
	if _, err := exec.LookPath("xz"); err == nil {
		out, err := compressCmd(data, "xz", "-0", "-T1", "-c")
		return out, "the xz command (-0, one stream per core, concatenated)", err
	}
	var buf bytes.Buffer
	zw, err := xz.NewWriter(&buf)
	if err != nil {
		return nil, "", err
	}
	if _, err := zw.Write(data); err != nil {
		return nil, "", err
	}
	if err := zw.Close(); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), "github.com/ulikunitz/xz's writer (no xz command)", nil
}

// compressCmd compresses data with a command (bzip2, xz) that writes to
// stdout. The data is cut into one part per core, compressed in parallel
// and the streams concatenated: both formats allow that, and the store's
// decoders read concatenated streams.
func compressCmd(data []byte, name string, args ...string) ([]byte, error) {
	parts := max(1, runtime.NumCPU())
	step := (len(data) + parts - 1) / parts
	outs := make([][]byte, parts)
	errs := make([]error, parts)
	var wg sync.WaitGroup
	for p := range parts {
		lo, hi := min(p*step, len(data)), min((p+1)*step, len(data))
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(name, args...)
			cmd.Stdin = bytes.NewReader(data[lo:hi])
			var out, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &stderr
			if err := cmd.Run(); err != nil {
				errs[p] = fmt.Errorf("%s: %v: %s", name, err, strings.TrimSpace(stderr.String()))
			}
			outs[p] = out.Bytes()
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return slices.Concat(outs...), nil
}

// runsList formats each run's figure in the order measured.
func runsList(xs []float64, format string) string {
	each := make([]string, len(xs))
	for i, x := range xs {
		each[i] = fmt.Sprintf(format, x)
	}
	return strings.Join(each, ", ")
}

// median returns the median of xs (the mean of the middle two for an even
// count), leaving xs in its order.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	xs = slices.Sorted(slices.Values(xs))
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// opsRate calls op with 0, 1, 2, … for at least d and returns calls per
// second; it does that runs times and returns the median.
func opsRate(runs int, d time.Duration, op func(i int) error) (float64, error) {
	rates := make([]float64, 0, runs)
	i := 0
	for range runs {
		n := 0
		t0 := time.Now()
		var el time.Duration
		for {
			if err := op(i); err != nil {
				return 0, err
			}
			i++
			n++
			if n%8 == 0 || n < 8 {
				if el = time.Since(t0); el >= d {
					break
				}
			}
		}
		rates = append(rates, float64(n)/el.Seconds())
	}
	return median(rates), nil
}

// spread returns the i'th index of a walk that visits all of 0..n-1 in a
// scattered order, so that consecutive calls do not hit neighbouring rows.
func spread(i, n int) int {
	const prime = 7919 // n is never a multiple of it in this program
	if n%prime == 0 {
		return i % n
	}
	return (i * prime) % n
}
