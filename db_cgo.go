package store

import _ "github.com/mattn/go-sqlite3" // registers "sqlite3"

const sqliteDriver = "sqlite3"

// driverHint is added to the error NewStore returns when the driver cannot
// work at all, which for go-sqlite3 means a build with CGO_ENABLED=0.
const driverHint = "go-sqlite3 needs cgo: build with CGO_ENABLED=1 and a C compiler"
