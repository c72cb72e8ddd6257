package testutil

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// HostManifest walks a directory the kernel shows (a read-only overlay
// mount, with bind mounts on it) into manifest form, as
// testdata/images/example/manifest.py does: nothing followed, hardlinks
// (second and later names in path order) by device and inode, xattrs
// without the kernel's trusted.overlay.* ones.
func HostManifest(t testing.TB, root string) map[string]ManifestLine {
	t.Helper()
	type entry struct {
		m    ManifestLine
		dev  uint64
		ino  uint64
		nlnk uint64
	}
	var entries []entry
	var visit func(rel, full string)
	visit = func(rel, full string) {
		var st unix.Stat_t
		if err := unix.Lstat(full, &st); err != nil {
			t.Fatal(err)
		}
		p := rel
		if p == "" {
			p = "/"
		}
		m := ManifestLine{Path: p, Mode: fmt.Sprintf("%04o", st.Mode&0o7777), UID: st.Uid, GID: st.Gid,
			MtimeNs: st.Mtim.Sec*1e9 + st.Mtim.Nsec}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			m.Type = "dir"
		case unix.S_IFREG:
			m.Type = "file"
			f, err := os.Open(full)
			if err != nil {
				t.Fatal(err)
			}
			h := sha256.New()
			n, err := io.Copy(h, f)
			f.Close()
			if err != nil {
				t.Fatalf("%s: %v", full, err)
			}
			m.Size, m.SHA256 = &n, hex.EncodeToString(h.Sum(nil))
		case unix.S_IFLNK:
			m.Type = "symlink"
			target, err := os.Readlink(full)
			if err != nil {
				t.Fatal(err)
			}
			n := st.Size
			m.Target, m.Size = &target, &n
		case unix.S_IFCHR, unix.S_IFBLK:
			m.Type = "char"
			if st.Mode&unix.S_IFMT == unix.S_IFBLK {
				m.Type = "block"
			}
			m.Rdev = fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
		case unix.S_IFIFO:
			m.Type = "fifo"
		case unix.S_IFSOCK:
			m.Type = "socket"
		}
		m.Xattrs = hostXattrs(t, full)
		entries = append(entries, entry{m: m, dev: st.Dev, ino: st.Ino, nlnk: uint64(st.Nlink)})
		if m.Type == "dir" {
			ents, err := os.ReadDir(full)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range ents {
				visit(rel+"/"+e.Name(), filepath.Join(full, e.Name()))
			}
		}
	}
	visit("", root)
	sort.Slice(entries, func(i, j int) bool { return entries[i].m.Path < entries[j].m.Path })
	first := map[[2]uint64]string{}
	out := map[string]ManifestLine{}
	for _, e := range entries {
		if e.m.Type != "dir" && e.nlnk > 1 {
			k := [2]uint64{e.dev, e.ino}
			if f, ok := first[k]; ok {
				e.m.HardlinkTo = f
			} else {
				first[k] = e.m.Path
			}
		}
		out[e.m.Path] = e.m
	}
	return out
}

func hostXattrs(t testing.TB, p string) map[string]string {
	t.Helper()
	n, err := unix.Llistxattr(p, nil)
	if err != nil || n == 0 {
		return nil
	}
	buf := make([]byte, n)
	if n, err = unix.Llistxattr(p, buf); err != nil {
		t.Fatalf("%s: listxattr: %v", p, err)
	}
	var out map[string]string
	for _, name := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
		if name == "" || strings.HasPrefix(name, "trusted.overlay.") {
			continue
		}
		sz, err := unix.Lgetxattr(p, name, nil)
		if err != nil {
			continue
		}
		v := make([]byte, sz)
		if sz, err = unix.Lgetxattr(p, name, v); err != nil {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[name] = base64.StdEncoding.EncodeToString(v[:sz])
	}
	return out
}
