package convert

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Format names an input's layout.
type Format string

// The formats Open recognises.
const (
	// FormatDocker is a docker save archive with manifest.json: docker
	// 1.10-24's (<id>/layer.tar) and docker 25+'s (an OCI layout plus
	// manifest.json) alike.
	FormatDocker Format = "docker-archive"
	// FormatDockerLegacy is a pre-1.10 docker save archive: a repositories
	// file and <id>/json, <id>/layer.tar for every layer.
	FormatDockerLegacy Format = "docker-archive-legacy"
	// FormatOCI is an OCI image layout, as a directory or an archive.
	FormatOCI Format = "oci-layout"
)

// candidate is one image of an input, before it is read.
type candidate struct {
	info ImageInfo
	// load reads its config and layer list.
	load func() (*resolved, error)
}

// resolved is an image whose config has been read and checked.
type resolved struct {
	config       *v1.ConfigFile
	configDigest string // empty for pre-1.10 archives
	layers       []layerRef
}

// detect finds the layout of an input and lists its images.
func detect(fsys files) (Format, []*candidate, error) {
	switch {
	case fsys.exists("manifest.json"):
		c, err := dockerImages(fsys)
		return FormatDocker, c, err
	case fsys.exists("oci-layout") && fsys.exists("index.json"):
		c, err := ociImages(fsys)
		return FormatOCI, c, err
	case fsys.exists("repositories"):
		c, err := legacyImages(fsys)
		return FormatDockerLegacy, c, err
	}
	return "", nil, fmt.Errorf("%w: no manifest.json, index.json with oci-layout, or repositories file", ErrUnknownFormat)
}

func decodeJSON(data []byte, v any, what string) error {
	if err := json.Unmarshal(data, v); err != nil {
		return invalidf("%s: %v", what, err)
	}
	return nil
}

// readBlob reads a small blob (manifest, config) and checks its digest.
func readBlob(fsys files, name string, want v1.Hash) ([]byte, error) {
	data, err := readSmall(fsys, name)
	if err != nil {
		return nil, err
	}
	if want.Hex != "" {
		h, err := newHasher(want)
		if err != nil {
			return nil, err
		}
		h.Write(data)
		if err := checkDigest(name, want, h); err != nil {
			return nil, err
		}
	}
	return data, nil
}

func blobPath(h v1.Hash) string { return path.Join("blobs", h.Algorithm, h.Hex) }

var hexDigest = regexp.MustCompile(`^[a-f0-9]{64}$`)

// digestInName returns the digest a docker archive's file name states
// ("blobs/sha256/HEX", "HEX.json", gcr's "sha256:HEX"), if any.
func digestInName(name string) v1.Hash {
	dir, base := path.Split(path.Clean(name))
	switch {
	case dir == "blobs/sha256/" && hexDigest.MatchString(base):
		return v1.Hash{Algorithm: "sha256", Hex: base}
	case dir == "" && strings.HasSuffix(base, ".json") && hexDigest.MatchString(strings.TrimSuffix(base, ".json")):
		return v1.Hash{Algorithm: "sha256", Hex: strings.TrimSuffix(base, ".json")}
	case dir == "" && strings.HasPrefix(base, "sha256:") && hexDigest.MatchString(base[7:]):
		return v1.Hash{Algorithm: "sha256", Hex: base[7:]}
	}
	return v1.Hash{}
}

func sha256Of(data []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(data)) }

func parseConfig(data []byte, what string) (*v1.ConfigFile, error) {
	var cfg v1.ConfigFile
	if err := decodeJSON(data, &cfg, what); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// dockerImages lists the images of a docker archive with manifest.json.
func dockerImages(fsys files) ([]*candidate, error) {
	data, err := readSmall(fsys, "manifest.json")
	if err != nil {
		return nil, err
	}
	var descs tarball.Manifest
	if err := decodeJSON(data, &descs, "manifest.json"); err != nil {
		return nil, err
	}
	// docker 25+ also writes an OCI index: it gives the manifest digests
	// that select an image as well as its config digest does.
	manifestOf := map[string]string{}
	if fsys.exists("oci-layout") && fsys.exists("index.json") {
		if cands, err := ociImages(fsys); err == nil {
			for _, c := range cands {
				if c.info.ConfigDigest != "" {
					manifestOf[c.info.ConfigDigest] = c.info.ManifestDigest
				}
			}
		}
	}
	var out []*candidate
	for i, d := range descs {
		cfgData, err := readBlob(fsys, d.Config, digestInName(d.Config))
		if err != nil {
			return nil, fmt.Errorf("manifest.json image %d: config: %w", i, err)
		}
		cfgDigest := sha256Of(cfgData)
		d := d
		out = append(out, &candidate{
			info: ImageInfo{Refs: d.RepoTags, ConfigDigest: cfgDigest, ManifestDigest: manifestOf[cfgDigest]},
			load: func() (*resolved, error) {
				cfg, err := parseConfig(cfgData, d.Config)
				if err != nil {
					return nil, err
				}
				if len(cfg.RootFS.DiffIDs) != len(d.Layers) {
					return nil, invalidf("manifest.json lists %d layers, config %s has %d diff_ids", len(d.Layers), d.Config, len(cfg.RootFS.DiffIDs))
				}
				r := &resolved{config: cfg, configDigest: cfgDigest}
				for i, l := range d.Layers {
					ref := layerRef{path: l, comp: sniff, digest: digestInName(l), diffID: cfg.RootFS.DiffIDs[i]}
					ref.name = ref.diffID.String()
					r.layers = append(r.layers, ref)
				}
				return r, nil
			},
		})
	}
	return out, nil
}

// ociImages lists the image manifests an OCI layout's index reaches,
// through nested indexes, leaving out attestations and other artifacts.
func ociImages(fsys files) ([]*candidate, error) {
	lay, err := readSmall(fsys, "oci-layout")
	if err != nil {
		return nil, err
	}
	var layout struct {
		Version string `json:"imageLayoutVersion"`
	}
	if err := decodeJSON(lay, &layout, "oci-layout"); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(layout.Version, "1.") {
		return nil, fmt.Errorf("%w: oci-layout version %q", ErrUnknownFormat, layout.Version)
	}
	data, err := readSmall(fsys, "index.json")
	if err != nil {
		return nil, err
	}
	var out []*candidate
	if err := walkIndex(fsys, data, "index.json", nil, &out, 0); err != nil {
		return nil, err
	}
	return out, nil
}

func isIndex(mt types.MediaType) bool {
	return mt == types.OCIImageIndex || mt == types.DockerManifestList
}

func isManifest(mt types.MediaType) bool {
	return mt == types.OCIManifestSchema1 || mt == types.DockerManifestSchema2
}

// refAnnotations are the annotations that name an image in an index:
// containerd's (and docker 25+'s) full name, then the OCI ref.name.
var refAnnotations = []string{"io.containerd.image.name", "org.opencontainers.image.ref.name"}

func walkIndex(fsys files, data []byte, what string, refs []string, out *[]*candidate, depth int) error {
	if depth > 8 {
		return invalidf("%s: indexes nested too deep", what)
	}
	var idx v1.IndexManifest
	if err := decodeJSON(data, &idx, what); err != nil {
		return err
	}
	for _, d := range idx.Manifests {
		d := d
		r := slices.Clone(refs)
		for _, a := range refAnnotations {
			if v := d.Annotations[a]; v != "" && !slices.Contains(r, v) {
				r = append(r, v)
			}
		}
		switch {
		case isIndex(d.MediaType):
			sub, err := readBlob(fsys, blobPath(d.Digest), d.Digest)
			if errors.Is(err, ErrMissingBlob) {
				// docker 25+ saves one platform of a multi-platform
				// image: the others are listed but not there.
				continue
			}
			if err != nil {
				return fmt.Errorf("index %s: %w", d.Digest, err)
			}
			if err := walkIndex(fsys, sub, "index "+d.Digest.String(), r, out, depth+1); err != nil {
				return err
			}
		case isManifest(d.MediaType):
			if d.Annotations["vnd.docker.reference.type"] != "" {
				continue // an attestation, not an image
			}
			if d.Platform != nil && d.Platform.OS == "unknown" {
				continue
			}
			c, err := ociCandidate(fsys, d, r)
			if errors.Is(err, ErrMissingBlob) {
				continue // as above: an image the input does not hold
			}
			if err != nil {
				return err
			}
			*out = append(*out, c)
		}
		// Anything else (signatures, artifacts) is not an image.
	}
	return nil
}

func ociCandidate(fsys files, d v1.Descriptor, refs []string) (*candidate, error) {
	data, err := readBlob(fsys, blobPath(d.Digest), d.Digest)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", d.Digest, err)
	}
	var m v1.Manifest
	if err := decodeJSON(data, &m, "manifest "+d.Digest.String()); err != nil {
		return nil, err
	}
	info := ImageInfo{Refs: refs, ManifestDigest: d.Digest.String(), ConfigDigest: m.Config.Digest.String()}
	if p := d.Platform; p != nil {
		info.Platform = path.Join(p.OS, p.Architecture, p.Variant)
	}
	return &candidate{info: info, load: func() (*resolved, error) {
		if m.MediaType != "" && !isManifest(m.MediaType) {
			return nil, fmt.Errorf("%w: manifest %s has media type %q", ErrUnsupportedMediaType, d.Digest, m.MediaType)
		}
		if mt := m.Config.MediaType; mt != types.OCIConfigJSON && mt != types.DockerConfigJSON {
			return nil, fmt.Errorf("%w: config media type %q (not a container image)", ErrUnsupportedMediaType, mt)
		}
		cfgData, err := readBlob(fsys, blobPath(m.Config.Digest), m.Config.Digest)
		if err != nil {
			return nil, fmt.Errorf("config %s: %w", m.Config.Digest, err)
		}
		cfg, err := parseConfig(cfgData, "config "+m.Config.Digest.String())
		if err != nil {
			return nil, err
		}
		if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
			return nil, invalidf("manifest %s lists %d layers, its config %d diff_ids", d.Digest, len(m.Layers), len(cfg.RootFS.DiffIDs))
		}
		r := &resolved{config: cfg, configDigest: m.Config.Digest.String()}
		for i, l := range m.Layers {
			comp, err := compressionOf(l.MediaType)
			if err != nil {
				return nil, fmt.Errorf("layer %s: %w", l.Digest, err)
			}
			r.layers = append(r.layers, layerRef{path: blobPath(l.Digest), comp: comp, digest: l.Digest, diffID: cfg.RootFS.DiffIDs[i], name: l.Digest.String()})
		}
		return r, nil
	}}, nil
}

// legacyJSON is the part of a pre-1.10 archive's <id>/json we use: the
// layer chain, and on the top layer the image's config.
type legacyJSON struct {
	ID           string    `json:"id"`
	Parent       string    `json:"parent"`
	Created      v1.Time   `json:"created"`
	Author       string    `json:"author"`
	Architecture string    `json:"architecture"`
	OS           string    `json:"os"`
	Variant      string    `json:"variant"`
	Config       v1.Config `json:"config"`
}

var legacyID = regexp.MustCompile(`^[a-f0-9]{64}$`)

// legacyImages lists the tagged images of a pre-1.10 docker archive.
func legacyImages(fsys files) ([]*candidate, error) {
	data, err := readSmall(fsys, "repositories")
	if err != nil {
		return nil, err
	}
	var repos map[string]map[string]string
	if err := decodeJSON(data, &repos, "repositories"); err != nil {
		return nil, err
	}
	byID := map[string][]string{}
	for _, repo := range sortedKeys(repos) {
		for _, tag := range sortedKeys(repos[repo]) {
			id := repos[repo][tag]
			if !legacyID.MatchString(id) {
				return nil, invalidf("repositories: %s:%s: bad image id %q", repo, tag, id)
			}
			byID[id] = append(byID[id], repo+":"+tag)
		}
	}
	var out []*candidate
	for _, id := range sortedKeys(byID) {
		id := id
		out = append(out, &candidate{info: ImageInfo{Refs: byID[id]}, load: func() (*resolved, error) {
			return loadLegacy(fsys, id)
		}})
	}
	return out, nil
}

func loadLegacy(fsys files, top string) (*resolved, error) {
	var (
		chain []string
		first *legacyJSON
	)
	for id := top; id != ""; {
		if len(chain) > 1000 || slices.Contains(chain, id) {
			return nil, invalidf("layer %s: parent chain loops or is too long", id)
		}
		if !legacyID.MatchString(id) {
			return nil, invalidf("bad layer id %q", id)
		}
		data, err := readSmall(fsys, id+"/json")
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", id, err)
		}
		var j legacyJSON
		if err := decodeJSON(bytes.TrimSpace(data), &j, id+"/json"); err != nil {
			return nil, err
		}
		if first == nil {
			first = &j
		}
		chain = append(chain, id)
		id = j.Parent
	}
	cfg := &v1.ConfigFile{
		Architecture: first.Architecture,
		OS:           first.OS,
		Variant:      first.Variant,
		Author:       first.Author,
		Created:      first.Created,
		Config:       first.Config,
	}
	r := &resolved{config: cfg}
	for i := len(chain) - 1; i >= 0; i-- {
		r.layers = append(r.layers, layerRef{path: chain[i] + "/layer.tar", comp: sniff, name: chain[i]})
	}
	return r, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
