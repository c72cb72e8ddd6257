#!/bin/sh
# Regenerates the ext2/ext4 fixtures in this directory with e2fsprogs.
# All the work is in make-ext4.py (see README.md); this only checks the tools.
# Usage: sudo ./make-ext4.sh [-o OUTDIR] [--no-compress] [NAME ...]
set -eu
for tool in python3 mke2fs debugfs e2fsck dumpe2fs zstd; do
	command -v "$tool" >/dev/null 2>&1 || { echo "make-ext4.sh: $tool not found (apt-get install e2fsprogs zstd python3)" >&2; exit 1; }
done
exec python3 "$(dirname "$0")/make-ext4.py" "$@"
