package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"github.com/imagestore/imagestore/render"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestExtractMatchesGNUTar builds a root filesystem with the entries real
// images have (absolute symlinks as in busybox and docker2aci images, hard
// links, a sparse file, a FIFO, sticky and setgid directories, odd modes),
// packs it with GNU tar in each of its formats, and checks that extract
// gives, entry by entry, what `tar -xp` gives.
func TestExtractMatchesGNUTar(t *testing.T) {
	if _, err := exec.LookPath("tar"); err != nil {
		t.Skip("GNU tar is not installed")
	}
	if out, err := exec.Command("tar", "--version").Output(); err != nil || !bytes.Contains(out, []byte("GNU tar")) {
		t.Skip("tar is not GNU tar")
	}
	src := t.TempDir()
	buildRootfs(t, filepath.Join(src, "rootfs"))
	if err := os.WriteFile(filepath.Join(src, "manifest"), []byte(`{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/x"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"gnu", "oldgnu", "posix", "ustar"} {
		t.Run(format, func(t *testing.T) {
			work := t.TempDir()
			aci := filepath.Join(work, "image.aci")
			args := []string{"--format=" + format, "-C", src, "-cf", aci, "manifest", "rootfs"}
			if format != "ustar" { // ustar cannot hold sparse files
				args = append([]string{"-S"}, args...)
			}
			runTool(t, "tar", args...)

			ref := filepath.Join(work, "ref")
			if err := os.Mkdir(ref, 0o755); err != nil {
				t.Fatal(err)
			}
			runTool(t, "tar", "-xpf", aci, "-C", ref)

			f, err := os.Open(aci)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			got := filepath.Join(work, "got")
			if _, err := render.ExtractRootfs(f, got, render.Options{}); err != nil {
				t.Fatalf("extract: %v", err)
			}
			want := describeTree(t, filepath.Join(ref, "rootfs"))
			have := describeTree(t, got)
			if len(want) < 10 {
				t.Fatalf("reference tree has only %d entries", len(want))
			}
			for name, w := range want {
				if h, ok := have[name]; !ok {
					t.Errorf("%s: missing (tar -xp has %s)", name, w)
				} else if h != w {
					t.Errorf("%s:\n  extract: %s\n  tar -xp: %s", name, h, w)
				}
			}
			for name := range have {
				if _, ok := want[name]; !ok {
					t.Errorf("%s: extra entry", name)
				}
			}
		})
	}
}

func runTool(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// buildRootfs makes a root filesystem with every kind of entry extract
// handles, each with its own mode and time.
func buildRootfs(t *testing.T, root string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"bin", "etc", "tmp", "srv/shared", "usr/lib", "dev", "empty"} {
		must(os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	must(os.WriteFile(filepath.Join(root, "bin/busybox"), bytes.Repeat([]byte("busybox"), 3000), 0o755))
	must(os.Symlink("/bin/busybox", filepath.Join(root, "bin/sh")))         // absolute, as in busybox and Alpine
	must(os.Symlink("/proc/self/fd/0", filepath.Join(root, "dev/stdin")))   // as in every docker2aci image
	must(os.Symlink("../../../outside", filepath.Join(root, "usr/lib/up"))) // climbs out; harmless as a link
	must(os.Symlink("busybox", filepath.Join(root, "bin/ash")))
	must(os.Link(filepath.Join(root, "bin/busybox"), filepath.Join(root, "bin/ls")))
	must(os.WriteFile(filepath.Join(root, "etc/shadow"), []byte("root:*:1::::::\n"), 0o640))
	must(os.WriteFile(filepath.Join(root, "etc/empty"), nil, 0o600))
	must(os.WriteFile(filepath.Join(root, "bin/su"), []byte("su"), 0o755))
	must(os.Chmod(filepath.Join(root, "bin/su"), 0o4755|fs.ModeSetuid))
	must(syscall.Mkfifo(filepath.Join(root, "tmp/fifo"), 0o620))

	sparse := filepath.Join(root, "usr/lib/sparse.db")
	f, err := os.Create(sparse)
	must(err)
	_, err = f.WriteAt([]byte("head"), 0)
	must(err)
	_, err = f.WriteAt([]byte("middle"), 3<<20)
	must(err)
	must(f.Truncate(6 << 20))
	must(f.Close())

	must(os.Chmod(filepath.Join(root, "tmp"), 0o777|fs.ModeSticky))
	must(os.Chmod(filepath.Join(root, "srv/shared"), 0o770|fs.ModeSetgid))
	must(os.Chmod(filepath.Join(root, "empty"), 0o500))
	must(os.Chmod(root, 0o751))
	if os.Geteuid() == 0 {
		must(os.Lchown(filepath.Join(root, "etc/shadow"), 0, 42))
		must(os.Lchown(filepath.Join(root, "srv/shared"), 1000, 1000))
		must(os.Lchown(filepath.Join(root, "bin/ash"), 7, 7))
	}

	// Times last, deepest first, each entry its own.
	var paths []string
	must(filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		paths = append(paths, p)
		return err
	}))
	for i := len(paths) - 1; i >= 0; i-- {
		mt := time.Date(2019, 5, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Hour)
		ts := unix.NsecToTimespec(mt.UnixNano())
		must(unix.UtimesNanoAt(unix.AT_FDCWD, paths[i], []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW))
	}
}

// describeTree maps each path below root ("." for root) to a line with
// what extract must reproduce: type, mode, owner, time, size and content
// hash, link target, hard-link group.
func describeTree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	inodes := map[uint64]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		line := fmt.Sprintf("%v uid=%d gid=%d mtime=%s", fi.Mode(), st.Uid, st.Gid, fi.ModTime().UTC().Format(time.RFC3339Nano))
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			line += " -> " + target
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" size=%d sha256=%x", fi.Size(), sha256.Sum256(b))
			if first, ok := inodes[st.Ino]; ok {
				line += " hardlink-of=" + first
			} else {
				inodes[st.Ino] = rel
			}
			if st.Blocks*512 < fi.Size()/2 {
				line += " sparse"
			}
		}
		out[rel] = line
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestActoolImage takes an image made by appc's own actool (found through
// $IMAGESTORE_ACTOOL or on $PATH; CI builds it) from the tree of
// TestExtractMatchesGNUTar, and runs it through the command as an operator
// would: import, verify, export, extract, rm. The export must be the tar
// actool wrote, and the extraction what tar -xp makes of it.
func TestActoolImage(t *testing.T) {
	actool := os.Getenv("IMAGESTORE_ACTOOL")
	if actool == "" {
		var err error
		if actool, err = exec.LookPath("actool"); err != nil {
			t.Skip("actool not found: set $IMAGESTORE_ACTOOL (.ci/run builds it)")
		}
	}
	work := t.TempDir()
	src := filepath.Join(work, "src")
	buildRootfs(t, filepath.Join(src, "rootfs"))
	manifest := `{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/actool","labels":[{"name":"version","value":"1.0"},{"name":"os","value":"linux"},{"name":"arch","value":"amd64"}]}`
	if err := os.WriteFile(filepath.Join(src, "manifest"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	aci := filepath.Join(work, "image.aci")
	runTool(t, actool, "build", src, aci)

	cli := func(args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		args = append([]string{"--dir", filepath.Join(work, "store"), "-q"}, args...)
		if code := run(args, strings.NewReader(""), &stdout, &stderr); code != exitOK {
			t.Fatalf("imagestore %s: exit %d: %s", strings.Join(args, " "), code, stderr.String())
		}
		return strings.TrimSpace(stdout.String())
	}
	key := cli("import", aci)
	cli("verify", key)
	exported := filepath.Join(work, "exported.aci")
	cli("export", key, exported)
	ref := filepath.Join(work, "ref")
	if err := os.Mkdir(ref, 0o755); err != nil {
		t.Fatal(err)
	}
	// actool writes gzip; tar -xpf detects it, and the exported tar is
	// actool's, decompressed.
	runTool(t, "tar", "-xpf", aci, "-C", ref)
	runTool(t, "sh", "-c", "gzip -dc < \"$0\" | cmp - \"$1\"", aci, exported)
	got := filepath.Join(work, "got")
	cli("extract", "example.com/actool:1.0", got)
	want, have := describeTree(t, filepath.Join(ref, "rootfs")), describeTree(t, got)
	for name, w := range want {
		if strings.HasSuffix(w, " sparse") {
			w = strings.TrimSuffix(w, " sparse") // actool does not write sparse files
		}
		if h := strings.TrimSuffix(have[name], " sparse"); h != w {
			t.Errorf("%s:\n  extract: %s\n  tar -xp: %s", name, have[name], w)
		}
	}
	if len(have) != len(want) {
		t.Errorf("extract made %d entries, tar -xp %d", len(have), len(want))
	}
	if removed := cli("rm", key); removed != key {
		t.Fatalf("rm printed %q, want %q", removed, key)
	}
	cli("verify")
}
