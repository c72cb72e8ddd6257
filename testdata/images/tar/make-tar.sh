#!/usr/bin/env bash
# Regenerates example-containerd.tar.zst: the containerd root of the bundled
# example node (var/lib/containerd of its STATE partition) as GNU tar packs
# it from a read-only kernel mount: PAX format with every xattr (the overlay
# markers trusted.overlay.*), devices (whiteouts), numeric owners, hardlinks,
# sparse files and nanosecond times. A base of the hostile-input sweep for
# tar input (internal/hostile) and a fixture of the tree-input tests.
# Needs root (loop mount, trusted.* xattrs), GNU tar, zstd.
set -euo pipefail
cd "$(dirname "$0")"
[ "$(id -u)" = 0 ] || { echo "make-tar.sh: needs root (loop mount, trusted.* xattrs)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'umount "$tmp/mnt" 2>/dev/null || true; rm -rf "$tmp"' EXIT
zstd -q -d -c ../example/wordpress-node.raw.zst >"$tmp/disk.raw"
mkdir "$tmp/mnt"
# Partition 1, STATE; noload: do not replay the journal on the read-only mount.
mount -t ext4 -o ro,noload,loop,offset=295698432,sizelimit=402653184 "$tmp/disk.raw" "$tmp/mnt"
tar --format=pax --xattrs --xattrs-include='*' --sparse --numeric-owner --sort=name \
  -C "$tmp/mnt" -cf "$tmp/example-containerd.tar" var/lib/containerd
zstd -q -19 -f "$tmp/example-containerd.tar" -o example-containerd.tar.zst
