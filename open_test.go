// Tests of processes opening one store at the same instant.

package store

import (
	"database/sql"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Environment of the "opener" child: the instant to open at (Unix
// nanoseconds), so that several children call NewStore together, and
// whether to hold the store open until standard input closes.
const (
	openAtEnv = "IMAGESTORE_TEST_OPEN_AT"
	holdEnv   = "IMAGESTORE_TEST_HOLD"
)

// childOpener opens the store at the given instant, prints "opened", and
// either closes it at once or keeps it open until its standard input
// closes: then the test decides how long each opener stays, so an opener
// that waits for another to close the store cannot pass unnoticed.
func childOpener(dir string) error {
	at, err := strconv.ParseInt(os.Getenv(openAtEnv), 10, 64)
	if err != nil {
		return fmt.Errorf("bad %s: %v", openAtEnv, err)
	}
	time.Sleep(time.Until(time.Unix(0, at)))
	s, err := NewStore(dir)
	if err != nil {
		return err
	}
	fmt.Println("opened")
	if os.Getenv(holdEnv) != "" {
		io.Copy(io.Discard, os.Stdin)
	}
	return s.Close()
}

// openTogether starts n openers of dir that call NewStore at the same
// instant and waits until every one has opened (or failed). With hold,
// every opener keeps the store open until all have opened; then they close.
func openTogether(t *testing.T, dir string, n int, hold bool) {
	t.Helper()
	at := time.Now().Add(300 * time.Millisecond).UnixNano()
	type opener struct {
		cmd   *exec.Cmd
		stdin io.WriteCloser
		out   *lineWaiter
	}
	var ops []opener
	for i := 0; i < n; i++ {
		cmd := childCommand("opener", dir, fmt.Sprintf("%s=%d", openAtEnv, at))
		if hold {
			cmd.Env = append(cmd.Env, holdEnv+"=1")
		}
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		out := newLineWaiter()
		cmd.Stdout = out
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ops = append(ops, opener{cmd, stdin, out})
		defer func() {
			stdin.Close()
			if err := cmd.Wait(); err != nil {
				t.Errorf("opener %d: %v: %s", i, err, stderr.String())
			}
		}()
	}
	// With hold, every opener must open while all the others still hold
	// the store: none may wait for another to close. The bound is far below the 30 s
	// that a waiting opener gives up after, and far above an open's cost.
	for i, op := range ops {
		if !op.out.wait("opened", 20*time.Second) {
			t.Errorf("opener %d did not open while the others held the store open", i)
		}
	}
}

// TestConcurrentOpenersOfANewStore: several processes opening an empty
// directory at the same instant all succeed.
func TestConcurrentOpenersOfANewStore(t *testing.T) {
	rounds := 20 // the race it guards against was seen in about 1 round in 8
	if *long {
		rounds = 100
	}
	for r := 0; r < rounds; r++ {
		dir := filepath.Join(t.TempDir(), "store")
		openTogether(t, dir, 2+r%3, r%2 == 0)
		if t.Failed() {
			t.Fatalf("round %d failed", r)
		}
		s, err := NewStore(dir)
		if err != nil {
			t.Fatal(err)
		}
		if v, err := schemaVersion(s.db.readers); err != nil || v != dbVersion {
			t.Fatalf("schema version %d, %v; want %d", v, err, dbVersion)
		}
		s.Close()
	}
}

// TestConcurrentOpenersMigrateOnce: several processes opening an old store
// at once migrate it once, after one backup of the old schema. Those that
// keep it open do not make the others wait (hold); those that close at once
// let the others take the lock after the migration, and these must see
// that it is done (no hold).
func TestConcurrentOpenersMigrateOnce(t *testing.T) {
	rounds := 6
	if *long {
		rounds = 30
	}
	for r := 0; r < rounds; r++ {
		dir := openV1Copy(t)
		openTogether(t, dir, 4, r%2 == 0)
		if t.Failed() {
			t.Fatalf("round %d failed", r)
		}
		backups, _ := filepath.Glob(filepath.Join(dir, "db-backups", "store-*.db"))
		if len(backups) != 1 {
			t.Fatalf("round %d: %d backups, want 1: %v", r, len(backups), backups)
		}
		if !strings.HasSuffix(backups[0], "-v1.db") {
			t.Errorf("backup %s is not named for version 1", backups[0])
		}
		b := sql.OpenDB(connector{dsn: dsn(backups[0], readConn)})
		v, err := schemaVersion(b)
		b.Close()
		if err != nil || v != 1 {
			t.Errorf("backup holds schema version %d (%v), want 1", v, err)
		}
	}
}

// lineWaiter is an io.Writer that lets a test wait for a line.
type lineWaiter struct {
	lines chan string
	buf   []byte
}

func newLineWaiter() *lineWaiter { return &lineWaiter{lines: make(chan string, 64)} }

func (w *lineWaiter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := strings.IndexByte(string(w.buf), '\n')
		if i < 0 {
			return len(p), nil
		}
		select {
		case w.lines <- string(w.buf[:i]):
		default: // nobody reads that many lines; drop
		}
		w.buf = w.buf[i+1:]
	}
}

// wait reports whether line was written within d.
func (w *lineWaiter) wait(line string, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case l := <-w.lines:
			if l == line {
				return true
			}
		case <-timer.C:
			return false
		}
	}
}
