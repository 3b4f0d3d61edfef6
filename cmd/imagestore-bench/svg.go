package main

import (
	"bytes"
	"errors"
	"fmt"
	"html"
	"math"
	"os"
	"strings"
)

// writeSVG draws the ingest figures of r: one bar per format, the SHA-512
// rate as a dashed line across (the ceiling: the key is that hash), and
// for xz and bzip2 a tick at the rate of their decoder alone.
func writeSVG(path string, r *report) error {
	type bar struct {
		label   string
		value   float64
		decoder float64 // 0: none
		pass    *bool
	}
	var bars []bar
	var sha float64
	byName := map[string]result{}
	for _, res := range r.Results {
		if res.Section == "ingest" {
			byName[res.Name] = res
		}
	}
	sha = byName["SHA-512 of the tar in memory"].Value
	for _, f := range allFormats {
		res, ok := byName["WriteACI "+f]
		if !ok {
			continue
		}
		b := bar{label: f, value: res.Value, pass: res.Pass}
		if res.BaselineName != "sha512" { // gzip's decoder is context only, far above the bars
			b.decoder = byName[f+" decoder alone"].Value
		}
		bars = append(bars, b)
	}
	if len(bars) == 0 || sha == 0 {
		return errors.New("svg: no ingest figures to draw")
	}

	const (
		width, height = 760, 360
		left, right   = 70, 90 // room for the decoder labels right of the last bar
		top, bottom   = 50, 60
		plotW, plotH  = width - left - right, height - top - bottom
	)
	top1 := sha
	for _, b := range bars {
		top1 = max(top1, b.value, b.decoder)
	}
	scaleMax := niceCeil(top1 * 1.1)
	y := func(v float64) float64 { return top + plotH - v/scaleMax*plotH }

	var sb bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&sb, format, args...); sb.WriteByte('\n') }
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`, width, height, width, height)
	p(`<rect width="100%%" height="100%%" fill="white"/>`)
	p(`<text x="%d" y="22" font-size="15" font-weight="bold">WriteACI throughput of a %d MiB image, MiB/s of uncompressed tar</text>`, left, r.Settings.ImageMiB)
	p(`<text x="%d" y="40" fill="#555">%s</text>`, left, html.EscapeString(fmt.Sprintf("%d cores, %s, %s, %s, median of %d", r.Machine.Cores, r.Machine.CPU, r.Machine.GoVersion, r.Machine.Date[:10], r.Settings.Runs)))
	// Axis and grid.
	for i := 0; i <= 5; i++ {
		v := scaleMax * float64(i) / 5
		p(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`, left, y(v), left+plotW, y(v))
		p(`<text x="%d" y="%.1f" text-anchor="end" fill="#555">%.0f</text>`, left-6, y(v)+4, v)
	}
	p(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>`, left, top+plotH, left+plotW, top+plotH)
	// Bars.
	missed := false
	slot := float64(plotW) / float64(len(bars))
	barW := slot * 0.5
	for i, b := range bars {
		x := float64(left) + slot*float64(i) + (slot-barW)/2
		fill := "#4a7bb7"
		if b.pass != nil && !*b.pass {
			fill = "#c8553d"
		}
		p(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`, x, y(b.value), barW, float64(top+plotH)-y(b.value), fill)
		p(`<text x="%.1f" y="%.1f" text-anchor="middle">%.0f</text>`, x+barW/2, min(y(b.value), y(b.decoder))-6, b.value)
		p(`<text x="%.1f" y="%d" text-anchor="middle">%s</text>`, x+barW/2, top+plotH+18, b.label)
		if b.decoder > 0 {
			p(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#222" stroke-width="3"/>`, x-6, y(b.decoder), x+barW+6, y(b.decoder))
			p(`<text x="%.1f" y="%.1f" font-size="10" fill="#222">decoder %.0f</text>`, x+barW+8, y(b.decoder)+4, b.decoder)
		}
		if b.pass != nil && !*b.pass {
			missed = true
		}
	}
	// The ceiling.
	p(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#2a9d4b" stroke-width="2" stroke-dasharray="6 4"/>`, left, y(sha), left+plotW, y(sha))
	p(`<text x="%d" y="%.1f" text-anchor="end" fill="#2a9d4b">SHA-512 in memory: %.0f MiB/s</text>`, left+plotW, y(sha)-6, sha)
	// Legend.
	legend := "bars: WriteACI from memory, fsync included"
	if strings.Contains(sb.String(), `stroke-width="3"`) {
		legend += "; black tick: the decoder alone"
	}
	if missed {
		legend += "; red: target missed"
	}
	p(`<text x="%d" y="%d" fill="#555">%s</text>`, left, height-14, legend)
	p(`</svg>`)
	if err := os.WriteFile(path, sb.Bytes(), 0o644); err != nil {
		return fmt.Errorf("svg: %w", err)
	}
	return nil
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}
