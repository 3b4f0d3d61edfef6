// Tests of the exported transaction helpers for ACIInfo rows and how times round-trip.

package store

import (
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestTxHelpers(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	t0 := time.Date(2020, 1, 2, 3, 4, 5, 999999999, time.UTC)
	rows := []*ACIInfo{
		{BlobKey: fakeKey("a1"), Name: "n/b", ImportTime: t0, LastUsed: t0.Add(3 * time.Hour), Size: 30, Latest: true},
		{BlobKey: fakeKey("a2"), Name: "n/a", ImportTime: t0.Add(time.Hour), LastUsed: t0.Add(time.Hour), Size: 10},
		{BlobKey: fakeKey("b1"), Name: "n/a", ImportTime: t0.Add(2 * time.Hour), LastUsed: t0, Size: 20, TreeStoreSize: 7},
	}
	err := s.Do(func(tx *sql.Tx) error {
		for _, ai := range rows {
			if err := WriteACIInfo(tx, ai); err != nil {
				return err
			}
		}
		return WriteRemote(tx, &Remote{ACIURL: "u1", BlobKey: fakeKey("a1")})
	})
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, got []*ACIInfo, want ...string) {
		t.Helper()
		var keys []string
		for _, ai := range got {
			keys = append(keys, ai.BlobKey)
		}
		if strings.Join(keys, ",") != strings.Join(want, ",") {
			t.Errorf("%s = %v, want %v", what, keys, want)
		}
	}
	err = s.Do(func(tx *sql.Tx) error {
		ai, found, err := GetACIInfoWithBlobKey(tx, fakeKey("b1"))
		if err != nil || !found || !sameInfo(ai, rows[2]) {
			t.Errorf("GetACIInfoWithBlobKey = %+v, %v, %v; want %+v", ai, found, err, rows[2])
		}
		if _, found, err := GetACIInfoWithBlobKey(tx, fakeKey("cc")); found || err != nil {
			t.Errorf("GetACIInfoWithBlobKey(unknown) found=%v err=%v", found, err)
		}
		ais, err := GetACIInfosWithKeyPrefix(tx, "sha512-a")
		if err != nil {
			t.Errorf("GetACIInfosWithKeyPrefix: %v", err)
		}
		check("GetACIInfosWithKeyPrefix(sha512-a)", ais, fakeKey("a1"), fakeKey("a2"))
		ais, _ = GetACIInfosWithKeyPrefix(tx, "")
		check("GetACIInfosWithKeyPrefix(\"\")", ais, fakeKey("a1"), fakeKey("a2"), fakeKey("b1"))
		ais, found, err = GetACIInfosWithName(tx, "n/a")
		check("GetACIInfosWithName(n/a)", ais, fakeKey("a2"), fakeKey("b1"))
		if !found || err != nil {
			t.Errorf("GetACIInfosWithName found=%v err=%v", found, err)
		}
		if _, found, _ := GetACIInfosWithName(tx, "n/none"); found {
			t.Error("GetACIInfosWithName(unknown) found")
		}
		ais, _ = GetAllACIInfos(tx, []string{"importtime"}, false)
		check("by importtime desc", ais, fakeKey("b1"), fakeKey("a2"), fakeKey("a1"))
		ais, _ = GetAllACIInfos(tx, []string{"Name", "size"}, true)
		check("by name, size", ais, fakeKey("a2"), fakeKey("b1"), fakeKey("a1"))
		ais, _ = GetAllACIInfos(tx, []string{"lastused"}, true)
		check("by lastused", ais, fakeKey("b1"), fakeKey("a2"), fakeKey("a1"))
		ais, _ = GetAllACIInfos(tx, nil, true)
		check("unsorted (key order)", ais, fakeKey("a1"), fakeKey("a2"), fakeKey("b1"))
		for _, bad := range []string{"name; DROP TABLE aciinfo", "nosuch", "", "name desc"} {
			if _, err := GetAllACIInfos(tx, []string{bad}, true); !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("GetAllACIInfos sort field %q: %v", bad, err)
			}
		}
		r, err := GetRemote(tx, "u1")
		if err != nil || r.BlobKey != fakeKey("a1") {
			t.Errorf("GetRemote(tx) = %+v, %v", r, err)
		}
		if _, err := GetRemote(tx, "u2"); !errors.Is(err, ErrRemoteNotFound) {
			t.Errorf("GetRemote(tx, unknown) = %v", err)
		}
		if rs, err := GetAllRemotes(tx); err != nil || len(rs) != 1 {
			t.Errorf("GetAllRemotes(tx) = %v, %v", rs, err)
		}
		if err := RemoveRemote(tx, fakeKey("a1")); err != nil {
			return err
		}
		return RemoveACIInfo(tx, fakeKey("a1"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if all, _ := s.GetAllACIInfos(nil, true); len(all) != 2 {
		t.Fatalf("after RemoveACIInfo: %d rows", len(all))
	}
	if rs, _ := s.GetAllRemotes(); len(rs) != 0 {
		t.Fatalf("after RemoveRemote: %v", rs)
	}

	// An error from any function rolls the whole transaction back.
	boom := errors.New("boom")
	err = s.Do(func(tx *sql.Tx) error {
		return RemoveACIInfo(tx, fakeKey("a2"))
	}, func(tx *sql.Tx) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("Do = %v, want boom", err)
	}
	if all, _ := s.GetAllACIInfos(nil, true); len(all) != 2 {
		t.Fatalf("rollback failed: %d rows", len(all))
	}
	// So does a panic, which then goes on.
	func() {
		defer func() {
			if recover() == nil {
				t.Error("panic was swallowed")
			}
		}()
		s.Do(func(tx *sql.Tx) error {
			RemoveACIInfo(tx, fakeKey("a2"))
			panic("in tx")
		})
	}()
	if all, _ := s.GetAllACIInfos(nil, true); len(all) != 2 {
		t.Fatalf("rollback on panic failed: %d rows", len(all))
	}
}

// sameInfo compares two ACIInfos, times with Equal.
func sameInfo(a, b *ACIInfo) bool {
	return a.BlobKey == b.BlobKey && a.Name == b.Name && a.ImportTime.Equal(b.ImportTime) &&
		a.LastUsed.Equal(b.LastUsed) && a.Size == b.Size && a.TreeStoreSize == b.TreeStoreSize && a.Latest == b.Latest
}

func TestTimesRoundTrip(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	times := []time.Time{
		{},
		time.Date(1999, 12, 31, 23, 59, 59, 1, time.FixedZone("A", -7*3600)),
		time.Now(), // with a monotonic reading
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
	}
	for i, tm := range times {
		ai := &ACIInfo{BlobKey: fakeKey("0" + string(rune('a'+i))), ImportTime: tm, LastUsed: tm}
		if err := s.Do(func(tx *sql.Tx) error { return WriteACIInfo(tx, ai) }); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetACIInfoWithBlobKey(ai.BlobKey)
		if err != nil {
			t.Fatal(err)
		}
		if !got.ImportTime.Equal(tm) || !got.LastUsed.Equal(tm) || got.ImportTime.Location() != time.UTC {
			t.Errorf("time %v came back as %v", tm, got.ImportTime)
		}
	}
	bad := &ACIInfo{BlobKey: fakeKey("ff"), ImportTime: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	if err := s.Do(func(tx *sql.Tx) error { return WriteACIInfo(tx, bad) }); err == nil {
		t.Error("a year-10000 time was accepted")
	}
}
