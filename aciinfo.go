//go:build unix

// This file holds the image rows: ACIInfo, its columns, rkt's *sql.Tx
// helpers for it, the label rows derived from manifests, and GetACI's
// best-match query.

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/appc/spec/schema/types"
)

var background = context.Background()

// ACIFetchInfo is used to store information about the fetching process of an ACI.
type ACIFetchInfo struct {
	// Latest defines if the ACI was imported using the latest pattern
	// (no version label was provided on ACI discovery).
	Latest bool
	// Name, when set, is the name the image must have: WriteACI refuses
	// an image whose manifest names another with ErrInvalidImage, and
	// stores nothing. A fetcher that found the image through discovery
	// of a name sets it, as rkt's fetcher checked the name it asked for.
	// (Not in rkt's struct; its zero value changes nothing.)
	Name types.ACIdentifier
}

// ACIInfo is used to store information about an ACI.
//
// The exported functions of this file taking a *sql.Tx (GetACIInfos…,
// WriteACIInfo, RemoveACIInfo) are rkt's helpers: run them inside
// (*Store).Do, a write transaction, to combine them atomically with each
// other and with the Remote helpers. The Store's own methods need no
// transaction.
type ACIInfo struct {
	// BlobKey is the key in the blob/imageManifest store of the related
	// ACI file and is the db primary key.
	BlobKey string
	// Name is the name of the ACI.
	Name string
	// ImportTime is the time this ACI was imported in the store.
	ImportTime time.Time
	// LastUsed is the last time this image was read
	LastUsed time.Time
	// Size is the size in bytes of this image in the store
	Size int64
	// TreeStoreSize is the size in bytes of this image in the tree store
	TreeStoreSize int64
	// Latest defines if the ACI was imported using the latest pattern (no
	// version label was provided on ACI discovery)
	Latest bool
}

// NewACIInfo returns an ACIInfo imported at t and last used now.
func NewACIInfo(blobKey string, latest bool, t time.Time, size int64, treeStoreSize int64) *ACIInfo {
	return &ACIInfo{
		BlobKey:       blobKey,
		Latest:        latest,
		ImportTime:    t,
		LastUsed:      time.Now(),
		Size:          size,
		TreeStoreSize: treeStoreSize,
	}
}

const aciinfoColumns = `blobkey, name, importtime, lastused, latest, size, treestoresize`

// aciinfoSortColumns are the only sort fields GetAllACIInfos accepts: the
// column names, which are also the lower-cased ACIInfo field names.
var aciinfoSortColumns = map[string]bool{
	"blobkey": true, "name": true, "importtime": true, "lastused": true,
	"latest": true, "size": true, "treestoresize": true,
}

func scanACIInfos(rows *sql.Rows, err error) ([]*ACIInfo, error) {
	if err != nil {
		return nil, wrap(err, "query images")
	}
	defer rows.Close()
	var out []*ACIInfo
	for rows.Next() {
		ai := &ACIInfo{}
		if err := rows.Scan(&ai.BlobKey, &ai.Name, dbTime{&ai.ImportTime}, dbTime{&ai.LastUsed}, &ai.Latest, &ai.Size, &ai.TreeStoreSize); err != nil {
			return nil, wrap(err, "scan image")
		}
		out = append(out, ai)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(err, "query images")
	}
	return out, nil
}

// GetACIInfosWithKeyPrefix returns all the ACIInfos with a blobkey starting
// with the given prefix ("" returns them all).
func GetACIInfosWithKeyPrefix(tx *sql.Tx, prefix string) ([]*ACIInfo, error) {
	return aciinfosWithKeyPrefix(tx, prefix, -1)
}

// aciinfosWithKeyPrefix reads at most limit rows (-1: all) whose key starts
// with prefix, as a range over the primary key index.
func aciinfosWithKeyPrefix(q querier, prefix string, limit int) ([]*ACIInfo, error) {
	return scanACIInfos(q.QueryContext(background,
		`SELECT `+aciinfoColumns+` FROM aciinfo WHERE blobkey >= ? AND blobkey < ? ORDER BY blobkey LIMIT ?`,
		prefix, keyPrefixUpperBound(prefix), limit))
}

// GetACIInfosWithName returns all the ACIInfos for a given name. found will
// be false if no aciinfo exists.
func GetACIInfosWithName(tx *sql.Tx, name string) ([]*ACIInfo, bool, error) {
	ais, err := aciinfosWithName(tx, name)
	return ais, len(ais) > 0, err
}

func aciinfosWithName(q querier, name string) ([]*ACIInfo, error) {
	return scanACIInfos(q.QueryContext(background,
		`SELECT `+aciinfoColumns+` FROM aciinfo WHERE name = ? ORDER BY importtime, blobkey`, name))
}

// GetACIInfoWithBlobKey returns the ACIInfo with the given blobKey. found
// will be false if no aciinfo exists.
func GetACIInfoWithBlobKey(tx *sql.Tx, blobKey string) (*ACIInfo, bool, error) {
	return aciinfoWithBlobKey(tx, blobKey)
}

// hasACIInfo says whether an image with the key is in the store. It reads
// the primary key's index only, not the row: at 100,000 images the row is
// another page, most often not in SQLite's cache.
func hasACIInfo(q querier, blobKey string) (bool, error) {
	var one int
	err := q.QueryRowContext(background, `SELECT 1 FROM aciinfo WHERE blobkey = ?`, blobKey).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

func aciinfoWithBlobKey(q querier, blobKey string) (*ACIInfo, bool, error) {
	ais, err := scanACIInfos(q.QueryContext(background,
		`SELECT `+aciinfoColumns+` FROM aciinfo WHERE blobkey = ?`, blobKey))
	if err != nil || len(ais) == 0 {
		return nil, false, err
	}
	return ais[0], true, nil
}

// GetAllACIInfos returns all the ACIInfos sorted by optional sortfields and
// with ascending or descending order. Sort fields are column names
// (blobkey, name, importtime, lastused, latest, size, treestoresize, in any
// letter case); anything else is an ErrInvalidArgument. Rows that tie on
// every field come in key order.
func GetAllACIInfos(tx *sql.Tx, sortfields []string, ascending bool) ([]*ACIInfo, error) {
	return allACIInfos(tx, sortfields, ascending)
}

func allACIInfos(q querier, sortfields []string, ascending bool) ([]*ACIInfo, error) {
	order, err := orderBy(sortfields, ascending)
	if err != nil {
		return nil, err
	}
	return scanACIInfos(q.QueryContext(background, `SELECT `+aciinfoColumns+` FROM aciinfo`+order))
}

// orderBy builds an ORDER BY clause from the fixed list of column names.
func orderBy(sortfields []string, ascending bool) (string, error) {
	dir := " ASC"
	if !ascending {
		dir = " DESC"
	}
	cols := make([]string, 0, len(sortfields)+1)
	for _, f := range sortfields {
		c := strings.ToLower(strings.TrimSpace(f))
		if !aciinfoSortColumns[c] {
			return "", fmt.Errorf("%w: unknown sort field %q (want one of blobkey, name, importtime, lastused, latest, size, treestoresize)", ErrInvalidArgument, f)
		}
		cols = append(cols, c+dir)
	}
	cols = append(cols, "blobkey"+dir)
	return " ORDER BY " + strings.Join(cols, ", "), nil
}

// WriteACIInfo adds or updates the provided aciinfo.
func WriteACIInfo(tx *sql.Tx, aciinfo *ACIInfo) error {
	if aciinfo == nil {
		return fmt.Errorf("%w: nil ACIInfo", ErrInvalidArgument)
	}
	if err := checkFullKey(aciinfo.BlobKey); err != nil {
		return err
	}
	_, err := tx.Exec(`INSERT INTO aciinfo (`+aciinfoColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (blobkey) DO UPDATE SET name = excluded.name, importtime = excluded.importtime,
			lastused = excluded.lastused, latest = excluded.latest, size = excluded.size,
			treestoresize = excluded.treestoresize`,
		aciinfo.BlobKey, aciinfo.Name, dbTime{&aciinfo.ImportTime}, dbTime{&aciinfo.LastUsed},
		aciinfo.Latest, aciinfo.Size, aciinfo.TreeStoreSize)
	if err != nil {
		return wrap(err, "write image %s", aciinfo.BlobKey)
	}
	// The label rows are keyed by the image's name: a new name moves them.
	_, err = tx.Exec(`UPDATE image_label SET appname = ? WHERE blobkey = ? AND appname <> ?`,
		aciinfo.Name, aciinfo.BlobKey, aciinfo.Name)
	return wrap(err, "write image %s", aciinfo.BlobKey)
}

// RemoveACIInfo removes the ACIInfo with the given blobKey (and its label
// rows). Removing a key that has no row is not an error.
func RemoveACIInfo(tx *sql.Tx, blobKey string) error {
	if err := checkFullKey(blobKey); err != nil {
		return err
	}
	_, err := tx.Exec(`DELETE FROM aciinfo WHERE blobkey = ?`, blobKey)
	return wrap(err, "remove image %s", blobKey)
}

// allKeys lists every image key in the database.
func allKeys(q querier) ([]string, error) {
	rows, err := q.QueryContext(background, `SELECT blobkey FROM aciinfo ORDER BY blobkey`)
	if err != nil {
		return nil, wrap(err, "list keys")
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, wrap(err, "list keys")
		}
		keys = append(keys, k)
	}
	return keys, wrap(rows.Err(), "list keys")
}

// writeLabels replaces the label rows of key, an image named appname.
func writeLabels(tx *sql.Tx, key, appname string, labels types.Labels) error {
	if _, err := tx.Exec(`DELETE FROM image_label WHERE blobkey = ?`, key); err != nil {
		return wrap(err, "write labels of %s", key)
	}
	for _, l := range labels {
		_, err := tx.Exec(`INSERT INTO image_label (appname, name, value, blobkey) VALUES (?, ?, ?, ?)
			ON CONFLICT DO NOTHING`, appname, l.Name.String(), l.Value, key)
		if err != nil {
			return wrap(err, "write labels of %s", key)
		}
	}
	return nil
}

// bestMatch returns the key of the image named name that has every label in
// labels: among several, those imported as latest first unless a version
// label is asked for, then the most recently imported. With labels, the
// candidates come from one range of image_label (the version label first:
// it is the most selective); without, from the aciinfo_pick index.
func bestMatch(q querier, name string, labels types.Labels) (string, error) {
	labels = append(types.Labels(nil), labels...)
	versionRequested := false
	for i, l := range labels {
		if l.Name == "version" {
			versionRequested = true
			labels[0], labels[i] = labels[i], labels[0]
		}
	}
	var b strings.Builder
	var args []any
	if len(labels) == 0 {
		b.WriteString(`SELECT a.blobkey FROM aciinfo a WHERE a.name = ?`)
		args = append(args, name)
	} else {
		// CROSS JOIN keeps image_label as the outer loop.
		b.WriteString(`SELECT a.blobkey FROM image_label l0 CROSS JOIN aciinfo a
			WHERE l0.appname = ? AND l0.name = ? AND l0.value = ? AND a.blobkey = l0.blobkey AND a.name = ?`)
		args = append(args, name, labels[0].Name.String(), labels[0].Value, name)
		for _, l := range labels[1:] {
			b.WriteString(` AND EXISTS (SELECT 1 FROM image_label l WHERE l.appname = ? AND l.name = ? AND l.value = ? AND l.blobkey = a.blobkey)`)
			args = append(args, name, l.Name.String(), l.Value)
		}
	}
	b.WriteString(` ORDER BY `)
	if !versionRequested {
		b.WriteString(`a.latest DESC, `)
	}
	b.WriteString(`a.importtime DESC, a.blobkey DESC LIMIT 1`)
	var key string
	err := q.QueryRowContext(background, b.String(), args...).Scan(&key)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return key, wrap(err, "find image %q", name)
}
