package main

import (
	"bytes"
	"database/sql"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/appc/spec/schema/types"
	store "github.com/imagestore/imagestore"
)

// scaleBase is the store size the scale probe compares with.
const scaleBase = 1000

// scaleProbe fills one store to 1,000 images, measures the lookups and
// NewStore, fills it on to --scale images and measures them again. Every
// image goes through WriteACI, so its labels are recorded, and has a remote.
func (b *bench) scaleProbe() error {
	c := b.cfg
	n := c.scale
	dir := b.dirFor("scale")
	s, err := store.NewStore(dir)
	if err != nil {
		return err
	}
	defer func() { s.Close() }()
	keys := make([]string, n)
	if err := b.fill(s, keys, 0, scaleBase); err != nil {
		return err
	}
	small, err := b.scaleLookups(s, keys[:scaleBase])
	if err != nil {
		return err
	}
	if s, err = reopen(s, dir); err != nil {
		return err
	}
	openSmall, err := timeNewStore(dir, c.runs)
	if err != nil {
		return err
	}
	if err := b.fill(s, keys, scaleBase, n); err != nil {
		return err
	}
	if s, err = reopen(s, dir); err != nil {
		return err
	}
	openLarge, err := timeNewStore(dir, c.runs)
	if err != nil {
		return err
	}
	large, err := b.scaleLookups(s, keys)
	if err != nil {
		return err
	}
	for i, l := range large {
		b.add("scale", l.name, l.rate, "ops/s", "at 1,000", small[i].rate, atLeastRatio(0.5), "")
	}
	b.add("scale", "NewStore", openLarge*1000, "ms", "at 1,000", openSmall*1000,
		&target{"ratio", "<=", 2}, "open and close, median; no full scan at open")
	b.note("scale: ratios are the rate at %d images over the rate at 1,000 in the same store; >= 0.50x means at most 2x slower", n)
	return nil
}

// fill writes images from..to-1 of the scale population into keys, with a
// remote each, from several goroutines, printing progress.
func (b *bench) fill(s *store.Store, keys []string, from, to int) error {
	b.progress("scale: writing images %d to %d", from, to)
	const workers = 8
	var next atomic.Int64
	next.Store(int64(from))
	var done atomic.Int64
	errc := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= to {
					return
				}
				img, err := tinyImage(tinyName("scale", i), tinyLabels(i)...)
				if err == nil {
					keys[i], err = s.WriteACI(bytes.NewReader(img), store.ACIFetchInfo{Latest: tinyLatest(i)})
				}
				if err != nil {
					errc <- fmt.Errorf("write image %d: %w", i, err)
					next.Store(int64(to))
					return
				}
				done.Add(1)
			}
		}()
	}
	stop := make(chan struct{})
	go func() {
		t0 := time.Now()
		tick := time.NewTicker(10 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				d := done.Load()
				b.progress("scale: %d of %d images, %.0f images/s", int64(from)+d, to, float64(d)/time.Since(t0).Seconds())
			}
		}
	}()
	wg.Wait()
	close(stop)
	select {
	case err := <-errc:
		return err
	default:
	}
	// One remote per image, a thousand per transaction.
	for lo := from; lo < to; lo += 1000 {
		var fns []func(*sql.Tx) error
		for i := lo; i < min(lo+1000, to); i++ {
			r := &store.Remote{ACIURL: scaleURL(i), BlobKey: keys[i], DownloadTime: time.Now()}
			fns = append(fns, func(tx *sql.Tx) error { return store.WriteRemote(tx, r) })
		}
		if err := s.Do(fns...); err != nil {
			return fmt.Errorf("write remotes: %w", err)
		}
	}
	return nil
}

func scaleURL(i int) string { return fmt.Sprintf("https://example.com/scale/%d.aci", i) }

type lookupRate struct {
	name string
	rate float64
}

// scaleLookups measures the lookups over the images of keys.
func (b *bench) scaleLookups(s *store.Store, keys []string) ([]lookupRate, error) {
	n := len(keys)
	b.progress("scale: timing lookups at %d images", n)
	ops := []struct {
		name string
		fn   func(i int) error
	}{
		{"ResolveKey, 12-hex prefix", func(i int) error {
			k := keys[spread(i, n)]
			got, err := s.ResolveKey(k[:len("sha512-")+12])
			return check(err, got == k, "ResolveKey")
		}},
		{"GetACI, version label", func(i int) error {
			j := spread(i, n)
			got, err := s.GetACI(types.ACIdentifier(tinyName("scale", j)), types.Labels{{Name: "version", Value: strconv.Itoa(j % 10)}})
			return check(err, got == keys[j], "GetACI")
		}},
		{"GetRemote", func(i int) error {
			j := spread(i, n)
			r, err := s.GetRemote(scaleURL(j))
			return check(err, err == nil && r.BlobKey == keys[j], "GetRemote")
		}},
		{"HasFullKey", func(i int) error {
			return check(nil, s.HasFullKey(keys[spread(i, n)]), "HasFullKey")
		}},
	}
	var out []lookupRate
	for _, op := range ops {
		r, err := opsRate(b.cfg.runs, b.cfg.opTime, op.fn)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op.name, err)
		}
		out = append(out, lookupRate{op.name, r})
	}
	return out, nil
}

// reopen closes s and opens its directory again, so that what follows
// starts from a store as a new process would find it.
func reopen(s *store.Store, dir string) (*store.Store, error) {
	if err := s.Close(); err != nil {
		return nil, err
	}
	return store.NewStore(dir)
}

// timeNewStore opens and closes a second Store on dir runs times and
// returns the median seconds of NewStore.
func timeNewStore(dir string, runs int) (float64, error) {
	var ts []float64
	for range max(runs, 3) {
		t0 := time.Now()
		s, err := store.NewStore(dir)
		if err != nil {
			return 0, err
		}
		ts = append(ts, time.Since(t0).Seconds())
		if err := s.Close(); err != nil {
			return 0, err
		}
	}
	return median(ts), nil
}
