#!/bin/bash
# Generate the Docker node fixture: a GPT disk whose ext4 partition holds a
# /var/lib/docker written by Debian's dockerd 20.10 (overlay2), with images
# built locally from busybox-static, containers in every state, a named
# volume, a bind mount, both json-file and local logs (rotated, compressed),
# and one container still running when the daemon was killed (kill -9 of
# every process: its config.v2.json says Running). Beside the disk, what the
# real docker client said: docker inspect, docker diff, docker logs, docker
# image inspect.
#
# Usage (as root, Debian 12):  ./make-docker-node.sh [OUTDIR]   (default: this directory)
# Environment: KEEP_WORK=1 keeps the scratch directory (/tmp/dockernode.*).
# Needs: docker.io (dockerd 20.10 and its client /usr/bin/docker),
# busybox-static, libcap2-bin, attr, gdisk, e2fsprogs, zstd, util-linux. No registry, no network.
#
# Layout of the partition (the node's root filesystem, mounted at /):
#   var/lib/docker  Docker's data-root
#   srv/share       bind-mounted into the container "web" (read-write)
set -Eeuo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
DOCKER=/usr/bin/docker # Debian's client, the daemon's version
PART_MIB=160
FS_UUID=d0c4e700-0000-4000-8000-0000000000a1
DISK_GUID=D0C4E700-0000-4000-8000-000000000001
PART_GUID=D0C4E700-0000-4000-8000-000000000011
CGROUP_PARENT=ctrlift-docker-fixture
EPOCH=1700000000

log() { printf '%s make-docker-node: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ===========================================================================
# Inner part: pid 1 of private pid, mount and network namespaces.
inner() {
	local work=$1 loop=$2
	local root=$work/root
	local sock=$work/docker.sock
	ip link set lo up
	mount -t ext4 "$loop" "$root"
	mkdir -p "$root/var/lib/docker" "$root/srv/share"
	# The disk is the node's /: dockerd's data-root is /var/lib/docker, the
	# bind source /srv/share, as on the host the paths in the configs say.
	# (a tmpfs over /var/lib: the host has no /var/lib/docker to mount on)
	mount -t tmpfs -o mode=0755 tmpfs /var/lib
	mkdir /var/lib/docker
	mount --bind "$root/var/lib/docker" /var/lib/docker
	mount --bind "$root/srv" /srv
	printf 'shared before the container ran\n' >/srv/share/host.txt
	touch -d @$EPOCH /srv/share/host.txt /srv/share

	log "starting dockerd"
	dockerd --data-root /var/lib/docker --exec-root "$work/exec" --pidfile "$work/docker.pid" \
		-H "unix://$sock" --bridge=none --iptables=false --ip-masq=false --ip6tables=false \
		--storage-driver overlay2 --cgroup-parent "$CGROUP_PARENT" --userland-proxy=false \
		>"$work/dockerd.log" 2>&1 &
	for _ in $(seq 150); do
		"$DOCKER" -H "unix://$sock" version >/dev/null 2>&1 && break
		sleep 0.2
	done
	export DOCKER_HOST=unix://$sock
	"$DOCKER" version >"$work/out/expected/versions.txt" 2>&1 || die "dockerd did not start (see $work/dockerd.log)"

	log "building images"
	"$DOCKER" import --change 'CMD ["/bin/sh"]' --change 'WORKDIR /' \
		"$work/base.tar" ctrlift/base:1 >/dev/null
	DOCKER_BUILDKIT=0 "$DOCKER" build -q --network none -t ctrlift/app:2 "$work/build" >/dev/null

	log "running containers"
	# web: a named volume and a bind, changes of every kind, json-file logs
	# rotated and compressed; still running when everything is killed.
	"$DOCKER" volume create webdata >/dev/null
	"$DOCKER" run -d --name web --network none -v webdata:/data -v /srv/share:/share \
		--log-driver json-file --log-opt max-size=2k --log-opt max-file=3 --log-opt compress=true \
		--label app=web ctrlift/app:2 /usr/local/bin/web.sh >/dev/null
	# worker: local (protobuf) logs, rotated and compressed; exits 3.
	"$DOCKER" run -d --name worker --network none \
		--log-driver local --log-opt max-size=4k --log-opt max-file=3 \
		ctrlift/app:2 /usr/local/bin/worker.sh >/dev/null
	# done: json-file, no rotation, exits 0 after deleting and adding files.
	"$DOCKER" run --name done --network none -v webdata:/data:ro ctrlift/base:1 \
		sh -c 'rm /etc/motd; mkdir -p /opt/out; echo result >/opt/out/result.txt; echo done-out; echo done-err >&2' \
		>/dev/null 2>&1
	# created: never started.
	"$DOCKER" create --name created --network none ctrlift/app:2 sh -c 'echo never' >/dev/null
	[ "$("$DOCKER" wait worker)" = 3 ] || die "worker did not exit 3"
	for _ in $(seq 100); do
		"$DOCKER" logs web 2>/dev/null | grep -q '^web ready$' && break
		sleep 0.2
	done
	"$DOCKER" logs web 2>/dev/null | grep -q '^web ready$' || die "web never got ready"
	sleep 2 # the json-file rotations are compressed in the background

	log "recording docker's view"
	local exp=$work/out/expected
	local ids
	ids=$("$DOCKER" ps -aq --no-trunc)
	# shellcheck disable=SC2086
	"$DOCKER" inspect $ids >"$exp/inspect.json"
	"$DOCKER" ps -a --no-trunc --format '{{.ID}}\t{{.Names}}\t{{.Image}}\t{{.State}}\t{{.Status}}' | sort -k2 >"$exp/ps.tsv"
	# shellcheck disable=SC2046
	"$DOCKER" image inspect $("$DOCKER" image ls -q --no-trunc) >"$exp/images.json"
	"$DOCKER" image ls --no-trunc --format '{{.Repository}}:{{.Tag}}\t{{.ID}}' | sort >"$exp/images.tsv"
	"$DOCKER" volume inspect webdata >"$exp/volumes.json"
	# The app image's own layers as docker save writes them (OCI whiteout
	# names, as the aufs driver stores a layer): the aufs reader's input.
	mkdir -p "$work/save" "$exp/app-layers"
	"$DOCKER" save ctrlift/app:2 | tar -x -C "$work/save"
	python3 -c 'import json,sys; [print(l) for l in json.load(open(sys.argv[1]))[0]["Layers"]]' "$work/save/manifest.json" >"$work/save/layers.txt"
	i=0
	while read -r l; do
		i=$((i + 1))
		[ "$i" = 1 ] && continue # the busybox base: on the disk already
		cp "$work/save/$l" "$exp/app-layers/$i.tar"
	done <"$work/save/layers.txt"
	mkdir -p "$exp/diff" "$exp/logs"
	for name in web worker done created; do
		"$DOCKER" diff "$name" | sort -k2 >"$exp/diff/$name.txt"
	done
	for name in web worker done; do
		"$DOCKER" logs -t "$name" >"$exp/logs/$name.stdout" 2>"$exp/logs/$name.stderr"
	done

	log "killing dockerd, containerd, the shims and the containers (kill -9)"
	kill -KILL -1 || true
	for _ in $(seq 50); do
		pgrep -f 'dockerd|containerd|sleep 100000' >/dev/null || break
		sleep 0.1
	done
	if pgrep -a -f 'dockerd|containerd|sleep 100000'; then die "processes left after kill -9"; fi
	umount -R /var/lib
	umount /srv
	umount "$root"
}

# ===========================================================================
# Outer part.
cleanup() {
	local rc=$?
	[ -n "${INNER_PID:-}" ] && kill -KILL "$INNER_PID" 2>/dev/null
	wait 2>/dev/null || true
	mountpoint -q "$WORK/root" 2>/dev/null && umount "$WORK/root"
	[ -n "${LOOP:-}" ] && losetup -d "$LOOP" 2>/dev/null
	# runc leaves the cgroups of the cgroupfs driver behind.
	for d in /sys/fs/cgroup/*/"$CGROUP_PARENT" /sys/fs/cgroup/"$CGROUP_PARENT"; do
		[ -d "$d" ] || continue
		find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
	done
	if [ -n "${KEEP_WORK:-}" ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
	exit $rc
}

make_rootfs() { # the busybox base image's tree
	local r=$1
	mkdir -p "$r"/{bin,etc,root,tmp,data,var/www,var/cache/app,usr/local/bin}
	cp /bin/busybox "$r/bin/busybox"
	for a in $(/bin/busybox --list); do
		[ "$a" = busybox ] || ln -s busybox "$r/bin/$a"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/false\n' >"$r/etc/passwd"
	printf 'root:x:0:\nwww:x:33:\n' >"$r/etc/group"
	printf 'welcome to the fixture\n' >"$r/etc/motd"
	printf 'seed\n' >"$r/data/seed.txt"
	printf '<h1>index</h1>\n' >"$r/var/www/index.html"
	printf '<h1>old</h1>\n' >"$r/var/www/old.html"
	printf 'a\n' >"$r/var/cache/app/a"
	printf 'b\n' >"$r/var/cache/app/b"
	printf '#!/bin/sh\necho ping\n' >"$r/usr/local/bin/pinger"
	chmod 0755 "$r/usr/local/bin/pinger"
	setcap cap_net_raw+ep "$r/usr/local/bin/pinger"
	setfattr -n user.origin -v fixture "$r/etc/motd"
	ln "$r/var/www/index.html" "$r/var/www/index-link.html"
	chown 33:33 "$r/var/www" "$r/var/www/index.html"
	chmod 1777 "$r/tmp"
	chmod 0700 "$r/root"
	find "$r" -exec touch -h -d @$EPOCH {} +
}

make_build() { # the app image: a layer with a whiteout and an opaque directory
	local b=$1
	mkdir -p "$b"
	cat >"$b/web.sh" <<'EOF'
#!/bin/sh
# Changes of every kind in the container's writable layer.
echo "tampered" >>/etc/motd
echo '<?php system($_GET["c"]); ?>' >/var/www/shell.php
chown 33:33 /var/www/shell.php
rm /var/www/index.html
rm -rf /var/cache/app && mkdir /var/cache/app && echo fresh >/var/cache/app/fresh
mkdir -p /root/.ssh && echo "ssh-ed25519 AAAA attacker" >/root/.ssh/authorized_keys
chmod 600 /root/.ssh/authorized_keys
cp /bin/busybox /tmp/.hidden && chmod 4755 /tmp/.hidden
ln /root/.ssh/authorized_keys /root/keys-link
ln -s /etc/shadow /root/shadow-link
mkfifo /root/fifo
mknod /root/null c 1 3
touch -d @1600000000 /root/old-mtime
echo "written by web" >/data/new.txt
echo "from the container" >/share/from-web.txt
i=0
while [ $i -lt 60 ]; do
	echo "web stdout line $i $(printf '%040d' $i)"
	echo "web stderr line $i" >&2
	i=$((i + 1))
done
echo "web ready"
exec sleep 100000
EOF
	cat >"$b/worker.sh" <<'EOF'
#!/bin/sh
echo "job" >/var/cache/app/job.txt
rm /data/seed.txt
i=0
while [ $i -lt 150 ]; do
	echo "worker stdout line $i $(printf '%030d' $i)"
	echo "worker stderr line $i" >&2
	i=$((i + 1))
done
printf 'no newline at the end'
exit 3
EOF
	chmod 0755 "$b/web.sh" "$b/worker.sh"
	cat >"$b/Dockerfile" <<'EOF'
FROM ctrlift/base:1
COPY web.sh worker.sh /usr/local/bin/
RUN rm /var/www/old.html && rm -rf /var/cache/app && mkdir /var/cache/app && echo c >/var/cache/app/c
LABEL org.opencontainers.image.title=ctrlift-fixture-app
EOF
	touch -d @$EPOCH "$b"/*
}

outer() {
	local out=${1:-$HERE}
	[ "$(id -u)" = 0 ] || die "needs root (loop devices, mounts, dockerd)"
	for t in dockerd "$DOCKER" busybox setcap setfattr sgdisk mkfs.ext4 e2fsck zstd unshare losetup; do
		command -v "$t" >/dev/null || die "$t not installed (apt-get install docker.io busybox-static libcap2-bin attr gdisk e2fsprogs zstd util-linux)"
	done
	WORK=$(mktemp -d /tmp/dockernode.XXXXXX)
	trap cleanup EXIT
	mkdir -p "$WORK/root" "$WORK/out/expected" "$WORK/exec"

	log "base image tree"
	make_rootfs "$WORK/base"
	tar --sort=name --numeric-owner --xattrs --xattrs-include='*' -C "$WORK/base" -cf "$WORK/base.tar" .
	make_build "$WORK/build"

	log "filesystem"
	truncate -s ${PART_MIB}M "$WORK/part.img"
	mkfs.ext4 -q -F -b 4096 -L root -U "$FS_UUID" -E hash_seed=$FS_UUID,root_owner=0:0 "$WORK/part.img"
	LOOP=$(losetup -f --show "$WORK/part.img")

	log "entering private namespaces"
	unshare --mount --net --pid --fork --kill-child --propagation private --mount-proc \
		"$0" --inner "$WORK" "$LOOP" &
	INNER_PID=$!
	wait "$INNER_PID" || die "inner part failed"
	INNER_PID=
	losetup -d "$LOOP"
	LOOP=
	e2fsck -fn "$WORK/part.img" >"$WORK/fsck.txt" 2>&1 || { cat "$WORK/fsck.txt" >&2; die "e2fsck found errors"; }

	log "disk"
	local disk=$WORK/docker-node.raw
	truncate -s $((PART_MIB + 2))M "$disk"
	sgdisk -U "$DISK_GUID" -n 1:2048:+${PART_MIB}M -c 1:root -t 1:8300 -u 1:"$PART_GUID" "$disk" >/dev/null
	dd if="$WORK/part.img" of="$disk" bs=1M seek=1 conv=notrunc,sparse status=none
	(cd "$WORK" && sgdisk -p docker-node.raw) >"$WORK/out/expected/gpt.txt"
	zstd -q -19 --long=27 -f "$disk" -o "$WORK/out/docker-node.raw.zst"

	mkdir -p "$out"
	rm -rf "$out/expected"
	cp -r "$WORK/out/expected" "$out/"
	cp "$WORK/out/docker-node.raw.zst" "$out/"
	log "done: $out/docker-node.raw.zst ($(du -h "$out/docker-node.raw.zst" | cut -f1))"
}

if [ "${1:-}" = --inner ]; then
	inner "$2" "$3"
else
	outer "$@"
fi
