// The contention benchmark: four processes looping a fetcher's life on one store.

package store

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/appc/spec/schema/types"
)

// childContend runs IMAGESTORE_LOOPS loops of a fetcher's life on its own
// tiny image: write, resolve, read to the end, GetACI, remove.
func childContend(dir string) error {
	loops, err := strconv.Atoi(os.Getenv("IMAGESTORE_LOOPS"))
	if err != nil {
		return err
	}
	s, err := NewStore(dir)
	if err != nil {
		return err
	}
	defer s.Close()
	name := fmt.Sprintf("example.com/contend-%d", os.Getpid())
	imgs := make([][]byte, loops)
	for i := range imgs {
		if imgs[i], err = aciBytes(name, fmt.Sprintf("version=%d", i)); err != nil {
			return err
		}
	}
	for i, img := range imgs {
		key, err := s.WriteACI(bytes.NewReader(img), ACIFetchInfo{})
		if err != nil {
			return err
		}
		if _, err := s.ResolveKey(key[:19]); err != nil {
			return err
		}
		rc, err := s.ReadStream(key)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return err
		}
		if _, err := s.GetACI(types.ACIdentifier(name), types.Labels{{Name: "version", Value: strconv.Itoa(i)}}); err != nil {
			return err
		}
		if err := s.RemoveACI(key); err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkContention4x200 times 4 processes running 200 loops each on one
// store (the contention workload); b.N rounds.
func BenchmarkContention4x200(b *testing.B) {
	for i := 0; i < b.N; i++ {
		dir := filepath.Join(b.TempDir(), "store")
		s, err := NewStore(dir)
		if err != nil {
			b.Fatal(err)
		}
		s.Close()
		var cmds []*exec.Cmd
		start := time.Now()
		for p := 0; p < 4; p++ {
			cmd := childCommand("contend", dir, "IMAGESTORE_LOOPS=200")
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			cmds = append(cmds, cmd)
		}
		for _, cmd := range cmds {
			if err := cmd.Wait(); err != nil {
				b.Fatalf("contending process: %v", err)
			}
		}
		b.ReportMetric(time.Since(start).Seconds(), "s/round")
	}
}
