// Tests of the SQLite driver settings, transactions and flushes, for either driver.

package store

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestDriverSettings checks that the DSN of whichever driver this build
// uses (db_cgo.go or db_nocgo.go) really configures the connections: the
// same pragmas with either, so that both write the same kind of file.
func TestDriverSettings(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	pragmas := []struct {
		name string
		want string
	}{
		{"journal_mode", "wal"},
		{"synchronous", "1"}, // NORMAL: do flushes the WAL itself
		{"busy_timeout", "30000"},
		{"foreign_keys", "1"},
	}
	for _, h := range []struct {
		name      string
		db        querier
		queryOnly string
	}{
		{"writer", s.db.writer, "0"},
		{"reader", s.db.readers, "1"},
	} {
		for _, p := range append(pragmas, struct{ name, want string }{"query_only", h.queryOnly}) {
			var got string
			if err := h.db.QueryRowContext(background, "PRAGMA "+p.name).Scan(&got); err != nil {
				t.Fatalf("%s: PRAGMA %s: %v", h.name, p.name, err)
			}
			if got != p.want {
				t.Errorf("%s: PRAGMA %s = %q, want %q", h.name, p.name, got, p.want)
			}
		}
	}
}

// TestCommitsAreFlushed checks the order of a write: the commit, then the
// flush of the WAL (outside the write lock), and only then is the image
// reported written; removal flushes before it deletes files; recording
// LastUsed (ReadStream) does not flush at all.
func TestCommitsAreFlushed(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	var (
		mu     sync.Mutex
		events []string
	)
	s.setFailpoints(func(name string) {
		mu.Lock()
		events = append(events, name)
		mu.Unlock()
	})
	take := func() string {
		mu.Lock()
		defer mu.Unlock()
		got := strings.Join(events, " ")
		events = nil
		return got
	}
	key := writeImage(t, s, makeACI(t, "example.com/flushed"), false)
	if got, want := take(), "write-in-transaction db-flushed write-committed"; !strings.HasSuffix(got, want) {
		t.Errorf("WriteACI events %q, want them to end with %q", got, want)
	}
	if err := readBack(s, key, makeACI(t, "example.com/flushed")); err != nil {
		t.Fatal(err)
	}
	if got := take(); strings.Contains(got, "db-flushed") {
		t.Errorf("ReadStream flushed the database: %q", got)
	}
	if err := s.RemoveACI(key); err != nil {
		t.Fatal(err)
	}
	if got, want := take(), "remove-in-transaction db-flushed remove-committed remove-blob-removed"; got != want {
		t.Errorf("RemoveACI events %q, want %q", got, want)
	}
}

// TestSyncWALWithoutWAL: with no WAL file (every connection of the last
// user closed), the flush falls back to the database file.
func TestSyncWALWithoutWAL(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "store.db")
	if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := &db{path: path}
	if err := d.syncWAL(); err != nil {
		t.Fatalf("syncWAL without a WAL: %v", err)
	}
	os.Remove(path)
	if err := d.syncWAL(); err == nil || !strings.Contains(err.Error(), "flush database") {
		t.Fatalf("syncWAL without any file = %v, want a flush error", err)
	}
}

// TestDriverImmediateTransactions checks that write transactions take the
// write lock when they begin (BEGIN IMMEDIATE): a second writer on the same
// file must then wait, so a transaction started while another holds the
// lock cannot have read a snapshot that is stale by the time it writes.
func TestDriverImmediateTransactions(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	tx, err := s.db.writer.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	// A transaction that has only begun holds the RESERVED lock if it is
	// immediate; then no other connection can start writing.
	other, err := openDB(dbPath(s.dir))
	if err != nil {
		t.Fatal(err)
	}
	defer other.close()
	if _, err := other.writer.Exec("PRAGMA busy_timeout = 0"); err != nil {
		t.Fatal(err)
	}
	if _, err := other.writer.Exec("BEGIN IMMEDIATE"); err == nil {
		other.writer.Exec("ROLLBACK")
		t.Fatal("second BEGIN IMMEDIATE succeeded while a write transaction was open: the writer's transactions are not immediate")
	}
}

// TestDriverUnusualPath opens a store whose path has characters that mean
// something in a URI, which the DSN must escape for either driver.
func TestDriverUnusualPath(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "a b?c#d%e&f=g")
	s, err := NewStore(dir)
	if err != nil {
		t.Fatalf("NewStore(%q): %v", dir, err)
	}
	key := writeImage(t, s, makeACI(t, "example.com/odd"), false)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if !fileExists(dbPath(dir)) {
		t.Fatalf("database not at %s", dbPath(dir))
	}
	s, err = NewStore(dir)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	if !s.HasFullKey(key) {
		t.Errorf("image %s lost on reopen", key)
	}
}
