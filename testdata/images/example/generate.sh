#!/bin/bash
# Generate the wordpress-node example: a small COS-like GKE node disk whose
# STATE partition holds genuine containerd 1.6 state (CRI pods, a crashed
# sidecar, an attacker's changes inside the containers), plus ground truth.
#
# Usage (as root, Debian 12):  ./generate.sh [OUTDIR]     (default: this directory)
# Environment: KEEP_WORK=1 keeps the scratch directory (/tmp/wpnode.*) for inspection.
# See ../README.md for what it produces.
set -Eeuo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)

# ---------------------------------------------------------------------------
# Disk layout: the partition numbers, names and types of a COS node, with the
# low partitions at COS's own sector offsets and small root partitions.
# number name start_sector sectors typecode
PARTS="
11 RWFW        64     16384 EF02
6  KERN-C      16448  1     7F00
7  ROOT-C      16449  1     7F01
9  reserved    16450  1     7F02
10 reserved    16451  1     7F02
2  KERN-A      20480  32768 7F00
4  KERN-B      53248  32768 7F00
8  OEM         86016  32768 8300
12 EFI-SYSTEM  249856 65536 EF00
5  ROOT-B      315392 131072 7F01
3  ROOT-A      446464 131072 7F01
1  STATE       577536 786432 8300
"
DISK_SECTORS=$((577536 + 786432 + 2048))
GUID_PREFIX=7D0C1E55-0000-4000-8000-0000000000   # + two hex digits: deterministic GUIDs
STATE_UUID=7d0c1e55-0000-4000-8000-0000000000f1
DISK_NAME=wordpress-node.raw
NS=k8s.io

log() { printf '%s generate: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

part_field() { # part_field NUMBER FIELD(2=name 3=start 4=sectors 5=type)
	awk -v n="$1" -v f="$2" '$1==n {print $f}' <<<"$PARTS"
}

# ===========================================================================
# Inner part: runs as pid 1 of private pid, mount and network namespaces.
# Everything it mounts disappears with the namespaces.
inner() {
	local work=$1 loop=$2
	local state=$work/state
	trap 'inner_cleanup' EXIT
	ip link set lo up
	mount -t ext4 -o noinit_itable "$loop" "$state"
	# COS: /var is a bind mount of <STATE>/var; /run is a fresh tmpfs.
	mount --bind "$state/var" /var
	mount -t tmpfs -o mode=0755 tmpfs /run
	mkdir -p /run/containerd

	log "starting containerd"
	containerd --config "$work/config.toml" >"$work/containerd.log" 2>&1 &
	CONTAINERD_PID=$!
	for _ in $(seq 100); do
		ctr version >/dev/null 2>&1 && break
		sleep 0.2
	done
	ctr version >/dev/null || die "containerd did not start (see $work/containerd.log)"

	log "importing images"
	ctr -n "$NS" images import "$work/images/docker-save.tar" >&2
	ctr -n "$NS" images import "$work/images/wordpress.oci.tar" >&2
	ctr -n "$NS" images import "$work/images/mysql.oci.tar" >&2

	log "running the CRI scenario"
	"$work/wpscenario" -endpoint /run/containerd/containerd.sock -out "$work/out/expected/cri" 2>&1 |
		tee "$work/scenario.log" >&2

	log "recording containerd's view"
	record "$work/out/expected" "$work"

	log "stopping containerd"
	kill -TERM "$CONTAINERD_PID"
	wait "$CONTAINERD_PID" || true
	CONTAINERD_PID=
	# Shims exit once their tasks are deleted; give them a moment.
	for _ in $(seq 50); do
		pgrep -f containerd-shim >/dev/null || break
		sleep 0.2
	done
	if pgrep -f containerd-shim >/dev/null; then
		log "warning: shims still running, killing them"
		# Only this private pid namespace is visible here, so these are our own shims.
		for p in $(pgrep -f containerd-shim); do kill -KILL "$p" 2>/dev/null || true; done
		sleep 0.5
	fi
	umount /run
	umount /var
	umount "$state"
	trap - EXIT
}

inner_cleanup() {
	[ -n "${CONTAINERD_PID:-}" ] && kill -KILL "$CONTAINERD_PID" 2>/dev/null
	true
}

# record OUT WORK: ctr listings, containers info, snapshot mounts, image digests.
record() {
	local out=$1 work=$2 ns id key snapshotter m
	mkdir -p "$out/containerd"
	ctr version >"$out/versions.txt"
	{
		runc --version
		echo "kernel $(uname -r)"
		go version 2>/dev/null || true
	} >>"$out/versions.txt"
	ctr namespaces ls >"$out/containerd/namespaces.txt"
	: >"$work/containers.tsv"
	: >"$out/containerd/snapshot-mounts.tsv"
	for ns in $(ctr namespaces ls -q); do
		ctr -n "$ns" images ls >"$out/containerd/$ns-images.txt"
		ctr -n "$ns" containers ls >"$out/containerd/$ns-containers.txt"
		ctr -n "$ns" content ls >"$out/containerd/$ns-content.txt"
		ctr -n "$ns" snapshots --snapshotter overlayfs ls >"$out/containerd/$ns-snapshots-overlayfs.txt"
		ctr -n "$ns" snapshots --snapshotter native ls >"$out/containerd/$ns-snapshots-native.txt"
		for id in $(ctr -n "$ns" containers ls -q | LC_ALL=C sort); do
			ctr -n "$ns" containers info "$id" >"$out/containerd/$ns-container-$id.json"
			read -r key snapshotter < <(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["SnapshotKey"], d["Snapshotter"])' \
				"$out/containerd/$ns-container-$id.json")
			m=$(ctr -n "$ns" snapshots --snapshotter "$snapshotter" mounts /rootfs "$key")
			printf '%s\t%s\t%s\t%s\n' "$ns" "$id" "$snapshotter" "$m" >>"$out/containerd/snapshot-mounts.tsv"
			printf '%s\t%s\t%s\t%s\n' "$ns" "$id" "$snapshotter" "$(layers_of "$m")" >>"$work/containers.tsv"
		done
	done
	while IFS=$'\t' read -r name format _; do
		printf '%s\t%s\t%s\n' "$name" \
			"$(ctr -n "$NS" images ls | awk -v n="$name" '$1==n {print $3}')" "$format"
	done <"$work/images/images.tsv" >"$out/images-built.tsv"
}

# layers_of MOUNTCMD: the layer directories of a snapshot mount, top (writable) first.
layers_of() {
	python3 - "$1" <<'EOF'
import sys
cmd = sys.argv[1].split()
opts = cmd[cmd.index("-o") + 1].split(",") if "-o" in cmd else []
kv = dict(o.split("=", 1) for o in opts if "=" in o)
if cmd[2] == "overlay":
    layers = ([kv["upperdir"]] if "upperdir" in kv else []) + kv["lowerdir"].split(":")
else:  # bind mount (native snapshotter)
    layers = [cmd[3]]
print(":".join(layers))
EOF
}

# ===========================================================================
# Outer part.
WORK=
LOOPS=()
OUTER_MOUNTS=()
INNER_PID=
CGROUPS_BEFORE=

cleanup() {
	local rc=$? m l
	set +e
	if [ -n "$INNER_PID" ] && kill -0 "$INNER_PID" 2>/dev/null; then
		log "cleanup: stopping the private namespaces"
		# unshare --fork ignores SIGTERM while it waits; SIGKILL it, and --kill-child
		# makes the kernel SIGKILL the namespace's pid 1, which takes every process
		# in the pid namespace (containerd, shims, containers) and the mounts with it.
		kill -KILL "$INNER_PID"
		wait "$INNER_PID"
	fi
	for ((i = ${#OUTER_MOUNTS[@]} - 1; i >= 0; i--)); do
		m=${OUTER_MOUNTS[$i]}
		mountpoint -q "$m" && umount "$m"
	done
	for l in "${LOOPS[@]}"; do
		# A namespace that is still being torn down may hold the device briefly.
		for _ in $(seq 25); do
			losetup -d "$l" 2>/dev/null
			losetup "$l" >/dev/null 2>&1 || break
			sleep 0.2
		done
	done
	# runc leaves the pod-level cgroups (kubepods/...) of the cgroupfs driver behind.
	for m in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
		[ -d "$m" ] || continue
		grep -qxF "$m" <<<"$CGROUPS_BEFORE" && continue
		find "$m" -depth -type d -exec rmdir {} \; 2>/dev/null
	done
	if [ -n "$WORK" ] && [ -z "${KEEP_WORK:-}" ]; then
		rm -rf "$WORK"
	elif [ -n "$WORK" ]; then
		log "scratch kept in $WORK"
	fi
	exit $rc
}

attach() { # attach VAR PARTNUM [ro]: VAR := loop device of that partition (recorded for cleanup)
	local _start _sectors _dev _ro=()
	_start=$(part_field "$2" 3)
	_sectors=$(part_field "$2" 4)
	[ "${3:-}" = ro ] && _ro=(-r)
	_dev=$(losetup -f --show "${_ro[@]}" -o $((_start * 512)) --sizelimit $((_sectors * 512)) "$WORK/$DISK_NAME")
	LOOPS+=("$_dev")
	printf -v "$1" '%s' "$_dev"
}

detach() {
	local l keep=()
	losetup -d "$1"
	for l in "${LOOPS[@]}"; do [ "$l" != "$1" ] && keep+=("$l"); done
	LOOPS=("${keep[@]}")
}

install_packages() {
	local need=(containerd runc busybox-static containernetworking-plugins e2fsprogs gdisk zstd dosfstools
		util-linux iproute2 python3 procps)
	local missing=()
	for p in "${need[@]}"; do
		dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		log "installing ${missing[*]}"
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2
	fi
	command -v go >/dev/null || die "go is needed to build the CRI client (cri/)"
}

make_disk() {
	local args=() n name start sectors type dev
	truncate -s $((DISK_SECTORS * 512)) "$WORK/$DISK_NAME"
	while read -r n name start sectors type; do
		[ -n "$n" ] || continue
		args+=(-n "$n:$start:$((start + sectors - 1))" -t "$n:$type" -c "$n:$name"
			-u "$n:$GUID_PREFIX$(printf '%02X' "$n")")
	done <<<"$PARTS"
	sgdisk -a 1 -U "${GUID_PREFIX}5F" "${args[@]}" "$WORK/$DISK_NAME" >/dev/null

	attach dev 8
	mkfs.ext4 -q -F -b 4096 -L OEM -U "${GUID_PREFIX,,}08" "$dev"
	detach "$dev"
	attach dev 12
	mkfs.vfat -n EFI-SYSTEM -i 7D0C1E55 "$dev" >/dev/null
	detach "$dev"

	# COS's stateful partition: ext4, 4 KiB blocks, metadata_csum, 64bit.
	attach STATE_LOOP 1
	mkfs.ext4 -q -F -b 4096 -I 256 -L STATE -U "$STATE_UUID" -E "hash_seed=$STATE_UUID,lazy_itable_init=1,lazy_journal_init=1" \
		-O has_journal,ext_attr,resize_inode,dir_index,filetype,extent,64bit,flex_bg,sparse_super,large_file,huge_file,dir_nlink,extra_isize,metadata_csum \
		"$STATE_LOOP"
	mkdir -p "$WORK/state"
	mount -t ext4 -o noinit_itable "$STATE_LOOP" "$WORK/state"
	OUTER_MOUNTS+=("$WORK/state")
	(
		cd "$WORK/state"
		mkdir -p home var_overlay var/lib var/log var/lock
		install -d -m 1777 var/tmp
		ln -s /run var/run
	)
	umount "$WORK/state"
	OUTER_MOUNTS=()
}

write_config() {
	mkdir -p "$WORK/cni"
	cat >"$WORK/cni/10-k8s-pod-network.conflist" <<'EOF'
{
  "cniVersion": "0.4.0",
  "name": "k8s-pod-network",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": false,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "10.8.0.0/24"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    }
  ]
}
EOF
	# /etc is tmpfs on COS, so this file never lands on the disk.
	cat >"$WORK/config.toml" <<EOF
version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
[grpc]
  address = "/run/containerd/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "gke.gcr.io/pause:3.8"
  # Lowering oom_score_adj is refused on these machines; clamp like rootless setups do.
  restrict_oom_score_adj = true
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$WORK/cni"
EOF
}

# ground_truth OUT: superblock, e2fsck, listings, overlay markers, and one
# manifest per container from a read-only overlay of its snapshot directories.
ground_truth() {
	local out=$1 ro ns id snapshotter layers lower l n entries
	mkdir -p "$out/manifests"
	log "checking the STATE filesystem"
	e2fsck -fn "$STATE_LOOP" >"$WORK/e2fsck.txt" 2>&1 || { cat "$WORK/e2fsck.txt" >&2; die "e2fsck found problems"; }
	dumpe2fs -h "$STATE_LOOP" 2>/dev/null |
		grep -E '^(Filesystem features|Filesystem state|Last mount time|Last write time):' >"$out/manifests/superblock.txt"
	detach "$STATE_LOOP"
	attach STATE_LOOP 1 ro
	ro=$WORK/ro
	mkdir -p "$ro" "$WORK/merged"
	mount -t ext4 -o ro,noload "$STATE_LOOP" "$ro"
	OUTER_MOUNTS+=("$ro")

	(cd "$ro" && find . -printf '%y %m %U:%G %s %p\n' | LC_ALL=C sort) >"$out/expected/stateful-partition-listing.txt"
	python3 - "$ro/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots" \
		>"$out/expected/overlay-markers.txt" <<'EOF'
import os, sys
root = sys.argv[1]
rows = []
for n in os.listdir(root):
    top = os.path.join(root, n, "fs")
    for d, dirs, files in os.walk(top):
        for name in dirs + files:
            p = os.path.join(d, name)
            st = os.lstat(p)
            rel = "./" + os.path.relpath(p, root)
            if (st.st_mode & 0o170000) == 0o020000:
                rows.append("whiteout %d:%d %s" % (os.major(st.st_rdev), os.minor(st.st_rdev), rel))
            elif name in dirs:
                try:
                    v = os.getxattr(p, "trusted.overlay.opaque", follow_symlinks=False)
                except OSError:
                    continue
                rows.append("opaque %s" % rel if v == b"y" else "opaque(%r) %s" % (v, rel))
for r in sorted(rows):
    print(r)
EOF

	printf 'namespace\tcontainer\tsnapshotter\tlayers(top..bottom)\tentries\tmanifest\n' >"$out/manifests/index.tsv"
	while IFS=$'\t' read -r ns id snapshotter layers; do
		mkdir -p "$out/manifests/$ns"
		lower=
		IFS=: read -ra ls <<<"$layers"
		for l in "${ls[@]}"; do lower+="${lower:+:}$ro$l"; done
		if [ "$snapshotter" = overlayfs ]; then
			mount -t overlay overlay -o "ro,lowerdir=$lower" "$WORK/merged"
		else
			mount --bind -o ro "$lower" "$WORK/merged"
		fi
		OUTER_MOUNTS+=("$WORK/merged")
		python3 "$HERE/manifest.py" "$WORK/merged" "$out/manifests/$ns/$id.jsonl"
		umount "$WORK/merged"
		unset 'OUTER_MOUNTS[${#OUTER_MOUNTS[@]}-1]'
		entries=$(wc -l <"$out/manifests/$ns/$id.jsonl")
		printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$ns" "$id" "$snapshotter" "$layers" "$entries" "$ns/$id.jsonl" \
			>>"$out/manifests/index.tsv"
	done < <(LC_ALL=C sort "$WORK/containers.tsv")
	n=$(($(wc -l <"$out/manifests/index.tsv") - 1))
	log "wrote $n manifests"
	umount "$ro"
	unset 'OUTER_MOUNTS[${#OUTER_MOUNTS[@]}-1]'
	detach "$STATE_LOOP"
	STATE_LOOP=
}

main() {
	local out=${1:-$HERE} t0=$SECONDS
	[ "$(id -u)" = 0 ] || die "must run as root"
	grep -q 'VERSION_ID="12"' /etc/os-release 2>/dev/null || log "warning: made for Debian 12; continuing"
	install_packages
	pgrep -x containerd >/dev/null && die "a containerd is already running; stop it first"
	CGROUPS_BEFORE=$(ls -d /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods 2>/dev/null || true)

	WORK=$(mktemp -d /tmp/wpnode.XXXXXX)
	trap cleanup EXIT
	trap 'exit 130' INT TERM
	mkdir -p "$WORK/out/expected"
	log "scratch: $WORK"

	log "building the CRI client"
	(cd "$HERE/cri" && go build -o "$WORK/wpscenario" .)
	log "building images"
	python3 "$HERE/mkimages.py" "$WORK/images" /bin/busybox
	log "creating the disk"
	make_disk
	write_config

	log "entering private mount/pid/network namespaces"
	unshare --mount --net --pid --fork --kill-child --propagation private --mount-proc \
		"$HERE/generate.sh" --inner "$WORK" "$STATE_LOOP" &
	INNER_PID=$!
	wait "$INNER_PID" || die "inner part failed"
	INNER_PID=

	# dpkg's database is under /var, which the inner part had replaced.
	dpkg-query -W -f '${Package}\t${Version}\n' busybox-static containerd containernetworking-plugins \
		dosfstools e2fsprogs gdisk runc zstd >>"$WORK/out/expected/versions.txt"
	ground_truth "$WORK/out"
	cp "$WORK/containerd.log" "$WORK/out/expected/containerd.log"
	cp "$WORK/scenario.log" "$WORK/out/expected/scenario.log"
	sgdisk -p "$WORK/$DISK_NAME" >"$WORK/out/expected/gpt.txt"
	sed -i "s|$WORK/||" "$WORK/out/expected/gpt.txt"

	log "compressing"
	zstd -q -19 --long=27 -T2 -f "$WORK/$DISK_NAME" -o "$WORK/out/$DISK_NAME.zst"

	log "installing results into $out"
	mkdir -p "$out"
	rm -rf "$out/expected" "$out/manifests" "$out/$DISK_NAME.zst"
	mv "$WORK/out/expected" "$WORK/out/manifests" "$WORK/out/$DISK_NAME.zst" "$out/"
	log "done in $((SECONDS - t0)) s: $(du -h "$out/$DISK_NAME.zst" | cut -f1) compressed"
}

if [ "${1:-}" = --inner ]; then
	shift
	inner "$@"
else
	main "$@"
fi
