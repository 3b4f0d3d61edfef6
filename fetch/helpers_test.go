// Test helpers: stores, ACIs, OpenPGP keys, and HTTP servers that log
// every request they answer.

package fetch

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	store "github.com/imagestore/imagestore"
	"github.com/klauspost/compress/gzip"
)

// newStore opens a store in a new temporary directory, closed at the end
// of the test.
func newStore(tb testing.TB) *store.Store {
	tb.Helper()
	s, err := store.NewStore(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// makeACI returns a gzipped ACI named name, with a version label when
// version is not "", and one file whose content is body.
func makeACI(tb testing.TB, name, version, body string) []byte {
	tb.Helper()
	labels := []map[string]string{{"name": "os", "value": "linux"}, {"name": "arch", "value": "amd64"}}
	if version != "" {
		labels = append(labels, map[string]string{"name": "version", "value": version})
	}
	manifest, err := json.Marshal(map[string]any{"acKind": "ImageManifest", "acVersion": "0.8.11", "name": name, "labels": labels})
	if err != nil {
		tb.Fatal(err)
	}
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, e := range []struct {
		name string
		typ  byte
		data []byte
	}{
		{"manifest", tar.TypeReg, manifest},
		{"rootfs", tar.TypeDir, nil},
		{"rootfs/hello.txt", tar.TypeReg, []byte(body)},
	} {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: 0o644, Size: int64(len(e.data)), ModTime: mtime}
		if e.typ == tar.TypeDir {
			hdr.Mode = 0o755
		}
		if err := tw.WriteHeader(hdr); err != nil {
			tb.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil {
			tb.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(tarBuf.Bytes())
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return gz.Bytes()
}

// keyOfACI is the store key of a gzipped ACI: sha512- and the first 64 hex
// digits of the SHA-512 of its tar.
func keyOfACI(tb testing.TB, gz []byte) string {
	tb.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		tb.Fatal(err)
	}
	var raw bytes.Buffer
	if _, err := raw.ReadFrom(zr); err != nil {
		tb.Fatal(err)
	}
	return fmt.Sprintf("sha512-%x", sha512.Sum512(raw.Bytes()))[:len("sha512-")+64]
}

// newKey generates an Ed25519 OpenPGP key (fast, unlike RSA).
func newKey(tb testing.TB, name string) *openpgp.Entity {
	tb.Helper()
	e, err := openpgp.NewEntity(name, "test", name+"@example.com", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

// armoredPublic exports the public keys of es, armored.
func armoredPublic(tb testing.TB, es ...*openpgp.Entity) []byte {
	tb.Helper()
	var buf bytes.Buffer
	for _, e := range es {
		w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
		if err != nil {
			tb.Fatal(err)
		}
		if err := e.Serialize(w); err != nil {
			tb.Fatal(err)
		}
		w.Close()
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}

// keyring makes a Keyring of the public keys of es.
func keyring(tb testing.TB, es ...*openpgp.Entity) *Keyring {
	tb.Helper()
	k, err := ReadKeyring(bytes.NewReader(armoredPublic(tb, es...)))
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// sign returns an armored detached signature of data by e.
func sign(tb testing.TB, e *openpgp.Entity, data []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&buf, e, bytes.NewReader(data), nil); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// logEntry is one request a test server answered.
type logEntry struct {
	Method, Path string
	IfNoneMatch  string
	Status       int
	BodyBytes    int64
}

func (e logEntry) String() string {
	return fmt.Sprintf("%s %s (If-None-Match %q) -> %d, %d body bytes", e.Method, e.Path, e.IfNoneMatch, e.Status, e.BodyBytes)
}

// requestLog records the requests a server answered.
type requestLog struct {
	mu      sync.Mutex
	entries []logEntry
}

func (l *requestLog) all() []logEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]logEntry(nil), l.entries...)
}

// since returns the entries after the first n.
func (l *requestLog) since(n int) []logEntry { return l.all()[n:] }

func (l *requestLog) len() int { return len(l.all()) }

// logging wraps h so that every request is recorded once answered.
func (l *requestLog) logging(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &countingWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(cw, r)
		l.mu.Lock()
		l.entries = append(l.entries, logEntry{r.Method, r.URL.Path, r.Header.Get("If-None-Match"), cw.status, cw.n})
		l.mu.Unlock()
	})
}

type countingWriter struct {
	http.ResponseWriter
	status int
	n      int64
}

func (c *countingWriter) WriteHeader(code int) {
	c.status = code
	c.ResponseWriter.WriteHeader(code)
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.n += int64(n)
	return n, err
}

func (c *countingWriter) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// resource is what an aciServer serves at a path.
type resource struct {
	body         []byte
	etag         string // "" : none
	cacheControl string // "" : none
	contentType  string // "" : application/octet-stream
	// serve, when set, answers instead (broken servers).
	serve http.HandlerFunc
}

// aciServer serves resources by path, with ETag, If-None-Match and
// Cache-Control as a static file server configured for ACIs would, and
// logs every request.
type aciServer struct {
	*httptest.Server
	log requestLog

	mu        sync.Mutex
	resources map[string]resource
}

func newACIServer(tb testing.TB) *aciServer {
	tb.Helper()
	a := &aciServer{resources: map[string]resource{}}
	a.Server = httptest.NewServer(a.log.logging(http.HandlerFunc(a.serve)))
	tb.Cleanup(a.Close)
	return a
}

func (a *aciServer) set(path string, r resource) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.resources[path] = r
}

func (a *aciServer) serve(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	res, ok := a.resources[r.URL.Path]
	a.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	if res.serve != nil {
		res.serve(w, r)
		return
	}
	if res.etag != "" {
		w.Header().Set("ETag", res.etag)
	}
	if res.cacheControl != "" {
		w.Header().Set("Cache-Control", res.cacheControl)
	}
	if res.etag != "" && r.Header.Get("If-None-Match") == res.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	ct := res.contentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Length", fmt.Sprint(len(res.body)))
	w.Write(res.body)
}

// assertNothingStored fails unless the store holds no image, no remote,
// and nothing in tmp/.
func assertNothingStored(tb testing.TB, s *store.Store) {
	tb.Helper()
	if ais, err := s.GetAllACIInfos(nil, true); err != nil || len(ais) != 0 {
		tb.Errorf("images stored: %d (%v)", len(ais), err)
	}
	if rs, err := s.GetAllRemotes(); err != nil || len(rs) != 0 {
		tb.Errorf("remotes stored: %d (%v)", len(rs), err)
	}
	assertTmpEmpty(tb, s)
}

func assertTmpEmpty(tb testing.TB, s *store.Store) {
	tb.Helper()
	dir, err := s.TmpDir()
	if err != nil {
		tb.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range entries {
		tb.Errorf("left in tmp/: %s", filepath.Join(dir, e.Name()))
	}
}

// remoteOf reads the Remote row of url.
func remoteOf(tb testing.TB, s *store.Store, url string) *store.Remote {
	tb.Helper()
	r, err := s.GetRemote(url)
	if err != nil {
		tb.Fatalf("GetRemote(%s): %v", url, err)
	}
	return r
}

// ctx is a context for one test, cancelled at its end.
func testContext(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	tb.Cleanup(cancel)
	return ctx
}
