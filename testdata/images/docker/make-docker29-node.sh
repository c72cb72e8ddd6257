#!/bin/bash
# Generate the Docker 29 node fixture (29/): a GPT disk whose ext4 partition
# is a node's / with Docker 29's containerd image store, as a fresh install
# of Docker 29 with the system containerd lays it out:
#   var/lib/docker      dockerd's data-root: containers/<id>/config.v2.json
#                       (Driver "overlayfs", the snapshotter), volumes, no
#                       image/ directory
#   var/lib/containerd  containerd's root: namespace "moby" holds Docker's
#                       images (content store + meta.db) and each container's
#                       snapshot (key = container id, parent <id>-init);
#                       namespace "k8s.io" one image and one container made
#                       with ctr, as a Kubernetes node's containerd would.
# The daemons are built from source through the Go module proxy (gen29/:
# github.com/moby/moby/v2 v2.0.0-beta.24 = Docker 29.8.0, and the
# containerd/v2 it requires). Images are built locally from busybox-static,
# no registry, no network. Containers: web (changes of every kind, still
# running when every process is killed -9), worker (exits 3), done (exits
# 0), created (never started).
#
# Beside the disk (29/expected/): what the docker client and ctr said
# (docker inspect, ps, image inspect/ls, docker diff), and the kernel's view
# of every container's root filesystem: the layer directories containerd
# listed for its snapshot (ctr snapshots mounts), mounted read-only as one
# overlay after the kill, written with ../example/manifest.py
# (expected/manifests/index.tsv + one .jsonl per container).
#
# Usage (as root, Debian 12):  ./make-docker29-node.sh [OUTDIR]   (default: ./29)
# Environment: KEEP_WORK=1 keeps the scratch directory (/tmp/docker29.*);
# BIN=DIR uses dockerd, containerd, containerd-shim-runc-v2 and ctr already
# built from gen29/ (else they are built into the scratch directory).
# Needs: go, runc, docker CLI (any version speaking API >= 1.44),
# busybox-static, libcap2-bin, attr, gdisk, e2fsprogs, zstd, util-linux,
# python3. No registry, no network.
set -Eeuo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
MANIFEST_PY=$HERE/../example/manifest.py
PART_MIB=160
FS_UUID=d0c4e700-0000-4000-8000-0000000029a1
DISK_GUID=D0C4E700-0000-4000-8000-000000002901
PART_GUID=D0C4E700-0000-4000-8000-000000002911
CGROUP_PARENT=ctrlift-docker29-fixture
EPOCH=1700000000
BUILD_TAGS="netgo osusergo exclude_graphdriver_btrfs exclude_graphdriver_zfs nri_no_wasm no_btrfs no_zfs no_devmapper"

log() { printf '%s make-docker29-node: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ===========================================================================
# Inner part: pid 1 of private pid, mount and network namespaces.
inner() {
	local work=$1 loop=$2 managed=$3
	local root=$work/root exp=$work/out/expected
	local dsock=$work/docker.sock csock=$work/containerd.sock
	# managed: dockerd starts containerd itself, root
	# <data-root>/containerd/daemon, socket <exec-root>/containerd/.
	[ "$managed" = 1 ] && csock=$work/exec/containerd/containerd.sock
	export PATH=$work/bin:$PATH
	# ctr's warnings (cgroup v1 deprecation) go to a log, not the outputs.
	ctr() { command ctr -a "$csock" "$@" 2>>"$work/ctr.log"; }
	ip link set lo up
	mount -t ext4 "$loop" "$root"
	mkdir -p "$root/var/lib/docker" "$root/srv/share"
	# The disk is the node's /: the paths the daemons write into their
	# records are /var/lib/docker/... and /var/lib/containerd/...
	mount -t tmpfs -o mode=0755 tmpfs /var/lib
	mkdir /var/lib/docker
	mount --bind "$root/var/lib/docker" /var/lib/docker
	if [ "$managed" != 1 ]; then
		mkdir -p "$root/var/lib/containerd" /var/lib/containerd
		mount --bind "$root/var/lib/containerd" /var/lib/containerd
	fi
	mount --bind "$root/srv" /srv
	printf 'shared before the container ran\n' >/srv/share/host.txt
	touch -d @$EPOCH /srv/share/host.txt /srv/share

	local cflag=() k8s=k8s-job
	if [ "$managed" = 1 ]; then
		k8s=
	else
		cflag=(--containerd "$csock")
		start_containerd "$work" "$csock"
	fi

	# Debian 12's runc 1.1 knows no time namespace, which dockerd 29 asks
	# for when the kernel has it: the feature flag turns that off.
	printf '{"features": {"time-namespaces": false}}\n' >"$work/daemon.json"
	log "starting dockerd"
	dockerd --config-file "$work/daemon.json" "${cflag[@]}" --data-root /var/lib/docker --exec-root "$work/exec" --pidfile "$work/docker.pid" \
		-H "unix://$dsock" --bridge=none --iptables=false --ip-masq=false --ip6tables=false \
		--cgroup-parent "$CGROUP_PARENT" --userland-proxy=false \
		>"$work/dockerd.log" 2>&1 &
	for _ in $(seq 150); do
		docker -H "unix://$dsock" version >/dev/null 2>&1 && break
		sleep 0.2
	done
	export DOCKER_HOST=unix://$dsock
	docker version >>"$exp/versions.txt" 2>&1 || die "dockerd did not start (see $work/dockerd.log)"
	ctr version >>"$exp/versions.txt" || die "no containerd at $csock"
	docker info --format '{{json .DriverStatus}} {{.Driver}}' >"$exp/driver.txt"
	grep -q 'io.containerd.snapshotter.v1' "$exp/driver.txt" || die "dockerd does not use the containerd image store: $(cat "$exp/driver.txt")"

	log "building images"
	docker import --change 'CMD ["/bin/sh"]' --change 'WORKDIR /' "$work/base.tar" ctrlift/base:1 >/dev/null
	DOCKER_BUILDKIT=0 docker build -q --network none -t ctrlift/app:2 "$work/build" >/dev/null 2>"$work/build.log" ||
		{ cat "$work/build.log" >&2; die "docker build failed"; }

	log "running containers"
	docker volume create webdata >/dev/null
	docker run -d --name web --network none -v webdata:/data -v /srv/share:/share \
		--label app=web ctrlift/app:2 /usr/local/bin/web.sh >/dev/null
	docker run -d --name worker --network none ctrlift/app:2 /usr/local/bin/worker.sh >/dev/null
	docker run --name done --network none -v webdata:/data:ro ctrlift/base:1 \
		sh -c 'rm /etc/motd; mkdir -p /opt/out; echo result >/opt/out/result.txt; echo done-out' >/dev/null 2>&1
	docker create --name created --network none ctrlift/app:2 sh -c 'echo never' >/dev/null
	[ "$(docker wait worker)" = 3 ] || die "worker did not exit 3"
	for _ in $(seq 100); do
		docker logs web 2>/dev/null | grep -q '^web ready$' && break
		sleep 0.2
	done
	docker logs web 2>/dev/null | grep -q '^web ready$' || die "web never got ready"

	if [ -n "$k8s" ]; then
		log "containerd's own namespace (k8s.io): an image imported and a container run with ctr"
		docker save ctrlift/base:1 >"$work/base-save.tar"
		ctr -n k8s.io images import --snapshotter overlayfs "$work/base-save.tar" >/dev/null
		ctr -n k8s.io run --snapshotter overlayfs --cgroup "$CGROUP_PARENT:k8s:job" \
			docker.io/ctrlift/base:1 "$k8s" sh -c 'echo from-k8s >/k8s.txt; rm /etc/motd' >/dev/null
	fi

	log "recording docker's and containerd's view"
	local ids
	ids=$(docker ps -aq --no-trunc)
	# shellcheck disable=SC2086
	docker inspect $ids >"$exp/inspect.json"
	docker ps -a --no-trunc --format '{{.ID}}\t{{.Names}}\t{{.Image}}\t{{.State}}\t{{.Status}}' | sort -k2 >"$exp/ps.tsv"
	# shellcheck disable=SC2046
	docker image inspect $(docker image ls -q --no-trunc) >"$exp/images.json"
	docker image ls --no-trunc --format '{{.Repository}}:{{.Tag}}\t{{.ID}}' | sort >"$exp/images.tsv"
	mkdir -p "$exp/diff" "$exp/manifests"
	for name in web worker done created; do
		docker diff "$name" | sort -k2 >"$exp/diff/$name.txt"
	done
	for ns in moby ${k8s:+k8s.io}; do
		ctr -n "$ns" images ls >"$exp/ctr-images-$ns.txt"
		ctr -n "$ns" containers ls >"$exp/ctr-containers-$ns.txt"
		ctr -n "$ns" snapshots --snapshotter overlayfs ls >"$exp/ctr-snapshots-$ns.txt"
	done
	# Each container's layers as containerd mounts them: upperdir, then the
	# lowerdirs. moby: the snapshot key is the container id.
	printf 'ns\tcontainer\tsnapshotter\tlayers(top..bottom)\tentries\tmanifest\n' >"$work/index.head"
	: >"$work/layers.tsv"
	local id key
	for id in $ids $k8s; do
		local ns=moby
		key=$id
		[ "$id" = "$k8s" ] && ns=k8s.io
		local m upper lower
		m=$(ctr -n "$ns" snapshots --snapshotter overlayfs mounts /mnt "$key")
		upper=$(printf '%s' "$m" | tr ',' '\n' | sed -n 's/^upperdir=//p')
		lower=$(printf '%s' "$m" | tr ',' '\n' | sed -n 's/^lowerdir=//p' | tr -d "' ")
		[ -n "$upper" ] && [ -n "$lower" ] || die "mounts of $ns/$key: $m"
		printf '%s\t%s\t%s\n' "$ns" "$id" "$upper:$lower" >>"$work/layers.tsv"
	done

	log "killing dockerd, containerd, the shims and the containers (kill -9)"
	kill -KILL -1 || true
	for _ in $(seq 50); do
		pgrep -f 'dockerd|containerd|sleep 100000' >/dev/null || break
		sleep 0.1
	done
	if pgrep -a -f 'dockerd|containerd|sleep 100000'; then die "processes left after kill -9"; fi
	# The containers' rootfs mounts the daemons left behind.
	awk '$2 ~ "^('"$work"'|/var/lib)/" && $3 == "overlay" {print $2}' /proc/self/mounts | sort -r | while read -r mp; do
		umount "$mp"
	done

	log "the kernel's view: each container's layers as one read-only overlay"
	mkdir -p "$work/merged"
	cp "$work/index.head" "$exp/manifests/index.tsv"
	local layers
	while IFS=$'\t' read -r ns id layers; do
		mount -t overlay overlay -o "ro,lowerdir=$layers" "$work/merged"
		python3 "$MANIFEST_PY" "$work/merged" "$exp/manifests/$ns-$id.jsonl"
		umount "$work/merged"
		printf '%s\t%s\toverlayfs\t%s\t%s\t%s\n' "$ns" "$id" "$layers" "$(wc -l <"$exp/manifests/$ns-$id.jsonl")" "$ns-$id.jsonl" >>"$exp/manifests/index.tsv"
	done <"$work/layers.tsv"
	umount -R /var/lib
	umount /srv
	umount "$root"
}

start_containerd() { # the system containerd, root /var/lib/containerd
	local work=$1 csock=$2
	cat >"$work/containerd.toml" <<EOF
version = 3
root = "/var/lib/containerd"
state = "$work/cstate"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.images", "io.containerd.cri.v1.runtime", "io.containerd.podsandbox.controller.v1.podsandbox"]
[grpc]
  address = "$csock"
[ttrpc]
  address = "$csock.ttrpc"
[debug]
  address = "$csock.debug"
EOF
	log "starting containerd"
	containerd --config "$work/containerd.toml" >"$work/containerd.log" 2>&1 &
	for _ in $(seq 100); do
		ctr version >/dev/null && break
		sleep 0.2
	done
	ctr version >/dev/null || die "containerd did not start (see $work/containerd.log)"
}

# ===========================================================================
# Outer part.
cleanup() {
	local rc=$?
	set +e # every step, whatever failed before
	[ -n "${INNER_PID:-}" ] && kill -KILL "$INNER_PID" 2>/dev/null
	wait 2>/dev/null || true
	mountpoint -q "$WORK/root" 2>/dev/null && umount "$WORK/root"
	[ -n "${LOOP:-}" ] && losetup -d "$LOOP" 2>/dev/null
	for d in /sys/fs/cgroup/*/"$CGROUP_PARENT" /sys/fs/cgroup/"$CGROUP_PARENT"; do
		[ -d "$d" ] || continue
		find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
	done
	if [ -n "${KEEP_WORK:-}" ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
	chmod 1777 /tmp
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
echo "web ready"
exec sleep 100000
EOF
	cat >"$b/worker.sh" <<'EOF'
#!/bin/sh
echo "job" >/var/cache/app/job.txt
rm /data/seed.txt
echo "worker done"
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

build_daemons() { # dockerd, containerd, its runc shim and ctr from gen29/
	local bin=$1
	log "building dockerd $(cd "$HERE/gen29" && go list -m -f '{{.Version}}' github.com/moby/moby/v2) and containerd $(cd "$HERE/gen29" && go list -m -f '{{.Version}}' github.com/containerd/containerd/v2)"
	(cd "$HERE/gen29" && CGO_ENABLED=0 go build -trimpath -tags "$BUILD_TAGS" -o "$bin/" \
		github.com/moby/moby/v2/cmd/dockerd \
		github.com/containerd/containerd/v2/cmd/containerd \
		github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 \
		github.com/containerd/containerd/v2/cmd/ctr)
}

outer() {
	local out=${1:-$HERE/29}
	[ "${MANAGED:-0}" = 1 ] && out=${1:-$HERE/29-managed}
	[ "$(id -u)" = 0 ] || die "needs root (loop devices, mounts, the daemons)"
	for t in go runc docker busybox setcap setfattr sgdisk mkfs.ext4 e2fsck zstd unshare losetup python3; do
		command -v "$t" >/dev/null || die "$t not installed (apt-get install golang runc docker.io busybox-static libcap2-bin attr gdisk e2fsprogs zstd util-linux python3)"
	done
	WORK=$(mktemp -d /tmp/docker29.XXXXXX)
	trap cleanup EXIT
	mkdir -p "$WORK/root" "$WORK/out/expected" "$WORK/exec" "$WORK/bin"
	if [ -n "${BIN:-}" ]; then
		cp "$BIN"/{dockerd,containerd,containerd-shim-runc-v2,ctr} "$WORK/bin/"
	else
		build_daemons "$WORK/bin"
	fi

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
		"$0" --inner "$WORK" "$LOOP" "${MANAGED:-0}" &
	INNER_PID=$!
	wait "$INNER_PID" || die "inner part failed"
	INNER_PID=
	losetup -d "$LOOP"
	LOOP=
	e2fsck -fn "$WORK/part.img" >"$WORK/fsck.txt" 2>&1 || { cat "$WORK/fsck.txt" >&2; die "e2fsck found errors"; }

	log "disk"
	local disk=$WORK/docker29-node.raw
	truncate -s $((PART_MIB + 2))M "$disk"
	sgdisk -U "$DISK_GUID" -n 1:2048:+${PART_MIB}M -c 1:root -t 1:8300 -u 1:"$PART_GUID" "$disk" >/dev/null
	dd if="$WORK/part.img" of="$disk" bs=1M seek=1 conv=notrunc,sparse status=none
	zstd -q -19 --long=27 -f "$disk" -o "$WORK/out/docker29-node.raw.zst"

	mkdir -p "$out"
	rm -rf "$out/expected"
	cp -r "$WORK/out/expected" "$out/"
	cp "$WORK/out/docker29-node.raw.zst" "$out/"
	log "done: $out/docker29-node.raw.zst ($(du -h "$out/docker29-node.raw.zst" | cut -f1))"
}

if [ "${1:-}" = --inner ]; then
	inner "$2" "$3" "$4"
else
	outer "$@"
fi
