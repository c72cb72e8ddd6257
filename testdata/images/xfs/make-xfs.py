#!/usr/bin/env python3
"""Build XFS test images with the real xfsprogs tools and the kernel, and record what they hold.

v5 images: mkfs.xfs, then a loop mount (read-write) where this script writes the tree with
ordinary system calls (files, holes, fallocate, reflinks, hardlinks, device nodes, sockets,
xattrs, ACLs, times), then a read-only remount from which the expectation is read back with
lstat/statx, listxattr/getxattr, SEEK_DATA/SEEK_HOLE and file reads: the kernel is the oracle.
v4 images (crc=0): the kernel no longer mounts them, so they are made by `mkfs.xfs -p`
(a protofile) plus `xfs_db -x attr_set`; the expectation comes from the source tree, the
protofile and `xfs_db` (inode numbers and times).
Every image must pass `xfs_repair -n`. Structural facts (directory and attribute forms, bmbt
height, log state) are asserted with `xfs_db` and recorded under "facts".
Nothing here uses ctrlift's own reader.

Usage: make-xfs.py [-o OUTDIR] [--no-compress] [--list] [NAME ...]
Needs root (mount, chown, mknod, trusted.* xattrs), xfsprogs (mkfs.xfs, xfs_db, xfs_io,
xfs_repair), attr/acl tools are not needed (xattrs are set with os.setxattr), zstd.
"""

import argparse
import base64
import ctypes
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
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_HASHED = 64 << 20  # larger files are described by data segments only
KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30


def die(msg):
    sys.exit("make-xfs: " + msg)


def run(*cmd, env=None, check=True, quiet=False):
    p = subprocess.run([str(c) for c in cmd], capture_output=True, env=env)
    if check and p.returncode != 0:
        die("%s failed (%d):\n%s%s" % (" ".join(map(str, cmd)), p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")))
    return p.stdout.decode(errors="surrogateescape")


def xfs_db(img, *cmds, write=False):
    args = ["xfs_db", "-x" if write else "-r"]
    for c in cmds:
        args += ["-c", c]
    return run(*args, img, env=dict(os.environ, TZ="UTC", LC_ALL="C"))


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


def h64(*parts):
    return int.from_bytes(hashlib.sha256("\0".join(str(p) for p in parts).encode("utf-8", "surrogateescape")).digest()[:8], "little")


def acl(entries):
    """system.posix_acl_* value as the kernel's getxattr returns it (version 2)."""
    order = {1: 0, 2: 1, 4: 2, 8: 3, 0x10: 4, 0x20: 5}
    entries = sorted(entries, key=lambda e: (order[e[0]], e[2] if e[0] in (2, 8) else 0))
    return struct.pack("<I", 2) + b"".join(
        struct.pack("<HHI", tag, perm, ident if tag in (2, 8) else 0xFFFFFFFF) for tag, perm, ident in entries)


ACL_USER_OBJ, ACL_USER, ACL_GROUP_OBJ, ACL_GROUP, ACL_MASK, ACL_OTHER = 1, 2, 4, 8, 0x10, 0x20


def cap_v2(permitted):
    return struct.pack("<IIIII", 0x02000001, permitted & 0xFFFFFFFF, 0, permitted >> 32, 0)


FICLONE = 0x40049409
FICLONERANGE = 0x4020940D


def reflink(src, dst):
    import fcntl
    with open(src, "rb") as s, open(dst, "wb") as d:
        fcntl.ioctl(d.fileno(), FICLONE, s.fileno())


def reflink_range(src, src_off, length, dst, dst_off):
    import fcntl
    with open(src, "rb") as s, open(dst, "r+b") as d:
        fcntl.ioctl(d.fileno(), FICLONERANGE, struct.pack("=qQQQ", s.fileno(), src_off, length, dst_off))


_libc = ctypes.CDLL(None, use_errno=True)


def fallocate(fd, off, length, keep_size=False):
    mode = 1 if keep_size else 0  # FALLOC_FL_KEEP_SIZE
    if _libc.fallocate(fd, mode, ctypes.c_longlong(off), ctypes.c_longlong(length)) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def statx_btime(path):
    """Birth time from statx(2), or None: Python's os.stat does not give it on Linux."""
    buf = ctypes.create_string_buffer(256)
    AT_FDCWD, AT_SYMLINK_NOFOLLOW, STATX_BTIME = -100, 0x100, 0x800
    if _libc.statx(AT_FDCWD, os.fsencode(path), AT_SYMLINK_NOFOLLOW, 0x7FF | STATX_BTIME, buf) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), path)
    mask = struct.unpack_from("<I", buf, 0)[0]
    if not mask & STATX_BTIME:
        return None
    sec, nsec = struct.unpack_from("<qI", buf, 0x50)
    return [sec, nsec]


# ---------------------------------------------------------------- the tree (v5, on the mounted filesystem)


class Tree:
    def __init__(self, root, bs):
        self.root, self.bs = root, bs

    def p(self, rel):
        if isinstance(rel, bytes):
            return os.path.join(os.fsencode(self.root), rel)
        return os.path.join(self.root, rel)

    def mkdir(self, rel, mode=0o755, uid=0, gid=0, xattrs=None):
        path = self.p(rel)
        os.makedirs(path, exist_ok=True)
        self.meta(path, mode, uid, gid, xattrs)
        return path

    def file(self, rel, data=b"", mode=0o644, uid=0, gid=0, xattrs=None):
        path = self.p(rel)
        with open(path, "wb") as f:
            f.write(data)
        self.meta(path, mode, uid, gid, xattrs)
        return path

    def sparse(self, rel, size, segments):
        path = self.p(rel)
        with open(path, "wb") as f:
            for off, data in segments:
                f.seek(off)
                f.write(data)
            f.truncate(size)
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
            os.chdir(parent)
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.bind(name)
                s.close()
            finally:
                os.chdir(cwd)
        else:
            fmt = {"fifo": stat.S_IFIFO, "chr": stat.S_IFCHR, "blk": stat.S_IFBLK}[kind]
            os.mknod(path, fmt | mode, os.makedev(major, minor))
        self.meta(path, mode, uid, gid, xattrs)
        return path

    def meta(self, path, mode, uid, gid, xattrs):
        os.chown(path, uid, gid)
        os.chmod(path, mode)
        for k, v in (xattrs or {}).items():
            os.setxattr(path, k, v)


def build_common(t, spec):
    """Every file type, owner, mode, name, size, hole, link and xattr form."""
    bs = t.bs
    t.mkdir("types")
    t.file("types/regular", pattern("types/regular", 100))
    t.file("types/empty", b"")
    t.node("types/fifo", "fifo", 0o644)
    t.node("types/socket", "sock", 0o755)
    t.node("types/chr-null", "chr", 0o666, 1, 3)
    t.node("types/chr-big", "chr", 0o600, 300, 70000)
    t.node("types/blk-sda1", "blk", 0o660, 8, 1, gid=6)
    t.node("types/blk-max", "blk", 0o600, 511, 262143)  # the most XFS keeps: 9-bit major, 18-bit minor
    t.node("types/whiteout", "chr", 0o000, 0, 0)
    t.mkdir("types/dir")

    t.mkdir("modes")
    for name, mode in [("setuid", 0o4755), ("setgid", 0o2755), ("sticky-dir", 0o1777), ("none", 0o000),
                       ("all", 0o7777), ("odd", 0o4517)]:
        if name.endswith("-dir"):
            t.mkdir("modes/" + name, mode)
        else:
            t.file("modes/" + name, pattern(name, 10), mode)
    t.mkdir("owners")
    for name, uid, gid in [("root", 0, 0), ("user", 1000, 1000), ("big", 65536, 65537), ("huge", 4000000000, 3999999999)]:
        t.file("owners/" + name, name.encode(), 0o640, uid, gid)

    t.mkdir("names")
    t.file("names/héllo-wörld-日本", b"utf8")
    t.file("names/" + "n" * 255, b"longest name")
    t.file(b"names/bad-\xff\xfe-latin1-\xe9", b"not utf-8")
    t.file("names/with space and\ttab", b"ws")
    t.file("names/.hidden", b"dot")
    t.file("names/..dots", b"dots")
    d = "deep"
    for i in range(20):
        d += "/d%02d" % i
    t.mkdir(d)
    t.file(d + "/bottom", b"bottom")

    t.mkdir("sizes")
    for n in [1, 2, 511, 512, bs - 1, bs, bs + 1, 3 * bs + 7, 100000]:
        t.file("sizes/%d" % n, pattern("sizes/%d" % n, n))

    t.mkdir("sparse")
    t.sparse("sparse/hole-start", 1 * MiB + 100, [(1 * MiB, pattern("hs", 100))])
    t.sparse("sparse/hole-middle", 3 * MiB, [(0, pattern("hm0", 64 * KiB)), (2 * MiB, pattern("hm1", 128 * KiB))])
    t.sparse("sparse/hole-end", 8 * MiB, [(0, pattern("he", 10000))])
    t.sparse("sparse/all-hole", 16 * MiB, [])
    t.sparse("sparse/beyond-4g", 5 * GiB, [(4 * GiB + 12345, pattern("4g", 3 * bs))])

    # Unwritten extents: allocated, never written, read as zeros; and space
    # allocated past EOF (FALLOC_FL_KEEP_SIZE).
    t.mkdir("unwritten")
    with open(t.p("unwritten/prealloc"), "wb") as f:
        fallocate(f.fileno(), 0, 64 * bs)
        f.seek(16 * bs)
        f.write(pattern("uw", 3 * bs))
    with open(t.p("unwritten/keep-size"), "wb") as f:
        f.write(pattern("ks", 5000))
        fallocate(f.fileno(), 0, 256 * KiB, keep_size=True)
    with open(t.p("unwritten/all"), "wb") as f:
        fallocate(f.fileno(), 0, 32 * bs)

    if spec.get("reflink", True):
        t.mkdir("reflink")
        orig = t.file("reflink/orig", pattern("reflink", 16 * bs))
        reflink(orig, t.p("reflink/clone"))
        reflink(orig, t.p("reflink/clone-cow"))
        with open(t.p("reflink/clone-cow"), "r+b") as f:  # copy-on-write of one block
            f.seek(5 * bs)
            f.write(b"C" * bs)
        t.file("reflink/partial", pattern("partial", 16 * bs))
        reflink_range(orig, 8 * bs, 4 * bs, t.p("reflink/partial"), 2 * bs)
        t.file("reflink/self", pattern("self", 8 * bs))
        reflink_range(t.p("reflink/self"), 0, 2 * bs, t.p("reflink/self"), 4 * bs)

    t.mkdir("links")
    t.file("links/a", pattern("links/a", 3000))
    os.link(t.p("links/a"), t.p("links/b"))
    os.link(t.p("links/a"), t.p("links/c"))
    t.mkdir("links/sub")
    os.link(t.p("links/a"), t.p("links/sub/d"))

    t.mkdir("symlinks")
    t.symlink("symlinks/short", "target")
    t.symlink("symlinks/abs", "/etc/passwd")
    t.symlink("symlinks/dir", "../types/dir")
    t.symlink("symlinks/dangling", "nowhere/at/all")
    t.symlink("symlinks/loop1", "loop2")
    t.symlink("symlinks/loop2", "loop1")
    for n in (200, 300, 400, 1000, 1023):
        target = ("s%d/" % n + "x" * n)[:n]
        t.symlink("symlinks/len-%d" % n, target)
    t.symlink(b"symlinks/bad-target", b"\xff\xfe/non-utf8")
    t.symlink("symlinks/with-xattr", "target", xattrs={"trusted.overlay.origin": b"\x00\xfb"})

    build_xattrs(t, spec)


def build_xattrs(t, spec):
    bs = t.bs
    t.mkdir("xattr")
    t.file("xattr/small", b"x", xattrs={"user.a": b"1"})
    t.file("xattr/empty-value", b"x", xattrs={"user.empty": b""})
    t.file("xattr/binary", b"x", xattrs={"user.bin": bytes(range(256))})
    t.mkdir("xattr/overlay", xattrs={"trusted.overlay.opaque": b"y", "trusted.overlay.redirect": b"/a/b"})
    t.file("xattr/cap", b"\x7fELF", 0o755, xattrs={"security.capability": cap_v2(1 << 10 | 1 << 12),
                                                    "security.selinux": b"system_u:object_r:bin_t:s0\x00"})
    t.file("xattr/acl", b"x", 0o640, xattrs={"system.posix_acl_access": acl(
        [(ACL_USER_OBJ, 6, 0), (ACL_USER, 6, 1000), (ACL_USER, 4, 4000000000), (ACL_GROUP_OBJ, 4, 0),
         (ACL_GROUP, 2, 50), (ACL_MASK, 6, 0), (ACL_OTHER, 0, 0)])})
    t.mkdir("xattr/acl-dir", 0o750, xattrs={
        "system.posix_acl_access": acl([(ACL_USER_OBJ, 7, 0), (ACL_USER, 5, 33), (ACL_GROUP_OBJ, 5, 0), (ACL_MASK, 5, 0), (ACL_OTHER, 0, 0)]),
        "system.posix_acl_default": acl([(ACL_USER_OBJ, 7, 0), (ACL_GROUP_OBJ, 5, 0), (ACL_GROUP, 7, 1000), (ACL_MASK, 7, 0), (ACL_OTHER, 5, 0)])})
    t.node("xattr/fifo", "fifo", 0o600, xattrs={"trusted.on-fifo": b"p"})
    # Leaf: more than the inode holds, less than a block.
    t.file("xattr/leaf", b"x", xattrs={"user.leaf%02d" % i: pattern("lf%d" % i, 60) for i in range(12 if bs >= 4096 else 7)})
    # Node: several leaf blocks under a dabtree node.
    n_node = max(40, 8 * bs // 100)
    t.file("xattr/node", b"x", xattrs={"user.node%04d" % i: pattern("nd%d" % i, 90) for i in range(n_node)})
    # Remote values: one bigger than 3/4 of a block, and the 64 KiB maximum.
    t.file("xattr/remote", b"x", xattrs={"user.remote": pattern("rv", bs), "user.max": pattern("max", 65536),
                                         "trusted.small": b"s", "security.mid": pattern("mid", 2000)})
    # Btree: remote values allocated alternately for two files, so each
    # attribute fork has more extents than the inode can list.
    a, b = t.file("xattr/btree-a", b"a"), t.file("xattr/btree-b", b"b")
    for i in range(48):
        for path, tag in ((a, "a"), (b, "b")):
            os.setxattr(path, "user.r%03d" % i, pattern("bt%s%d" % (tag, i), bs + 100))
    # Many names in every namespace on one directory.
    d = t.mkdir("xattr/namespaces")
    for i in range(10):
        os.setxattr(d, "user.u%d" % i, b"u" * i)
        os.setxattr(d, "trusted.t%d" % i, b"t" * i)
        os.setxattr(d, "security.s%d" % i, b"s" * i)


def build_dirs(t, spec):
    """Directories of every form; counts are tuned per directory block size and the forms
    asserted with xfs_db. The names are hardlinks of one file (only the directory grows, which
    keeps the images small), plus a subdirectory and a symlink for the other file types."""
    t.mkdir("dirs")
    for name, count in spec["dirs"].items():
        d = t.mkdir("dirs/" + name)
        first = t.file("dirs/%s/%s" % (name, DIR_ENTRY_FMT % 0), b"entry\n")
        for i in range(1, count):
            os.link(first, os.path.join(d, DIR_ENTRY_FMT % i))
        if count > 2:
            t.mkdir("dirs/%s/sub" % name)
            t.symlink("dirs/%s/sym" % name, "entry")


DIR_ENTRY_FMT = "entry-%05d"


def build_frag(t, spec):
    """A file whose extent map is a B+tree: every other block written inside a preallocation,
    so written and unwritten extents alternate (adjacent records of one state would merge)."""
    t.mkdir("frag")
    n = spec["frag_blocks"]
    bs = t.bs
    path = t.p("frag/alternating")
    with open(path, "wb") as f:
        fallocate(f.fileno(), 0, n * bs)
        for i in range(0, n, 2):
            f.seek(i * bs)
            f.write(("frag block %08d|" % i).encode())  # the rest of the block stays zero
    return "frag/alternating"


def build_bigdir(t, spec):
    """One directory of many names, all hardlinks of one file: only the directory grows."""
    t.mkdir("big")
    first = t.file("big/" + spec["bigdir_fmt"] % 0, b"one inode\n")
    for i in range(1, spec["bigdir_count"]):
        os.link(first, t.p("big/" + spec["bigdir_fmt"] % i))


def build_seed(t):
    """A small tree with one of each structure, for the fuzz tests' seed image."""
    bs = t.bs
    t.file("regular", pattern("regular", 3000))
    os.link(t.p("regular"), t.p("hardlink"))
    t.file("empty", b"")
    t.node("fifo", "fifo", 0o644)
    t.node("chr", "chr", 0o600, 300, 70000)
    t.symlink("short", "target")
    t.symlink("long", ("long/" + "z" * 1000)[:1000])
    t.sparse("sparse", 64 * KiB, [(40 * KiB, pattern("sp", 2000))])
    t.mkdir("sf")
    t.file("sf/a", b"a")
    t.mkdir("block")
    first = t.file("block/entry-00000", b"e")
    for i in range(1, 40):
        os.link(first, t.p("block/entry-%05d" % i))
    t.mkdir("leaf")
    first = t.file("leaf/entry-00000", b"e")
    for i in range(1, 300):
        os.link(first, t.p("leaf/entry-%05d" % i))
    t.file("x-sf", b"x", xattrs={"user.a": b"1", "trusted.overlay.opaque": b"y"})
    t.file("x-leaf", b"x", xattrs={"user.leaf%02d" % i: pattern("lf%d" % i, 60) for i in range(7)})
    t.file("x-node", b"x", xattrs={"user.node%03d" % i: pattern("nd%d" % i, 90) for i in range(30)})
    t.file("x-remote", b"x", xattrs={"user.remote": pattern("rv", 2000), "security.capability": cap_v2(1 << 12)})
    t.file("x-acl", b"x", xattrs={"system.posix_acl_access": acl(
        [(ACL_USER_OBJ, 6, 0), (ACL_USER, 6, 1000), (ACL_GROUP_OBJ, 4, 0), (ACL_MASK, 6, 0), (ACL_OTHER, 0, 0)])})
    spec = {"frag_blocks": 200}
    build_frag(t, spec)


def set_times(root, seed):
    """atime and mtime with nanoseconds for every path, children first (touching a child
    changes its directory's mtime). Some are before 1970 and after 2038."""
    rootb = os.fsencode(root)
    specials = {b"times/pre-1970": -123456789, b"times/y2038": (1 << 31) - 1, b"times/after-2038": (1 << 31) + 86400,
                b"times/y2100": 4102444800 + 7}
    paths = []
    for dirpath, dirnames, filenames in os.walk(rootb):
        for n in dirnames + filenames:
            paths.append(os.path.join(dirpath, n))
    paths.sort(key=lambda p: -p.count(b"/"))
    for p in paths + [rootb]:
        rel = os.path.relpath(p, rootb)
        h = h64(seed, rel)
        sec = specials.get(rel, 1500000000 + h % 200000000)
        a = (1600000000 + (h >> 20) % 100000000) * 10**9 + (h >> 3) % 10**9
        m = sec * 10**9 + h % 10**9
        os.utime(p, ns=(a, m), follow_symlinks=False)


# ---------------------------------------------------------------- expectations from the mounted filesystem


def segments_of(path, size):
    """Data ranges by SEEK_DATA/SEEK_HOLE, all found before any read: XFS counts an unwritten
    extent as data once its pages are cached, and reading (readahead) caches them."""
    ranges = []
    with open(path, "rb") as f:
        fd = f.fileno()
        off = 0
        while off < size:
            try:
                start = os.lseek(fd, off, os.SEEK_DATA)
            except OSError as e:
                if e.errno == errno.ENXIO:
                    break
                raise
            end = os.lseek(fd, start, os.SEEK_HOLE)
            ranges.append((start, end))
            off = end
        segs = []
        for start, end in ranges:
            f.seek(start)
            hs = hashlib.sha256()
            left = end - start
            while left:
                b = f.read(min(left, 1 << 20))
                hs.update(b)
                left -= len(b)
            segs.append([start, end - start, hs.hexdigest()])
    return segs


def collect(root, skip=()):
    """The expectation, read back through the kernel from the read-only mount."""
    rootb = os.fsencode(root)
    entries = []
    by_ino = {}  # content facts of inodes already read (hardlinks)

    def ts(sec_ns):
        return [sec_ns // 10**9, sec_ns % 10**9]

    def add(p):
        rel = os.path.relpath(p, rootb) if p != rootb else b"."
        if rel in skip:
            return
        st = os.lstat(p)
        e = {}
        try:
            e["path"] = rel.decode("utf-8")
        except UnicodeDecodeError:
            e["path_b64"] = base64.b64encode(rel).decode()
        e["ino"] = st.st_ino
        fmt = stat.S_IFMT(st.st_mode)
        e["type"] = {stat.S_IFREG: "file", stat.S_IFDIR: "dir", stat.S_IFLNK: "symlink", stat.S_IFCHR: "char",
                     stat.S_IFBLK: "block", stat.S_IFIFO: "fifo", stat.S_IFSOCK: "socket"}[fmt]
        e["mode"] = st.st_mode
        e["uid"], e["gid"], e["nlink"], e["size"] = st.st_uid, st.st_gid, st.st_nlink, st.st_size
        if fmt == stat.S_IFREG and st.st_ino in by_ino:
            e.update(by_ino[st.st_ino])
        elif fmt == stat.S_IFREG:
            c = {}
            segs = segments_of(p, st.st_size)
            if st.st_size <= MAX_HASHED:
                with open(p, "rb") as f:
                    c["sha256"] = hashlib.sha256(f.read()).hexdigest()
            if st.st_blocks * 512 < st.st_size or len(segs) != 1 or (segs and segs[0][1] != st.st_size):
                if len(segs) > 64:  # the whole-file hash covers the bytes; keep the fixture small
                    segs = [[o, n, ""] for o, n, _ in segs]
                c["segments"] = segs
            by_ino[st.st_ino] = c
            e.update(c)
        if fmt == stat.S_IFLNK:
            tgt = os.readlink(p)
            try:
                e["target"] = tgt.decode("utf-8")
            except UnicodeDecodeError:
                e["target_b64"] = base64.b64encode(tgt).decode()
        if fmt in (stat.S_IFCHR, stat.S_IFBLK):
            e["rdev"] = [os.major(st.st_rdev), os.minor(st.st_rdev)]
        xs = {}
        for k in os.listxattr(p, follow_symlinks=False):
            if k.startswith("trusted.SGI_ACL_"):
                continue  # the storage of system.posix_acl_*; see README.md
            xs[k] = base64.b64encode(os.getxattr(p, k, follow_symlinks=False)).decode()
        if xs:
            e["xattrs"] = dict(sorted(xs.items()))
        e["atime"], e["mtime"], e["ctime"] = ts(st.st_atime_ns), ts(st.st_mtime_ns), ts(st.st_ctime_ns)
        bt = statx_btime(p)
        if bt is not None:
            e["crtime"] = bt
        entries.append(e)

    def walk(d):
        add(d)
        with os.scandir(d) as it:
            kids = sorted(it, key=lambda x: x.name)
        for k in kids:
            if k.is_dir(follow_symlinks=False):
                walk(k.path)
            else:
                add(k.path)

    walk(rootb)
    entries.sort(key=lambda e: e.get("path", "") or base64.b64decode(e["path_b64"]).decode("latin-1"))
    return entries


# ---------------------------------------------------------------- facts from xfs_db


def db_inode(img, ino, *fields):
    out = xfs_db(img, "inode %d" % ino, *["print %s" % f for f in fields])
    vals = {}
    for line in out.splitlines():
        m = re.match(r"^(\S+) = (.*)$", line)
        if m:
            vals[m.group(1)] = m.group(2)
    return vals


def fmt_num(v):
    return int(v.split()[0], 0)


def dir_form(img, ino, dirblk, bs):
    v = db_inode(img, ino, "core.format", "core.size")
    fmt, size = fmt_num(v["core.format"]), int(v["core.size"])
    if fmt == 1:
        return "shortform"
    if fmt == 3:
        return "btree"
    offs = [int(m) for m in re.findall(r"data offset (\d+)", xfs_db(img, "inode %d" % ino, "bmap"))]
    leaf_off, free_off = (32 * GiB) // bs, (64 * GiB) // bs
    if max(offs) < leaf_off and size == dirblk:
        return "block"
    if any(o >= free_off for o in offs):
        return "node"
    return "leaf"


def attr_form(img, ino):
    v = db_inode(img, ino, "core.aformat", "core.forkoff", "core.naextents")
    if int(v["core.forkoff"]) == 0:
        return "none"
    fmt = fmt_num(v["core.aformat"])
    if fmt == 2 and int(v["core.naextents"]) == 0:
        return "none"
    if fmt == 1:
        return "shortform"
    if fmt == 3:
        return "btree"
    out = xfs_db(img, "inode %d" % ino, "ablock 0", "print")
    m = re.search(r"magic = (0x[0-9a-f]+)", out)
    if not m:
        return "none"
    return {0x3bee: "leaf", 0xfbee: "leaf", 0x3ebe: "node", 0xfebe: "node"}[int(m.group(1), 16)]


def bmbt_level(img, ino, v5):
    out = xfs_db(img, "inode %d" % ino, "print core.format", "print %s.bmbt.level" % ("u3" if v5 else "u"))
    m = re.search(r"bmbt.level = (\d+)", out)
    return int(m.group(1)) if m else 0


def gather_facts(img, spec, entries, v5):
    bs, dirblk = spec["bs"], spec.get("dirblk", max(4096, spec["bs"]))  # mkfs -n size, 4 KiB by default
    by_path = {e.get("path"): e for e in entries}
    facts = {"dir_forms": {}, "attr_forms": {}, "bmbt_levels": {}}
    for e in entries:
        if e["type"] == "dir" and "path" in e:
            facts["dir_forms"][e["path"]] = dir_form(img, e["ino"], dirblk, bs)
        if "path" in e and "xattrs" in e:
            f = attr_form(img, e["ino"])
            if f != "none":
                facts["attr_forms"][e["path"]] = f
    for p in spec.get("bmbt_files", []):
        facts["bmbt_levels"][p] = bmbt_level(img, by_path[p]["ino"], v5)
    for p, want in spec.get("want_dir_forms", {}).items():
        if facts["dir_forms"].get(p) != want:
            die("%s: %s is a %s directory, want %s" % (spec["name"], p, facts["dir_forms"].get(p), want))
    for p, want in spec.get("want_attr_forms", {}).items():
        if facts["attr_forms"].get(p) != want:
            die("%s: %s has %s attributes, want %s" % (spec["name"], p, facts["attr_forms"].get(p), want))
    for p, want in spec.get("want_bmbt_levels", {}).items():
        if facts["bmbt_levels"].get(p, 0) < want:
            die("%s: %s has a bmbt of level %s, want >= %d" % (spec["name"], p, facts["bmbt_levels"].get(p), want))
    return facts


# ---------------------------------------------------------------- image specs

DIRS_4K = {"sf": 4, "block": 40, "leaf": 300, "node": 800}
DIRS_1K = DIRS_4K  # directory blocks are 4 KiB whatever the block size

WANT_DIRS = {"dirs/sf": "shortform", "dirs/block": "block", "dirs/leaf": "leaf"}
WANT_ATTRS = {"xattr/small": "shortform", "xattr/leaf": "leaf", "xattr/node": "node",
              "xattr/btree-a": "btree", "xattr/remote": "leaf"}

SPECS = {
    "xfs-default": dict(
        desc="v5 defaults (crc, ftype, finobt, reflink, bigtime, inobtcount, sparse inodes), 4 KiB blocks",
        mkfs=[], bs=4096, size=96 * MiB, dirs=DIRS_4K, frag_blocks=400, bmbt_files=["frag/alternating"],
        want_dirs={**WANT_DIRS, "dirs/node": "node"}, want_bmbt={"frag/alternating": 1}),
    "xfs-1k": dict(
        desc="1 KiB blocks; a file whose bmbt has two levels below the inode root",
        mkfs=["-b", "size=1024"], bs=1024, size=64 * MiB, dirs=DIRS_1K, frag_blocks=6000,
        bmbt_files=["frag/alternating"], want_dirs=WANT_DIRS, want_bmbt={"frag/alternating": 2}),
    "xfs-nrext64": dict(
        desc="large extent counters (-i nrext64=1)", mkfs=["-i", "nrext64=1"], bs=4096, size=64 * MiB,
        dirs=DIRS_4K, frag_blocks=400, bmbt_files=["frag/alternating"], want_dirs=WANT_DIRS,
        want_bmbt={"frag/alternating": 1}),
    "xfs-rmapbt": dict(
        desc="rmapbt on, reflink, bigtime and inobtcount off (legacy 32-bit timestamps on v5)",
        mkfs=["-m", "rmapbt=1,reflink=0,bigtime=0,inobtcount=0", "-l", "size=8m"], bs=4096, size=64 * MiB, reflink=False,
        dirs=DIRS_4K, frag_blocks=400, bmbt_files=["frag/alternating"], want_dirs=WANT_DIRS,
        want_bmbt={"frag/alternating": 1}),
    "xfs-dir64k": dict(
        desc="64 KiB directory blocks (-n size=65536)", mkfs=["-n", "size=65536"], bs=4096, dirblk=65536,
        size=64 * MiB, dirs={"sf": 4, "block": 600, "leaf": 3000, "node": 12000}, minimal=True,
        want_dirs={**WANT_DIRS, "dirs/node": "node"}),
    "xfs-bigdir": dict(
        desc="a directory of 100,000 names (hardlinks of one file), in B+tree form",
        mkfs=[], bs=4096, size=64 * MiB, bigdir_count=100000, bigdir_fmt="f%06d", minimal=True,
        want_dirs={"big": "btree"}),
    "xfs-v4": dict(
        desc="v4 superblock (crc=0), no ftype, 1 KiB blocks, made with a protofile and xfs_db (the kernel no longer mounts v4)",
        mkfs=["-m", "crc=0", "-n", "ftype=0", "-b", "size=1024"], bs=1024, size=32 * MiB, v4=True),
    "xfs-seed": dict(
        desc="the fuzz tests' seed: 16 MiB, one AG, 1 KiB blocks, one of each structure (image/xfs/testdata)",
        mkfs=["-b", "size=1024", "-d", "agcount=1"], bs=1024, size=16 * MiB, seed=True, bmbt_files=["frag/alternating"],
        want_bmbt={"frag/alternating": 1}),
    "xfs-dirty": dict(
        desc="a dirty log: files created after the last checkpoint, then the filesystem shut down",
        mkfs=[], bs=4096, size=48 * MiB, dirty=True),
    "xfs-dirty-wrap": dict(
        desc="a dirty log whose last records wrap from the end of the log to its start",
        mkfs=[], bs=4096, size=48 * MiB, dirty="wrap"),
    "xfs-dirty-many": dict(
        desc="a dirty log holding most structures: 200 files synced, 300 more, every type, xattrs, "
             "directories of each form, a big directory, a bmbt file, renames and unlinks, then shut down",
        mkfs=[], bs=4096, size=256 * MiB, dirty="many", dirs=DIRS_4K, frag_blocks=400,
        bigdir_count=20000, bigdir_fmt="h%05d", want_dirs={"dirs/block": "block", "dirs/leaf": "leaf",
                                                           "dirs/node": "node", "big": "btree"},
        want_bmbt={"frag/alternating": 1}, bmbt_files=["frag/alternating"]),
}


def mkfs(img, spec, proto=None):
    with open(img, "wb") as f:
        f.truncate(spec["size"])
    uuid = "%08x-0000-4000-8000-%012x" % (h64(spec["name"]) & 0xFFFFFFFF, h64("uuid", spec["name"]) & 0xFFFFFFFFFFFF)
    args = ["mkfs.xfs", "-f", "-q", "--unsupported", "-L", spec["name"][:12], "-m", "uuid=" + uuid] + spec["mkfs"]
    if proto:
        args += ["-p", proto]
    run(*args, img)


class Mount:
    def __init__(self, img, ro=False):
        self.img, self.ro = img, ro

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="xfsmnt-")
        run("mount", "-t", "xfs", "-o", "loop" + (",ro" if self.ro else ""), self.img, self.dir)
        return self.dir

    def __exit__(self, *a):
        run("umount", self.dir)
        os.rmdir(self.dir)


def build_v5(img, spec):
    mkfs(img, spec)
    t_facts = {}
    with Mount(img) as root:
        t = Tree(root, spec["bs"])
        if spec.get("bigdir_count") and not spec.get("dirty"):
            build_bigdir(t, spec)
        elif spec.get("seed"):
            build_seed(t)
        elif spec.get("dirty") in ("many", "wrap"):
            t.mkdir("pre")
            t.file("pre/checkpointed", pattern("pre", 5000))
        elif spec.get("dirty"):
            t.mkdir("a")
            for i in range(20):
                t.file("a/f%02d" % i, pattern("a%d" % i, 1000 * i))
        else:
            if not spec.get("minimal"):
                build_common(t, spec)
                t.mkdir("times")
                for n in ("pre-1970", "y2038", "after-2038", "y2100"):
                    t.file("times/" + n, n.encode())
                if spec.get("frag_blocks"):
                    build_frag(t, spec)
            build_dirs(t, spec)
        set_times(root, spec["name"])
    run("xfs_repair", "-n", "-f", "-o", "force_geometry", img)
    with Mount(img, ro=True) as root:
        entries = collect(root)
    if spec.get("dirty"):
        # Phase two: changes logged but never written in place (XFS writes
        # metadata back lazily; sync only forces the log), then a shutdown
        # that leaves the log dirty, as a disk copied from a running node.
        checkpoint = entries
        with Mount(img) as root:
            t = Tree(root, spec["bs"])
            if spec["dirty"] == "many":
                build_dirty_many(t, spec)
                set_times(root, spec["name"])
            elif spec["dirty"] == "wrap":
                build_dirty_wrap(t, img, root)
            else:
                t.mkdir("b")
                for i in range(10):
                    t.file("b/g%02d" % i, pattern("b%d" % i, 3000))
                with open(t.p("a/f01"), "ab") as f:
                    f.write(b"appended after the checkpoint")
            os.sync()
            run("xfs_io", "-x", "-c", "shutdown -f", root)
        p = subprocess.run(["xfs_repair", "-n", "-f", img], capture_output=True, text=True)
        if p.returncode == 0 or "log" not in (p.stdout + p.stderr):
            die("%s: xfs_repair -n finds no dirty log:\n" % spec["name"] + p.stdout + p.stderr)
        # The expectation is the kernel's view after its own replay, read
        # from a copy (mounting replays the log into the copy).
        replayed = img + ".replayed"
        shutil.copyfile(img, replayed)
        with Mount(replayed):
            pass
        with Mount(replayed, ro=True) as root:
            entries = collect(root)
        t_facts["log"] = "dirty"
        if spec["dirty"] != "wrap":
            # (The churn writes much back in place: what is on disk is then
            # a mix that no clean mount ever showed.)
            t_facts["checkpoint"] = checkpoint
        t_facts["replayed_image"] = replayed
    return entries, t_facts


def build_dirty_wrap(t, img, root):
    """Churn until the log head is near the end of the ring (after a first
    full pass), so the last checkpoint's records wrap to its start."""
    dev = os.path.basename(run("findmnt", "-n", "-o", "SOURCE", root).strip())
    logbb = int(xfs_db(img, "sb 0", "p logblocks").split("=")[1]) * t.bs // 512

    def head():
        with open("/sys/fs/xfs/%s/log/log_head_lsn" % dev) as f:
            c, b = f.read().strip().split(":")
        return int(c), int(b)

    t.mkdir("churn")
    prev = []
    for i in range(100000):
        c, b = head()
        if c >= 2 and b > logbb - 150:
            break
        batch = []
        for j in range(10):
            batch.append(t.file("churn/x%06d-%d" % (i, j), b"churn", xattrs={"user.churn": b"x" * 40}))
        for f in prev:
            os.unlink(f)
        prev = batch
        os.sync()
    else:
        die("the log head never came near the end of the log")
    t.mkdir("last")
    for i in range(400):
        t.file("last/f%03d" % i, pattern("last%d" % i, 10 * i))


def build_dirty_many(t, spec):
    """What a busy node leaves in its log: a synced directory, more files
    after the sync, every file type, xattrs, directories of each form, a
    big directory, a bmbt-mapped file, a rename, unlinks."""
    t.mkdir("old")
    for i in range(200):
        t.file("old/f%03d" % i, pattern("old%d" % i, 100 * (i % 7)))
    os.sync()
    t.mkdir("new")
    for i in range(300):
        t.file("new/g%03d" % i, pattern("new%d" % i, 50 * (i % 5)))
    build_common(t, spec)
    build_dirs(t, spec)
    build_frag(t, spec)
    t.mkdir("big")
    first = t.file("big/" + spec["bigdir_fmt"] % 0, b"one inode\n")
    for i in range(1, spec["bigdir_count"]):
        os.link(first, t.p("big/" + spec["bigdir_fmt"] % i))
    os.rename(t.p("old/f000"), t.p("new/renamed-from-old"))
    os.rename(t.p("new/g001"), t.p("new/g001-renamed"))
    os.rename(t.p("links/sub"), t.p("links/sub-renamed"))
    for i in range(10, 40):
        os.unlink(t.p("old/f%03d" % i))
    os.unlink(t.p("pre/checkpointed"))
    os.rmdir(t.p("types/dir"))
    with open(t.p("old/f002"), "ab") as f:
        f.write(b"appended after the sync")


# ---- v4: protofile


def build_v4(img, spec, work):
    """Write a source tree and a protofile, mkfs -p, then add xattrs with xfs_db."""
    src = os.path.join(work, "src")
    os.makedirs(src)
    bs = spec["bs"]
    lines = ["boot", "0 0", "d--755 0 0"]
    expect = {}  # path -> partial entry

    def modestr(kind, mode):
        return kind + ("u" if mode & 0o4000 else "-") + ("g" if mode & 0o2000 else "-") + "%03o" % (mode & 0o777)

    def add_file(path, data, mode=0o644, uid=0, gid=0):
        sp = os.path.join(src, "f%d" % len(expect))
        with open(sp, "wb") as f:
            f.write(data)
        lines.append("%s %s %d %d %s" % (os.path.basename(path), modestr("-", mode), uid, gid, sp))
        expect[path] = dict(type="file", mode=stat.S_IFREG | mode, uid=uid, gid=gid, size=len(data),
                            sha256=hashlib.sha256(data).hexdigest(), nlink=1)

    def add_dir(path, mode=0o755, uid=0, gid=0, body=lambda: None):
        lines.append("%s %s %d %d" % (os.path.basename(path), modestr("d", mode), uid, gid))
        expect[path] = dict(type="dir", mode=stat.S_IFDIR | mode, uid=uid, gid=gid)
        body()
        lines.append("$")

    def add_link(path, target):
        lines.append("%s %s 0 0 %s" % (os.path.basename(path), modestr("l", 0o777), target))
        expect[path] = dict(type="symlink", mode=stat.S_IFLNK | 0o777, uid=0, gid=0, size=len(target), target=target, nlink=1)

    def add_dev(path, kind, mode, major, minor):
        lines.append("%s %s 0 0 %d %d" % (os.path.basename(path), modestr(kind, mode), major, minor))
        expect[path] = dict(type={"c": "char", "b": "block"}[kind], mode=(stat.S_IFCHR if kind == "c" else stat.S_IFBLK) | mode,
                            uid=0, gid=0, size=0, rdev=[major, minor], nlink=1)

    def add_fifo(path, mode=0o644):
        lines.append("%s %s 0 0" % (os.path.basename(path), modestr("p", mode)))
        expect[path] = dict(type="fifo", mode=stat.S_IFIFO | mode, uid=0, gid=0, size=0, nlink=1)

    def add_reserved(path, length):
        lines.append("%s %s 0 0 %d" % (os.path.basename(path), modestr("r", 0o600), length))
        # Space allocated (unwritten) past an end of file that stays at 0.
        expect[path] = dict(type="file", mode=stat.S_IFREG | 0o600, uid=0, gid=0, size=0,
                            sha256=hashlib.sha256(b"").hexdigest(), nlink=1)

    def types():
        add_file("types/regular", pattern("v4/regular", 100))
        add_file("types/empty", b"")
        add_file("types/setuid", b"s", 0o4755, 1000, 100)
        add_file("types/big", pattern("v4/big", 300 * KiB))
        add_dev("types/chr", "c", 0o644, 300, 70000)
        add_dev("types/blk", "b", 0o660, 8, 1)
        add_fifo("types/fifo")
        add_reserved("types/reserved", 64 * KiB)
        add_link("types/short", "target")
        add_link("types/long", ("v4-long/" + "y" * 1000)[:1000])
        add_file("types/attrs-sf", b"a")
        add_file("types/attrs-leaf", b"b")
        add_file("types/attrs-node", b"c")
        add_file("types/attrs-remote", b"d")

    def dirs(name, count):
        def body():
            for i in range(count):
                add_file("dirs/%s/e%05d" % (name, i), b"")
        return body

    def alldirs():
        for name, count in (("sf", 4), ("block", 15), ("leaf", 300), ("node", 1000)):
            add_dir("dirs/" + name, body=dirs(name, count))

    add_dir("types", body=types)
    add_dir("dirs", body=alldirs)
    lines.append("$")
    proto = os.path.join(work, "proto")
    with open(proto, "w") as f:
        f.write("\n".join(lines) + "\n")
    mkfs(img, spec, proto)

    # Inode numbers from xfs_db ls.
    def ls(d):
        out = {}
        for line in xfs_db(img, "ls %s" % d).splitlines()[1:]:
            f = line.split()
            if len(f) >= 6 and f[-1] == "(good)" and f[-2] not in (".", ".."):
                out[f[-2]] = int(f[1])
        return out

    inos = {".": int(xfs_db(img, "sb 0", "print rootino").split("=")[1])}
    for p in sorted(expect):
        parent = os.path.dirname(p)
        inos[p] = ls("/" + parent)[os.path.basename(p)]
    # Attributes with xfs_db: values are 'v' * length.
    attrs = {
        "types/attrs-sf": [("-u", "one", 10), ("-r", "two", 5), ("-s", "three", 1)],
        "types/attrs-leaf": [("-u", "leaf%02d" % i, 60) for i in range(8)],
        "types/attrs-node": [("-u", "node%03d" % i, 80) for i in range(40)],
        "types/attrs-remote": [("-u", "remote", 800), ("-r", "big", 900)],
    }
    for p, lst in attrs.items():
        cmds = ["inode %d" % inos[p]] + ["attr_set %s -v %d %s" % (ns, n, name) for ns, name, n in lst]
        xfs_db(img, *cmds, write=True)
        prefix = {"-u": "user.", "-r": "trusted.", "-s": "security."}
        expect[p]["xattrs"] = dict(sorted((prefix[ns] + name, base64.b64encode(b"v" * n).decode()) for ns, name, n in lst))
    run("xfs_repair", "-n", "-f", "-o", "force_geometry", img)

    # Times, sizes and link counts from xfs_db (the kernel no longer mounts v4).
    expect["."] = dict(type="dir", mode=stat.S_IFDIR | 0o755, uid=0, gid=0)
    entries = []
    for p in sorted(expect):
        e = dict(path=p, ino=inos[p], **expect[p])
        v = db_inode(img, e["ino"], "core.atime", "core.mtime", "core.ctime", "core.size", "core.nlinkv2",
                     "core.nlinkv1", "core.mode")
        for k in ("atime", "mtime", "ctime"):
            sec = int(time.mktime(time.strptime(v["core.%s.sec" % k], "%a %b %d %H:%M:%S %Y")) - time.timezone)
            e[k] = [sec, int(v["core.%s.nsec" % k])]
        if e["type"] == "dir":
            e["size"] = int(v["core.size"])
        elif int(v["core.size"]) != e["size"]:
            die("v4 %s: xfs_db size %s, want %d" % (p, v["core.size"], e["size"]))
        if "nlink" not in e or e["type"] == "dir":
            e["nlink"] = int(v.get("core.nlinkv2", v.get("core.nlinkv1", "0")))
        if int(v["core.mode"], 8) != e["mode"]:
            die("v4 %s: xfs_db mode %s, want %o" % (p, v["core.mode"], e["mode"]))
        entries.append(e)
    return entries


def build(name, outdir, compress):
    spec = dict(SPECS[name], name=name)
    spec["want_dir_forms"] = spec.get("want_dirs", {})
    spec["want_attr_forms"] = {} if spec.get("minimal") or spec.get("v4") or spec.get("dirty") or spec.get("seed") else WANT_ATTRS
    spec["want_bmbt_levels"] = spec.get("want_bmbt", {})
    if spec.get("v4"):
        spec["want_attr_forms"] = {"types/attrs-sf": "shortform", "types/attrs-leaf": "leaf", "types/attrs-node": "node"}
        spec["want_dir_forms"] = {"dirs/sf": "shortform", "dirs/block": "block", "dirs/leaf": "leaf", "dirs/node": "node"}
    img = os.path.join(outdir, name + ".img")
    work = tempfile.mkdtemp(prefix="make-xfs-")
    try:
        if spec.get("v4"):
            entries = build_v4(img, spec, work)
            extra = {}
        else:
            entries, extra = build_v5(img, spec)
    finally:
        shutil.rmtree(work)
    checkpoint = extra.pop("checkpoint", None)
    replayed = extra.pop("replayed_image", None)
    facts = gather_facts(replayed or img, spec, entries, not spec.get("v4"))
    facts.update(extra)
    if replayed:
        os.unlink(replayed)
    if checkpoint is not None:
        # What the image holds in place, before any replay: the tree as it
        # was last cleanly unmounted (later changes may be partly in place).
        with open(os.path.join(outdir, name + ".checkpoint.json"), "w") as f:
            f.write('{"entries": [\n' + ",\n".join(json.dumps(e, sort_keys=True) for e in checkpoint) + "\n]}\n")
    bulk = []
    for dname, count in (spec.get("dirs") or {}).items():
        d = "dirs/" + dname
        like = d + "/" + DIR_ENTRY_FMT % 0
        if count > 1:
            bulk.append({"dir": d, "format": DIR_ENTRY_FMT, "count": count, "like": like})
            entries = [e for e in entries if not (e.get("path", "").startswith(d + "/entry-") and e["path"] != like)]
    if spec.get("bigdir_count"):
        # The names of the big directory are generated: the expectation lists one and the rule.
        first = "big/" + spec["bigdir_fmt"] % 0
        bulk.append({"dir": "big", "format": spec["bigdir_fmt"], "count": spec["bigdir_count"], "like": first})
        entries = [e for e in entries if not (e.get("path", "").startswith("big/") and e["path"] != first)]
    doc = {
        "name": name, "desc": spec["desc"], "generator": "make-xfs.py",
        "xfsprogs": run("mkfs.xfs", "-V").strip(), "kernel": os.uname().release,
        "mkfs": spec["mkfs"], "block_size": spec["bs"], "facts": facts, "bulk": bulk, "entries": entries,
    }
    body = "{\n" + ",\n".join("%s: %s" % (json.dumps(k), json.dumps(v)) for k, v in doc.items() if k != "entries")
    body += ',\n"entries": [\n' + ",\n".join(json.dumps(e, sort_keys=True) for e in entries) + "\n]}\n"
    jpath = os.path.join(outdir, name + ".json")
    with open(jpath, "w") as f:
        f.write(body)
    if compress:
        run("zstd", "-19", "-q", "-f", "--rm", img, "-o", img + ".zst")
        if len(body) > 64 * KiB:
            run("zstd", "-19", "-q", "-f", "--rm", jpath, "-o", jpath + ".zst")
    print("%s: %d entries, facts %s" % (name, len(entries), json.dumps(facts)[:300]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-o", dest="outdir", default=HERE)
    ap.add_argument("--no-compress", action="store_true")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("names", nargs="*")
    a = ap.parse_args()
    if a.list:
        for n, s in SPECS.items():
            print("%-12s %s" % (n, s["desc"]))
        return
    if os.geteuid() != 0:
        die("needs root (mount, chown, mknod, trusted.* xattrs)")
    os.makedirs(a.outdir, exist_ok=True)
    for n in a.names or [n for n in SPECS if n != "xfs-seed"]:
        if n not in SPECS:
            die("unknown image %s (see --list)" % n)
        build(n, a.outdir, not a.no_compress)


if __name__ == "__main__":
    main()
