#!/bin/sh
# Regenerates the XFS fixtures in this directory with xfsprogs and the kernel.
# All the work is in make-xfs.py (see README.md); this only checks the tools.
# Usage: sudo ./make-xfs.sh [-o OUTDIR] [--no-compress] [NAME ...]
# The fuzz seed: sudo ./make-xfs.sh -o ../../../image/xfs/testdata xfs-seed
set -eu
for tool in python3 mkfs.xfs xfs_db xfs_io xfs_repair mount umount zstd; do
	command -v "$tool" >/dev/null 2>&1 || { echo "make-xfs.sh: $tool not found (apt-get install xfsprogs zstd python3)" >&2; exit 1; }
done
exec python3 "$(dirname "$0")/make-xfs.py" "$@"
