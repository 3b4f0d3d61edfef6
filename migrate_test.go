// Tests of schema migration from version 1, backups, and refusing a newer schema.

package store

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/appc/spec/schema/types"
)

var updateFixtures = flag.Bool("update-fixtures", false, "rewrite testdata/store-v1 with the version-1 schema")

// The fixture testdata/store-v1 is a store written at schema version 1:
// two images of example.com/app (1.0, and 2.0 imported as latest), a row
// whose manifest file is missing, and a remote. Regenerate it with
//
//	go test -run TestMigrateFromV1 -update-fixtures
func v1Images(tb testing.TB) (img1, img2 []byte) {
	return makeACI(tb, "example.com/app", "version=1.0", "os=linux"),
		makeACI(tb, "example.com/app", "version=2.0", "os=linux")
}

// writeV1Fixture builds the version-1 store in dir with the version-1 code
// path: the migrations up to 1, rows in version 1's columns, files in place.
func writeV1Fixture(t *testing.T, dir string) {
	t.Helper()
	for _, d := range []string{"db", "blob", "imageManifest", "tmp", "imagelocks"} {
		if err := mkdirShared(filepath.Join(dir, d)); err != nil {
			t.Fatal(err)
		}
	}
	d, err := openDB(dbPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	img1, img2 := v1Images(t)
	s, err := unopenedStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2018, 4, 13, 12, 0, 0, 0, time.UTC)
	var keys []string
	for _, img := range [][]byte{img1, img2} {
		in, err := s.ingest(bytes.NewReader(img))
		if err != nil {
			t.Fatal(err)
		}
		if err := rename(in.file, s.blobPath(in.key)); err != nil {
			t.Fatal(err)
		}
		in.file.release()
		imj, err := json.Marshal(in.manifest)
		if err != nil {
			t.Fatal(err)
		}
		mf, err := s.writeTemp(imj)
		if err != nil {
			t.Fatal(err)
		}
		if err := rename(mf, s.manifestPath(in.key)); err != nil {
			t.Fatal(err)
		}
		mf.release()
		keys = append(keys, in.key)
	}
	noManifest := fakeKey("ee")
	err = d.do(func(tx *sql.Tx) error {
		if err := migrateTo(tx, nil, 1); err != nil {
			return err
		}
		for i, k := range []string{keys[0], keys[1], noManifest} {
			it := t0.Add(time.Duration(i) * time.Hour)
			_, err := tx.Exec(`INSERT INTO aciinfo (blobkey, name, importtime, lastused, latest, size, treestoresize) VALUES (?, ?, ?, ?, ?, ?, ?)`,
				k, "example.com/app", dbTime{&it}, dbTime{&it}, i == 1, 10240, 0)
			if err != nil {
				return err
			}
		}
		_, err := tx.Exec(`INSERT INTO remote (aciurl, sigurl, etag, blobkey, cachemaxage, downloadtime) VALUES (?, ?, ?, ?, ?, ?)`,
			"https://example.com/app-2.0.aci", "", `"e"`, keys[1], 60, t0.Format(dbTimeLayout))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.close(); err != nil {
		t.Fatal(err)
	}
}

// copyTree copies the regular files and directories under src to dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(target, 0o770)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o660)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func openV1Copy(t *testing.T) string {
	t.Helper()
	fixture := filepath.Join("testdata", "store-v1")
	if *updateFixtures {
		os.RemoveAll(fixture)
		writeV1Fixture(t, fixture)
	}
	dir := filepath.Join(t.TempDir(), "store")
	copyTree(t, fixture, dir)
	return dir
}

func TestMigrateFromV1(t *testing.T) {
	t.Parallel()
	dir := openV1Copy(t)
	const (
		k1 = "sha512-4c26c2cb45a201d20c2c01cee4b799c52d765fc5ce7e4935b7676fbf56b2d3ea" // version 1.0
		k2 = "sha512-9fffd90fd7306a9712cd8b3b5c1826933ac6feb4e19ba8783593831f085df2b2" // version 2.0, latest
	)
	s, err := NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, err := schemaVersion(s.db.readers); err != nil || v != dbVersion {
		t.Fatalf("schema version after open = %d, %v; want %d", v, err, dbVersion)
	}
	// The labels were derived from the manifests by the migration.
	for _, c := range []struct {
		labels types.Labels
		want   string
	}{
		{types.Labels{{Name: "version", Value: "1.0"}}, k1},
		{types.Labels{{Name: "version", Value: "2.0"}, {Name: "os", Value: "linux"}}, k2},
		{nil, k2}, // imported as latest
	} {
		if got, err := s.GetACI("example.com/app", c.labels); err != nil || got != c.want {
			t.Errorf("GetACI(%v) = %q, %v; want %q", c.labels, got, err, c.want)
		}
	}
	// The row whose manifest is missing survived the migration.
	if !s.HasFullKey(fakeKey("ee")) {
		t.Error("the row without a manifest was lost")
	}
	// Every field of the remote survived (version 4 moved the rows).
	r, err := s.GetRemote("https://example.com/app-2.0.aci")
	if err != nil || r.BlobKey != k2 || r.CacheMaxAge != 60 || r.ETag != `"e"` ||
		!r.DownloadTime.Equal(time.Date(2018, 4, 13, 12, 0, 0, 0, time.UTC)) {
		t.Errorf("remote after migration: %+v, %v", r, err)
	}
	rc, err := s.ReadStream(k1)
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	// RemoveACI uses the new remote index and the label rows cascade.
	if err := s.RemoveACI(k2); err != nil {
		t.Fatal(err)
	}
	var labels int
	s.db.readers.QueryRow(`SELECT count(*) FROM image_label WHERE blobkey = ?`, k2).Scan(&labels)
	if labels != 0 {
		t.Errorf("%d label rows left after RemoveACI", labels)
	}

	// The database was backed up, at version 1, before the migration.
	backups, _ := filepath.Glob(filepath.Join(dir, "db-backups", "store-*-v1.db"))
	if len(backups) != 1 {
		t.Fatalf("backups: %v", backups)
	}
	b, err := openDB(backups[0])
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	if v, err := schemaVersion(b.readers); err != nil || v != 1 {
		t.Fatalf("backup at version %d, %v; want 1", v, err)
	}
}

func TestMigratedSchemaEqualsFreshSchema(t *testing.T) {
	t.Parallel()
	migrated, err := NewStore(openV1Copy(t))
	if err != nil {
		t.Fatal(err)
	}
	defer migrated.Close()
	fresh := newTestStore(t)
	schema := func(s *Store) string {
		rows, err := s.db.readers.Query(`SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var b strings.Builder
		for rows.Next() {
			var typ, name string
			var text sql.NullString
			rows.Scan(&typ, &name, &text)
			b.WriteString(typ + " " + name + " " + text.String + "\n")
		}
		return b.String()
	}
	if a, b := schema(migrated), schema(fresh); a != b {
		t.Fatalf("migrated schema:\n%s\nfresh schema:\n%s", a, b)
	}
}

func TestMigrationNeedsWriteAccess(t *testing.T) {
	dir := openV1Copy(t)
	canWriteDir = func(string) bool { return false }
	defer func() { canWriteDir = canWrite }()
	if s, err := NewStore(dir); !errors.Is(err, ErrDBUpdateNeedsRoot) {
		if err == nil {
			s.Close()
		}
		t.Fatalf("NewStore = %v, want ErrDBUpdateNeedsRoot", err)
	}
	// Nothing was changed: the store still opens, and migrates, once the
	// process may write.
	canWriteDir = canWrite
	s, err := NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}

func TestSchemaTooNewIsRefused(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "store")
	s, err := NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Do(func(tx *sql.Tx) error {
		_, err := tx.Exec(`UPDATE version SET version = 99`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err = NewStore(dir)
	if !errors.Is(err, ErrSchemaTooNew) || !strings.Contains(err.Error(), "version 99") || !strings.Contains(err.Error(), fmt.Sprintf("version %d", dbVersion)) {
		t.Fatalf("NewStore on a newer schema = %v", err)
	}
}

func TestBackupsKeepTheLastFive(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	for i := 0; i < backupsNumber+3; i++ {
		if err := s.backupDB(1); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := filepath.Glob(filepath.Join(s.dir, "db-backups", "store-*.db"))
	if len(got) != backupsNumber {
		t.Fatalf("%d backups kept, want %d: %v", len(got), backupsNumber, got)
	}
}
