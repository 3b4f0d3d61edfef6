// The stress test: processes of many goroutines on private and shared images.

package store

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/appc/spec/schema/types"
)

const stressSharedCount = 4 // images every process writes, reads and removes

// stressSharedImage is the i-th image that every stress process shares.
func stressSharedImage(i int) ([]byte, error) {
	return aciBytes("example.com/shared", fmt.Sprintf("n=%d", i))
}

// childStress runs 8 goroutines on the store at dir for
// IMAGESTORE_STRESS_FOR, each looping over a private image's life and
// operations on the shared images. Expected not-found errors (a shared
// image removed by someone else) are counted apart; any other error is
// printed and fails the child.
func childStress(dir string) error {
	d, err := time.ParseDuration(os.Getenv("IMAGESTORE_STRESS_FOR"))
	if err != nil {
		return err
	}
	s, err := NewStore(dir)
	if err != nil {
		return err
	}
	defer s.Close()
	sharedKeys := strings.Fields(os.Getenv("IMAGESTORE_SHARED_KEYS"))
	deadline := time.Now().Add(d)
	var ops, notFound atomic.Int64
	var mu sync.Mutex
	var errs []error
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				if err := stressPrivate(s, g, i); err != nil {
					fail(fmt.Errorf("private %d/%d: %w", g, i, err))
					return
				}
				err := stressShared(s, sharedKeys, g+i)
				if errors.Is(err, ErrKeyNotFound) {
					notFound.Add(1)
				} else if err != nil {
					fail(fmt.Errorf("shared %d/%d: %w", g, i, err))
					return
				}
				ops.Add(1)
			}
		}(g)
	}
	wg.Wait()
	fmt.Printf("loops %d notfound %d\n", ops.Load(), notFound.Load())
	return errors.Join(errs...)
}

// stressPrivate writes an image only this goroutine knows, uses it through
// every read path and removes it: no error at all is expected.
func stressPrivate(s *Store, g, i int) error {
	name := fmt.Sprintf("example.com/private-%d-%d", os.Getpid(), g)
	img, err := aciBytes(name, fmt.Sprintf("version=%d", i))
	if err != nil {
		return err
	}
	key, err := s.WriteACI(bytes.NewReader(img), ACIFetchInfo{Latest: i%2 == 0})
	if err != nil {
		return err
	}
	if k, err := s.ResolveKey(key[:20]); err != nil || k != key {
		return fmt.Errorf("ResolveKey: %q, %v", k, err)
	}
	if err := readBack(s, key, img); err != nil {
		return err
	}
	if k, err := s.GetACI(types.ACIdentifier(name), types.Labels{{Name: "version", Value: fmt.Sprint(i)}}); err != nil || k != key {
		return fmt.Errorf("GetACI: %q, %v", k, err)
	}
	if err := s.WriteRemote(&Remote{ACIURL: "https://example.com/" + key, BlobKey: key}); err != nil {
		return err
	}
	return s.RemoveACI(key)
}

// stressShared writes, reads or removes one of the shared images, or runs
// GC, depending on n. Two processes writing the same image get its key.
func stressShared(s *Store, keys []string, n int) error {
	i := n % stressSharedCount
	switch n % 5 {
	case 0, 1:
		img, err := stressSharedImage(i)
		if err != nil {
			return err
		}
		key, err := s.WriteACI(bytes.NewReader(img), ACIFetchInfo{})
		if err != nil {
			return err
		}
		if key != keys[i] {
			return fmt.Errorf("shared image %d stored as %s, want %s", i, key, keys[i])
		}
	case 2:
		rc, err := s.ReadStream(keys[i])
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		return err
	case 3:
		if _, err := s.GetACI("example.com/shared", types.Labels{{Name: "n", Value: fmt.Sprint(i)}}); err != nil {
			return err
		}
		return s.RemoveACI(keys[i])
	case 4:
		_, err := s.GC(GCOptions{Orphans: true, UnusedSince: time.Now().Add(-time.Hour)})
		return err
	}
	return nil
}

func TestStressProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dur := 3 * time.Second
	if *long {
		dur = 30 * time.Second
	}
	dir := filepath.Join(t.TempDir(), "store")
	s, err := NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var keys []string
	for i := 0; i < stressSharedCount; i++ {
		img, err := stressSharedImage(i)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, keyOf(img))
	}
	type child struct {
		cmd *exec.Cmd
		out *bytes.Buffer
	}
	var children []child
	for p := 0; p < 4; p++ {
		cmd := childCommand("stress", dir, "IMAGESTORE_STRESS_FOR="+dur.String(),
			"IMAGESTORE_SHARED_KEYS="+strings.Join(keys, " "))
		out := &bytes.Buffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		children = append(children, child{cmd, out})
	}
	for i, c := range children {
		err := c.cmd.Wait()
		t.Logf("process %d: %s", i, strings.TrimSpace(c.out.String()))
		if err != nil {
			t.Errorf("process %d failed: %v", i, err)
		}
		if strings.Contains(c.out.String(), "locked") {
			t.Errorf("process %d saw a locked database", i)
		}
	}
	ais, err := s.GetAllACIInfos(nil, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, ai := range ais {
		if ai.Name != "example.com/shared" {
			t.Errorf("a private image survived its owner: %s %s", ai.Name, ai.BlobKey)
		}
	}
	if v, err := s.Verify(); err != nil || !v.OK() {
		t.Fatalf("Verify after the stress: %v %v", v.Problems, err)
	}
}
