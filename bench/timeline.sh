#!/usr/bin/env bash
# Benchmark: the timeline of a many-entry container against its export, in
# one run so that the ratio holds on a noisy machine. The container is the
# one of bench/run.sh (3 layers, about 100k files and 2 GB by default; the
# image is shared with it), named by --layer-dirs.
#
#   bench/timeline.sh [WORKDIR]      (default: $TMPDIR/ctrlift-bench; needs ~6 GB)
#   FILES=20000 BYTES=400000000 bench/timeline.sh   (a smaller run)
#
# Goal (issue 18): the timeline in under 2x the time of the export, peak
# RSS under 200 MB. Rows past 100,000 are sorted in runs spilled to
# $TMPDIR, so the default size exercises the spill and merge.
#
# Needs: go, e2fsprogs (mkfs.ext4), gdisk (sgdisk), GNU time (/usr/bin/time).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-${TMPDIR:-/tmp}/ctrlift-bench}
FILES=${FILES:-100000}
BYTES=${BYTES:-2000000000}
RUNS=${RUNS:-3}
mkdir -p "$work"
work=$(cd "$work" && pwd)
for tool in mkfs.ext4 sgdisk /usr/bin/time; do
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
layers="$snap/3/fs:$snap/2/fs:$snap/1/fs"

# best wall time (s), peak RSS (KiB) and least CPU time (user + sys, s)
# over RUNS runs of a command
measure() {
  local best="" rss=0 cpu="" t m u s
  for _ in $(seq "$RUNS"); do
    /usr/bin/time -f '%e %M %U %S' -o "$work/time.out" "$@" >/dev/null 2>"$work/err.out" || { cat "$work/err.out" >&2; return 1; }
    read -r t m u s <"$work/time.out"
    if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then best=$t; fi
    if [ -z "$cpu" ] || awk "BEGIN{exit !($u + $s < $cpu)}"; then cpu=$(awk "BEGIN{print $u + $s}"); fi
    [ "$m" -gt "$rss" ] && rss=$m
  done
  echo "$best $rss $cpu"
}

echo "image: $disk; $FILES files, $BYTES bytes in 3 layers; best of $RUNS"
cat "$disk" >/dev/null # warm the page cache
entries=$("$work/ctrlift" timeline -q -i "$disk" --layer-dirs "$layers" -o bodyfile | wc -l)
rows=$("$work/ctrlift" timeline -q -i "$disk" --layer-dirs "$layers" -o jsonl | wc -l)
echo "merged view: $entries entries, $rows timeline rows (jsonl)"
echo

read -r ex_t ex_m ex_c < <(measure "$work/ctrlift" export -q -i "$disk" --layer-dirs "$layers" /dev/null)
printf "%-40s %8s %10s %12s %9s %11s\n" "what" "time" "peak RSS" "time/export" "CPU" "CPU/export"
row() { awk -v n="$1" -v t="$2" -v m="$3" -v c="$4" -v r="$ex_t" -v rc="$ex_c" 'BEGIN{ if (r < 0.001) r = 0.001; if (rc < 0.001) rc = 0.001
  printf "%-40s %7.2fs %8.1f MB %11.2fx %8.2fs %10.2fx\n", n, t, m/1024, t/r, c, c/rc }'; }
row "ctrlift export (tar to /dev/null)" "$ex_t" "$ex_m" "$ex_c"
fail=0
for args in "-o jsonl" "-o csv" "-o bodyfile" "-o jsonl --hash sha256"; do
  # shellcheck disable=SC2086
  read -r t m c < <(measure "$work/ctrlift" timeline -q -i "$disk" --layer-dirs "$layers" $args)
  row "ctrlift timeline $args" "$t" "$m" "$c"
  awk -v t="$t" -v r="$ex_t" -v m="$m" 'BEGIN{ exit !(t < 2 * (r < 0.001 ? 0.001 : r) && m < 200 * 1024) }' || fail=1
done
echo "(time: best wall time of $RUNS runs; CPU: user + sys; on a loaded machine compare the CPU column too)"
echo
if [ "$fail" = 0 ]; then
  echo "goal met: every timeline under 2x the export's time and 200 MB"
else
  echo "goal missed: a timeline took 2x the export's time or more, or 200 MB or more" >&2
  exit 1
fi
