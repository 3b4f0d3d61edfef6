package main

import (
	"bytes"
	"fmt"
	"strconv"
	"time"

	"github.com/appc/spec/schema/types"
	store "github.com/imagestore/imagestore"
)

// tinyName and tinyLabels name image i of a population: names of ten
// versions each, labelled version=<n> and os=linux.
func tinyName(prefix string, i int) string { return fmt.Sprintf("example.com/%s-%d", prefix, i/10) }

func tinyLabels(i int) []string {
	return []string{"version=" + strconv.Itoa(i%10), "os=linux"}
}

// tinyLatest says whether image i is imported as latest (as if fetched
// without a version): the newest version of each name.
func tinyLatest(i int) bool { return i%10 == 9 }

// metadata fills a store with tiny images and measures the metadata calls
// on it, each for a fixed time per run, median of the runs.
func (b *bench) metadata() error {
	c := b.cfg
	s, err := store.NewStore(b.dirFor("metadata"))
	if err != nil {
		return err
	}
	defer s.Close()
	n := c.tiny
	b.progress("writing %d tiny images (%d names x 10 versions)", n, n/10)
	keys := make([]string, n)
	for i := range keys {
		img, err := tinyImage(tinyName("app", i), tinyLabels(i)...)
		if err != nil {
			return err
		}
		if keys[i], err = s.WriteACI(bytes.NewReader(img), store.ACIFetchInfo{Latest: tinyLatest(i)}); err != nil {
			return err
		}
	}

	b.progress("timing metadata calls at %d images, %v each, %d run(s)", n, c.opTime, c.runs)
	names := n / 10
	ops := []struct {
		name, unit string
		min        float64
		fn         func(i int) error
	}{
		{"ResolveKey, 12-hex prefix", "ops/s", 20000, func(i int) error {
			k := keys[spread(i, n)]
			got, err := s.ResolveKey(k[:len("sha512-")+12])
			return check(err, got == k, "ResolveKey")
		}},
		{"GetACI, version label", "ops/s", 5000, func(i int) error {
			j := spread(i, n)
			got, err := s.GetACI(types.ACIdentifier(tinyName("app", j)), types.Labels{{Name: "version", Value: strconv.Itoa(j % 10)}})
			return check(err, got == keys[j], "GetACI")
		}},
		{"GetACI, no labels (latest)", "ops/s", 5000, func(i int) error {
			j := spread(i, names)*10 + 9
			got, err := s.GetACI(types.ACIdentifier(tinyName("app", j)), nil)
			return check(err, got == keys[j], "GetACI latest")
		}},
		{"GetImageManifest", "ops/s", 20000, func(i int) error {
			j := spread(i, n)
			m, err := s.GetImageManifest(keys[j])
			return check(err, err == nil && m.Name.String() == tinyName("app", j), "GetImageManifest")
		}},
		{fmt.Sprintf("GetAllACIInfos, all %d rows", n), "listings/s", 300, func(i int) error {
			ais, err := s.GetAllACIInfos([]string{"importtime"}, true)
			return check(err, len(ais) == n, "GetAllACIInfos")
		}},
		{"WriteRemote + GetRemote", "pairs/s", 1000, func(i int) error {
			j := spread(i, n)
			r := &store.Remote{ACIURL: fmt.Sprintf("https://example.com/images/%d.aci", j), ETag: strconv.Itoa(i), BlobKey: keys[j], CacheMaxAge: 60, DownloadTime: time.Now()}
			if err := s.WriteRemote(r); err != nil {
				return err
			}
			got, err := s.GetRemote(r.ACIURL)
			return check(err, err == nil && got.ETag == r.ETag, "GetRemote")
		}},
	}
	for _, op := range ops {
		rate, err := opsRate(c.runs, c.opTime, op.fn)
		if err != nil {
			return fmt.Errorf("%s: %w", op.name, err)
		}
		b.add("metadata", op.name, rate, op.unit, "", 0, atLeast(op.min), "")
	}
	// Writes and removals at n images, after the reads so that those see
	// exactly n images: a batch of extra images per run. Both are bound
	// by the disk's flush latency, so they are reported against the
	// durable primitives, timed just before (durable.go).
	base, err := b.durable("metadata")
	if err != nil {
		return err
	}
	batch := max(10, n/10)
	var writes, removes []float64
	extra := make([][]string, c.runs)
	for run := range c.runs {
		imgs := make([][]byte, batch)
		for j := range imgs {
			if imgs[j], err = tinyImage(fmt.Sprintf("example.com/extra-%d", run), "version="+strconv.Itoa(j), "os=linux"); err != nil {
				return err
			}
		}
		t0 := time.Now()
		for _, img := range imgs {
			key, err := s.WriteACI(bytes.NewReader(img), store.ACIFetchInfo{})
			if err != nil {
				return err
			}
			extra[run] = append(extra[run], key)
		}
		writes = append(writes, float64(batch)/time.Since(t0).Seconds())
	}

	b.add("metadata", "WriteACI, tiny image", median(writes), "images/s", publishName, base.publish, atLeastRatio(tinyWriteRatio),
		fmt.Sprintf("%d images per run into the store of %d, every fsync on; runs: %s", batch, n, runsList(writes, "%.0f")))

	for _, ks := range extra {
		t0 := time.Now()
		for _, k := range ks {
			if err := s.RemoveACI(k); err != nil {
				return err
			}
		}
		removes = append(removes, float64(len(ks))/time.Since(t0).Seconds())
	}
	b.add("metadata", "RemoveACI, tiny image", median(removes), "images/s", fdatasyncName, base.fdatasync, atLeastRatio(tinyRemoveRatio),
		fmt.Sprintf("%d images per run; runs: %s", batch, runsList(removes, "%.0f")))
	return nil
}

// check turns a call's error and a check of its answer into one error.
func check(err error, ok bool, what string) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if !ok {
		return fmt.Errorf("%s: wrong answer", what)
	}
	return nil
}
