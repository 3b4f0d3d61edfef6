// This file holds the sentinel errors of a failed fetch.

package fetch

import "errors"

// Sentinel errors, matched with errors.Is. Every error of a failed fetch
// wraps one of them, or one of package store's (store.ErrDiskFull,
// store.ErrInvalidImage) or package convert's (convert.ErrDigestMismatch,
// ...), or the context's error when the fetch was cancelled.
var (
	// ErrUnsupportedSource is returned for an image reference that is
	// neither an http(s) URL, an appc name, nor a docker:// or oci://
	// reference.
	ErrUnsupportedSource = errors.New("unsupported image source")

	// ErrInsecure is returned when a plain-HTTP URL (an ACI, its
	// signature, a discovery page, a registry) would be used without
	// Options.Insecure.
	ErrInsecure = errors.New("plain HTTP needs the insecure option")

	// ErrHTTPStatus is returned when a server answers with a status other
	// than 200 (or 304 to a conditional request): 404, 500, ...
	ErrHTTPStatus = errors.New("unexpected HTTP status")

	// ErrContentType is returned when a server labels an ACI as a
	// document (HTML, JSON, XML, text): an error page, not an image.
	ErrContentType = errors.New("the server did not send an image")

	// ErrTruncated is returned when a download ends before the length the
	// server announced.
	ErrTruncated = errors.New("download cut short")

	// ErrNoKeyring is returned when an ACI's signature should be verified
	// but no trusted keys were given (Options.Keyring), and verification
	// is not skipped (Options.SkipVerify).
	ErrNoKeyring = errors.New("no trusted keys to verify the signature with")

	// ErrSignature is returned when an ACI's detached signature is
	// missing, unreadable, or not a valid signature of the ACI by a key
	// of the keyring.
	ErrSignature = errors.New("signature verification failed")

	// ErrNameMismatch is returned when an image found through discovery
	// is named otherwise than the name asked for.
	ErrNameMismatch = errors.New("image name differs from the name fetched")

	// ErrDiscovery is returned when appc discovery finds no ACI endpoint
	// for a name.
	ErrDiscovery = errors.New("appc discovery failed")
)
