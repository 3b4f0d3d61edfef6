// rkt v1.30.0's own tree store as a test oracle: builds the program
// testdata/rktoracle/main.go against rkt's sources and runs it (Linux, root).

//go:build linux

package treestore_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// The rkt sources the oracle is built against: rkt-v1.30.0-src.tar.gz, in
// $IMAGESTORE_RKT_SRC (the file or its directory) or else in the
// directory ../shared/testdata/rkt-v1.30.0-src/ beside the module's root.
const rktSrcName = "rkt-v1.30.0-src.tar.gz"

// rktOracleResult is what testdata/rktoracle prints.
type rktOracleResult struct {
	Keys          []string        `json:"keys"`
	Key           string          `json:"key"`
	ID            string          `json:"id"`
	Hash          string          `json:"hash"`
	RenderHash    *string         `json:"renderHash"`
	Size          *int64          `json:"size"`
	TreeStoreSize *int64          `json:"treeStoreSize"`
	Path          string          `json:"path"`
	RootFS        string          `json:"rootfs"`
	Seconds       *float64        `json:"seconds"`
	IDs           []string        `json:"ids"`
	Rendered      map[string]bool `json:"rendered"`
	Error         string          `json:"error"`
}

var oracleBuild struct {
	once sync.Once
	path string
	skip string // why the tests that need rkt cannot run
	err  error  // the build failed: a test failure, not a skip
}

// rktOracle returns the path of the oracle program, building it the first
// time in this test binary. It skips the test when it cannot run here (not
// root, or rkt's sources are missing), unless $IMAGESTORE_REQUIRE_RKT is
// set (for CI): then that fails the test.
func rktOracle(t testing.TB) string {
	t.Helper()
	oracleBuild.once.Do(func() {
		oracleBuild.path, oracleBuild.skip, oracleBuild.err = buildRktOracle()
	})
	if oracleBuild.err != nil {
		t.Fatalf("building rkt's tree store (the oracle): %v", oracleBuild.err)
	}
	if oracleBuild.skip != "" {
		if os.Getenv("IMAGESTORE_REQUIRE_RKT") != "" {
			t.Fatalf("$IMAGESTORE_REQUIRE_RKT is set, but: %s", oracleBuild.skip)
		}
		t.Skip(oracleBuild.skip)
	}
	return oracleBuild.path
}

func findRktSrc() (string, error) {
	if p := os.Getenv("IMAGESTORE_RKT_SRC"); p != "" {
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			p = filepath.Join(p, rktSrcName)
		}
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("$IMAGESTORE_RKT_SRC: %v", err)
		}
		return p, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(filepath.Dir(dir), "shared", "testdata", "rkt-v1.30.0-src", rktSrcName)
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("rkt's sources not found (set $IMAGESTORE_RKT_SRC): %v", err)
			}
			return p, nil
		}
		if dir == filepath.Dir(dir) {
			return "", errors.New("module root (go.mod) not found above " + wd)
		}
	}
}

// buildRktOracle builds testdata/rktoracle/main.go in GOPATH mode inside
// an unpacked copy of rkt's sources, as their README says. The binary is
// kept in the system's temporary directory under a name made of the hash
// of the sources, of the oracle and of the Go version, so that later test
// runs reuse it.
func buildRktOracle() (path, skip string, err error) {
	if runtime.GOOS != "linux" {
		return "", "rkt's tree store is linux-only", nil
	}
	if os.Geteuid() != 0 {
		return "", "needs root: rkt's tree store extracts images in a chroot (CI runs the tests as root)", nil
	}
	src, err := findRktSrc()
	if err != nil {
		return "", err.Error(), nil
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", "the go command is not on $PATH, to build rkt's tree store: " + err.Error(), nil
	}
	main, err := os.ReadFile(filepath.Join("testdata", "rktoracle", "main.go"))
	if err != nil {
		return "", "", err
	}
	h := sha256.New()
	f, err := os.Open(src)
	if err != nil {
		return "", "", err
	}
	_, err = io.Copy(h, f)
	f.Close()
	if err != nil {
		return "", "", err
	}
	h.Write(main)
	ver, err := exec.Command(goTool, "version").Output()
	if err != nil {
		return "", "", fmt.Errorf("go version: %v", err)
	}
	h.Write(ver)
	cache := filepath.Join(os.TempDir(), "imagestore-rktoracle-"+hex.EncodeToString(h.Sum(nil))[:20])
	path = filepath.Join(cache, "rktoracle")
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o100 != 0 {
		return path, "", nil
	}

	gopath, err := os.MkdirTemp("", "imagestore-rktoracle-gopath-")
	if err != nil {
		return "", "", err
	}
	defer os.RemoveAll(gopath)
	if err := os.MkdirAll(filepath.Join(gopath, "src"), 0o755); err != nil {
		return "", "", err
	}
	if out, err := exec.Command("tar", "-xzf", src, "-C", filepath.Join(gopath, "src")).CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("unpacking %s: %v: %s", src, err, out)
	}
	pkg := filepath.Join(gopath, "src", "github.com", "rkt", "rkt", "tools", "rktoracle")
	if err := os.MkdirAll(pkg, 0o755); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(filepath.Join(pkg, "main.go"), main, 0o644); err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(cache, 0o700); err != nil {
		return "", "", err
	}
	tmp := filepath.Join(cache, fmt.Sprintf("rktoracle.%d.tmp", os.Getpid()))
	cmd := exec.Command(goTool, "build", "-o", tmp, ".")
	cmd.Dir = pkg
	cmd.Env = append(os.Environ(), "GOPATH="+gopath, "GO111MODULE=off", "GOFLAGS=", "GOTOOLCHAIN=local", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return "", "", fmt.Errorf("go build (GOPATH mode, in rkt's sources): %v\n%s", err, out)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", "", err
	}
	return path, "", nil
}

// runRkt runs the oracle and decodes what it prints. rkt's refusals
// (exit status 1) are returned as an error; anything else that goes wrong
// fails the test.
func runRkt(t testing.TB, args ...string) (*rktOracleResult, error) {
	t.Helper()
	oracle := rktOracle(t)
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(oracle, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var res rktOracleResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("rkt %s: %v (output %q, stderr %q)", strings.Join(args, " "), runErr, stdout.String(), stderr.String())
	}
	var ee *exec.ExitError
	switch {
	case runErr == nil:
		return &res, nil
	case errors.As(runErr, &ee) && ee.ExitCode() == 1 && res.Error != "":
		return &res, errors.New(res.Error)
	}
	t.Fatalf("rkt %s: %v: %s", strings.Join(args, " "), runErr, stderr.String())
	return nil, nil
}

// mustRkt is runRkt for a command that must succeed.
func mustRkt(t testing.TB, args ...string) *rktOracleResult {
	t.Helper()
	res, err := runRkt(t, args...)
	if err != nil {
		t.Fatalf("rkt %s: %v", strings.Join(args, " "), err)
	}
	return res
}
