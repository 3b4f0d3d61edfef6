// Tests of a store shared between users through a group.

package store

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

const (
	sharedGID = 4242 // the group both users share (no /etc/group entry needed)
	otherUID  = 4243 // a second, unprivileged member of that group
)

// childSharedUser runs as otherUID: it reads the image root wrote, writes
// its own, records a remote and runs GC, all in root's store.
func childSharedUser(dir string) error {
	s, err := NewStore(dir)
	if err != nil {
		return err
	}
	defer s.Close()
	key := os.Getenv("IMAGESTORE_ROOT_KEY")
	rc, err := s.ReadStream(key)
	if err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return err
	}
	rc.Close()
	img, err := aciBytes("example.com/other-user")
	if err != nil {
		return err
	}
	mine, err := s.WriteACI(bytes.NewReader(img), ACIFetchInfo{})
	if err != nil {
		return err
	}
	if err := s.WriteRemote(&Remote{ACIURL: "https://example.com/other.aci", BlobKey: mine}); err != nil {
		return err
	}
	if _, err := s.GC(GCOptions{Orphans: true}); err != nil {
		return err
	}
	fmt.Println(mine)
	return nil
}

func TestSharedStoreBetweenUsers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a child process as another user")
	}
	base := t.TempDir()
	// The other user must reach the store and run this test binary.
	for p := base; p != "/" && p != os.TempDir(); p = filepath.Dir(p) {
		os.Chmod(p, 0o755)
	}
	bin := filepath.Join(base, "store.test")
	if b, err := os.ReadFile(os.Args[0]); err != nil || os.WriteFile(bin, b, 0o755) != nil {
		t.Fatal("copy test binary:", err)
	}
	dir := filepath.Join(base, "store")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// An administrator gives the store directory to the group; what the
	// store creates below it inherits the group through the setgid bit.
	if err := os.Chown(dir, 0, sharedGID); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, dirPerm); err != nil {
		t.Fatal(err)
	}
	s, err := NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rootKey := writeImage(t, s, makeACI(t, "example.com/root"), false)

	cmd := childCommand("shared-user", dir, "IMAGESTORE_ROOT_KEY="+rootKey)
	cmd.Path, cmd.Args[0] = bin, bin // the copy that the other user can run
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: otherUID, Gid: sharedGID}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the other user failed: %v\n%s", err, out)
	}
	theirs := strings.TrimSpace(string(out))
	if !s.HasFullKey(theirs) {
		t.Fatalf("root does not see the other user's image %q", theirs)
	}
	// Root removes the other user's image: the group modes allow it anyway,
	// and every file and directory is the group's, whoever made it.
	if err := s.RemoveACI(theirs); err != nil {
		t.Fatal(err)
	}
	var owners []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid == otherUID {
			owners = append(owners, p)
		}
		if st.Gid != sharedGID {
			t.Errorf("%s: group %d, want %d", p, st.Gid, sharedGID)
		}
		want := fs.FileMode(filePerm)
		if d.IsDir() {
			want = dirPerm | fs.ModeDir
		}
		if fi.Mode()&(fs.ModePerm|fs.ModeSetgid|fs.ModeDir) != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(owners) == 0 {
		t.Fatal("the other user created nothing: the test proves nothing")
	}
}
