package convert

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors, matched with errors.Is. Every error the package returns
// about its input wraps one of them.
var (
	// ErrUnknownFormat is returned when the input is neither a docker
	// archive nor an OCI image layout (directory or archive).
	ErrUnknownFormat = errors.New("not a docker archive or OCI image layout")

	// ErrSeveralImages is returned when the input holds several images and
	// none was selected; the error is a *SeveralImagesError listing them.
	ErrSeveralImages = errors.New("the input holds several images: select one")

	// ErrNoImage is returned when the selection matches no image, or the
	// input holds none.
	ErrNoImage = errors.New("no such image in the input")

	// ErrMissingBlob is returned when a layer, config or manifest the
	// image refers to is not in the input.
	ErrMissingBlob = errors.New("missing blob")

	// ErrDigestMismatch is returned when a blob or an uncompressed layer
	// does not hash to the digest the image records for it.
	ErrDigestMismatch = errors.New("digest mismatch")

	// ErrUnsafePath is returned when a path in a layer or in the input's
	// own index escapes its root ("../x", a hard link to "../../etc"), or
	// reaches below a non-directory.
	ErrUnsafePath = errors.New("path escapes the root")

	// ErrUnsupportedMediaType is returned for a manifest, config or layer
	// media type this package does not convert.
	ErrUnsupportedMediaType = errors.New("unsupported media type")

	// ErrInvalidImage is returned for any other malformed input: bad JSON,
	// a broken tar, a hard link to nothing.
	ErrInvalidImage = errors.New("invalid image")
)

// ImageInfo describes one image of an input, as listed in a
// SeveralImagesError.
type ImageInfo struct {
	// Refs are the references written in the input for this image
	// (RepoTags, index annotations or the legacy repositories file).
	Refs []string
	// ManifestDigest is the digest of the image manifest, when the input
	// has one ("sha256:..."); docker 1.10-24 archives have none.
	ManifestDigest string
	// ConfigDigest is the digest of the image config (docker's image ID),
	// empty for pre-1.10 docker archives.
	ConfigDigest string
	// Platform is "os/arch[/variant]" from the index, when it says.
	Platform string
}

func (i ImageInfo) String() string {
	var parts []string
	if len(i.Refs) > 0 {
		parts = append(parts, strings.Join(i.Refs, ", "))
	} else {
		parts = append(parts, "(no reference)")
	}
	if i.Platform != "" {
		parts = append(parts, i.Platform)
	}
	if i.ManifestDigest != "" {
		parts = append(parts, "manifest "+i.ManifestDigest)
	}
	if i.ConfigDigest != "" {
		parts = append(parts, "config "+i.ConfigDigest)
	}
	return strings.Join(parts, "  ")
}

// SeveralImagesError is returned when an input holds several images and
// none was selected. It unwraps to ErrSeveralImages.
type SeveralImagesError struct {
	Images []ImageInfo
}

func (e *SeveralImagesError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v; select one by reference or sha256: digest:", ErrSeveralImages)
	for _, im := range e.Images {
		b.WriteString("\n  ")
		b.WriteString(im.String())
	}
	return b.String()
}

func (e *SeveralImagesError) Unwrap() error { return ErrSeveralImages }

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidImage, fmt.Sprintf(format, args...))
}
