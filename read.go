//go:build unix

// This file holds the read path: keys and names resolved to images, an
// image's tar opened for reading, and the image rows listed.

package store

import (
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/appc/spec/schema/types"
)

// ResolveKey resolves a partial key (of format `sha512-0c45e8c0ab2`) to a
// full key by considering the key a prefix and using the store for
// resolution. If the key is longer than the full key length, it is first
// truncated.
//
// Its errors are ErrWrongKeyPrefix ("wrong key prefix"), ErrKeyTooShort
// ("image ID too short"), ErrInvalidKey (not lowercase hex),
// ErrAmbiguousKey ("ambiguous image ID: <prefix> matches <the first few
// keys>") and ErrKeyNotFound.
func (s *Store) ResolveKey(key string) (string, error) {
	if err := s.live(); err != nil {
		return "", err
	}
	key, err := checkKey(key)
	if err != nil {
		return "", err
	}
	if len(key) == lenKey {
		// A full key needs no range: one indexed point lookup.
		found, err := hasACIInfo(s.db.prepared, key)
		if err != nil {
			return "", wrap(err, "resolve key")
		}
		if !found {
			return "", ErrKeyNotFound
		}
		return key, nil
	}
	ais, err := aciinfosWithKeyPrefix(s.db.prepared, key, ambiguousListed+1)
	if err != nil {
		return "", wrap(err, "resolve key")
	}
	switch len(ais) {
	case 0:
		return "", ErrKeyNotFound
	case 1:
		return ais[0].BlobKey, nil
	}
	matches := make([]string, 0, ambiguousListed)
	for _, ai := range ais[:min(len(ais), ambiguousListed)] {
		matches = append(matches, ai.BlobKey[:shortKeyLen])
	}
	more := ""
	if len(ais) > ambiguousListed {
		more = ", and more"
	}
	return "", fmt.Errorf("%w: %q matches %s%s", ErrAmbiguousKey, key, strings.Join(matches, ", "), more)
}

// An ambiguous key's error lists the first ambiguousListed keys it
// matches, each cut to shortKeyLen characters (sha512- and 12 hex digits,
// as rkt shows keys).
const (
	ambiguousListed = 5
	shortKeyLen     = len(hashPrefix) + 12
)

// ResolveName resolves an image name to a list of full keys and using the
// store for resolution. found is false when no image has that name.
func (s *Store) ResolveName(name string) ([]string, bool, error) {
	if err := s.live(); err != nil {
		return nil, false, err
	}
	ais, err := aciinfosWithName(s.db.prepared, name)
	if err != nil {
		return nil, false, wrap(err, "resolve name %q", name)
	}
	keys := make([]string, len(ais))
	for i, ai := range ais {
		keys[i] = ai.BlobKey
	}
	return keys, len(keys) > 0, nil
}

// ReadStream returns the uncompressed image tar of key (a full key or an
// unambiguous prefix) and records the image as used now. The caller closes
// it. The stream stays readable even if the image is removed meanwhile.
func (s *Store) ReadStream(key string) (io.ReadCloser, error) {
	key, err := s.ResolveKey(key)
	if err != nil {
		return nil, wrap(err, "read image")
	}
	// key lock, shared (lock 2, doc.go "Locks")
	kl, err := lockKey(s.lockDir, key, false)
	if err != nil {
		return nil, wrap(err, "read image")
	}
	defer kl.unlock()

	f, err := os.Open(s.blobPath(key))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("read image %s: blob missing: %w", key, ErrKeyNotFound)
		}
		return nil, wrap(err, "read image %s", key)
	}
	err = s.db.doRelaxed(func(tx *sql.Tx) error {
		now := time.Now()
		res, err := tx.Exec(`UPDATE aciinfo SET lastused = ? WHERE blobkey = ?`, dbTime{&now}, key)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrKeyNotFound
		}
		return nil
	})
	if isDiskFull(err) {
		// LastUsed is a hint for GC; a full disk must not stop reads.
		err = nil
	}
	if err != nil {
		f.Close()
		return nil, wrap(err, "read image %s", key)
	}
	return f, nil
}

// GetACI retrieves the ACI that best matches the provided app name and
// labels. The returned value is the blob store key of the retrieved ACI.
// If there are multiple matching ACIs choose the latest one (defined as the
// last one imported in the store). If no version label is requested, ACIs
// marked as latest in the ACIInfo are preferred. When none matches, the
// error is an ACINotFoundError.
func (s *Store) GetACI(name types.ACIdentifier, labels types.Labels) (string, error) {
	if err := s.live(); err != nil {
		return "", err
	}
	key, err := bestMatch(s.db.prepared, name.String(), labels)
	if err != nil {
		return "", err
	}
	if key == "" {
		return "", ACINotFoundError{name: name, labels: labels}
	}
	return key, nil
}

// GetAllACIInfos returns every ACIInfo, sorted by sortfields (column names,
// see the GetAllACIInfos function) in ascending or descending order.
func (s *Store) GetAllACIInfos(sortfields []string, ascending bool) ([]*ACIInfo, error) {
	if err := s.live(); err != nil {
		return nil, err
	}
	return allACIInfos(s.db.prepared, sortfields, ascending)
}

// GetACIInfoWithBlobKey returns the ACIInfo of a full key; an unknown key is
// an error that matches ErrKeyNotFound.
func (s *Store) GetACIInfoWithBlobKey(blobKey string) (*ACIInfo, error) {
	if err := s.live(); err != nil {
		return nil, err
	}
	if err := checkFullKey(blobKey); err != nil {
		return nil, err
	}
	ai, found, err := aciinfoWithBlobKey(s.db.prepared, blobKey)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("ACI info not found with blob key %q: %w", blobKey, ErrKeyNotFound)
	}
	return ai, nil
}

// HasFullKey returns whether the image with the given key exists in the
// store. Anything that is not a full key (including malformed input, on
// which rkt panicked) returns false. The database row is what makes an image
// exist: it commits after the files are in place.
func (s *Store) HasFullKey(key string) bool {
	if s.live() != nil || checkFullKey(key) != nil {
		return false
	}
	found, err := hasACIInfo(s.db.prepared, key)
	return err == nil && found
}
