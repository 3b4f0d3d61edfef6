// This file holds what the image store's removals need of the tree store:
// finding the trees of an image, and removing those no image needs.

package treestore

import "fmt"

// IDsOf lists the trees (rendered or partial) that render the image with
// the given full key: the trees to remove with the image (RemoveACI).
func (ts *Store) IDsOf(key string) ([]string, error) {
	ids, err := ts.GetIDs()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, id := range ids {
		if k, err := ts.GetImageHash(id); err == nil && k == key {
			out = append(out, id)
		}
	}
	return out, nil
}

// GC removes the trees whose image is no longer in the image store, and
// partial trees (a render or a removal that did not finish) that no render
// is writing now. It returns the ids it removed. Call it after the image
// store's RemoveACI or GC; a tree being rendered or checked meanwhile is
// left for the next GC.
func (ts *Store) GC() ([]string, error) { return ts.gc(false) }

// Garbage lists what GC would remove now, and removes nothing.
func (ts *Store) Garbage() ([]string, error) { return ts.gc(true) }

func (ts *Store) gc(dryRun bool) ([]string, error) {
	ids, err := ts.GetIDs()
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, id := range ids {
		gone, err := ts.collect(id, dryRun)
		if err != nil {
			return removed, fmt.Errorf("tree %s: %w", id, err)
		}
		if gone {
			removed = append(removed, id)
		}
	}
	return removed, nil
}

// collect removes the tree if GC should, under its lock taken without
// waiting (a tree in use is not garbage).
func (ts *Store) collect(id string, dryRun bool) (bool, error) {
	lock, ok, err := tryLockTree(ts.lockDir, id, exclusive)
	if err != nil || !ok {
		return false, err
	}
	defer lock.close()
	rendered, err := ts.IsRendered(id)
	if err != nil {
		return false, err
	}
	if rendered {
		key, err := ts.GetImageHash(id)
		if err == nil && ts.store.HasFullKey(key) {
			return false, nil
		}
	}
	if dryRun {
		return true, nil
	}
	return true, ts.remove(id)
}
