#!/usr/bin/env bash
# Benchmark: the evidence formats read in place. The example node's STATE
# partition on a 100 GB disk (sparse), acquired as E01 (ewfacquire,
# empty-block compression) and converted to compressed QCOW2 (qemu-img
# convert -c); then, in one run so that the ratios hold on a noisy machine:
#
#   - `ctrlift list containers` on raw, E01 and QCOW2: time and peak RSS
#     (goal: under 2 s), with XDG_CACHE_HOME and TMPDIR in empty
#     directories that must stay empty (nothing is written: no cache, no
#     temporary file);
#   - export of the largest container (tar to /dev/null) from each:
#     throughput against raw (goal: at least half of raw).
#
#   bench/evidence.sh [WORKDIR]   (default: $TMPDIR/ctrlift-bench-evidence)
#   SIZE=20G RUNS=10 bench/evidence.sh
#
# Needs: go, zstd, gdisk (sgdisk), ewf-tools (ewfacquire), qemu-utils
# (qemu-img), GNU time (/usr/bin/time). The images are built once and
# reused; delete WORKDIR to rebuild. Building takes a few minutes
# (ewfacquire reads and hashes all 100 GB); WORKDIR needs about 1 GB.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-${TMPDIR:-/tmp}/ctrlift-bench-evidence}
SIZE=${SIZE:-100G}
RUNS=${RUNS:-5}
mkdir -p "$work"
work=$(cd "$work" && pwd)
for tool in zstd sgdisk ewfacquire qemu-img /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (apt-get install zstd gdisk ewf-tools qemu-utils time)" >&2; exit 1; }
done

(cd "$repo" && go build -o "$work/ctrlift" ./cmd/ctrlift)
ctrlift=$work/ctrlift
example=$work/example.raw
disk=$work/disk-$SIZE.raw
e01=$work/disk-$SIZE.E01
qcow2=$work/disk-$SIZE.qcow2

if [ ! -f "$example" ]; then
  zstd -q -d -o "$example.tmp" "$repo/testdata/images/example/wordpress-node.raw.zst" # sparse
  mv "$example.tmp" "$example"
fi
# STATE's place on the example disk, from its GPT.
read -r state_first state_last < <(sgdisk -i 1 "$example" | awk '
  /^First sector:/ {f=$3} /^Last sector:/ {l=$3} END {print f, l}')
if [ ! -f "$disk" ]; then
  echo "bench: building a $SIZE disk holding the example's STATE partition ..." >&2
  rm -f "$disk.tmp"
  truncate -s "$SIZE" "$disk.tmp"
  sgdisk -n "1:$state_first:$state_last" -c 1:STATE -t 1:8300 "$disk.tmp" >/dev/null
  # The partition's bytes at the same offset, holes kept.
  dd if="$example" of="$disk.tmp" bs=1M iflag=skip_bytes,count_bytes oflag=seek_bytes conv=notrunc,sparse status=none \
    skip=$((state_first * 512)) seek=$((state_first * 512)) count=$(((state_last - state_first + 1) * 512))
  mv "$disk.tmp" "$disk"
fi
if [ ! -f "$e01" ]; then
  echo "bench: ewfacquire (empty-block compression) ..." >&2
  rm -f "$work"/disk-"$SIZE".E0*
  ewfacquire -u -q -c deflate:empty-block -t "${e01%.E01}" "$disk" >/dev/null
fi
if [ ! -f "$qcow2" ]; then
  echo "bench: qemu-img convert -c ..." >&2
  qemu-img convert -c -O qcow2 "$disk" "$qcow2.tmp"
  mv "$qcow2.tmp" "$qcow2"
fi

# The same containers on every form (and as on the example disk).
want=$("$ctrlift" list containers --all -i "$example" 2>/dev/null)
for img in "$disk" "$e01" "$qcow2"; do
  got=$("$ctrlift" list containers --all -i "$img" 2>/dev/null)
  if [ "$got" != "$want" ]; then
    echo "bench: $img lists other containers than the example disk:" >&2
    diff <(echo "$want") <(echo "$got") >&2 || true
    exit 1
  fi
done
# The largest container by its export.
largest="" largest_bytes=0
for id in $("$ctrlift" list containers --all -o json -i "$disk" 2>/dev/null | sed -n 's/.*"id": "\([0-9a-f]*\)".*/\1/p'); do
  n=$("$ctrlift" export -q -i "$disk" -- "$id" - 2>/dev/null | wc -c)
  if [ "$n" -gt "$largest_bytes" ]; then largest=$id largest_bytes=$n; fi
done

empty_cache=$work/empty-cache
empty_tmp=$work/empty-tmp
rm -rf "$empty_cache" "$empty_tmp"
mkdir -p "$empty_cache" "$empty_tmp"
# What WORKDIR holds (but the measurement's own files): nothing may appear
# or change next to the images.
listing() { find "$work" -mindepth 1 -maxdepth 1 ! -name time.out ! -name err.out -printf '%f %y %s %T@\n' | sort; }
before=$(listing)

# best wall time (s, to the millisecond) and peak RSS (KiB) over RUNS
# runs of a command after one untimed run (the page cache), with the cache
# and temporary directories empty; they must stay so.
measure() {
  local best="" rss=0 t m t0 t1 i
  for i in $(seq 0 "$RUNS"); do
    t0=$(date +%s%N)
    XDG_CACHE_HOME=$empty_cache TMPDIR=$empty_tmp /usr/bin/time -f '%M' -o "$work/time.out" "$@" >/dev/null 2>"$work/err.out" ||
      { cat "$work/err.out" >&2; return 1; }
    t1=$(date +%s%N)
    [ "$i" = 0 ] && continue
    t=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", (b-a)/1e9}')
    read -r m <"$work/time.out"
    if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then best=$t; fi
    [ "$m" -gt "$rss" ] && rss=$m
    if [ -n "$(find "$empty_cache" "$empty_tmp" -mindepth 1 -print -quit)" ]; then
      echo "bench: $* wrote into the cache or temporary directory:" >&2
      find "$empty_cache" "$empty_tmp" -mindepth 1 >&2
      return 1
    fi
  done
  echo "$best $rss"
}

echo "disk: $SIZE logical, example STATE partition at sector $state_first; largest container ${largest:0:12} ($((largest_bytes / 1024)) KiB of tar); best of $RUNS"
for img in "$disk" "$e01" "$qcow2"; do
  printf '  %-42s %10s on disk, %s\n' "$(basename "$img")" "$(du -h --apparent-size "$img" | cut -f1)" "$(du -h "$img" | cut -f1) allocated"
done
echo "  E01 segments: $(ls "$work"/disk-"$SIZE".E* | wc -l)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)"

read -r lr_t lr_m < <(measure "$ctrlift" list containers -i "$disk")
read -r le_t le_m < <(measure "$ctrlift" list containers -i "$e01")
read -r lq_t lq_m < <(measure "$ctrlift" list containers -i "$qcow2")
read -r xr_t xr_m < <(measure "$ctrlift" export -q -i "$disk" -- "$largest" /dev/null)
read -r xe_t xe_m < <(measure "$ctrlift" export -q -i "$e01" -- "$largest" /dev/null)
read -r xq_t xq_m < <(measure "$ctrlift" export -q -i "$qcow2" -- "$largest" /dev/null)
after=$(listing)
echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$before" != "$after" ]; then
  echo "bench: something appeared or changed in $work:" >&2
  diff <(echo "$before") <(echo "$after") >&2 || true
  exit 1
fi

row() { # name seconds rss-KiB bytes raw-seconds goal
  awk -v n="$1" -v t="$2" -v m="$3" -v b="$4" -v r="$5" -v g="$6" 'BEGIN{
    if (t < 0.001) t = 0.001; if (r < 0.001) r = 0.001
    tp = (b > 0) ? sprintf("%8.1f MB/s", b/t/1e6) : sprintf("%13s", "-")
    printf "%-34s %8.3f s %s %8.1f MB %9.2fx   %s\n", n, t, tp, m/1024, r/t, g }'
}
echo
printf "%-34s %10s %13s %11s %10s   %s\n" "what" "time" "throughput" "peak RSS" "speed/raw" "goal"
row "list containers: raw" "$lr_t" "$lr_m" 0 "$lr_t" "$(awk -v t="$lr_t" 'BEGIN{print (t < 2) ? "< 2 s: met" : "< 2 s: MISSED"}')"
row "list containers: E01" "$le_t" "$le_m" 0 "$lr_t" "$(awk -v t="$le_t" 'BEGIN{print (t < 2) ? "< 2 s: met" : "< 2 s: MISSED"}')"
row "list containers: QCOW2" "$lq_t" "$lq_m" 0 "$lr_t" "$(awk -v t="$lq_t" 'BEGIN{print (t < 2) ? "< 2 s: met" : "< 2 s: MISSED"}')"
row "export largest (tar): raw" "$xr_t" "$xr_m" "$largest_bytes" "$xr_t" ""
row "export largest (tar): E01" "$xe_t" "$xe_m" "$largest_bytes" "$xr_t" "$(awk -v t="$xe_t" -v r="$xr_t" 'BEGIN{print (r/t >= 0.5) ? ">= 0.5x raw: met" : ">= 0.5x raw: MISSED"}')"
row "export largest (tar): QCOW2" "$xq_t" "$xq_m" "$largest_bytes" "$xr_t" "$(awk -v t="$xq_t" -v r="$xr_t" 'BEGIN{print (r/t >= 0.5) ? ">= 0.5x raw: met" : ">= 0.5x raw: MISSED"}')"
echo
echo "(speed/raw: the raw disk's time over this row's; nothing was written to the cache, TMPDIR or next to the images)"
