// This file holds the HTTP fetcher: ACIs at http(s) URLs, kept fresh with
// the store's Remote rows as rkt's fetcher kept them.

package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/appc/spec/schema/types"
	store "github.com/imagestore/imagestore"
)

// userAgent is sent with every request of ours.
const userAgent = "imagestore-fetch"

// aciSource is an ACI to fetch over HTTP(S).
type aciSource struct {
	aciURL string
	ascURL string
	// name, when set, is the name the image must have (discovery).
	name types.ACIdentifier
	// latest marks the image as the latest of its name (a name fetched
	// without a version).
	latest bool
}

// FetchURL fetches the ACI at an https:// URL (http:// with
// Options.Insecure) into the store, with rkt's HTTP fetcher semantics,
// kept in the store's Remote row for the URL:
//   - within CacheMaxAge seconds of the row's DownloadTime, nothing is
//     requested and the stored image's key is returned (Outcome Fresh);
//   - past it, the request carries If-None-Match with the stored ETag;
//     a 304 keeps the stored image and refreshes the row's DownloadTime,
//     and its CacheMaxAge and ETag when the 304 carries them
//     (NotModified);
//   - a 200 is downloaded into a temp file in the store's tmp/, its
//     signature (URL + ".asc", rkt's rule: x.aci -> x.aci.asc) verified
//     unless SkipVerify, then stored with WriteACI, and the row rewritten
//     with the response's ETag and Cache-Control max-age (Downloaded).
//     The row's SigURL is the signature checked, or "" when none was: a
//     fetch that verifies does not take such a row as current.
//
// Any failure (a status other than 200 or 304, a document instead of an
// image, a body cut short, a bad signature, a full disk, ctx cancelled)
// removes the temp file: nothing is stored and the row is unchanged.
func (f *Fetcher) FetchURL(ctx context.Context, rawURL string) (*Result, error) {
	if err := f.checkURL(rawURL); err != nil {
		return nil, err
	}
	u, _ := url.Parse(rawURL)
	return f.fetchACI(ctx, aciSource{aciURL: u.String(), ascURL: ascURLOf(u)})
}

// ascURLOf is where an ACI's signature is, by rkt's rule: the URL's path
// without a final ".aci", plus ".aci.asc".
func ascURLOf(u *url.URL) string {
	c := *u
	c.Path = strings.TrimSuffix(c.Path, ".aci") + ".aci.asc"
	c.RawPath = ""
	return c.String()
}

// fresh tells whether a download recorded in rem may be used without
// asking the server: rkt's rule, a positive max-age not yet elapsed.
func fresh(rem *store.Remote, now time.Time) bool {
	if rem.CacheMaxAge <= 0 {
		return false
	}
	age := now.Sub(rem.DownloadTime)
	return age >= 0 && age < time.Duration(rem.CacheMaxAge)*time.Second
}

// storedRemote returns the Remote row of aciURL when the image it points
// at is still in the store, else nil.
func (f *Fetcher) storedRemote(aciURL string) (*store.Remote, error) {
	rem, err := f.store.GetRemote(aciURL)
	if errors.Is(err, store.ErrRemoteNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", aciURL, err)
	}
	if rem.BlobKey == "" || !f.store.HasFullKey(rem.BlobKey) {
		return nil, nil // the image is gone: download it again
	}
	return rem, nil
}

func (f *Fetcher) fetchACI(ctx context.Context, src aciSource) (*Result, error) {
	rem, err := f.storedRemote(src.aciURL)
	if err != nil {
		return nil, err
	}
	if rem != nil && !f.opts.SkipVerify && rem.SigURL == "" {
		// Stored without verification: a fetch that wants a verified
		// image must download it again, as the signature covers the
		// file as served, which the store does not keep.
		f.logf("%s: stored without a verified signature: downloading it again to verify it", src.aciURL)
		rem = nil
	}
	if rem != nil && !f.opts.NoCache && fresh(rem, time.Now()) {
		f.logf("%s: downloaded %s ago, within its max-age of %ds: not asking the server",
			src.aciURL, time.Since(rem.DownloadTime).Round(time.Second), rem.CacheMaxAge)
		return &Result{Key: rem.BlobKey, URL: src.aciURL, Outcome: Fresh}, nil
	}
	if !f.opts.SkipVerify && f.opts.Keyring == nil {
		return nil, fmt.Errorf("fetch %s: %w: give a keyring (--trust-keyring FILE) or skip verification (--insecure-skip-verify)", src.aciURL, ErrNoKeyring)
	}
	etag := ""
	if rem != nil {
		etag = rem.ETag
	}
	d, err := f.download(ctx, src.aciURL, etag)
	if err != nil {
		return nil, err
	}
	defer d.discard()
	if d.notModified {
		rem.DownloadTime = time.Now()
		if d.hasCacheControl {
			// A 304 updates what it carries and keeps the rest (RFC
			// 9111, 4.3.4).
			rem.CacheMaxAge = d.maxAge
		}
		if d.etag != "" {
			rem.ETag = d.etag
		}
		if err := f.store.WriteRemote(rem); err != nil {
			return nil, fmt.Errorf("fetch %s: %w", src.aciURL, err)
		}
		f.logf("%s: not modified (ETag %s): keeping %s", src.aciURL, etag, rem.BlobKey)
		return &Result{Key: rem.BlobKey, URL: src.aciURL, Outcome: NotModified}, nil
	}

	res := &Result{URL: src.aciURL, Outcome: Downloaded}
	if f.opts.SkipVerify {
		f.logf("%s: signature not verified (skipped)", src.aciURL)
	} else {
		if res.Signer, err = f.verifySignature(ctx, d.file, src.ascURL); err != nil {
			return nil, fmt.Errorf("fetch %s: %w", src.aciURL, err)
		}
		f.logf("%s: signature verified: signed by %s", src.aciURL, res.Signer)
	}
	key, err := f.store.WriteACI(d.file, store.ACIFetchInfo{Latest: src.latest, Name: src.name})
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", src.aciURL, err)
	}
	rem = store.NewRemote(src.aciURL, src.ascURL)
	if f.opts.SkipVerify {
		rem.SigURL = ""
	}
	rem.BlobKey = key
	rem.ETag = d.etag
	rem.CacheMaxAge = d.maxAge
	rem.DownloadTime = time.Now()
	if err := f.store.WriteRemote(rem); err != nil {
		return nil, fmt.Errorf("fetch %s: image stored as %s, but: %w", src.aciURL, key, err)
	}
	res.Key = key
	return res, nil
}

// download is the answer to a GET of an ACI: a temp file in the store's
// tmp/ holding the body, or notModified.
type download struct {
	file            *os.File
	size            int64
	etag            string
	maxAge          int
	hasCacheControl bool
	notModified     bool
}

// discard removes the temp file; it is a no-op when there is none.
func (d *download) discard() {
	if d.file != nil {
		d.file.Close()
		os.Remove(d.file.Name())
		d.file = nil
	}
}

// download GETs rawURL, conditionally when etag is set, and writes a 200's
// body to a new temp file of the store. On error nothing is left behind.
func (f *Fetcher) download(ctx context.Context, rawURL, etag string) (*download, error) {
	if err := f.checkURL(rawURL); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrUnsupportedSource, rawURL, err)
	}
	req.Header.Set("User-Agent", userAgent)
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	res, err := f.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", rawURL, err)
	}
	defer res.Body.Close()
	d := &download{etag: res.Header.Get("ETag"), maxAge: maxAge(res.Header), hasCacheControl: len(res.Header.Values("Cache-Control")) > 0}
	switch {
	case res.StatusCode == http.StatusNotModified && etag != "":
		d.notModified = true
		return d, nil
	case res.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%w: GET %s: %s", ErrHTTPStatus, rawURL, res.Status)
	}
	if err := checkContentType(res.Header.Get("Content-Type")); err != nil {
		return nil, fmt.Errorf("get %s: %w", rawURL, err)
	}
	if d.file, err = f.store.TmpFile(); err != nil {
		return nil, fmt.Errorf("download %s: %w", rawURL, err)
	}
	if d.size, err = f.copyBody(ctx, d.file, res, rawURL); err == nil {
		_, err = d.file.Seek(0, io.SeekStart)
	}
	if err != nil {
		d.discard()
		return nil, err
	}
	return d, nil
}

// copyBody copies a response's body to w, reporting progress, and tells
// apart a body cut short, a write that failed (a full disk) and a
// cancelled context.
func (f *Fetcher) copyBody(ctx context.Context, w io.Writer, res *http.Response, source string) (int64, error) {
	total := res.ContentLength
	buf := make([]byte, 256<<10)
	var n int64
	f.progress(Progress{Source: source, Total: total})
	for {
		m, rerr := res.Body.Read(buf)
		if m > 0 {
			if _, werr := w.Write(buf[:m]); werr != nil {
				f.progress(Progress{Source: source, Done: n, Total: total, Final: true})
				if errors.Is(werr, syscall.ENOSPC) || errors.Is(werr, syscall.EDQUOT) {
					return n, fmt.Errorf("download %s: %w: %w", source, store.ErrDiskFull, werr)
				}
				return n, fmt.Errorf("download %s: %w", source, werr)
			}
			n += int64(m)
			f.progress(Progress{Source: source, Done: n, Total: total})
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			f.progress(Progress{Source: source, Done: n, Total: total, Final: true})
			if cerr := ctx.Err(); cerr != nil {
				return n, fmt.Errorf("download %s: %w", source, cerr)
			}
			if errors.Is(rerr, io.ErrUnexpectedEOF) {
				return n, fmt.Errorf("download %s: %w after %s", source, ErrTruncated, sizeOf(n, total))
			}
			return n, fmt.Errorf("download %s: after %s: %w", source, sizeOf(n, total), rerr)
		}
	}
	f.progress(Progress{Source: source, Done: n, Total: total, Final: true})
	if total >= 0 && n != total {
		return n, fmt.Errorf("download %s: %w after %s", source, ErrTruncated, sizeOf(n, total))
	}
	return n, nil
}

func sizeOf(n, total int64) string {
	if total < 0 {
		return fmt.Sprintf("%d bytes", n)
	}
	return fmt.Sprintf("%d of %d bytes", n, total)
}

// maxAge is the max-age of a response's Cache-Control, in seconds, as
// rkt read it: no-store or no-cache make it 0, as do a missing, negative
// or malformed value.
func maxAge(h http.Header) int {
	age := 0
	for _, v := range h.Values("Cache-Control") {
		for _, d := range strings.Split(v, ",") {
			name, val, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "no-store", "no-cache":
				return 0
			case "max-age":
				n, err := strconv.Atoi(strings.Trim(strings.TrimSpace(val), `"`))
				if err != nil || n < 0 {
					n = 0
				}
				age = n
			}
		}
	}
	return age
}

// checkContentType refuses a response labelled as a document: an HTML
// error or login page served with 200, JSON, XML, text. Image and archive
// types, application/octet-stream and no type at all are accepted: ACIs
// are served under many names, and WriteACI judges the content anyway.
func checkContentType(ct string) error {
	if ct == "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return fmt.Errorf("%w: Content-Type %q", ErrContentType, ct)
	}
	switch {
	case strings.HasPrefix(mt, "text/"),
		mt == "application/json", mt == "application/xml",
		mt == "application/xhtml+xml", mt == "application/javascript",
		strings.HasSuffix(mt, "+json"), strings.HasSuffix(mt, "+xml"):
		return fmt.Errorf("%w: Content-Type %q is a document, not an ACI", ErrContentType, ct)
	}
	return nil
}
