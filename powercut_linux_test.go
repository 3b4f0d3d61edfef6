// Power-cut and failing-disk trials through a FUSE test filesystem (Linux).

//go:build linux

package store

import (
	"bytes"
	"errors"
	"fmt"
	"io"
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
	"db-flushed", "recover-start", "recover-settle", "recover-settled")

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
	var atPoint, atRandom, finished, undone, restored int
	leftByRemoval := map[string]bool{} // model B: removed images whose files are orphans
	for i := 0; i < trials; i++ {
		var fp string
		var delay time.Duration
		inOpen := false
		switch {
		case i%2 == 0:
			fp = powerCutPoints[(i/2)%len(powerCutPoints)]
			n := 1 + rnd.Intn(3)
			if fp == "recover-start" {
				n = 1 // once per NewStore
			}
			fp = fmt.Sprintf("%s:%d", fp, n)
			atPoint++
		case i%6 == 1:
			// Once the child has begun NewStore (its log exists): the
			// cut falls in NewStore and its recovery, or just after.
			delay = time.Duration(rnd.Intn(15000)) * time.Microsecond
			inOpen = true
			atRandom++
		default:
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
		if inOpen {
			for start := time.Now(); time.Since(start) < time.Minute; time.Sleep(200 * time.Microsecond) {
				if _, err := os.Stat(oplog); err == nil {
					break
				}
			}
		}
		select {
		case err = <-done:
			if fp == "" || err == nil {
				finished++
			}
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
	t.Logf("model %s: %d power cuts (%d at failpoints, %d at random moments; %d in NewStore, %d after the child's last call), %d acknowledged calls, 0 lost; "+
		"the cuts put back %d files and undid %d operations on names; %d images alive at the end; "+
		"%d removed images left orphan files",
		model, trials, atPoint, atRandom, m.inOpen, finished, m.acks, restored, undone, len(m.alive), len(leftByRemoval))
}

// mountFaultFS mounts a faultfs (model A) over a fresh directory and
// returns it with the store path inside the mount and on the disk below.
// The mount is undone when the test ends, even if it fails.
func mountFaultFS(t *testing.T) (f *faultfs.FS, mnt, disk string) {
	t.Helper()
	if err := faultfs.Available(); err != nil {
		t.Skipf("skipped: %v", err)
	}
	root := t.TempDir()
	disk, mnt = filepath.Join(root, "disk"), filepath.Join(root, "mnt")
	for _, d := range []string{disk, mnt} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	f, err := faultfs.Mount(disk, mnt, faultfs.ModelA)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	return f, filepath.Join(mnt, "store"), filepath.Join(disk, "store")
}

// TestFailingDisk injects EIO on a blob's reads, on a blob's fsync and on
// the WAL's fsync. ReadStream and Verify report the damage; a WriteACI
// whose fsync failed is not acknowledged; after a power cut nothing that
// was acknowledged is lost.
func TestFailingDisk(t *testing.T) {
	if strings.HasPrefix(SQLiteDriver, "modernc.org/") {
		// This test uses the store in the process that serves the FUSE
		// mount. The pure-Go driver touches SQLite's mmapped -shm from Go
		// code: a page fault there, served by this process's own FUSE
		// goroutines, can meet a garbage collector's stop-the-world and
		// never end (seen once in CI, 2026-11-30). go-sqlite3 touches it
		// from C, which the stop-the-world does not wait for.
		t.Skip("skipped with the pure-Go SQLite driver: the store and the FUSE server share this process; the cgo build runs it")
	}
	f, dir, disk := mountFaultFS(t)
	// This process serves the mount and uses it: should it ever wait on
	// itself (CI saw a Close after Cut never return, 2026-12-04, under
	// -race on a loaded machine), the watchdog aborts the connection, so
	// the test fails instead of hanging the whole run.
	finished := make(chan struct{})
	defer close(finished)
	go func() {
		select {
		case <-finished:
		case <-time.After(3 * time.Minute):
			t.Errorf("TestFailingDisk hung for 3 minutes: aborting the FUSE connection (%v)", f.Abort())
		}
	}()
	s, err := NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m := newCutModel()
	imgA := makeACI(t, "example.com/a")
	a := writeImage(t, s, imgA, false)
	m.alive[a] = true
	rel := func(p string) string { r, _ := filepath.Rel(filepath.Dir(dir), p); return r }

	// A blob that cannot be read.
	f.SetFault(func(op faultfs.Op, path string) syscall.Errno {
		if op == faultfs.OpRead && path == rel(s.blobPath(a)) {
			return syscall.EIO
		}
		return 0
	})
	if rc, err := s.ReadStream(a); err != nil {
		t.Logf("ReadStream of an unreadable blob: %v", err)
	} else {
		_, err := io.ReadAll(rc)
		rc.Close()
		if !errors.Is(err, syscall.EIO) {
			t.Errorf("reading an unreadable blob: %v, want EIO", err)
		}
	}
	v, err := s.Verify()
	if err == nil && (len(v.Problems) != 1 || v.Problems[0].Key != a || !strings.Contains(v.Problems[0].Detail, "input/output error")) {
		t.Errorf("Verify of an unreadable blob: %v, want its read error", v.Problems)
	}

	// A blob whose fsync fails: not acknowledged; written again, whole.
	imgB := makeACI(t, "example.com/b")
	f.SetFault(func(op faultfs.Op, path string) syscall.Errno {
		if op == faultfs.OpFsync && strings.HasPrefix(path, "store/blob/") {
			return syscall.EIO
		}
		return 0
	})
	if key, err := s.WriteACI(bytes.NewReader(imgB), ACIFetchInfo{}); !errors.Is(err, syscall.EIO) {
		t.Errorf("WriteACI whose blob fsync failed: %q, %v; want EIO", key, err)
	}
	if s.HasFullKey(keyOf(imgB)) {
		t.Errorf("the image whose fsync failed is in the store")
	}
	f.SetFault(nil)
	b := writeImage(t, s, imgB, false)
	m.alive[b] = true

	// The WAL's fsync fails: that write is not acknowledged, and nothing
	// written after it is acknowledged unless it is durable.
	walFails := true
	f.SetFault(func(op faultfs.Op, path string) syscall.Errno {
		if op == faultfs.OpFsync && path == "store/db/store.db-wal" && walFails {
			walFails = false
			return syscall.EIO
		}
		return 0
	})
	imgC := makeACI(t, "example.com/c")
	if key, err := s.WriteACI(bytes.NewReader(imgC), ACIFetchInfo{}); !errors.Is(err, syscall.EIO) {
		t.Errorf("WriteACI whose WAL flush failed: %q, %v; want EIO", key, err)
	}
	m.maybe[keyOf(imgC)] = true
	// Without the refusal, D was acknowledged and lost by the cut: its
	// commit followed C's lost frames in the WAL.
	imgD := makeACI(t, "example.com/d")
	if key, err := s.WriteACI(bytes.NewReader(imgD), ACIFetchInfo{}); err == nil {
		t.Errorf("WriteACI after a failed flush of the WAL acknowledged %s", key)
	} else if !errors.Is(err, syscall.EIO) {
		t.Errorf("WriteACI after a failed flush of the WAL: %v, want the flush's EIO", err)
	}
	m.maybe[keyOf(imgD)] = true
	if err := s.WriteRemote(&Remote{ACIURL: "https://example.com/e"}); err == nil {
		t.Errorf("WriteRemote after a failed flush of the WAL acknowledged")
	}

	// The power goes: the connection is aborted before the store is
	// closed, so that closing fails at once in the kernel rather than
	// send this process's own server requests while it is cut.
	f.Cut()
	if err := f.Abort(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := f.PowerCut(); err != nil {
		t.Fatal(err)
	}
	if findings, _ := m.check(disk); len(findings) > 0 {
		t.Fatalf("after the power cut:\n%s", strings.Join(findings, "\n"))
	}
}
