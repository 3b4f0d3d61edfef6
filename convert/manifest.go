package convert

import (
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/appc/spec/schema"
	appc "github.com/appc/spec/schema/types"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// The annotations docker2aci wrote that we keep: those whose value is the
// same from every input format. The original name (written as the user
// typed it), the manifest hash and v1 layer IDs are not.
const (
	annotationRegistry   = "appc.io/docker/registryurl"
	annotationRepository = "appc.io/docker/repository"
	annotationTag        = "appc.io/docker/tag"
	annotationImageID    = "appc.io/docker/imageid"
	annotationEntrypoint = "appc.io/docker/entrypoint"
	annotationCmd        = "appc.io/docker/cmd"
)

// dockerHub is where docker2aci said images without a registry came from.
const dockerHub = "registry-1.docker.io"

// dockerRef is a reference split as docker2aci split it.
type dockerRef struct {
	registry   string // "registry-1.docker.io", "localhost:5000"
	repository string // "library/busybox"
	tag        string // "" when the reference has a digest instead
}

// parseRef splits a docker reference ("busybox:1.36",
// "docker.io/library/busybox:1.36", "localhost:5000/multi/one"). A
// reference without tag or digest means tag "latest", as for docker.
func parseRef(s string) (dockerRef, error) {
	ref, err := name.ParseReference(s, name.WeakValidation)
	if err != nil {
		return dockerRef{}, fmt.Errorf("reference %q: %w", s, err)
	}
	r := dockerRef{registry: ref.Context().RegistryStr(), repository: ref.Context().RepositoryStr()}
	if t, ok := ref.(name.Tag); ok {
		r.tag = t.TagStr()
	}
	switch r.registry {
	case name.DefaultRegistry, "docker.io", dockerHub:
		r.registry = dockerHub
	}
	return r, nil
}

// isBareTag tells whether an OCI ref.name annotation is only a tag
// ("latest"), which the image spec allows and many tools write.
func isBareTag(s string) bool { return !strings.ContainsAny(s, "/:@") }

// refOf returns the reference naming an image: the one selected, else the
// first the input records. ok is false when no reference names a
// repository.
func refOf(refs []string) (r dockerRef, ok bool) {
	for _, s := range refs {
		if isBareTag(s) {
			continue
		}
		if d, err := parseRef(s); err == nil {
			return d, true
		}
	}
	return dockerRef{}, false
}

// bareTagOf returns a tag-only ref.name of an image, if any.
func bareTagOf(refs []string) string {
	for _, s := range refs {
		if isBareTag(s) {
			return s
		}
	}
	return ""
}

// buildManifest maps an image config to an appc image manifest, following
// docker2aci's squashed-image mapping (see the package doc).
func buildManifest(refs []string, cfg *v1.ConfigFile, configDigest string) (*schema.ImageManifest, error) {
	m := schema.BlankImageManifest()
	ref, named := refOf(refs)
	var acName string
	switch {
	case named:
		acName = ref.registry + "/" + ref.repository
	case configDigest != "":
		acName = strings.ReplaceAll(configDigest, ":", "-")
		ref.tag = bareTagOf(refs)
	default:
		return nil, invalidf("the image has neither a reference nor a config digest to name it by")
	}
	sane, err := appc.SanitizeACIdentifier(acName)
	if err != nil {
		return nil, invalidf("image name %q: %v", acName, err)
	}
	id, err := appc.NewACIdentifier(sane)
	if err != nil {
		return nil, invalidf("image name %q: %v", acName, err)
	}
	m.Name = *id

	labels := map[appc.ACIdentifier]string{}
	if ref.tag != "" {
		labels["version"] = ref.tag
	}
	if os, arch, ok := appcOSArch(cfg.OS, cfg.Architecture, cfg.Variant); ok {
		labels["os"], labels["arch"] = os, arch
	}
	if m.Labels, err = appc.LabelsFromMap(labels); err != nil {
		return nil, invalidf("labels: %v", err)
	}

	set := func(key, val string) {
		if val != "" {
			m.Annotations.Set(appc.ACIdentifier(key), val)
		}
	}
	set("author", cfg.Author)
	if c := cfg.Created.Time; !c.IsZero() && c.Unix() != 0 {
		set("created", c.UTC().Format(time.RFC3339))
	}
	if named {
		set(annotationRegistry, ref.registry)
		set(annotationRepository, ref.repository)
		set(annotationTag, ref.tag)
	}
	set(annotationImageID, configDigest)
	c := cfg.Config
	if len(c.Entrypoint) > 0 {
		b, _ := json.Marshal(c.Entrypoint)
		set(annotationEntrypoint, string(b))
	}
	if len(c.Cmd) > 0 {
		b, _ := json.Marshal(c.Cmd)
		set(annotationCmd, string(b))
	}

	if m.App, err = buildApp(c); err != nil {
		return nil, err
	}
	// Validate now, as the store will: a clear error here beats an
	// "invalid image" from the ingest.
	if _, err := json.Marshal(m); err != nil {
		return nil, invalidf("manifest: %v", err)
	}
	return m, nil
}

// appcOSArch translates docker's platform names to appc's (amd64,
// aarch64, armv7l...). ok is false for a platform appc has no name for;
// the labels are then left out, as docker2aci did.
func appcOSArch(os, arch, variant string) (string, string, bool) {
	for _, flavor := range []string{strings.TrimPrefix(variant, "v"), ""} {
		if o, a, err := appc.ToAppcOSArch(os, arch, flavor); err == nil {
			return o, a, true
		}
	}
	return "", "", false
}

// buildApp maps the container config to the app. An image without a
// command to run has no app: appc requires a non-empty exec.
func buildApp(c v1.Config) (*appc.App, error) {
	exec := append(slices.Clone(c.Entrypoint), c.Cmd...)
	if len(exec) == 0 {
		return nil, nil
	}
	app := &appc.App{Exec: exec, WorkingDirectory: c.WorkingDir}
	app.User, app.Group = "0", "0"
	if c.User != "" {
		// A user without a group: the group would come from the image's
		// /etc/passwd; like docker2aci we do not read the rootfs and use
		// the user for both.
		u, g, ok := strings.Cut(c.User, ":")
		app.User, app.Group = u, u
		if ok {
			app.Group = g
		}
	}
	for _, kv := range c.Env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			app.Environment.Set(k, v)
		}
	}
	for _, p := range sortedKeys(c.ExposedPorts) {
		port, err := parsePort(p)
		if err != nil {
			return nil, err
		}
		app.Ports = append(app.Ports, port)
	}
	slices.SortFunc(app.Ports, func(a, b appc.Port) int { return strings.Compare(a.Name.String(), b.Name.String()) })
	used := map[string]int{}
	for _, p := range sortedKeys(c.Volumes) {
		n, err := appc.SanitizeACName(path.Join("volume", p))
		if err != nil {
			return nil, invalidf("volume %q: %v", p, err)
		}
		// Two volumes may sanitise alike ("/a b", "/a_b"); the later in
		// sorted order gets a number, so the names stay unique.
		if i := used[n]; i > 0 {
			used[n] = i + 1
			n = fmt.Sprintf("%s-%d", n, i)
		} else {
			used[n] = 1
		}
		app.MountPoints = append(app.MountPoints, appc.MountPoint{Name: appc.ACName(n), Path: p})
	}
	slices.SortFunc(app.MountPoints, func(a, b appc.MountPoint) int { return strings.Compare(a.Name.String(), b.Name.String()) })
	return app, nil
}

// parsePort maps an ExposedPorts key ("80/tcp", "53/udp", "8080") to an
// appc port named after it ("80-tcp").
func parsePort(s string) (appc.Port, error) {
	num, proto, ok := strings.Cut(s, "/")
	if !ok {
		proto = "tcp"
	}
	n, err := strconv.ParseUint(num, 10, 16)
	if err != nil || n == 0 {
		return appc.Port{}, invalidf("exposed port %q", s)
	}
	sn, err := appc.SanitizeACName(s)
	if err != nil {
		return appc.Port{}, invalidf("exposed port %q: %v", s, err)
	}
	// Count 1 is appc's default, which a manifest read back gets anyway.
	return appc.Port{Name: appc.ACName(sn), Protocol: proto, Port: uint(n), Count: 1}, nil
}

// ManifestFor returns the appc manifest that converting an image with
// config cfg, whose digest is configDigest, gives when the reference ref
// names it: the manifest Image.Manifest returns for that image of an OCI
// layout whose index names it ref. A fetcher uses it to find an image's
// conversion in a store before downloading its layers: the manifest
// holds the config digest, which pins the layers.
func ManifestFor(ref string, cfg *v1.ConfigFile, configDigest string) (*schema.ImageManifest, error) {
	return buildManifest([]string{ref}, cfg, configDigest)
}
