// This file holds the registry fetcher: docker:// and oci:// references
// pulled with go-containerregistry into a temporary OCI image layout, and
// converted from there exactly as `imagestore import` converts a layout.

package fetch

import (
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
	tmp, err := f.store.TmpDir()
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", aciURL, err)
	}
	dir, err := os.MkdirTemp(tmp, "fetch-layout-")
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", aciURL, err)
	}
	defer os.RemoveAll(dir)
	// The config is read as a blob, like the layers, so that a config
	// not matching its digest is reported as such.
	openConfig := func(d v1.Descriptor) (io.ReadCloser, error) {
		l, err := remote.Layer(ref.Context().Digest(d.Digest.String()), ropts...)
		if err != nil {
			return nil, err
		}
		return l.Compressed()
	}
	digest, err := f.writeLayout(ctx, dir, img, ref.Name(), openConfig)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", aciURL, err)
	}
	key, err := f.importLayout(dir)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", aciURL, err)
	}
	rem = store.NewRemote(aciURL, "")
	rem.BlobKey = key
	rem.ETag = etag
	rem.DownloadTime = time.Now()
	if err := f.store.WriteRemote(rem); err != nil {
		return nil, fmt.Errorf("fetch %s: image stored as %s, but: %w", aciURL, key, err)
	}
	return &Result{Key: key, URL: aciURL, Outcome: Downloaded, Digest: digest}, nil
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

// writeLayout downloads img into dir as an OCI image layout whose index
// names it refName, and returns its manifest digest.
func (f *Fetcher) writeLayout(ctx context.Context, dir string, img v1.Image, refName string, openConfig func(v1.Descriptor) (io.ReadCloser, error)) (string, error) {
	manifest, err := img.Manifest()
	if err != nil {
		return "", err
	}
	rawManifest, err := img.RawManifest()
	if err != nil {
		return "", err
	}
	digest, err := img.Digest()
	if err != nil {
		return "", err
	}
	mt, err := img.MediaType()
	if err != nil {
		return "", err
	}
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o700); err != nil {
		return "", err
	}
	layers, err := img.Layers()
	if err != nil {
		return "", err
	}
	if len(layers) != len(manifest.Layers) {
		return "", fmt.Errorf("manifest %s lists %d layers, the image has %d", digest, len(manifest.Layers), len(layers))
	}
	for i, l := range layers {
		want := manifest.Layers[i]
		if err := f.writeBlob(ctx, dir, want, l.Compressed); err != nil {
			return "", fmt.Errorf("layer %s: %w", want.Digest, err)
		}
	}
	cfg := manifest.Config
	if err := f.writeBlob(ctx, dir, cfg, func() (io.ReadCloser, error) { return openConfig(cfg) }); err != nil {
		return "", fmt.Errorf("config %s: %w", cfg.Digest, err)
	}
	if err := writeFile(filepath.Join(blobs, digest.Hex), rawManifest); err != nil {
		return "", err
	}
	index := v1.IndexManifest{
		SchemaVersion: 2,
		MediaType:     "application/vnd.oci.image.index.v1+json",
		Manifests: []v1.Descriptor{{
			MediaType:   mt,
			Digest:      digest,
			Size:        int64(len(rawManifest)),
			Annotations: map[string]string{refAnnotation: refName},
		}},
	}
	idx, err := json.Marshal(index)
	if err != nil {
		return "", err
	}
	if err := writeFile(filepath.Join(dir, "index.json"), idx); err != nil {
		return "", err
	}
	if err := writeFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return "", err
	}
	return digest.String(), nil
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
