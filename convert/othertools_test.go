package convert

import (
	"os/exec"
	"path/filepath"
	"testing"
)

// TestOtherTools converts inputs written by skopeo (docker-archive,
// oci-archive, oci layout) from the flatten cases' images, and compares
// each rootfs with GNU tar's flattening. It runs where skopeo is
// installed (apt-get install skopeo) and is skipped elsewhere.
func TestOtherTools(t *testing.T) {
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		t.Skip("no skopeo")
	}
	for _, tc := range flattenCases {
		if tc.name == "hard link in the layer that whites its target out" {
			continue // GNU tar cannot be the reference (see TestFlattenMatchesGNUTar)
		}
		t.Run(tc.name, func(t *testing.T) {
			layers := buildLayers(t, tc.layers)
			want := referenceTree(t, layers)
			img := buildImage(t, gzipLayers, layers...)
			src := writeOCIDir(t, t.TempDir(), namedImage{"latest", img})
			out := t.TempDir()
			for _, dst := range []string{
				"docker-archive:" + filepath.Join(out, "docker.tar") + ":example.com/skopeo/test:1",
				"oci-archive:" + filepath.Join(out, "oci.tar") + ":latest",
				"oci:" + filepath.Join(out, "oci") + ":latest",
			} {
				cmd := exec.Command(skopeo, "--insecure-policy", "copy", "-q", "oci:"+src+":latest", dst)
				if b, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("skopeo copy %s: %v\n%s", dst, err, b)
				}
			}
			for _, in := range []string{"docker.tar", "oci.tar", "oci"} {
				aci, _ := convertFile(t, filepath.Join(out, in), "")
				compareTrees(t, aciTree(t, aci), want)
			}
		})
	}
}
