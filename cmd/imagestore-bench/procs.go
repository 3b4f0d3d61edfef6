package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"time"

	store "github.com/imagestore/imagestore"
)

// memory writes a large image tar to a file, streamed, and has a child
// process ingest it; the figure is the child's peak RSS as the kernel
// reports it to the parent (ru_maxrss).
func (b *bench) memory() error {
	c := b.cfg
	if c.skipRSS {
		b.note("peak RSS not measured (--skip-rss)")
		return nil
	}
	dir := b.dirFor("memory")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	path := dir + "/image.tar"
	b.progress("writing a %d MiB image to %s, streamed", c.rssMiB, path)
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, mib)
	err = writeLargeImage(bw, "example.com/bench-rss", int64(c.rssMiB)*mib, 2)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write image: %w", err)
	}
	b.progress("child process: NewStore + WriteACI of the %d MiB file", c.rssMiB)
	ch, err := startChild("ingest", dir+"/store", path)
	if err != nil {
		return err
	}
	rep, err := ch.wait()
	if err != nil {
		return err
	}
	kib, ok := maxRSSKiB(ch.cmd.ProcessState)
	if !ok {
		b.note("peak RSS not measured: no ru_maxrss in KiB on %s", osName())
		return os.RemoveAll(dir)
	}
	note := fmt.Sprintf("ru_maxrss of the child; it saw VmHWM %.1f MiB itself; the ingest took %.1f s", float64(rep.VmHWMKiB)/1024, rep.Seconds)
	b.add("memory", "peak RSS, ingest from a file", float64(kib)/1024, "MiB", "", 0, below(64), note)
	return os.RemoveAll(dir)
}

// contention runs the contention loop --runs times, each on a new store,
// and reports the median wall time, like every other figure; the note
// lists every run, since fsync latency on a shared disk moves a lot.
func (b *bench) contention() error {
	c := b.cfg
	var walls, slowests, rates, publishes []float64
	errs, first := 0, ""
	for run := range c.runs {
		// Each run has its own baseline, timed just before it: fsync
		// latency moves from minute to minute (durable.go).
		base, err := measureDurable(b.dirFor(fmt.Sprintf("contention-durable-%d", run)), 1, c.opTime)
		if err != nil {
			return err
		}
		publishes = append(publishes, base.publish)
		b.progress("contention run %d of %d: %d processes x %d loops on one store", run+1, c.runs, c.procs, c.loops)
		wall, reps, err := b.contentionRun(b.dirFor(fmt.Sprintf("contention-%d", run)))
		if err != nil {
			return err
		}
		slowest := 0.0
		for _, rep := range reps {
			slowest = max(slowest, rep.Seconds)
			errs += rep.Errors
			if first == "" {
				first = rep.FirstError
			}
		}
		walls, slowests = append(walls, wall), append(slowests, slowest)
		rates = append(rates, float64(c.procs*c.loops)/wall)
	}
	b.add("contention", "baseline: "+publishName, median(publishes), "ops/s", "", 0, nil,
		"timed just before each run; runs: "+runsList(publishes, "%.0f"))
	b.add("contention", "fetch loops, all processes", median(rates), "loops/s", publishName, median(publishes), atLeastRatio(contentionRatio),
		fmt.Sprintf("each loop writes, resolves, reads, finds and removes one tiny image; runs: %s loops/s", runsList(rates, "%.0f")))
	b.add("contention", "total wall time", median(walls), "s", "", 0, nil,
		fmt.Sprintf("from the first process start to the last exit; runs: %s s; slowest process (median) %.2f s",
			runsList(walls, "%.2f"), median(slowests)))
	note := ""
	if first != "" {
		note = "first: " + first
	}
	b.add("contention", "errors", float64(errs), "errors", "", 0, atMost(0), note)
	return nil
}

// contentionRun starts the processes of the contention loop on a new store
// in dir at once, and returns the wall time from the first start to the
// last exit and each process's report.
func (b *bench) contentionRun(dir string) (float64, []childReport, error) {
	c := b.cfg
	s, err := store.NewStore(dir) // create it, so that the children only open it
	if err != nil {
		return 0, nil, err
	}
	if err := s.Close(); err != nil {
		return 0, nil, err
	}
	t0 := time.Now()
	children := make([]*child, c.procs)
	for p := range children {
		if children[p], err = startChild("contend", dir, strconv.Itoa(p), strconv.Itoa(c.loops)); err != nil {
			for _, ch := range children[:p] {
				ch.cmd.Wait()
			}
			return 0, nil, err
		}
	}
	reps := make([]childReport, 0, len(children))
	var werr error
	for _, ch := range children {
		rep, err := ch.wait()
		if err != nil {
			werr = err
			continue
		}
		reps = append(reps, rep)
	}
	return time.Since(t0).Seconds(), reps, werr
}
