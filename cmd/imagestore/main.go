// Command imagestore inspects and maintains an image store (appc ACIs) kept
// by github.com/imagestore/imagestore: import images, list, show and export
// them, unpack their root filesystems, and remove them.
//
// Exit status: 0 on success, 1 when a command fails, 2 on a usage error.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	store "github.com/imagestore/imagestore"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// version is the tool's version; release builds set it with
// -ldflags "-X main.version=v1.2.3". Otherwise the module version is used.
var version = ""

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// app holds what every command shares: the standard streams and the global
// flags.
type app struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer

	dir    string // --dir
	quiet  bool   // --quiet
	image  string // import --image
	layers bool   // import --layers
}

// run executes the command line args and returns the exit status. Errors
// are printed to stderr on one line.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "imagestore: "+oneLine(errorMessage(err)))
	var ue *usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	return exitFail
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "imagestore",
		Short: "Inspect and maintain an appc image store",
		Long: `imagestore inspects and maintains an image store: a directory of appc
container images (ACIs) indexed in SQLite, as kept by rkt's image store.

The store is the directory given by --dir, else $IMAGESTORE_DIR, else
$XDG_DATA_HOME/imagestore (~/.local/share/imagestore). It is created when
a command first needs it.

An image is named by its key (sha512-..., any unambiguous prefix of at
least sha512- and 2 hex digits) or, where a command says so, by its name
and an optional version label (example.com/hello:1.0.0).

Exit status is 0 on success, 1 when the command failed, 2 on a usage error.`,
		Example: `  imagestore import hello.aci.gz
  imagestore list
  imagestore --dir /var/lib/imagestore show example.com/hello:1.0.0`,
		Version:       versionString(),
		SilenceErrors: true,
		SilenceUsage:  true,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown command %q: run 'imagestore help' for the list of commands", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
	}
	root.SetVersionTemplate("imagestore {{.Version}}\n")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		if !cmd.HasParent() {
			return usagef("%v (see '%s --help')", err, cmd.CommandPath())
		}
		return usagef("%s: %v (see '%s --help')", subPath(cmd), err, cmd.CommandPath())
	})
	pf := root.PersistentFlags()
	pf.StringVar(&a.dir, "dir", "", "store directory (default $IMAGESTORE_DIR, else $XDG_DATA_HOME/imagestore)")
	pf.BoolVarP(&a.quiet, "quiet", "q", false, "print only results, one key or path per line: no tables, summaries, progress, notes or warnings")
	root.MarkPersistentFlagDirname("dir")

	root.AddCommand(
		a.importCommand(),
		a.fetchCommand(),
		a.listCommand(),
		a.showCommand(),
		a.catManifestCommand(),
		a.exportCommand(),
		a.extractCommand(),
		a.renderCommand(),
		a.treesCommand(),
		a.rmCommand(),
		a.remotesCommand(),
		a.gcCommand(),
		a.verifyCommand(),
		a.rebuildCommand(),
		a.adoptCommand(),
	)
	return root
}

// versionString is the tool's version and the SQLite driver it was built
// with (driver_cgo.go, driver_nocgo.go).
func versionString() string {
	v := version
	if v == "" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			v = bi.Main.Version
		}
	}
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	return v + ", sqlite driver " + store.SQLiteDriver
}

// result prints a line of a command's result on stdout: as the format and
// args say, or, with --quiet, only the bare value (a key or a path), so
// that --quiet output is one value per line on every command.
func (a *app) result(bare string, format string, args ...any) {
	if a.quiet {
		fmt.Fprintln(a.stdout, bare)
		return
	}
	fmt.Fprintf(a.stdout, format+"\n", args...)
}

// note prints an informational line on stderr unless --quiet.
func (a *app) note(format string, args ...any) {
	if !a.quiet {
		fmt.Fprintf(a.stderr, format+"\n", args...)
	}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// oneLine joins a multi-line message into one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// subPath is the command path without the program name, for messages
// that "imagestore: " already starts.
func subPath(cmd *cobra.Command) string {
	return strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
}
