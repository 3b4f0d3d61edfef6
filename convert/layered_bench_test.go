package convert

// The benchmark of a 20-layer import: the layer ACIs as one Batch (what
// ImportLayers does) against 20 WriteACI calls.

import (
	"bytes"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"syscall"
	"testing"

	"github.com/appc/spec/schema"
	store "github.com/imagestore/imagestore"
)

// BenchmarkImport20Layers imports images of 20 tiny layers (a docker
// image's ENV, LABEL, COPY layers), a new image each iteration, into a
// store that already holds 512 images (its shard directories exist).
// images/s counts layer ACIs. The access(2) calls on /bench-marker-*
// bound the timed loop, for strace to count the syncs inside it.
func BenchmarkImport20Layers(b *testing.B) {
	const layers = 20
	for _, mode := range []string{"batch", "single"} {
		b.Run(mode, func(b *testing.B) {
			s := newStore(b)
			for i := range 512 {
				aci := bytes.NewReader(must(tarOf(b, fmt.Sprintf("warm/%d", i))))
				if _, err := s.WriteACI(aci, store.ACIFetchInfo{}); err != nil {
					b.Fatal(err)
				}
			}
			plans := make([]*LayeredPlan, b.N)
			for i := range plans {
				var ls [][]byte
				for l := range layers {
					ls = append(ls, layerTar(b, file(fmt.Sprintf("etc/layer%d", l), fmt.Sprint(i, "/", l))))
				}
				p := writeOCIDir(b, b.TempDir(), namedImage{"example.com/bench:1", buildImage(b, plainLayers, ls...)})
				src := must(Open(p))
				b.Cleanup(func() { src.Close() })
				plans[i] = must(must(src.Image("")).PlanLayers())
			}
			syscall.Access("/bench-marker-start-"+mode, 0)
			b.ResetTimer()
			for _, lp := range plans {
				if mode == "batch" {
					if _, err := lp.Import(s, store.ACIFetchInfo{}); err != nil {
						b.Fatal(err)
					}
					continue
				}
				var (
					below   *schema.ImageManifest
					belowID string
				)
				for i, l := range lp.layers {
					m := must(lp.manifest(i, below, belowID))
					var buf bytes.Buffer
					if err := lp.image.writeACI(&buf, l.plan, m); err != nil {
						b.Fatal(err)
					}
					sum := sha512.Sum512(buf.Bytes())
					if _, err := s.WriteACI(bytes.NewReader(buf.Bytes()), store.ACIFetchInfo{}); err != nil {
						b.Fatal(err)
					}
					below, belowID = m, "sha512-"+hex.EncodeToString(sum[:])
				}
			}
			b.StopTimer()
			syscall.Access("/bench-marker-end-"+mode, 0)
			b.ReportMetric(float64(b.N*layers)/b.Elapsed().Seconds(), "layers/s")
		})
	}
}

// tarOf is a tiny ACI named name.
func tarOf(tb testing.TB, name string) ([]byte, error) {
	m := schema.BlankImageManifest()
	m.Name.Set(name)
	var buf bytes.Buffer
	p := &Plan{image: &Image{manifest: m}, plan: newFlattener().finish(0)}
	_, err := p.WriteTo(&buf)
	return buf.Bytes(), err
}
