#!/bin/bash
# Generate rhcos-crio-node.raw.zst: a GPT disk whose XFS root holds an
# RHCOS-like ostree deployment with a CRI-O-style containers/storage store
# at ostree/deploy/rhcos/var/lib/containers/storage, written by the
# containers/storage library (gen/, its own Go module), plus the kernel's
# read-only overlay mount of each container's layers (manifests/).
#
# Usage (as root, Debian 12): ./generate.sh [OUTDIR]   (default: this directory)
# Needs: go, mkfs.xfs (xfsprogs), sgdisk, zstd, python3, busybox-static.
set -Eeuo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-$HERE}
MANIFEST_PY=$HERE/../../example/manifest.py
DISK_NAME=rhcos-crio-node.raw
DISK_MIB=320 # mkfs.xfs wants 300 MiB at least
POD_UID=5f0c7a1e-8d2b-4c3a-9e1f-0a1b2c3d4e5f
DEPLOY=ostree/deploy/rhcos

log() { printf '%s generate: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

if [ "${1:-}" = --inner ]; then
	WORK=$2
	mnt=$WORK/mnt
	mount --make-rprivate /
	mount --bind "$mnt/$DEPLOY/var" /var
	mkdir -p /run/containers
	mount -t tmpfs -o mode=0755 tmpfs /run/containers
	"$WORK/gen" /var/lib/containers/storage /run/containers/storage "$WORK/base.tar" "$WORK/ctrs.tsv"
	# The pod's emptyDir, with what the container wrote there.
	mkdir -p "/var/lib/kubelet/pods/$POD_UID/volumes/kubernetes.io~empty-dir/cache"
	echo "cached" >"/var/lib/kubelet/pods/$POD_UID/volumes/kubernetes.io~empty-dir/cache/page"
	printf '127.0.0.1 localhost\n' >"/var/lib/kubelet/pods/$POD_UID/etc-hosts"
	mkdir -p "$WORK/merged" "$WORK/out/manifests/crio"
	printf 'store\tcontainer\tdriver\tlayers(top..bottom)\tentries\tmanifest\n' >"$WORK/out/manifests/index.tsv"
	while IFS=$'\t' read -r id name layers; do
		mount -t overlay overlay -o "ro,lowerdir=$layers" "$WORK/merged"
		python3 "$MANIFEST_PY" "$WORK/merged" "$WORK/out/manifests/crio/$id.jsonl"
		umount "$WORK/merged"
		printf 'crio\t%s\toverlay\t%s\t%s\tcrio/%s.jsonl\n' "$id" "$layers" "$(wc -l <"$WORK/out/manifests/crio/$id.jsonl")" "$id" >>"$WORK/out/manifests/index.tsv"
	done <"$WORK/ctrs.tsv"
	cp "$WORK/ctrs.tsv" "$WORK/out/containers.tsv"
	sync
	exit 0
fi

[ "$(id -u)" = 0 ] || { log "run as root"; exit 1; }
WORK=$(mktemp -d /tmp/crionode.XXXXXX)
LOOP=""
cleanup() {
	set +e
	mountpoint -q "$WORK/mnt" && umount "$WORK/mnt"
	[ -n "$LOOP" ] && losetup -d "$LOOP"
	[ -z "${KEEP_WORK:-}" ] && rm -rf "$WORK"
	chmod 1777 /tmp
}
trap cleanup EXIT

log "building the generator (containers/storage $(cd "$HERE/gen" && go list -m -f '{{.Version}}' go.podman.io/storage))"
(cd "$HERE/gen" && CGO_ENABLED=1 go build -tags "exclude_graphdriver_btrfs exclude_graphdriver_devicemapper containers_image_openpgp" -o "$WORK/gen" .)

log "base layer from busybox-static"
R=$WORK/rootfs
mkdir -p "$R"/{bin,etc,tmp,opt/app,usr/share/doc/busybox}
cp /bin/busybox "$R/bin/busybox"
for a in sh ls cat; do ln -s busybox "$R/bin/$a"; done
echo "welcome" >"$R/etc/motd"
echo "listen=80" >"$R/etc/app.conf"
echo "v1" >"$R/opt/app/version"
echo "old" >"$R/opt/app/old"
echo "docs" >"$R/usr/share/doc/busybox/README"
chmod 1777 "$R/tmp"
tar --numeric-owner --sort=name --mtime=@1700000000 -C "$R" -cf "$WORK/base.tar" .

log "disk: GPT, one XFS partition named root, an ostree deployment's /var"
DISK=$WORK/$DISK_NAME
truncate -s ${DISK_MIB}M "$DISK"
sgdisk -o -U 7D0C1E55-0000-4000-8000-00000000C600 -n 1:2048:0 -c 1:root -t 1:8300 -u 1:7D0C1E55-0000-4000-8000-00000000C601 "$DISK" >&2
LOOP=$(losetup -f --show -o $((2048 * 512)) --sizelimit $(((DISK_MIB * 2048 - 2048 - 34) * 512)) "$DISK")
mkfs.xfs -q -L root -m uuid=7d0c1e55-0000-4000-8000-00000000c6f1 "$LOOP"
mkdir -p "$WORK/mnt"
mount -t xfs "$LOOP" "$WORK/mnt"
mkdir -p "$WORK/mnt/$DEPLOY/var/lib/containers" "$WORK/mnt/$DEPLOY/var/lib/kubelet" "$WORK/mnt/$DEPLOY/deploy"
unshare --mount --propagation private "$0" --inner "$WORK"
umount "$WORK/mnt"
losetup -d "$LOOP"
LOOP=""

log "compressing"
mkdir -p "$OUT"
zstd -q -19 -f "$DISK" -o "$OUT/$DISK_NAME.zst"
rm -rf "$OUT/manifests"
cp -r "$WORK/out/manifests" "$OUT/"
cp "$WORK/out/containers.tsv" "$OUT/containers.tsv"
log "done: $OUT/$DISK_NAME.zst"
