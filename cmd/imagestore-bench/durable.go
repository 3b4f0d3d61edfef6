package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// The figures that make data durable (a tiny WriteACI, a removal, the
// contention loop) are bound by the disk's flush latency, which on a shared
// virtual disk moves from minute to minute. Each is therefore reported
// against the same primitives timed by this program in the same run, just
// before it, on the same filesystem, as ingest is reported against
// SHA-512.

// durableBaseline is the rate of the two primitives a durable store is
// made of, in operations per second.
type durableBaseline struct {
	fdatasync float64 // append 4 KiB to a file and fdatasync it, as a WAL commit does
	publish   float64 // create a file, write 4 KiB, fsync, rename, fsync the directory
}

const (
	fdatasyncName = "4 KiB append + fdatasync"
	publishName   = "create+write+fsync+rename+dir fsync"
)

// The targets, as ratios to the baseline of the same run. A tiny WriteACI
// publishes its blob (the publish primitive) and then commits and flushes
// the WAL (one more fdatasync); a removal commits and flushes the WAL; a
// contention loop is a write and a removal, with four processes sharing
// flushes.
//
// The targets sit below the lowest ratio seen on this project's machine
// while other jobs loaded its disk (docs/performance.md): the baseline and
// the figure are timed a few seconds apart, and that is how far the
// disk's latency moves in a few seconds there.
const (
	tinyWriteRatio  = 0.15
	tinyRemoveRatio = 0.10
	contentionRatio = 0.15
)

// measureDurable times both primitives in dir, each for d per run, and
// returns the medians of runs.
func measureDurable(dir string, runs int, d time.Duration) (durableBaseline, error) {
	var b durableBaseline
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return b, err
	}
	block := bytes.Repeat([]byte{0xa5}, 4096)

	f, err := os.Create(filepath.Join(dir, "fdatasync"))
	if err != nil {
		return b, err
	}
	defer f.Close()
	if b.fdatasync, err = opsRate(runs, d, func(i int) error {
		// The file grows with each append, so each fdatasync commits the
		// new size too, as the WAL's do; it starts over now and then.
		if _, err := f.WriteAt(block, int64(i%1024)*int64(len(block))); err != nil {
			return err
		}
		if i%1024 == 1023 {
			if err := f.Truncate(0); err != nil {
				return err
			}
		}
		return fdatasync(f)
	}); err != nil {
		return b, fmt.Errorf("%s: %w", fdatasyncName, err)
	}

	d0, err := os.Open(dir)
	if err != nil {
		return b, err
	}
	defer d0.Close()
	if b.publish, err = opsRate(runs, d, func(i int) error {
		tmp := filepath.Join(dir, fmt.Sprintf(".tmp-%d", i))
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return err
		}
		if _, err := f.Write(block); err != nil {
			f.Close()
			return err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		if err := os.Rename(tmp, filepath.Join(dir, fmt.Sprintf("file-%d", i%64))); err != nil {
			return err
		}
		return d0.Sync()
	}); err != nil {
		return b, fmt.Errorf("%s: %w", publishName, err)
	}
	return b, nil
}

// durable measures the baseline in a directory of its own beside the
// section's stores and records it as two informational figures of section.
func (b *bench) durable(section string) (durableBaseline, error) {
	c := b.cfg
	b.progress("timing the durable primitives for %s, %v each, %d run(s)", section, c.opTime, c.runs)
	base, err := measureDurable(b.dirFor(section+"-durable"), c.runs, c.opTime)
	if err != nil {
		return base, err
	}
	b.add(section, "baseline: "+fdatasyncName, base.fdatasync, "ops/s", "", 0, nil, "same filesystem, just before")
	b.add(section, "baseline: "+publishName, base.publish, "ops/s", "", 0, nil, "same filesystem, just before")
	return base, nil
}
