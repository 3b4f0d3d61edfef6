// Tests of FetchRegistry against go-containerregistry's registry, served
// by the test: the same key as an import of the image's OCI layout, a
// re-pull that downloads no blob, TLS with basic auth, platforms, and a
// registry that serves a blob not matching its digest.

package fetch

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	store "github.com/imagestore/imagestore"
	"github.com/imagestore/imagestore/convert"
)

// testImage is a random image of two layers with a platform and a
// command, as a converted image needs.
func testImage(t *testing.T, arch string) v1.Image {
	t.Helper()
	img, err := random.Image(4096, 2)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", arch
	cfg.Config.Cmd = []string{"/bin/true"}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// testRegistry is go-containerregistry's registry behind a request log;
// wrap, when set, may change the answers (a broken registry).
type testRegistry struct {
	srv  *httptest.Server
	log  requestLog
	host string // 127.0.0.1:PORT
}

func newRegistry(t *testing.T, wrap func(http.Handler) http.Handler) *testRegistry {
	t.Helper()
	var h http.Handler = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	if wrap != nil {
		h = wrap(h)
	}
	r := &testRegistry{}
	r.srv = httptest.NewServer(r.log.logging(h))
	t.Cleanup(r.srv.Close)
	r.host = strings.TrimPrefix(r.srv.URL, "http://")
	return r
}

// push writes img to ref in the registry.
func push(t *testing.T, ref string, img v1.Image, opts ...remote.Option) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, opts...); err != nil {
		t.Fatal(err)
	}
}

// importLayoutKey writes img to an OCI image layout naming it ref, as
// docker 25+ and containerd do, and imports that layout into a new
// store as `imagestore import DIR` does.
func importLayoutKey(t *testing.T, img v1.Image, ref string) string {
	t.Helper()
	return importLayout(t, newStore(t), img, ref)
}

// importLayout is importLayoutKey into s.
func importLayout(t *testing.T, s *store.Store, img v1.Image, ref string) string {
	t.Helper()
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": ref})); err != nil {
		t.Fatal(err)
	}
	src, err := convert.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	im, err := src.Image("")
	if err != nil {
		t.Fatal(err)
	}
	key, err := im.Import(s, store.ACIFetchInfo{})
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func blobRequests(entries []logEntry) []logEntry {
	var out []logEntry
	for _, e := range entries {
		if strings.Contains(e.Path, "/blobs/") {
			out = append(out, e)
		}
	}
	return out
}

func TestFetchRegistrySameKeyAsImportAndNoSecondDownload(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t, nil)
	img := testImage(t, "amd64")
	ref := reg.host + "/test/img:v1"
	push(t, ref, img)
	s := newStore(t)
	f := New(s, Options{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}})
	ctx := testContext(t)

	n := reg.log.len()
	res, err := f.Fetch(ctx, "docker://"+ref)
	if err != nil {
		t.Fatal(err)
	}
	digest, _ := img.Digest()
	if res.Outcome != Downloaded || res.URL != "docker://"+ref || res.Digest != digest.String() {
		t.Fatalf("first pull = %+v; want Downloaded of docker://%s, manifest %s", res, ref, digest)
	}
	if got := blobRequests(reg.log.since(n)); len(got) != 3 {
		t.Fatalf("first pull fetched blobs %v; want the config and two layers", got)
	}
	if want := importLayoutKey(t, img, ref); res.Key != want {
		t.Fatalf("pulled key %s, but importing the image's OCI layout gives %s", res.Key, want)
	}
	m, err := s.GetImageManifest(res.Key)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := m.GetLabel("version"); m.Name.String() != strings.Split(reg.host, ":")[0]+"_"+strings.Split(reg.host, ":")[1]+"/test/img" || v != "v1" {
		t.Fatalf("stored image %s version %s; want it named after the reference", m.Name, v)
	}
	rem := remoteOf(t, s, "docker://"+ref)
	if rem.ETag != digest.String() || rem.BlobKey != res.Key {
		t.Fatalf("remote after a pull: %+v; want the manifest digest and the key", rem)
	}
	assertTmpEmpty(t, s)

	// Unchanged tag: the manifest's digest is asked for, no blob.
	n = reg.log.len()
	res2, err := f.Fetch(ctx, "docker://"+ref)
	if err != nil || res2.Outcome != NotModified || res2.Key != res.Key {
		t.Fatalf("second pull = %+v, %v; want NotModified with the same key", res2, err)
	}
	got := reg.log.since(n)
	if b := blobRequests(got); len(b) != 0 {
		t.Fatalf("second pull downloaded blobs: %v", b)
	}
	for _, e := range got {
		if e.Method != http.MethodHead && e.Path != "/v2/" {
			t.Fatalf("second pull made %v; want only a HEAD of the manifest (and the ping)", e)
		}
	}

	// The tag moves: pulled again, row updated.
	img2 := testImage(t, "amd64")
	push(t, ref, img2)
	res3, err := f.Fetch(ctx, "oci://"+ref)
	if err != nil || res3.Outcome != Downloaded || res3.Key == res.Key {
		t.Fatalf("pull of a moved tag = %+v, %v; want a new image", res3, err)
	}
	d2, _ := img2.Digest()
	if r := remoteOf(t, s, "oci://"+ref); r.ETag != d2.String() {
		t.Fatalf("remote after the tag moved: %+v", r)
	}
	assertTmpEmpty(t, s)
}

// TestFetchRegistryPlatform: of a multi-platform image, the platform
// asked for is pulled; another platform is another image.
func TestFetchRegistryPlatform(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t, nil)
	amd, arm := testImage(t, "amd64"), testImage(t, "arm64")
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
	)
	ref := reg.host + "/multi/img:1.0"
	r, _ := name.ParseReference(ref)
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatal(err)
	}
	s := newStore(t)
	ctx := testContext(t)
	keys := map[string]string{}
	for _, arch := range []string{"arm64", "amd64", "arm64"} {
		res, err := New(s, Options{Platform: &v1.Platform{OS: "linux", Architecture: arch}}).Fetch(ctx, "docker://"+ref)
		if err != nil {
			t.Fatal(err)
		}
		m, err := s.GetImageManifest(res.Key)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"arm64": "aarch64", "amd64": "amd64"}[arch]
		if got, _ := m.GetLabel("arch"); got != want {
			t.Fatalf("pulled for %s an image with arch %q", arch, got)
		}
		if k, ok := keys[arch]; ok && k != res.Key {
			t.Fatalf("%s pulled twice gave %s and %s", arch, k, res.Key)
		}
		keys[arch] = res.Key
	}
	if keys["arm64"] == keys["amd64"] {
		t.Fatal("both platforms gave one key")
	}
}

// corruptBlob makes the registry serve digest's blob with one byte
// changed and its length kept.
func corruptBlob(digest string) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+digest) {
				h.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			body := rec.Body.Bytes()
			if len(body) > 0 {
				body[len(body)/2] ^= 0xff
			}
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			w.Write(body)
		})
	}
}

func TestFetchRegistryBlobNotMatchingItsDigest(t *testing.T) {
	t.Parallel()
	img := testImage(t, "amd64")
	layers, _ := img.Layers()
	ld, _ := layers[1].Digest()
	cd, _ := img.ConfigName()
	for _, c := range []struct {
		name   string
		digest v1.Hash
	}{{"layer", ld}, {"config", cd}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			reg := newRegistry(t, corruptBlob(c.digest.String()))
			ref := reg.host + "/test/img:v1"
			push(t, ref, img)
			s := newStore(t)
			_, err := New(s, Options{}).Fetch(testContext(t), "docker://"+ref)
			t.Log(err)
			if !errors.Is(err, convert.ErrDigestMismatch) || !strings.Contains(err.Error(), c.digest.String()) {
				t.Fatalf("pull of a corrupt %s = %v; want ErrDigestMismatch naming %s", c.name, err, c.digest)
			}
			assertNothingStored(t, s)
		})
	}
}

// selfSignedTLS returns a certificate for ip, and a pool trusting it.
func selfSignedTLS(t *testing.T, ip string) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "imagestore test registry"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP(ip)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}, pool
}

// basicAuth asks for user:pass, as a registry behind basic auth does.
func basicAuth(user, pass string) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
}

type staticKeychain struct{ auth authn.Authenticator }

func (k staticKeychain) Resolve(authn.Resource) (authn.Authenticator, error) { return k.auth, nil }

// TestFetchRegistryTLSAndBasicAuth: a registry on HTTPS (127.0.0.2, so
// that go-containerregistry does not fall back to plain HTTP as it does
// for 127.0.0.1) behind basic auth: credentials from the keychain get
// the image; none get a clear error and nothing stored.
func TestFetchRegistryTLSAndBasicAuth(t *testing.T) {
	t.Parallel()
	cert, pool := selfSignedTLS(t, "127.0.0.2")
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	}
	var rl requestLog
	srv := httptest.NewUnstartedServer(rl.logging(basicAuth("alice", "s3cret")(registry.New(registry.Logger(log.New(io.Discard, "", 0))))))
	srv.Listener.Close()
	srv.Listener = ln
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted client's handshake
	srv.StartTLS()
	t.Cleanup(srv.Close)
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = &tls.Config{RootCAs: pool}
	creds := &authn.Basic{Username: "alice", Password: "s3cret"}

	host := strings.TrimPrefix(srv.URL, "https://")
	ref := host + "/secure/img:v1"
	img := testImage(t, "amd64")
	push(t, ref, img, remote.WithTransport(transport), remote.WithAuth(creds))

	s := newStore(t)
	ctx := testContext(t)
	_, err = New(s, Options{Transport: transport, Keychain: staticKeychain{authn.Anonymous}}).Fetch(ctx, "docker://"+ref)
	t.Log(err)
	if err == nil || !strings.Contains(err.Error(), "401") && !strings.Contains(strings.ToLower(err.Error()), "unauthorized") {
		t.Fatalf("pull without credentials = %v; want an unauthorized error", err)
	}
	assertNothingStored(t, s)

	// Without the test's certificate authority, TLS fails.
	_, err = New(s, Options{Keychain: staticKeychain{creds}}).Fetch(ctx, "docker://"+ref)
	var uerr x509.UnknownAuthorityError
	if !errors.As(err, &uerr) {
		t.Fatalf("pull with an untrusted certificate = %v; want x509.UnknownAuthorityError", err)
	}
	assertNothingStored(t, s)

	res, err := New(s, Options{Transport: transport, Keychain: staticKeychain{creds}}).Fetch(ctx, "docker://"+ref)
	if err != nil {
		t.Fatal(err)
	}
	if want := importLayoutKey(t, img, ref); res.Key != want {
		t.Fatalf("key over TLS %s, want %s", res.Key, want)
	}
	for _, e := range rl.all() {
		if e.Status == http.StatusOK && strings.Contains(e.Path, "/blobs/") {
			return // blobs were served, after authentication
		}
	}
	t.Fatalf("no blob was served: %v", rl.all())
}

// TestFetchRegistryCancelled: a pull cancelled halfway leaves nothing.
func TestFetchRegistryCancelled(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t, nil)
	ref := reg.host + "/test/img:v1"
	push(t, ref, testImage(t, "amd64"))
	s := newStore(t)
	ctx, cancel := context.WithCancel(testContext(t))
	opts := Options{Progress: func(p Progress) {
		if p.Done > 0 {
			cancel()
		}
	}}
	_, err := New(s, opts).Fetch(ctx, "docker://"+ref)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled pull = %v; want context.Canceled", err)
	}
	assertNothingStored(t, s)
}

// TestFetchRegistryImageAlreadyImported: an image whose conversion the
// store already holds (here imported from its OCI layout) costs its
// manifest and config, and no layer.
func TestFetchRegistryImageAlreadyImported(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t, nil)
	img := testImage(t, "amd64")
	ref := reg.host + "/test/img:v1"
	push(t, ref, img)
	s := newStore(t)
	imported := importLayout(t, s, img, ref)

	n := reg.log.len()
	res, err := New(s, Options{}).Fetch(testContext(t), "docker://"+ref)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != Present || res.Key != imported {
		t.Fatalf("pull of an imported image = %+v; want Present with key %s", res, imported)
	}
	cfg, _ := img.ConfigName()
	got := blobRequests(reg.log.since(n))
	if len(got) != 1 || !strings.HasSuffix(got[0].Path, cfg.String()) {
		t.Fatalf("blobs fetched: %v; want the config alone", got)
	}
	if r := remoteOf(t, s, "docker://"+ref); r.BlobKey != imported {
		t.Fatalf("remote: %+v", r)
	}
	if ais, _ := s.GetAllACIInfos(nil, true); len(ais) != 1 {
		t.Fatalf("%d images stored, want 1", len(ais))
	}
	assertTmpEmpty(t, s)

	// Another tag of the same image is another name: downloaded.
	push(t, reg.host+"/test/img:v2", img)
	res, err = New(s, Options{}).Fetch(testContext(t), "docker://"+reg.host+"/test/img:v2")
	if err != nil || res.Outcome != Downloaded || res.Key == imported {
		t.Fatalf("pull of the image under another tag = %+v, %v; want a new download", res, err)
	}
}

// TestFetchRegistryRetriesTemporaryFailures: a registry that answers a
// blob request once with 503 is asked again (go-containerregistry's
// retries), and the pull succeeds.
func TestFetchRegistryRetriesTemporaryFailures(t *testing.T) {
	t.Parallel()
	img := testImage(t, "amd64")
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	var failed atomic.Bool
	reg := newRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+ld.String()) && !failed.Swap(true) {
				http.Error(w, "try again", http.StatusServiceUnavailable)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	ref := reg.host + "/test/img:v1"
	push(t, ref, img)
	s := newStore(t)
	res, err := New(s, Options{}).Fetch(testContext(t), "docker://"+ref)
	if err != nil {
		t.Fatalf("pull through one 503: %v", err)
	}
	if want := importLayoutKey(t, img, ref); res.Key != want {
		t.Fatalf("key %s, want %s", res.Key, want)
	}
	var n503 int
	for _, e := range reg.log.all() {
		if e.Status == http.StatusServiceUnavailable {
			n503++
		}
	}
	if n503 != 1 {
		t.Fatalf("the registry answered 503 %d times, want 1: %v", n503, reg.log.all())
	}
	assertTmpEmpty(t, s)
}
