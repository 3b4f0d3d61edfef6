package convert

import (
	"archive/tar"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// TestUmociAgrees compares each flatten case and 30 generated stacks with
// a second, independent flattening: umoci unpack of the OCI layout (which,
// unlike GNU tar, can also be the reference for a hard link whose target
// its own layer whites out). It runs where umoci is
// installed (apt-get install umoci) and is skipped elsewhere.
func TestUmociAgrees(t *testing.T) {
	umoci, err := exec.LookPath("umoci")
	if err != nil {
		t.Skip("no umoci")
	}
	for _, tc := range flattenCases {
		t.Run(tc.name, func(t *testing.T) {
			// umoci 0.4.7 refuses PAX global headers, which the
			// converter skips: leave them out here.
			var spec [][]ent
			for _, l := range tc.layers {
				spec = append(spec, slices.DeleteFunc(slices.Clone(l), func(e ent) bool { return e.typ == tar.TypeXGlobalHeader }))
			}
			layers := buildLayers(t, spec)
			img := buildImage(t, gzipLayers, layers...)
			src := writeOCIDir(t, t.TempDir(), namedImage{"latest", img})
			aci, _ := convertFile(t, src, "")
			compareTrees(t, aciTree(t, aci), umociTree(t, umoci, src))
		})
	}
	for seed := range uint64(30) {
		t.Run(fmt.Sprint("random ", seed), func(t *testing.T) {
			img := buildImage(t, gzipLayers, randomLayers(t, seed)...)
			src := writeOCIDir(t, t.TempDir(), namedImage{"latest", img})
			aci, _ := convertFile(t, src, "")
			compareTrees(t, aciTree(t, aci), umociTree(t, umoci, src))
		})
	}
}

// umociTree unpacks the OCI layout's "latest" with umoci and walks it.
func umociTree(t *testing.T, umoci, layout string) map[string]rec {
	t.Helper()
	bundle := filepath.Join(t.TempDir(), "bundle")
	if b, err := exec.Command(umoci, "unpack", "--image", layout+":latest", bundle).CombinedOutput(); err != nil {
		t.Fatalf("umoci unpack: %v\n%s", err, b[max(0, len(b)-600):])
	}
	return walkTree(t, filepath.Join(bundle, "rootfs"))
}
