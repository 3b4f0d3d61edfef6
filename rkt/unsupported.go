//go:build !unix

package rkt

// Like the store it adopts into, this package builds on unix systems only:
// importing the store stops the build with its message.
import _ "github.com/imagestore/imagestore"
