// bench_linux_test.go measures renders and checks, each against a baseline
// measured in the same run (docs/performance.md has the figures):
//
//	go test -run '^$' -bench . -benchtime 3x ./treestore
//go:build linux

package treestore_test

import (
	"bytes"
	"encoding/json"
	"strings"

	"crypto/sha512"
	"fmt"
	"github.com/appc/spec/schema/types"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	store "github.com/imagestore/imagestore"
	"github.com/imagestore/imagestore/treestore"
	"golang.org/x/sys/unix"
)

// benchImages are a 64 MiB base and a 128 MiB image on it (files of 1 to
// 63 KiB, about 6,000 in all), built once per test binary.
var benchImages struct {
	once      sync.Once
	base, top *aciImage
	bytes     int64 // file data in the two images
}

func benchChain(b *testing.B) (base, top *aciImage, dataBytes int64) {
	benchImages.once.Do(func() {
		rnd := rand.New(rand.NewSource(42))
		layer := func(name, file string, total int, deps ...types.Dependency) *aciImage {
			img := &aciImage{file: file, manifest: manifest(name, "1.0", deps...)}
			for i := 0; i < 40; i++ {
				img.entries = append(img.entries, dirEnt(fmt.Sprintf("%s/d%d", name[len("example.com/"):], i), 0o755))
			}
			written := 0
			for i := 0; written < total; i++ {
				body := make([]byte, 1024+rnd.Intn(62*1024))
				rnd.Read(body)
				img.entries = append(img.entries, fileEnt(fmt.Sprintf("%s/d%d/f%d", name[len("example.com/"):], i/150, i), 0o644, string(body))) // a directory at a time, as tar packs a tree
				written += len(body)
			}
			benchImages.bytes += int64(written)
			return img
		}
		benchImages.base = layer("example.com/base", "base.aci", 64<<20)
		benchImages.top = layer("example.com/top", "top.aci", 128<<20, depByName("example.com/base", "version", "1.0"))
		t := &testing.T{}
		benchImages.base.build(t, 0)
		benchImages.top.build(t, 1)
	})
	return benchImages.base, benchImages.top, benchImages.bytes
}

// benchStores opens an image store holding the bench images, and its
// tree store.
func benchStores(b *testing.B, base, top *aciImage) (string, *store.Store, *treestore.Store) {
	b.Helper()
	dir := b.TempDir()
	s, err := store.NewStore(dir)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	for _, img := range []*aciImage{base, top} {
		if _, err := s.WriteACI(bytes.NewReader(img.raw), store.ACIFetchInfo{}); err != nil {
			b.Fatal(err)
		}
	}
	ts, err := treestore.NewStore(dir, s)
	if err != nil {
		b.Fatal(err)
	}
	return dir, s, ts
}

// BenchmarkRenderCached is Render of a tree already rendered: a small
// image and the 192 MiB chain take about the same time.
func BenchmarkRenderCached(b *testing.B) {
	small := &aciImage{file: "small.aci", manifest: manifest("example.com/small", "1.0"), entries: []tarEntry{fileEnt("f", 0o644, "x")}}
	small.build(&testing.T{}, 0)
	base, top, _ := benchChain(b)
	for _, tc := range []struct {
		name string
		imgs []*aciImage
	}{{"small", []*aciImage{small, small}}, {"192MiB-chain", []*aciImage{base, top}}} {
		b.Run(tc.name, func(b *testing.B) {
			_, _, ts := benchStores(b, tc.imgs[0], tc.imgs[1])
			key := tc.imgs[1].key()
			if _, _, err := ts.Render(key, false); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				if _, hash, err := ts.Render(key, false); err != nil || hash != "" {
					b.Fatalf("Render = %q, %v", hash, err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/render")
		})
	}
}

// BenchmarkCheck checks the rendered 192 MiB chain, and hashes as many
// bytes in memory with SHA-512 on one core in the same run: Check must
// read the data, and is reported against that bound.
func BenchmarkCheck(b *testing.B) {
	base, top, data := benchChain(b)
	_, _, ts := benchStores(b, base, top)
	id, _, err := ts.Render(top.key(), false)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	rand.New(rand.NewSource(1)).Read(buf)
	var check, sum time.Duration
	b.SetBytes(data)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if _, err := ts.Check(id); err != nil {
			b.Fatal(err)
		}
		check += time.Since(start)
		start = time.Now()
		h := sha512.New()
		for n := int64(0); n < data; n += int64(len(buf)) {
			h.Write(buf)
		}
		h.Sum(nil)
		sum += time.Since(start)
	}
	mbps := func(d time.Duration) float64 { return float64(data) * float64(b.N) / d.Seconds() / 1e6 }
	b.ReportMetric(mbps(check), "check-MB/s")
	b.ReportMetric(mbps(sum), "sha512-MB/s")
	b.ReportMetric(mbps(check)/mbps(sum), "check/sha512")
}

// BenchmarkRenderFirst renders the 192 MiB chain from scratch with this
// tree store, with rkt v1.30.0's (the oracle, needs root), and unpacks
// the two image tars with GNU tar (then syncs, for a durable baseline), in
// each iteration, and reports the times and their ratios.
func BenchmarkRenderFirst(b *testing.B) {
	base, top, _ := benchChain(b)
	_, _, ts := benchStores(b, base, top)
	work := b.TempDir()
	files := []string{}
	for _, img := range []*aciImage{base, top} {
		p := filepath.Join(work, img.file)
		if err := os.WriteFile(p, img.tar, 0o644); err != nil {
			b.Fatal(err)
		}
		files = append(files, p)
	}
	oracle := rktOracle(b)
	rktDir := filepath.Join(work, "rkt")
	if _, err := runRktTB(b, oracle, append([]string{"import", rktDir}, files...)...); err != nil {
		b.Fatal(err)
	}
	// Each is timed from a clean page cache (sync first, untimed), so that
	// none pays for writing back what the one before it left dirty, and
	// into an empty directory (the last tree removed first, untimed).
	var ours, rkt, tarx, tarSync time.Duration
	id, err := ts.GetID(top.key())
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		if err := ts.Remove(id); err != nil {
			b.Fatal(err)
		}
		unix.Sync()
		start := time.Now()
		if _, hash, err := ts.Render(top.key(), false); err != nil || hash == "" {
			b.Fatalf("Render = %q, %v", hash, err)
		}
		ours += time.Since(start)

		if err := os.RemoveAll(filepath.Join(rktDir, "tree", id)); err != nil {
			b.Fatal(err)
		}
		unix.Sync()
		res, err := runRktTB(b, oracle, "renderkey", rktDir, top.key())
		if err != nil || res.Seconds == nil || res.RenderHash == nil || *res.RenderHash == "" {
			b.Fatalf("rkt render: %v (it must render, not find the tree)", err)
		}
		rkt += time.Duration(*res.Seconds * float64(time.Second))

		dest := filepath.Join(work, fmt.Sprint("tar", i))
		if err := os.Mkdir(dest, 0o755); err != nil {
			b.Fatal(err)
		}
		unix.Sync()
		start = time.Now()
		for _, f := range files {
			if out, err := exec.Command("tar", "-xf", f, "-C", dest).CombinedOutput(); err != nil {
				b.Fatalf("tar: %v: %s", err, out)
			}
		}
		tarx += time.Since(start)
		unix.Sync()
		tarSync += time.Since(start)
		os.RemoveAll(dest)
	}
	n := float64(b.N)
	b.ReportMetric(ours.Seconds()/n, "imagestore-s")
	b.ReportMetric(rkt.Seconds()/n, "rkt-s")
	b.ReportMetric(tarx.Seconds()/n, "tar-x-s")
	b.ReportMetric(tarSync.Seconds()/n, "tar-x+sync-s")
	b.ReportMetric(rkt.Seconds()/ours.Seconds(), "rkt/imagestore")
	b.ReportMetric(tarx.Seconds()/ours.Seconds(), "tar/imagestore")
	b.ReportMetric(tarSync.Seconds()/ours.Seconds(), "tar+sync/imagestore")
}

// runRktTB runs the oracle for a benchmark and decodes what it prints.
func runRktTB(b *testing.B, oracle string, args ...string) (*rktOracleResult, error) {
	out, err := exec.Command(oracle, args...).Output()
	var res rktOracleResult
	if jerr := json.Unmarshal(out, &res); jerr != nil {
		return nil, fmt.Errorf("rkt %s: %v (%q)", strings.Join(args, " "), err, out)
	}
	if err != nil {
		return nil, fmt.Errorf("rkt %s: %v: %s", strings.Join(args, " "), err, res.Error)
	}
	return &res, nil
}
