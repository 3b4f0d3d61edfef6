// Tests of FetchName: appc discovery against a real HTTP server, then the
// ACI and its signature from the URLs it gave.

package fetch

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"testing"
	"time"

	store "github.com/imagestore/imagestore"
)

// discoveryServer serves the ac-discovery meta tag for 127.0.0.1/hello
// at /hello?ac-discovery=1, with the templates
// /aci/{name}-{version}-{os}-{arch}.{ext}, and ACIs set with set.
func discoveryServer(t *testing.T) (*aciServer, uint) {
	srv := newACIServer(t)
	srv.set("/hello", resource{serve: func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("ac-discovery") != "1" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<html><head>
<meta name="ac-discovery" content="127.0.0.1/hello %s/aci/{name}-{version}-{os}-{arch}.{ext}">
</head></html>`, srv.URL)
	}})
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatal(err)
	}
	return srv, uint(port)
}

func TestFetchNameDiscoversAndVerifies(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	srv, port := discoveryServer(t)
	key := newKey(t, "signer")
	aci := makeACI(t, "127.0.0.1/hello", "1.0.0", "discovered")
	// The templates, with os and arch defaulting to the running system's.
	path := fmt.Sprintf("/aci/127.0.0.1/hello-1.0.0-%s-%s.aci", runtime.GOOS, runtime.GOARCH)
	srv.set(path, resource{body: aci, etag: `"d1"`, cacheControl: "max-age=600"})
	srv.set(path+".asc", resource{body: sign(t, key, aci)})
	f := New(s, Options{Insecure: true, DiscoveryPort: port, Keyring: keyring(t, key)})
	ctx := testContext(t)

	res, err := f.FetchName(ctx, "127.0.0.1/hello:1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if res.Key != keyOfACI(t, aci) || res.Outcome != Downloaded || res.URL != srv.URL+path || res.Signer == "" {
		t.Fatalf("FetchName = %+v; want the ACI at %s, downloaded and signed", res, srv.URL+path)
	}
	rem := remoteOf(t, s, srv.URL+path)
	if rem.SigURL != srv.URL+path+".asc" || rem.ETag != `"d1"` || rem.CacheMaxAge != 600 || rem.BlobKey != res.Key {
		t.Fatalf("remote after discovery: %+v", rem)
	}
	ai, err := s.GetACIInfoWithBlobKey(res.Key)
	if err != nil || ai.Latest {
		t.Fatalf("ACIInfo = %+v, %v; want an image not marked latest (a version was asked for)", ai, err)
	}

	// Again: discovery asks, the ACI's row is fresh, so the ACI is not
	// requested.
	n := srv.log.len()
	res, err = f.Fetch(ctx, "127.0.0.1/hello:1.0.0")
	if err != nil || res.Outcome != Fresh {
		t.Fatalf("second FetchName = %+v, %v; want Fresh", res, err)
	}
	for _, e := range srv.log.since(n) {
		if e.Path != "/hello" {
			t.Fatalf("second FetchName requested %v; want only discovery", e)
		}
	}
}

func TestFetchNameWithoutVersionIsLatest(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	srv, port := discoveryServer(t)
	aci := makeACI(t, "127.0.0.1/hello", "", "latest")
	srv.set(fmt.Sprintf("/aci/127.0.0.1/hello-latest-linux-%s.aci", runtime.GOARCH), resource{body: aci})
	f := New(s, Options{Insecure: true, DiscoveryPort: port, SkipVerify: true})
	// os given, arch defaulted.
	res, err := f.FetchName(testContext(t), "127.0.0.1/hello,os=linux")
	if err != nil {
		t.Fatal(err)
	}
	if ai, err := s.GetACIInfoWithBlobKey(res.Key); err != nil || !ai.Latest {
		t.Fatalf("ACIInfo = %+v, %v; want it marked latest", ai, err)
	}
}

func TestFetchNameFailures(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		ref  string
		aci  []byte // served for 127.0.0.1/hello:1.0.0
		opts Options
		want error
	}{
		{"image of another name", "127.0.0.1/hello:1.0.0", makeACI(t, "example.com/other", "1.0.0", "x"), Options{Insecure: true, SkipVerify: true}, store.ErrInvalidImage},
		{"no meta tag for the name", "127.0.0.1/nothing:1.0.0", nil, Options{Insecure: true, SkipVerify: true}, ErrDiscovery},
		{"discovered ACI missing", "127.0.0.1/hello:2.0.0", nil, Options{Insecure: true, SkipVerify: true}, ErrHTTPStatus},
		{"plain HTTP discovery without insecure", "127.0.0.1/hello:1.0.0", makeACI(t, "127.0.0.1/hello", "1.0.0", "x"), Options{SkipVerify: true}, ErrDiscovery},
		{"not a name", "Not A Name!", nil, Options{Insecure: true, SkipVerify: true}, ErrUnsupportedSource},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			srv, port := discoveryServer(t)
			if c.aci != nil {
				srv.set(fmt.Sprintf("/aci/127.0.0.1/hello-1.0.0-%s-%s.aci", runtime.GOOS, runtime.GOARCH), resource{body: c.aci})
			}
			opts := c.opts
			opts.DiscoveryPort = port
			res, err := New(s, opts).Fetch(testContext(t), c.ref)
			t.Logf("%v", err)
			if !errors.Is(err, c.want) {
				t.Fatalf("Fetch(%q) = %+v, %v; want %v", c.ref, res, err, c.want)
			}
			assertNothingStored(t, s)
		})
	}
}

// TestFetchNameCancelledDuringDiscovery: a discovery server that never
// answers does not hold a cancelled fetch.
func TestFetchNameCancelledDuringDiscovery(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	srv, port := discoveryServer(t)
	release := make(chan struct{})
	srv.set("/hello", resource{serve: func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}})
	defer close(release)
	ctx, cancel := context.WithTimeout(testContext(t), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := New(s, Options{Insecure: true, SkipVerify: true, DiscoveryPort: port}).FetchName(ctx, "127.0.0.1/hello:1.0.0")
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 10*time.Second {
		t.Fatalf("FetchName with a silent discovery server = %v after %s; want context.DeadlineExceeded at once", err, time.Since(start))
	}
	assertNothingStored(t, s)
}
