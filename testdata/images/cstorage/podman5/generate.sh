#!/bin/bash
# Generate podman5-node.raw.zst: a GPT disk whose ext4 root holds genuine
# containers/storage stores and SQLite state databases (db.sql) written by
# Podman 5, built from its Go module (gen/go.mod pins the version), with
# Debian's conmon and runc: a rootful store at /var/lib/containers/storage
# and a rootless one under /home/podrunner/.local/share/containers/storage,
# plus ground truth: what podman itself says (expected/) and the kernel's
# read-only overlay mount of every container's layers (manifests/).
# The scenario is the one of ../generate.sh (Podman 4.3, bolt_state.db).
#
# Usage (as root, Debian 12, Go and a C compiler):  ./generate.sh [OUTDIR]
# KEEP_WORK=1 keeps the scratch directory (/tmp/csnode5.*).
# PODMAN5=/path/to/podman skips the build.
set -Eeuo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-$HERE}
MANIFEST_PY=$HERE/../../example/manifest.py
DISK_NAME=podman5-node.raw
DISK_MIB=96
RL_USER=podrunner
RL_UID=2001
SUBID_START=200000
SUBID_COUNT=65536

log() { printf '%s generate: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ===========================================================================
# Inner part: runs in a private mount namespace where the disk's root
# filesystem provides /var/lib/containers and /home, so every path podman
# records is the one a real host would have.
inner() {
	local work=$1
	local mnt=$work/mnt out=$work/out
	mount --make-rprivate /
	mkdir -p /var/lib/containers /home
	mount --bind "$mnt/var/lib/containers" /var/lib/containers
	mount --bind "$mnt/home" /home
	mount -t tmpfs -o mode=0755 tmpfs /run/containers 2>/dev/null || { mkdir -p /run/containers && mount -t tmpfs -o mode=0755 tmpfs /run/containers; }
	mkdir -p /run/user && mount -t tmpfs -o mode=0755 tmpfs /run/user
	mkdir -p "/run/user/$RL_UID" && chown "$RL_UID:$RL_UID" "/run/user/$RL_UID" && chmod 700 "/run/user/$RL_UID"
	export CONTAINERS_CONF=$work/containers.conf
	export PODMAN_IGNORE_CGROUPSV1_WARNING=1

	log "rootful: images"
	local P="$PODMAN --root /var/lib/containers/storage --runroot /run/containers/storage --storage-driver overlay"
	$P import --change 'CMD ["/bin/sh"]' "$work/base.tar" localhost/base:1 >&2
	$P build --network none -t localhost/web:2 -f "$work/Containerfile" "$work" >&2

	log "rootful: containers"
	$P volume create appdata >&2
	$P run --network none --name changed localhost/web:2 sh -c '
		mkdir -p /root && echo "new file" > /root/new.txt
		echo "intruder:x:0:0::/root:/bin/sh" >> /etc/passwd
		rm /etc/app.conf
		rm -rf /usr/share/doc
		rm -rf /opt/app && mkdir /opt/app && echo replaced > /opt/app/version
		ln -s /etc/shadow /tmp/evil
		mkfifo /tmp/fifo
		chmod 4755 /bin/busybox' >&2
	$P run --network none --name failed localhost/base:1 sh -c 'echo boom > /tmp/err; exit 3' >&2 || true
	$P create --network none --name never localhost/base:1 sleep 1 >&2
	$P pod create --network none --name webpod >&2
	$P run --pod webpod --name web -v appdata:/data localhost/web:2 sh -c 'echo data > /data/file; echo served > /var/www/log' >&2
	$P run --pod webpod --name sidecar localhost/base:1 sh -c 'touch /tmp/side; exit 0' >&2
	$P pod stop -t 2 webpod >&2
	record "$P" "$out/expected/rootful" rootful ""

	log "rootless: images and containers (user $RL_USER)"
	local RL="runuser -u $RL_USER -- env HOME=/home/$RL_USER XDG_RUNTIME_DIR=/run/user/$RL_UID CONTAINERS_CONF=$work/containers.conf PODMAN_IGNORE_CGROUPSV1_WARNING=1 $PODMAN --storage-driver overlay"
	cp "$work/base.tar" "/home/$RL_USER/base.tar" && chown "$RL_UID:$RL_UID" "/home/$RL_USER/base.tar"
	$RL import --change 'CMD ["/bin/sh"]' "/home/$RL_USER/base.tar" localhost/base:1 >&2
	rm "/home/$RL_USER/base.tar"
	$RL run --network none --name rl-changed localhost/base:1 sh -c '
		echo rootless > /root-note
		rm /etc/motd
		rm -rf /opt/app && mkdir /opt/app && echo x > /opt/app/new
		chown 1000:1000 /opt/app/new' >&2
	$RL run --network none --name rl-exit localhost/base:1 sh -c 'exit 7' >&2 || true
	record "$RL" "$out/expected/rootless" rootless userxattr
	local pause=/run/user/$RL_UID/libpod/tmp/pause.pid
	if [ -s "$pause" ]; then kill "$(cat "$pause")" 2>/dev/null || true; fi

	log "manifests from the kernel's read-only overlay mounts"
	manifests "$out"
	sync
}

# record PODMAN DIR STORE MOUNTOPT: what podman says about its containers.
record() {
	local P=$1 dir=$2 store=$3 opt=$4
	mkdir -p "$dir"
	$P ps -a --format json >"$dir/ps.json" 2>/dev/null
	$P container inspect $($P ps -aq 2>/dev/null) >"$dir/inspect.json" 2>/dev/null
	$P pod ps --format json >"$dir/pods.json" 2>/dev/null
	$P volume ls --format json >"$dir/volumes.json" 2>/dev/null
	$P images --format json >"$dir/images.json" 2>/dev/null
	$P info --format json >"$dir/info.json" 2>/dev/null
	# One line per container for the kernel mounts: store, id, opt, upper:lowers.
	python3 - "$dir/inspect.json" "$store" "$opt" >>"$WORK/mounts.tsv" <<'EOF'
import json, sys
for c in json.load(open(sys.argv[1])):
    d = c["GraphDriver"]["Data"]
    layers = [d["UpperDir"]] + (d["LowerDir"].split(":") if d.get("LowerDir") else [])
    print("\t".join([sys.argv[2], c["Id"], sys.argv[3] or "-", ":".join(layers)]))
EOF
}

manifests() {
	local out=$1 m=$WORK/merged
	mkdir -p "$m" "$out/manifests"
	printf 'store\tcontainer\tdriver\tlayers(top..bottom)\tentries\tmanifest\n' >"$out/manifests/index.tsv"
	while IFS=$'\t' read -r store id opt layers; do
		local o="ro,lowerdir=$layers"
		# Podman 5's infra container runs on a host directory (--rootfs with
		# an overlay): one layer, and a read-only overlay wants two.
		case $layers in *:*) ;; *) mkdir -p "$WORK/empty" && o="$o:$WORK/empty" ;; esac
		[ "$opt" = userxattr ] && o="$o,userxattr"
		mount -t overlay overlay -o "$o" "$m"
		mkdir -p "$out/manifests/$store"
		python3 "$MANIFEST_PY" "$m" "$out/manifests/$store/$id.jsonl"
		umount "$m"
		printf '%s\t%s\toverlay\t%s\t%s\t%s\n' "$store" "$id" "$layers" "$(wc -l <"$out/manifests/$store/$id.jsonl")" "$store/$id.jsonl" >>"$out/manifests/index.tsv"
	done <"$WORK/mounts.tsv"
}

if [ "${1:-}" = --inner ]; then
	WORK=$2
	RL_USER=$3
	PODMAN=$4
	inner "$WORK"
	exit 0
fi

# ===========================================================================
# Outer part.
[ "$(id -u)" = 0 ] || die "run as root"
for t in conmon runc /usr/lib/podman/netavark sgdisk mkfs.ext4 losetup zstd python3 runuser newuidmap catatonit busybox gcc; do
	command -v "$t" >/dev/null || NEED=1
done
if [ -n "${NEED:-}" ]; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y conmon runc netavark uidmap catatonit busybox-static gdisk e2fsprogs zstd python3 util-linux gcc libc6-dev >&2
fi

WORK=$(mktemp -d /tmp/csnode5.XXXXXX)
PODMAN=${PODMAN5:-}
if [ -z "$PODMAN" ]; then
	# Podman 5 is not in Debian 12: build it from its Go module, without the
	# features that need C libraries beyond libc (gpgme, btrfs, seccomp,
	# systemd); SQLite comes with go-sqlite3's amalgamation.
	log "building podman from gen/go.mod"
	(cd "$HERE/gen" && go build -o "$WORK/podman" -tags "containers_image_openpgp exclude_graphdriver_btrfs" \
		github.com/containers/podman/v5/cmd/podman) >&2
	PODMAN=$WORK/podman
fi
LOOP=""
CREATED_USER=""
cleanup() {
	set +e
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
mkdir -p "$R"/{bin,etc,tmp,root,opt/app,usr/share/doc/busybox,var/www}
cp /bin/busybox "$R/bin/busybox"
for a in sh ls cat echo rm mkdir touch chmod chown ln mv sleep true false mkfifo; do ln -s busybox "$R/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\nwww:x:33:33::/var/www:/bin/false\n' >"$R/etc/passwd"
printf 'root:x:0:\nwww:x:33:\n' >"$R/etc/group"
echo "welcome" >"$R/etc/motd"
echo "listen=80" >"$R/etc/app.conf"
echo "v1" >"$R/opt/app/version"
echo "old" >"$R/opt/app/old"
echo "busybox docs" >"$R/usr/share/doc/busybox/README"
echo "<h1>base</h1>" >"$R/var/www/index.html"
chown 33:33 "$R/var/www" "$R/var/www/index.html"
chmod 1777 "$R/tmp"
chmod 0700 "$R/root"
tar --numeric-owner --sort=name --mtime=@1700000000 -C "$R" -cf "$WORK/base.tar" .
cat >"$WORK/Containerfile" <<'EOF'
FROM localhost/base:1
RUN rm /etc/motd && rm -rf /opt/app && mkdir /opt/app && echo v2 > /opt/app/version && echo "<h1>web</h1>" > /var/www/index.html
RUN mkdir -p /var/www/static && echo body > /var/www/static/style.css
EOF
# Podman's default rlimits (nofile 1048576) exceed this machine's hard limits.
cat >"$WORK/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
# Built without libseccomp (no seccomp build tag).
seccomp_profile = "unconfined"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
database_backend = "sqlite"
runtime = "runc"
conmon_path = ["/usr/bin/conmon"]
helper_binaries_dir = ["/usr/bin", "/usr/lib/podman", "/usr/libexec/podman"]
EOF
chmod 755 "$WORK"
chmod 644 "$WORK/containers.conf"

log "disk: GPT, one ext4 partition named root"
DISK=$WORK/$DISK_NAME
truncate -s ${DISK_MIB}M "$DISK"
sgdisk -o -U 7D0C1E55-0000-4000-8000-00000000C500 -n 1:2048:0 -c 1:root -t 1:8300 -u 1:7D0C1E55-0000-4000-8000-00000000C501 "$DISK" >&2
# The partition through an offset loop device (no udev here for -P).
LOOP=$(losetup -f --show -o $((2048 * 512)) --sizelimit $(((DISK_MIB * 2048 - 2048 - 34) * 512)) "$DISK")
mkfs.ext4 -q -L root -U 7d0c1e55-0000-4000-8000-00000000c5f1 -E root_owner=0:0 "$LOOP"
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
# The node's own account files, as a host would have them.
grep -E "^(root|$RL_USER):" /etc/passwd >"$WORK/mnt/etc/passwd"
grep -E "^(root|$RL_USER):" /etc/group >"$WORK/mnt/etc/group" || true
echo "$RL_USER:$SUBID_START:$SUBID_COUNT" >"$WORK/mnt/etc/subuid"
echo "$RL_USER:$SUBID_START:$SUBID_COUNT" >"$WORK/mnt/etc/subgid"

mkdir -p "$WORK/out"
: >"$WORK/mounts.tsv"
unshare --mount --propagation private "$0" --inner "$WORK" "$RL_USER" "$PODMAN"

log "recording versions"
{
	"$PODMAN" --version
	"$PODMAN" version --format '{{.Client.GoVersion}} {{.Client.OsArch}}'
	dpkg-query -W -f '${Package} ${Version}\n' conmon runc catatonit uidmap containers-storage golang-github-containers-common 2>/dev/null || true
	uname -r
} >"$WORK/out/expected/versions.txt"
python3 - "$WORK/out/expected/rootless/info.json" >"$WORK/out/expected/rootless/driver.txt" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))["store"]
print("graphDriverName", s["graphDriverName"])
print("graphOptions", json.dumps(s.get("graphOptions")))
for k, v in sorted(s["graphStatus"].items()):
    print(k, v)
EOF
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
