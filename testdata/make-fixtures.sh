#!/bin/sh
# Rebuilds the ACI fixtures from testdata/hello/ and records their keys.
# The tar is made reproducible (sorted names, fixed times and owners), so the
# same tree always gives the same bytes and the same key; the compressed
# forms are the same tar through gzip -9 -n, bzip2 -9 and xz -6.
# The key of an image is "sha512-" and the first 64 hex digits of the
# SHA-512 of the uncompressed tar: TestFixtureKeys checks the files against
# testdata/fixtures.keys.
set -eu
cd "$(dirname "$0")"
tar --sort=name --mtime=@1500000000 --owner=0 --group=0 --numeric-owner \
    --format=ustar -C hello -cf hello.aci manifest rootfs
gzip -9 -n -c hello.aci > hello.aci.gz
bzip2 -9 -c hello.aci > hello.aci.bz2
xz -6 -c hello.aci > hello.aci.xz
key="sha512-$(sha512sum hello.aci | cut -c1-64)"
for f in hello.aci hello.aci.gz hello.aci.bz2 hello.aci.xz; do
    echo "$f $key"
done > fixtures.keys
