//go:build unix

// This file holds the manifest files: read (through the cache), checked,
// and rewritten from the blob when a crash or a full disk lost one.

package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"

	"github.com/appc/spec/schema"
)

// GetImageManifestJSON gets the ImageManifest JSON bytes with the specified
// key (a full key or an unambiguous prefix).
func (s *Store) GetImageManifestJSON(key string) ([]byte, error) {
	imj, _, err := s.manifest(key, false)
	return imj, err
}

// GetImageManifest gets the ImageManifest with the specified key.
func (s *Store) GetImageManifest(key string) (*schema.ImageManifest, error) {
	_, im, err := s.manifest(key, true)
	return im, err
}

// manifest reads the stored manifest of key, and parses it when parse is
// set (else it only checks that the JSON is whole). Manifests are replaced
// only by atomic renames, so the read needs no lock. The manifest file is
// a copy of the manifest inside the blob; one found missing or torn (by a
// bad disk, or a power cut under an older version that did not fsync it)
// is rewritten from the blob, under the key's lock.
func (s *Store) manifest(key string, parse bool) ([]byte, *schema.ImageManifest, error) {
	key, err := s.ResolveKey(key)
	if err != nil {
		return nil, nil, wrap(err, "read manifest")
	}
	if imj, im, ok := s.readManifestFile(key, parse); ok {
		return imj, im, nil
	}
	// key lock, shared (lock 2, doc.go "Locks")
	kl, err := lockKey(s.lockDir, key, false)
	if err != nil {
		return nil, nil, wrap(err, "read manifest")
	}
	defer kl.unlock()
	if !s.HasFullKey(key) {
		return nil, nil, fmt.Errorf("read manifest %s: %w", key, ErrKeyNotFound) // removed meanwhile
	}
	s.cache.drop(key)
	if imj, im, ok := s.readManifestFile(key, parse); ok {
		return imj, im, nil
	}
	imj, im, err := s.healManifest(key)
	if err != nil {
		return nil, nil, wrap(err, "read manifest %s", key)
	}
	return imj, im, nil
}

func (s *Store) readManifestFile(key string, parse bool) ([]byte, *schema.ImageManifest, bool) {
	imj, cached := s.cache.get(key)
	if !cached {
		var err error
		if imj, err = s.manifests.Read(key); err != nil {
			return nil, nil, false
		}
	}
	var im *schema.ImageManifest
	var err error
	if parse || !cached {
		// Parse what comes from the disk even when only the JSON is
		// asked for: a torn file must be rewritten, not served or cached.
		if im, err = parseManifest(imj); err != nil {
			return nil, nil, false
		}
	}
	if !cached {
		s.cache.put(key, imj)
	}
	return append([]byte(nil), imj...), im, true
}

// healManifest rewrites the manifest file of key from its blob. The key is
// locked (shared is enough: concurrent healers write the same bytes, each
// by an atomic rename).
func (s *Store) healManifest(key string) ([]byte, *schema.ImageManifest, error) {
	bkey, _, im, err := inspectBlob(s.blobPath(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("blob missing: %w", ErrKeyNotFound)
	}
	if err != nil {
		return nil, nil, err
	}
	if bkey != key {
		return nil, nil, fmt.Errorf("blob is corrupt: it hashes to %s", bkey)
	}
	imj, err := json.Marshal(im)
	if err != nil {
		return nil, nil, err
	}
	if err := s.replaceManifest(key, imj); err != nil && !isDiskFull(err) {
		return nil, nil, err // on a full disk the blob's copy is served unwritten
	}
	return imj, im, nil
}

// replaceManifest writes the manifest file of key by atomic rename, synced
// first: a power cut must not turn a healed manifest into a torn one.
func (s *Store) replaceManifest(key string, imj []byte) error {
	mf, err := s.writeTemp(imj)
	if err != nil {
		return err
	}
	defer mf.release()
	if err := fdatasync(mf.File); err != nil {
		return err
	}
	return rename(mf, s.manifestPath(key))
}
