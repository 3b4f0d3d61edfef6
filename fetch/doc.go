// Package fetch brings images into a store from where they live: ACIs at
// http(s) URLs, appc names through appc discovery, and docker or OCI
// images in registries. It keeps the store's Remote rows as rkt's
// fetchers did, so that fetching again downloads nothing that has not
// changed. Package store itself has no network code; this package is its
// only user of net/http.
//
//	f := fetch.New(s, fetch.Options{Keyring: k})
//	res, err := f.Fetch(ctx, "https://example.com/app-1.0.0-linux-amd64.aci")
//	res, err = f.Fetch(ctx, "example.com/app:1.0.0") // discovery
//	res, err = f.Fetch(ctx, "docker://busybox:1.36")  // a registry
//
// # Guarantees
//
//   - Nothing twice. An ACI whose Remote row is within its CacheMaxAge of
//     its DownloadTime is not requested; past it, one conditional request
//     (If-None-Match with the stored ETag) is made, and a 304 keeps the
//     stored image and refreshes the row. A registry tag whose manifest
//     digest (HEAD) is the stored one downloads no blob, and an image
//     whose conversion the store already holds (imported from a docker
//     archive or an OCI layout) costs its manifest and config, no layer.
//     A row whose image was removed from the store does not count.
//   - Nothing half. A download is written to a temp file in the store's
//     tmp/ (a registry image to a temporary OCI layout there) and removed
//     on every failure: an error status, a document content type, a body
//     shorter than announced, a connection cut, a bad or missing
//     signature, a blob not matching its digest, a full disk
//     (store.ErrDiskFull), a cancelled context. Nothing is stored then,
//     and no Remote row changes. Success stores the image with
//     Store.WriteACI, so everything the store guarantees of a write holds.
//   - Nothing unverified, unless asked. An ACI is stored only when its
//     detached OpenPGP signature verifies against Options.Keyring, or
//     with Options.SkipVerify; an image found by discovery must carry
//     the name asked for. Every registry blob is checked against its
//     digest as it arrives, then again by the converter.
//   - The same image, the same key. A registry image is converted by
//     package convert exactly as `imagestore import` converts an OCI
//     image layout that names it by the same reference.
//
// # Caveats
//
//   - A process killed (SIGKILL, power cut) during a download leaves its
//     temp file in tmp/; Store.GC with TmpFilesUnusedSince removes it.
//   - Every trusted key is trusted for every image name; rkt's keystore
//     kept keys per name prefix.
//   - Discovery goes through appc/spec's discovery package, which uses its
//     own HTTP client: Options.Transport does not reach it, a cancelled
//     context stops the wait but not its request, and it is asked on
//     every fetch of a name (the ACI's own row still spares the ACI's
//     request).
//   - A registry image is squashed into one ACI: a layer shared with a
//     stored image is downloaded again when the image changes.
//   - An image is taken as already stored when a stored manifest equals
//     the one its conversion would carry (which names the config digest,
//     and so the layers): the store is trusted not to hold a forged one.
//   - Interrupted downloads start again from the beginning (rkt resumed
//     them with Range requests), and a signature answered with 202 is not
//     retried later as rkt did.
//   - Registries on loopback and private addresses may be spoken to over
//     plain HTTP without Options.Insecure: go-containerregistry's rule
//     (docker's too).
package fetch
