package main

import (
	"errors"
	"fmt"
	"io/fs"

	store "github.com/imagestore/imagestore"
)

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// hintedError carries advice on what to do about err; errorMessage adds it
// to the message unless the error already says what to do.
type hintedError struct {
	err  error
	hint string
}

func (e *hintedError) Error() string { return e.err.Error() + ": " + e.hint }
func (e *hintedError) Unwrap() error { return e.err }

func withHint(err error, hint string) error {
	if err == nil {
		return nil
	}
	return &hintedError{err: err, hint: hint}
}

// errorMessage is the text printed for err: the error and, for the
// conditions an operator can act on, what to do next.
func errorMessage(err error) string {
	var (
		ue *usageError
		he *hintedError
	)
	if errors.As(err, &ue) || errors.As(err, &he) {
		return err.Error()
	}
	var notFound store.ACINotFoundError
	switch {
	case errors.As(err, &notFound), errors.Is(err, store.ErrKeyNotFound):
		return err.Error() + ": run 'imagestore list' to see the stored images"
	case errors.Is(err, store.ErrAmbiguousKey):
		return err.Error() + ": give more characters of the key (see 'imagestore list --no-trunc')"
	case errors.Is(err, store.ErrWrongKeyPrefix), errors.Is(err, store.ErrKeyTooShort), errors.Is(err, store.ErrInvalidKey):
		return err.Error() + ": give a key like sha512-1c9abf1ff224 (at least 2 hex digits) or an image name"
	case errors.Is(err, store.ErrInvalidImage):
		return err.Error() + ": give an ACI file (a tar, optionally gzip, bzip2 or xz compressed, with a manifest)"
	case errors.Is(err, store.ErrDiskFull):
		return err.Error() + ": remove images to free space ('imagestore rm' and 'imagestore gc' work on a full disk)"
	case errors.Is(err, store.ErrSchemaTooNew):
		return err.Error() + ": use a newer imagestore, or another --dir"
	case errors.Is(err, store.ErrNeedsRebuild):
		return err.Error() // it says to run imagestore rebuild
	case errors.Is(err, store.ErrDBUpdateNeedsRoot):
		return err.Error()
	case errors.Is(err, fs.ErrPermission):
		return err.Error() + ": check the permissions, or use another --dir"
	case errors.Is(err, fs.ErrNotExist):
		return err.Error() + ": check the path"
	}
	return err.Error()
}

// errInUse is returned by rm for an image that other images depend on.
var errInUse = errors.New("in use")
