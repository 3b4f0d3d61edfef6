// The script commands of the fetch scripts: servers started by the test
// (an ACI file server with ETags, a discovery page, a registry), keys
// and signatures made in the test, and a way to age a download.

package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	store "github.com/imagestore/imagestore"
	"github.com/rogpeppe/go-internal/testscript"
)

var fetchCmds = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	"aciserver":    cmdACIServer,
	"reqlog":       cmdReqLog,
	"waitfile":     cmdWaitFile,
	"mkkey":        cmdMkkey,
	"sign":         cmdSign,
	"backdate":     cmdBackdate,
	"registry":     cmdRegistry,
	"pushimage":    cmdPushImage,
	"dockerconfig": cmdDockerConfig,
}

// scriptState holds what a script's servers and keys share, by $WORK.
var scriptState = struct {
	sync.Mutex
	logs map[string]*scriptLog
	keys map[string]*openpgp.Entity
	auth map[string]authn.Authenticator // by registry host
}{logs: map[string]*scriptLog{}, keys: map[string]*openpgp.Entity{}, auth: map[string]authn.Authenticator{}}

type scriptLog struct {
	mu      sync.Mutex
	lines   []string
	printed int
}

func (l *scriptLog) add(line string) {
	l.mu.Lock()
	l.lines = append(l.lines, line)
	l.mu.Unlock()
}

// cmdACIServer serves the files of $WORK/srv over HTTP on 127.0.0.1 and
// sets $SRV to its URL:
//
//	aciserver [MAX-AGE]
//
// Each file has an ETag (a hash of its content) and, with MAX-AGE, a
// Cache-Control max-age; If-None-Match is honoured. A path ending in
// ?ac-discovery=1 gets the discovery page of the file DIR/PATH.discovery,
// with $SRV in it replaced by the server's URL. Files named *.html are
// served as text/html; of a file whose name holds "stall", half is sent,
// then nothing until the client goes away. Every request is logged for
// reqlog.
func cmdACIServer(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) > 1 {
		ts.Fatalf("usage: aciserver [MAX-AGE]")
	}
	root := ts.MkAbs("srv")
	maxAge := ""
	if len(args) == 1 {
		maxAge = "max-age=" + args[0]
	}
	l := &scriptLog{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status, n := serveFile(w, r, root, maxAge, "http://"+r.Host)
		l.add(fmt.Sprintf("%s %s if-none-match=%s status=%d bytes=%d", r.Method, r.URL.Path, r.Header.Get("If-None-Match"), status, n))
	}))
	ts.Defer(srv.Close)
	scriptState.Lock()
	scriptState.logs[ts.Getenv("WORK")] = l
	scriptState.Unlock()
	ts.Setenv("SRV", srv.URL)
	ts.Setenv("SRVHOST", strings.TrimPrefix(srv.URL, "http://"))
	ts.Setenv("SRVPORT", srv.URL[strings.LastIndex(srv.URL, ":")+1:])
}

func serveFile(w http.ResponseWriter, r *http.Request, root, maxAge, srvURL string) (int, int) {
	p := filepath.Join(root, filepath.FromSlash(strings.TrimPrefix(r.URL.Path, "/")))
	if r.URL.Query().Get("ac-discovery") == "1" {
		p += ".discovery"
	}
	data, err := os.ReadFile(p)
	if err != nil {
		http.NotFound(w, r)
		return http.StatusNotFound, 0
	}
	if strings.HasSuffix(p, ".discovery") {
		w.Header().Set("Content-Type", "text/html")
		data = bytes.ReplaceAll(data, []byte("$SRV"), []byte(srvURL))
		n, _ := w.Write(data)
		return http.StatusOK, n
	}
	etag := fmt.Sprintf(`"%x"`, sha256.Sum256(data))[:18] + `"`
	w.Header().Set("ETag", etag)
	if maxAge != "" {
		w.Header().Set("Cache-Control", maxAge)
	}
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return http.StatusNotModified, 0
	}
	ct := "application/octet-stream"
	if strings.HasSuffix(p, ".html") {
		ct = "text/html"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	if strings.Contains(p, "stall") {
		// Half the body, then nothing until the client goes away.
		n, _ := w.Write(data[:len(data)/2])
		http.NewResponseController(w).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(time.Minute):
		}
		return http.StatusOK, n
	}
	n, _ := w.Write(data)
	return http.StatusOK, n
}

// cmdWaitFile waits, up to a minute, until the directory DIR holds a file:
//
//	waitfile DIR
func cmdWaitFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitfile DIR")
	}
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if entries, err := os.ReadDir(ts.MkAbs(args[0])); err == nil && len(entries) > 0 {
			return
		}
	}
	ts.Fatalf("waitfile: nothing in %s after a minute", args[0])
}

// cmdReqLog prints how many requests the aciserver answered since the
// last reqlog ("requests: N"), then each, one a line: METHOD PATH
// if-none-match=ETAG status=N bytes=N.
func cmdReqLog(ts *testscript.TestScript, neg bool, args []string) {
	scriptState.Lock()
	l := scriptState.logs[ts.Getenv("WORK")]
	scriptState.Unlock()
	if neg || len(args) != 0 || l == nil {
		ts.Fatalf("usage: reqlog (after aciserver)")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(ts.Stdout(), "requests: %d\n", len(l.lines)-l.printed)
	for _, line := range l.lines[l.printed:] {
		fmt.Fprintln(ts.Stdout(), line)
	}
	l.printed = len(l.lines)
}

// cmdMkkey makes an OpenPGP key and writes its public part, armored, to
// NAME.pub:
//
//	mkkey NAME
func cmdMkkey(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: mkkey NAME")
	}
	e, err := openpgp.NewEntity(args[0], "test", args[0]+"@example.com", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	ts.Check(err)
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	ts.Check(err)
	ts.Check(e.Serialize(w))
	ts.Check(w.Close())
	ts.Check(os.WriteFile(ts.MkAbs(args[0]+".pub"), buf.Bytes(), 0o644))
	scriptState.Lock()
	scriptState.keys[ts.Getenv("WORK")+"/"+args[0]] = e
	scriptState.Unlock()
}

// cmdSign writes FILE.asc, FILE's detached signature by the key NAME
// (made by mkkey), armored:
//
//	sign NAME FILE [ASC]
func cmdSign(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 || len(args) > 3 {
		ts.Fatalf("usage: sign NAME FILE [ASC]")
	}
	scriptState.Lock()
	e := scriptState.keys[ts.Getenv("WORK")+"/"+args[0]]
	scriptState.Unlock()
	if e == nil {
		ts.Fatalf("sign: no key %s: make it with mkkey", args[0])
	}
	data, err := os.ReadFile(ts.MkAbs(args[1]))
	ts.Check(err)
	var buf bytes.Buffer
	ts.Check(openpgp.ArmoredDetachSign(&buf, e, bytes.NewReader(data), nil))
	asc := args[1] + ".asc"
	if len(args) == 3 {
		asc = args[2]
	}
	ts.Check(os.WriteFile(ts.MkAbs(asc), buf.Bytes(), 0o644))
}

// cmdBackdate moves the download time of the remote ACIURL back by
// SECONDS, as if it had been downloaded that long ago:
//
//	backdate ACIURL SECONDS
func cmdBackdate(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: backdate ACIURL SECONDS")
	}
	secs, err := strconv.Atoi(args[1])
	ts.Check(err)
	s, err := store.NewStore(ts.Getenv("IMAGESTORE_DIR"))
	ts.Check(err)
	defer s.Close()
	r, err := s.GetRemote(args[0])
	ts.Check(err)
	r.DownloadTime = r.DownloadTime.Add(-time.Duration(secs) * time.Second)
	ts.Check(s.WriteRemote(r))
	ts.Check(s.Close())
}

// cmdRegistry starts go-containerregistry's registry on 127.0.0.1 and sets
// $REG to its host:port; with USER and PASS it asks for them (basic auth),
// and pushimage gives them:
//
//	registry [USER PASS]
func cmdRegistry(ts *testscript.TestScript, neg bool, args []string) {
	if neg || (len(args) != 0 && len(args) != 2) {
		ts.Fatalf("usage: registry [USER PASS]")
	}
	var h http.Handler = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	if len(args) == 2 {
		next := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != args[0] || p != args[1] {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	srv := httptest.NewServer(h)
	ts.Defer(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	if len(args) == 2 {
		scriptState.Lock()
		scriptState.auth[host] = &authn.Basic{Username: args[0], Password: args[1]}
		scriptState.Unlock()
	}
	ts.Setenv("REG", host)
}

// cmdDockerConfig writes a docker config file giving USER and PASS for
// HOST, as 'docker login' does:
//
//	dockerconfig FILE HOST USER PASS
func cmdDockerConfig(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 4 {
		ts.Fatalf("usage: dockerconfig FILE HOST USER PASS")
	}
	auth := base64.StdEncoding.EncodeToString([]byte(args[2] + ":" + args[3]))
	data, err := json.Marshal(map[string]any{"auths": map[string]any{args[1]: map[string]string{"auth": auth}}})
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), data, 0o600))
}

// cmdPushImage pushes a random two-layer linux/amd64 image to REF and
// writes it as an OCI image layout in DIR, naming it REF:
//
//	pushimage REF DIR
func cmdPushImage(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: pushimage REF DIR")
	}
	img, err := random.Image(2048, 2)
	ts.Check(err)
	cfg, err := img.ConfigFile()
	ts.Check(err)
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Config.Cmd = []string{"/bin/true"}
	img, err = mutate.ConfigFile(img, cfg)
	ts.Check(err)
	ref, err := name.ParseReference(args[0])
	ts.Check(err)
	scriptState.Lock()
	auth := scriptState.auth[ref.Context().RegistryStr()]
	scriptState.Unlock()
	opts := []remote.Option{}
	if auth != nil {
		opts = append(opts, remote.WithAuth(auth))
	}
	ts.Check(remote.Write(ref, img, opts...))
	p, err := layout.Write(ts.MkAbs(args[1]), empty.Index)
	ts.Check(err)
	ts.Check(p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": args[0]})))
}
