#!/usr/bin/env bash
# Benchmark: find --sha256 across every container of a node against
# exporting each of those containers to /dev/null, in one run so that the
# ratio holds on a noisy machine. The node is the bundled example's STATE
# partition, grown, with bench/gen's three layers of files written (by
# debugfs, no root needed) into three of its image layers: the base layer
# every container has, the WordPress image's top layer and the MySQL
# image's. Four containers are listed; the base layer is in all four.
#
#   bench/find.sh [WORKDIR]       (default: $TMPDIR/ctrlift-findbench; needs ~2.5x BYTES)
#   FILES=20000 BYTES=400000000 bench/find.sh   (a smaller run)
#
# Needs: go, zstd, e2fsprogs (e2fsck, resize2fs, debugfs), GNU time
# (/usr/bin/time). The image is built once and reused; delete WORKDIR to
# rebuild.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-${TMPDIR:-/tmp}/ctrlift-findbench}
FILES=${FILES:-60000}
BYTES=${BYTES:-1500000000}
RUNS=${RUNS:-3}
mkdir -p "$work"
work=$(cd "$work" && pwd)
for tool in zstd e2fsck resize2fs debugfs /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (apt-get install zstd e2fsprogs time)" >&2; exit 1; }
done

(cd "$repo" && go build -o "$work/ctrlift" ./cmd/ctrlift)
ctrlift=$work/ctrlift
img=$work/state-$FILES-$BYTES.img
snap=var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots
if [ ! -f "$img" ]; then
  echo "bench: building the node: $FILES files, $BYTES bytes ..." >&2
  raw=$work/example.raw
  zstd -q -f -d -o "$raw" "$repo/testdata/images/example/wordpress-node.raw.zst"
  # The STATE partition (1) as a bare filesystem image, grown for the files.
  read -r start size < <("$ctrlift" partitions -q -i "$raw" -o jsonl |
    sed -n 's/.*"number":1,[^}]*"start":\([0-9]*\),"size":\([0-9]*\).*/\1 \2/p')
  dd if="$raw" of="$img.tmp" bs=1M skip=$((start / 1048576)) count=$((size / 1048576)) conv=sparse status=none
  rm -f "$raw"
  truncate -s $(( (BYTES * 13 / 10 + FILES * 8192 + 512 * 1048576) / 1048576 * 1048576 )) "$img.tmp"
  e2fsck -fy "$img.tmp" >/dev/null 2>&1 || true
  resize2fs "$img.tmp" >/dev/null 2>&1
  rm -rf "$work/src"
  (cd "$repo" && go run ./bench/gen -out "$work/src" -files "$FILES" -bytes "$BYTES" >/dev/null)
  # gen's layers 1, 2, 3 into snapshots 1 (base), 5 (wordpress), 6 (mysql),
  # under /bench; only directories and regular files.
  cmds=$work/debugfs.cmds
  : >"$cmds"
  for pair in 1:1 2:5 3:6; do
    from=$work/src/$snap/${pair%%:*}/fs to=/$snap/${pair##*:}/fs/bench
    (cd "$from" && find . -type d | sort | sed "s|^\.|mkdir $to|; s|/\$||") >>"$cmds"
    (cd "$from" && find . -type f | sort | sed "s|^\./\(.*\)|write $from/\1 $to/\1|") >>"$cmds"
  done
  debugfs -w -f "$cmds" "$img.tmp" >/dev/null 2>&1
  e2fsck -fn "$img.tmp" >/dev/null 2>&1 || { echo "bench: the filesystem does not check clean" >&2; exit 1; }
  rm -rf "$work/src" "$cmds"
  mv "$img.tmp" "$img"
fi

ids=$("$ctrlift" list containers -q -i "$img" --no-trunc | awk 'NR > 1 {print $2}')
web=$("$ctrlift" list containers -q -i "$img" --no-trunc | awk '$4 == "wordpress" {print $2}')
# A digest that is nowhere: every regular file of every container is hashed.
sum=0000000000000000000000000000000000000000000000000000000000000000
names=(
  "export of every container to /dev/null, one by one"
  "find --sha256 across every container"
  "find --sha256 --md5 across every container"
  "export of the wordpress container alone"
  "find --sha256 in the wordpress container alone"
)
cmds=(
  "for id in $(echo $ids); do '$ctrlift' export -q -i '$img' --volumes none \$id /dev/null; done"
  "'$ctrlift' find -q -i '$img' --sha256 $sum -o jsonl"
  "'$ctrlift' find -q -i '$img' --sha256 $sum --md5 ${sum:0:32} -o jsonl"
  "'$ctrlift' export -q -i '$img' --volumes none $web /dev/null"
  "'$ctrlift' find -q -i '$img' --sha256 $sum -o jsonl $web"
)
base=(0 0 0 3 3) # the row each is compared with

echo "image: $img ($(du -h "$img" | cut -f1) allocated); $FILES files, $BYTES bytes added in 3 layers; $(echo "$ids" | wc -w) containers; best of $RUNS"
cat "$img" >/dev/null # warm the page cache: every run reads from memory
data=$(for id in $ids; do "$ctrlift" export -i "$img" --volumes none "$id" /dev/null 2>&1 | sed -n 's/.*entries, \(.*\) of file data.*/\1/p'; done | paste -sd+ -)
echo "file data exported: $data"

# Best wall time (s) and peak RSS (KiB) of each command over RUNS rounds;
# each round runs every command once, so a busy machine slows all alike.
best=() rss=()
for _ in $(seq "$RUNS"); do
  for i in "${!cmds[@]}"; do
    /usr/bin/time -f '%e %M' -o "$work/time.out" bash -c "${cmds[$i]}" >/dev/null 2>"$work/err.out" || { cat "$work/err.out" >&2; exit 1; }
    read -r t m <"$work/time.out"
    if [ -z "${best[$i]:-}" ] || awk "BEGIN{exit !($t < ${best[$i]})}"; then best[$i]=$t; fi
    if [ "$m" -gt "${rss[$i]:-0}" ]; then rss[$i]=$m; fi
  done
done

echo
printf "%-52s %10s %11s %11s\n" "what" "time" "peak RSS" "time/export"
for i in "${!cmds[@]}"; do
  awk -v n="${names[$i]}" -v t="${best[$i]}" -v m="${rss[$i]}" -v r="${best[${base[$i]}]}" 'BEGIN{
    if (t < 0.001) t = 0.001; if (r < 0.001) r = 0.001
    printf "%-52s %8.2f s %8.1f MB %10.2fx\n", n, t, m/1024, t/r }'
done
echo "(time/export: against the export row above it; find reads each file once however many containers share its layer)"
echo "(load average: $(cut -d' ' -f1-3 /proc/loadavg); on $(nproc) cores)"
