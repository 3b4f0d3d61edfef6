// Crash tests: child processes killed at every failpoint or at random, and what a crash leaves.

package store

import (
	"bufio"
	"bytes"
	"crypto/sha512"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

var long = flag.Bool("long", os.Getenv("IMAGESTORE_LONG") != "", "run the long crash and stress trials")

// The failpoints of the write and remove paths (see failpoint.go).
var crashPoints = []string{
	"ingest-created", "ingest-copy", "ingest-done", "write-intent", "write-blob-renamed",
	"write-manifest-renamed", "write-in-transaction", "write-committed",
	"remove-in-transaction", "remove-committed", "remove-blob-removed",
}

// childCrash writes and removes images until it is killed: at the n-th hit
// of the failpoint named by IMAGESTORE_FAILPOINT ("name:n"), or by the
// parent at a random time. It reports each step on stdout, flushed, so the
// parent knows what was committed before the kill.
func childCrash(dir string) error {
	armFailpoint()
	seed, _ := strconv.ParseInt(os.Getenv("IMAGESTORE_SEED"), 10, 64)
	s, err := NewStore(dir)
	if err != nil {
		return err
	}
	defer s.Close()
	for i := 0; i < 8; i++ {
		img, err := crashImage(seed, i)
		if err != nil {
			return err
		}
		if i%4 == 2 {
			// Three images as one Batch: after a kill, all or none.
			b := s.NewBatch()
			var keys []string
			for j := 0; j < 3; j++ {
				if j > 0 {
					if img, err = crashImage(seed, 100*i+j); err != nil {
						return err
					}
				}
				key, err := b.Add(bytes.NewReader(img), ACIFetchInfo{})
				if err != nil {
					return err
				}
				keys = append(keys, key)
			}
			fmt.Printf("batching %s\n", strings.Join(keys, ","))
			if err := b.Commit(); err != nil {
				return err
			}
			for _, key := range keys {
				fmt.Printf("committed %s\n", key)
			}
			continue
		}
		key, err := s.WriteACI(bytes.NewReader(img), ACIFetchInfo{})
		if err != nil {
			return err
		}
		fmt.Printf("committed %s\n", key)
		if i%2 == 1 {
			ais, err := s.GetAllACIInfos([]string{"importtime"}, true)
			if err != nil || len(ais) == 0 {
				return fmt.Errorf("list: %v", err)
			}
			victim := ais[0].BlobKey
			fmt.Printf("removing %s\n", victim)
			if err := s.RemoveACI(victim); err != nil {
				return err
			}
			fmt.Printf("removed %s\n", victim)
		}
	}
	return nil
}

// armFailpoint makes a child kill itself (SIGKILL) at the n-th hit of the
// failpoint named by IMAGESTORE_FAILPOINT ("name:n"), if set.
func armFailpoint() {
	fp := os.Getenv("IMAGESTORE_FAILPOINT")
	if fp == "" {
		return
	}
	name, nth, _ := strings.Cut(fp, ":")
	n, _ := strconv.Atoi(nth)
	newStoreFailpoints = func(at string) {
		if at == name {
			if n--; n <= 0 {
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
			}
		}
	}
}

// crashImage is the i-th image of a child: gzip-compressed, with 256 KiB
// of random content so that a kill can land inside decompression.
func crashImage(seed int64, i int) ([]byte, error) {
	body := make([]byte, 256<<10)
	rand.New(rand.NewSource(seed*1000 + int64(i))).Read(body)
	img, err := tarBytes(
		tarEntry{"manifest", manifestJSON("example.com/crash", fmt.Sprintf("seed=%d", seed), fmt.Sprintf("i=%d", i))},
		tarEntry{"rootfs/data", body},
	)
	if err != nil {
		return nil, err
	}
	return gzipData(img)
}

// crashModel is what the parent knows from the children's reports.
type crashModel struct {
	committed map[string]bool // reported committed, not removed since
	doubtful  map[string]bool // a removal was under way at the kill
	batch     []string        // a Batch whose commit was under way at the kill
}

func (m *crashModel) read(out io.Reader) {
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		verb, key, _ := strings.Cut(sc.Text(), " ")
		switch verb {
		case "batching":
			m.batch = strings.Split(key, ",")
		case "committed":
			m.committed[key] = true
			delete(m.doubtful, key)
			m.batch = nil
		case "removing":
			m.doubtful[key] = true
		case "removed":
			delete(m.committed, key)
			delete(m.doubtful, key)
		}
	}
}

// runCrashTrial starts a child, lets it die at failpoint (or kills it after
// delay), and returns once it is gone.
func runCrashTrial(t *testing.T, dir, failpoint string, delay time.Duration, seed int64, m *crashModel) {
	t.Helper()
	cmd := childCommand("crash", dir, "IMAGESTORE_FAILPOINT="+failpoint, fmt.Sprintf("IMAGESTORE_SEED=%d", seed))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if delay > 0 {
		timer := time.AfterFunc(delay, func() { cmd.Process.Kill() })
		defer timer.Stop()
	}
	m.read(out)
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); ok && ee.Sys().(syscall.WaitStatus).Signaled() {
		return // killed, as planned
	}
	if err != nil {
		t.Fatalf("child (failpoint %q) failed: %v", failpoint, err)
	}
}

// checkAfterCrash reopens the store and checks it against the model.
func checkAfterCrash(t *testing.T, dir string, m *crashModel, trial string) {
	t.Helper()
	s, err := NewStore(dir)
	if err != nil {
		t.Fatalf("%s: reopen: %v", trial, err)
	}
	defer s.Close()
	if len(m.batch) > 0 {
		found := 0
		for _, key := range m.batch {
			if s.HasFullKey(key) {
				found++
			}
		}
		if found != 0 && found != len(m.batch) {
			t.Fatalf("%s: %d of the %d images of a batch killed in its commit are stored", trial, found, len(m.batch))
		}
		m.batch = nil
	}
	for key := range m.doubtful {
		if !s.HasFullKey(key) {
			delete(m.committed, key)
		}
		delete(m.doubtful, key)
	}
	for key := range m.committed {
		rc, err := s.ReadStream(key)
		if err != nil {
			t.Fatalf("%s: committed image %s lost: %v", trial, key, err)
		}
		h := sha512.New()
		io.Copy(h, rc)
		rc.Close()
		if got := hashToKey(h); got != key {
			t.Fatalf("%s: image %s reads back as %s", trial, key, got)
		}
	}
	ais, err := s.GetAllACIInfos(nil, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, ai := range ais {
		if !m.committed[ai.BlobKey] {
			// Committed by the child but killed before it could say so:
			// it must be whole; it joins the model.
			m.committed[ai.BlobKey] = true
		}
	}
	// Recovery at open settled everything in flight: no row names a
	// missing file, no partial or orphan blob is left, no dead temp file,
	// nothing at all in tmp/ (the children make no temp files of their own).
	if got := tmpEntries(t, s); len(got) != 0 {
		t.Fatalf("%s: tmp/ holds %v after NewStore", trial, got)
	}
	if v, err := s.Verify(); err != nil || !v.OK() {
		t.Fatalf("%s: Verify after recovery: %v %v", trial, v.Problems, err)
	}
	if _, err := s.GC(GCOptions{Orphans: true}); err != nil {
		t.Fatalf("%s: GC: %v", trial, err)
	}
	if v, err := s.Verify(); err != nil || !v.OK() {
		t.Fatalf("%s: Verify after GC: %v %v", trial, v.Problems, err)
	}
}

func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	trials := 2 * len(crashPoints) // every failpoint, twice
	if *long {
		trials = 240
	}
	dir := filepath.Join(t.TempDir(), "store")
	m := &crashModel{committed: map[string]bool{}, doubtful: map[string]bool{}}
	rnd := rand.New(rand.NewSource(time.Now().UnixNano()))
	for i := 0; i < trials; i++ {
		var fp string
		var delay time.Duration
		if i%4 == 3 {
			delay = time.Duration(rnd.Intn(60)+1) * time.Millisecond // a random moment
		} else {
			fp = fmt.Sprintf("%s:%d", crashPoints[i%len(crashPoints)], 1+rnd.Intn(3))
		}
		trial := fmt.Sprintf("trial %d (failpoint %q, delay %v)", i, fp, delay)
		runCrashTrial(t, dir, fp, delay, int64(i), m)
		checkAfterCrash(t, dir, m, trial)
	}
	t.Logf("%d kill trials, %d images alive at the end", trials, len(m.committed))
}

// A temp file left between its creation and its lock (.new-) is removed by
// the next NewStore, unless a live writer holds it.
func TestRecoveryRemovesDeadNewTempFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	s, err := NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	dead := filepath.Join(dir, "tmp", tmpNewPrefix+"123")
	live := filepath.Join(dir, "tmp", tmpNewPrefix+"456")
	for _, p := range []string{dead, live} {
		if err := os.WriteFile(p, nil, filePerm); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(live)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if ok, err := tryLockFile(f); err != nil || !ok {
		t.Fatalf("lock: %v %v", ok, err)
	}
	s, err = NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := tmpEntries(t, s); len(got) != 1 || got[0] != filepath.Base(live) {
		t.Fatalf("tmp/ holds %v, want only the live writer's %s", got, filepath.Base(live))
	}
}
