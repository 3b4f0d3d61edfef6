//go:build unix

// This file holds the failpoints: named points of the write, remove and
// recovery paths where a test acts.

package store

// failpoints is called at named points of the write, remove and recovery
// paths ("write-intent", "db-flushed", …), where a test kills its process
// (the crash and power-cut trials) or changes the store under the caller
// (GC's re-check). Each Store has its own, nil unless a test of this
// package sets it (setFailpoints in helpers_test.go), so that tests using
// failpoints run beside the others; a nil one costs a comparison.
type failpoints func(name string)

func (f failpoints) at(name string) {
	if f != nil {
		f(name)
	}
}

// newStoreFailpoints is given to every Store that NewStore opens, so that
// a trial can land in NewStore's own recovery. Only the child processes of
// the crash and power-cut trials set it, before their first NewStore.
var newStoreFailpoints failpoints
