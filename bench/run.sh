#!/usr/bin/env bash
# Benchmark: container export from a GPT disk image, against the ways it is
# done without ctrlift, in one run so that the ratios hold on a noisy
# machine. Two containers:
#   many: 71 layers, about 30k entries, 250 MB of file data, one big file
#         and one 2 GiB sparse file (an image built by a long Dockerfile);
#   wide: 3 layers, about 100k files, 2 GB;
#   xfs:  the wide tree copied (cp -a, as root) onto mkfs.xfs defaults in a
#         GPT disk, as on an EKS node: ctrlift from XFS against ctrlift
#         from ext4 and loop + overlay mount + tar --sparse on XFS (not in
#         the default CASES; needs root and xfsprogs).
#
#   bench/run.sh [WORKDIR]        (default: $TMPDIR/ctrlift-bench; needs ~8 GB)
#   CASES=many RUNS=5 bench/run.sh
#   CASES=xfs RUNS=3 bench/run.sh    (XFS against ext4, as root)
#   FILES=20000 BYTES=400000000 CASES=wide bench/run.sh   (a smaller wide run)
#
# Needs: go, e2fsprogs (mkfs.ext4, debugfs), gdisk (sgdisk), GNU time
# (/usr/bin/time), GNU tar. As root it also times loop mount + overlay mount
# + tar --sparse --xattrs (mount and unmount included), and the same tar on
# an overlay mounted once and left standing (the kernel's page-cache path).
# Each run measures every tool in turn and prints its ratios; the table
# gives the best time, the peak RSS and the least CPU time (user + system,
# of the whole pipeline) over the runs: on a loaded machine the CPU time
# says more than the wall time. Images are built once
# and reused; delete WORKDIR to rebuild.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-${TMPDIR:-/tmp}/ctrlift-bench}
RUNS=${RUNS:-3}
CASES=${CASES:-many wide}
mkdir -p "$work"
work=$(cd "$work" && pwd)
for tool in mkfs.ext4 debugfs sgdisk /usr/bin/time tar; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (apt-get install e2fsprogs gdisk time tar)" >&2; exit 1; }
done

(cd "$repo" && go build -o "$work/ctrlift" ./cmd/ctrlift)
snap=var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots
start_sector=2048
root=0
if [ "$(id -u)" = 0 ] && grep -qw overlay /proc/filesystems; then root=1; fi

mnt=$work/mnt
cleanup() {
  for d in "$mnt/run/merged" "$mnt/run/fs" "$mnt/stand/merged" "$mnt/stand/fs"; do
    mountpoint -q "$d" 2>/dev/null && umount "$d"
  done
  for d in "$mnt/x/merged" "$mnt/x/fs" "$mnt/x/ext4"; do
    mountpoint -q "$d" 2>/dev/null && umount "$d"
  done
  for l in $(losetup -j "$work/disk-"* -O NAME -n 2>/dev/null); do losetup -d "$l" 2>/dev/null || true; done
  return 0
}
trap cleanup EXIT

# build NAME LAYERS FILES BYTES: the disk image of one container
build() {
  local name=$1 layers=$2 files=$3 bytes=$4
  disk=$work/disk-$name-$layers-$files-$bytes.raw
  state=$work/state-$name-$layers-$files-$bytes.img
  if [ ! -f "$disk" ]; then
    echo "bench: generating $name: $layers layers, $files files, $bytes bytes ..." >&2
    rm -rf "$work/src"
    (cd "$repo" && go run ./bench/gen -out "$work/src" -layers "$layers" -files "$files" -bytes "$bytes" >/dev/null)
    local entries size
    entries=$(find "$work/src" | wc -l)
    size=$(( ($(du -s -B1 "$work/src" | cut -f1) * 13 / 10 + entries * 8192 + 256 * 1048576) / 1048576 * 1048576 ))
    rm -f "$state"
    truncate -s "$size" "$state"
    mkfs.ext4 -q -F -L STATE -N $((entries * 12 / 10 + 10000)) -d "$work/src" "$state"
    truncate -s $((size + 2 * 1048576)) "$disk.tmp"
    sgdisk -n 1:$start_sector:+$((size / 512)) -c 1:STATE -t 1:8300 "$disk.tmp" >/dev/null
    dd if="$state" of="$disk.tmp" bs=1M seek=1 conv=notrunc,sparse status=none
    mv "$disk.tmp" "$disk"
    rm -rf "$work/src"
  fi
}

# timed NAME CMD...: runs CMD once under GNU time; sets T_NAME and M_NAME
# (seconds, peak RSS KiB) and keeps the best time and the largest RSS.
timed() {
  local name=$1 t m u s c
  shift
  /usr/bin/time -f '%e %M %U %S' -o "$work/time.out" "$@" >/dev/null 2>"$work/err.out" || { cat "$work/err.out" >&2; return 1; }
  read -r t m u s <"$work/time.out"
  awk "BEGIN{exit !($t < 0.01)}" && t=0.01
  c=$(awk -v u="$u" -v s="$s" 'BEGIN{print u+s}')
  eval "T_$name=$t"
  local b="B_$name" r="R_$name" cc="C_$name"
  if [ -z "${!b:-}" ] || awk "BEGIN{exit !($t < ${!b})}"; then eval "B_$name=$t"; fi
  if [ -z "${!cc:-}" ] || awk "BEGIN{exit !($c < ${!cc})}"; then eval "C_$name=$c"; fi
  if [ -z "${!r:-}" ] || [ "$m" -gt "${!r}" ]; then eval "R_$name=$m"; fi
}

row() { # label name bytes
  local b="B_$2" r="R_$2" cc="C_$2"
  [ -n "${!b:-}" ] || return 0
  awk -v n="$1" -v t="${!b}" -v m="${!r}" -v d="$3" -v c="$B_pipe" -v u="${!cc}" 'BEGIN{
    printf "%-44s %8.2f s %8.0f MB/s %8.1f MB %8.2fx %8.2f s\n", n, t, d/t/1e6, m/1024, t/c, u }'
}

bench_case() {
  local name=$1 layers=$2 files=$3 bytes=$4
  build "$name" "$layers" "$files" "$bytes"
  local offset=$((start_sector * 512)) size lowers="" rel="" l
  size=$(stat -c %s "$state")
  for l in $(seq "$layers" -1 1); do
    lowers="$lowers${lowers:+:}$snap/$l/fs"
    rel="$rel${rel:+:}$l/fs" # overlay lowerdirs relative to the snapshots dir (mount data is one page)
  done
  unset "${!B_@}" "${!R_@}" "${!C_@}"
  cat "$disk" >/dev/null # warm the page cache: every path reads from memory
  local tarbytes entries
  tarbytes=$("$work/ctrlift" export -q -i "$disk" --layer-dirs "$lowers" - | wc -c)
  entries=$("$work/ctrlift" export -q -i "$disk" --layer-dirs "$lowers" - | tar -tf - | wc -l)
  echo
  echo "== $name: $layers layers, $entries entries, $bytes bytes of file data, tar stream $tarbytes bytes; $RUNS runs; load: $(cut -d' ' -f1-3 /proc/loadavg)"

  if [ $root = 1 ]; then
    mkdir -p "$mnt/stand/fs" "$mnt/stand/merged" "$mnt/run/fs" "$mnt/run/merged"
    local sloop
    sloop=$(losetup -r -f --show -o "$offset" --sizelimit "$size" "$disk")
    mount -o ro,noload "$sloop" "$mnt/stand/fs"
    (cd "$mnt/stand/fs/$snap" && mount -t overlay -o "ro,lowerdir=$rel" overlay "$mnt/stand/merged")
    tar --sparse --xattrs -C "$mnt/stand/merged" -cf - . | cat >/dev/null # warm it
  fi
  local i
  for i in $(seq "$RUNS"); do
    timed pipe bash -c "'$work/ctrlift' export -q -i '$disk' --layer-dirs '$lowers' - | cat >/dev/null"
    timed null "$work/ctrlift" export -q -i "$disk" --layer-dirs "$lowers" /dev/null
    rm -f "$work/out.tar"
    timed file "$work/ctrlift" export -q -i "$disk" --layer-dirs "$lowers" "$work/out.tar"
    rm -f "$work/out.tar"
    timed zstd bash -c "'$work/ctrlift' export -q -i '$disk' --layer-dirs '$lowers' --compress zstd - | cat >/dev/null"
    local line="run $i: ctrlift pipe ${T_pipe}s, file ${T_file}s, zstd ${T_zstd}s"
    if [ $root = 1 ]; then
      timed mount bash -c "
        loop=\$(losetup -r -f --show -o '$offset' --sizelimit '$size' '$disk')
        mount -o ro,noload \$loop '$mnt/run/fs'
        (cd '$mnt/run/fs/$snap' && mount -t overlay -o 'ro,lowerdir=$rel' overlay '$mnt/run/merged')
        tar --sparse --xattrs -C '$mnt/run/merged' -cf - . | cat >/dev/null
        umount '$mnt/run/merged'; umount '$mnt/run/fs'; losetup -d \$loop"
      timed stand bash -c "tar --sparse --xattrs -C '$mnt/stand/merged' -cf - . | cat >/dev/null"
      line="$line; mount+tar ${T_mount}s, standing tar ${T_stand}s: ctrlift is $(awk -v a="$T_stand" -v c="$T_pipe" 'BEGIN{printf "%.2f", a/c}')x standing tar, $(awk -v a="$T_mount" -v c="$T_pipe" 'BEGIN{printf "%.2f", a/c}')x mount+tar"
    fi
    echo "$line"
  done
  if [ $root = 1 ]; then
    umount "$mnt/stand/merged"; umount "$mnt/stand/fs"; losetup -d "$sloop"
  fi
  local rd=$work/rdump
  rm -rf "$rd"
  mkdir -p "$rd"
  : >"$work/rdump.cmds"
  for l in $(seq "$layers"); do mkdir -p "$rd/$l"; echo "rdump /$snap/$l/fs $rd/$l" >>"$work/rdump.cmds"; done
  timed rdump debugfs -f "$work/rdump.cmds" "$state"
  rm -rf "$rd"
  local raw_bytes
  raw_bytes=$size
  timed raw dd if="$disk" of=/dev/null bs=1M skip=1 count=$((size / 1048576))

  echo
  printf "%-44s %10s %13s %11s %9s %10s\n" "best of $RUNS (MB/s of the tar stream)" "time" "throughput" "peak RSS" "/ctrlift" "CPU (u+s)"
  row "raw read of the partition (dd, its bytes)" raw "$raw_bytes"
  row "ctrlift export, tar to a pipe" pipe "$tarbytes"
  row "ctrlift export, tar to /dev/null" null "$tarbytes"
  row "ctrlift export, tar to a file" file "$tarbytes"
  row "ctrlift export --compress zstd, to a pipe" zstd "$tarbytes"
  row "loop+overlay mount, tar --sparse, umount" mount "$tarbytes"
  row "tar --sparse on a standing overlay mount" stand "$tarbytes"
  row "debugfs rdump of the $layers layers (1 run)" rdump "$tarbytes"
  [ $root = 1 ] || echo "(loop + overlay mount + tar: skipped, needs root and overlayfs)"
  awk -v b="$tarbytes" -v t="$B_zstd" -v d="$bytes" 'BEGIN{ printf "zstd export: %.0f MB/s of tar input (%.0f MB/s of file data)\n", b/t/1e6, d/t/1e6 }'
  if [ "$name" = wide ]; then
    local big bigsize
    big=$snap/1/fs/opt/blobs/big-0-0.bin
    bigsize=$("$work/ctrlift" fs stat -i "$disk" -o json "/$big" 2>/dev/null | sed -n 's/.*"size": \([0-9]*\).*/\1/p')
    unset B_big R_big C_big B_bigraw R_bigraw C_bigraw
    for i in $(seq "$RUNS"); do
      timed big "$work/ctrlift" fs cat -i "$disk" "/$big"
      timed bigraw dd if="$disk" of=/dev/null bs=1M skip=1 count=$((bigsize / 1048576))
    done
    awk -v s="$bigsize" -v r="$B_bigraw" -v c="$B_big" -v m="$R_big" 'BEGIN{
      printf "large file (%d MB): raw read %.0f MB/s, ctrlift fs cat %.0f MB/s (%.1f MB RSS): %.2fx of raw\n", s/1e6, s/r/1e6, s/c/1e6, m/1024, r/c }'
  fi
}

# xfs_case: the wide tree on XFS against the same tree on ext4. Each run
# times, in turn, ctrlift from XFS, ctrlift from ext4 and loop + overlay
# mount + tar --sparse --xattrs on XFS (mount and unmount included), and
# prints that run's ratios.
xfs_case() {
  local files=$1 bytes=$2
  if [ $root = 0 ] || ! grep -qw xfs /proc/filesystems || ! command -v mkfs.xfs >/dev/null; then
    echo "(xfs: skipped, needs root, mkfs.xfs, and XFS and overlayfs in the kernel)"
    return 0
  fi
  build wide 3 "$files" "$bytes"
  local edisk=$disk estate=$state offset=$((start_sector * 512)) size
  size=$(stat -c %s "$estate")
  local xdisk=$work/disk-xfs-3-$files-$bytes.raw
  local lowers="$snap/3/fs:$snap/2/fs:$snap/1/fs"
  mkdir -p "$mnt/x/ext4" "$mnt/x/fs" "$mnt/x/merged"
  if [ ! -f "$xdisk" ]; then
    echo "bench: copying the wide tree onto XFS ..." >&2
    local xstate=$work/state-xfs.img
    rm -f "$xstate"
    truncate -s "$size" "$xstate"
    mkfs.xfs -q -f -L STATE "$xstate"
    mount -o ro,noload,loop "$estate" "$mnt/x/ext4"
    mount -o loop "$xstate" "$mnt/x/fs"
    cp -a "$mnt/x/ext4/var" "$mnt/x/fs/"
    umount "$mnt/x/fs"; umount "$mnt/x/ext4"
    truncate -s $((size + 2 * 1048576)) "$xdisk.tmp"
    sgdisk -n 1:$start_sector:+$((size / 512)) -c 1:STATE -t 1:8300 "$xdisk.tmp" >/dev/null
    dd if="$xstate" of="$xdisk.tmp" bs=1M seek=1 conv=notrunc,sparse status=none
    rm -f "$xstate"
    mv "$xdisk.tmp" "$xdisk"
  fi
  unset "${!B_@}" "${!R_@}" "${!C_@}"
  cat "$edisk" "$xdisk" >/dev/null
  local tarbytes
  tarbytes=$("$work/ctrlift" export -q -i "$xdisk" --layer-dirs "$lowers" - | wc -c)
  echo
  echo "== xfs: the wide tree ($files files, $bytes bytes) on XFS and on ext4, tar stream $tarbytes bytes; $RUNS runs; load: $(cut -d' ' -f1-3 /proc/loadavg)"
  local i
  for i in $(seq "$RUNS"); do
    timed pipe bash -c "'$work/ctrlift' export -q -i '$xdisk' --layer-dirs '$lowers' - | cat >/dev/null"
    timed ext4 bash -c "'$work/ctrlift' export -q -i '$edisk' --layer-dirs '$lowers' - | cat >/dev/null"
    timed mount bash -c "
      loop=\$(losetup -r -f --show -o '$offset' --sizelimit '$size' '$xdisk')
      mount -t xfs -o ro,norecovery \$loop '$mnt/x/fs'
      (cd '$mnt/x/fs/$snap' && mount -t overlay -o 'ro,lowerdir=3/fs:2/fs:1/fs' overlay '$mnt/x/merged')
      tar --sparse --xattrs -C '$mnt/x/merged' -cf - . | cat >/dev/null
      umount '$mnt/x/merged'; umount '$mnt/x/fs'; losetup -d \$loop"
    echo "run $i: ctrlift from XFS ${T_pipe}s, from ext4 ${T_ext4}s, XFS mount+tar ${T_mount}s: ext4/XFS $(awk -v a="$T_ext4" -v c="$T_pipe" 'BEGIN{printf "%.2f", a/c}')x, mount+tar/XFS $(awk -v a="$T_mount" -v c="$T_pipe" 'BEGIN{printf "%.2f", a/c}')x"
  done
  echo
  printf "%-44s %10s %13s %11s %9s %10s\n" "best of $RUNS (MB/s of the tar stream)" "time" "throughput" "peak RSS" "/ctrlift" "CPU (u+s)"
  row "ctrlift export from XFS, tar to a pipe" pipe "$tarbytes"
  row "ctrlift export from ext4, tar to a pipe" ext4 "$tarbytes"
  row "XFS loop+overlay mount, tar --sparse, umount" mount "$tarbytes"
}

echo "bench: $(nproc) cores; /ctrlift: how many times longer than ctrlift export to a pipe the row takes"
for c in $CASES; do
  case $c in
  many) bench_case many "${MANY_LAYERS:-71}" "${MANY_FILES:-30000}" "${MANY_BYTES:-250000000}" ;;
  wide) bench_case wide 3 "${FILES:-100000}" "${BYTES:-2000000000}" ;;
  xfs) xfs_case "${FILES:-100000}" "${BYTES:-2000000000}" ;;
  *) echo "bench: unknown case $c (many, wide, xfs)" >&2; exit 2 ;;
  esac
done
