//go:build unix

// This file holds the manifest cache: recently read manifests, kept in
// memory and dropped when their image changes.

package store

import "sync"

// manifestCache keeps the JSON of recently read manifests. A key names its
// content, so an entry never goes stale: after a removal the key no longer
// resolves and the entry is never reached (removals drop it anyway). It is
// bounded, dropping the oldest entry first.
type manifestCache struct {
	mu    sync.Mutex
	byKey map[string][]byte
	order []string // insertion order, a ring of cap entries
	next  int
}

const manifestCacheSize = 1024

func newManifestCache() *manifestCache {
	return &manifestCache{byKey: make(map[string][]byte), order: make([]string, manifestCacheSize)}
}

// get returns the cached JSON of key; callers must not modify it.
func (c *manifestCache) get(key string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.byKey[key]
	return b, ok
}

func (c *manifestCache) put(key string, imj []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byKey[key]; ok {
		return
	}
	if old := c.order[c.next]; old != "" {
		delete(c.byKey, old)
	}
	c.order[c.next] = key
	c.next = (c.next + 1) % len(c.order)
	c.byKey[key] = imj
}

func (c *manifestCache) drop(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.byKey, key) // its ring slot is reused in turn
}
