#!/usr/bin/env bash
# Regenerates small.E01, the committed fixture read by the tests when
# ewfacquire is not installed (apt-get install ewf-tools). A 65.5 KiB raw
# (random, zeros, text, random, 0xff; the last chunk partial) acquired as
# one EnCase 6 segment of 8 KiB chunks, fast compression (the random chunks
# are stored, the others deflated), MD5 and SHA-1, and UTF-8 case metadata
# that the header section cannot hold but header2 can.
#
# The acquisition date changes with every run: update the constants of
# TestCommittedFixture (go test ./image/ewf -run TestCommittedFixture -v
# prints what it reads).
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 - "$tmp/small.raw" <<'PY'
import random, sys
r = random.Random(7)
rand = lambda n: bytes(r.getrandbits(8) for _ in range(n))
b = rand(16384) + bytes(16384) + (b"ctrlift ewf fixture\n" * 820)[:16384] + rand(8192) + b"\xff" * (8192 + 1536)
open(sys.argv[1], "wb").write(b)
PY
LANG=C.UTF-8 ewfacquire -u -q -t "$tmp/small" -b 16 -c deflate:fast -d sha1 \
  -C "CASE-2024-001" -D "Fixture disk für Tests" -e "Ada Examiner" -E "EV-001" \
  -N "notes: ünïcode ✓" -m removable -M logical "$tmp/small.raw" >/dev/null
cp "$tmp/small.E01" small.E01
LANG=C.UTF-8 ewfinfo small.E01
