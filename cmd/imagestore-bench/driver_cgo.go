//go:build cgo

package main

// sqliteDriver names the SQLite driver the store library uses in this
// build; the library selects it with the same build constraint.
const sqliteDriver = "github.com/mattn/go-sqlite3 (cgo)"
