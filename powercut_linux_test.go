//go:build linux

package store

import (
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imagestore/imagestore/internal/faultfs"
)

// powerCutPoints are the failpoints where trials cut the power: those of
// the write and remove paths, the WAL flush, and recovery at open.
var powerCutPoints = append(append([]string(nil), crashPoints...),
	"db-flushed", "recover-settle", "recover-settled")

// cutOps is how many calls a child makes, at most, before it is cut.
const cutOps = 12

// TestPowerCut cuts the power under a child working on one store through
// faultfs, at failpoints and at random moments (also during NewStore and
// its recovery), and checks after each cut that nothing acknowledged was
// lost and that the store verifies clean right after NewStore. Model A
// loses what was not fsynced; model B also loses the operations on names
// that no fsync of their directory made durable.
func TestPowerCut(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes and mounts FUSE")
	}
	if err := faultfs.Available(); err != nil {
		t.Skipf("skipped, no power-cut trials here: %v", err)
	}
	trials := 40
	if *long {
		trials = 300
	}
	for _, model := range []faultfs.Model{faultfs.ModelA, faultfs.ModelB} {
		t.Run("model"+model.String(), func(t *testing.T) { runPowerCuts(t, model, trials) })
	}
}

func runPowerCuts(t *testing.T, model faultfs.Model, trials int) {
	root := t.TempDir()
	disk, mnt := filepath.Join(root, "disk"), filepath.Join(root, "mnt")
	for _, d := range []string{disk, mnt} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var cur *faultfs.FS // mounted, if not nil
	t.Cleanup(func() {
		if cur != nil {
			if err := cur.PowerCut(); err != nil { // kills the child too
				t.Errorf("unmount: %v", err)
			}
		}
	})
	seed := time.Now().UnixNano()
	rnd := rand.New(rand.NewSource(seed))
	m := newCutModel()
	var atPoint, atRandom, undone, restored int
	leftByRemoval := map[string]bool{} // model B: removed images whose files are orphans
	for i := 0; i < trials; i++ {
		var fp string
		var delay time.Duration
		if i%2 == 0 {
			fp = fmt.Sprintf("%s:%d", powerCutPoints[(i/2)%len(powerCutPoints)], 1+rnd.Intn(3))
			atPoint++
		} else {
			// From the child's start: the first ~100 ms fall in its start
			// and NewStore's recovery.
			delay = time.Duration(1+rnd.Intn(400)) * time.Millisecond
			atRandom++
		}
		trial := fmt.Sprintf("model %s trial %d (seed %d, failpoint %q, delay %v)", model, i, seed, fp, delay)
		f, err := faultfs.Mount(disk, mnt, model)
		if err != nil {
			t.Fatal(err)
		}
		cur = f
		oplog := filepath.Join(root, fmt.Sprintf("oplog-%d", i))
		cmd, _ := startChild(t, "powercut", filepath.Join(mnt, "store"),
			"IMAGESTORE_FAILPOINT="+fp, fmt.Sprintf("IMAGESTORE_SEED=%d", seed+int64(i)),
			fmt.Sprintf("IMAGESTORE_OPS=%d", cutOps), "IMAGESTORE_OPLOG="+oplog)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		cut := false
		timeout := delay
		if timeout == 0 {
			timeout = 2 * time.Minute // a child that hangs is a failure
		}
		select {
		case err = <-done:
		case <-time.After(timeout):
			f.Cut()
			cut = true
			cmd.Process.Kill()
			err = <-done
			if delay == 0 {
				t.Fatalf("%s: the child hung", trial)
			}
		}
		var ee *exec.ExitError
		if !cut && err != nil && !(errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signaled()) {
			t.Fatalf("%s: the child failed: %v", trial, err)
		}
		if err := f.PowerCut(); err != nil {
			t.Fatalf("%s: power cut: %v", trial, err)
		}
		cur = nil
		st := f.Stats()
		undone += st.Undone
		restored += st.Restored
		if logf, err := os.Open(oplog); err == nil {
			m.read(logf)
			logf.Close()
		} else if !errors.Is(err, os.ErrNotExist) { // cut before the child began
			t.Fatal(err)
		}

		// Recover a copy: the store itself stays as the cut left it, so
		// the next child's NewStore recovers it under faultfs.
		check := filepath.Join(root, "check")
		copyTree(t, filepath.Join(disk, "store"), check)
		findings, problems := m.check(check)
		if model == faultfs.ModelB && len(findings) == len(problems) {
			// The one exception of model B: a removal does not fsync its
			// intent nor its files' directories (removeLocked), so the
			// files of a removed image can be left as orphans.
			orphans := 0
			for _, p := range problems {
				if (p.Kind == ProblemOrphanBlob || p.Kind == ProblemOrphanManifest) && m.removed[p.Key] {
					orphans++
					leftByRemoval[p.Key] = true
				}
			}
			if orphans == len(problems) {
				findings = nil
			}
		}
		if len(findings) > 0 {
			kept, _ := os.MkdirTemp("", "imagestore-powercut-")
			copyTree(t, filepath.Join(disk, "store"), filepath.Join(kept, "store"))
			os.Rename(oplog, filepath.Join(kept, "oplog"))
			sort.Strings(findings)
			t.Fatalf("%s: after the cut (files as the cut left them in %s):\n%s", trial, kept, strings.Join(findings, "\n"))
		}
		if err := os.RemoveAll(check); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("model %s: %d power cuts (%d at failpoints, %d at random moments), %d acknowledged calls, 0 lost; "+
		"the cuts put back %d files and undid %d operations on names; %d images alive at the end; "+
		"%d removed images left orphan files",
		model, trials, atPoint, atRandom, m.acks, restored, undone, len(m.alive), len(leftByRemoval))
}
