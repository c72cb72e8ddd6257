#!/usr/bin/env bash
# Builds the LVM2 and LUKS fixtures of package image/lvm and the node tests
# with the real tools, as root, without device-mapper (this kernel has none):
# pvcreate, vgcreate and lvcreate --driverloaded n -an write the metadata on
# loop devices; nothing is activated. Then the example node's STATE
# filesystem (partition 1 of example/wordpress-node.raw.zst) is copied to the
# physical extents that `lvs --segments -o +seg_pe_ranges` reports, so the
# logical volume holds exactly the plain image's filesystem.
#
#   sudo testdata/images/lvm/make-lvm.sh        # from anywhere
#
# Needs: root, loop devices, lvm2, cryptsetup-bin, gdisk (sgdisk), zstd,
# python3.
#
# Writes (committed):
#   node-lvm-linear.raw.zst    GPT disk, partition 1 "lvm" (8E00) is a PV with
#                              two metadata copies (start and end); VG "node":
#                              LVs swap, var (the STATE filesystem, two
#                              segments after an lvextend), spare, and a
#                              cache pool cpool (refused by name)
#   node-lvm-striped-{0,1}.raw.zst
#                              two whole-disk PVs; VG "data": LV containerd,
#                              the STATE filesystem striped over both (64 KiB)
#   luks2.raw.zst              cryptsetup luksFormat of a plain 2 MiB file
#   *.lvm.txt                  the tools' view (pvs, lvs --segments), for the tests
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
work=$(mktemp -d /tmp/make-lvm.XXXXXX)
loops=()
cleanup() {
	for l in "${loops[@]}"; do losetup -d "$l" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

# The example's STATE filesystem: partition 1 at sector 577536, 384 MiB
# (example/expected/gpt.txt).
zstd -q -d "$root/testdata/images/example/wordpress-node.raw.zst" -o "$work/example.raw"
state_off=$((577536 * 512))
state_len=$((384 << 20))
dd if="$work/example.raw" of="$work/state.fs" bs=1M skip=$((state_off >> 20)) count=$((state_len >> 20)) conv=sparse status=none
rm "$work/example.raw"
head -c 1160 "$work/state.fs" | tail -c 16 | grep -q STATE || {
	echo "make-lvm: partition 1 of the example is not the STATE filesystem" >&2
	exit 1
}

attach() { # attach FILE OFFSET SIZE: prints the loop device
	local l
	l=$(losetup -f --show -o "$2" --sizelimit "$3" "$1")
	loops+=("$l")
	echo "$l"
}

# lvm's configuration: only our loop devices, no udev, no device-mapper, no
# backups under /etc/lvm, locks in the scratch directory.
lvmcfg() {
	local filter=""
	for d in "$@"; do filter+="\"a|^$d\$|\", "; done
	echo "devices { global_filter=[ $filter\"r|.*|\" ] obtain_device_list_from_udev=0 external_device_info_source=\"none\" use_devicesfile=0 }" \
		"activation { udev_sync=0 udev_rules=0 verify_udev_operations=0 monitoring=0 }" \
		"backup { backup=0 archive=0 } global { locking_dir=\"$work/lock\" }"
}
mkdir -p "$work/lock"
lv() { # lv CFG COMMAND ARGS...: run an lvm command, dropping fd-leak noise
	local cfg=$1
	shift
	lvm "$@" --config "$cfg" 2> >(grep -v -e 'leaked on' -e 'device-mapper' -e '/dev/mapper/control' -e 'libdevmapper' >&2)
}

# place VG LV CFG MAP...: copy state.fs to the LV's extents. MAP is
# DEVICE=FILE:OFFSET for each PV (OFFSET: where the device starts in FILE).
place() {
	local vg=$1 name=$2 cfg=$3
	shift 3
	local ext pvstarts segs
	ext=$(lv "$cfg" vgs --noheadings --units b --nosuffix -o vg_extent_size "$vg" | tr -d ' ')
	pvstarts=$(lv "$cfg" pvs --noheadings --units b --nosuffix --separator '|' -o pv_name,pe_start)
	segs=$(lv "$cfg" lvs --segments --noheadings --units b --nosuffix --separator '|' \
		-o seg_start_pe,seg_size_pe,stripes,stripe_size,seg_pe_ranges "$vg/$name")
	python3 - "$work/state.fs" "$ext" "$pvstarts" "$segs" "$@" <<'EOF'
import sys
src, ext, pvstarts, segs = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
where = {}
for m in sys.argv[5:]:
    dev, rest = m.split("=")
    f, off = rest.rsplit(":", 1)
    where[dev] = (f, int(off))
pe_start = {}
for line in pvstarts.split("\n"):
    if line.strip():
        dev, start = line.strip().split("|")
        pe_start[dev] = int(start)
data = open(src, "rb").read()
outs = {}
for line in segs.split("\n"):
    if not line.strip():
        continue
    start_pe, size_pe, stripes, stripe_size, ranges = line.strip().split("|")
    start_pe, size_pe, stripes = int(start_pe), int(size_pe), int(stripes)
    areas = []
    for r in ranges.split():
        dev, span = r.rsplit(":", 1)
        first = int(span.split("-")[0])
        f, base = where[dev]
        areas.append((f, base + pe_start[dev] + first * ext))
    assert len(areas) == stripes
    seg_off, seg_len = start_pe * ext, size_pe * ext
    chunk = int(stripe_size) if stripes > 1 else seg_len
    for i in range(seg_len // chunk):
        lo = seg_off + i * chunk
        piece = data[lo:lo + chunk]
        if not piece.strip(b"\0"):
            continue  # keep the image sparse
        f, at = areas[i % stripes]
        at += (i // stripes) * chunk
        if f not in outs:
            outs[f] = open(f, "r+b")
        outs[f].seek(at)
        outs[f].write(piece)
for o in outs.values():
    o.close()
EOF
}

report() { # report CFG VG NAME: the tools' view, with device names made stable
	local cfg=$1 vg=$2 name=$3
	shift 3
	{
		lv "$cfg" pvs --units b -o pv_name,vg_name,pv_uuid,pe_start,pv_size,pv_mda_count
		lv "$cfg" lvs -a --units b --segments -o lv_name,segtype,seg_start_pe,seg_size_pe,stripes,stripe_size,seg_pe_ranges "$vg"
	} | sed "$@" >"$here/$name.lvm.txt"
}

# 1. Linear: a GPT disk whose partition 1 is a PV.
disk="$work/node-lvm-linear.raw"
truncate -s 480M "$disk" >/dev/null
sgdisk -U 4c564d31-0000-4000-8000-000000000001 \
	-n 1:2048:0 -t 1:8E00 -c 1:lvm -u 1:4c564d31-0000-4000-8000-0000000000a1 "$disk" >/dev/null
part_off=$((2048 * 512))
part_len=$(($(stat -c %s "$disk") - part_off - 34 * 512))
pv=$(attach "$disk" $part_off $part_len)
cfg=$(lvmcfg "$pv")
lv "$cfg" pvcreate -q --pvmetadatacopies 2 "$pv"
lv "$cfg" vgcreate -q node "$pv"
lv "$cfg" lvcreate -q --driverloaded n -an -Zn -n swap -L 8M node
lv "$cfg" lvcreate -q --driverloaded n -an -Zn -n var -L 200M node
lv "$cfg" lvcreate -q --driverloaded n -an -Zn -n spare -L 16M node
lv "$cfg" lvextend -q --driverloaded n -L 384M node/var
lv "$cfg" lvcreate -q --driverloaded n -an -n cpool --type cache-pool -L 8M node
place node var "$cfg" "$pv=$disk:$part_off"
report "$cfg" node node-lvm-linear -e "s|$pv|PV0|g"
losetup -d "$pv"

# 2. Striped: two whole-disk PVs.
d0="$work/node-lvm-striped-0.raw"
d1="$work/node-lvm-striped-1.raw"
truncate -s 200M "$d0" "$d1"
p0=$(attach "$d0" 0 $((200 << 20)))
p1=$(attach "$d1" 0 $((200 << 20)))
cfg=$(lvmcfg "$p0" "$p1")
lv "$cfg" pvcreate -q "$p0" "$p1"
lv "$cfg" vgcreate -q data "$p0" "$p1"
lv "$cfg" lvcreate -q --driverloaded n -an -Zn -n containerd -i 2 -I 64k -L 384M data
place data containerd "$cfg" "$p0=$d0:0" "$p1=$d1:0"
report "$cfg" data node-lvm-striped -e "s|$p0|PV0|g" -e "s|$p1|PV1|g"
losetup -d "$p0" "$p1"

# 3. LUKS2: a header written by cryptsetup on a plain file (no
# device-mapper needed to format). Fast PBKDF: the key is not the point; a
# small keyslot area, because cryptsetup fills it with random bytes. LUKS1
# and other variants are made by the tests themselves when cryptsetup is
# installed.
truncate -s 2M "$work/luks2.raw"
echo -n "ctrlift-fixture" | cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
	--key-size 256 --luks2-metadata-size 16k --luks2-keyslots-size 256k --disable-locks \
	--uuid 4c554b53-0000-4000-8000-000000000002 --key-file - "$work/luks2.raw"

for f in node-lvm-linear node-lvm-striped-0 node-lvm-striped-1 luks2; do
	zstd -q -19 -f "$work/$f.raw" -o "$here/$f.raw.zst"
done
ls -l "$here"
