package dirfs

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ctrlift/ctrlift/vfs"
)

const nonUTF8 = "\xff\xfe"

// tree makes the test tree in a fresh directory.
func tree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	write := func(name, data string) {
		t.Helper()
		must(os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644))
	}
	write("hello", "hello world\n")
	write(nonUTF8, "odd name")
	must(os.MkdirAll(filepath.Join(dir, "d/real"), 0o755))
	write("d/real/file", "inside")
	must(os.Symlink("real", filepath.Join(dir, "d/ln")))
	must(os.Symlink("/etc", filepath.Join(dir, "etc")))
	must(os.Symlink("../../..", filepath.Join(dir, "up")))
	must(os.Symlink(strings.Repeat("x/", 2000), filepath.Join(dir, "long")))
	write("h1", "linked")
	must(os.Link(filepath.Join(dir, "h1"), filepath.Join(dir, "h2")))
	must(syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644))
	return dir
}

func openFS(t *testing.T, dir string, walk bool) *FS {
	t.Helper()
	f, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	f.noOpenat2 = walk // exercise the pre-5.6 walk too
	t.Cleanup(func() { f.Close() })
	return f
}

// both runs fn against openat2 and against the per-component walk.
func both(t *testing.T, fn func(t *testing.T, f *FS, dir string)) {
	dir := tree(t)
	for _, walk := range []bool{false, true} {
		name := "openat2"
		if walk {
			name = "walk"
		}
		t.Run(name, func(t *testing.T) { fn(t, openFS(t, dir, walk), dir) })
	}
}

func lookup(t *testing.T, f *FS, p string) *vfs.Inode {
	t.Helper()
	in, err := f.Lookup(p)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func TestLookup(t *testing.T) {
	cases := []struct {
		path    string
		typ     uint32 // wanted type when no error
		errText string // wanted error substring
		errIs   error
	}{
		{path: ".", typ: vfs.TypeDir},
		{path: "", typ: vfs.TypeDir},
		{path: "hello", typ: vfs.TypeRegular},
		{path: "/d//real/./file", typ: vfs.TypeRegular},
		{path: "d/ln", typ: vfs.TypeSymlink},
		{path: "d/ln/file", errText: `dirfs: lookup "d/ln/file": component before "file" is a symlink (not followed)`},
		{path: "etc", typ: vfs.TypeSymlink},
		{path: "etc/passwd", errText: `component before "passwd" is a symlink (not followed)`},
		{path: "up/etc/passwd", errText: `component before "etc" is a symlink (not followed)`},
		{path: nonUTF8, typ: vfs.TypeRegular},
		{path: "fifo", typ: vfs.TypeFIFO},
		{path: "missing", errIs: fs.ErrNotExist},
		{path: "d/missing/x", errIs: fs.ErrNotExist},
		{path: "hello/x", errIs: vfs.ErrNotDir},
		{path: "d/..", errText: `".." is not a name`},
		{path: "../x", errText: `".." is not a name`},
		{path: "d/real/../../hello", errText: `".." is not a name`},
	}
	both(t, func(t *testing.T, f *FS, _ string) {
		for _, c := range cases {
			in, err := f.Lookup(c.path)
			switch {
			case c.errText == "" && c.errIs == nil:
				if err != nil {
					t.Errorf("Lookup(%q): %v", c.path, err)
				} else if in.Mode&vfs.TypeMask != c.typ {
					t.Errorf("Lookup(%q): mode %o, want type %o", c.path, in.Mode, c.typ)
				}
			case err == nil:
				t.Errorf("Lookup(%q) succeeded, want an error", c.path)
			case c.errText != "" && !strings.Contains(err.Error(), c.errText):
				t.Errorf("Lookup(%q): %v, want %q", c.path, err, c.errText)
			case c.errIs != nil && !errors.Is(err, c.errIs):
				t.Errorf("Lookup(%q): %v, want %v", c.path, err, c.errIs)
			}
			if err != nil && strings.Contains(err.Error(), "\n") {
				t.Errorf("Lookup(%q): error of more than one line: %q", c.path, err)
			}
		}
	})
}

func TestLookupAt(t *testing.T) {
	cases := []struct {
		name  string
		ok    bool
		errIs error
	}{
		{name: "hello", ok: true},
		{name: nonUTF8, ok: true},
		{name: "missing", errIs: fs.ErrNotExist},
		{name: ".."}, {name: "."}, {name: ""}, {name: "d/real"}, {name: "x\x00y"},
	}
	both(t, func(t *testing.T, f *FS, _ string) {
		root := lookup(t, f, ".")
		for _, c := range cases {
			in, err := f.LookupAt(root, c.name)
			switch {
			case c.ok && err != nil:
				t.Errorf("LookupAt(%q): %v", c.name, err)
			case c.ok && in.Sys.(*Node).Path != c.name:
				t.Errorf("LookupAt(%q): path %q", c.name, in.Sys.(*Node).Path)
			case !c.ok && err == nil:
				t.Errorf("LookupAt(%q) succeeded, want an error", c.name)
			case c.errIs != nil && !errors.Is(err, c.errIs):
				t.Errorf("LookupAt(%q): %v, want %v", c.name, err, c.errIs)
			}
		}
		if _, err := f.LookupAt(lookup(t, f, "d/ln"), "file"); !errors.Is(err, vfs.ErrNotDir) {
			t.Errorf("LookupAt in a symlink: %v", err)
		}
		other := openFS(t, f.Root(), false)
		if _, err := f.LookupAt(lookup(t, other, "d"), "real"); err == nil {
			t.Error("LookupAt accepted an inode of another FS")
		}
	})
}

func TestReadDirAndLinks(t *testing.T) {
	both(t, func(t *testing.T, f *FS, _ string) {
		ents, err := f.ReadDir(lookup(t, f, "."))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range ents {
			names = append(names, e.Name)
			if in := lookup(t, f, e.Name); in.Ino != e.Ino {
				t.Errorf("%q: dirent ino %d, inode %d", e.Name, e.Ino, in.Ino)
			}
		}
		sort.Strings(names)
		want := []string{"d", "etc", "fifo", "h1", "h2", "hello", "long", "up", nonUTF8}
		if strings.Join(names, "|") != strings.Join(want, "|") {
			t.Errorf("ReadDir: %q, want %q", names, want)
		}
		for _, p := range []string{"hello", "d/ln", "fifo"} {
			if _, err := f.ReadDir(lookup(t, f, p)); !errors.Is(err, vfs.ErrNotDir) {
				t.Errorf("ReadDir(%q): %v, want ErrNotDir", p, err)
			}
		}

		h1, h2 := lookup(t, f, "h1"), lookup(t, f, "h2")
		if h1.Ino != h2.Ino || h1.Nlink != 2 {
			t.Errorf("hardlinks: ino %d, %d, nlink %d", h1.Ino, h2.Ino, h1.Nlink)
		}

		for p, want := range map[string]string{"d/ln": "real", "etc": "/etc", "up": "../../..", "long": strings.Repeat("x/", 2000)} {
			got, err := f.LinkTarget(lookup(t, f, p))
			if err != nil || got != want {
				t.Errorf("Readlink(%q) = %q, %v; want %q", p, got, err, want)
			}
			if in := lookup(t, f, p); in.Size != int64(len(want)) {
				t.Errorf("%q: size %d", p, in.Size)
			}
		}
		if _, err := f.LinkTarget(lookup(t, f, "hello")); err == nil {
			t.Error("Readlink of a regular file succeeded")
		}
	})
}

func TestData(t *testing.T) {
	both(t, func(t *testing.T, f *FS, dir string) {
		const at = 1 << 20
		sp, err := os.Create(filepath.Join(dir, "sparse"))
		if err != nil {
			t.Fatal(err)
		}
		payload := bytes.Repeat([]byte("data"), 1024)
		if err := sp.Truncate(4 << 20); err != nil {
			t.Fatal(err)
		}
		if _, err := sp.WriteAt(payload, at); err != nil {
			t.Fatal(err)
		}
		sp.Close()
		defer os.Remove(filepath.Join(dir, "sparse"))

		in := lookup(t, f, "sparse")
		vf, err := f.Open(in)
		if err != nil {
			t.Fatal(err)
		}
		defer vf.(io.Closer).Close()
		if vf.Size() != 4<<20 {
			t.Fatalf("size %d", vf.Size())
		}
		start, end, err := vf.NextData(0)
		if err != nil {
			t.Fatal(err)
		}
		if start > at || end < at+int64(len(payload)) || end > vf.Size() {
			t.Errorf("NextData(0) = [%d, %d), want around [%d, %d)", start, end, at, at+len(payload))
		}
		if in.Sparse() {
			if start == 0 {
				t.Error("NextData(0) found no hole on a sparse file")
			}
			if s, e, err := vf.NextData(end); err != nil || s != vf.Size() || e != vf.Size() {
				t.Errorf("NextData(%d) = %d, %d, %v; want only holes", end, s, e, err)
			}
		}
		if s, e, err := vf.NextData(vf.Size() + 5); s != vf.Size() || e != vf.Size() || err != nil {
			t.Errorf("NextData past the end = %d, %d, %v", s, e, err)
		}
		buf := make([]byte, len(payload)+2)
		if _, err := vf.ReadAt(buf, at-1); err != nil || buf[0] != 0 || !bytes.Equal(buf[1:len(buf)-1], payload) {
			t.Errorf("ReadAt around the data: %v", err)
		}
		all, err := io.ReadAll(vf)
		if err != nil || len(all) != 4<<20 || !bytes.Equal(all[at:at+len(payload)], payload) {
			t.Errorf("Read: %d bytes, %v", len(all), err)
		}
		if n, err := vf.ReadAt(buf, vf.Size()-3); n != 3 || err != io.EOF {
			t.Errorf("ReadAt at the end: %d, %v", n, err)
		}

		for _, p := range []string{"d", "d/ln", "etc"} {
			if _, err := f.Open(lookup(t, f, p)); err == nil {
				t.Errorf("Open(%q) succeeded", p)
			}
		}
	})
}

// Opening a FIFO for reading would block until a writer comes.
func TestFIFONotOpened(t *testing.T) {
	both(t, func(t *testing.T, f *FS, _ string) {
		in := lookup(t, f, "fifo")
		if !in.IsFIFO() {
			t.Fatalf("fifo: mode %o", in.Mode)
		}
		done := make(chan error, 1)
		go func() { _, err := f.Open(in); done <- err }()
		select {
		case err := <-done:
			if err == nil {
				t.Error("Open of a FIFO succeeded")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Open of a FIFO blocked")
		}
	})
}

func TestCharDevice(t *testing.T) {
	if unix.Geteuid() != 0 {
		t.Skip("mknod needs root")
	}
	both(t, func(t *testing.T, f *FS, dir string) {
		p := filepath.Join(dir, "null")
		if err := unix.Mknod(p, unix.S_IFCHR|0o600, int(unix.Mkdev(1, 3))); err != nil && !errors.Is(err, unix.EEXIST) {
			t.Skip("mknod:", err)
		}
		in := lookup(t, f, "null")
		if !in.IsCharDev() || in.RdevMajor != 1 || in.RdevMinor != 3 {
			t.Errorf("null: mode %o rdev %d:%d", in.Mode, in.RdevMajor, in.RdevMinor)
		}
		if _, err := f.Open(in); err == nil {
			t.Error("Open of a device succeeded")
		}
	})
}

func TestXattrs(t *testing.T) {
	both(t, func(t *testing.T, f *FS, dir string) {
		p := filepath.Join(dir, "hello")
		for _, x := range []vfs.Xattr{{Name: "user.b", Value: []byte("2")}, {Name: "user.a", Value: []byte("1\x00\xff")}, {Name: "user.empty", Value: []byte{}}} {
			if err := unix.Lsetxattr(p, x.Name, x.Value, 0); err != nil {
				if errors.Is(err, unix.ENOTSUP) {
					t.Skip("no user xattrs here:", err)
				}
				t.Fatal(err)
			}
		}
		xs := lookup(t, f, "hello").Xattrs
		var got []string
		for _, x := range xs {
			got = append(got, x.Name+"="+string(x.Value))
		}
		if want := "user.a=1\x00\xff|user.b=2|user.empty="; strings.Join(got, "|") != want {
			t.Errorf("xattrs %q, want %q", strings.Join(got, "|"), want)
		}
	})
}

// trusted.* is where overlayfs keeps its markers; TrustedXattrsVisible
// must agree with what the kernel shows.
func TestTrustedXattrs(t *testing.T) {
	both(t, func(t *testing.T, f *FS, dir string) {
		err := unix.Lsetxattr(filepath.Join(dir, "d"), "trusted.overlay.opaque", []byte("y"), 0)
		if errors.Is(err, unix.EPERM) {
			if f.TrustedXattrsVisible() {
				t.Error("TrustedXattrsVisible, but setting trusted.* is refused")
			}
			t.Skip("trusted.* needs CAP_SYS_ADMIN")
		}
		if err != nil {
			t.Skip("trusted xattrs:", err)
		}
		if !f.TrustedXattrsVisible() {
			t.Error("trusted.* can be set, but TrustedXattrsVisible is false")
		}
		if v, ok := lookup(t, f, "d").Xattr("trusted.overlay.opaque"); !ok || string(v) != "y" {
			t.Errorf("trusted.overlay.opaque = %q, %v", v, ok)
		}
		// A symlink's own xattrs, not its target's.
		if err := unix.Lsetxattr(filepath.Join(dir, "d/ln"), "trusted.which", []byte("link"), 0); err != nil {
			t.Fatal(err)
		}
		if err := unix.Lsetxattr(filepath.Join(dir, "d/real"), "trusted.which", []byte("target"), 0); err != nil {
			t.Fatal(err)
		}
		if v, _ := lookup(t, f, "d/ln").Xattr("trusted.which"); string(v) != "link" {
			t.Errorf("symlink's trusted.which = %q, want link", v)
		}
	})
}

func TestUnprivilegedTrusted(t *testing.T) {
	if unix.Geteuid() == 0 {
		t.Skip("running as root")
	}
	f := openFS(t, t.TempDir(), false)
	if f.TrustedXattrsVisible() {
		t.Error("TrustedXattrsVisible for an unprivileged user")
	}
}

func TestTimes(t *testing.T) {
	both(t, func(t *testing.T, f *FS, dir string) {
		p := filepath.Join(dir, "timed")
		if err := os.WriteFile(p, []byte("tick"), 0o644); err != nil {
			t.Fatal(err)
		}
		atime := unix.Timespec{Sec: 1_000_000_001, Nsec: 987654321}
		mtime := unix.Timespec{Sec: 1_000_000_000, Nsec: 123456789}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{atime, mtime}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			t.Fatal(err)
		}
		in := lookup(t, f, "timed")
		if !in.Mtime.Equal(time.Unix(mtime.Sec, mtime.Nsec)) || in.Mtime.Location() != time.UTC {
			t.Errorf("mtime %v", in.Mtime)
		}
		if !in.Atime.Equal(time.Unix(atime.Sec, atime.Nsec)) {
			t.Errorf("atime %v", in.Atime)
		}
		// Reading as the owner uses O_NOATIME: the old atime would
		// otherwise be updated even under relatime.
		vf, err := f.Open(in)
		if err != nil {
			t.Fatal(err)
		}
		if b, err := io.ReadAll(vf); err != nil || string(b) != "tick" {
			t.Errorf("read %q, %v", b, err)
		}
		vf.(io.Closer).Close()
		if again := lookup(t, f, "timed"); !again.Atime.Equal(in.Atime) {
			t.Errorf("atime changed by reading: %v -> %v", in.Atime, again.Atime)
		}

		var sx unix.Statx_t
		if err := unix.Statx(unix.AT_FDCWD, p, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_BTIME, &sx); err != nil {
			t.Fatal(err)
		}
		has := sx.Mask&unix.STATX_BTIME != 0
		if in.HasCrtime != has {
			t.Errorf("HasCrtime %v, statx says %v", in.HasCrtime, has)
		}
		if has && !in.Crtime.Equal(time.Unix(sx.Btime.Sec, int64(sx.Btime.Nsec))) {
			t.Errorf("crtime %v", in.Crtime)
		}
		if !has {
			t.Log("no birth time on this filesystem")
		}
	})
}

// A file or directory replaced after Lookup is noticed, not read.
func TestSwapped(t *testing.T) {
	both(t, func(t *testing.T, f *FS, dir string) {
		j := func(p string) string { return filepath.Join(dir, p) }
		os.WriteFile(j("victim"), []byte("original"), 0o644)
		os.WriteFile(j("evil"), []byte("planted"), 0o644)
		os.MkdirAll(j("sd/x"), 0o755)
		defer os.RemoveAll(j("sd"))
		defer os.RemoveAll(j("sd.old"))
		defer os.Remove(j("victim"))

		file, sd := lookup(t, f, "victim"), lookup(t, f, "sd")
		if err := os.Rename(j("evil"), j("victim")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(j("sd"), j("sd.old")); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(j("sd/x"), 0o755); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Open(file); err == nil || !strings.Contains(err.Error(), "changed since it was looked up") {
			t.Errorf("Open of a swapped file: %v", err)
		}
		if _, err := f.LookupAt(sd, "x"); err == nil || !strings.Contains(err.Error(), "changed") {
			t.Errorf("LookupAt in a swapped directory: %v", err)
		}
		if _, err := f.ReadDir(sd); err == nil || !strings.Contains(err.Error(), "changed") {
			t.Errorf("ReadDir of a swapped directory: %v", err)
		}
		// A directory replaced by a symlink to elsewhere is not followed.
		os.RemoveAll(j("sd"))
		os.Symlink("/etc", j("sd"))
		if _, err := f.ReadDir(sd); err == nil {
			t.Error("ReadDir followed a symlink swapped in")
		}
	})
}

func TestRootThroughSymlink(t *testing.T) {
	dir := tree(t)
	link := filepath.Join(t.TempDir(), "root")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	f := openFS(t, link, false)
	if f.Root() != link || f.DataBound() != 0 {
		t.Errorf("Root %q, DataBound %d", f.Root(), f.DataBound())
	}
	if in := lookup(t, f, "d/real/file"); !in.IsRegular() {
		t.Errorf("mode %o", in.Mode)
	}
	if _, err := Open(filepath.Join(dir, "hello")); !errors.Is(err, vfs.ErrNotDir) {
		t.Errorf("Open of a file as root: %v", err)
	}
	if _, err := Open(filepath.Join(dir, "nope")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open of a missing root: %v", err)
	}
}

func TestMountNotCrossed(t *testing.T) {
	if unix.Geteuid() != 0 {
		t.Skip("mount needs root")
	}
	both(t, func(t *testing.T, f *FS, dir string) {
		mnt := filepath.Join(dir, "mnt")
		os.Mkdir(mnt, 0o755)
		if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, ""); err != nil {
			t.Skip("mount:", err)
		}
		defer unix.Unmount(mnt, unix.MNT_DETACH)
		if _, err := f.Lookup("mnt"); err == nil || !strings.Contains(err.Error(), "mount point") {
			t.Errorf("Lookup across a mount: %v", err)
		}
	})
}

func TestPermission(t *testing.T) {
	if unix.Geteuid() == 0 {
		t.Skip("root reads everything")
	}
	both(t, func(t *testing.T, f *FS, dir string) {
		p := filepath.Join(dir, "closed")
		os.MkdirAll(filepath.Join(p, "x"), 0o755)
		os.Chmod(p, 0)
		defer os.Chmod(p, 0o755)
		if _, err := f.Lookup("closed/x"); !errors.Is(err, fs.ErrPermission) {
			t.Errorf("Lookup in an unreadable directory: %v", err)
		}
		if _, err := f.ReadDir(lookup(t, f, "closed")); !errors.Is(err, fs.ErrPermission) {
			t.Errorf("ReadDir of an unreadable directory: %v", err)
		}
	})
}

// Reading a file one does not own: O_NOATIME is refused (EPERM) and the
// open goes on without it.
func TestNotOwner(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(exe, &st); err != nil || int(st.Uid) == unix.Geteuid() || unix.Geteuid() == 0 {
		t.Skip("needs a test binary owned by another user")
	}
	f := openFS(t, filepath.Dir(exe), false)
	vf, err := f.Open(lookup(t, f, filepath.Base(exe)))
	if err != nil {
		t.Fatal(err)
	}
	defer vf.(io.Closer).Close()
	magic := make([]byte, 4)
	if _, err := vf.ReadAt(magic, 0); err != nil || string(magic) != "\x7fELF" {
		t.Errorf("read %q, %v", magic, err)
	}
}
