#!/bin/bash
# Generate fuse-node.raw.zst: a small GPT disk whose ext4 root holds a
# rootless and a rootful containers/storage store written by Debian's
# podman (4.3) with
# --storage-opt overlay.mount_program=/usr/bin/fuse-overlayfs, so the
# containers' upper layers carry fuse-overlayfs's own markers, plus ground
# truth: podman's view (expected/) and fuse-overlayfs's own read-only mount
# of every container's layers (manifests/). The kernel's overlay cannot
# read those markers (.wh.NAME files, user.fuseoverlayfs.opaque), so the
# oracle is the same tool that wrote them.
#
# Usage (as root, Debian 12):  ./generate.sh [OUTDIR]     (default: this directory)
# KEEP_WORK=1 keeps the scratch directory (/tmp/csfuse.*).
set -Eeuo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-$HERE}
MANIFEST_PY=$HERE/../../example/manifest.py
DISK_NAME=fuse-node.raw
DISK_MIB=32
RL_USER=podrunner
RL_UID=2001
SUBID_START=200000
SUBID_COUNT=65536
FUSE_OVERLAYFS=/usr/bin/fuse-overlayfs

log() { printf '%s generate: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ===========================================================================
# Inner part: a private mount namespace where the disk's root filesystem
# provides /var/lib/containers and /home, so every path podman records is
# the one a real host has.
inner() {
	local work=$1
	local mnt=$work/mnt out=$work/out
	mount --make-rprivate /
	mkdir -p /var/lib/containers /home
	mount --bind "$mnt/var/lib/containers" /var/lib/containers
	mount --bind "$mnt/home" /home
	mkdir -p /run/containers && mount -t tmpfs -o mode=0755 tmpfs /run/containers
	mkdir -p /run/user && mount -t tmpfs -o mode=0755 tmpfs /run/user
	mkdir -p "/run/user/$RL_UID" && chown "$RL_UID:$RL_UID" "/run/user/$RL_UID" && chmod 700 "/run/user/$RL_UID"

	local RL="runuser -u $RL_USER -- env HOME=/home/$RL_USER XDG_RUNTIME_DIR=/run/user/$RL_UID CONTAINERS_CONF=$work/containers.conf podman --storage-driver overlay --storage-opt overlay.mount_program=$FUSE_OVERLAYFS"
	log "rootless (fuse-overlayfs): image"
	cp "$work/base.tar" "/home/$RL_USER/base.tar" && chown "$RL_UID:$RL_UID" "/home/$RL_USER/base.tar"
	$RL import --change 'CMD ["/bin/sh"]' "/home/$RL_USER/base.tar" localhost/base:1 >&2
	rm "/home/$RL_USER/base.tar"
	local changes='
		rm /etc/motd
		rm -rf /opt/app && mkdir /opt/app && echo x > /opt/app/new
		rm -rf /usr/share/doc
		echo added > /added.txt
		mkdir -p /newdir/sub && echo deep > /newdir/sub/f
		echo more >> /etc/passwd'
	log "rootless (fuse-overlayfs): containers"
	# fuse-overlayfs writes whiteouts as 0/0 character devices when mknod
	# works (this kernel allows it in a user namespace) ...
	$RL run --network none --name fo-chardev localhost/base:1 sh -c "$changes" >&2
	# ... and as .wh.NAME files when it cannot; its documented switch
	# FUSE_OVERLAYFS_DISABLE_OVL_WHITEOUT forces that path (podman passes
	# its environment to the mount program).
	runuser -u "$RL_USER" -- env FUSE_OVERLAYFS_DISABLE_OVL_WHITEOUT=1 HOME=/home/$RL_USER XDG_RUNTIME_DIR=/run/user/$RL_UID CONTAINERS_CONF=$work/containers.conf \
		podman --storage-driver overlay --storage-opt overlay.mount_program=$FUSE_OVERLAYFS \
		run --network none --name fo-whfiles localhost/base:1 sh -c "$changes" >&2
	record "$RL" "$out/expected/rootless" rootless
	local pause=/run/user/$RL_UID/libpod/tmp/pause.pid
	if [ -s "$pause" ]; then kill "$(cat "$pause")" 2>/dev/null || true; fi
	local st=/home/$RL_USER/.local/share/containers/storage
	[ "$(cat "$st/overlay/.has-mount-program")" = true ] || die "overlay/.has-mount-program is not true"
	cp "$st/overlay/.has-mount-program" "$out/expected/rootless/has-mount-program"

	# Root's fuse-overlayfs may mknod and set trusted.overlay.opaque.
	log "rootful (fuse-overlayfs): image and container"
	local P="podman --root /var/lib/containers/storage --runroot /run/containers/storage --storage-driver overlay --storage-opt overlay.mount_program=$FUSE_OVERLAYFS"
	CONTAINERS_CONF=$work/containers.conf $P import --change 'CMD ["/bin/sh"]' "$work/base.tar" localhost/base:1 >&2
	CONTAINERS_CONF=$work/containers.conf $P run --network none --name fo-rootful localhost/base:1 sh -c "$changes" >&2
	record "env CONTAINERS_CONF=$work/containers.conf $P" "$out/expected/rootful" rootful
	[ "$(cat /var/lib/containers/storage/overlay/.has-mount-program)" = true ] || die "rootful overlay/.has-mount-program is not true"

	# What the upper layers hold, markers included (for the README and review).
	while IFS=$'\t' read -r store id layers; do
		local upper=${layers%%:*}
		(cd "$upper" && find . -printf '%M %U:%G %p\n' | sort -k3 && getfattr -R -d -m - --absolute-names . 2>/dev/null || true) >"$out/expected/$store/upper-$id.txt"
	done <"$WORK/mounts.tsv"

	log "manifests from fuse-overlayfs's read-only mounts"
	manifests "$out"
	sync
}

# record PODMAN DIR STORE: what podman says about its containers.
record() {
	local P=$1 dir=$2 store=$3
	mkdir -p "$dir"
	$P ps -a --format json >"$dir/ps.json" 2>/dev/null
	$P container inspect $($P ps -aq 2>/dev/null) >"$dir/inspect.json" 2>/dev/null
	$P images --format json >"$dir/images.json" 2>/dev/null
	$P info --format json >"$dir/info.json" 2>/dev/null
	python3 - "$dir/inspect.json" "$store" >>"$WORK/mounts.tsv" <<'EOF'
import json, sys
for c in json.load(open(sys.argv[1])):
    d = c["GraphDriver"]["Data"]
    layers = [d["UpperDir"]] + (d["LowerDir"].split(":") if d.get("LowerDir") else [])
    print("\t".join([sys.argv[2], c["Id"], ":".join(layers)]))
EOF
}

manifests() {
	local out=$1 m=$WORK/merged
	mkdir -p "$m" "$out/manifests"
	printf 'store\tcontainer\tdriver\tlayers(top..bottom)\tentries\tmanifest\n' >"$out/manifests/index.tsv"
	while IFS=$'\t' read -r store id layers; do
		"$FUSE_OVERLAYFS" -o "ro,lowerdir=$layers" "$m"
		mkdir -p "$out/manifests/$store"
		python3 "$MANIFEST_PY" "$m" "$out/manifests/$store/$id.jsonl"
		umount "$m"
		printf '%s\t%s\tfuse-overlayfs\t%s\t%s\t%s\n' "$store" "$id" "$layers" "$(wc -l <"$out/manifests/$store/$id.jsonl")" "$store/$id.jsonl" >>"$out/manifests/index.tsv"
	done <"$WORK/mounts.tsv"
}

if [ "${1:-}" = --inner ]; then
	WORK=$2
	RL_USER=$3
	inner "$WORK"
	exit 0
fi

# ===========================================================================
# Outer part.
[ "$(id -u)" = 0 ] || die "run as root"
for t in podman fuse-overlayfs sgdisk mkfs.ext4 losetup zstd python3 runuser newuidmap catatonit busybox getfattr; do
	command -v "$t" >/dev/null || NEED=1
done
if [ -n "${NEED:-}" ]; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y podman fuse-overlayfs uidmap catatonit busybox-static gdisk e2fsprogs zstd python3 util-linux attr >&2
fi
[ -c /dev/fuse ] || die "no /dev/fuse"

WORK=$(mktemp -d /tmp/csfuse.XXXXXX)
LOOP=""
CREATED_USER=""
cleanup() {
	set +e
	mountpoint -q "$WORK/merged" && umount "$WORK/merged"
	mountpoint -q "$WORK/mnt" && umount "$WORK/mnt"
	[ -n "$LOOP" ] && losetup -d "$LOOP"
	if [ -n "$CREATED_USER" ]; then
		pkill -u "$RL_UID" 2>/dev/null # the rootless pause process, if it outlived the namespace
		userdel "$RL_USER"
		sed -i "/^$RL_USER:/d" /etc/subuid /etc/subgid
	fi
	[ -z "${KEEP_WORK:-}" ] && rm -rf "$WORK"
	chmod 1777 /tmp
}
trap cleanup EXIT

log "building the base image's tar from busybox-static"
R=$WORK/rootfs
mkdir -p "$R"/{bin,etc,tmp,root,opt/app,usr/share/doc/busybox}
cp /bin/busybox "$R/bin/busybox"
for a in sh ls cat echo rm mkdir touch chmod chown ln mv sleep true false; do ln -s busybox "$R/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$R/etc/passwd"
printf 'root:x:0:\n' >"$R/etc/group"
echo "welcome" >"$R/etc/motd"
echo "v1" >"$R/opt/app/version"
echo "old" >"$R/opt/app/old"
echo "busybox docs" >"$R/usr/share/doc/busybox/README"
chmod 1777 "$R/tmp"
chmod 0700 "$R/root"
tar --numeric-owner --sort=name --mtime=@1700000000 -C "$R" -cf "$WORK/base.tar" .
cat >"$WORK/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
chmod 755 "$WORK"
chmod 644 "$WORK/containers.conf" "$WORK/base.tar"

log "disk: GPT, one ext4 partition named root"
DISK=$WORK/$DISK_NAME
truncate -s ${DISK_MIB}M "$DISK"
sgdisk -o -U 7D0C1E55-0000-4000-8000-00000000F500 -n 1:2048:0 -c 1:root -t 1:8300 -u 1:7D0C1E55-0000-4000-8000-00000000F501 "$DISK" >&2
LOOP=$(losetup -f --show -o $((2048 * 512)) --sizelimit $(((DISK_MIB * 2048 - 2048 - 34) * 512)) "$DISK")
mkfs.ext4 -q -L root -U 7d0c1e55-0000-4000-8000-00000000f5f1 -E root_owner=0:0 "$LOOP"
mkdir -p "$WORK/mnt"
mount -t ext4 "$LOOP" "$WORK/mnt"
mkdir -p "$WORK/mnt/var/lib/containers" "$WORK/mnt/home" "$WORK/mnt/etc"

if ! id "$RL_USER" >/dev/null 2>&1; then
	useradd -M -d "/home/$RL_USER" -u "$RL_UID" -s /bin/sh "$RL_USER"
	CREATED_USER=1
fi
sed -i "/^$RL_USER:/d" /etc/subuid /etc/subgid
echo "$RL_USER:$SUBID_START:$SUBID_COUNT" >>/etc/subuid
echo "$RL_USER:$SUBID_START:$SUBID_COUNT" >>/etc/subgid
mkdir -p "$WORK/mnt/home/$RL_USER"
chown "$RL_UID:$RL_UID" "$WORK/mnt/home/$RL_USER"
grep -E "^(root|$RL_USER):" /etc/passwd >"$WORK/mnt/etc/passwd"
grep -E "^(root|$RL_USER):" /etc/group >"$WORK/mnt/etc/group" || true
echo "$RL_USER:$SUBID_START:$SUBID_COUNT" >"$WORK/mnt/etc/subuid"
echo "$RL_USER:$SUBID_START:$SUBID_COUNT" >"$WORK/mnt/etc/subgid"

mkdir -p "$WORK/out"
: >"$WORK/mounts.tsv"
unshare --mount --propagation private "$0" --inner "$WORK" "$RL_USER"

log "recording versions"
{
	podman --version
	dpkg-query -W -f '${Package} ${Version}\n' podman fuse-overlayfs fuse3 conmon runc crun catatonit uidmap 2>/dev/null || true
	uname -r
} >"$WORK/out/expected/versions.txt"
umount "$WORK/mnt"
e2fsck -fn "$LOOP" >&2
losetup -d "$LOOP"
LOOP=""

log "compressing"
mkdir -p "$OUT"
zstd -q -19 -f "$DISK" -o "$OUT/$DISK_NAME.zst"
rm -rf "$OUT/expected" "$OUT/manifests"
cp -r "$WORK/out/expected" "$WORK/out/manifests" "$OUT/"
log "done: $OUT/$DISK_NAME.zst"
