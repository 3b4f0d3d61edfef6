package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/appc/spec/schema/types"
	store "github.com/imagestore/imagestore"
)

// childEnv, when set, makes the program a child of the benchmark instead:
// its value names the role ("ingest" or "contend"), and the arguments are
// the role's, not flags. The benchmark re-executes its own binary.
const childEnv = "IMAGESTORE_BENCH_CHILD"

// childReport is what a child prints on stdout, as one JSON object.
type childReport struct {
	VmHWMKiB   int64   `json:"vmhwm_kib,omitempty"`
	Errors     int     `json:"errors"`
	FirstError string  `json:"first_error,omitempty"`
	Seconds    float64 `json:"seconds"`
}

// childMain runs a child role and returns its exit status.
func childMain(role string, args []string, stdout, stderr io.Writer) int {
	var rep childReport
	var err error
	t0 := time.Now()
	switch role {
	case "ingest":
		err = childIngest(args)
	case "contend":
		rep, err = childContend(args)
	case "convert":
		err = childConvert(args)
	default:
		err = fmt.Errorf("unknown child role %q", role)
	}
	if err != nil {
		fmt.Fprintf(stderr, "imagestore-bench child %s: %v\n", role, err)
		return exitFail
	}
	rep.Seconds = time.Since(t0).Seconds()
	rep.VmHWMKiB = vmHWM()
	if err := json.NewEncoder(stdout).Encode(rep); err != nil {
		return exitFail
	}
	return exitOK
}

// childIngest opens the store args[0] and writes the image file args[1].
func childIngest(args []string) error {
	if len(args) != 2 {
		return errors.New("want STORE-DIR IMAGE-FILE")
	}
	s, err := store.NewStore(args[0])
	if err != nil {
		return err
	}
	f, err := os.Open(args[1])
	if err != nil {
		s.Close()
		return err
	}
	_, err = s.WriteACI(f, store.ACIFetchInfo{})
	f.Close()
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	return err
}

// childContend runs the contention loop of process args[1] on the store
// args[0], args[2] times: write its own tiny image, resolve its key from a
// 12-hex prefix, read it to the end, find it with GetACI, remove it. It
// counts errors instead of stopping at the first.
func childContend(args []string) (childReport, error) {
	var rep childReport
	if len(args) != 3 {
		return rep, errors.New("want STORE-DIR ID LOOPS")
	}
	loops, err := strconv.Atoi(args[2])
	if err != nil {
		return rep, err
	}
	name := "example.com/contend-" + args[1]
	imgs := make([][]byte, loops)
	for i := range imgs {
		if imgs[i], err = tinyImage(name, fmt.Sprintf("version=%d", i), "os=linux"); err != nil {
			return rep, err
		}
	}
	s, err := store.NewStore(args[0])
	if err != nil {
		return rep, err
	}
	defer s.Close()
	fail := func(err error) {
		rep.Errors++
		if rep.FirstError == "" {
			rep.FirstError = err.Error()
		}
	}
	for i, img := range imgs {
		key, err := s.WriteACI(bytes.NewReader(img), store.ACIFetchInfo{})
		if err != nil {
			fail(fmt.Errorf("WriteACI: %w", err))
			continue
		}
		if got, err := s.ResolveKey(key[:len("sha512-")+12]); err != nil || got != key {
			fail(fmt.Errorf("ResolveKey: %q, %v", got, err))
		}
		if rc, err := s.ReadStream(key); err != nil {
			fail(fmt.Errorf("ReadStream: %w", err))
		} else {
			n, err := io.Copy(io.Discard, rc)
			rc.Close()
			if err != nil || n != int64(len(img)) {
				fail(fmt.Errorf("read stream: %d bytes, %v", n, err))
			}
		}
		labels := types.Labels{{Name: "version", Value: strconv.Itoa(i)}}
		if got, err := s.GetACI(types.ACIdentifier(name), labels); err != nil || got != key {
			fail(fmt.Errorf("GetACI: %q, %v", got, err))
		}
		if err := s.RemoveACI(key); err != nil {
			fail(fmt.Errorf("RemoveACI: %w", err))
		}
	}
	return rep, nil
}

// vmHWM is this process's peak resident set in KiB, from /proc/self/status
// (Linux); 0 where that is not available.
func vmHWM() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// child is a started child process of the benchmark.
type child struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	stderr bytes.Buffer
}

// startChild re-executes this binary in role with args.
func startChild(role string, args ...string) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own binary: %w", err)
	}
	c := &child{cmd: exec.Command(self, args...)}
	c.cmd.Env = append(os.Environ(), childEnv+"="+role)
	c.cmd.Stdout, c.cmd.Stderr = &c.stdout, &c.stderr
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start child: %w", err)
	}
	return c, nil
}

// wait waits for the child and decodes its report.
func (c *child) wait() (childReport, error) {
	var rep childReport
	if err := c.cmd.Wait(); err != nil {
		return rep, fmt.Errorf("child: %v: %s", err, strings.TrimSpace(c.stderr.String()))
	}
	if err := json.Unmarshal(c.stdout.Bytes(), &rep); err != nil {
		return rep, fmt.Errorf("child report %q: %w", c.stdout.String(), err)
	}
	return rep, nil
}
