// This file holds fetching by appc name: discovery finds the ACI's URL,
// then the HTTP fetcher takes over.

package fetch

import (
	"context"
	"fmt"
	"runtime"
	"strings"

	"github.com/appc/spec/discovery"
)

// FetchName fetches an image by appc name, NAME[:version]
// (example.com/app:1.0, or with more labels,
// example.com/app,version=1.0,os=linux): appc discovery (appc/spec's
// discovery package: the ac-discovery meta tags of https://NAME?ac-discovery=1
// and its parent paths, their {name}, {version}, {os}, {arch} and {ext}
// templates) gives the ACI and signature URLs, which are then fetched as
// FetchURL does, Remote row included. The os and arch labels default to
// runtime.GOOS and runtime.GOARCH, as rkt did. The image must carry the
// name asked for; without a version it is marked as the latest of its
// name.
//
// Discovery requests go out on every fetch (the max-age of the ACI's row
// spares only the ACI's own request), over HTTPS, or over plain HTTP with
// Options.Insecure, through appc's own HTTP client: Options.Transport
// does not apply to them, and neither does ctx, but for this: a fetch
// cancelled during discovery returns at once, leaving discovery's
// request to end on its own.
func (f *Fetcher) FetchName(ctx context.Context, name string) (*Result, error) {
	if strings.Contains(name, "://") {
		return nil, fmt.Errorf("%w: %q is not an appc name", ErrUnsupportedSource, name)
	}
	app, err := discovery.NewAppFromString(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %q is not an appc name[:version]: %v", ErrUnsupportedSource, name, err)
	}
	if _, ok := app.Labels["os"]; !ok {
		app.Labels["os"] = runtime.GOOS
	}
	if _, ok := app.Labels["arch"]; !ok {
		app.Labels["arch"] = runtime.GOARCH
	}
	_, hasVersion := app.Labels["version"]
	insecure := discovery.InsecureNone
	if f.opts.Insecure {
		insecure = discovery.InsecureHTTP
	}
	// appc's discovery takes no context: wait for it in a goroutine, so
	// that a cancelled fetch (Ctrl-C) returns at once; the goroutine
	// ends when the server answers or the connection fails.
	type found struct {
		eps      discovery.ACIEndpoints
		attempts []discovery.FailedAttempt
		err      error
	}
	done := make(chan found, 1)
	go func() {
		var r found
		r.eps, r.attempts, r.err = discovery.DiscoverACIEndpoints(*app, nil, insecure, f.opts.DiscoveryPort)
		done <- r
	}()
	var r found
	select {
	case r = <-done:
	case <-ctx.Done():
		return nil, fmt.Errorf("fetch %s: discovery: %w", name, ctx.Err())
	}
	eps, attempts, err := r.eps, r.attempts, r.err
	var tried []string
	for _, a := range attempts {
		f.logf("discovery of %s: nothing at %s: %v", name, a.Prefix, a.Error)
		tried = append(tried, fmt.Sprintf("%s: %v", a.Prefix, a.Error))
	}
	if err != nil || len(eps) == 0 {
		why := "no ac-discovery meta tag for it"
		if len(tried) > 0 {
			why += " (" + strings.Join(tried, "; ") + ")"
		}
		if !f.opts.Insecure {
			why += "; discovery used HTTPS only: plain HTTP needs the insecure option"
		}
		return nil, fmt.Errorf("fetch %s: %w: %s", name, ErrDiscovery, why)
	}
	ep := eps[0]
	f.logf("discovery of %s: ACI at %s", name, ep.ACI)
	return f.fetchACI(ctx, aciSource{aciURL: ep.ACI, ascURL: ep.ASC, name: app.Name, latest: !hasVersion})
}
