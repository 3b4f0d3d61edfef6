// Tests of the read paths: ResolveKey, ResolveName, GetACI, ReadStream, GetACIInfoWithBlobKey, query plans.

package store

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/appc/spec/schema/types"
)

func TestResolveKey(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	k1, k2, k3 := fakeKey("aa11"), fakeKey("aa22"), fakeKey("bb33")
	err := s.Do(func(tx *sql.Tx) error {
		for _, k := range []string{k1, k2, k3} {
			if err := WriteACIInfo(tx, NewACIInfo(k, false, time.Now(), 1, 0)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		in, want string
		err      error
		msg      string
	}{
		{in: "sha256-aa11", err: ErrWrongKeyPrefix, msg: "wrong key prefix"},
		{in: "sha512-a", err: ErrKeyTooShort, msg: "image ID too short"},
		{in: "sha512-aa", err: ErrAmbiguousKey, msg: `ambiguous image ID: "sha512-aa" matches sha512-aa1100000000, sha512-aa2200000000`},
		{in: "sha512-cc", err: ErrKeyNotFound, msg: "no image IDs found"},
		{in: "sha512-aa1", want: k1},
		{in: "sha512-bb", want: k3},
		{in: k2, want: k2},
		{in: k2 + strings.Repeat("f", 64), want: k2}, // longer than a full key: truncated
		{in: k2 + "junk/../\x00", want: k2},          // truncated first, as documented and in rkt
		{in: k2 + strings.Repeat("z", 1<<20), want: k2},
		{in: "sha512-aazz" + strings.Repeat("0", 60) + "aa", err: ErrInvalidKey},
		{in: "sha512-xx", err: ErrInvalidKey},
	}
	for _, c := range cases {
		got, err := s.ResolveKey(c.in)
		if c.err != nil {
			if !errors.Is(err, c.err) || (c.msg != "" && err.Error() != c.msg) {
				t.Errorf("ResolveKey(%q) = %q, %v; want error %q", c.in, got, err, c.msg)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ResolveKey(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestResolveName(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	a := writeImage(t, s, makeACI(t, "example.com/a", "version=1"), false)
	b := writeImage(t, s, makeACI(t, "example.com/a", "version=2"), false)
	writeImage(t, s, makeACI(t, "example.com/b"), false)
	keys, found, err := s.ResolveName("example.com/a")
	if err != nil || !found || len(keys) != 2 || !(keys[0] == a && keys[1] == b) {
		t.Fatalf("ResolveName = %v, %v, %v; want [%s %s] in import order", keys, found, err, a, b)
	}
	keys, found, err = s.ResolveName("example.com/none")
	if err != nil || found || len(keys) != 0 {
		t.Fatalf("ResolveName(unknown) = %v, %v, %v", keys, found, err)
	}
}

func TestGetACI(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	// Imported in this order; import time breaks ties.
	v1 := writeImage(t, s, makeACI(t, "example.com/app", "version=1.0", "os=linux"), false)
	v2 := writeImage(t, s, makeACI(t, "example.com/app", "version=2.0", "os=linux"), true)
	v3 := writeImage(t, s, makeACI(t, "example.com/app", "version=3.0", "os=linux"), false)
	other := writeImage(t, s, makeACI(t, "example.com/other", "version=1.0"), false)

	lbl := func(kv ...string) types.Labels {
		var ls types.Labels
		for _, x := range kv {
			k, v, _ := strings.Cut(x, "=")
			ls = append(ls, types.Label{Name: types.ACIdentifier(k), Value: v})
		}
		return ls
	}
	cases := []struct {
		name   string
		labels types.Labels
		want   string
	}{
		{"example.com/app", nil, v2},                               // latest preferred without a version
		{"example.com/app", lbl("os=linux"), v2},                   // still no version: latest
		{"example.com/app", lbl("version=1.0"), v1},                // exact version
		{"example.com/app", lbl("version=3.0", "os=linux"), v3},    // all labels must match
		{"example.com/app", lbl("version=3.0", "os=darwin"), ""},   // one label differs
		{"example.com/app", lbl("arch=amd64"), ""},                 // label the manifest lacks
		{"example.com/app", lbl("version=1.0", "version=2.0"), ""}, // contradictory
		{"example.com/other", nil, other},                          // another name
		{"example.com/missing", nil, ""},                           // unknown name
		{"example.com/app'; DROP TABLE aciinfo; --", nil, ""},      // names are values, not SQL
	}
	for _, c := range cases {
		got, err := s.GetACI(types.ACIdentifier(c.name), c.labels)
		if c.want == "" {
			var nf ACINotFoundError
			if !errors.As(err, &nf) || !errors.Is(err, ErrKeyNotFound) {
				t.Errorf("GetACI(%s, %v) = %q, %v; want ACINotFoundError", c.name, c.labels, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("GetACI(%s, %v) = %q, %v; want %q", c.name, c.labels, got, err, c.want)
		}
	}

	// Without any image marked latest, the last imported wins.
	s2 := newTestStore(t)
	writeImage(t, s2, makeACI(t, "example.com/app", "version=1.0"), false)
	last := writeImage(t, s2, makeACI(t, "example.com/app", "version=2.0"), false)
	if got, err := s2.GetACI("example.com/app", nil); err != nil || got != last {
		t.Fatalf("GetACI without latest marks = %q, %v; want the last imported %q", got, err, last)
	}
	_, err := s2.GetACI("example.com/x", lbl("version=9"))
	if err == nil || !strings.Contains(err.Error(), `"version":"9"`) {
		t.Fatalf("ACINotFoundError message %q should name the labels", err)
	}
}

func TestReadStreamRecordsLastUsed(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	key := writeImage(t, s, makeACI(t, "example.com/app"), false)
	before, _ := s.GetACIInfoWithBlobKey(key)
	time.Sleep(2 * time.Millisecond)
	rc, err := s.ReadStream(key[:12])
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	after, _ := s.GetACIInfoWithBlobKey(key)
	if !after.LastUsed.After(before.LastUsed) || !after.ImportTime.Equal(before.ImportTime) {
		t.Fatalf("LastUsed %v -> %v, ImportTime %v -> %v", before.LastUsed, after.LastUsed, before.ImportTime, after.ImportTime)
	}
	if _, err := s.ReadStream(fakeKey("0")); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("ReadStream(unknown) = %v", err)
	}
}

func TestGetACIInfoWithBlobKeyNotFound(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	_, err := s.GetACIInfoWithBlobKey(fakeKey("00"))
	if !errors.Is(err, ErrKeyNotFound) || !strings.Contains(err.Error(), "ACI info not found with blob key") {
		t.Fatalf("err = %v", err)
	}
}

// TestGetACIFollowsRenames: label rows are filed under the image's name;
// WriteACIInfo with a new name moves them.
func TestGetACIFollowsRenames(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	key := writeImage(t, s, makeACI(t, "example.com/a", "version=1"), false)
	ai, err := s.GetACIInfoWithBlobKey(key)
	if err != nil {
		t.Fatal(err)
	}
	ai.Name = "example.com/b"
	if err := s.Do(func(tx *sql.Tx) error { return WriteACIInfo(tx, ai) }); err != nil {
		t.Fatal(err)
	}
	v1 := types.Labels{{Name: "version", Value: "1"}}
	if got, err := s.GetACI("example.com/b", v1); err != nil || got != key {
		t.Fatalf("GetACI under the new name = %q, %v", got, err)
	}
	if _, err := s.GetACI("example.com/a", v1); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("GetACI under the old name = %v", err)
	}
}

// TestGetACIQueryPlan guards what keeps GetACI fast at any store size
// without timing it: with a version label the candidates come from one
// range of image_label's primary key, without labels from aciinfo_pick.
func TestGetACIQueryPlan(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	plan := func(labels types.Labels) string {
		t.Helper()
		var got []string
		// bestMatch's text, through the same builder, behind EXPLAIN.
		q := &planQuerier{db: s.db.readers, t: t, out: &got}
		bestMatch(q, "example.com/app", labels)
		return strings.Join(got, "; ")
	}
	if p := plan(types.Labels{{Name: "os", Value: "linux"}, {Name: "version", Value: "1"}}); !strings.HasPrefix(p, "SEARCH l0 USING PRIMARY KEY (appname=? AND name=? AND value=?)") {
		t.Errorf("plan with labels: %s", p)
	}
	if p := plan(nil); !strings.HasPrefix(p, "SEARCH a USING COVERING INDEX aciinfo_pick (name=?)") {
		t.Errorf("plan without labels: %s", p)
	}
}

// The point lookups read one B-tree each: HasFullKey the key's index (not
// the row), GetRemote the remote rows kept in their primary key's tree.
func TestLookupQueryPlans(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	var got []string
	q := &planQuerier{db: s.db.readers, t: t, out: &got}
	hasACIInfo(q, fakeKey("aa"))
	getRemote(q, "https://example.com/app.aci")
	want := []string{
		"SEARCH aciinfo USING COVERING INDEX sqlite_autoindex_aciinfo_1 (blobkey=?)",
		"SEARCH remote USING PRIMARY KEY (aciurl=?)",
	}
	if !slices.Equal(got, want) {
		t.Errorf("plans:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// planQuerier answers QueryRowContext and QueryContext with no rows, and
// records the query plan of each query.
type planQuerier struct {
	querier
	db  *sql.DB
	t   *testing.T
	out *[]string
}

func (p *planQuerier) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	p.record(ctx, query, args)
	return p.db.QueryContext(ctx, "SELECT NULL WHERE 0")
}

func (p *planQuerier) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	p.record(ctx, query, args)
	return p.db.QueryRowContext(ctx, "SELECT NULL WHERE 0")
}

// record appends the plan of query to p.out, a line per step.
func (p *planQuerier) record(ctx context.Context, query string, args []any) {
	rows, err := p.db.QueryContext(ctx, "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		p.t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, parent, unused int
		var detail string
		rows.Scan(&id, &parent, &unused, &detail)
		*p.out = append(*p.out, detail)
	}
}
