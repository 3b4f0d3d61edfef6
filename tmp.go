//go:build unix

// This file holds temp files: the store's own ingest files (locked by
// their writer) and the callers' TmpDir, TmpFile and TmpNamedFile.

package store

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// tmpIngestPrefix names the store's own temp files in tmp/: images being
// ingested and manifests being written. Each is locked (flock) by its writer
// while it lives, so recovery can tell a live writer's file from one that a
// crash left behind. Callers' names may not start with it.
const tmpIngestPrefix = ".ingest-"

// tmpNewPrefix names a store temp file in the instant between its creation
// and its lock. Recovery removes unlocked ones, as it does .ingest- files.
const tmpNewPrefix = ".new-"

// TmpDir creates and returns dir local to the same filesystem as the Store,
// or any error encountered. It is the store's tmp/, shared with the store's
// own ingest files and intents (.ingest-*, .new-*, .intent-*), which a
// caller must leave alone; anything else there is the caller's, and GC
// removes it only when asked (GCOptions.TmpFilesUnusedSince).
func (s *Store) TmpDir() (string, error) {
	if err := s.live(); err != nil {
		return "", err
	}
	if err := mkdirShared(s.tmpDir); err != nil {
		return "", wrap(err, "create temp directory")
	}
	return s.tmpDir, nil
}

// TmpFile returns an *os.File local to the same filesystem as the Store, or
// any error encountered, for a download that is later given to WriteACI.
// The caller removes it when done.
func (s *Store) TmpFile() (*os.File, error) {
	dir, err := s.TmpDir()
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, "")
	if err != nil {
		return nil, wrap(err, "create temp file")
	}
	if err := f.Chmod(filePerm); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, wrap(err, "create temp file")
	}
	return f, nil
}

// TmpNamedFile returns an *os.File with the specified name local to the same
// filesystem as the Store, or any error encountered. If the file already
// exists it will return the existing file in read/write mode with the cursor
// at the end of the file, so that a fetcher can resume a download. The store
// never removes these files on its own.
//
// name must be a plain file name: not empty, no path separator, not "." or
// "..", and not starting with ".ingest-".
func (s Store) TmpNamedFile(name string) (*os.File, error) {
	if err := checkTmpName(name); err != nil {
		return nil, err
	}
	dir, err := s.TmpDir()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, name)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, filePerm)
	switch {
	case err == nil:
		if err := f.Chmod(filePerm); err != nil {
			f.Close()
			return nil, wrap(err, "create temp file %q", name)
		}
		return f, nil
	case errors.Is(err, fs.ErrExist):
		f, err = os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return nil, wrap(err, "open temp file %q", name)
		}
		if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
			f.Close()
			return nil, fmt.Errorf("%w: temp file %q is not a regular file", ErrInvalidArgument, name)
		}
		if _, err := f.Seek(0, io.SeekEnd); err != nil {
			f.Close()
			return nil, wrap(err, "open temp file %q", name)
		}
		return f, nil
	default:
		return nil, wrap(err, "create temp file %q", name)
	}
}

func checkTmpName(name string) error {
	switch {
	case name == "", name == ".", name == "..":
		return fmt.Errorf("%w: temp file name %q", ErrInvalidArgument, name)
	case strings.ContainsAny(name, `/\`+"\x00"):
		return fmt.Errorf("%w: temp file name %q has a path separator", ErrInvalidArgument, name)
	case isStoreTemp(name):
		return fmt.Errorf("%w: temp file names starting with %q, %q or %q are the store's own", ErrInvalidArgument, tmpIngestPrefix, tmpNewPrefix, tmpIntentPrefix)
	case len(name) > 255:
		return fmt.Errorf("%w: temp file name longer than 255 bytes", ErrInvalidArgument)
	}
	return nil
}

// tempFile is one of the store's own temp files, locked while it is
// written so that recovery leaves it alone.
type tempFile struct {
	*os.File
	name string // its path in tmp/ (the file was renamed after opening)
	done bool   // renamed into place: nothing to remove
}

// Name returns the file's current path.
func (f *tempFile) Name() string { return f.name }

func (s *Store) createIngestFile() (*tempFile, error) {
	// The file is created and locked under a name that recovery only
	// removes while it is unlocked, then renamed: an .ingest- file is
	// always locked while its writer lives. Recovery (another process's
	// NewStore) may remove the new file in the instant before its lock;
	// the rename then fails and a new file is made.
	for try := 0; ; try++ {
		f, gone, err := s.tryIngestFile()
		if !gone || try >= 10 {
			return f, err
		}
	}
}

// tryIngestFile makes one attempt of createIngestFile; gone reports that
// recovery removed the file before it was locked.
func (s *Store) tryIngestFile() (_ *tempFile, gone bool, err error) {
	f, err := os.CreateTemp(s.tmpDir, tmpNewPrefix+"*")
	if err != nil {
		return nil, false, wrap(err, "create ingest file")
	}
	s.failpoint.at("ingest-created")
	err = f.Chmod(filePerm)
	if err == nil {
		var ok bool
		if ok, err = tryLockFile(f); err == nil && !ok {
			err = errors.New("locked by another process")
		}
	}
	if err == nil {
		name := filepath.Join(s.tmpDir, tmpIngestPrefix+strings.TrimPrefix(filepath.Base(f.Name()), tmpNewPrefix))
		if err = os.Rename(f.Name(), name); err == nil {
			// os.File keeps the name it was opened with; reopen nothing,
			// just remember the new one.
			return &tempFile{File: f, name: name}, false, nil
		}
	}
	f.Close()
	os.Remove(f.Name())
	return nil, errors.Is(err, fs.ErrNotExist), wrap(err, "create ingest file")
}

// release closes the file, dropping its lock, and removes it unless it was
// published. It is safe to call more than once.
func (f *tempFile) release() {
	if f.File == nil {
		return
	}
	if !f.done {
		os.Remove(f.Name())
	}
	f.Close()
	f.File = nil
}
