// powercut_linux_test.go cuts the power under renders running on the
// FUSE test filesystem (Linux, root, /dev/fuse).

//go:build linux

package treestore_test

import (
	"errors"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	store "github.com/imagestore/imagestore"
	"github.com/imagestore/imagestore/internal/faultfs"
	"github.com/imagestore/imagestore/treestore"
)

var long = flag.Bool("long", os.Getenv("IMAGESTORE_LONG") != "", "run the long power-cut trials")

// TestPowerCutDuringRender cuts the power at random moments of a render
// (in a child process, through faultfs) and checks, on what the disk kept,
// that a tree IsRendered reports is whole: it passes Check, and its files
// are the image's. Model A loses file data not fsynced; model B also the
// operations on names whose directory was not fsynced.
func TestPowerCutDuringRender(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes and mounts FUSE")
	}
	if err := faultfs.Available(); err != nil {
		t.Skipf("skipped, no power-cut trials here: %v", err)
	}
	trials := 12
	if *long {
		trials = 60
	}
	for _, model := range []faultfs.Model{faultfs.ModelA, faultfs.ModelB} {
		t.Run("model"+model.String(), func(t *testing.T) { powerCutRenders(t, model, trials) })
	}
}

func powerCutRenders(t *testing.T, model faultfs.Model, trials int) {
	root := t.TempDir()
	disk, mnt := filepath.Join(root, "disk"), filepath.Join(root, "mnt")
	for _, d := range []string{disk, mnt} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The images go in on the disk itself: only the render is cut.
	s, err := store.NewStore(filepath.Join(disk, "store"))
	if err != nil {
		t.Fatal(err)
	}
	base, top := bigChain(2, 300, 16<<10)
	importImages(t, s, base, top)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	var cur *faultfs.FS
	t.Cleanup(func() {
		if cur != nil {
			cur.PowerCut()
		}
	})
	// Renders without a cut say how long a render takes here: the
	// quicker of two (the first pays for a cold start).
	full := runCutRender(t, disk, mnt, model, top.key(), 0, &cur)
	removeTrees(t, filepath.Join(disk, "store"))
	full = min(full, runCutRender(t, disk, mnt, model, top.key(), 0, &cur))
	seed := time.Now().UnixNano()
	rnd := rand.New(rand.NewSource(seed))
	var rendered, partial, finished int
	for i := 0; i < trials; i++ {
		removeTrees(t, filepath.Join(disk, "store"))
		// Most cuts fall within a render; one in four around its end.
		delay := time.Duration(int64(full)/10 + rnd.Int63n(int64(full)*9/10))
		if i%4 == 3 {
			delay = time.Duration(int64(full)*9/10 + rnd.Int63n(int64(full)/2))
		}
		acked := runCutRender(t, disk, mnt, model, top.key(), delay, &cur) > 0
		if acked {
			finished++
		}
		ok, n := checkTreesAfterCut(t, filepath.Join(disk, "store"), top)
		trial := fmt.Sprintf("model %s trial %d (seed %d, cut after %v of a %v render)", model, i, seed, delay, full)
		if !ok {
			t.Fatalf("%s: a tree reported rendered is not whole", trial)
		}
		if acked && n == 0 {
			t.Fatalf("%s: Render returned, yet after the cut no tree is rendered", trial)
		}
		rendered += n
		if n == 0 {
			partial++
		}
	}
	t.Logf("model %s: %d power cuts during renders of %v: %d left a rendered tree (all whole), %d none; %d renders finished before the cut",
		model, trials, full, rendered, partial, finished)
	if partial == 0 {
		t.Errorf("no cut fell during a render: the trials tested nothing")
	}
}

// runCutRender mounts faultfs over disk, renders key in a child, and cuts
// the power after delay (0: lets the render finish, then cuts). It returns
// how long the child ran (0 if it was cut before it finished).
func runCutRender(t *testing.T, disk, mnt string, model faultfs.Model, key string, delay time.Duration, cur **faultfs.FS) time.Duration {
	t.Helper()
	f, err := faultfs.Mount(disk, mnt, model)
	if err != nil {
		t.Fatal(err)
	}
	*cur = f
	start := time.Now()
	cmd, out := startRender(t, filepath.Join(mnt, "store"), key, "")
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var took time.Duration
	timeout := delay
	if delay == 0 {
		timeout = 2 * time.Minute
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("render child: %v\n%s", err, out)
		}
		took = time.Since(start)
	case <-time.After(timeout):
		if delay == 0 {
			t.Fatal("the render child hung")
		}
		f.Cut()
		cmd.Process.Kill()
		err := <-done
		var ee *exec.ExitError
		if err != nil && !(errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signaled()) && !strings.Contains(out.String(), "input/output error") {
			t.Fatalf("render child: %v\n%s", err, out)
		}
	}
	if err := f.PowerCut(); err != nil {
		t.Fatal(err)
	}
	*cur = nil
	return took
}

// checkTreesAfterCut opens the store as the cut left it and checks every
// tree IsRendered reports; it returns false if one is not whole, and how
// many trees are rendered.
func checkTreesAfterCut(t *testing.T, dir string, top *aciImage) (bool, int) {
	t.Helper()
	s, err := store.NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ts, err := treestore.NewStore(dir, s)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := ts.GetIDs()
	if err != nil {
		t.Fatal(err)
	}
	whole, n := true, 0
	for _, id := range ids {
		ok, err := ts.IsRendered(id)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			continue
		}
		n++
		if _, err := ts.Check(id); err != nil {
			t.Errorf("tree %s: %v", id, err)
			whole = false
		}
		if key, err := ts.GetImageHash(id); err != nil || key != top.key() {
			t.Errorf("tree %s: image %q, %v", id, key, err)
			whole = false
		}
		for _, e := range top.entries {
			if e.hdr.Typeflag == '0' {
				if b, err := os.ReadFile(filepath.Join(ts.GetRootFS(id), e.hdr.Name)); err != nil || string(b) != string(e.body) {
					t.Errorf("tree %s: %s lost (%v)", id, e.hdr.Name, err)
					whole = false
				}
			}
		}
		if _, err := ts.Check(id); err == nil {
			// A partial tree must not hide a lost file behind a passing
			// Check: the hash file was written from the tree itself.
			if fi, err := os.Stat(filepath.Join(ts.GetRootFS(id), "d9/f299")); err != nil || fi.Size() != 16<<10 {
				t.Errorf("tree %s: last base file %v, %v", id, fi, err)
				whole = false
			}
		}
	}
	return whole, n
}

// removeTrees deletes the trees a trial left, on the disk.
func removeTrees(t *testing.T, dir string) {
	t.Helper()
	if err := os.RemoveAll(filepath.Join(dir, "tree")); err != nil {
		t.Fatal(err)
	}
}
