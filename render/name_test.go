// This file holds the tests of how tar entry names map to paths.

package render

import "testing"

func TestRootfsName(t *testing.T) {
	for _, tc := range []struct {
		name    string
		rel     string
		ok, err bool
	}{
		{"rootfs", ".", true, false},
		{"rootfs/", ".", true, false},
		{"./rootfs/bin/sh", "bin/sh", true, false},
		{"rootfs//etc/./passwd", "etc/passwd", true, false},
		{"manifest", "", false, false},
		{"rootfsx/a", "", false, false},
		{"/rootfs/etc", "", false, true},
		{"rootfs/../etc", "", false, true},
		{"rootfs/a/../../b", "", false, true},
		{"rootfs/..", "", false, true},
	} {
		err := checkName(tc.name)
		var rel string
		var ok bool
		if err == nil {
			rel, ok = rootfsName(cleanName(tc.name))
		}
		if rel != tc.rel || ok != tc.ok || (err != nil) != tc.err {
			t.Errorf("%q -> %q, %v, %v; want %q, %v, error %v", tc.name, rel, ok, err, tc.rel, tc.ok, tc.err)
		}
	}
}
