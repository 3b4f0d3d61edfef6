// Package convert brings docker and OCI images into the store: it reads an
// image as docker save or an OCI tool wrote it, flattens its layers into
// one root filesystem and writes an ACI, straight into a Store.
//
// It lives apart from package store so that the store's import graph stays
// free of go-containerregistry, whose types (v1.Manifest, v1.ConfigFile,
// tarball.Manifest, name.Reference) this package reads the image with.
//
// # Inputs
//
// Open takes a file or a directory and recognises:
//   - a docker archive with manifest.json: docker 25+'s (an OCI layout
//     plus manifest.json, layers under blobs/sha256/) and docker
//     1.10-24's (<id>/layer.tar, <config>.json), and go-containerregistry's
//     own (compressed layers named by digest);
//   - a pre-1.10 docker archive: a repositories file and <id>/json,
//     <id>/layer.tar for each layer, the top layer's json holding the
//     config;
//   - an OCI image layout, as a directory or as an archive (a tar of one),
//     through nested indexes; attestation manifests are not images.
//
// Archives must be uncompressed tars (as docker save writes them); they are
// read in place, by offset, never unpacked. Layers may be uncompressed,
// gzip or zstd (docker archives also bzip2 and xz, found by their magic).
//
// An input with several images needs a selection: a reference as written
// in it ("myuser/two:V2.0_rc1"; references are compared after docker's
// normalisation, so "busybox" matches "docker.io/library/busybox:latest"),
// or a "sha256:" manifest or config digest. Without one, Source.Image
// returns a *SeveralImagesError that lists them.
//
// Every digest the input records is checked: manifests, configs, layer
// blobs and the uncompressed layers against the config's diff_ids. A
// pre-1.10 archive records none.
//
// # Flattening
//
// The rootfs follows the OCI image spec's layer rules: layers apply bottom
// first; ".wh.NAME" removes NAME and ".wh..wh..opq" the contents of its
// directory, both from the layers below only, so a layer may white out a
// directory and re-create it, in either order; other ".wh..wh." entries
// (aufs metadata) are dropped. A hard link keeps the content its target had
// when the link was unpacked, even if the target is later whited out or
// overwritten (go-containerregistry's mutate.Extract gets both wrong, and
// docker2aci ignores opaque whiteouts and applies a layer's whiteouts to
// the layer itself). A path that leaves the root ("../x", a hard link to
// "/../etc"), or that lies below a non-directory (a symlink) of the tree,
// is refused with ErrUnsafePath. Directories a layer implies without an
// entry are written with mode 0755, owner 0:0 and time 0.
//
// Memory is bounded whatever the image's size: a first pass reads only the
// layers' headers, replays them on a tree of paths and checks the digests;
// a second pass reads the layers again and copies the surviving entries'
// contents straight to the output. Memory grows with the number of paths,
// never with file sizes. Image.Import streams the ACI into
// Store.WriteACI through a pipe: no temp file but the store's own.
//
// # Determinism
//
// The ACI depends only on the image's config, its uncompressed layers and
// the reference that names it, never on the input format, the clock or
// the user: the same image gives the same bytes, so the same key, from
// every format, and importing it again stores nothing new. (A pre-1.10
// archive has no config digest, so its manifest lacks the imageid
// annotation and its key differs; its rootfs is the same.) To that end:
//   - the tar holds "manifest", then "rootfs", then the surviving entries
//     in layer order and, within a layer, in the layer's own order; a
//     directory comes at its own entry or, if earlier, just before the
//     first entry below it (with its final header, known from the first
//     pass), so every directory precedes its contents;
//   - a file with several names (hard links) is written under its first
//     name in path order, with the header of the entry that made it, and
//     its other names as hard links to that one;
//   - each header keeps type, mode (permissions and setuid, setgid,
//     sticky), uid, gid, the modification time from the layer entry
//     truncated to the second, the link target, the device numbers and
//     the SCHILY.xattr.* PAX records; user and group names, access and
//     change times and every other PAX record are dropped; Go's tar writer
//     picks the format (USTAR, else PAX when a field needs it);
//   - "manifest" and "rootfs" (when no layer has a "." entry) have owner
//     0:0 and time 0, modes 0644 and 0755.
//
// # The manifest
//
// The appc manifest follows docker2aci's mapping for a squashed image, so
// that rkt users find their images under the names they had:
//   - name: registry and repository of the reference, docker2aci's way
//     (Docker Hub is "registry-1.docker.io", its official images are
//     under "library/"), sanitised as appc requires: "busybox:1.36" is
//     registry-1.docker.io/library/busybox, "localhost:5000/multi/one"
//     is localhost_5000/multi/one. An image without a reference is named
//     after its config digest ("sha256-HEX");
//   - labels: version (the tag, "latest" if the reference has none, absent
//     for a digest reference), os and arch in appc's names (amd64,
//     aarch64, armv7l, i386, ...; absent when appc has none);
//   - app: exec is entrypoint then cmd; user and group from "user[:group]"
//     (the user for both when no group, 0:0 when empty); environment;
//     workingDirectory; ports from ExposedPorts ("80/tcp" is port 80-tcp),
//     mountPoints from Volumes ("/var/log" is volume-var-log), both sorted
//     by name. An image without entrypoint or cmd has no app, as appc
//     requires an exec;
//   - annotations: author, created (RFC 3339, UTC, to the second), and of
//     docker2aci's others those whose value every input format carries
//     alike: appc.io/docker/registryurl, repository, tag, imageid (the
//     config digest, docker's image ID), entrypoint and cmd (JSON). The
//     original name as typed, the manifest hash and v1 layer IDs differ
//     between formats and are left out, and so are docker2aci's
//     /dev/stdin-style symlinks: the rootfs is the image's own.
//
// # One ACI per layer
//
// Image.ImportLayers (PlanLayers, then LayeredPlan.Import) writes one ACI
// per layer instead, all in one store.Batch, so that images built on the
// same layers store them once. A layer ACI depends only on its layer and
// those below: it is named "layer/" and the OCI ChainID of its stack
// ("layer/sha256-HEX", no labels), carries annotations
// imagestore/layer-diffid and imagestore/layer-chainid, and depends on the
// ACI below by name and by its whole SHA-512 (imageID), so that a later
// import cannot change what it renders to. The top layer's ACI carries the
// image's manifest as above, plus the same kind of dependency.
// Deletions are pathWhitelists; hard links are kept within one ACI. See
// layered.go for how rendering the top ACI (package render) gives exactly
// the squashed image's tree, and the README for how this differs from
// docker2aci's -nosquash.
package convert
