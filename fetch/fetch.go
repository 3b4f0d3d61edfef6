// This file holds the Fetcher: its options, its result, and the choice of
// how an image reference is fetched.

package fetch

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	store "github.com/imagestore/imagestore"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Options say how a Fetcher reaches servers and what it trusts. The zero
// value fetches over HTTPS only and verifies ACI signatures, which then
// needs a Keyring.
type Options struct {
	// Transport carries every request (ACIs, signatures, registries); nil
	// means a clone of http.DefaultTransport. Tests give one that trusts
	// their own certificate authority.
	Transport http.RoundTripper

	// Insecure allows plain HTTP: ACI and signature URLs, discovery
	// pages, and registries. Without it an http:// URL is refused with
	// ErrInsecure. Certificates are always verified.
	Insecure bool

	// Keyring holds the keys trusted to sign ACIs. An ACI fetched over
	// HTTP(S) or through discovery is stored only when its detached
	// signature (.aci.asc) verifies against one of them.
	Keyring *Keyring

	// SkipVerify stores ACIs without looking at their signatures.
	SkipVerify bool

	// NoCache ignores the max-age of stored downloads: the server is
	// always asked, with a conditional request when an ETag is stored.
	NoCache bool

	// DiscoveryPort is the port of appc discovery requests; 0 is the
	// scheme's own. (appc names cannot carry a port.)
	DiscoveryPort uint

	// Platform selects the image of a multi-platform registry image;
	// nil means runtime.GOOS/runtime.GOARCH.
	Platform *v1.Platform

	// Keychain gives registry credentials; nil means
	// authn.DefaultKeychain (the docker config, $DOCKER_CONFIG).
	Keychain authn.Keychain

	// Progress, when set, is called as bytes arrive.
	Progress func(Progress)

	// Log, when set, is told what the fetcher does and why, a line at a
	// time ("not modified", "signed by ...").
	Log func(msg string)
}

// Progress reports a download: Source is the URL or the layer digest,
// Done the bytes received so far, Total the size (-1 when unknown).
// Done == Total, or Final, ends it.
type Progress struct {
	Source      string
	Done, Total int64
	Final       bool
}

// Outcome says what a fetch had to do.
type Outcome string

const (
	// Fresh: the stored download is within its max-age; nothing was
	// requested.
	Fresh Outcome = "fresh"
	// NotModified: the server said the stored image is current (HTTP 304,
	// or the registry's manifest digest is the stored one); no image
	// data was transferred.
	NotModified Outcome = "not-modified"
	// Downloaded: the image was downloaded and stored.
	Downloaded Outcome = "downloaded"
	// Present: a registry image whose conversion the store already held
	// (imported, or fetched under another reference); only its manifest
	// and config were downloaded.
	Present Outcome = "present"
)

// Result is what a fetch stored, or found stored.
type Result struct {
	// Key is the image's key in the store.
	Key string
	// URL is the Remote row's ACIURL: the ACI URL (for a name, the one
	// discovery found) or the registry reference (docker://REF).
	URL string
	// Outcome says whether anything was downloaded.
	Outcome Outcome
	// Signer names the key that signed the ACI, when a signature was
	// verified during this fetch.
	Signer string
	// Digest is the registry manifest digest, for registry images.
	Digest string
}

// Fetcher brings images into a store and keeps its Remote rows. It is
// safe for concurrent use if its Options' functions are.
type Fetcher struct {
	store  *store.Store
	opts   Options
	client *http.Client
}

// maxRedirects bounds the redirects followed for one request.
const maxRedirects = 10

// responseHeaderTimeout bounds the wait for a server's answer; the body
// may then take as long as it needs (the caller's context bounds it).
const responseHeaderTimeout = 2 * time.Minute

// New returns a Fetcher writing into s.
func New(s *store.Store, opts Options) *Fetcher {
	t := opts.Transport
	if t == nil {
		dt := http.DefaultTransport.(*http.Transport).Clone()
		dt.ResponseHeaderTimeout = responseHeaderTimeout
		t = dt
	}
	opts.Transport = t
	if opts.Keychain == nil {
		opts.Keychain = authn.DefaultKeychain
	}
	f := &Fetcher{store: s, opts: opts}
	f.client = &http.Client{Transport: t, CheckRedirect: f.checkRedirect}
	return f
}

// checkRedirect follows up to maxRedirects redirects, and none from HTTPS
// (or anywhere) to plain HTTP unless insecure.
func (f *Fetcher) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	return f.checkScheme(req.URL.Scheme, req.URL.String())
}

func (f *Fetcher) checkScheme(scheme, u string) error {
	switch scheme {
	case "https":
		return nil
	case "http":
		if f.opts.Insecure {
			return nil
		}
		return fmt.Errorf("%w (--insecure): %s", ErrInsecure, u)
	}
	return fmt.Errorf("%w: %s: scheme %q", ErrUnsupportedSource, u, scheme)
}

// checkURL checks that rawURL is an http(s) URL this fetcher may use.
func (f *Fetcher) checkURL(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%w: %q is not a URL", ErrUnsupportedSource, rawURL)
	}
	return f.checkScheme(u.Scheme, rawURL)
}

func (f *Fetcher) logf(format string, args ...any) {
	if f.opts.Log != nil {
		f.opts.Log(fmt.Sprintf(format, args...))
	}
}

func (f *Fetcher) progress(p Progress) {
	if f.opts.Progress != nil {
		f.opts.Progress(p)
	}
}

// Fetch fetches one image, chosen by the form of ref:
//   - https://HOST/PATH (http:// when insecure): an ACI at that URL, see
//     FetchURL;
//   - docker://REF or oci://REF: an image in an OCI registry, see
//     FetchRegistry;
//   - NAME[:version] (example.com/app:1.0): an appc name, found through
//     discovery, see FetchName.
func (f *Fetcher) Fetch(ctx context.Context, ref string) (*Result, error) {
	scheme, rest, hasScheme := strings.Cut(ref, "://")
	switch {
	case !hasScheme:
		return f.FetchName(ctx, ref)
	case scheme == "http" || scheme == "https":
		return f.FetchURL(ctx, ref)
	case scheme == "docker" || scheme == "oci":
		return f.FetchRegistry(ctx, scheme, rest)
	}
	return nil, fmt.Errorf("%w: %q: give an https:// URL, docker://REF, oci://REF or an appc name", ErrUnsupportedSource, ref)
}
