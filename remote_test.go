// Tests of remotes: WriteRemote, GetRemote and GetAllRemotes.

package store

import (
	"errors"
	"testing"
	"time"
)

func TestRemotes(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	if _, err := s.GetRemote("https://example.com/none.aci"); !errors.Is(err, ErrRemoteNotFound) {
		t.Fatalf("GetRemote(unknown) = %v", err)
	}
	r := NewRemote("https://example.com/app.aci", "https://example.com/app.aci.asc")
	r.ETag = `"abc"`
	r.BlobKey = fakeKey("12") // no such image (yet): allowed
	r.CacheMaxAge = 3600
	r.DownloadTime = time.Date(2026, 11, 29, 10, 0, 0, 123456789, time.FixedZone("X", 3600))
	if err := s.WriteRemote(r); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetRemote(r.ACIURL)
	if err != nil {
		t.Fatal(err)
	}
	if got.ACIURL != r.ACIURL || got.SigURL != r.SigURL || got.ETag != r.ETag || got.BlobKey != r.BlobKey ||
		got.CacheMaxAge != r.CacheMaxAge || !got.DownloadTime.Equal(r.DownloadTime) {
		t.Fatalf("GetRemote = %+v, want %+v", got, r)
	}
	// Writing the same URL again replaces the remote.
	r2 := NewRemote(r.ACIURL, "")
	if err := s.WriteRemote(r2); err != nil {
		t.Fatal(err)
	}
	all, err := s.GetAllRemotes()
	if err != nil || len(all) != 1 || all[0].SigURL != "" || all[0].BlobKey != "" || !all[0].DownloadTime.IsZero() {
		t.Fatalf("after replace: %+v, %v", all, err)
	}
	for _, bad := range []*Remote{nil, {}, {ACIURL: "u", BlobKey: "sha512-12"}} {
		if err := s.WriteRemote(bad); err == nil {
			t.Errorf("WriteRemote(%+v) accepted", bad)
		}
	}
}
