package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMain lets the test binary stand in for the program's own binary when
// the benchmark re-executes itself as a child.
func TestMain(m *testing.M) {
	if role := os.Getenv(childEnv); role != "" {
		os.Exit(childMain(role, os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestQuickJSON runs the whole program in --quick mode and checks the shape
// of its JSON report and that every figure is positive. It asserts no
// timing: the machine is shared and noisy.
func TestQuickJSON(t *testing.T) {
	dir := t.TempDir()
	svg := filepath.Join(dir, "ingest.svg")
	args := []string{"--quick", "--json", "--dir", dir, "--svg", svg}
	if raceEnabled || testing.Short() {
		// The pure-Go decoders run many times slower under the race
		// detector; bzip2 alone would take minutes.
		args = append(args, "--formats", "tar,gzip,xz", "--image-mib", "8", "--rss-mib", "16")
	}
	var stdout, stderr bytes.Buffer
	if code := run(args, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit status %d; stderr:\n%s", code, stderr.String())
	}
	var rep report
	dec := json.NewDecoder(&stdout)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("decode report: %v\n%s", err, stdout.String())
	}
	if rep.Tool != "imagestore-bench" || rep.Machine.Cores < 1 || rep.Machine.GoVersion == "" || rep.Machine.Date == "" || rep.Machine.CPU == "" {
		t.Errorf("machine: %+v", rep.Machine)
	}
	if !rep.Settings.Quick {
		t.Errorf("settings: %+v", rep.Settings)
	}
	sections := map[string]int{}
	for _, r := range rep.Results {
		sections[r.Section]++
		if r.Name == "" || r.Unit == "" {
			t.Errorf("result without a name or unit: %+v", r)
		}
		// An error count is a figure whose target is zero.
		if r.Value <= 0 && !(r.Unit == "errors" && r.Value == 0) {
			t.Errorf("%s/%s = %v %s, want > 0", r.Section, r.Name, r.Value, r.Unit)
		}
		if (r.Baseline == nil) != (r.BaselineName == "") {
			t.Errorf("%s: baseline %v named %q", r.Name, r.Baseline, r.BaselineName)
		}
		if r.Baseline != nil && (*r.Baseline <= 0 || r.Ratio == nil || *r.Ratio <= 0) {
			t.Errorf("%s: baseline %v ratio %v", r.Name, r.Baseline, r.Ratio)
		}
		if (r.Target == nil) != (r.Pass == nil) || (r.Target != nil && (r.TargetCmp == "" || r.TargetOn == "")) {
			t.Errorf("%s: target %v %q on %q, pass %v", r.Name, r.Target, r.TargetCmp, r.TargetOn, r.Pass)
		}
	}
	for _, s := range []string{"memory", "ingest", "read", "metadata", "contention"} {
		if sections[s] == 0 {
			t.Errorf("no results in section %s", s)
		}
	}
	if rep.Passed+rep.Missed == 0 {
		t.Error("no targets judged")
	}
	b, err := os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), "<svg") || !strings.Contains(string(b), "SHA-512") {
		t.Errorf("svg: %.200s", b)
	}
	// Nothing is left behind but the chart.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("left in --dir: %v", entries)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--formats", "zip"},
		{"--scale", "10"},
		{"--no-such-flag"},
		{"extra"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != exitUsage {
			t.Errorf("%v: exit status %d, want %d", args, code, exitUsage)
		}
	}
}
