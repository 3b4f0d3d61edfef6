package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	store "github.com/imagestore/imagestore"
	"github.com/imagestore/imagestore/fetch"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
)

// fetchJSON is what fetch --json prints.
type fetchJSON struct {
	Fetched []fetchedJSON `json:"fetched"`
	Failed  []failedJSON  `json:"failed"`
}

type fetchedJSON struct {
	Image   string `json:"image"`   // as given
	Key     string `json:"key"`     // in the store
	URL     string `json:"url"`     // the Remote row's ACI URL
	Outcome string `json:"outcome"` // fresh, not-modified, present, downloaded
	Signer  string `json:"signer,omitempty"`
	Digest  string `json:"digest,omitempty"`
}

func (a *app) fetchCommand() *cobra.Command {
	var (
		asJSON, insecure, skipVerify, noCache bool
		keyringFile, platform                 string
		discoveryPort                         uint
	)
	cmd := &cobra.Command{
		Use:   "fetch IMAGE...",
		Short: "Fetch images from URLs, appc names or registries into the store and print their keys",
		Long: `Fetch brings images into the store from where they live and prints each
one's key on standard output, last, one line per image. An IMAGE is:

  https://HOST/PATH.aci   an ACI at a URL (http:// only with --insecure)
  NAME[:VERSION]          an appc name, found through appc discovery
                          (example.com/app:1.0; os and arch default to
                          this system's)
  docker://REF, oci://REF an image in an OCI registry (Docker Hub, a
                          distribution registry, a mirror), converted to an
                          ACI exactly as 'imagestore import' converts it

What was fetched is recorded (see 'imagestore remotes'), so that fetching
again downloads nothing that has not changed: an ACI within the max-age its
server gave is used without asking; past it the server is asked with its
ETag, and "not modified" keeps the stored image. A registry tag whose
manifest digest is unchanged is not downloaded again, nor is an image whose
conversion the store already holds (imported from a docker archive or an
OCI layout, say): only its manifest and config are.

An ACI must come with a detached signature (URL.aci.asc, or the one
discovery names) made by a key in --trust-keyring FILE (public keys, armored
or binary, as 'gpg --export' writes them); --insecure-skip-verify stores it
unverified. Registry images are checked against their digests.

A failed or interrupted fetch (an error status, a page instead of an
image, a connection cut, a bad signature, a full disk, Ctrl-C) stores
nothing and leaves no temporary file. Registry credentials come from the
docker config ($DOCKER_CONFIG/config.json, ~/.docker/config.json).

On a terminal a progress bar (bytes, rate) is shown on standard error,
unless --quiet. --json prints one JSON document: {"fetched": [{"image",
"key", "url", "outcome", "signer", "digest"}], "failed": [{"arg",
"error"}]}; outcome is fresh, not-modified, present or downloaded.`,
		Example: `  imagestore fetch --trust-keyring coreos.pub https://example.com/images/etcd-v3.5.0.aci
  imagestore fetch --trust-keyring example.pub example.com/app:1.0.0
  imagestore fetch docker://busybox:1.36
  imagestore fetch --platform linux/arm64 docker://quay.io/example/app:latest`,
		Args: minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := fetch.Options{
				Insecure:      insecure,
				SkipVerify:    skipVerify,
				NoCache:       noCache,
				DiscoveryPort: discoveryPort,
				Log:           func(msg string) { a.note("imagestore: %s", msg) },
			}
			if platform != "" {
				p, err := v1.ParsePlatform(platform)
				if err != nil || p.OS == "" || p.Architecture == "" {
					return usagef("fetch: --platform %q: give OS/ARCH[/VARIANT], like linux/arm64", platform)
				}
				opts.Platform = p
			}
			if keyringFile != "" {
				k, err := fetch.LoadKeyring(keyringFile)
				if err != nil {
					return err
				}
				opts.Keyring = k
			}
			bars := &fetchBars{a: a}
			if !a.quiet && isTerminal(a.stderr) {
				opts.Progress = bars.update
			}
			// The first Ctrl-C (or SIGTERM) cancels the fetch, which
			// removes its temp files; a second one kills as usual.
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			go func() {
				<-ctx.Done()
				stop()
			}()

			for _, image := range args {
				// A path would be taken for an appc name and looked up
				// on the network; say what was meant instead.
				if _, err := os.Stat(image); err == nil && !strings.Contains(image, "://") {
					return usagef("fetch: %s is a local file or directory, not an image reference: store it with 'imagestore import %s'", image, image)
				}
			}
			out := fetchJSON{Fetched: []fetchedJSON{}, Failed: []failedJSON{}}
			err := a.withNewStore(func(s *store.Store) error {
				f := fetch.New(s, opts)
				return a.each("fetch", args, func(image string) error {
					res, err := f.Fetch(ctx, image)
					bars.done(err == nil)
					if err != nil {
						err = fetchError(err)
						out.Failed = append(out.Failed, failedJSON{image, oneLine(errorMessage(err))})
						return err
					}
					out.Fetched = append(out.Fetched, fetchedJSON{image, res.Key, res.URL, string(res.Outcome), res.Signer, res.Digest})
					if !asJSON {
						fmt.Fprintln(a.stdout, res.Key)
					}
					return nil
				})
			})
			return a.finishJSON(asJSON, len(out.Fetched)+len(out.Failed) > 0, out, err)
		},
	}
	f := cmd.Flags()
	f.StringVar(&keyringFile, "trust-keyring", "", "verify ACI signatures against the public keys in `FILE` (armored or binary)")
	f.BoolVar(&skipVerify, "insecure-skip-verify", false, "store ACIs without verifying their signatures")
	f.BoolVar(&insecure, "insecure", false, "allow plain HTTP for ACI URLs, signatures, discovery and registries")
	f.BoolVar(&noCache, "no-cache", false, "ask the server even within the max-age of a stored download")
	f.StringVar(&platform, "platform", "", "of a multi-platform registry image, fetch the one for `OS/ARCH[/VARIANT]` (default: this system's)")
	f.UintVar(&discoveryPort, "discovery-port", 0, "port for appc discovery requests (default: the scheme's)")
	f.BoolVar(&asJSON, "json", false, "print JSON for scripts")
	return cmd
}

// fetchError adds what to do to the failures an operator can act on; a
// reference of an unknown form is a usage error.
func fetchError(err error) error {
	switch {
	case errors.Is(err, fetch.ErrUnsupportedSource):
		return usagef("fetch: %v", err)
	case errors.Is(err, fetch.ErrSignature):
		return withHint(err, "nothing was stored: give --trust-keyring with the signer's public key, or --insecure-skip-verify to store it unverified")
	case errors.Is(err, fetch.ErrHTTPStatus), errors.Is(err, fetch.ErrContentType), errors.Is(err, fetch.ErrTruncated):
		return withHint(err, "nothing was stored: check the URL, then fetch again")
	case errors.Is(err, store.ErrInvalidImage):
		return withHint(err, "the server did not send a valid image: nothing was stored")
	case errors.Is(err, context.Canceled):
		return withHint(err, "interrupted: nothing was stored")
	}
	return err
}

// fetchBars draws one progress bar per download (an ACI, a layer).
type fetchBars struct {
	a      *app
	mu     sync.Mutex
	bar    *progressbar.ProgressBar
	source string
}

func (b *fetchBars) update(p fetch.Progress) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bar == nil || p.Source != b.source {
		b.finishLocked(true)
		desc := p.Source
		if len(desc) > 40 {
			desc = "…" + desc[len(desc)-39:]
		}
		b.source = p.Source
		b.bar = newProgressBar(b.a.stderr, p.Total, desc)
	}
	b.bar.Set64(p.Done)
	if p.Final {
		b.finishLocked(p.Total < 0 || p.Done == p.Total)
	}
}

// done ends the bar still drawn, if any, after a fetch.
func (b *fetchBars) done(ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.finishLocked(ok)
}

// finishLocked ends the bar: filled when its download is complete, left
// where it stopped when not.
func (b *fetchBars) finishLocked(complete bool) {
	if b.bar == nil {
		return
	}
	if complete {
		b.bar.Finish()
	} else {
		b.bar.Exit()
		fmt.Fprintln(b.a.stderr)
	}
	b.bar = nil
	b.source = ""
}
