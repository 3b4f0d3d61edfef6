//go:build unix

// This file holds the errors: one sentinel per condition, the typed
// errors that unwrap to them, and wrap.

package store

import (
	"errors"
	"fmt"
	"strings"

	"github.com/appc/spec/schema/types"
	"github.com/hashicorp/errwrap"
)

// Sentinel errors. Match them with errors.Is: the store wraps them with
// context ("read stream sha512-ab…: no image IDs found").
var (
	// ErrKeyNotFound is returned when no stored image matches a key, a key
	// prefix or a name.
	ErrKeyNotFound = errors.New("no image IDs found")

	// ErrDBUpdateNeedsRoot is returned by NewStore when the database schema
	// must be migrated and this process cannot write the database directory.
	ErrDBUpdateNeedsRoot = errors.New("database schema needs to be updated, re-run as root to perform the update")

	// ErrRemoteNotFound is returned when no remote is recorded for an ACI URL.
	ErrRemoteNotFound = errors.New("remote target not found")

	// ErrWrongKeyPrefix is returned when a key does not start with "sha512-".
	ErrWrongKeyPrefix = errors.New("wrong key prefix")

	// ErrKeyTooShort is returned when a key has fewer than two hex digits
	// after its "sha512-" prefix.
	ErrKeyTooShort = errors.New("image ID too short")

	// ErrInvalidKey is returned when a key is not of the form
	// sha512-[0-9a-f]{2,128} (or, where a full key is needed, not exactly
	// 64 hex digits long).
	ErrInvalidKey = errors.New("invalid image ID")

	// ErrAmbiguousKey is returned when a key prefix matches more than one
	// image.
	ErrAmbiguousKey = errors.New("ambiguous image ID")

	// ErrInvalidImage is returned by WriteACI when its input is not a valid
	// ACI: not a tar (plain or compressed), truncated, corrupt, or without a
	// valid manifest.
	ErrInvalidImage = errors.New("invalid image")

	// ErrInvalidArgument is returned when a caller's argument (a sort field,
	// a temp file name, a remote without URL, …) cannot be accepted.
	ErrInvalidArgument = errors.New("invalid argument")

	// ErrSchemaTooNew is returned by NewStore when the store's database was
	// written by a newer version of this library.
	ErrSchemaTooNew = errors.New("store database schema is newer than this library supports")

	// ErrDiskFull is returned when the store's filesystem has no space left
	// (or the user's quota is used up) for what a call must write: an
	// image's data or a database commit. Such a call leaves nothing behind.
	// Reads, RemoveACI and GC keep working on a full disk, and removing
	// images frees the space. The cause (syscall.ENOSPC, or SQLite's error)
	// stays reachable with errors.Is and errors.As.
	ErrDiskFull = errors.New("disk is full")

	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("store is closed")
)

// ACINotFoundError is returned when an ACI cannot be found by GetACI.
// Useful to distinguish a generic error from an aci not found. It unwraps to
// ErrKeyNotFound.
type ACINotFoundError struct {
	name   types.ACIdentifier
	labels types.Labels
}

func (e ACINotFoundError) Error() string {
	return fmt.Sprintf("cannot find aci satisfying name: %q and labels: %s in the local store", e.name, labelsToString(e.labels))
}

// Unwrap lets errors.Is(err, ErrKeyNotFound) match an ACINotFoundError.
func (e ACINotFoundError) Unwrap() error { return ErrKeyNotFound }

// StoreRemovalError defines an error removing a non transactional store
// (like a diskv store). When this happens the image is already gone from the
// database, but some of its files may be left behind; GC removes them.
type StoreRemovalError struct {
	errors []error
}

func (e *StoreRemovalError) Error() string {
	var b strings.Builder
	b.WriteString("some aci disk entries cannot be removed: ")
	for _, err := range e.errors {
		fmt.Fprintf(&b, "[%v]", err)
	}
	return b.String()
}

// Unwrap returns the individual removal errors, so that errors.Is and
// errors.As see through a StoreRemovalError.
func (e *StoreRemovalError) Unwrap() []error { return e.errors }

// wrap adds context to err while keeping it reachable through errors.Is and
// errors.As: the message reads "context: cause". An err that says the disk
// is full, in the OS's words or SQLite's, also matches ErrDiskFull.
func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	err = markDiskFull(err)
	ctx := fmt.Sprintf(format, args...)
	return errwrap.Wrap(fmt.Errorf("%s: %v", ctx, err), err)
}

// labelsToString renders labels for messages: version, os and arch first,
// then the others in their given order.
func labelsToString(in types.Labels) string {
	priority := func(n types.ACIdentifier) int {
		switch n {
		case "version":
			return 0
		case "os":
			return 1
		case "arch":
			return 2
		}
		return 3
	}
	labels := append(types.Labels(nil), in...)
	// A stable insertion sort: label lists are short.
	for i := 1; i < len(labels); i++ {
		for j := i; j > 0 && priority(labels[j].Name) < priority(labels[j-1].Name); j-- {
			labels[j], labels[j-1] = labels[j-1], labels[j]
		}
	}
	out := make([]string, len(labels))
	for i, l := range labels {
		out[i] = fmt.Sprintf("%q:%q", l.Name, l.Value)
	}
	return "[" + strings.Join(out, ", ") + "]"
}
