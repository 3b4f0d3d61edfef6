//go:build unix

package store

// failpoint, when set, is called at named points of the write and remove
// paths. It is nil in every build; the crash tests set it (in a child test
// process) to kill the process there and check what a crash leaves.
var failpoint func(name string)

func failpointAt(name string) {
	if failpoint != nil {
		failpoint(name)
	}
}
