// This file holds the registry fetcher: docker:// and oci:// references
// pulled with go-containerregistry into a temporary OCI image layout, and
// converted from there exactly as `imagestore import` converts a layout.

package fetch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	store "github.com/imagestore/imagestore"
	"github.com/imagestore/imagestore/convert"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// refAnnotation names the image in the temporary layout's index, as
// `import` of an OCI layout reads it (convert: org.opencontainers.image.ref.name).
const refAnnotation = "org.opencontainers.image.ref.name"

// FetchRegistry pulls an image from an OCI registry (Docker Hub, a
// distribution registry, any mirror that speaks the protocol): ref is a
// docker reference (busybox, docker.io/library/busybox:1.36,
// 127.0.0.1:5000/app@sha256:...), scheme "docker" or "oci", which only
// tell where the reference came from and are kept in the Remote row.
//
// The image (for a multi-platform image, the one of Options.Platform,
// by default runtime.GOOS/runtime.GOARCH) is downloaded into a temporary
// OCI image layout in the store's tmp/, every blob checked against its
// digest as it arrives, then converted as `imagestore import` converts a
// layout naming the image by the same reference, so both give the same
// key. The layout is removed afterwards, whatever happened.
//
// The Remote row (ACIURL scheme://REGISTRY/REPOSITORY:TAG, ETag the
// digest the reference resolved to, plus the platform when that was an
// index) lets the next fetch of an unchanged tag ask only for the
// manifest's digest (HEAD) and download nothing. Credentials come from
// Options.Keychain; go-containerregistry retries temporary failures.
// Registries on loopback and private addresses may be spoken to over
// plain HTTP (go-containerregistry's rule, as docker's); elsewhere plain
// HTTP needs Options.Insecure.
func (f *Fetcher) FetchRegistry(ctx context.Context, scheme, refStr string) (*Result, error) {
	var nopts []name.Option
	if f.opts.Insecure {
		nopts = append(nopts, name.Insecure)
	}
	ref, err := name.ParseReference(refStr, nopts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %s://%s: %v", ErrUnsupportedSource, scheme, refStr, err)
	}
	aciURL := scheme + "://" + ref.Name()
	plat := v1.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}
	if f.opts.Platform != nil {
		plat = *f.opts.Platform
	}
	ropts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(f.opts.Keychain),
		remote.WithTransport(f.opts.Transport),
		remote.WithPlatform(plat),
		remote.WithUserAgent(userAgent),
	}

	rem, err := f.storedRemote(aciURL)
	if err != nil {
		return nil, err
	}
	if rem != nil {
		// A HEAD of the manifest is enough to know the tag is unchanged.
		desc, err := remote.Head(ref, ropts...)
		if err == nil && registryETag(desc, plat) == rem.ETag {
			return f.unchanged(rem, desc.Digest.String())
		}
		// Some registries answer HEAD badly: GET decides.
	}
	desc, err := remote.Get(ref, ropts...)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", aciURL, err)
	}
	etag := registryETag(&desc.Descriptor, plat)
	if rem != nil && etag == rem.ETag {
		return f.unchanged(rem, desc.Digest.String())
	}
	img, err := desc.Image()
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", aciURL, err)
	}
	res, err := f.pull(ctx, img, ref, ropts)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", aciURL, err)
	}
	res.URL = aciURL
	rem = store.NewRemote(aciURL, "")
	rem.BlobKey = res.Key
	rem.ETag = etag
	rem.DownloadTime = time.Now()
	if err := f.store.WriteRemote(rem); err != nil {
		return nil, fmt.Errorf("fetch %s: image stored as %s, but: %w", aciURL, res.Key, err)
	}
	return res, nil
}

// pull brings img into the store through a temporary OCI layout in tmp/,
// removed afterwards whatever happens. The config comes first: when the
// store already holds the image's conversion (imported, or fetched by
// another reference's row), no layer is downloaded.
func (f *Fetcher) pull(ctx context.Context, img v1.Image, ref name.Reference, ropts []remote.Option) (*Result, error) {
	tmp, err := f.store.TmpDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(tmp, "fetch-layout-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	lay, err := f.newLayout(dir, img)
	if err != nil {
		return nil, err
	}
	res := &Result{Digest: lay.digest.String()}
	// The config is read as a blob, like the layers, so that a config
	// not matching its digest is reported as such.
	cfg, err := lay.writeConfig(ctx, func(d v1.Descriptor) (io.ReadCloser, error) {
		l, err := remote.Layer(ref.Context().Digest(d.Digest.String()), ropts...)
		if err != nil {
			return nil, err
		}
		return l.Compressed()
	})
	if err != nil {
		return nil, err
	}
	if key := f.storedConversion(ref.Name(), cfg, lay.manifest.Config.Digest.String()); key != "" {
		f.logf("%s: image %s is already in the store as %s: no layer downloaded", ref.Name(), res.Digest, key)
		res.Key, res.Outcome = key, Present
		return res, nil
	}
	if err := lay.writeLayers(ctx, img); err != nil {
		return nil, err
	}
	if err := lay.finish(ref.Name()); err != nil {
		return nil, err
	}
	if res.Key, err = f.importLayout(dir); err != nil {
		return nil, err
	}
	res.Outcome = Downloaded
	return res, nil
}

// storedConversion returns the key of a stored image whose manifest is
// the one converting the image of this config, named refName, gives;
// "" if none. The manifest names the config's digest (the imageid
// annotation), which pins the layers by their diff_ids, and conversion
// depends on nothing else: an image with that manifest is that image.
func (f *Fetcher) storedConversion(refName string, cfg *v1.ConfigFile, configDigest string) string {
	want, err := convert.ManifestFor(refName, cfg, configDigest)
	if err != nil {
		return ""
	}
	wantJSON, err := json.Marshal(want)
	if err != nil {
		return ""
	}
	keys, _, err := f.store.ResolveName(want.Name.String())
	if err != nil {
		return ""
	}
	for _, k := range keys {
		m, err := f.store.GetImageManifest(k)
		if err != nil {
			continue
		}
		if got, err := json.Marshal(m); err == nil && bytes.Equal(got, wantJSON) {
			return k
		}
	}
	return ""
}

// registryETag is what a Remote row of a registry image keeps as its
// ETag: the digest the reference resolved to and, when that is an index,
// the platform picked from it (another platform is another image).
func registryETag(d *v1.Descriptor, plat v1.Platform) string {
	if d.MediaType.IsIndex() {
		return d.Digest.String() + " " + plat.String()
	}
	return d.Digest.String()
}

// unchanged records that the registry still serves the stored image.
func (f *Fetcher) unchanged(rem *store.Remote, digest string) (*Result, error) {
	rem.DownloadTime = time.Now()
	if err := f.store.WriteRemote(rem); err != nil {
		return nil, fmt.Errorf("fetch %s: %w", rem.ACIURL, err)
	}
	f.logf("%s: unchanged (%s): keeping %s", rem.ACIURL, digest, rem.BlobKey)
	return &Result{Key: rem.BlobKey, URL: rem.ACIURL, Outcome: NotModified, Digest: digest}, nil
}

// layoutWriter writes one image as an OCI image layout.
type layoutWriter struct {
	f           *Fetcher
	dir         string
	manifest    *v1.Manifest
	rawManifest []byte
	digest      v1.Hash
	mediaType   string
}

func (f *Fetcher) newLayout(dir string, img v1.Image) (*layoutWriter, error) {
	l := &layoutWriter{f: f, dir: dir}
	var err error
	if l.manifest, err = img.Manifest(); err != nil {
		return nil, err
	}
	if l.rawManifest, err = img.RawManifest(); err != nil {
		return nil, err
	}
	if l.digest, err = img.Digest(); err != nil {
		return nil, err
	}
	mt, err := img.MediaType()
	if err != nil {
		return nil, err
	}
	l.mediaType = string(mt)
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o700); err != nil {
		return nil, err
	}
	return l, nil
}

// writeConfig downloads the config blob and parses it.
func (l *layoutWriter) writeConfig(ctx context.Context, open func(v1.Descriptor) (io.ReadCloser, error)) (*v1.ConfigFile, error) {
	d := l.manifest.Config
	if err := l.f.writeBlob(ctx, l.dir, d, func() (io.ReadCloser, error) { return open(d) }); err != nil {
		return nil, fmt.Errorf("config %s: %w", d.Digest, err)
	}
	data, err := os.ReadFile(filepath.Join(l.dir, "blobs", d.Digest.Algorithm, d.Digest.Hex))
	if err != nil {
		return nil, err
	}
	var cfg v1.ConfigFile
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("%w: config %s: %v", convert.ErrInvalidImage, d.Digest, err)
	}
	return &cfg, nil
}

// writeLayers downloads the layer blobs.
func (l *layoutWriter) writeLayers(ctx context.Context, img v1.Image) error {
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	if len(layers) != len(l.manifest.Layers) {
		return fmt.Errorf("manifest %s lists %d layers, the image has %d", l.digest, len(l.manifest.Layers), len(layers))
	}
	for i, layer := range layers {
		want := l.manifest.Layers[i]
		if err := l.f.writeBlob(ctx, l.dir, want, layer.Compressed); err != nil {
			return fmt.Errorf("layer %s: %w", want.Digest, err)
		}
	}
	return nil
}

// finish writes the manifest and the index naming the image refName.
func (l *layoutWriter) finish(refName string) error {
	if err := writeFile(filepath.Join(l.dir, "blobs", "sha256", l.digest.Hex), l.rawManifest); err != nil {
		return err
	}
	index := v1.IndexManifest{
		SchemaVersion: 2,
		MediaType:     "application/vnd.oci.image.index.v1+json",
		Manifests: []v1.Descriptor{{
			MediaType:   types.MediaType(l.mediaType),
			Digest:      l.digest,
			Size:        int64(len(l.rawManifest)),
			Annotations: map[string]string{refAnnotation: refName},
		}},
	}
	idx, err := json.Marshal(index)
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(l.dir, "index.json"), idx); err != nil {
		return err
	}
	return writeFile(filepath.Join(l.dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`))
}

// writeBlob copies a blob to dir/blobs/ALG/HEX, checking its digest and
// size as it arrives, and reporting progress.
func (f *Fetcher) writeBlob(ctx context.Context, dir string, d v1.Descriptor, open func() (io.ReadCloser, error)) error {
	var h hash.Hash
	switch d.Digest.Algorithm {
	case "sha256":
		h = sha256.New()
	default:
		return fmt.Errorf("%w: digest %s: unsupported algorithm", convert.ErrInvalidImage, d.Digest)
	}
	p := filepath.Join(dir, "blobs", d.Digest.Algorithm, d.Digest.Hex)
	if _, err := os.Stat(p); err == nil {
		return nil // a blob listed twice
	}
	rc, err := open()
	if err != nil {
		return err
	}
	defer rc.Close()
	out, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	source := d.Digest.String()
	f.progress(Progress{Source: source, Total: d.Size})
	buf := make([]byte, 256<<10)
	var n int64
	var rerr error
	for {
		var m int
		m, rerr = rc.Read(buf)
		if m > 0 {
			h.Write(buf[:m])
			if _, werr := out.Write(buf[:m]); werr != nil {
				f.progress(Progress{Source: source, Done: n, Total: d.Size, Final: true})
				if errors.Is(werr, syscall.ENOSPC) || errors.Is(werr, syscall.EDQUOT) {
					return fmt.Errorf("%w: %w", store.ErrDiskFull, werr)
				}
				return werr
			}
			n += int64(m)
			f.progress(Progress{Source: source, Done: n, Total: d.Size})
		}
		if rerr != nil {
			break
		}
	}
	f.progress(Progress{Source: source, Done: n, Total: d.Size, Final: true})
	// A blob that is whole but not what its digest says is reported as
	// such, whatever the reader's own error says.
	if n >= d.Size {
		if sum := fmt.Sprintf("%x", h.Sum(nil)); n > d.Size || sum != d.Digest.Hex {
			return fmt.Errorf("%w: the registry sent %d bytes hashing to sha256:%s for blob %s (%d bytes)",
				convert.ErrDigestMismatch, n, sum, d.Digest, d.Size)
		}
	}
	if rerr != io.EOF {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if rerr == io.ErrUnexpectedEOF {
			return fmt.Errorf("%w after %s", ErrTruncated, sizeOf(n, d.Size))
		}
		return fmt.Errorf("after %s: %w", sizeOf(n, d.Size), rerr)
	}
	if n != d.Size {
		return fmt.Errorf("%w after %s", ErrTruncated, sizeOf(n, d.Size))
	}
	return out.Close()
}

// importLayout converts the layout's one image into the store.
func (f *Fetcher) importLayout(dir string) (string, error) {
	src, err := convert.Open(dir)
	if err != nil {
		return "", err
	}
	defer src.Close()
	im, err := src.Image("")
	if err != nil {
		return "", err
	}
	if f.opts.Progress != nil {
		im.Progress = func(p convert.Progress) {
			f.progress(Progress{Source: fmt.Sprintf("%s layer %d/%d", p.Pass, p.Layer, p.Layers), Done: p.Done, Total: p.Total, Final: p.Total >= 0 && p.Done == p.Total})
		}
	}
	return im.Import(f.store, store.ACIFetchInfo{})
}

func writeFile(path string, data []byte) error {
	return os.WriteFile(path, data, 0o600)
}
