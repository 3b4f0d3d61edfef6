package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	store "github.com/imagestore/imagestore"
)

// result is one measured figure. A figure with a baseline has a ratio
// (value / baseline). Its target applies to the ratio or to the value
// (TargetOn), compared with TargetCmp; a figure without a target is
// informational (a baseline, or context) and has no Pass.
type result struct {
	Section      string   `json:"section"`
	Name         string   `json:"name"`
	Value        float64  `json:"value"`
	Unit         string   `json:"unit"`
	BaselineName string   `json:"baseline_name"`
	Baseline     *float64 `json:"baseline"`
	Ratio        *float64 `json:"ratio"`
	TargetOn     string   `json:"target_on"`  // "ratio", "value" or ""
	TargetCmp    string   `json:"target_cmp"` // ">=", "<=", "<" or ""
	Target       *float64 `json:"target"`
	Pass         *bool    `json:"pass"`
	Note         string   `json:"note"`
}

// target describes what a figure must reach.
type target struct {
	on  string // "ratio" or "value"
	cmp string // ">=", "<=" or "<"
	v   float64
}

func atLeastRatio(v float64) *target { return &target{"ratio", ">=", v} }
func atLeast(v float64) *target      { return &target{"value", ">=", v} }
func atMost(v float64) *target       { return &target{"value", "<=", v} }
func below(v float64) *target        { return &target{"value", "<", v} }

// add records a figure. baseline is ignored when baseName is "".
func (b *bench) add(section, name string, value float64, unit, baseName string, baseline float64, t *target, note string) {
	r := result{Section: section, Name: name, Value: value, Unit: unit, Note: note}
	if baseName != "" {
		r.BaselineName = baseName
		r.Baseline = ptr(baseline)
		if baseline != 0 {
			r.Ratio = ptr(value / baseline)
		}
	}
	if t != nil {
		r.TargetOn, r.TargetCmp, r.Target = t.on, t.cmp, ptr(t.v)
		got := value
		if t.on == "ratio" {
			got = 0
			if r.Ratio != nil {
				got = *r.Ratio
			}
		}
		var ok bool
		switch t.cmp {
		case ">=":
			ok = got >= t.v
		case "<=":
			ok = got <= t.v
		case "<":
			ok = got < t.v
		}
		r.Pass = &ok
	}
	b.results = append(b.results, r)
}

func ptr[T any](v T) *T { return &v }

// machine describes where the benchmark ran.
type machine struct {
	Cores        int    `json:"cores"`
	CPU          string `json:"cpu"`
	GoVersion    string `json:"go_version"`
	OS           string `json:"os"`
	Arch         string `json:"arch"`
	SQLiteDriver string `json:"sqlite_driver"`
	Date         string `json:"date"`
	Dir          string `json:"dir"`
}

// context is a figure quoted from the issue, not measured here.
type context struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
}

// report is the whole output; its JSON form is the --json document.
type report struct {
	Tool     string    `json:"tool"`
	Machine  machine   `json:"machine"`
	Settings settings  `json:"settings"`
	Results  []result  `json:"results"`
	Context  []context `json:"issue_context"`
	Notes    []string  `json:"notes"`
	Passed   int       `json:"passed"`
	Missed   int       `json:"missed"`
	Seconds  float64   `json:"seconds"`
}

type settings struct {
	Quick    bool     `json:"quick"`
	Runs     int      `json:"runs"`
	ImageMiB int      `json:"image_mib"`
	RSSMiB   int      `json:"rss_mib"`
	Tiny     int      `json:"tiny_images"`
	Procs    int      `json:"processes"`
	Loops    int      `json:"loops"`
	Scale    int      `json:"scale"`
	Formats  []string `json:"formats"`
}

// issueContext is what the issue measured for rkt's store at 1000 images
// on this machine class. It is printed for comparison, never measured.
var issueContext = []context{
	{"rkt ResolveKey", 200, "ops/s"},
	{"rkt GetACI", 16, "ops/s"},
	{"rkt GetAllACIInfos (full listing)", 5, "ops/s"},
	{"rkt contention 4 procs x 200 loops", 13, "s"},
}

func (b *bench) report() *report {
	c := b.cfg
	r := &report{
		Tool: "imagestore-bench",
		Machine: machine{
			Cores:        runtime.NumCPU(),
			CPU:          cpuModel(),
			GoVersion:    runtime.Version(),
			OS:           runtime.GOOS,
			Arch:         runtime.GOARCH,
			SQLiteDriver: store.SQLiteDriver,
			Date:         b.started.UTC().Format(time.RFC3339),
			Dir:          b.work,
		},
		Settings: settings{c.quick, c.runs, c.imageMiB, c.rssMiB, c.tiny, c.procs, c.loops, c.scale, c.formats},
		Results:  b.results,
		Context:  issueContext,
		Notes:    append([]string{}, b.notes...),
		Seconds:  time.Since(b.started).Seconds(),
	}
	for _, res := range b.results {
		if res.Pass != nil {
			if *res.Pass {
				r.Passed++
			} else {
				r.Missed++
			}
		}
	}
	return r
}

// cpuModel is the first "model name" of /proc/cpuinfo, or "unknown".
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func writeJSON(w io.Writer, r *report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// writeText prints the report as aligned tables, one per section.
func writeText(w io.Writer, r *report) error {
	bw := bufio.NewWriter(w)
	m := r.Machine
	fmt.Fprintf(bw, "imagestore-bench  %s\n", m.Date)
	fmt.Fprintf(bw, "machine: %d cores, %s, %s %s/%s, %s\n", m.Cores, m.CPU, m.GoVersion, m.OS, m.Arch, m.SQLiteDriver)
	s := r.Settings
	mode := "full"
	if s.Quick {
		mode = "quick"
	}
	fmt.Fprintf(bw, "run: %s, median of %d run(s), stores under %s\n", mode, s.Runs, m.Dir)
	var sections []string
	for _, res := range r.Results {
		if !slices.Contains(sections, res.Section) {
			sections = append(sections, res.Section)
		}
	}
	for _, sec := range sections {
		fmt.Fprintf(bw, "\n%s\n", sectionTitle(sec, s))
		fmt.Fprintf(bw, "  %-34s %16s  %-34s %7s  %-18s %s\n", "figure", "value", "baseline", "ratio", "target", "")
		for _, res := range r.Results {
			if res.Section != sec {
				continue
			}
			base, ratio := "", ""
			if res.Baseline != nil {
				base = fmt.Sprintf("%s %s", res.BaselineName, formatValue(*res.Baseline, res.Unit))
			}
			if res.Ratio != nil {
				ratio = fmt.Sprintf("%.2fx", *res.Ratio)
			}
			tgt, verdict := "", ""
			if res.Target != nil {
				if res.TargetOn == "ratio" {
					tgt = fmt.Sprintf("%s %.2fx", res.TargetCmp, *res.Target)
				} else {
					tgt = fmt.Sprintf("%s %s", res.TargetCmp, formatValue(*res.Target, res.Unit))
				}
				verdict = "MISS"
				if *res.Pass {
					verdict = "pass"
				}
			}
			fmt.Fprintf(bw, "  %-34s %16s  %-34s %7s  %-18s %s\n", res.Name, formatValue(res.Value, res.Unit), base, ratio, tgt, verdict)
			if res.Note != "" {
				fmt.Fprintf(bw, "  %-34s %s\n", "", res.Note)
			}
		}
	}
	fmt.Fprintf(bw, "\ncontext, the issue's figures for rkt's store at 1000 images (not measured here):\n")
	for _, c := range r.Context {
		fmt.Fprintf(bw, "  %-34s %16s\n", c.Name, formatValue(c.Value, c.Unit))
	}
	if len(r.Notes) > 0 {
		fmt.Fprintf(bw, "\nnotes:\n")
		for _, n := range r.Notes {
			fmt.Fprintf(bw, "  - %s\n", n)
		}
	}
	fmt.Fprintf(bw, "\n%d targets met, %d missed, in %.0f s\n", r.Passed, r.Missed, r.Seconds)
	return bw.Flush()
}

func sectionTitle(sec string, s settings) string {
	switch sec {
	case "ingest":
		return fmt.Sprintf("INGEST: WriteACI of a %d MiB image from memory, MiB/s of uncompressed tar", s.ImageMiB)
	case "read":
		return fmt.Sprintf("READ: the stored %d MiB image read to the end", s.ImageMiB)
	case "memory":
		return fmt.Sprintf("MEMORY: peak RSS of a child process ingesting a %d MiB image from a file", s.RSSMiB)
	case "metadata":
		return fmt.Sprintf("METADATA: %d tiny images, %d names x 10 versions", s.Tiny, s.Tiny/10)
	case "contention":
		return fmt.Sprintf("CONTENTION: %d processes x %d loops of write, ResolveKey, ReadStream, GetACI, RemoveACI on one store", s.Procs, s.Loops)
	case "scale":
		return fmt.Sprintf("SCALE: at %d images against 1,000 images, same store", s.Scale)
	}
	return strings.ToUpper(sec)
}

// formatValue prints v in unit with a sensible precision.
func formatValue(v float64, unit string) string {
	switch unit {
	case "ops/s", "images/s", "pairs/s", "listings/s":
		return fmt.Sprintf("%s %s", thousands(v), unit)
	case "errors":
		return fmt.Sprintf("%.0f %s", v, unit)
	case "ms":
		return fmt.Sprintf("%.2f %s", v, unit)
	}
	return fmt.Sprintf("%.1f %s", v, unit)
}

// thousands prints v rounded, with thousands separators.
func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}
