//go:build linux

package layers_test

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ctrlift/ctrlift/layers"
)

// rec is one entry of a tree as some reader sees it; all readers (the
// kernel's overlay mount, ctrlift's walk, an exported tar, a tree unpacked
// from OCI layers) are reduced to this form and compared field by field.
type rec struct {
	Type    string // dir file symlink char block fifo socket
	Mode    uint32 // permission bits with setuid, setgid, sticky
	UID     uint32
	GID     uint32
	Size    int64  // files
	SHA256  string // files
	Target  string // symlinks, byte-exact (quoted when printed)
	MtimeNs int64
	Rdev    string            // devices, "major:minor"
	Xattrs  map[string]string // without trusted.overlay.*; values quoted
	// Link names a hardlink group: the smallest path of the group, set on
	// every member of a group of two or more names.
	Link string
}

func (r rec) String() string {
	var xs []string
	for k, v := range r.Xattrs {
		xs = append(xs, k+"="+v)
	}
	sort.Strings(xs)
	s := fmt.Sprintf("%s %04o %d:%d mtime=%d", r.Type, r.Mode, r.UID, r.GID, r.MtimeNs)
	switch r.Type {
	case "file":
		s += fmt.Sprintf(" size=%d sha=%.12s", r.Size, r.SHA256)
	case "symlink":
		s += fmt.Sprintf(" target=%q", r.Target)
	case "char", "block":
		s += " rdev=" + r.Rdev
	}
	if r.Link != "" {
		s += fmt.Sprintf(" link=%q", r.Link)
	}
	if len(xs) > 0 {
		s += " xattrs=[" + strings.Join(xs, " ") + "]"
	}
	return s
}

type tree map[string]rec

// setLinks labels hardlink groups: groups maps a key to its paths.
func setLinks[K comparable](t tree, groups map[K][]string) {
	for _, ps := range groups {
		if len(ps) < 2 {
			continue
		}
		first := slices.Min(ps)
		for _, p := range ps {
			r := t[p]
			r.Link = first
			t[p] = r
		}
	}
}

func isOverlayInternal(name string) bool { return strings.HasPrefix(name, "trusted.overlay.") }

func quoteXattrs(xs map[string][]byte) map[string]string {
	if len(xs) == 0 {
		return nil
	}
	out := map[string]string{}
	for k, v := range xs {
		out[k] = fmt.Sprintf("%q", v)
	}
	return out
}

// hostTree walks a directory of the host (a kernel mount or an unpacked
// tree) without following any symlink.
func hostTree(t *testing.T, root string) tree {
	t.Helper()
	return hostTreeEIO(t, root, false)
}

// hostTreeEIO is hostTree; with eio, an entry that lstat(2) fails with
// EIO (an overlay lookup the kernel refuses) is recorded as type "eio".
func hostTreeEIO(t *testing.T, root string, eio bool) tree {
	t.Helper()
	out := tree{}
	type ino struct{ dev, ino uint64 }
	groups := map[ino][]string{}
	buf := make([]byte, 1<<20)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			if eio && errors.Is(err, unix.EIO) {
				out[rel] = rec{Type: "eio"}
				return nil
			}
			return err
		}
		r := rec{Mode: st.Mode & 0o7777, UID: st.Uid, GID: st.Gid, MtimeNs: st.Mtim.Nano()}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			r.Type = "dir"
		case unix.S_IFREG:
			r.Type = "file"
			r.Size = st.Size
			f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
			if err != nil {
				return err
			}
			h := sha256.New()
			_, err = io.CopyBuffer(h, f, buf)
			f.Close()
			if err != nil {
				return err
			}
			r.SHA256 = hex.EncodeToString(h.Sum(nil))
		case unix.S_IFLNK:
			r.Type = "symlink"
			r.Target, err = os.Readlink(p)
			if err != nil {
				return err
			}
		case unix.S_IFCHR:
			r.Type = "char"
			r.Rdev = fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
		case unix.S_IFBLK:
			r.Type = "block"
			r.Rdev = fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
		case unix.S_IFIFO:
			r.Type = "fifo"
		case unix.S_IFSOCK:
			r.Type = "socket"
		default:
			return fmt.Errorf("%s: mode %#o", p, st.Mode)
		}
		xs, err := hostXattrs(p)
		if err != nil {
			return err
		}
		r.Xattrs = quoteXattrs(xs)
		if r.Type != "dir" {
			k := ino{st.Dev, st.Ino}
			groups[k] = append(groups[k], rel)
		}
		out[rel] = r
		return nil
	})
	if err != nil {
		t.Fatalf("walking %s: %v", root, err)
	}
	setLinks(out, groups)
	return out
}

// hostXattrs returns what getxattr(2) gives for p, without the overlay's
// own attributes (the kernel hides them in a mount; this hides them in a
// layer directory too).
func hostXattrs(p string) (map[string][]byte, error) {
	xs, err := rawXattrs(p)
	for k := range xs {
		if isOverlayInternal(k) {
			delete(xs, k)
		}
	}
	return xs, err
}

// rawXattrs returns every xattr of p, not following a symlink.
func rawXattrs(p string) (map[string][]byte, error) {
	n, err := unix.Llistxattr(p, nil)
	if err != nil || n == 0 {
		return nil, err
	}
	names := make([]byte, n)
	if n, err = unix.Llistxattr(p, names); err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, name := range strings.Split(string(names[:n]), "\x00") {
		if name == "" {
			continue
		}
		sz, err := unix.Lgetxattr(p, name, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: getxattr %s: %w", p, name, err)
		}
		v := make([]byte, sz)
		if sz, err = unix.Lgetxattr(p, name, v); err != nil {
			return nil, fmt.Errorf("%s: getxattr %s: %w", p, name, err)
		}
		out[name] = v[:sz]
	}
	return out, nil
}

// walkTree is ctrlift's merged view, read through Merged.Walk.
func walkTree(t *testing.T, m *layers.Merged) tree {
	t.Helper()
	out, err := walkTreeErr(m)
	if err != nil {
		t.Fatalf("Merged.Walk: %v", err)
	}
	return out
}

func walkTreeErr(m *layers.Merged) (tree, error) {
	out := tree{}
	type ino struct {
		fs  any
		num uint64
	}
	groups := map[ino][]string{}
	err := m.Walk(func(p string, e *layers.Entry) error {
		in := e.Inode
		r := rec{Mode: uint32(in.Mode & 0o7777), UID: in.Uid, GID: in.Gid, MtimeNs: in.Mtime.UnixNano()}
		switch {
		case in.IsDir():
			r.Type = "dir"
		case in.IsRegular():
			r.Type, r.Size = "file", in.Size
			f, err := e.Open()
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			h := sha256.New()
			n, err := io.Copy(h, f)
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			if n != in.Size {
				return fmt.Errorf("%s: read %d of %d bytes", p, n, in.Size)
			}
			r.SHA256 = hex.EncodeToString(h.Sum(nil))
		case in.IsSymlink():
			r.Type = "symlink"
			tg, err := e.LinkTarget()
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			r.Target = tg
		case in.IsCharDev():
			r.Type, r.Rdev = "char", fmt.Sprintf("%d:%d", in.RdevMajor, in.RdevMinor)
		case in.IsBlockDev():
			r.Type, r.Rdev = "block", fmt.Sprintf("%d:%d", in.RdevMajor, in.RdevMinor)
		case in.IsFIFO():
			r.Type = "fifo"
		case in.IsSocket():
			r.Type = "socket"
		default:
			return fmt.Errorf("%s: mode %#o", p, in.Mode)
		}
		if len(in.Xattrs) > 0 {
			xs := map[string][]byte{}
			for _, x := range in.Xattrs {
				xs[x.Name] = x.Value
			}
			r.Xattrs = quoteXattrs(xs)
		}
		if !in.IsDir() {
			k := ino{e.FS(), in.Ino}
			groups[k] = append(groups[k], p)
		}
		out[p] = r
		return nil
	})
	if err != nil {
		return nil, err
	}
	setLinks(out, groups)
	return out, nil
}

// tarTree reads a tar as an independent consumer (archive/tar) sees it.
// Whiteout markers are kept as the files they are in the tar.
func tarTree(t *testing.T, data []byte) tree {
	t.Helper()
	out := tree{}
	links := map[string]string{} // hardlink name -> target
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("reading exported tar: %v", err)
		}
		p := tarPath(h.Name)
		r := rec{Mode: uint32(h.Mode & 0o7777), UID: uint32(h.Uid), GID: uint32(h.Gid), MtimeNs: h.ModTime.UnixNano()}
		switch h.Typeflag {
		case tar.TypeDir:
			r.Type = "dir"
		case tar.TypeReg:
			r.Type = "file"
			hs := sha256.New()
			n, err := io.Copy(hs, tr)
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			r.Size, r.SHA256 = n, hex.EncodeToString(hs.Sum(nil))
		case tar.TypeLink:
			r.Type = "file"
			links[p] = tarPath(h.Linkname)
		case tar.TypeSymlink:
			r.Type, r.Target = "symlink", h.Linkname
		case tar.TypeChar:
			r.Type, r.Rdev = "char", fmt.Sprintf("%d:%d", h.Devmajor, h.Devminor)
		case tar.TypeBlock:
			r.Type, r.Rdev = "block", fmt.Sprintf("%d:%d", h.Devmajor, h.Devminor)
		case tar.TypeFifo:
			r.Type = "fifo"
		default:
			t.Fatalf("%s: unexpected tar type %q", p, h.Typeflag)
		}
		xs := map[string][]byte{}
		for k, v := range h.PAXRecords {
			if x, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
				xs[x] = []byte(v)
			}
		}
		r.Xattrs = quoteXattrs(xs)
		if _, dup := out[p]; dup {
			t.Errorf("tar: %s: duplicate entry", p)
		}
		out[p] = r
	}
	// A hardlink entry has its target's data; group names by their target.
	groups := map[string][]string{}
	for p, target := range links {
		first, ok := out[target]
		if !ok || first.Type != "file" || links[target] != "" {
			t.Errorf("tar: hardlink %s -> %s: target is not an earlier regular file", p, target)
			continue
		}
		r := out[p]
		r.Size, r.SHA256 = first.Size, first.SHA256
		out[p] = r
		groups[target] = append(groups[target], p)
	}
	for target, ps := range groups {
		groups[target] = append(ps, target)
	}
	setLinks(out, groups)
	return out
}

func tarPath(name string) string {
	p := strings.TrimSuffix(strings.TrimPrefix(name, "./"), "/")
	if p == "" || p == "." {
		return "."
	}
	return p
}

// compareTrees reports every difference between the kernel's view and
// another one.
func compareTrees(t *testing.T, what string, want, got tree) {
	t.Helper()
	diffs := diffTrees(want, got)
	if len(diffs) == 0 {
		return
	}
	if len(diffs) > 40 {
		diffs = append(diffs[:40], fmt.Sprintf("... and %d more", len(diffs)-40))
	}
	t.Errorf("%s: %d differences from the kernel's view (of %d entries):\n  %s", what, len(diffs), len(want), strings.Join(diffs, "\n  "))
}

func diffTrees(want, got tree) []string {
	var diffs []string
	for p, w := range want {
		g, ok := got[p]
		if !ok {
			diffs = append(diffs, fmt.Sprintf("missing %q (%s)", p, w))
			continue
		}
		if w.String() != g.String() {
			diffs = append(diffs, fmt.Sprintf("%q:\n    kernel  %s\n    ctrlift %s", p, w, g))
		}
	}
	for p, g := range got {
		if _, ok := want[p]; !ok {
			diffs = append(diffs, fmt.Sprintf("unexpected %q (%s)", p, g))
		}
	}
	sort.Strings(diffs)
	return diffs
}

// without returns a copy of tr without the entries keep rejects.
func (tr tree) without(drop func(p string, r rec) bool) tree {
	out := tree{}
	for p, r := range tr {
		if !drop(p, r) {
			out[p] = r
		}
	}
	return out
}

// Kernel mounts. Each one is undone by t.Cleanup, also when the test fails.

func run(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// attachLoop attaches img read-only to a free loop device.
func attachLoop(t *testing.T, img string) string {
	t.Helper()
	dev := run(t, "", "losetup", "--read-only", "--find", "--show", img)
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v: %s", dev, err, out)
		}
	})
	return dev
}

// mount mounts (read-only options are the caller's) and registers the
// unmount. dir is the working directory of mount(8), for relative paths.
func mount(t *testing.T, dir, fstype, source, opts string) string {
	t.Helper()
	target := t.TempDir()
	run(t, dir, "mount", "-t", fstype, "-o", opts, source, target)
	t.Cleanup(func() {
		if out, err := exec.Command("umount", target).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", target, err, out)
			exec.Command("umount", "-l", target).Run()
		}
	})
	return target
}

// overlayRO mounts the layer dirs (inside the mounted image at imgMnt, top
// first) as a read-only overlay with no upper: the kernel's merged view.
// below, when set, is an overlay mount placed under all of them.
func overlayRO(t *testing.T, imgMnt string, dirs []string, opts, below string) string {
	t.Helper()
	if len(dirs) == 1 && below == "" {
		// The kernel wants two layers at least; one is its own view (the
		// image is mounted read-only already).
		return filepath.Join(imgMnt, dirs[0])
	}
	// Relative paths from the common parent keep hundreds of layers within
	// the one page mount(2) takes for options.
	base := commonDir(dirs)
	rel := make([]string, len(dirs))
	for i, d := range dirs {
		rel[i] = strings.TrimPrefix(strings.TrimPrefix(d, base), "/")
	}
	if below != "" {
		rel = append(rel, below)
	}
	o := "ro,lowerdir=" + strings.Join(rel, ":")
	if opts != "" {
		o += "," + opts
	}
	return mount(t, filepath.Join(imgMnt, base), "overlay", "overlay", o)
}

func commonDir(dirs []string) string {
	base := filepath.Dir(dirs[0])
	for {
		ok := true
		for _, d := range dirs {
			if !strings.HasPrefix(d, base+"/") {
				ok = false
				break
			}
		}
		if ok || base == "." || base == "/" {
			return base
		}
		base = filepath.Dir(base)
	}
}

// requireOverlayRoot skips unless the test can mount loop devices and
// overlays and has the tools the fixture script uses.
func requireOverlayRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: loop and overlay mounts")
	}
	if testing.Short() {
		t.Skip("builds an image and mounts it: not in -short")
	}
	b, err := os.ReadFile("/proc/filesystems")
	if err != nil || !bytes.Contains(b, []byte("\toverlay\n")) {
		t.Skip("kernel has no overlay filesystem")
	}
	// The fixture's redirect and metacopy layers are made by the kernel
	// (Linux 4.19+); the options exist when these parameters do.
	for _, p := range []string{"metacopy", "redirect_dir"} {
		if _, err := os.Stat("/sys/module/overlay/parameters/" + p); err != nil {
			t.Skipf("kernel overlay has no %s support (%v): the fixture's redirect and metacopy layers cannot be made", p, err)
		}
	}
	for _, tool := range []string{"mkfs.ext4", "e2fsck", "losetup", "mount", "umount", "unshare", "setfattr", "setfacl", "setcap", "mknod", "perl", "tar", "cp"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	if _, err := os.Stat("/dev/loop-control"); errors.Is(err, fs.ErrNotExist) {
		t.Skip("no loop device support")
	}
}
