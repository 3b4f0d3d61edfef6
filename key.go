//go:build unix

// This file holds the key format: checking keys and prefixes, turning
// hashes into keys, and the shard of a key.

package store

import (
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
)

// Keys name images: "sha512-" followed by the first half (64 hex digits) of
// the SHA-512 of the uncompressed image tar. This file is the only place
// that knows the format; every key from a caller passes through checkKey or
// checkFullKey before it reaches a path or a query.
const (
	hashPrefix = "sha512-"
	lenHash    = sha512.Size       // raw digest bytes
	lenHashKey = (lenHash / 2) * 2 // hex digits kept in a key
	lenKey     = len(hashPrefix) + lenHashKey
	minLenKey  = len(hashPrefix) + 2 // at least sha512-aa
)

// checkKey accepts a full key or a key prefix, sha512-[0-9a-f]{2,64}. As in
// rkt, a key longer than a full key is first truncated to that length, so
// that whatever follows a full key is ignored. Its errors are, in order,
// ErrWrongKeyPrefix, ErrKeyTooShort and ErrInvalidKey.
func checkKey(key string) (string, error) {
	if len(key) < len(hashPrefix) || key[:len(hashPrefix)] != hashPrefix {
		return "", ErrWrongKeyPrefix
	}
	if len(key) < minLenKey {
		return "", ErrKeyTooShort
	}
	if len(key) > lenKey {
		key = key[:lenKey]
	}
	if !isLowerHex(key[len(hashPrefix):]) {
		return "", fmt.Errorf("%w: %s", ErrInvalidKey, quoteKey(key))
	}
	return key, nil
}

// checkFullKey accepts only a complete key (sha512- and 64 hex digits).
func checkFullKey(key string) error {
	if _, err := checkKey(key); err != nil {
		return err
	}
	if len(key) != lenKey {
		return fmt.Errorf("%w: %s is not a full key (%d characters)", ErrInvalidKey, quoteKey(key), lenKey)
	}
	return nil
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// quoteKey quotes a caller's key for an error message, cut short so that a
// hostile megabyte of input does not become a megabyte of log.
func quoteKey(key string) string {
	const max = 80
	if len(key) > max {
		return fmt.Sprintf("%q…", key[:max])
	}
	return fmt.Sprintf("%q", key)
}

// keyPrefixUpperBound returns the smallest string greater than every key that
// starts with prefix, so that "blobkey >= prefix AND blobkey < bound" is an
// index range. Keys hold only [a-z0-9-], all below 0x7f.
func keyPrefixUpperBound(prefix string) string {
	return prefix + "\x7f"
}

// hashToKey turns a finished SHA-512 into a key. It returns "" when h is not
// a SHA-512 (rkt panicked); "" is rejected by every method as a key.
func hashToKey(h hash.Hash) string {
	if h == nil || h.Size() != lenHash {
		return ""
	}
	return sumToKey(h.Sum(nil))
}

func sumToKey(sum []byte) string {
	return hashPrefix + hex.EncodeToString(sum)[:lenHashKey]
}

// shardPath is the diskv transform: "sha512-abcd…" is kept under
// sha512/ab/. Only checked keys reach it; anything else goes to a directory
// named "invalid" so that no input can name a path outside the store.
func shardPath(key string) []string {
	if len(key) < minLenKey || key[:len(hashPrefix)] != hashPrefix {
		return []string{"invalid"}
	}
	return []string{hashPrefix[:len(hashPrefix)-1], key[len(hashPrefix) : len(hashPrefix)+2]}
}
