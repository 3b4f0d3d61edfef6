package main

import (
	"fmt"
	"os"

	store "github.com/imagestore/imagestore"
	"github.com/imagestore/imagestore/render"
	"github.com/spf13/cobra"
)

func (a *app) extractCommand() *cobra.Command {
	var allowDevices, skipDevices bool
	cmd := &cobra.Command{
		Use:   "extract KEY|NAME[:version] DIR",
		Short: "Unpack an image's root filesystem, with its dependencies, into a new directory",
		Long: `Extract renders the image's root filesystem into DIR, which must not
exist or be empty: the image's own rootfs/ entries and those of every
image it depends on (appc dependencies, by name and labels or by
imageID), each keeping only what its pathWhitelist and those above it
allow, an upper image's file winning over a lower one's. A dependency
missing from the store, an imageID that does not match, or a cycle is an
error. The tree is written into a temporary directory beside DIR and
renamed into place when complete, so a failure leaves nothing behind. DIR
gets the rootfs entry's mode and modification time (and its owner, as
root).

Symlinks are created as they are, absolute ones included: in a root
filesystem "/bin/busybox" means DIR/bin/busybox. Nothing is ever written
outside DIR: an entry whose name is absolute or climbs out with "..", an
entry that would be written through a symlink to outside DIR, and a hard
link to outside the root filesystem make the whole extraction fail.

Every entry is extracted or the command fails: sparse files are extracted
(holes kept), and an entry type it cannot create is an error. Device nodes
need a choice: --allow-devices creates them (root only), --skip-devices
leaves them out with a warning; with neither, an image that has any fails.

As root, owners, modes, times and the extended attributes rkt keeps
(security.capability, user.*) are kept as in the image. As another user,
files belong to the caller, and the setuid and setgid bits are dropped
(the sticky bit is kept); nothing else is dropped.`,
		Example: `  imagestore extract example.com/hello:1.0.0 ./hello-rootfs
  sudo imagestore extract --allow-devices sha512-1c9abf1ff224 /var/lib/machines/hello`,
		Args: exactArgs(2),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) == 1 {
				return nil, cobra.ShellCompDirectiveFilterDirs
			}
			return a.completeImages(1)(cmd, args, toComplete)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, dir := args[0], args[1]
			if allowDevices && os.Geteuid() != 0 {
				return usagef("extract: --allow-devices needs root: run it as root, or give --skip-devices to leave device nodes out")
			}
			if allowDevices && skipDevices {
				return usagef("extract: give --allow-devices or --skip-devices, not both")
			}
			return a.withStore(func(s *store.Store) error {
				key, err := resolve(s, ref)
				if err != nil {
					return fmt.Errorf("extract %s: %w", ref, err)
				}
				opts := render.Options{AllowDevices: allowDevices, SkipDevices: skipDevices}
				bar := a.renderProgress("extracting " + shortKey(key))
				opts.Progress = bar.add
				res, err := render.Rootfs(s, key, dir, opts)
				bar.finish()
				if err != nil {
					return fmt.Errorf("extract %s: %w", ref, err)
				}
				if res.SkippedDevices > 0 {
					a.note("imagestore: warning: skipped %d device node(s) (--skip-devices)", res.SkippedDevices)
				}
				if n := len(res.Plan.Images); n > 1 {
					a.note("extracted %s to %s (with %d dependencies)", shortKey(key), dir, n-1)
				} else {
					a.note("extracted %s to %s", shortKey(key), dir)
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&allowDevices, "allow-devices", false, "create character and block device nodes (root only)")
	cmd.Flags().BoolVar(&skipDevices, "skip-devices", false, "leave character and block device nodes out, with a warning")
	return cmd
}
