#!/usr/bin/env bash
# Builds the small disk images used by the tests of package image, with real
# partitioning and mkfs tools, no root, no loop devices, no mounts. Each
# filesystem is made in its own file and copied into the disk with dd.
#
#   testdata/images/disk/make-disks.sh            # from the repository root
#
# Needs: sgdisk (gdisk), sfdisk and fdisk (fdisk), mkfs.ext2/3/4 (e2fsprogs),
# mkfs.vfat (dosfstools), mkswap (util-linux), mkfs.xfs (xfsprogs),
# mkfs.btrfs (btrfs-progs), mksquashfs (squashfs-tools), zstd, python3.
#
# Writes testdata/images/disk/*.raw.zst (committed), the tools' own listings
# of them (*.sgdisk.txt, *.fdisk.txt, *.sfdisk.txt) that the tests compare
# against, and the fuzz seed corpus image/testdata/fuzz/FuzzDetect/.
# Raw images are built in testdata/images/build/ (git-ignored).
#
# All GUIDs, labels and serials are fixed here; the tests expect exactly
# these values.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
build="$root/testdata/images/build/disk"
seeds="$root/image/testdata/fuzz/FuzzDetect"
rm -rf "$build"
rm -f "$here"/*.blkid.txt
mkdir -p "$build" "$seeds"
cd "$build"

export E2FSPROGS_FAKE_TIME=1700000000 # reproducible ext superblocks
# Allow XFS below its 300 MiB production minimum (the switch fstests use).
export TEST_DIR=1 TEST_DEV=1 QA_CHECK_FS=1

# mkext TYPE FILE SIZE LABEL UUID [extra mke2fs args]
mkext() {
	local typ=$1 file=$2 size=$3 label=$4 uuid=$5
	shift 5
	rm -f "$file"
	truncate -s "$size" "$file"
	mke2fs -q -F -t "$typ" -L "$label" -U "$uuid" -E "hash_seed=$uuid" "$@" "$file"
}

# put DISK FILE OFFSET_BYTES: copy a filesystem image into a disk, sparsely
put() {
	if (($3 % 4096)); then
		echo "put: offset $3 is not a multiple of 4096" >&2
		exit 1
	fi
	dd if="$2" of="$1" bs=4096 seek=$(($3 / 4096)) conv=notrunc,sparse status=none
}

finish() { # finish NAME: compress
	zstd -q -19 -f "$1.raw" -o "$here/$1.raw.zst"
}

# blk NAME NUMBER SECTOR_SIZE START_SECTOR SECTORS: record what blkid finds in
# a partition (NAME.blkid.txt: "NUMBER TYPE=... LABEL=... UUID=..."), an
# independent check of the tests' filesystem detection.
blk() {
	local out
	out=$(blkid -p -O $(($3 * $4)) -S $(($3 * $5)) -o export -s TYPE -s LABEL -s UUID "$1.raw" | grep -v '^DEVNAME=' | sort | tr '\n' ' ' || true)
	echo "$2 ${out% }" >>"$here/$1.blkid.txt"
}

# ---------------------------------------------------------------- gpt512
# 512-byte sectors, sgdisk. STATE is not the largest ext4 (ROOT-A is), so
# Select("") must choose by name. Entry 7 is left empty.
img=gpt512.raw
rm -f $img
truncate -s 72M $img
sgdisk -o -U 5A5A0001-0000-4000-8000-000000000512 \
	-n 1:2048:34815 -t 1:8300 -c 1:STATE -u 1:5A5A0001-0000-4000-8000-000000000001 \
	-n 2:34816:51199 -t 2:EF00 -c 2:EFI-SYSTEM -u 2:5A5A0001-0000-4000-8000-000000000002 \
	-n 3:51200:75775 -t 3:8300 -c 3:DATA -u 3:5A5A0001-0000-4000-8000-000000000003 \
	-n 4:75776:83967 -t 4:8300 -c 4:OLD -u 4:5A5A0001-0000-4000-8000-000000000004 \
	-n 5:83968:86015 -t 5:7F00 -c 5:KERN-A -u 5:5A5A0001-0000-4000-8000-000000000005 \
	-n 6:86016:90111 -t 6:8200 -c 6:SWAP -u 6:5A5A0001-0000-4000-8000-000000000006 \
	-n 8:90112:131071 -t 8:7F01 -c 8:ROOT-A -u 8:5A5A0001-0000-4000-8000-000000000008 \
	-n 9:131072:131072 -t 9:7F02 -c 9:reserved -u 9:5A5A0001-0000-4000-8000-000000000009 \
	$img >/dev/null
mkext ext4 p1 16M state-fs 5a5a0001-0000-4000-8000-0000000000f1
rm -f p2 && mkfs.vfat --invariant -F 16 -s 1 -n EFI -i 1234ABCD -C p2 8192 >/dev/null
mkext ext3 p3 12M datavol 5a5a0001-0000-4000-8000-0000000000f3
mkext ext2 p4 4M legacy 5a5a0001-0000-4000-8000-0000000000f4
rm -f p6 && truncate -s 2M p6 && mkswap -q -L swappy -U 5a5a0001-0000-4000-8000-0000000000f6 p6 2>/dev/null
mkext ext4 p8 20M ROOT-A 5a5a0001-0000-4000-8000-0000000000f8
put $img p1 $((2048 * 512))
put $img p2 $((34816 * 512))
put $img p3 $((51200 * 512))
put $img p4 $((75776 * 512))
put $img p6 $((86016 * 512))
put $img p8 $((90112 * 512))
sgdisk -p $img >"$here/gpt512.sgdisk.txt"
for p in "1 2048 32768" "2 34816 16384" "3 51200 24576" "4 75776 8192" "5 83968 2048" "6 86016 4096" "8 90112 40960" "9 131072 1"; do
	blk gpt512 ${p%% *} 512 $(echo $p | cut -d' ' -f2-)
done
finish gpt512

# ---------------------------------------------------------------- gpt4k
# 4096-byte logical sectors. sgdisk always assumes 512 on a file; fdisk
# takes the sector size with -b. The filesystem labelled STATE is in a
# partition named "data", and a larger ext4 follows it.
img=gpt4k.raw
rm -f $img
truncate -s 48M $img
fdisk -b 4096 $img >/dev/null 2>&1 <<'EOF'
g
n
1
256
4351
n
2
4352
6399
t
2
1
n
3
6400
11519
x
i
5A5A0002-0000-4000-8000-000000004096
n
1
data
n
2
ESP
n
3
big
u
1
5A5A0002-0000-4000-8000-000000000001
u
2
5A5A0002-0000-4000-8000-000000000002
u
3
5A5A0002-0000-4000-8000-000000000003
r
w
EOF
mkext ext4 q1 16M STATE 5a5a0002-0000-4000-8000-0000000000f1 -b 4096
rm -f q2 && mkfs.vfat --invariant -S 4096 -n ESP4K -i 4096ABCD -C q2 8192 >/dev/null
mkext ext4 q3 20M bigger 5a5a0002-0000-4000-8000-0000000000f3 -b 4096
put $img q1 $((256 * 4096))
put $img q2 $((4352 * 4096))
put $img q3 $((6400 * 4096))
fdisk -b 4096 -l -o Device,Start,End,Sectors,Type-UUID,Name,UUID $img >"$here/gpt4k.fdisk.txt"
blk gpt4k 1 4096 256 4096
blk gpt4k 2 4096 4352 2048
blk gpt4k 3 4096 6400 5120
finish gpt4k

# ---------------------------------------------------------------- gpt-badprimary
# A 512-byte-sector GPT whose primary partition entry array is overwritten
# (its CRC no longer matches); the backup GPT at the end is intact.
img=gpt-badprimary.raw
rm -f $img
truncate -s 16M $img
sgdisk -o -U 5A5A0003-0000-4000-8000-000000000000 \
	-n 1:2048:18431 -t 1:8300 -c 1:STATE -u 1:5A5A0003-0000-4000-8000-000000000001 \
	-n 2:18432:26623 -t 2:8300 -c 2:DATA -u 2:5A5A0003-0000-4000-8000-000000000002 \
	$img >/dev/null
sgdisk -p $img >"$here/gpt-badprimary.sgdisk.txt"
mkext ext4 b1 8M STATE 5a5a0003-0000-4000-8000-0000000000f1
put $img b1 $((2048 * 512))
blk gpt-badprimary 1 512 2048 16384
blk gpt-badprimary 2 512 18432 8192
printf 'overwritten by make-disks.sh: primary GPT entries damaged' |
	dd of=$img bs=1 seek=$((2 * 512 + 56)) conv=notrunc status=none
finish gpt-badprimary

# ---------------------------------------------------------------- mbr
# DOS label with a primary ext4 (bootable), a FAT16, and an extended
# partition holding two logical partitions (5: ext2, 6: swap).
img=mbr.raw
rm -f $img
truncate -s 48M $img
sfdisk -q --no-reread --no-tell-kernel $img <<'EOF'
label: dos
label-id: 0x5eed1234
unit: sectors

start=2048, size=16384, type=83, bootable
start=18432, size=8192, type=e
start=26624, size=71680, type=5
start=28672, size=8192, type=83
start=38912, size=4096, type=82
EOF
mkext ext4 m1 8M mbrroot 5a5a0004-0000-4000-8000-0000000000f1
rm -f m2 && mkfs.vfat --invariant -F 16 -s 1 -n MBRFAT -i 5EED0002 -C m2 4096 >/dev/null
mkext ext2 m5 4M logical5 5a5a0004-0000-4000-8000-0000000000f5
rm -f m6 && truncate -s 2M m6 && mkswap -q -L swap6 -U 5a5a0004-0000-4000-8000-0000000000f6 m6 2>/dev/null
put $img m1 $((2048 * 512))
put $img m2 $((18432 * 512))
put $img m5 $((28672 * 512))
put $img m6 $((38912 * 512))
sfdisk -d $img >"$here/mbr.sfdisk.txt"
blk mbr 1 512 2048 16384
blk mbr 2 512 18432 8192
blk mbr 5 512 28672 8192
blk mbr 6 512 38912 4096
finish mbr

# ---------------------------------------------------------------- bare
mkext ext4 bare-ext4.raw 8M bare 5a5a0005-0000-4000-8000-0000000000f0
finish bare-ext4
blk bare-ext4 0 512 0 16384
rm -f bare-vfat.raw
mkfs.vfat --invariant -n BAREFAT -i 5EED0005 -C bare-vfat.raw 4096 >/dev/null
finish bare-vfat
blk bare-vfat 0 512 0 8192

# ---------------------------------------------------------------- fsmix
# One GPT with the other filesystems the prober knows.
img=fsmix.raw
rm -f $img
truncate -s 200M $img
sgdisk -o -U 5A5A0006-0000-4000-8000-000000000000 \
	-n 1:2048:34815 -t 1:8300 -c 1:xfs \
	-n 2:34816:260095 -t 2:8300 -c 2:btrfs \
	-n 3:260096:262143 -t 3:8300 -c 3:squashfs \
	-n 4:262144:344063 -t 4:0700 -c 4:fat32 \
	-n 5:344064:360447 -t 5:8300 -c 5:ext4-nojournal \
	$img >/dev/null
rm -f f1 f2 f3 f4 f5
truncate -s 16M f1 && mkfs.xfs -q -L xfslbl -m uuid=5a5a0006-0000-4000-8000-0000000000f1 f1
truncate -s 110M f2 && mkfs.btrfs -q -L btrlbl -U 5a5a0006-0000-4000-8000-0000000000f2 f2 >/dev/null 2>&1
mkdir -p sqroot && echo squash >sqroot/file && mksquashfs sqroot f3 -quiet -noappend -mkfs-time 0 -all-time 0 >/dev/null
mkfs.vfat --invariant -F 32 -n FAT32LBL -i 5EED0006 -C f4 40960 >/dev/null 2>&1
rm -f f5 && truncate -s 8M f5 && mke2fs -q -F -t ext4 -O ^has_journal -L nojournal -U 5a5a0006-0000-4000-8000-0000000000f5 f5
put $img f1 $((2048 * 512))
put $img f2 $((34816 * 512))
put $img f3 $((260096 * 512))
put $img f4 $((262144 * 512))
put $img f5 $((344064 * 512))
sgdisk -p $img >"$here/fsmix.sgdisk.txt"
for p in "1 2048 32768" "2 34816 225280" "3 260096 2048" "4 262144 81920" "5 344064 16384"; do
	blk fsmix ${p%% *} 512 $(echo $p | cut -d' ' -f2-)
done
finish fsmix

# ---------------------------------------------------------------- fuzz seeds
# Tiny disks (a few KiB) so the fuzzer mutates table fields, not zeros.
rm -f "$seeds"/seed-*
printf 'label: gpt\nlabel-id: 5A5A0007-0000-4000-8000-000000000000\ntable-length: 4\nfirst-lba: 3\nlast-lba: 20\nstart=3, size=8, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="STATE"\nstart=11, size=4, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI"\n' >seed-gpt.sfdisk
rm -f seed-gpt.raw && truncate -s 12K seed-gpt.raw
sfdisk -q --no-reread --no-tell-kernel seed-gpt.raw <seed-gpt.sfdisk
rm -f seed-mbr.raw && truncate -s 16K seed-mbr.raw
sfdisk -q --no-reread --no-tell-kernel seed-mbr.raw <<'EOF'
label: dos
label-id: 0x5eed0007
start=1, size=8, type=83
start=9, size=22, type=5
start=10, size=4, type=83
start=15, size=4, type=82
EOF
# First 4 KiB of real filesystems: superblocks for the prober.
dd if=p1 of=seed-ext4.raw bs=4096 count=1 status=none
dd if=p2 of=seed-vfat.raw bs=4096 count=1 status=none
dd if=f1 of=seed-xfs.raw bs=4096 count=1 status=none
cp seed-gpt.raw seed-gpt-badprimary.raw
printf 'X' | dd of=seed-gpt-badprimary.raw bs=1 seek=$((512 + 16)) conv=notrunc status=none
python3 - "$seeds" seed-gpt.raw seed-mbr.raw seed-ext4.raw seed-vfat.raw seed-xfs.raw seed-gpt-badprimary.raw <<'EOF'
import os, sys
out = sys.argv[1]
for name in sys.argv[2:]:
    data = open(name, "rb").read()
    lit = "".join(chr(b) if 32 <= b < 127 and chr(b) not in '"\\' else "\\x%02x" % b for b in data)
    with open(os.path.join(out, name.replace(".raw", "")), "w") as f:
        f.write('go test fuzz v1\n[]byte("%s")\n' % lit)
EOF

ls -l "$here"/*.zst
