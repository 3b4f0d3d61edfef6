// Benchmarks of writes, removals, metadata calls and ingest, by size.

package store

import (
	"bytes"
	"fmt"
	"io"
	"syscall"
	"testing"

	"github.com/appc/spec/schema/types"
)

// populate writes n tiny images across n/10 names and 10 versions, the
// first version of each name imported as latest, and returns their keys.
func populate(tb testing.TB, s *Store, n int) []string {
	tb.Helper()
	keys := make([]string, n)
	for i := range keys {
		name := fmt.Sprintf("example.com/app-%d", i/10)
		keys[i] = writeImage(tb, s, makeACI(tb, name, fmt.Sprintf("version=%d.0", i%10), "os=linux"), i%10 == 0)
	}
	return keys
}

// warmStore returns a store that already holds 512 tiny images, so that
// most of its 256 shard directories exist, as in a store in use.
func warmStore(b *testing.B) *Store {
	b.Helper()
	s := newTestStore(b)
	for i := 0; i < 512; i++ {
		writeImage(b, s, makeACI(b, "example.com/warm", fmt.Sprintf("i=%d", i)), false)
	}
	return s
}

func BenchmarkWriteACITiny(b *testing.B) {
	s := warmStore(b)
	imgs := make([][]byte, b.N)
	for i := range imgs {
		imgs[i] = makeACI(b, "example.com/bench", fmt.Sprintf("i=%d", i))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		writeImage(b, s, imgs[i], false)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
}

func BenchmarkRemoveACITiny(b *testing.B) {
	s := warmStore(b)
	keys := make([]string, b.N)
	for i := range keys {
		keys[i] = writeImage(b, s, makeACI(b, "example.com/bench", fmt.Sprintf("i=%d", i)), false)
	}
	b.ResetTimer()
	for _, k := range keys {
		if err := s.RemoveACI(k); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
}

// metadataStore is a store of 1000 tiny images shared by the metadata
// benchmarks of one run.
func metadataStore(b *testing.B) (*Store, []string) {
	b.Helper()
	s := newTestStore(b)
	return s, populate(b, s, 1000)
}

func BenchmarkMetadata(b *testing.B) {
	s, keys := metadataStore(b)
	ops := []struct {
		name string
		fn   func(i int) error
	}{
		{"ResolveKey12", func(i int) error { _, err := s.ResolveKey(keys[i%len(keys)][:19]); return err }},
		{"GetACIVersion", func(i int) error {
			_, err := s.GetACI(types.ACIdentifier(fmt.Sprintf("example.com/app-%d", i%100)), types.Labels{{Name: "version", Value: fmt.Sprintf("%d.0", i%10)}})
			return err
		}},
		{"GetACILatest", func(i int) error {
			_, err := s.GetACI(types.ACIdentifier(fmt.Sprintf("example.com/app-%d", i%100)), nil)
			return err
		}},
		{"GetImageManifest", func(i int) error { _, err := s.GetImageManifest(keys[i%len(keys)]); return err }},
		{"HasFullKey", func(i int) error {
			if !s.HasFullKey(keys[i%len(keys)]) {
				return fmt.Errorf("missing")
			}
			return nil
		}},
		{"GetAllACIInfos", func(i int) error {
			ais, err := s.GetAllACIInfos([]string{"importtime"}, true)
			if err == nil && len(ais) != len(keys) {
				err = fmt.Errorf("%d rows", len(ais))
			}
			return err
		}},
		{"WriteGetRemote", func(i int) error {
			r := &Remote{ACIURL: fmt.Sprintf("https://example.com/%d.aci", i%500), BlobKey: keys[i%len(keys)]}
			if err := s.WriteRemote(r); err != nil {
				return err
			}
			_, err := s.GetRemote(r.ACIURL)
			return err
		}},
		{"ReadStreamTiny", func(i int) error {
			rc, err := s.ReadStream(keys[i%len(keys)])
			if err != nil {
				return err
			}
			_, err = io.Copy(io.Discard, rc)
			rc.Close()
			return err
		}},
	}
	for _, op := range ops {
		b.Run(op.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if err := op.fn(i); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
		})
	}
}

// BenchmarkIngest measures WriteACI of a large image against SHA-512 of
// the same bytes in memory (the ceiling: the key is that hash).
func BenchmarkIngest(b *testing.B) {
	const size = 64 << 20
	img := largeACI(b, size)
	b.Run("sha512-baseline", func(b *testing.B) {
		b.SetBytes(int64(len(img)))
		for i := 0; i < b.N; i++ {
			h := newHasher()
			h.Write(img)
			h.Sum(nil)
		}
	})
	for _, form := range []struct {
		name string
		data []byte
	}{{"tar", img}, {"gzip", gzipBytes(b, img)}} {
		b.Run(form.name, func(b *testing.B) {
			s := newTestStore(b)
			b.SetBytes(int64(len(img)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				writeImage(b, s, form.data, false)
			}
		})
	}
}

// largeACI builds an image of about size bytes: half random, half text.
func largeACI(tb testing.TB, size int) []byte {
	tb.Helper()
	entries := []tarEntry{{"manifest", manifestJSON("example.com/large")}, {"rootfs/", nil}}
	rnd := newPRNG(1)
	const chunk = 1 << 20
	for i := 0; i < size/chunk; i++ {
		body := make([]byte, chunk)
		if i%2 == 0 {
			rnd.Read(body)
		} else {
			line := []byte(fmt.Sprintf("line of text number %d in file %d, compressible\n", i, i))
			for j := 0; j < len(body); j += len(line) {
				copy(body[j:], line)
			}
		}
		entries = append(entries, tarEntry{fmt.Sprintf("rootfs/f%04d", i), body})
	}
	return makeTar(tb, entries...)
}

// BenchmarkWrite20Layers writes an image's 20 tiny layers (as a layered
// import of a docker image writes its ENV, LABEL and empty layers): once
// as one Batch, once as 20 WriteACI calls. Each iteration writes 20 new
// images; images/s counts them. For the syncs per image, run it under
// strace: the access(2) calls on /bench-marker-* bound the timed loop
// (README "Importing docker and OCI images" says how).
func BenchmarkWrite20Layers(b *testing.B) {
	const layers = 20
	for _, mode := range []string{"batch", "single"} {
		b.Run(mode, func(b *testing.B) {
			s := warmStore(b)
			imgs := make([][]byte, b.N*layers)
			for i := range imgs {
				imgs[i] = makeACI(b, "layer/bench", fmt.Sprintf("i=%d", i))
			}
			syscall.Access("/bench-marker-start-"+mode, 0)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				chunk := imgs[i*layers : (i+1)*layers]
				if mode == "single" {
					for _, img := range chunk {
						writeImage(b, s, img, false)
					}
					continue
				}
				batch := s.NewBatch()
				for _, img := range chunk {
					if _, err := batch.Add(bytes.NewReader(img), ACIFetchInfo{}); err != nil {
						b.Fatal(err)
					}
				}
				if err := batch.Commit(); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			syscall.Access("/bench-marker-end-"+mode, 0)
			b.ReportMetric(float64(b.N*layers)/b.Elapsed().Seconds(), "images/s")
		})
	}
}
