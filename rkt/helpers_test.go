package rkt

import (
	"crypto/sha256"
	"errors"
	"io/fs"
	"os"
	"testing"

	"github.com/imagestore/imagestore/internal/rkttest"
)

// fixtureDir is the rkt v1.30.0 store written by rkt's own code, with
// everything rkt's API reported about it (README.txt says how).
var fixtureDir = rkttest.FixtureDir(1)

func unpackFixture(tb testing.TB) string { return rkttest.Unpack(tb, fixtureDir) }

type fileState = rkttest.FileState

func snapshot(tb testing.TB, dir string) map[string]fileState { return rkttest.Snapshot(tb, dir) }

func requireUnchanged(tb testing.TB, dir string, before map[string]fileState) {
	tb.Helper()
	rkttest.RequireUnchanged(tb, dir, before)
}

// fileSum is the SHA-256 of a file's content.
func fileSum(tb testing.TB, path string) [sha256.Size]byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return sha256.Sum256(b)
}

// isNotExist reports whether err says a file does not exist.
func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
