package convert

import (
	"archive/tar"
	"strings"
	"testing"
)

// flattenCases are hand-made layer stacks, each aimed at one rule.
var flattenCases = []struct {
	name   string
	layers [][]ent
}{
	{"basic", [][]ent{{
		dir("bin"), file("bin/sh", "#!shell"), {name: "bin/su", body: "su", mode: 0o4755},
		dir("etc"), file("etc/passwd", "root:x:0:0"), {name: "etc/shadow", body: "secret", mode: 0o600, uid: 42},
		symlink("etc/abs", "/bin/sh"), symlink("etc/rel", "../bin/sh"), symlink("dangling", "/nowhere"),
		hardlink("bin/sh2", "bin/sh"), {name: "fifo", typ: tar.TypeFifo},
		{name: "tmp", typ: tar.TypeDir, mode: 0o1777}, file("empty", ""),
		{name: "pax_global_header", typ: tar.TypeXGlobalHeader},
		dir("long"), file("long/"+strings.Repeat("n", 120)+"/"+strings.Repeat("m", 120), "long name"),
		file("long/héllo wörld ☃", "utf-8"), {name: "long/bigid", body: "uid", uid: 3000000},
		hardlink("long/"+strings.Repeat("l", 150), "bin/sh"),
	}}},
	{"whiteout removes a lower file and a lower tree", [][]ent{
		{dir("a"), file("a/x", "x"), dir("a/sub"), file("a/sub/y", "y"), file("keep", "k")},
		{whiteout("a/x"), whiteout("a/sub")},
	}},
	{"opaque directory hides the lower content only", [][]ent{
		{dir("d"), file("d/old1", "1"), dir("d/olddir"), file("d/olddir/f", "f"), file("other", "o")},
		{dir("d"), opaque("d"), file("d/new", "n")},
	}},
	{"opaque marker after the new content in the same layer", [][]ent{
		{dir("d"), file("d/old", "1")},
		{dir("d"), file("d/new", "n"), opaque("d")},
	}},
	{"hard link to a target whited out later (gcr #977)", [][]ent{
		{dir("bin"), file("bin/busybox", "BUSYBOX")},
		{hardlink("bin/ls", "bin/busybox")},
		{whiteout("bin/busybox")},
	}},
	{"hard link in a newer directory keeps a removed file", [][]ent{
		{dir("old"), file("old/t", "T")},
		{dir("new"), hardlink("new/l", "old/t")},
		{whiteout("old")},
	}},
	{"hard link in the layer that whites its target out", [][]ent{
		{file("t", "TARGET")},
		{hardlink("l", "t"), whiteout("t")},
	}},
	{"links keep the content an upper layer overwrote (gcr #2002)", [][]ent{
		{file("t", "OLD"), hardlink("l1", "t"), hardlink("l2", "t")},
		{file("t", "NEW, longer")},
	}},
	{"link chain through a link, then the original removed", [][]ent{
		{file("a", "A"), hardlink("b", "a")},
		{hardlink("c", "b")},
		{whiteout("a"), file("b", "B2")},
	}},
	{"whiteout and re-created directory in the same layer", [][]ent{
		{dir("d"), file("d/x", "x"), file("d/y", "y")},
		{whiteout("d"), dir("d"), file("d/z", "z")},
	}},
	{"re-created directory before its whiteout in the same layer", [][]ent{
		{dir("d"), file("d/x", "x")},
		{dir("d"), file("d/z", "z"), whiteout("d")},
	}},
	{"whiteout and re-created file in the same layer (docker2aci)", [][]ent{
		{file("f", "lower")},
		{file("f", "upper"), whiteout("f")},
	}},
	{"replacements across layers", [][]ent{
		{file("f2s", "f"), symlink("s2f", "/x"), dir("d"), file("d/x", "x"), {name: "m", body: "m", mode: 0o600}},
		{symlink("f2s", "/etc"), file("s2f", "now a file"), {name: "d", typ: tar.TypeDir, mode: 0o700, uid: 7}, {name: "m", body: "m2", mode: 0o755, uid: 3}},
	}},
	{"absolute and dot names", [][]ent{
		{dir("./"), dir("./usr/"), dir("/usr/lib"), file("./usr/lib/a", "a"), file("/usr/lib/b", "b")},
		{whiteout("./usr/lib/a")},
	}},
	{"implied parents", [][]ent{
		{file("x/y/z", "deep")},
		{file("x/w", "w")},
	}},
	{"aufs metadata is not content", [][]ent{
		{file(".wh..wh.aufs", ""), dir(".wh..wh.plnk"), file("real", "r")},
	}},
}

func buildLayers(t testing.TB, spec [][]ent) [][]byte {
	var layers [][]byte
	for _, l := range spec {
		layers = append(layers, layerTar(t, l...))
	}
	return layers
}

// TestFlattenMatchesGNUTar converts each case from every input format and
// compares the rootfs, entry by entry, with GNU tar's flattening.
func TestFlattenMatchesGNUTar(t *testing.T) {
	for _, tc := range flattenCases {
		t.Run(tc.name, func(t *testing.T) {
			layers := buildLayers(t, tc.layers)
			var want map[string]rec
			if tc.name == "hard link in the layer that whites its target out" {
				// GNU tar cannot link to what was removed before it
				// unpacks; by the spec the link keeps the lower file.
				want = map[string]rec{"l": {typ: 'f', mode: 0o644, size: 6, sum: sumOf("TARGET"), mtime: testTime.Unix()}}
			} else {
				want = referenceTree(t, layers)
			}
			img := buildImage(t, gzipLayers, layers...)
			var first []byte
			for _, f := range formats {
				t.Run(f.name, func(t *testing.T) {
					p := f.write(t, t.TempDir(), namedImage{"example.com/test/flatten:1", img})
					aci, _ := convertFile(t, p, "")
					compareTrees(t, aciTree(t, aci), want)
					if f.name != "docker-legacy" {
						if first == nil {
							first = aci
						} else if string(aci) != string(first) {
							t.Errorf("ACI differs from the %s one", formats[0].name)
						}
					}
				})
			}
		})
	}
}
