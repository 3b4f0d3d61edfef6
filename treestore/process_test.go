// process_test.go holds the tests that run the tree store in several
// processes: renders of one tree racing, and renders cut by a power cut
// on the FUSE test filesystem.
package treestore_test

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	store "github.com/imagestore/imagestore"
	"github.com/imagestore/imagestore/treestore"
)

// TestMain runs the child side of these tests when the test binary is
// started as a child.
func TestMain(m *testing.M) {
	if os.Getenv("TREESTORE_CHILD") == "render" {
		if err := childRender(os.Getenv("TREESTORE_DIR"), os.Getenv("TREESTORE_KEY"), os.Getenv("TREESTORE_GO")); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// childRender renders key in the store at dir, once the file goFile
// exists (so that several children start together), and prints the id
// and the hash Render returned ("-" for none).
func childRender(dir, key, goFile string) error {
	for goFile != "" {
		if _, err := os.Stat(goFile); err == nil {
			break
		}
		time.Sleep(time.Millisecond)
	}
	s, err := store.NewStore(dir)
	if err != nil {
		return err
	}
	defer s.Close()
	ts, err := treestore.NewStore(dir, s)
	if err != nil {
		return err
	}
	id, hash, err := ts.Render(key, false)
	if err != nil {
		return err
	}
	if hash == "" {
		hash = "-"
	}
	fmt.Println(id, hash)
	return nil
}

func startRender(t *testing.T, dir, key, goFile string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "TREESTORE_CHILD=render", "TREESTORE_DIR="+dir, "TREESTORE_KEY="+key, "TREESTORE_GO="+goFile)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &out
}

// bigChain is a base of many files and an image on it, so that a render
// takes a while.
func bigChain(seed int64, files, size int) (base, top *aciImage) {
	rnd := rand.New(rand.NewSource(seed))
	base = &aciImage{file: "base.aci", manifest: manifest("example.com/base", "1.0")}
	for d := 0; d < 10; d++ {
		base.entries = append(base.entries, dirEnt(fmt.Sprintf("d%d", d), 0o755))
	}
	for i := 0; i < files; i++ {
		body := make([]byte, size)
		rnd.Read(body)
		base.entries = append(base.entries, fileEnt(fmt.Sprintf("d%d/f%d", i%10, i), 0o644, string(body)))
	}
	top = &aciImage{file: "top.aci", manifest: manifest("example.com/top", "1.0", depByName("example.com/base", "version", "1.0")),
		entries: []tarEntry{fileEnt("app", 0o755, "app"), dirEnt("d0", 0o700), fileEnt("d0/f0", 0o600, "override")}}
	return base, top
}

// Processes that render the same image at once render it once: one gets
// the hash, the others wait for it and find the tree rendered.
func TestRenderOnceAcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir, s, ts := openStores(t)
	base, top := bigChain(1, 200, 8<<10)
	importImages(t, s, base, top)
	goFile := filepath.Join(t.TempDir(), "go")
	const n = 4
	var cmds []*exec.Cmd
	var outs []*bytes.Buffer
	for range n {
		cmd, out := startRender(t, dir, top.key(), goFile)
		cmds, outs = append(cmds, cmd), append(outs, out)
	}
	time.Sleep(200 * time.Millisecond) // let them all reach the start line
	if err := os.WriteFile(goFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	rendered, ids := 0, map[string]bool{}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child %d: %v\n%s", i, err, outs[i])
		}
		f := strings.Fields(outs[i].String())
		if len(f) != 2 {
			t.Fatalf("child %d printed %q", i, outs[i])
		}
		ids[f[0]] = true
		if f[1] != "-" {
			rendered++
		}
	}
	if rendered != 1 || len(ids) != 1 {
		t.Fatalf("%d of %d processes rendered, into %d tree(s); want 1 render of 1 tree", rendered, n, len(ids))
	}
	for id := range ids {
		if _, err := ts.Check(id); err != nil {
			t.Error(err)
		}
		wantFile(t, ts.GetRootFS(id), "d0/f0", "override")
	}
}
