package convert

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/appc/spec/schema"
	appc "github.com/appc/spec/schema/types"
)

// TestDocker2ACIManifest compares our manifest with docker2aci's for a
// docker 1.10-24 archive, the one format docker2aci reads. docker2aci is
// archived and not built here: set DOCKER2ACI to its binary to run this.
// The annotations docker2aci writes that we leave on purpose (see the
// package doc) are removed from its manifest before the comparison.
func TestDocker2ACIManifest(t *testing.T) {
	bin := os.Getenv("DOCKER2ACI")
	if bin == "" {
		t.Skip("DOCKER2ACI is not set")
	}
	for _, ref := range []string{"busybox:1.36", "localhost:5000/multi/one:latest", "myuser/two:V2.0_rc1"} {
		t.Run(ref, func(t *testing.T) {
			img := sampleImage(t, plainLayers)
			dir := t.TempDir()
			p := writeDocker110(t, dir, namedImage{ref, img})
			out := t.TempDir()
			cmd := exec.Command(bin, "-compression=none", "-image="+ref, p)
			cmd.Dir = out
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("docker2aci: %v\n%s", err, b)
			}
			acis, _ := filepath.Glob(filepath.Join(out, "*.aci"))
			if len(acis) != 1 {
				t.Fatalf("docker2aci wrote %v", acis)
			}
			theirs := manifestOfACI(t, acis[0])
			_, im := convertFile(t, p, ref)
			ours := im.Manifest()

			// Left out on purpose: they differ between input formats.
			drop := []string{"appc.io/docker/originalname", "appc.io/docker/imageid", "appc.io/docker/parentimageid",
				"appc.io/docker/manifesthash", "authors", "docker-comment"}
			theirs.Annotations = slices.DeleteFunc(theirs.Annotations, func(a appc.Annotation) bool { return slices.Contains(drop, a.Name.String()) })
			keep := ours.Annotations
			ours.Annotations = slices.DeleteFunc(slices.Clone(keep), func(a appc.Annotation) bool {
				return a.Name == "author" || a.Name == annotationImageID
			})
			// docker2aci's v1 path copies the image's labels to the app;
			// its v2.2 path (registries, today's images) does not.
			if theirs.App != nil {
				theirs.App.UserLabels = nil
			}
			sortAnn := func(a appc.Annotations) {
				slices.SortFunc(a, func(x, y appc.Annotation) int { return cmpStr(x.Name.String(), y.Name.String()) })
			}
			sortAnn(theirs.Annotations)
			sortAnn(ours.Annotations)
			// Order of labels and the appc version (docker2aci vendors
			// appc/spec 0.8.10) are not part of the mapping.
			for _, m := range []*schema.ImageManifest{ours, theirs} {
				slices.SortFunc(m.Labels, func(x, y appc.Label) int { return cmpStr(x.Name.String(), y.Name.String()) })
			}
			theirs.ACVersion = ours.ACVersion
			a, _ := json.MarshalIndent(ours, "", " ")
			b, _ := json.MarshalIndent(theirs, "", " ")
			if !bytes.Equal(a, b) {
				t.Errorf("manifests differ:\nours\n%s\ndocker2aci\n%s", a, b)
			}
		})
	}
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func manifestOfACI(t *testing.T, p string) *schema.ImageManifest {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var r io.Reader = bytes.NewReader(data)
	if zr, err := gzip.NewReader(bytes.NewReader(data)); err == nil {
		r = zr
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			t.Fatal("no manifest")
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == "manifest" {
			var m schema.ImageManifest
			b, _ := io.ReadAll(tr)
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			return &m
		}
	}
}
