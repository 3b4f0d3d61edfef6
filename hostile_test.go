// Tests of hostile images: xz dictionaries, decompression bombs, tar header bombs.

package store

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ulikunitz/xz"
)

// withDictByte returns a copy of the single-block xz stream b whose block
// header asks for the dictionary size code d, with the header CRC fixed.
func withDictByte(t *testing.T, b []byte, d byte) []byte {
	t.Helper()
	out := append([]byte{}, b...)
	h := out[12 : 12+(int(out[12])+1)*4]
	i := bytes.Index(h, []byte{0x21, 0x01}) // LZMA2 filter, one byte of props
	if i < 0 {
		t.Fatal("no LZMA2 filter in the block header")
	}
	h[i+2] = d
	binary.LittleEndian.PutUint32(h[len(h)-4:], crc32.ChecksumIEEE(h[:len(h)-4]))
	return out
}

func TestXzDictionaryLimit(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	good := readFixture(t, "hello.aci.xz")
	img := readFixture(t, "hello.aci")

	var multi bytes.Buffer
	w, err := xz.WriterConfig{BlockSize: 1024}.NewWriter(&multi)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(img)
	w.Close()

	twoStreams := append(append(append([]byte{}, good...), 0, 0, 0, 0), good...)
	cases := []struct {
		name string
		in   []byte
		ok   bool
		tar  []byte // the uncompressed bytes, when ok
	}{
		{"fixture", good, true, img},
		{"64 MiB dictionary (xz -9)", withDictByte(t, good, 28), true, img},
		{"several blocks", multi.Bytes(), true, img},
		// Valid xz: the image is everything it holds, a tar followed by
		// data after its end-of-archive marker.
		{"two streams with padding", twoStreams, true, append(append([]byte{}, img...), img...)},
		{"128 MiB dictionary", withDictByte(t, good, 30), false, nil},
		{"4 GiB dictionary", withDictByte(t, good, 40), false, nil},
		{"huge dictionary in a second stream", append(append([]byte{}, good...), withDictByte(t, good, 40)...), false, nil},
		{"no index", good[:len(good)-12], false, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			key, err := s.WriteACI(bytes.NewReader(c.in), ACIFetchInfo{})
			if c.ok {
				if err != nil {
					t.Fatalf("WriteACI: %v", err)
				}
				if want := keyOf(c.tar); key != want {
					t.Fatalf("key %s, want %s", key, want)
				}
				return
			}
			if !errors.Is(err, ErrInvalidImage) {
				t.Fatalf("WriteACI = %q, %v; want ErrInvalidImage", key, err)
			}
		})
	}
	// The dictionary error says what is wrong.
	_, err = s.WriteACI(bytes.NewReader(withDictByte(t, good, 40)), ACIFetchInfo{})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("dictionary")) {
		t.Fatalf("error %v does not name the dictionary", err)
	}
}

// TestBombOnFullDisk writes images (gzip, xz) that expand beyond the free
// space of a small filesystem: a clear error, nothing left behind, and the
// store keeps working. It needs root to mount a tmpfs.
func TestBombOnFullDisk(t *testing.T) {
	dir := mountSmallFS(t, 4<<20)
	s, err := NewStore(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fillFS(t, dir, 2<<20) // some filesystems (xfs) are larger than asked
	bombTar := makeTar(t,
		tarEntry{"manifest", manifestJSON("example.com/bomb")},
		tarEntry{"rootfs/zeros", make([]byte, 8<<20)}, // twice the free space
	)
	// gzip writes on the decoder's goroutine, xz on the hasher's: both
	// must stop at the first failed write and report it.
	for name, bomb := range map[string][]byte{"gzip": gzipBytes(t, bombTar), "xz": xzBytes(t, bombTar)} {
		if len(bomb) > 64<<10 {
			t.Fatalf("the %s bomb is %d bytes compressed", name, len(bomb))
		}
		_, err = s.WriteACI(bytes.NewReader(bomb), ACIFetchInfo{})
		if !errors.Is(err, ErrDiskFull) || !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "disk is full") || errors.Is(err, ErrInvalidImage) {
			t.Fatalf("WriteACI of a %s bomb on a full disk = %v", name, err)
		}
		if left := tmpEntries(t, s); len(left) != 0 {
			t.Fatalf("temp files left after the %s bomb: %v", name, left)
		}
	}
	if _, err := s.WriteACI(bytes.NewReader(readFixture(t, "hello.aci.gz")), ACIFetchInfo{}); err != nil {
		t.Fatalf("the store no longer works after a full disk: %v", err)
	}
}

// TestTarHeaderBombs: an archive of very many headers is streamed (valid,
// and accepted); an oversized PAX header is refused, not buffered.
func TestTarHeaderBombs(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	m := manifestJSON("example.com/many")
	tw.WriteHeader(&tar.Header{Name: "manifest", Mode: 0o644, Size: int64(len(m)), Typeflag: tar.TypeReg})
	tw.Write(m)
	for i := 0; i < 20000; i++ {
		tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("rootfs/d%05d/", i), Mode: 0o755, Typeflag: tar.TypeDir})
	}
	tw.Close()
	if _, err := s.WriteACI(bytes.NewReader(gzipBytes(t, buf.Bytes())), ACIFetchInfo{}); err != nil {
		t.Fatalf("20000 headers: %v", err)
	}

	// A PAX extended header claiming 64 MiB of records.
	var pax bytes.Buffer
	hdr := make([]byte, 512)
	copy(hdr, "PaxHeaders/x")
	copy(hdr[100:], "0000644\x00")
	copy(hdr[124:], fmt.Sprintf("%011o\x00", 64<<20))
	hdr[156] = 'x'
	copy(hdr[257:], "ustar\x0000")
	sum := 0
	copy(hdr[148:156], "        ")
	for _, c := range hdr {
		sum += int(c)
	}
	copy(hdr[148:], fmt.Sprintf("%06o\x00 ", sum))
	pax.Write(hdr)
	pax.Write(bytes.Repeat([]byte("9 a=bbbb\n"), 1<<18)) // 2.3 MB of records
	_, err := s.WriteACI(bytes.NewReader(pax.Bytes()), ACIFetchInfo{})
	if !errors.Is(err, ErrInvalidImage) || !errors.Is(err, tar.ErrFieldTooLong) {
		t.Fatalf("oversized PAX header: %v", err)
	}
	if left := tmpEntries(t, s); len(left) != 0 {
		t.Fatalf("temp files left: %v", left)
	}
}
