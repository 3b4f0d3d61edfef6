//go:build unix

// This file holds Verify: every image re-hashed and checked against its
// row, manifest and labels, and the store swept for stray files.

package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/appc/spec/schema"
)

// ProblemKind names one kind of damage Verify can find.
type ProblemKind string

// The problems Verify reports.
const (
	// ProblemBlobMissing: an image's row has no blob file.
	ProblemBlobMissing ProblemKind = "blob-missing"
	// ProblemBlobCorrupt: a blob's SHA-512 differs from its key, or it is
	// no longer a valid image tar.
	ProblemBlobCorrupt ProblemKind = "blob-corrupt"
	// ProblemSizeMismatch: a blob's size differs from its row's Size.
	ProblemSizeMismatch ProblemKind = "size-mismatch"
	// ProblemManifestMissing: an image's row has no manifest file.
	ProblemManifestMissing ProblemKind = "manifest-missing"
	// ProblemManifestCorrupt: a stored manifest does not parse, or differs
	// from the manifest inside the blob.
	ProblemManifestCorrupt ProblemKind = "manifest-corrupt"
	// ProblemLabelsStale: the label rows differ from the manifest's labels.
	ProblemLabelsStale ProblemKind = "labels-stale"
	// ProblemNameMismatch: the row's name differs from the manifest's.
	ProblemNameMismatch ProblemKind = "name-mismatch"
	// ProblemOrphanBlob, ProblemOrphanManifest: a file without a row.
	ProblemOrphanBlob     ProblemKind = "orphan-blob"
	ProblemOrphanManifest ProblemKind = "orphan-manifest"
	// ProblemStrayFile: a file in blob/ or imageManifest/ that is not named
	// by a key or is not where its key puts it.
	ProblemStrayFile ProblemKind = "stray-file"
	// ProblemStaleTemp: a temp file or intent left in tmp/ by a process
	// that died; GC removes it.
	ProblemStaleTemp ProblemKind = "stale-temp"
)

// Problem is one finding of Verify.
type Problem struct {
	Kind   ProblemKind
	Key    string // the image key, when there is one
	Path   string // the file concerned, when there is one
	Detail string
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(string(p.Kind))
	if p.Key != "" {
		b.WriteString(" " + p.Key)
	}
	if p.Path != "" {
		b.WriteString(" " + p.Path)
	}
	if p.Detail != "" {
		b.WriteString(": " + p.Detail)
	}
	return b.String()
}

// VerifyReport is what Verify found.
type VerifyReport struct {
	Images   int   // images checked
	Bytes    int64 // blob bytes re-hashed
	Problems []Problem
}

// OK reports whether Verify found nothing wrong.
func (r *VerifyReport) OK() bool { return len(r.Problems) == 0 }

func (r *VerifyReport) add(kind ProblemKind, key, path, format string, args ...any) {
	r.Problems = append(r.Problems, Problem{Kind: kind, Key: key, Path: path, Detail: fmt.Sprintf(format, args...)})
}

// Verify checks the store and changes nothing. For each image (all of
// them, or those of keys, which may be prefixes) it re-hashes the blob and
// compares it with the key and the recorded size, and checks that the
// stored manifest parses and equals the one inside the blob, and that the
// name and label rows agree with it. Called without keys it also looks for
// files without rows, stray files and stale temp files. Images being
// written or removed by a live process are skipped.
//
// The error is for Verify failing to run (an unknown key, an unreadable
// directory); damage is reported in VerifyReport.Problems.
func (s *Store) Verify(keys ...string) (*VerifyReport, error) {
	if err := s.live(); err != nil {
		return nil, err
	}
	full := len(keys) == 0
	if full {
		all, err := allKeys(s.db.readers)
		if err != nil {
			return nil, err
		}
		keys = all
	} else {
		resolved := make([]string, len(keys)) // the caller's slice stays as it was
		for i, k := range keys {
			rk, err := s.ResolveKey(k)
			if err != nil {
				return nil, wrap(err, "verify %s", quoteKey(k))
			}
			resolved[i] = rk
		}
		keys = resolved
	}
	r := &VerifyReport{}
	for _, key := range keys {
		if err := s.verifyImage(r, key); err != nil {
			return nil, err
		}
	}
	if full {
		if err := s.verifyFiles(r); err != nil {
			return nil, err
		}
	}
	sort.SliceStable(r.Problems, func(i, j int) bool { return r.Problems[i].Key < r.Problems[j].Key })
	return r, nil
}

func (s *Store) verifyImage(r *VerifyReport, key string) error {
	// key lock, shared (lock 2, doc.go "Locks"); a writer's key is skipped
	kl, ok, err := tryLockKey(s.lockDir, key, false)
	if err != nil {
		return err
	}
	if !ok {
		return nil // being written or removed right now
	}
	defer kl.unlock()
	ai, found, err := aciinfoWithBlobKey(s.db.prepared, key)
	if err != nil || !found {
		return err
	}
	r.Images++

	blob := s.blobPath(key)
	bkey, size, blobIM, err := inspectBlob(blob)
	r.Bytes += size
	switch {
	case errors.Is(err, fs.ErrNotExist):
		r.add(ProblemBlobMissing, key, blob, "")
		blobIM = nil
	case err != nil:
		r.add(ProblemBlobCorrupt, key, blob, "%v", err)
		blobIM = nil
	case bkey != key:
		r.add(ProblemBlobCorrupt, key, blob, "content hashes to %s", bkey)
		blobIM = nil
	case size != ai.Size:
		r.add(ProblemSizeMismatch, key, blob, "%d bytes on disk, %d recorded", size, ai.Size)
	}

	mpath := s.manifestPath(key)
	imj, err := os.ReadFile(mpath)
	var stored *schema.ImageManifest
	switch {
	case errors.Is(err, fs.ErrNotExist):
		r.add(ProblemManifestMissing, key, mpath, "")
	case err != nil:
		r.add(ProblemManifestCorrupt, key, mpath, "%v", err)
	default:
		if stored, err = parseManifest(imj); err != nil {
			r.add(ProblemManifestCorrupt, key, mpath, "%v", err)
		}
	}
	if stored != nil && blobIM != nil && !sameManifest(stored, blobIM) {
		r.add(ProblemManifestCorrupt, key, mpath, "differs from the manifest in the blob")
	}
	im := blobIM
	if im == nil {
		im = stored
	}
	if im == nil {
		return nil
	}
	if ai.Name != im.Name.String() {
		r.add(ProblemNameMismatch, key, "", "row says %q, manifest %q", ai.Name, im.Name)
	}
	rows, err := labelsOf(s.db.prepared, key, ai.Name)
	if err != nil {
		return err
	}
	want := make([]string, 0, len(im.Labels))
	for _, l := range im.Labels {
		want = append(want, l.Name.String()+"="+l.Value)
	}
	sort.Strings(want)
	want = dedupe(want)
	if strings.Join(rows, "\n") != strings.Join(want, "\n") {
		r.add(ProblemLabelsStale, key, "", "rows %v, manifest %v", rows, want)
	}
	return nil
}

func sameManifest(a, b *schema.ImageManifest) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}

func dedupe(sorted []string) []string {
	out := sorted[:0]
	for i, s := range sorted {
		if i == 0 || s != sorted[i-1] {
			out = append(out, s)
		}
	}
	return out
}

// storedFile is a file found in blob/ or imageManifest/.
type storedFile struct {
	path string
	key  string // "" when the file is not where a valid key would put it
}

// listStored walks one diskv store.
func listStored(base string) ([]storedFile, error) {
	var out []storedFile
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		f := storedFile{path: p}
		name := d.Name()
		if checkFullKey(name) == nil && p == shardedPath(base, name) {
			f.key = name
		}
		out = append(out, f)
		return nil
	})
	return out, wrap(err, "list %s", base)
}

// verifyFiles looks for files that no row accounts for.
func (s *Store) verifyFiles(r *VerifyReport) error {
	for _, st := range []struct {
		base   string
		orphan ProblemKind
	}{{s.blobs.BasePath, ProblemOrphanBlob}, {s.manifests.BasePath, ProblemOrphanManifest}} {
		files, err := listStored(st.base)
		if err != nil {
			return err
		}
		for _, f := range files {
			if f.key == "" {
				r.add(ProblemStrayFile, "", f.path, "")
				continue
			}
			orphan, err := s.isOrphan(f.key)
			if err != nil {
				return err
			}
			if orphan {
				r.add(st.orphan, f.key, f.path, "no image row")
			}
		}
	}
	stale, err := s.recoverInFlight(true)
	if err != nil {
		return err
	}
	for _, p := range stale {
		r.add(ProblemStaleTemp, "", p, "")
	}
	return nil
}

// isOrphan reports whether key has files but no row, and no live process
// is writing or removing it.
func (s *Store) isOrphan(key string) (bool, error) {
	if found, err := hasACIInfo(s.db.prepared, key); err != nil || found {
		return false, err
	}
	// key lock, shared (lock 2, doc.go "Locks"); a writer's key is skipped
	kl, ok, err := tryLockKey(s.lockDir, key, false)
	if err != nil || !ok {
		return false, err
	}
	defer kl.unlock()
	found, err := hasACIInfo(s.db.prepared, key)
	return !found, err
}

// labelsOf returns the label rows of key, an image named appname, as
// sorted "name=value" strings; rows filed under another name are missing.
func labelsOf(q querier, key, appname string) ([]string, error) {
	rows, err := q.QueryContext(background, `SELECT name, value FROM image_label WHERE blobkey = ? AND appname = ?`, key, appname)
	if err != nil {
		return nil, wrap(err, "read labels of %s", key)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var n, v string
		if err := rows.Scan(&n, &v); err != nil {
			return nil, wrap(err, "read labels of %s", key)
		}
		out = append(out, n+"="+v)
	}
	sort.Strings(out)
	return out, wrap(rows.Err(), "read labels of %s", key)
}
