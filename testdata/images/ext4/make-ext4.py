#!/usr/bin/env python3
"""Build ext2/ext4 test images with the real e2fsprogs tools and record what they must contain.

Each image is made by `mke2fs -d` from a source tree this script writes, then edited with
`debugfs -w` (files that mkfs -d cannot make: fragmented files, unwritten extents, and every
inode's atime/mtime/ctime/crtime with nanoseconds and epoch bits) and `e2fsck -fyD` (htree
directories). The expectation file NAME.json is written from the source tree and from the values
this script set; every value is then cross-checked against what `debugfs` reads back from the
image (stat, ea_list/ea_get, dump, ls -p), and `e2fsck -fn` must find the image clean.
Nothing here uses ctrlift's own reader.

Usage: make-ext4.py [-o OUTDIR] [--no-compress] [--list] [NAME ...]
Without NAME it builds the committed set into this directory as NAME.img.zst + NAME.json
(NAME.json.zst when larger than 64 KiB). See README.md.
Needs root (chown, mknod, trusted.* xattrs), mke2fs/debugfs/e2fsck/dumpe2fs (e2fsprogs 1.47)
and zstd; the ea_inode image also needs a tmpfs at /dev/shm (large xattr values in the source).
"""

import argparse
import base64
import errno
import hashlib
import json
import os
import re
import shutil
import socket
import stat
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE_TIME = 1700000000  # superblock and mkfs-made inode times (E2FSPROGS_FAKE_TIME)
MAX_HASHED = 256 << 20  # files larger than this are described by data segments only
MiB = 1 << 20
GiB = 1 << 30

MKE2FS_CONF = """[defaults]
\tbase_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr
\tdefault_mntopts = acl,user_xattr
\tenable_periodic_fsck = 0
\tblocksize = 4096
\tinode_size = 256
\tinode_ratio = 16384
\treserved_ratio = 5.0
\tlazy_itable_init = false
\tlazy_journal_init = false

[fs_types]
\text2 = {
\t}
\text3 = {
\t\tfeatures = has_journal
\t}
\text4 = {
\t\tfeatures = has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize
\t}
"""


def die(msg):
    sys.exit("make-ext4: " + msg)


# ---------------------------------------------------------------- content


def pattern(tag, size):
    """Compressible but position-unique bytes: 64-byte records naming the file and offset."""
    out = bytearray()
    off = 0
    while off < size:
        rec = ("%s@%012x" % (tag, off))[:62].ljust(63, ".") + "\n"
        out += rec.encode()
        off += 64
    return bytes(out[:size])


def rnd(tag, size):
    return hashlib.shake_256(tag.encode()).digest(size)


def h64(*parts):
    return int.from_bytes(hashlib.sha256("\0".join(str(p) for p in parts).encode("utf-8", "surrogateescape")).digest()[:8], "little")


def acl(entries):
    """system.posix_acl_* value as the kernel's getxattr returns it (POSIX_ACL_XATTR_VERSION 2)."""
    order = {1: 0, 2: 1, 4: 2, 8: 3, 0x10: 4, 0x20: 5}
    entries = sorted(entries, key=lambda e: (order[e[0]], e[2] if e[0] in (2, 8) else 0))
    return struct.pack("<I", 2) + b"".join(
        struct.pack("<HHI", tag, perm, ident if tag in (2, 8) else 0xFFFFFFFF) for tag, perm, ident in entries)


ACL_USER_OBJ, ACL_USER, ACL_GROUP_OBJ, ACL_GROUP, ACL_MASK, ACL_OTHER = 1, 2, 4, 8, 0x10, 0x20


def cap_v2(permitted, inheritable=0, effective=True):
    """security.capability, VFS_CAP_REVISION_2 (20 bytes)."""
    magic = 0x02000000 | (1 if effective else 0)
    return struct.pack("<IIIII", magic, permitted & 0xFFFFFFFF, inheritable & 0xFFFFFFFF,
                       permitted >> 32, inheritable >> 32)


# ---------------------------------------------------------------- source tree helpers


class Tree:
    """Writes the source tree. Paths are relative, slash-separated, str or bytes."""

    def __init__(self, root):
        self.root = root

    def p(self, rel):
        if isinstance(rel, bytes):
            return os.path.join(os.fsencode(self.root), rel)
        return os.path.join(self.root, rel)

    def mkdir(self, rel, mode=0o755, uid=0, gid=0):
        path = self.p(rel)
        os.makedirs(path, exist_ok=True)
        os.chown(path, uid, gid)
        os.chmod(path, mode)
        return path

    def file(self, rel, data=b"", mode=0o644, uid=0, gid=0, xattrs=None):
        path = self.p(rel)
        with open(path, "wb") as f:
            f.write(data)
        self._meta(path, mode, uid, gid, xattrs)
        return path

    def sparse(self, rel, size, segments, mode=0o644, uid=0, gid=0):
        """segments: list of (offset, bytes); everything else is a hole."""
        path = self.p(rel)
        with open(path, "wb") as f:
            for off, data in segments:
                f.seek(off)
                f.write(data)
            f.truncate(size)
        self._meta(path, mode, uid, gid, None)
        return path

    def symlink(self, rel, target, uid=0, gid=0, xattrs=None):
        path = self.p(rel)
        os.symlink(target, path)
        os.lchown(path, uid, gid)
        for k, v in (xattrs or {}).items():
            os.setxattr(path, k, v, follow_symlinks=False)
        return path

    def node(self, rel, kind, mode, major=0, minor=0, uid=0, gid=0, xattrs=None):
        path = self.p(rel)
        if kind == "sock":
            parent, name = os.path.split(path)
            cwd = os.getcwd()
            os.chdir(parent)  # AF_UNIX paths are limited to 108 bytes
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.bind(name)
                s.close()
            finally:
                os.chdir(cwd)
        else:
            fmt = {"fifo": stat.S_IFIFO, "chr": stat.S_IFCHR, "blk": stat.S_IFBLK}[kind]
            os.mknod(path, fmt | mode, os.makedev(major, minor))
        self._meta(path, mode, uid, gid, xattrs)
        return path

    def link(self, existing, rel):
        os.link(self.p(existing), self.p(rel))

    def _meta(self, path, mode, uid, gid, xattrs):
        os.chown(path, uid, gid)
        os.chmod(path, mode)
        for k, v in (xattrs or {}).items():
            os.setxattr(path, k, v)


# ---------------------------------------------------------------- image contents


def build_common(t, spec):
    """Every file type, owners, modes, names, sizes, links, xattrs and holes; scaled to the block size."""
    bs = spec["bs"]
    small = spec.get("small", False)
    t.mkdir("types")
    t.file("types/regular", pattern("types/regular", 100))
    t.file("types/empty", b"")
    t.node("types/fifo", "fifo", 0o644)
    t.node("types/socket", "sock", 0o755)
    t.node("types/chr-null", "chr", 0o666, 1, 3)
    t.node("types/chr-big", "chr", 0o600, 300, 70000)  # new-style (huge) device encoding
    t.node("types/blk-sda1", "blk", 0o660, 8, 1, gid=6)
    t.node("types/blk-max", "blk", 0o600, 4095, 1048575)
    t.node("types/whiteout", "chr", 0o000, 0, 0)  # what overlayfs uses for whiteouts
    t.mkdir("types/dir")
    t.mkdir("types/empty-dir", 0o700)

    t.mkdir("links")
    t.symlink("links/fast", "../types/regular")
    t.symlink("links/abs", "/etc/passwd")
    t.symlink("links/dangling", "does/not/exist")
    t.symlink("links/escape", "../../../../../../etc/shadow")
    t.symlink("links/to-dir", "../types/dir")
    t.symlink("links/len59", "t" * 59)  # the last length stored in the inode
    t.symlink("links/len60", "u" * 60)  # the first stored in a block
    t.symlink("links/len300", "/" + "/".join(["seg%03d" % i for i in range(50)])[:299])
    if not small:
        t.symlink("links/len4000", ("x" * 99 + "/") * 40)
    t.symlink("links/owned", "types/regular", uid=1000, gid=1000)
    t.file("links/hard-a", pattern("links/hard-a", 3000), mode=0o640, uid=1000, gid=100)
    t.link("links/hard-a", "links/hard-b")
    t.link("links/hard-a", "types/dir/hard-c")

    t.mkdir("perms")
    for mode in (0o000, 0o400, 0o644, 0o755, 0o4755, 0o2755, 0o6711, 0o1755, 0o7777):
        t.file("perms/m%04o" % mode, b"mode %04o\n" % mode, mode=mode)
    t.mkdir("perms/sticky-dir", 0o1777)
    t.mkdir("perms/setgid-dir", 0o2775, gid=50)
    t.file("perms/uid-big", b"big ids\n", uid=4000000000, gid=3000000000)  # needs the _hi halves
    t.file("perms/uid-nobody", b"nobody\n", uid=65534, gid=65534)
    t.file("perms/uid-65536", b"just above 16 bits\n", uid=65536, gid=65537)

    t.mkdir("names")
    t.file("names/naïve file (1).txt", b"utf-8\n")
    t.file("names/日本語", b"cjk\n")
    t.file("names/emoji-\U0001F600", b"emoji\n")
    t.file("names/-leading-dash", b"dash\n")
    t.file("names/.hidden", b"hidden\n")
    t.file("names/with space and\ttab", b"ws\n")
    t.file("names/" + "n" * 255, b"longest name\n")
    t.file(b"names/latin1-\xe9t\xe9", b"not utf-8\n")
    t.file("names/a:b;c'd\"e\\f", b"punct\n")
    t.mkdir("names/deep")
    deep = "names/deep"
    for i in range(20):
        deep += "/d%02d" % i
        t.mkdir(deep)
    t.file(deep + "/leaf", b"deep leaf\n")

    t.mkdir("sizes")
    for n in sorted({1, 59, 60, 61, bs - 1, bs, bs + 1, 3 * bs + 7, 12 * bs, 13 * bs + 1}):
        t.file("sizes/s%d" % n, pattern("sizes/s%d" % n, n))
    t.file("sizes/random-64k", rnd("sizes/random-64k", 64 << 10))
    t.file("sizes/pattern-1m", pattern("sizes/pattern-1m", MiB if not small else 256 << 10))

    # Holes. mkfs -d skips all-zero blocks, so offsets are multiples of 64 KiB (>= any block size).
    t.mkdir("sparse")
    K64 = 64 << 10
    t.sparse("sparse/lead-hole", 4 * K64 + 1000, [(4 * K64, pattern("sparse/lead-hole", 1000))])
    t.sparse("sparse/mid-hole", 9 * K64, [(0, pattern("sparse/mid-hole/a", K64)),
                                          (8 * K64, pattern("sparse/mid-hole/b", K64))])
    t.sparse("sparse/trail-hole", 16 * K64, [(0, pattern("sparse/trail-hole", K64 + 5))])
    t.sparse("sparse/all-hole", 10 * MiB, [])
    t.sparse("sparse/many-holes", 40 * K64, [(i * 2 * K64, pattern("sparse/many-holes/%d" % i, 4096))
                                             for i in range(20)])  # > 4 extents: extent tree depth 1
    if spec.get("big_sparse", True):
        size = 5 * GiB + 12345
        t.sparse("sparse/over-4g", size, [
            (MiB, pattern("sparse/over-4g/1m", 8192)),
            (4 * GiB - K64, pattern("sparse/over-4g/4g", 2 * K64)),  # crosses 2^32 bytes
            (size - 12345 - K64, pattern("sparse/over-4g/end", K64 + 12345)),
        ])

    build_xattrs(t, spec)


def build_xattrs(t, spec):
    bs = spec["bs"]
    t.mkdir("xattrs")
    t.file("xattrs/user", b"u\n", xattrs={"user.plain": b"value", "user.binary": bytes(range(256))[:min(200, bs // 4)]})
    t.file("xattrs/empty-value", b"e\n", xattrs={"user.empty": b""})
    t.file("xattrs/trusted", b"t\n", xattrs={"trusted.overlay.opaque": b"y",
                                             "trusted.overlay.origin": rnd("origin", 29)})
    t.file("xattrs/capability", b"#!/bin/sh\n", mode=0o755, xattrs={
        "security.capability": cap_v2((1 << 10) | (1 << 12) | (1 << 13))})  # NET_BIND_SERVICE,NET_ADMIN,NET_RAW
    t.file("xattrs/selinux", b"s\n", xattrs={"security.selinux": b"system_u:object_r:container_file_t:s0\0"})
    t.file("xattrs/acl-file", b"a\n", mode=0o640, xattrs={"system.posix_acl_access": acl([
        (ACL_USER_OBJ, 6, 0), (ACL_USER, 4, 1000), (ACL_GROUP_OBJ, 4, 0), (ACL_GROUP, 6, 2000),
        (ACL_MASK, 6, 0), (ACL_OTHER, 0, 0)])})
    d = t.mkdir("xattrs/acl-dir", 0o750)
    os.setxattr(d, "system.posix_acl_access", acl([
        (ACL_USER_OBJ, 7, 0), (ACL_USER, 5, 1000), (ACL_GROUP_OBJ, 5, 0), (ACL_MASK, 5, 0), (ACL_OTHER, 0, 0)]))
    os.setxattr(d, "system.posix_acl_default", acl([
        (ACL_USER_OBJ, 7, 0), (ACL_GROUP_OBJ, 5, 0), (ACL_GROUP, 5, 1001), (ACL_MASK, 7, 0), (ACL_OTHER, 1, 0)]))
    # Too big for the inode: goes to an external xattr block (not ea_inode, which needs the feature).
    big = min(3000, bs * 3 // 4)
    t.file("xattrs/large-value", b"l\n", xattrs={"user.large": pattern("user.large", big)})
    t.file("xattrs/many", b"m\n", xattrs={"user.k%02d" % i: b"v%02d" % i * 3 for i in range(min(30, bs // 40))})
    # Two inodes with equal attribute sets: e2fsprogs may share one refcounted block.
    shared = {"user.shared-a": pattern("shared", min(1500, bs // 2)), "user.shared-b": b"x"}
    t.file("xattrs/shared-1", b"1\n", xattrs=shared)
    t.file("xattrs/shared-2", b"2\n", xattrs=shared)
    t.symlink("xattrs/symlink", "user", xattrs={"trusted.link": b"on a symlink", "security.selinux": b"lnk\0"})
    t.node("xattrs/fifo", "fifo", 0o600, xattrs={"trusted.fifo": b"on a fifo"})
    t.mkdir("xattrs/dir-opaque")
    os.setxattr(t.p("xattrs/dir-opaque"), "trusted.overlay.opaque", b"y")
    t.file("xattrs/dir-opaque/kept", b"k\n")


def build_htree(t, spec):
    """A directory far bigger than a block; e2fsck -D turns it into an htree."""
    t.mkdir("big", 0o755)
    for i in range(spec["entries"]):
        name = "e%05d-%s" % (i, hashlib.sha256(b"%d" % i).hexdigest()[:8])
        t.file("big/" + name, b"%d\n" % i if i % 97 == 0 else b"")


def build_default(t, spec):
    build_common(t, spec)
    t.mkdir("dirs")
    t.mkdir("dirs/medium")
    for i in range(400):  # several blocks of entries: an htree after e2fsck -D
        t.file("dirs/medium/file-%04d-%s" % (i, "m" * (i % 37)), b"" if i % 3 else b"%d\n" % i)
    t.mkdir("frag")


def build_inline(t, spec):
    t.mkdir("inline")
    for n in (0, 1, 30, 59, 60, 61, 100, 120, 150, 160, 200, 500, 5000):
        t.file("inline/s%d" % n, pattern("inline/s%d" % n, n))
    t.file("inline/with-xattr", pattern("inline/with-xattr", 80), xattrs={"user.small": b"fits beside system.data"})
    t.file("inline/big-xattr", pattern("inline/big-xattr", 50),
           xattrs={"user.big": pattern("big", 1000)})
    t.mkdir("inline/tiny-dir")
    t.file("inline/tiny-dir/a", b"a")
    t.file("inline/tiny-dir/b", b"bb")
    t.mkdir("inline/empty-dir")
    t.mkdir("inline/grown-dir")  # too many entries for the inode: converted to a block directory
    for i in range(40):
        t.file("inline/grown-dir/entry-%02d" % i, b"%d" % i)
    t.symlink("inline/link-short", "s1")
    t.symlink("inline/link-long", "l" * 100)
    t.node("inline/fifo", "fifo", 0o644)
    t.node("inline/chr", "chr", 0o600, 4, 64)


def build_ext2(t, spec):
    build_common(t, spec)
    t.mkdir("indirect")
    bs = spec["bs"]
    per = bs // 4
    # 12 direct + per single-indirect: anything longer needs the double-indirect block.
    t.file("indirect/double", pattern("indirect/double", (12 + per + 40) * bs + 123))
    # Triple-indirect starts at block 12 + per + per*per (64.26 MiB at 1 KiB blocks).
    K64 = 64 << 10
    tind = (12 + per + per * per) * bs
    tdata = tind // K64 * K64 + K64
    t.sparse("indirect/triple", tdata + 3 * K64 + 7, [
        (0, pattern("indirect/triple/0", K64)),
        ((12 + per + 3 * per) * bs // K64 * K64, pattern("indirect/triple/dind", K64)),
        (tdata, pattern("indirect/triple/tind", K64 + 4321))])


def build_metabg(t, spec):
    # Many directories spread inodes over many groups, beyond the first meta block group.
    for d in range(spec["dirs"]):
        t.mkdir("g%02d" % d)
        for i in range(12):
            t.file("g%02d/f%02d" % (d, i), pattern("g%02d/f%02d" % (d, i), 700 * i))
    t.sparse("g00/sparse", 4 * MiB, [(2 * MiB, pattern("meta-sparse", 70000))])


def build_eainode(t, spec):
    t.mkdir("ea")
    t.file("ea/huge-user", b"h\n", xattrs={"user.huge": rnd("user.huge", 20000)})
    t.file("ea/huge-trusted", b"t\n", xattrs={"trusted.huge": pattern("trusted.huge", 9000),
                                              "user.small": b"s"})
    t.file("ea/exactly-block", b"b\n", xattrs={"user.block": pattern("user.block", spec["bs"])})
    t.file("ea/same-1", b"1\n", xattrs={"user.same": pattern("user.same", 6000)})
    t.file("ea/same-2", b"2\n", xattrs={"user.same": pattern("user.same", 6000)})
    t.mkdir("ea/dir")
    os.setxattr(t.p("ea/dir"), "user.dir-huge", rnd("dir", 30000))


# ---------------------------------------------------------------- debugfs post steps


def post_fragment(ctx, name, filler_size, fillers, big_size, min_depth):
    """Allocate interleaved filler files, delete every other one, then write a big file: its
    extents land in the holes, giving a physically fragmented file with an extent tree."""
    t = ctx.tree
    fill_dir = name + "-fill"
    cmds = []
    for d in (os.path.dirname(name), fill_dir):
        if not os.path.isdir(t.p(d)):
            t.mkdir(d)
            cmds.append("mkdir " + d)
    tmp = ctx.tmpfile(pattern("filler", filler_size))
    for i in range(fillers):
        if i % 2 == 0:
            cmds.append('write %s %s/f%04d' % (tmp, fill_dir, i))
        else:
            src = t.file("%s/f%04d" % (fill_dir, i), pattern("%s/f%04d" % (fill_dir, i), filler_size))
            cmds.append('write %s %s/f%04d' % (src, fill_dir, i))
    for i in range(0, fillers, 2):
        cmds.append("rm %s/f%04d" % (fill_dir, i))
    big = t.file(name, pattern(name, big_size))
    cmds.append("write %s %s" % (big, name))
    ctx.debugfs(cmds, write=True)
    ctx.fix_written(cmds)
    depth = ctx.extent_depth(name)
    if depth < min_depth:
        die("%s: %s has extent depth %d, want >= %d" % (ctx.name, name, depth, min_depth))
    ctx.facts.setdefault("extent_depth", {})[name] = depth


def post_prealloc(ctx):
    """Unwritten (uninitialized) extents inside i_size must read as zeros."""
    t = ctx.tree
    bs = ctx.spec["bs"]
    src = t.sparse("frag/prealloc", 64 * bs, [(0, pattern("frag/prealloc", 4 * bs))])
    cmds = ["write %s frag/prealloc" % src, "fallocate frag/prealloc 8 40"]
    ctx.debugfs(cmds, write=True)
    ctx.fix_written(cmds)
    out = ctx.debugfs(["ex frag/prealloc"])
    if "Uninit" not in out and "[u]" not in out:
        die("frag/prealloc: no unwritten extent:\n" + out)
    ctx.facts["unwritten_extents"] = ["frag/prealloc"]


def post_default(ctx):
    post_fragment(ctx, "frag/big", 8192, 60, 400 * 1024, 1)
    post_prealloc(ctx)


def unlink_some(ctx):
    """Remove names after e2fsck -D has packed the directory, leaving what unlink leaves in a
    directory block: an entry merged into its predecessor's rec_len, or inode 0 when it is the
    first in its block."""
    names = sorted(os.listdir(ctx.tree.p("dirs/medium")))
    gone = names[::5] + names[1:4]
    ctx.debugfs(["rm dirs/medium/" + n for n in gone], write=True)
    for n in gone:
        os.unlink(ctx.tree.p("dirs/medium/" + n))
    ctx.facts["unlinked_after_fsck"] = len(gone)


def post_1k(ctx):
    # (1024-12)/12 = 84 extents per block, 4 in the inode: > 336 extents needs depth 2.
    post_fragment(ctx, "frag/deep", 1024, 900, 450 * 1024, 2)


# ---------------------------------------------------------------- image specs

def uuid_for(name, salt):
    h = hashlib.sha256((salt + name).encode()).hexdigest()
    return "%s-%s-4%s-8%s-%s" % (h[0:8], h[8:12], h[13:16], h[17:20], h[20:32])


SPECS = [
    dict(name="ext4-default", committed=True, fstype="ext4", size=96 * MiB, bs=4096, isize=256,
         build=build_default, post=post_default, post_fsck=unlink_some, times="ns", fsck_d=True,
         checks=["htree:dirs/medium", "fast_symlink:links/len59", "slow_symlink:links/len60",
                 "xattr_block:xattrs/large-value"]),
    dict(name="ext4-128", committed=True, fstype="ext4", size=48 * MiB, bs=4096, isize=128,
         features="^metadata_csum,^64bit,uninit_bg", build=build_common, times="s32", fsck_d=True, small=True,
         checks=["xattr_block:xattrs/user"]),
    dict(name="ext4-1k", committed=True, fstype="ext4", size=48 * MiB, bs=1024, isize=256,
         build=build_common, post=post_1k, times="ns", fsck_d=True, small=True,
         checks=["htree:frag/deep-fill", "xattr_block:xattrs/large-value"]),
    dict(name="ext4-inline", committed=True, fstype="ext4", size=8 * MiB, bs=4096, isize=256,
         features="inline_data", build=build_inline, times="ns", fsck_d=False,
         checks=["inline:inline/s59", "inline:inline/s100", "inline:inline/tiny-dir", "noinline:inline/s5000"]),
    dict(name="ext2-1k", committed=True, fstype="ext2", size=96 * MiB, bs=1024, isize=256,
         build=build_ext2, times="ns", fsck_d=True, small=True, big_sparse=False,
         checks=["blocks:indirect/double:DIND", "blocks:indirect/triple:TIND", "xattr_block:xattrs/many"]),
    dict(name="ext4-64k", committed=True, fstype="ext4", size=48 * MiB, bs=65536, isize=256,
         build=build_common, times="ns", fsck_d=True, small=True, checks=["xattr_block:xattrs/large-value"]),
    dict(name="ext4-metabg", committed=True, fstype="ext4", size=64 * MiB, bs=1024, isize=256,
         features="meta_bg,^resize_inode", extra=["-g", "1024", "-N", "2048"], dirs=45,
         build=build_metabg, times="ns", fsck_d=True, checks=["max_ino_over:560"]),
    dict(name="ext4-eainode", committed=True, fstype="ext4", size=16 * MiB, bs=4096, isize=256,
         features="ea_inode", build=build_eainode, times="ns", fsck_d=True, shm=True,
         checks=["ea_inodes:5"]),
    # Classic ext3: journal, block maps, no filetype in directory entries, no dir_index.
    dict(name="ext3-nofiletype", committed=True, fstype="ext3", size=48 * MiB, bs=4096, isize=128,
         features="^filetype,^dir_index", build=build_common, times="s32", fsck_d=True, small=True,
         checks=["blocks:sparse/over-4g:DIND"]),
    # Newer allocation features: clusters of 4 blocks and the orphan file.
    dict(name="ext4-bigalloc", committed=True, fstype="ext4", size=64 * MiB, bs=4096, isize=256,
         features="bigalloc,orphan_file", extra=["-C", "16384"], build=build_common, times="ns",
         fsck_d=True, small=True),
    # 20,000 names in one directory; 1 KiB blocks so that the hash tree needs two index levels.
    dict(name="htree-20k", committed=True, fstype="ext4", size=64 * MiB, bs=1024, isize=256,
         extra=["-N", "20480"], build=build_htree, entries=20000, times="fixed", fsck_d=True,
         checks=["htree:big", "htree_levels:big:2"]),
]
SPEC_BY_NAME = {s["name"]: s for s in SPECS}


# ---------------------------------------------------------------- the build


class Ctx:
    def __init__(self, spec, work, outdir):
        self.spec = spec
        self.name = spec["name"]
        self.work = work
        self.outdir = outdir
        srcbase = work
        if spec.get("shm"):
            if not os.path.isdir("/dev/shm"):
                die("%s needs /dev/shm (tmpfs) for xattr values larger than a block" % self.name)
            srcbase = tempfile.mkdtemp(prefix="make-ext4-src-", dir="/dev/shm")
            self.shm_dir = srcbase
        self.src = os.path.join(srcbase, "src")
        os.mkdir(self.src)
        os.chmod(self.src, 0o755)
        self.tree = Tree(self.src)
        self.img = os.path.join(work, self.name + ".img")
        self.env = dict(os.environ, LC_ALL="C", TZ="UTC", E2FSPROGS_FAKE_TIME=str(FAKE_TIME), E2FSCK_TIME=str(FAKE_TIME),
                        MKE2FS_CONFIG=os.path.join(work, "mke2fs.conf"))
        self.env.pop("MKE2FS_DEVICE_SECTSIZE", None)
        self.facts = {}
        self.ntmp = 0

    def tmpfile(self, data):
        self.ntmp += 1
        p = os.path.join(self.work, "tmp%d" % self.ntmp)
        with open(p, "wb") as f:
            f.write(data)
        return p

    def run(self, argv, ok=(0,)):
        r = subprocess.run(argv, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if r.returncode not in ok:
            die("%s: %s failed (%d):\n%s%s" % (self.name, " ".join(argv), r.returncode,
                                              r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")))
        return r

    def debugfs(self, cmds, write=False, raw=False):
        cf = os.path.join(self.work, "cmds")
        with open(cf, "wb") as f:
            for c in cmds:
                f.write((c if isinstance(c, bytes) else c.encode()) + b"\n")
        argv = ["debugfs"] + (["-w"] if write else []) + ["-f", cf, self.img]
        r = self.run(argv)
        err = r.stderr.decode(errors="replace")
        bad = [l for l in err.splitlines() if l and not l.startswith("debugfs 1.")]
        if bad:
            die("%s: debugfs reported errors:\n%s" % (self.name, "\n".join(bad[:20])))
        return r.stdout if raw else r.stdout.decode(errors="replace")

    def fix_written(self, cmds):
        """debugfs write takes mode but not owner from the host file; make the image match the tree."""
        sets = []
        for c in cmds:
            if c.startswith("write "):
                _, src, dst = c.split(" ")
                if not src.startswith(self.src):
                    continue
                st = os.lstat(src)
                sets += ["sif %s mode 0%o" % (dst, st.st_mode), "sif %s uid %d" % (dst, st.st_uid),
                         "sif %s gid %d" % (dst, st.st_gid)]
        if sets:
            self.debugfs(sets, write=True)

    def extent_depth(self, path):
        out = self.debugfs(["ex " + path])
        m = re.search(r"^\s*0/\s*(\d+)\s", out, re.M)
        return int(m.group(1)) if m else 0


def mkfs(ctx):
    s = ctx.spec
    with open(os.path.join(ctx.work, "mke2fs.conf"), "w") as f:
        f.write(MKE2FS_CONF)
    with open(ctx.img, "wb") as f:
        f.truncate(s["size"])
    argv = ["mke2fs", "-t", s["fstype"], "-F", "-q", "-b", str(s["bs"]), "-I", str(s["isize"]),
            "-U", uuid_for(ctx.name, "uuid"), "-L", ctx.name[:16], "-m", "0",
            "-E", "hash_seed=%s,lazy_itable_init=0,nodiscard" % uuid_for(ctx.name, "hash"), "-d", ctx.src]
    if s.get("features"):
        argv += ["-O", s["features"]]
    argv += s.get("extra", [])
    argv.append(ctx.img)
    ctx.facts["mkfs"] = [a if a != ctx.src else "SRC" for a in argv[:-1]] + ["IMG"]
    ctx.run(argv)


def dumpe2fs_features(ctx):
    out = ctx.run(["dumpe2fs", "-h", ctx.img]).stdout.decode()
    feats = re.search(r"^Filesystem features:\s*(.*)$", out, re.M).group(1).split()
    bs = int(re.search(r"^Block size:\s*(\d+)", out, re.M).group(1))
    isz = int(re.search(r"^Inode size:\s*(\d+)", out, re.M).group(1))
    return feats, bs, isz


def list_image(ctx):
    """Walk the image with debugfs `ls -p`: path(bytes) -> ino, and dir -> names."""
    paths = {b".": 2}
    children = {}
    todo = [(b".", 2)]
    while todo:
        cmds = ["ls -p <%d>" % ino for _, ino in todo]
        out = ctx.debugfs(cmds, raw=True)
        chunks = re.split(rb"^debugfs: ls -p <\d+>\n", out, flags=re.M)[1:]
        if len(chunks) != len(todo):
            die("%s: ls -p output has %d parts for %d dirs" % (ctx.name, len(chunks), len(todo)))
        nxt = []
        for (dpath, _), chunk in zip(todo, chunks):
            names = []
            for line in chunk.split(b"\n"):
                if not line:
                    continue
                m = re.match(rb"^/(\d+)/(\d+)/(-?\d+)/(-?\d+)/(.*)/(\d*)/$", line, re.S)
                if not m:
                    die("%s: cannot parse ls -p line %r" % (ctx.name, line))
                ino, mode, name = int(m.group(1)), int(m.group(2), 8), m.group(5)
                if name in (b".", b"..") or ino == 0:  # ino 0: unused slot (empty lost+found blocks)
                    continue
                names.append(name)
                p = name if dpath == b"." else dpath + b"/" + name
                paths[p] = ino
                if stat.S_ISDIR(mode):
                    nxt.append((p, ino))
            children[dpath] = sorted(names)
        todo = nxt
    return paths, children


STAT_TIME = re.compile(r"^\s*(a|c|m|cr)time: 0x([0-9a-f]+)(?::([0-9a-f]+))?", re.M)


def s32(v):
    return v - (1 << 32) if v & 0x80000000 else v


def decode_time(lo, extra):
    secs = s32(lo)
    if extra is None:
        return secs * 10**9
    return (secs + ((extra & 3) << 32)) * 10**9 + (extra >> 2)


def encode_time(ns, has_extra):
    secs, nsec = divmod(ns, 10**9)
    lo = secs & 0xFFFFFFFF
    if not has_extra:
        if secs != s32(lo) or nsec:
            die("time %d does not fit a 128-byte inode" % ns)
        return lo, None
    epoch = (secs - s32(lo)) >> 32
    if not 0 <= epoch <= 3:
        die("time %d outside the ext4 range" % ns)
    return lo, (nsec << 2) | epoch


def parse_stat(text):
    r = {}
    m = re.search(r"^Inode: (\d+)\s+Type: (.*?)\s+Mode:\s+(\d+)\s+Flags: 0x([0-9a-f]+)", text, re.M)
    r["ino"], r["typename"], r["perm"], r["flags"] = int(m.group(1)), m.group(2), int(m.group(3), 8), int(m.group(4), 16)
    m = re.search(r"^Generation: (\d+)", text, re.M)
    r["generation"] = int(m.group(1))
    # debugfs prints the 32-bit ids as signed ints
    m = re.search(r"^User:\s+(-?\d+)\s+Group:\s+(-?\d+)\s+(?:Project:\s+\d+\s+)?Size: (\d+)", text, re.M)
    r["uid"], r["gid"], r["size"] = int(m.group(1)) & 0xFFFFFFFF, int(m.group(2)) & 0xFFFFFFFF, int(m.group(3))
    m = re.search(r"^File ACL: (\d+)", text, re.M)
    r["file_acl"] = int(m.group(1))
    m = re.search(r"^Links: (\d+)\s+Blockcount: (\d+)", text, re.M)
    r["nlink"], r["blocks"] = int(m.group(1)), int(m.group(2))
    r["times"] = {}
    for m in STAT_TIME.finditer(text):
        r["times"][m.group(1)] = decode_time(int(m.group(2), 16), int(m.group(3), 16) if m.group(3) else None)
    m = re.search(r"Device major/minor number: (\d+):(\d+)", text)
    r["rdev"] = [int(m.group(1)), int(m.group(2))] if m else None
    m = re.search(r'^Fast link dest: "(.*)"$', text, re.M | re.S)
    r["fast_target"] = m.group(1) if m else None
    r["inline"] = "Size of inline data" in text
    return r


TYPE_NAMES = {"regular": "file", "directory": "dir", "symlink": "symlink", "character special": "char",
              "block special": "block", "FIFO": "fifo", "socket": "socket"}
S_TYPES = {stat.S_IFREG: "file", stat.S_IFDIR: "dir", stat.S_IFLNK: "symlink", stat.S_IFCHR: "char",
           stat.S_IFBLK: "block", stat.S_IFIFO: "fifo", stat.S_IFSOCK: "socket"}


def times_for(ctx, key):
    """Deterministic atime/mtime/ctime/crtime (ns) for one inode; special cases by path."""
    mode = ctx.spec["times"]
    base = 946684800  # 2000-01-01
    if mode == "fixed":  # one set of times for every inode keeps a 20k-inode expectation small
        key = "fixed"
        mode = "ns"
    out = {}
    for i, f in enumerate(("a", "m", "c", "cr")):
        h = h64(ctx.name, key, f)
        secs = base + h % (30 * 365 * 86400)
        ns = secs * 10**9 + ((h >> 32) % 10**9 if mode == "ns" else 0)
        out[f] = ns
    special = SPECIAL_TIMES.get(key)
    if special:
        vals = special[0] if mode == "ns" else special[1]
        out.update(vals)
    return out


# Edge cases of the ext4 encoding: 32-bit signed seconds plus two epoch bits and 30 bits of ns.
SPECIAL_TIMES = {
    "times/pre-1970": ({"m": -315532800 * 10**9 + 123456789, "a": -1, "c": -(1 << 31) * 10**9, "cr": 1},
                       {"m": -315532800 * 10**9, "a": -10**9, "c": -(1 << 31) * 10**9}),
    "times/post-2038": ({"m": (1 << 31) * 10**9, "a": ((1 << 31) - 1) * 10**9 + 999999999,
                         "c": 4102444800 * 10**9 + 5, "cr": ((1 << 32) + 7) * 10**9 + 1},
                        {"m": ((1 << 31) - 1) * 10**9, "a": (1 << 30) * 10**9, "c": 0}),
    "times/far-future": ({"m": (((1 << 31) - 1) + (3 << 32)) * 10**9 + 999999999,
                          "a": (-(1 << 31) + (3 << 32)) * 10**9, "c": 10737418240 * 10**9, "cr": 0},
                         {"m": 10**9, "a": 2 * 10**9, "c": 3 * 10**9}),
    "times/epoch": ({"m": 0, "a": 0, "c": 0, "cr": 0}, {"m": 0, "a": 0, "c": 0}),
}


def build_times_tree(t):
    t.mkdir("times")
    for k in SPECIAL_TIMES:
        t.file(k, k.encode() + b"\n")


def set_times(ctx, paths, has_extra, has_crtime):
    """Returns ino -> times; writes them with debugfs sif."""
    seen = {}
    cmds = []
    for p in sorted(paths):
        ino = paths[p]
        if ino in seen:
            continue
        key = os.fsdecode(p)
        tv = times_for(ctx, key)
        if not has_crtime:
            tv.pop("cr", None)
        seen[ino] = tv
        for f, ns in tv.items():
            field = {"a": "atime", "m": "mtime", "c": "ctime", "cr": "crtime"}[f]
            lo, extra = encode_time(ns, has_extra)
            cmds.append("sif <%d> %s @%d" % (ino, field, lo))
            if extra is not None:
                cmds.append("sif <%d> %s_extra %d" % (ino, field, extra))
    ctx.debugfs(cmds, write=True)
    return seen


def segments_of(path, size):
    """Data ranges of a sparse source file (SEEK_DATA/SEEK_HOLE), with their sha256."""
    segs = []
    fd = os.open(path, os.O_RDONLY)
    try:
        off = 0
        while off < size:
            try:
                d = os.lseek(fd, off, os.SEEK_DATA)
            except OSError as e:
                if e.errno == errno.ENXIO:
                    break
                raise
            h = os.lseek(fd, d, os.SEEK_HOLE)
            segs.append((d, min(h, size) - d))
            off = h
        out = []
        for d, n in segs:
            hs = hashlib.sha256()
            os.lseek(fd, d, os.SEEK_SET)
            left = n
            while left:
                b = os.read(fd, min(left, 4 * MiB))
                hs.update(b)
                left -= len(b)
            out.append([d, n, hs.hexdigest()])
        return out
    finally:
        os.close(fd)


def sha256_file(path):
    hs = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(4 * MiB), b""):
            hs.update(b)
    return hs.hexdigest()


def expect_entries(ctx, paths, stats, tset, has_crtime):
    """Expectations from the source tree plus the times we set; debugfs supplies only what the
    source cannot know (inode numbers, directory sizes, lost+found)."""
    entries = []
    for p in sorted(paths):
        ino = paths[p]
        st_img = stats[ino]
        src = os.path.join(os.fsencode(ctx.src), p) if p != b"." else os.fsencode(ctx.src)
        e = {}
        try:
            e["path"] = p.decode("utf-8")
        except UnicodeDecodeError:
            e["path_b64"] = base64.b64encode(p).decode()
        e["ino"] = ino
        tv = tset.get(ino)
        if not os.path.lexists(src):
            if p != b"lost+found":
                die("%s: %r in the image but not in the source tree" % (ctx.name, p))
            e.update(type="dir", mode=stat.S_IFDIR | st_img["perm"], uid=st_img["uid"], gid=st_img["gid"],
                     size=st_img["size"], nlink=st_img["nlink"], source="mke2fs")
            e["xattrs"] = {}
        else:
            st = os.lstat(src)
            typ = S_TYPES[stat.S_IFMT(st.st_mode)]
            e.update(type=typ, mode=st.st_mode, uid=st.st_uid, gid=st.st_gid, nlink=st.st_nlink)
            if typ == "dir":
                e["size"] = st_img["size"]  # the host's directory size means nothing here
                if p == b".":
                    e["nlink"] += 1  # lost+found
            elif typ in ("file", "symlink"):
                e["size"] = st.st_size
            else:
                e["size"] = 0
            if typ == "file":
                segs = segments_of(src, st.st_size)
                if st.st_size <= MAX_HASHED:
                    e["sha256"] = sha256_file(src)
                if len(segs) != 1 or segs[0][0] != 0 or segs[0][1] != st.st_size:
                    e["segments"] = segs
            if typ == "symlink":
                target = os.readlink(src)
                if is_utf8(target):
                    e["target"] = target.decode()
                else:
                    e["target_b64"] = base64.b64encode(target).decode()
            if typ in ("char", "block"):
                e["rdev"] = [os.major(st.st_rdev), os.minor(st.st_rdev)]
            xa = {}
            for name in os.listxattr(src, follow_symlinks=False):
                xa[name] = base64.b64encode(os.getxattr(src, name, follow_symlinks=False)).decode()
            e["xattrs"] = dict(sorted(xa.items()))
        if tv is None:  # times copied by mke2fs from the source (seconds only) and its clock
            tv = {f: st_img["times"][f] for f in st_img["times"]}
            if e.get("source") != "mke2fs" and os.path.lexists(src):
                st = os.lstat(src)
                tv["a"], tv["m"], tv["c"] = (st.st_atime_ns // 10**9 * 10**9, st.st_mtime_ns // 10**9 * 10**9,
                                             st.st_ctime_ns // 10**9 * 10**9)
        # [seconds, nanoseconds]: nanoseconds since 1970 overflow int64 after 2262.
        e["atime"], e["mtime"], e["ctime"] = (list(divmod(tv[f], 10**9)) for f in ("a", "m", "c"))
        if has_crtime:
            e["crtime"] = list(divmod(tv["cr"], 10**9))
        entries.append(e)
    return entries


def is_utf8(b):
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def acl_disk_norm(v):
    """debugfs converts ACLs back to the xattr form but writes id 0 where the kernel writes -1."""
    if len(v) < 4 or struct.unpack_from("<I", v)[0] != 2:
        return v
    out = bytearray(v[:4])
    for i in range(4, len(v) - 7, 8):
        tag, perm, ident = struct.unpack_from("<HHI", v, i)
        out += struct.pack("<HHI", tag, perm, ident if tag in (2, 8) else 0)
    return bytes(out)


def cross_check(ctx, entries, stats, children):
    """Everything in the expectation must be what debugfs reads from the image."""
    problems = []
    by_ino_dumped = {}
    dump_cmds, ea_cmds = [], []
    for e in entries:
        ino = e["ino"]
        st = stats[ino]
        name = e.get("path") or e.get("path_b64")
        typ = TYPE_NAMES.get(st["typename"])
        if typ != e["type"]:
            problems.append("%s: type %s vs debugfs %s" % (name, e["type"], st["typename"]))
        for k, v in (("uid", st["uid"]), ("gid", st["gid"]), ("size", st["size"]), ("nlink", st["nlink"])):
            if e[k] != v:
                problems.append("%s: %s %r vs debugfs %r" % (name, k, e[k], v))
        if e["mode"] & 0o7777 != st["perm"]:
            problems.append("%s: mode %o vs debugfs %o" % (name, e["mode"] & 0o7777, st["perm"]))
        for f in ("a", "m", "c", "cr"):
            key = f + "time"
            got = st["times"].get(f)
            if key in e and (got is None or list(divmod(got, 10**9)) != e[key]):
                problems.append("%s: %s %r vs debugfs %r" % (name, key, e[key], got))
        if "crtime" not in e and "cr" in st["times"]:
            problems.append("%s: debugfs shows a crtime the expectation lacks" % name)
        if e.get("rdev") != st["rdev"] and not (e["type"] not in ("char", "block") and st["rdev"] is None):
            problems.append("%s: rdev %r vs debugfs %r" % (name, e.get("rdev"), st["rdev"]))
        if e["type"] == "symlink":
            if st["fast_target"] is not None:
                if st["fast_target"] != e.get("target"):
                    problems.append("%s: target %r vs debugfs %r" % (name, e.get("target"), st["fast_target"]))
            else:
                dump_cmds.append((e, "dump <%d> %s/dump%d" % (ino, ctx.work, ino)))
        if e["type"] == "file" and e["size"] <= MAX_HASHED and ino not in by_ino_dumped:
            by_ino_dumped[ino] = True
            dump_cmds.append((e, "dump <%d> %s/dump%d" % (ino, ctx.work, ino)))
        ea_cmds.append((e, "ea_list <%d>" % ino))
    # contents
    if dump_cmds:
        ctx.debugfs([c for _, c in dump_cmds])
        for e, c in dump_cmds:
            out = c.split(" ")[2]
            with open(out, "rb") as f:
                data = f.read()
            os.unlink(out)
            if stats[e["ino"]]["inline"]:
                data = data[:e["size"]]  # debugfs 1.47.0 dumps all 60 bytes of i_block for inline files
            if e["type"] == "symlink":
                want = e["target"].encode() if "target" in e else base64.b64decode(e["target_b64"])
                if data != want:
                    problems.append("%s: slow symlink target differs from debugfs dump" % e.get("path"))
            elif hashlib.sha256(data).hexdigest() != e["sha256"]:
                problems.append("%s: content differs from debugfs dump" % (e.get("path") or e.get("path_b64")))
    # xattrs: names from ea_list, values from ea_get -f
    out = ctx.debugfs([c for _, c in ea_cmds])
    parts = re.split(r"^debugfs: ea_list <\d+>\n", out, flags=re.M)[1:]
    get_cmds = []
    for (e, _), part in zip(ea_cmds, parts):
        names = re.findall(r"^  (\S+) \((\d+)\)", part, re.M)
        # ea_list shows the on-disk length; ACLs are shorter on disk than in the xattr form.
        got = {n: -1 if n.startswith("system.posix_acl_") else int(l) for n, l in names if n != "system.data"}
        want = {n: -1 if n.startswith("system.posix_acl_") else len(base64.b64decode(v))
                for n, v in e["xattrs"].items()}
        if got != want:
            problems.append("%s: xattrs %r vs debugfs %r" % (e.get("path"), want, got))
            continue
        for n in want:
            get_cmds.append((e, n, "ea_get -f %s/ea%d <%d> %s" % (ctx.work, len(get_cmds), e["ino"], n)))
    if get_cmds:
        ctx.debugfs([c for _, _, c in get_cmds])
        for e, n, c in get_cmds:
            fn = c.split(" ")[2]
            with open(fn, "rb") as f:
                got = f.read()
            os.unlink(fn)
            want = base64.b64decode(e["xattrs"][n])
            if n.startswith("system.posix_acl_"):
                want = acl_disk_norm(want)
            if got != want:
                problems.append("%s: xattr %s value differs from debugfs ea_get" % (e.get("path"), n))
    if problems:
        die("%s: expectation and debugfs disagree:\n  %s" % (ctx.name, "\n  ".join(problems[:40])))


def run_checks(ctx, stats, paths):
    """Assert the image has the structures this fixture exists to cover."""
    for c in ctx.spec.get("checks", []):
        kind, _, arg = c.partition(":")
        if kind in ("htree", "inline", "noinline"):
            st = stats[paths[arg.encode()]]
            if kind == "htree" and not st["flags"] & 0x1000:
                die("%s: %s is not an htree directory (flags %#x)" % (ctx.name, arg, st["flags"]))
            ctx.facts.setdefault(kind, []).append(arg)
            if kind == "inline" and not (st["flags"] & 0x10000000 and st["inline"]):
                die("%s: %s has no inline data" % (ctx.name, arg))
            if kind == "noinline" and st["flags"] & 0x10000000:
                die("%s: %s is inline" % (ctx.name, arg))
        elif kind == "xattr_block":
            st = stats[paths[arg.encode()]]
            if not st["file_acl"]:
                die("%s: %s has no external xattr block" % (ctx.name, arg))
            ctx.facts.setdefault(kind, []).append(arg)
        elif kind == "htree_levels":
            d, _, lv = arg.partition(":")
            out = ctx.debugfs(["htree " + d])
            m = re.search(r"Indirect levels: (\d+)", out)
            if not m or int(m.group(1)) + 1 < int(lv):
                die("%s: %s htree has %s index levels, want %s" % (ctx.name, d, m and int(m.group(1)) + 1, lv))
            ctx.facts.setdefault("htree_levels", {})[d] = int(m.group(1)) + 1
        elif kind in ("fast_symlink", "slow_symlink"):
            st = stats[paths[arg.encode()]]
            if (st["fast_target"] is not None) != (kind == "fast_symlink"):
                die("%s: %s is not a %s" % (ctx.name, arg, kind))
            ctx.facts.setdefault(kind, []).append(arg)
        elif kind == "blocks":
            f, _, what = arg.partition(":")
            out = ctx.debugfs(["stat " + f])
            if "(%s)" % what not in out:
                die("%s: %s has no %s block" % (ctx.name, f, what))
            ctx.facts.setdefault("indirect", {})[f] = what
        elif kind == "max_ino_over":
            if max(paths.values()) <= int(arg):
                die("%s: highest inode %d, want > %s" % (ctx.name, max(paths.values()), arg))
            ctx.facts["max_ino"] = max(paths.values())
        elif kind == "ea_inodes":
            used = ctx.run(["dumpe2fs", "-h", ctx.img]).stdout.decode()
            count = int(re.search(r"^Inode count:\s*(\d+)", used, re.M).group(1))
            free = int(re.search(r"^Free inodes:\s*(\d+)", used, re.M).group(1))
            first = 11
            nea = (count - free) - (first - 1) - len(set(paths.values()) - {2})
            if nea < int(arg):
                die("%s: %d xattr inodes, want >= %s" % (ctx.name, nea, arg))
            ctx.facts["ea_inodes"] = nea
        else:
            die("unknown check " + c)


def build(spec, outdir, compress):
    name = spec["name"]
    work = tempfile.mkdtemp(prefix="make-ext4-%s-" % name, dir=os.environ.get("TMPDIR", "/tmp"))
    ctx = Ctx(spec, work, outdir)
    try:
        spec["build"](ctx.tree, spec)
        if spec["times"] in ("ns", "s32"):
            build_times_tree(ctx.tree)
        mkfs(ctx)
        if spec.get("post"):
            spec["post"](ctx)
        if spec.get("fsck_d"):
            ctx.run(["e2fsck", "-fyD", ctx.img], ok=(0, 1))
        if spec.get("post_fsck"):
            spec["post_fsck"](ctx)
        feats, bs, isz = dumpe2fs_features(ctx)
        has_extra = isz > 128
        has_crtime = isz > 128
        paths, children = list_image(ctx)
        # The image's names must be exactly the source tree's (plus lost+found).
        for dpath, names in children.items():
            if dpath == b"lost+found":
                continue
            sdir = os.fsencode(ctx.src) if dpath == b"." else os.path.join(os.fsencode(ctx.src), dpath)
            want = sorted(os.listdir(sdir) + ([b"lost+found"] if dpath == b"." else []))
            if want != names:
                die("%s: %r: image has %r, source %r" % (name, dpath, names[:10], want[:10]))
        tset = set_times(ctx, paths, has_extra, has_crtime) if spec["times"] != "source" else {}
        r = ctx.run(["e2fsck", "-fn", ctx.img], ok=(0, 4, 8))
        if r.returncode:
            die("%s: e2fsck -fn is not clean:\n%s" % (name, r.stdout.decode()))
        inos = sorted(set(paths.values()))
        out = ctx.debugfs(["stat <%d>" % i for i in inos])
        parts = re.split(r"^debugfs: stat <\d+>\n", out, flags=re.M)[1:]
        stats = {i: parse_stat(p) for i, p in zip(inos, parts)}
        entries = expect_entries(ctx, paths, stats, tset, has_crtime)
        cross_check(ctx, entries, stats, children)
        run_checks(ctx, stats, paths)
        doc = {
            "name": name,
            "generator": "testdata/images/ext4/make-ext4.py",
            "e2fsprogs": ctx.run(["mke2fs", "-V"]).stderr.decode().splitlines()[0].strip(),
            "mkfs": ctx.facts.pop("mkfs"),
            "block_size": bs,
            "inode_size": isz,
            "features": feats,
            "facts": ctx.facts,
            "entries": entries,
        }
        os.makedirs(outdir, exist_ok=True)
        # One entry per line keeps diffs of a regenerated expectation readable.
        head = json.dumps({k: v for k, v in doc.items() if k != "entries"}, separators=(",", ":"))
        text = head[:-1] + ',"entries":[\n' + ",\n".join(
            json.dumps(e, separators=(",", ":"), ensure_ascii=False) for e in entries) + "\n]}\n"
        jpath = os.path.join(outdir, name + ".json")
        for old in (jpath, jpath + ".zst"):
            if os.path.exists(old):
                os.unlink(old)
        with open(jpath, "w", encoding="utf-8") as f:
            f.write(text)
        if compress and len(text) > 64 << 10:
            ctx.run(["zstd", "-q", "-f", "-19", "--rm", "-o", jpath + ".zst", jpath])
        if compress:
            dst = os.path.join(outdir, name + ".img.zst")
            ctx.run(["zstd", "-q", "-f", "-19", "--long=27", "-o", dst, ctx.img])
        else:
            shutil.move(ctx.img, os.path.join(outdir, name + ".img"))
        print("make-ext4: %s: %d entries, features %s" % (name, len(entries), " ".join(feats)), file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if getattr(ctx, "shm_dir", None):
            shutil.rmtree(ctx.shm_dir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-o", "--out", default=HERE, help="output directory (default: beside this script)")
    ap.add_argument("--no-compress", action="store_true", help="write NAME.img instead of NAME.img.zst")
    ap.add_argument("--list", action="store_true", help="list the image names and exit")
    ap.add_argument("names", nargs="*")
    a = ap.parse_args()
    if a.list:
        for s in SPECS:
            print(s["name"], "committed" if s["committed"] else "test-time")
        return
    if os.geteuid() != 0:
        die("must run as root (chown, mknod, trusted.* xattrs in the source tree)")
    for tool in ("mke2fs", "debugfs", "e2fsck", "dumpe2fs") + (() if a.no_compress else ("zstd",)):
        if not shutil.which(tool):
            die("%s not found (install e2fsprogs and zstd)" % tool)
    names = a.names or [s["name"] for s in SPECS if s["committed"]]
    for n in names:
        if n not in SPEC_BY_NAME:
            die("unknown image %s (have %s)" % (n, ", ".join(SPEC_BY_NAME)))
    for n in names:
        build(SPEC_BY_NAME[n], a.out, not a.no_compress)


if __name__ == "__main__":
    main()
