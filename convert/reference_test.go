package convert

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
)

// rec is what the comparison looks at for one path of a rootfs.
type rec struct {
	typ      byte // 'f', 'd', 'l' (symlink), 'p' (fifo)
	mode     int64
	uid, gid int
	size     int64
	sum      string
	target   string // symlinks
	mtime    int64  // regular files only: directories' change as layers add to them
	links    string // the other paths of the same inode, sorted
}

func (r rec) String() string {
	return fmt.Sprintf("%c mode=%o uid=%d gid=%d size=%d sum=%.12s target=%q mtime=%d links=[%s]",
		r.typ, r.mode, r.uid, r.gid, r.size, r.sum, r.target, r.mtime, r.links)
}

// referenceTree flattens uncompressed layers with GNU tar, independently
// of the converter: for each layer, remove what its whiteouts name from
// the directory (so only lower content goes), then let tar unpack it with
// the whiteout files left out; then walk the result.
func referenceTree(t testing.TB, layers [][]byte) map[string]rec {
	t.Helper()
	if _, err := exec.LookPath("tar"); err != nil {
		t.Skip("no tar(1)")
	}
	root := filepath.Join(t.TempDir(), "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, l := range layers {
		tr := tar.NewReader(bytes.NewReader(l))
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			name := path.Clean(strings.TrimLeft(h.Name, "/"))
			base, d := path.Base(name), path.Dir(name)
			switch {
			case base == ".wh..wh..opq":
				ents, _ := os.ReadDir(filepath.Join(root, d))
				for _, e := range ents {
					os.RemoveAll(filepath.Join(root, d, e.Name()))
				}
			case strings.HasPrefix(base, ".wh..wh."):
			case strings.HasPrefix(base, ".wh."):
				os.RemoveAll(filepath.Join(root, d, base[4:]))
			}
		}
		lf := filepath.Join(t.TempDir(), fmt.Sprintf("layer%d.tar", i))
		if err := os.WriteFile(lf, l, 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("sh", "-c", `umask 022 && tar -x -p --same-owner --numeric-owner --exclude='.wh.*' -f "$1" -C "$2"`, "sh", lf, root)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("tar -x layer %d: %v\n%s", i+1, err, out)
		}
	}
	return walkTree(t, root)
}

func walkTree(t testing.TB, root string) map[string]rec {
	t.Helper()
	out := map[string]rec{}
	inodes := map[uint64][]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel := filepath.ToSlash(must(filepath.Rel(root, p)))
		fi := must(os.Lstat(p))
		st := fi.Sys().(*syscall.Stat_t)
		r := rec{mode: int64(fi.Mode().Perm()), uid: int(st.Uid), gid: int(st.Gid)}
		if fi.Mode()&fs.ModeSetuid != 0 {
			r.mode |= 0o4000
		}
		if fi.Mode()&fs.ModeSetgid != 0 {
			r.mode |= 0o2000
		}
		if fi.Mode()&fs.ModeSticky != 0 {
			r.mode |= 0o1000
		}
		switch {
		case fi.Mode().IsRegular():
			r.typ, r.size, r.mtime = 'f', fi.Size(), fi.ModTime().Unix()
			data := must(os.ReadFile(p))
			r.sum = fmt.Sprintf("%x", sha256.Sum256(data))
			if st.Nlink > 1 {
				inodes[st.Ino] = append(inodes[st.Ino], rel)
			}
		case fi.IsDir():
			r.typ = 'd'
		case fi.Mode()&fs.ModeSymlink != 0:
			r.typ, r.mode = 'l', 0 // symlink permissions mean nothing on Linux
			r.target = must(os.Readlink(p))
		case fi.Mode()&fs.ModeNamedPipe != 0:
			r.typ = 'p'
		default:
			t.Fatalf("%s: unexpected file type %v", rel, fi.Mode())
		}
		out[rel] = r
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, paths := range inodes {
		setLinks(out, paths)
	}
	return out
}

func setLinks(out map[string]rec, paths []string) {
	if len(paths) < 2 {
		return
	}
	sort.Strings(paths)
	for _, p := range paths {
		r := out[p]
		r.links = strings.Join(slices.DeleteFunc(slices.Clone(paths), func(q string) bool { return q == p }), " ")
		out[p] = r
	}
}

// aciTree reads a converted ACI's rootfs into the same records, checking
// the ACI's own structure on the way.
func aciTree(t testing.TB, aci []byte) map[string]rec {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(aci))
	out := map[string]rec{}
	groups := map[string][]string{}
	first := true
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if first && h.Name != "manifest" {
			t.Fatalf("first entry %q, want manifest", h.Name)
		}
		first = false
		if h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: uname %q gname %q, want none", h.Name, h.Uname, h.Gname)
		}
		if h.Name == "manifest" || h.Name == "rootfs" {
			continue
		}
		rel, ok := strings.CutPrefix(h.Name, "rootfs/")
		if !ok {
			t.Fatalf("entry %q outside rootfs", h.Name)
		}
		if _, dup := out[rel]; dup {
			t.Fatalf("%s twice in the ACI", rel)
		}
		if parent := path.Dir(rel); parent != "." && out[parent].typ != 'd' {
			t.Errorf("%s comes before its directory %s", rel, parent)
		}
		r := rec{mode: h.Mode, uid: h.Uid, gid: h.Gid}
		switch h.Typeflag {
		case tar.TypeReg:
			data := must(io.ReadAll(tr))
			r.typ, r.size, r.mtime = 'f', h.Size, h.ModTime.Unix()
			r.sum = fmt.Sprintf("%x", sha256.Sum256(data))
		case tar.TypeDir:
			r.typ = 'd'
		case tar.TypeSymlink:
			r.typ, r.mode, r.target = 'l', 0, h.Linkname
		case tar.TypeFifo:
			r.typ = 'p'
		case tar.TypeLink:
			target := strings.TrimPrefix(h.Linkname, "rootfs/")
			tr, ok := out[target]
			if !ok {
				t.Fatalf("hard link %s to %s, not (yet) in the ACI", rel, target)
			}
			r = tr
			groups[target] = append(groups[target], rel)
		default:
			t.Fatalf("%s: type %c", rel, h.Typeflag)
		}
		out[rel] = r
	}
	for target, paths := range groups {
		setLinks(out, append(paths, target))
	}
	return out
}

// compareTrees reports every difference, entry by entry.
func compareTrees(t testing.TB, got, want map[string]rec) {
	t.Helper()
	for _, p := range sortedKeys(want) {
		g, ok := got[p]
		switch {
		case !ok:
			t.Errorf("%s: missing; want %v", p, want[p])
		case g != want[p]:
			t.Errorf("%s:\n got  %v\n want %v", p, g, want[p])
		}
	}
	for _, p := range sortedKeys(got) {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: not in the reference; got %v", p, got[p])
		}
	}
}

func sumOf(s string) string { return fmt.Sprintf("%x", sha256.Sum256([]byte(s))) }
