// TestMain, the child-process roles, and two processes sharing a store.

package store

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Tests that need more than one process re-run this test binary as a child
// with IMAGESTORE_TEST_CHILD naming what to do (see TestMain).
const childEnv = "IMAGESTORE_TEST_CHILD"

func TestMain(m *testing.M) {
	if role := os.Getenv(childEnv); role != "" {
		if err := runChild(role, os.Args[len(os.Args)-1]); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runChild plays one user of the store at dir.
func runChild(role, dir string) error {
	switch role {
	case "writer":
		return childWriter(dir)
	case "crash":
		return childCrash(dir)
	case "stress":
		return childStress(dir)
	case "shared-user":
		return childSharedUser(dir)
	case "contend":
		return childContend(dir)
	case "powercut":
		return childPowerCut(dir)
	case "opener":
		return childOpener(dir)
	}
	return fmt.Errorf("unknown child role %q", role)
}

// childWriter writes the shared image and ten of its own, reads each back,
// removes half of its own, and prints the keys it kept.
func childWriter(dir string) error {
	s, err := NewStore(dir)
	if err != nil {
		return err
	}
	defer s.Close()
	pid := os.Getpid()
	shared, err := aciBytes("example.com/shared")
	if err != nil {
		return err
	}
	if _, err := s.WriteACI(bytes.NewReader(shared), ACIFetchInfo{}); err != nil {
		return err
	}
	for i := 0; i < 10; i++ {
		img, err := aciBytes("example.com/child", fmt.Sprintf("pid=%d", pid), fmt.Sprintf("i=%d", i))
		if err != nil {
			return err
		}
		key, err := s.WriteACI(bytes.NewReader(img), ACIFetchInfo{})
		if err != nil {
			return err
		}
		if err := readBack(s, key, img); err != nil {
			return err
		}
		if i%2 == 1 {
			if err := s.RemoveACI(key); err != nil {
				return err
			}
			continue
		}
		fmt.Println(key)
	}
	return nil
}

// childCommand returns the command that runs this test binary as a child
// playing role on the store at dir, with env ("NAME=value") added to its
// environment. "-test.run=^$" keeps the child from running any test should
// TestMain not catch the role; the store directory is the last argument.
// The caller sets the child's stdio and starts it.
func childCommand(role, dir string, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$", dir)
	cmd.Env = append(append(os.Environ(), childEnv+"="+role), env...)
	return cmd
}

// startChild starts this test binary as a child playing role on the store
// at dir, with env added to its environment, and returns its stdout.
func startChild(t *testing.T, role, dir string, env ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := childCommand(role, dir, env...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &out
}

func TestTwoProcessesShareAStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	s, err := NewStore(dir) // this process holds the store open too
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c1, out1 := startChild(t, "writer", dir)
	c2, out2 := startChild(t, "writer", dir)
	shared := writeImage(t, s, makeACI(t, "example.com/shared"), false)
	if err := c1.Wait(); err != nil {
		t.Fatalf("child 1: %v", err)
	}
	if err := c2.Wait(); err != nil {
		t.Fatalf("child 2: %v", err)
	}
	kept := strings.Fields(out1.String() + out2.String())
	if len(kept) != 10 {
		t.Fatalf("children kept %d images, want 10: %v", len(kept), kept)
	}
	ais, err := s.GetAllACIInfos(nil, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(ais) != 11 {
		t.Fatalf("store holds %d images, want 10 from the children and the shared one", len(ais))
	}
	for _, k := range append(kept, shared) {
		if !s.HasFullKey(k) {
			t.Errorf("%s missing", k)
		}
	}
	if got := tmpEntries(t, s); len(got) != 0 {
		t.Fatalf("tmp/ holds %v", got)
	}
}
