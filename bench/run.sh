#!/usr/bin/env bash
# Benchmark: export of a 3-layer container (about 100k files, 2 GB) from a
# GPT disk image, against the ways it is done without ctrlift, in one run so
# that the ratios hold on a noisy machine.
#
#   bench/run.sh [WORKDIR]        (default: $TMPDIR/ctrlift-bench; needs ~6 GB)
#   FILES=20000 BYTES=400000000 bench/run.sh   (a smaller run)
#
# Needs: go, e2fsprogs (mkfs.ext4, debugfs), gdisk (sgdisk), GNU time
# (/usr/bin/time). As root it also times loop mount + overlay mount + GNU tar,
# and (with xfsprogs) export of the same tree from XFS against ext4 and
# against loop + overlay mount + tar --sparse on XFS.
# The image is built once and reused; delete WORKDIR to rebuild.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-${TMPDIR:-/tmp}/ctrlift-bench}
FILES=${FILES:-100000}
BYTES=${BYTES:-2000000000}
RUNS=${RUNS:-3}
mkdir -p "$work"
work=$(cd "$work" && pwd)
for tool in mkfs.ext4 debugfs sgdisk /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (apt-get install e2fsprogs gdisk time)" >&2; exit 1; }
done

(cd "$repo" && go build -o "$work/ctrlift" ./cmd/ctrlift)
disk=$work/disk-$FILES-$BYTES.raw
state=$work/state-$FILES-$BYTES.img
snap=var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots
start_sector=2048
if [ ! -f "$disk" ]; then
  echo "bench: generating $FILES files, $BYTES bytes ..." >&2
  rm -rf "$work/src"
  (cd "$repo" && go run ./bench/gen -out "$work/src" -files "$FILES" -bytes "$BYTES" >/dev/null)
  size=$(( (BYTES * 13 / 10 + FILES * 8192 + 256 * 1024 * 1024) / 1048576 * 1048576 ))
  rm -f "$state"
  truncate -s "$size" "$state"
  mkfs.ext4 -q -F -L STATE -N $((FILES * 12 / 10 + 10000)) -d "$work/src" "$state"
  truncate -s $((size + 2 * 1048576)) "$disk.tmp"
  sgdisk -n 1:$start_sector:+$((size / 512)) -c 1:STATE -t 1:8300 "$disk.tmp" >/dev/null
  dd if="$state" of="$disk.tmp" bs=1M seek=1 conv=notrunc,sparse status=none
  mv "$disk.tmp" "$disk"
  rm -rf "$work/src"
fi
offset=$((start_sector * 512))
size=$(stat -c %s "$state")
layers="$snap/3/fs:$snap/2/fs:$snap/1/fs"
big=$snap/1/fs/opt/blobs/big-0-0.bin
bigsize=$("$work/ctrlift" fs stat -i "$disk" -o json "/$big" 2>/dev/null | sed -n 's/.*"size": \([0-9]*\).*/\1/p')

# best wall time (s) and peak RSS (KiB) over RUNS runs of a command
measure() {
  local best="" rss=0 t m
  for _ in $(seq "$RUNS"); do
    /usr/bin/time -f '%e %M' -o "$work/time.out" "$@" >/dev/null 2>"$work/err.out" || { cat "$work/err.out" >&2; return 1; }
    read -r t m <"$work/time.out"
    if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then best=$t; fi
    [ "$m" -gt "$rss" ] && rss=$m
  done
  echo "$best $rss"
}
row() { # name seconds rss-KiB bytes ctrlift-seconds
  awk -v n="$1" -v t="$2" -v m="$3" -v b="$4" -v r="$5" 'BEGIN{
    if (t < 0.001) t = 0.001
    printf "%-40s %8.2f s %8.0f MB/s %8.1f MB %10.2fx\n", n, t, b/t/1e6, m/1024, t/r }'
}

echo "image: $disk ($(du -h "$disk" | cut -f1) allocated); $FILES files, $BYTES bytes in 3 layers; best of $RUNS"
cat "$disk" >/dev/null   # warm the page cache: every path reads from memory

read -r raw_t raw_m < <(measure dd if="$disk" of=/dev/null bs=1M skip=1 count=$((size / 1048576)))
read -r ex_t ex_m < <(measure "$work/ctrlift" export -q -i "$disk" --layer-dirs "$layers" /dev/null)
read -r zs_t zs_m < <(measure "$work/ctrlift" export -q -i "$disk" --layer-dirs "$layers" /dev/null --compress zstd)
read -r bg_t bg_m < <(measure "$work/ctrlift" fs cat -i "$disk" "/$big")
read -r bgraw_t _ < <(measure dd if="$disk" of=/dev/null bs=1M skip=1 count=$((bigsize / 1048576)))
rd=$work/rdump
rdump() { rm -rf "$rd"; mkdir -p "$rd/1" "$rd/2" "$rd/3"; for l in 1 2 3; do debugfs -R "rdump /$snap/$l/fs $rd/$l" "$state" >/dev/null 2>&1; done; }
read -r dbg_t dbg_m < <(RUNS=1 measure bash -c "$(declare -f rdump); rd=$rd snap=$snap state=$state rdump")
rm -rf "$rd"
data=$(awk -v b="$BYTES" 'BEGIN{print b}')

echo
printf "%-40s %10s %13s %11s %11s\n" "what" "time" "throughput" "peak RSS" "time/ctrlift"
row "raw read of the partition (dd)" "$raw_t" "$raw_m" "$size" "$ex_t"
row "ctrlift export (tar to /dev/null)" "$ex_t" "$ex_m" "$data" "$ex_t"
row "ctrlift export --compress zstd" "$zs_t" "$zs_m" "$data" "$ex_t"
row "debugfs rdump of the 3 layers" "$dbg_t" "$dbg_m" "$data" "$ex_t"
if [ "$(id -u)" = 0 ] && grep -qw overlay /proc/filesystems; then
  mnt=$work/mnt
  mountpath() {
    mkdir -p "$mnt/fs" "$mnt/merged"
    loop=$(losetup -r -f --show -o "$offset" --sizelimit "$size" "$disk")
    mount -o ro,noload "$loop" "$mnt/fs"
    mount -t overlay -o ro,lowerdir="$mnt/fs/$snap/3/fs:$mnt/fs/$snap/2/fs:$mnt/fs/$snap/1/fs" overlay "$mnt/merged"
    tar -C "$mnt/merged" -cf - . | cat >/dev/null
    umount "$mnt/merged"; umount "$mnt/fs"; losetup -d "$loop"
  }
  echo 3 >/proc/sys/vm/drop_caches; cat "$disk" >/dev/null
  read -r mt_t mt_m < <(measure bash -c "$(declare -f mountpath); mnt=$mnt snap=$snap disk=$disk offset=$offset size=$size mountpath")
  row "loop + overlay mount + GNU tar (root)" "$mt_t" "$mt_m" "$data" "$ex_t"
else
  echo "(loop + overlay mount + tar: skipped, needs root and overlayfs)"
fi

# XFS: the same tree copied (cp -a, as root) from the ext4 STATE onto
# mkfs.xfs defaults in a GPT disk, as on an EKS node. Each run times, in
# turn, ctrlift from XFS, ctrlift from ext4 and loop + overlay mount + GNU
# tar --sparse on XFS (mount and unmount included), and prints that run's
# ratios, so a noisy machine shows as spread rather than as a skewed best.
if [ "$(id -u)" = 0 ] && grep -qw xfs /proc/filesystems && grep -qw overlay /proc/filesystems && command -v mkfs.xfs >/dev/null; then
  xdisk=$work/xfs-disk-$FILES-$BYTES.raw
  xmnt=$work/xmnt
  mkdir -p "$xmnt/ext4" "$xmnt/xfs" "$xmnt/merged"
  if [ ! -f "$xdisk" ]; then
    echo "bench: copying the tree onto XFS ..." >&2
    xstate=$work/xfs-state.img
    rm -f "$xstate"
    truncate -s "$size" "$xstate"
    mkfs.xfs -q -f -L STATE "$xstate"
    mount -o ro,noload,loop "$state" "$xmnt/ext4"
    mount -o loop "$xstate" "$xmnt/xfs"
    cp -a "$xmnt/ext4/var" "$xmnt/xfs/"
    umount "$xmnt/xfs"; umount "$xmnt/ext4"
    truncate -s $((size + 2 * 1048576)) "$xdisk.tmp"
    sgdisk -n 1:$start_sector:+$((size / 512)) -c 1:STATE -t 1:8300 "$xdisk.tmp" >/dev/null
    dd if="$xstate" of="$xdisk.tmp" bs=1M seek=1 conv=notrunc,sparse status=none
    rm -f "$xstate"
    mv "$xdisk.tmp" "$xdisk"
  fi
  cat "$xdisk" >/dev/null
  xmountpath() {
    loop=$(losetup -r -f --show -o "$offset" --sizelimit "$size" "$xdisk")
    mount -t xfs -o ro,norecovery "$loop" "$xmnt/xfs"
    mount -t overlay -o ro,lowerdir="$xmnt/xfs/$snap/3/fs:$xmnt/xfs/$snap/2/fs:$xmnt/xfs/$snap/1/fs" overlay "$xmnt/merged"
    tar --sparse -C "$xmnt/merged" -cf - . | cat >/dev/null
    umount "$xmnt/merged"; umount "$xmnt/xfs"; losetup -d "$loop"
  }
  once() { # prints "seconds rss-KiB" of one run
    /usr/bin/time -f '%e %M' -o "$work/time.out" "$@" >/dev/null 2>"$work/err.out" || { cat "$work/err.out" >&2; return 1; }
    cat "$work/time.out"
  }
  echo
  echo "XFS (mkfs.xfs defaults, GPT) against ext4, same tree; per run:"
  printf "%-5s %10s %10s %12s %14s %16s\n" "run" "xfs (s)" "ext4 (s)" "mount (s)" "ext4/xfs" "mount/xfs"
  xbest="" ebest="" mbest="" xrss=0 erss=0
  for i in $(seq "$RUNS"); do
    read -r xt xm < <(once "$work/ctrlift" export -q -i "$xdisk" --layer-dirs "$layers" /dev/null)
    read -r et em < <(once "$work/ctrlift" export -q -i "$disk" --layer-dirs "$layers" /dev/null)
    read -r mt _ < <(once bash -c "$(declare -f xmountpath); xmnt=$xmnt snap=$snap xdisk=$xdisk offset=$offset size=$size xmountpath")
    awk -v i="$i" -v x="$xt" -v e="$et" -v m="$mt" 'BEGIN{ if (x < 0.001) x = 0.001
      printf "%-5s %10.2f %10.2f %12.2f %13.2fx %15.2fx\n", i, x, e, m, e/x, m/x }'
    [ "$xm" -gt "$xrss" ] && xrss=$xm
    [ "$em" -gt "$erss" ] && erss=$em
  done
  awk -v x="$xrss" -v e="$erss" 'BEGIN{ printf "peak RSS: ctrlift from XFS %.1f MB, from ext4 %.1f MB\n", x/1024, e/1024 }'
else
  echo "(XFS: skipped, needs root, mkfs.xfs, and XFS and overlayfs in the kernel)"
fi
echo
awk -v s="$bigsize" -v r="$bgraw_t" -v c="$bg_t" -v m="$bg_m" 'BEGIN{
  if (r < 0.001) r = 0.001; if (c < 0.001) c = 0.001
  printf "large file (%d MB): raw read %.0f MB/s, ctrlift fs cat %.0f MB/s (%.1f MB RSS): %.2fx of raw\n", s/1e6, s/r/1e6, s/c/1e6, m/1024, r/c }'
awk -v b="$BYTES" -v t="$zs_t" 'BEGIN{ printf "zstd export: %.0f MB/s of input\n", b/t/1e6 }'
echo "(time/ctrlift: how many times longer than ctrlift export the row takes)"
