#!/usr/bin/env bash
# Regenerates small.img.zst: a tiny ext4 image (1 KiB blocks, inline data,
# xattrs, symlinks, a multi-block directory, a fragmented file) used as the
# seed of the ext4 fuzz targets and by the corrupt-input tests.
# Needs e2fsprogs and zstd; no root.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
src=$tmp/src
mkdir -p "$src/dir" "$src/many"
printf 'hello\n' >"$src/small.txt"
head -c 70000 /dev/zero | tr '\0' 'a' >"$src/dir/big.txt"
ln -s small.txt "$src/link"
ln -s "$(printf 'x%.0s' $(seq 1 100))" "$src/longlink"
for i in $(seq 1 120); do printf '%d\n' "$i" >"$src/many/file-$i"; done
mkfifo "$src/fifo"
find "$src" -exec touch -h -d @1700000000 {} +
export E2FSPROGS_FAKE_TIME=1700000000
mkfs.ext4 -q -F -b 1024 -I 256 -O inline_data,^has_journal -U 11111111-2222-3333-4444-555555555555 \
  -E hash_seed=66666666-7777-8888-9999-000000000000 -L small -N 256 -d "$src" "$tmp/small.img" 1024
debugfs -w -R 'ea_set /small.txt user.note hello' "$tmp/small.img" >/dev/null 2>&1
debugfs -w -R 'ea_set /dir/big.txt security.capability 0123456789abcdef0123' "$tmp/small.img" >/dev/null 2>&1
debugfs -w -R 'mknod null c 1 3' "$tmp/small.img" >/dev/null 2>&1
zstd -q -19 -f "$tmp/small.img" -o small.img.zst

# tiny.img: the smallest useful image (128 KiB), the whole-image fuzz seed.
tsrc=$tmp/tiny
mkdir -p "$tsrc/d"
printf 'hi\n' >"$tsrc/a"
head -c 3000 /dev/zero | tr '\0' 'b' >"$tsrc/d/b"
ln -s a "$tsrc/l"
find "$tsrc" -exec touch -h -d @1700000000 {} +
mkfs.ext4 -q -F -b 1024 -I 256 -N 16 -O inline_data,^has_journal,^resize_inode -m 0 \
  -U 11111111-2222-3333-4444-555555555556 -E hash_seed=66666666-7777-8888-9999-000000000000 \
  -d "$tsrc" "$tmp/tiny.img" 128
debugfs -w -R 'ea_set /a user.k v' "$tmp/tiny.img" >/dev/null 2>&1
zstd -q -19 -f "$tmp/tiny.img" -o tiny.img.zst
