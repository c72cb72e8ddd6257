#!/usr/bin/env bash
# Builds an EKS-like node disk from the bundled example node: GPT with one
# XFS partition (EKS AL2023 keeps /var/lib/containerd on its XFS root),
# formatted by mkfs.xfs with its defaults (v5: crc, ftype, finobt, reflink,
# bigtime, inobtcount, sparse inodes), holding the example's
# var/lib/containerd copied with cp -a from a read-only kernel mount of its
# ext4 STATE partition: owners, modes, times, xattrs (the overlay markers),
# devices (whiteouts) and hardlinks as the kernel shows them.
#   make-eks-node.sh OUT.raw
#   SIZE_MB=128 make-eks-node.sh OUT.raw   (a smaller filesystem: the
#       hostile-input harness's base, testdata/images/xfs/eks-node.raw.zst)
# Needs root (loop mounts, trusted.* xattrs), xfsprogs, gdisk, zstd.
set -euo pipefail
out=$1
here=$(cd "$(dirname "$0")" && pwd)
[ "$(id -u)" = 0 ] || { echo "make-eks-node.sh: needs root (loop mounts)" >&2; exit 1; }
tmp=$(mktemp -d)
cleanup() {
  umount "$tmp/ext4" 2>/dev/null || true
  umount "$tmp/xfs" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
zstd -q -d -c "$here/../example/wordpress-node.raw.zst" >"$tmp/cos.raw"
mkdir "$tmp/ext4" "$tmp/xfs"
# The example's partition 1, STATE; noload: no journal replay on a read-only mount.
mount -t ext4 -o ro,noload,loop,offset=295698432,sizelimit=402653184 "$tmp/cos.raw" "$tmp/ext4"
size_mb=${SIZE_MB:-400}
truncate -s "${size_mb}M" "$tmp/root.xfs"
small=()
[ "$size_mb" -lt 300 ] && small=(--unsupported) # mkfs.xfs refuses under 300 MB otherwise
mkfs.xfs -q -f "${small[@]}" -L ROOT "$tmp/root.xfs"
mount -t xfs -o loop "$tmp/root.xfs" "$tmp/xfs"
mkdir -p "$tmp/xfs/var/lib"
cp -a "$tmp/ext4/var/lib/containerd" "$tmp/xfs/var/lib/"
umount "$tmp/xfs"
umount "$tmp/ext4"
rm -f "$out"
truncate -s "$((size_mb + 2))M" "$out"
sgdisk -n 1:2048:+"${size_mb}M" -c 1:ROOT -t 1:8300 "$out" >/dev/null
dd if="$tmp/root.xfs" of="$out" bs=1M seek=1 conv=notrunc,sparse status=none
