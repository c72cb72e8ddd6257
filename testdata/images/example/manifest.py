#!/usr/bin/env python3
"""Write the ground-truth manifest of a mounted container root filesystem.

Usage: manifest.py ROOT OUT.jsonl

One JSON object per entry, sorted by path (bytes), in the format of the
shared cos-node fixture's manifests:
  path       "/..." (the root itself is "/")
  type       dir, file, symlink, char, block, fifo, socket
  mode       octal string of the permission bits with setuid/setgid/sticky ("0755", "4755")
  uid, gid   numeric owner
  size       files and symlinks (for symlinks: length of the target)
  sha256     files
  target     symlinks
  mtime_ns   modification time in nanoseconds since the epoch
  rdev       devices, "major:minor"
  hardlink_to  on the second and later names (in path order) of an inode with
               several names: the first name
  xattrs_b64 name -> base64 value, without the kernel's trusted.overlay.* ones
Nothing is followed: symlinks are recorded, never resolved.
"""

import base64
import hashlib
import json
import os
import stat
import sys

TYPES = [(stat.S_ISDIR, "dir"), (stat.S_ISREG, "file"), (stat.S_ISLNK, "symlink"), (stat.S_ISCHR, "char"),
         (stat.S_ISBLK, "block"), (stat.S_ISFIFO, "fifo"), (stat.S_ISSOCK, "socket")]


def kind(mode):
    for test, name in TYPES:
        if test(mode):
            return name
    return "unknown"


def xattrs(path):
    out = {}
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return out
    for n in sorted(names):
        if n.startswith("trusted.overlay."):
            continue
        try:
            out[n] = base64.b64encode(os.getxattr(path, n, follow_symlinks=False)).decode()
        except OSError:
            pass
    return out


def walk(root):
    entries = []

    def visit(rel, full):
        st = os.lstat(full)
        e = {"path": rel or "/", "type": kind(st.st_mode), "mode": "%04o" % stat.S_IMODE(st.st_mode),
             "uid": st.st_uid, "gid": st.st_gid, "mtime_ns": st.st_mtime_ns}
        if e["type"] == "file":
            h = hashlib.sha256()
            with open(full, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            e["size"] = st.st_size
            e["sha256"] = h.hexdigest()
        elif e["type"] == "symlink":
            e["target"] = os.readlink(full)
            e["size"] = st.st_size
        elif e["type"] in ("char", "block"):
            e["rdev"] = "%d:%d" % (os.major(st.st_rdev), os.minor(st.st_rdev))
        x = xattrs(full)
        if x:
            e["xattrs_b64"] = x
        entries.append((e, st))
        if e["type"] == "dir":
            for name in os.listdir(full):
                visit(rel + "/" + name, os.path.join(full, name))

    visit("", root)
    entries.sort(key=lambda es: es[0]["path"].encode("utf-8", "surrogateescape"))
    first = {}
    for e, st in entries:
        if e["type"] != "dir" and st.st_nlink > 1:
            key = (st.st_dev, st.st_ino)
            if key in first:
                e["hardlink_to"] = first[key]
            else:
                first[key] = e["path"]
    return [e for e, _ in entries]


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    root, out = sys.argv[1], sys.argv[2]
    with open(out, "wb") as f:
        for e in walk(root):
            f.write(json.dumps(e, sort_keys=True, ensure_ascii=False).encode("utf-8", "surrogateescape") + b"\n")


if __name__ == "__main__":
    main()
