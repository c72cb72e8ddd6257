package tarfs

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ctrlift/ctrlift/vfs"
)

func needTool(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s not installed", name)
	}
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

const (
	badName   = "bad\xff\xfename"
	longName  = "long-directory-name-that-goes-on-and-on-and-on/" + "another-long-component-past-the-ustar-limit-of-one-hundred-bytes/file.txt"
	sparseLen = 10 << 20
)

// tree is a source tree built for the archive tests.
type tree struct {
	dir      string
	xattrs   bool // user.* xattrs could be set
	device   bool // a character device could be made (root)
	nanoTime time.Time
}

func buildTree(t testing.TB, special bool) *tree {
	t.Helper()
	tr := &tree{dir: t.TempDir(), nanoTime: time.Unix(1700000000, 123456789)}
	d := tr.dir
	write := func(name, content string, mode os.FileMode) {
		p := filepath.Join(d, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	write("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n", 0o644)
	write("etc/hostname", "box\n", 0o600)
	write("bin/su", "#!/bin/sh\n", 0o755|fs.ModeSetuid)
	write("a/b/c/d/deep.txt", strings.Repeat("deep\n", 1000), 0o640)
	write(longName, "long\n", 0o644)
	write(badName, "not utf-8\n", 0o644)
	write("empty", "", 0o644)
	write("docker/containers/abc/config.v2.json", `{"ID":"abc"}`, 0o644)
	if err := os.Chmod(filepath.Join(d, "etc"), 0o750); err != nil {
		t.Fatal(err)
	}
	if special {
		if err := os.Link(filepath.Join(d, "etc/passwd"), filepath.Join(d, "etc/passwd.hard")); err != nil {
			t.Fatal(err)
		}
		for name, target := range map[string]string{"link": "etc/passwd", "abs": "/etc/passwd", "up": "../../../etc/hostname", "dirlink": "a/b", "loop": "loop"} {
			if err := os.Symlink(target, filepath.Join(d, name)); err != nil {
				t.Fatal(err)
			}
		}
		if err := unix.Mkfifo(filepath.Join(d, "fifo"), 0o620); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mknod(filepath.Join(d, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err == nil {
			tr.device = true
		}
		// A sparse file: data at 4 KiB and 8 MiB, holes elsewhere, including
		// at the end.
		sp, err := os.Create(filepath.Join(d, "sparse.img"))
		if err != nil {
			t.Fatal(err)
		}
		if err := sp.Truncate(sparseLen); err != nil {
			t.Fatal(err)
		}
		if _, err := sp.WriteAt(bytes.Repeat([]byte("hello"), 1000), 4096); err != nil {
			t.Fatal(err)
		}
		if _, err := sp.WriteAt([]byte("the end"), 8<<20); err != nil {
			t.Fatal(err)
		}
		sp.Close()
		// A sparse file under a long name: GNU format puts an 'L' header
		// before its 'S' header, PAX a path record.
		sp2 := filepath.Join(d, filepath.Dir(longName), "sparse2")
		if err := os.WriteFile(sp2, []byte("head"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(sp2, 1<<20); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Lsetxattr(filepath.Join(d, "etc/passwd"), "user.test", []byte("\x00\xffraw=value\n"), 0); err == nil {
		tr.xattrs = true
		if err := unix.Lsetxattr(filepath.Join(d, "etc/passwd"), "user.empty", nil, 0); err != nil {
			t.Fatal(err)
		}
	}
	// Times last, once the contents are in place.
	err := filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.Type()&fs.ModeSymlink != 0 {
			return err
		}
		return os.Chtimes(p, tr.nanoTime, tr.nanoTime)
	})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// gnuTar archives dir with GNU tar into a file in a temporary directory.
func gnuTar(t testing.TB, dir string, extra ...string) string {
	t.Helper()
	needTool(t, "tar")
	out := filepath.Join(t.TempDir(), "x.tar")
	args := []string{"--numeric-owner", "--owner=1234", "--group=5678"}
	if slices.Contains(extra, "--format=pax") { // only PAX has xattrs
		args = append(args, "--xattrs", "--xattrs-include=*")
	}
	if !slices.Contains(extra, "--format=v7") { // v7 has no sparse members
		args = append(args, "--sparse")
	}
	args = append(args, extra...)
	args = append(args, "-cf", out, "-C", dir, ".")
	run(t, "tar", args...)
	return out
}

func openBytes(t testing.TB, b []byte) (*FS, error) {
	t.Helper()
	return Open(bytes.NewReader(b), int64(len(b)))
}

func mustOpenFile(t testing.TB, path string) *FS {
	t.Helper()
	f, err := OpenFile(path, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// dataMap lists the data stretches of the source file as SEEK_DATA and
// SEEK_HOLE report them.
func dataMap(t testing.TB, path string) [][2]int64 {
	t.Helper()
	fd, err := unix.Open(path, unix.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	var out [][2]int64
	for off := int64(0); off < st.Size; {
		start, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		end, err := unix.Seek(fd, start, unix.SEEK_HOLE)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, [2]int64{start, end})
		off = end
	}
	return out
}

func nextDataMap(t testing.TB, f vfs.File) [][2]int64 {
	t.Helper()
	var out [][2]int64
	for off := int64(0); off < f.Size(); {
		start, end, err := f.NextData(off)
		if err != nil {
			t.Fatal(err)
		}
		if start >= f.Size() {
			break
		}
		if end <= start || start < off {
			t.Fatalf("NextData(%d) = [%d, %d)", off, start, end)
		}
		out = append(out, [2]int64{start, end})
		off = end
	}
	return out
}

func readAll(t testing.TB, fsys *FS, in *vfs.Inode) []byte {
	t.Helper()
	f, err := fsys.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// compareTree checks every file of the source tree against the archive:
// type, permissions, owners (as given to tar), size, mtime to the
// nanosecond, link counts and shared inodes of hardlinks, device numbers,
// xattrs, symlink targets, contents and holes.
func compareTree(t *testing.T, tr *tree, fsys *FS) {
	t.Helper()
	inoOf := map[uint64]uint64{} // source inode -> archive inode
	seen := 0
	err := filepath.WalkDir(tr.dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(tr.dir, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		in, err := fsys.Lookup(rel)
		if err != nil {
			t.Errorf("%q: %v", rel, err)
			return nil
		}
		seen++
		if in.Mode != st.Mode {
			t.Errorf("%q: mode %o, want %o", rel, in.Mode, st.Mode)
		}
		if in.Uid != 1234 || in.Gid != 5678 {
			t.Errorf("%q: owner %d:%d, want 1234:5678", rel, in.Uid, in.Gid)
		}
		if !in.Mtime.Equal(time.Unix(st.Mtim.Unix())) {
			t.Errorf("%q: mtime %v, want %v", rel, in.Mtime, time.Unix(st.Mtim.Unix()))
		}
		if in.Atime.IsZero() || in.Ctime.IsZero() {
			t.Errorf("%q: atime %v ctime %v, want both recorded", rel, in.Atime, in.Ctime)
		}
		if !in.IsDir() && in.Nlink != uint32(st.Nlink) {
			t.Errorf("%q: nlink %d, want %d", rel, in.Nlink, st.Nlink)
		}
		if in.IsDir() && in.Nlink < 2 {
			t.Errorf("%q: directory nlink %d", rel, in.Nlink)
		}
		if prev, ok := inoOf[st.Ino]; ok && prev != in.Ino {
			t.Errorf("%q: hardlink has inode %d, its other name %d", rel, in.Ino, prev)
		}
		inoOf[st.Ino] = in.Ino
		if in.IsCharDev() || in.IsBlockDev() {
			if in.RdevMajor != unix.Major(st.Rdev) || in.RdevMinor != unix.Minor(st.Rdev) {
				t.Errorf("%q: device %d:%d, want %d:%d", rel, in.RdevMajor, in.RdevMinor, unix.Major(st.Rdev), unix.Minor(st.Rdev))
			}
		}
		if want := listXattrs(t, p); !slices.EqualFunc(in.Xattrs, want, func(a, b vfs.Xattr) bool { return a.Name == b.Name && bytes.Equal(a.Value, b.Value) }) {
			t.Errorf("%q: xattrs %q, want %q", rel, in.Xattrs, want)
		}
		switch {
		case in.IsSymlink():
			target, _ := os.Readlink(p)
			got, err := fsys.LinkTarget(in)
			if err != nil || got != target {
				t.Errorf("%q: readlink %q, %v; want %q", rel, got, err, target)
			}
			if in.Size != int64(len(target)) {
				t.Errorf("%q: symlink size %d", rel, in.Size)
			}
		case in.IsRegular():
			if in.Size != st.Size {
				t.Errorf("%q: size %d, want %d", rel, in.Size, st.Size)
			}
			want, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if got := readAll(t, fsys, in); !bytes.Equal(got, want) {
				t.Errorf("%q: contents differ (%d bytes, want %d)", rel, len(got), len(want))
			}
			f, _ := fsys.Open(in)
			got, want2 := nextDataMap(t, f), dataMap(t, p)
			if len(want2) == 0 && st.Size == 0 {
				want2 = nil
			}
			if !slices.Equal(got, want2) {
				t.Errorf("%q: data map %v, want %v", rel, got, want2)
			}
			if st.Blocks*512 < st.Size && !in.Sparse() {
				t.Errorf("%q: sparse in the source but not in the archive (blocks %d)", rel, in.Blocks)
			}
		default:
			if _, err := fsys.Open(in); err == nil {
				t.Errorf("%q: Open of a %o succeeded", rel, in.Mode&vfs.TypeMask)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen < 10 {
		t.Fatalf("only %d files compared", seen)
	}
}

func listXattrs(t testing.TB, p string) []vfs.Xattr {
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		return nil
	}
	var out []vfs.Xattr
	for name := range strings.SplitSeq(string(buf[:n]), "\x00") {
		if name == "" {
			continue
		}
		v := make([]byte, 64<<10)
		m, err := unix.Lgetxattr(p, name, v)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, vfs.Xattr{Name: name, Value: v[:m]})
	}
	slices.SortFunc(out, func(a, b vfs.Xattr) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func TestGNUTarPAX(t *testing.T) {
	tr := buildTree(t, true)
	if sp := filepath.Join(tr.dir, "sparse.img"); len(dataMap(t, sp)) != 2 {
		t.Skipf("the test directory's filesystem does not keep holes: %v", dataMap(t, sp))
	}
	t.Logf("user xattrs: %v, character device: %v", tr.xattrs, tr.device)
	path := gnuTar(t, tr.dir, "--format=pax")
	fsys := mustOpenFile(t, path)
	compareTree(t, tr, fsys)
	checkSemantics(t, tr, fsys)
	if fsys.Format() != "tar" {
		t.Errorf("format %q", fsys.Format())
	}
	in, _ := fsys.Lookup("sparse.img")
	if m := in.Sys.(*Member); m.Sparse != sparse1x0 {
		t.Errorf("sparse.img: sparse format %q, want 1.0", m.Sparse)
	}
	if !in.Sparse() || in.Blocks > 64 {
		t.Errorf("sparse.img: %d blocks for %d bytes", in.Blocks, in.Size)
	}
}

// TestGNUTarFormats reads the same tree archived in every GNU sparse
// format and in GNU (not PAX) format.
func TestGNUTarFormats(t *testing.T) {
	tr := buildTree(t, true)
	if sp := filepath.Join(tr.dir, "sparse.img"); len(dataMap(t, sp)) != 2 {
		t.Skip("the test directory's filesystem does not keep holes")
	}
	for _, c := range []struct {
		name   string
		args   []string
		sparse string
	}{
		{"pax-0.0", []string{"--format=pax", "--sparse-version=0.0"}, sparse0x},
		{"pax-0.1", []string{"--format=pax", "--sparse-version=0.1"}, sparse0x},
		{"gnu", []string{"--format=gnu"}, sparseOld},
	} {
		t.Run(c.name, func(t *testing.T) {
			fsys := mustOpenFile(t, gnuTar(t, tr.dir, c.args...))
			in, err := fsys.Lookup("sparse.img")
			if err != nil {
				t.Fatal(err)
			}
			if m := in.Sys.(*Member); m.Sparse != c.sparse {
				t.Errorf("sparse format %q, want %q", m.Sparse, c.sparse)
			}
			sp2 := path.Join(path.Dir(longName), "sparse2")
			in2, err := fsys.Lookup(sp2)
			if err != nil {
				t.Fatal(err)
			}
			if m := in2.Sys.(*Member); m.Sparse != c.sparse || in2.Size != 1<<20 || string(readAll(t, fsys, in2)[:5]) != "head\x00" {
				t.Errorf("%s: sparse %q size %d", sp2, m.Sparse, in2.Size)
			}
			f, _ := fsys.Open(in)
			if got, want := nextDataMap(t, f), dataMap(t, filepath.Join(tr.dir, "sparse.img")); !slices.Equal(got, want) {
				t.Errorf("data map %v, want %v", got, want)
			}
			want, _ := os.ReadFile(filepath.Join(tr.dir, "sparse.img"))
			if got := readAll(t, fsys, in); !bytes.Equal(got, want) {
				t.Error("sparse.img contents differ")
			}
			if c.name != "gnu" { // GNU format keeps neither nanoseconds nor xattrs
				compareTree(t, tr, fsys)
			}
		})
	}
}

// TestCompressed opens gzip, zstd and xz archives and checks that the
// temporary copy leaves nothing behind.
func TestCompressed(t *testing.T) {
	tr := buildTree(t, true)
	plain := gnuTar(t, tr.dir, "--format=pax")
	for _, c := range []struct{ tool, format string }{{"gzip", "gzip"}, {"zstd", "zstd"}, {"xz", "xz"}} {
		t.Run(c.tool, func(t *testing.T) {
			needTool(t, c.tool)
			dir := t.TempDir()
			comp := filepath.Join(dir, "archive.bin") // no telling extension
			out, err := exec.Command(c.tool, "-c", plain).Output()
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(comp, out, 0o644); err != nil {
				t.Fatal(err)
			}
			tmp := t.TempDir()
			fsys, err := OpenFile(comp, tmp)
			if err != nil {
				t.Fatal(err)
			}
			defer fsys.Close()
			if fsys.Format() != c.format+"+tar" {
				t.Errorf("format %q", fsys.Format())
			}
			if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
				t.Errorf("temporary directory holds %v", ents)
			}
			compareTree(t, tr, fsys)
			// A truncated compressed archive is a clean error.
			if err := os.WriteFile(comp, out[:len(out)/2], 0o644); err != nil {
				t.Fatal(err)
			}
			if f, err := OpenFile(comp, tmp); err == nil {
				f.Close()
				t.Error("truncated compressed archive opened")
			} else {
				t.Logf("truncated: %v", err)
			}
		})
	}
}

// checkSemantics exercises the vfs.FS and io/fs rules on a tree built with
// special files.
func checkSemantics(t *testing.T, tr *tree, fsys *FS) {
	t.Helper()
	root, err := fsys.Lookup(".")
	if err != nil || !root.IsDir() || root.Ino != RootIno {
		t.Fatalf("root: %v, %v", root, err)
	}
	if r2, _ := fsys.Lookup(""); r2 == nil || r2.Ino != root.Ino {
		t.Error(`Lookup("") is not the root`)
	}
	_, err = fsys.Lookup("dirlink/c")
	if want := `tarfs: lookup "dirlink/c": component before "c" is a symlink (not followed)`; err == nil || err.Error() != want {
		t.Errorf("lookup through a symlink: %v, want %s", err, want)
	}
	if _, err := fsys.Lookup("etc/passwd/x"); !errors.Is(err, vfs.ErrNotDir) {
		t.Errorf("lookup under a file: %v", err)
	}
	if _, err := fsys.Lookup("etc/nothing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("lookup of a missing file: %v", err)
	}
	etc, _ := fsys.Lookup("etc")
	if _, err := fsys.LookupAt(etc, "nothing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LookupAt missing: %v", err)
	}
	passwd, err := fsys.LookupAt(etc, "passwd")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.LookupAt(passwd, "x"); !errors.Is(err, vfs.ErrNotDir) {
		t.Errorf("LookupAt in a file: %v", err)
	}
	if _, err := fsys.ReadDir(passwd); !errors.Is(err, vfs.ErrNotDir) {
		t.Errorf("ReadDir of a file: %v", err)
	}
	if _, err := fsys.Open(etc); err == nil {
		t.Error("Open of a directory succeeded")
	}
	if _, err := fsys.LinkTarget(passwd); err == nil {
		t.Error("LinkTarget of a file succeeded")
	}
	ents, err := fsys.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name)
	}
	if !slices.IsSorted(names) || !slices.Contains(names, badName) {
		t.Errorf("root lists %q", names)
	}
	if fsys.DataBound() != fsys.Size() || fsys.Size() <= 0 {
		t.Errorf("DataBound %d, size %d", fsys.DataBound(), fsys.Size())
	}
	if tr.device {
		null, err := fsys.Lookup("null")
		if err != nil || !null.IsCharDev() || null.RdevMajor != 1 || null.RdevMinor != 3 {
			t.Errorf("null: %+v, %v", null, err)
		}
	}
	if tr.xattrs {
		v, ok := passwd.Xattr("user.test")
		if !ok || string(v) != "\x00\xffraw=value\n" {
			t.Errorf("user.test = %q, %v", v, ok)
		}
		if v, ok := passwd.Xattr("user.empty"); !ok || len(v) != 0 {
			t.Errorf("user.empty = %q, %v", v, ok)
		}
	}
	// Reads at odd offsets across the holes of the sparse file.
	sp, _ := fsys.Lookup("sparse.img")
	f, err := fsys.Open(sp)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(filepath.Join(tr.dir, "sparse.img"))
	for _, off := range []int64{0, 4000, 4095, 4096, 4100, 9000, 8<<20 - 3, 8 << 20, sparseLen - 10} {
		buf := make([]byte, 5000)
		n, err := f.ReadAt(buf, off)
		wantN := min(5000, int64(len(want))-off)
		if int64(n) != wantN || (err != nil) != (wantN < 5000) || !bytes.Equal(buf[:n], want[off:off+int64(n)]) {
			t.Errorf("ReadAt(%d): %d, %v", off, n, err)
		}
	}
	if s, e, err := f.NextData(sparseLen - 1); err != nil || s != sparseLen || e != sparseLen {
		t.Errorf("NextData in the final hole: %d, %d, %v", s, e, err)
	}

	// io/fs: symlinks followed inside the archive only.
	iofs := fsys.IOFS()
	if b, err := fs.ReadFile(iofs, "link"); err != nil || string(b) != "root:x:0:0:root:/root:/bin/sh\n" {
		t.Errorf("read through link: %q, %v", b, err)
	}
	if b, err := fs.ReadFile(iofs, "up"); err != nil || string(b) != "box\n" {
		t.Errorf("read through ../ link: %q, %v", b, err)
	}
	if b, err := fs.ReadFile(iofs, "abs"); err != nil || string(b) != "root:x:0:0:root:/root:/bin/sh\n" {
		t.Errorf("read through absolute link: %q, %v (stays at the root)", b, err)
	}
	if st, err := iofs.Stat("link"); err != nil || !st.Mode().IsRegular() {
		t.Errorf("Stat follows: %v, %v", st, err)
	}
	if st, err := iofs.Lstat("link"); err != nil || st.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("Lstat does not follow: %v, %v", st, err)
	}
	if tgt, err := iofs.ReadLink("abs"); err != nil || tgt != "/etc/passwd" {
		t.Errorf("ReadLink: %q, %v", tgt, err)
	}
	if _, err := iofs.Stat("loop"); err == nil || !strings.Contains(err.Error(), "too many levels") {
		t.Errorf("Stat of a loop: %v", err)
	}
	if ents, err := iofs.ReadDir("dirlink/c"); err != nil || len(ents) != 1 || ents[0].Name() != "d" {
		t.Errorf("ReadDir through a link: %v, %v", ents, err)
	}
	if st, err := fs.Stat(iofs, "bin/su"); err != nil || st.Mode() != fs.ModeSetuid|0o755 {
		t.Errorf("bin/su: %v, %v", st, err)
	}
	if b, err := fs.ReadFile(iofs, badName); err != nil || string(b) != "not utf-8\n" {
		t.Errorf("non-UTF-8 name: %q, %v", b, err)
	}
	if _, err := fs.ReadFile(iofs, "fifo"); err == nil {
		t.Error("read of a FIFO succeeded")
	}
	if _, err := iofs.Open("../etc"); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("Open(../etc): %v", err)
	}
}

// TestFSTest runs testing/fstest on a symlink-free tree.
func TestFSTest(t *testing.T) {
	tr := buildTree(t, false)
	if err := os.Remove(filepath.Join(tr.dir, badName)); err != nil { // fstest wants valid UTF-8 paths
		t.Fatal(err)
	}
	fsys := mustOpenFile(t, gnuTar(t, tr.dir, "--format=pax"))
	if err := fstest.TestFS(fsys.IOFS(), "etc/passwd", "bin/su", "a/b/c/d/deep.txt", longName, "empty"); err != nil {
		t.Fatal(err)
	}
}

// goTar writes an archive with archive/tar; data of a header is its
// Linkname for regular files when body is empty.
type goMember struct {
	hdr  tar.Header
	body string
}

func goTar(t testing.TB, members ...goMember) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range members {
		h := m.hdr
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag == tar.TypeReg && h.Size == 0 {
			h.Size = int64(len(m.body))
		}
		if h.Mode == 0 && h.Typeflag != tar.TypeXGlobalHeader {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, m.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func reg(name, body string) goMember {
	return goMember{hdr: tar.Header{Name: name, Typeflag: tar.TypeReg}, body: body}
}

func TestHostile(t *testing.T) {
	ok := goTar(t, reg("a", "aaaa"), reg("dir/b", strings.Repeat("b", 2000)))
	huge := func() []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		if err := tw.WriteHeader(&tar.Header{Name: "big", Typeflag: tar.TypeReg, Size: 1 << 50, Mode: 0o644}); err != nil {
			t.Fatal(err)
		}
		if err := tw.Flush(); err == nil { // the header alone; no data, no end marker
			t.Fatal("flush of a short member succeeded")
		}
		return append(buf.Bytes(), make([]byte, 4096)...)
	}()
	for _, c := range []struct {
		name string
		data []byte
		want string // in the error
	}{
		{"dotdot", goTar(t, reg("a", "x"), reg("x/../../etc/passwd", "evil")), `member "x/../../etc/passwd" at offset 1024: name "x/../../etc/passwd" has a ".." component`},
		{"absolute", goTar(t, reg("/etc/passwd", "evil")), `member "/etc/passwd" at offset 0: absolute name`},
		{"hardlink-missing", goTar(t, reg("a", "x"), goMember{hdr: tar.Header{Name: "l", Typeflag: tar.TypeLink, Linkname: "nothing"}}), `member "l" at offset 1024: hardlink to "nothing"`},
		{"hardlink-dotdot", goTar(t, goMember{hdr: tar.Header{Name: "l", Typeflag: tar.TypeLink, Linkname: "../x"}}), `member "l" at offset 0: hardlink target`},
		{"hardlink-dir", goTar(t, goMember{hdr: tar.Header{Name: "d/", Typeflag: tar.TypeDir}}, goMember{hdr: tar.Header{Name: "l", Typeflag: tar.TypeLink, Linkname: "d"}}), `a directory`},
		{"truncated-data", ok[:1536+100], `member "dir/b" at offset 1024: 2000 bytes of data at offset 1536 run past the end of the archive (1636 bytes)`},
		{"truncated-header", ok[:1024+100], "tarfs: reading the header at offset 1024: unexpected EOF"},
		{"huge-size", huge, `member "big" at offset 0: 1125899906842624 bytes of data at offset 1536 run past the end`},
		{"parent-file", goTar(t, reg("a", "x"), reg("a/b", "y")), `parent "a" is not a directory`},
		{"garbage", bytes.Repeat([]byte("garbage!"), 128), "tarfs: reading the header at offset 0"},
		{"root-file", goTar(t, reg(".", "x")), "root that is not a directory"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := openBytes(t, c.data)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
			t.Log(err)
		})
	}
	var me *MemberError
	_, err := openBytes(t, goTar(t, reg("../x", "")))
	if !errors.As(err, &me) || me.Name != "../x" || me.Offset != 0 {
		t.Errorf("error %v is not a MemberError naming the member", err)
	}
}

func TestNamesAndDuplicates(t *testing.T) {
	data := goTar(t,
		goMember{hdr: tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o700, Uid: 7}},
		reg("./x/y/z", "first"),
		reg("./x/y/z", "second"),
		goMember{hdr: tar.Header{Name: "x/", Typeflag: tar.TypeDir, Mode: 0o711, Uid: 9, ModTime: time.Unix(5, 0)}},
		goMember{hdr: tar.Header{Name: "h1", Typeflag: tar.TypeLink, Linkname: "./x/y/z"}},
		goMember{hdr: tar.Header{Name: "h2", Typeflag: tar.TypeLink, Linkname: "x//y/z/"}},
		reg("h2", "replaced"),
		goMember{hdr: tar.Header{Name: "s", Typeflag: tar.TypeSymlink, Linkname: "\xff/../target"}},
		goMember{hdr: tar.Header{Typeflag: tar.TypeXGlobalHeader, PAXRecords: map[string]string{"comment": "hi"}}},
		goMember{hdr: tar.Header{Name: "cdev", Typeflag: tar.TypeChar, Devmajor: 4, Devminor: 64, Mode: 0o620}},
		goMember{hdr: tar.Header{Name: "bdev", Typeflag: tar.TypeBlock, Devmajor: 8, Devminor: 1, Mode: 0o660}},
		goMember{hdr: tar.Header{Name: "px", Typeflag: tar.TypeReg, ModTime: time.Unix(1700000000, 1), Format: tar.FormatPAX, PAXRecords: map[string]string{
			"SCHILY.xattr.user.b":                  "raw\x00",
			"SCHILY.xattr.security.capability":     "\x01\x00\x00\x02",
			"LIBARCHIVE.xattr.user.b":              "aWdub3JlZA", // SCHILY wins
			"LIBARCHIVE.xattr.user.%61%20sp":       "dmFsdWU",
			"LIBARCHIVE.creationtime":              "1600000000.5",
			"SCHILY.xattr.trusted.overlay.opaque":  "y",
			"LIBARCHIVE.xattr.trusted.overlay.foo": "eA==",
		}}, body: "pax"},
	)
	fsys, err := openBytes(t, data)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := fsys.Lookup(".")
	if root.Mode != vfs.TypeDir|0o700 || root.Uid != 7 {
		t.Errorf("root %o uid %d", root.Mode, root.Uid)
	}
	x, _ := fsys.Lookup("x")
	if x.Mode != vfs.TypeDir|0o711 || x.Uid != 9 || x.Sys.(*Member).Synthesized {
		t.Errorf("x: %o uid %d %+v", x.Mode, x.Uid, x.Sys)
	}
	y, _ := fsys.Lookup("x/y")
	if y.Mode != vfs.TypeDir|0o755 || y.Uid != 0 || !y.Mtime.IsZero() || !y.Sys.(*Member).Synthesized {
		t.Errorf("synthesized x/y: %o uid %d mtime %v", y.Mode, y.Uid, y.Mtime)
	}
	z, _ := fsys.Lookup("x/y/z")
	if b := readAll(t, fsys, z); string(b) != "second" {
		t.Errorf("x/y/z = %q, want the later member", b)
	}
	h1, _ := fsys.Lookup("h1")
	if h1.Ino != z.Ino || z.Nlink != 2 || h1.Nlink != 2 {
		t.Errorf("hardlink: ino %d vs %d, nlink %d", h1.Ino, z.Ino, z.Nlink)
	}
	h2, _ := fsys.Lookup("h2")
	if h2.Ino == z.Ino || string(readAll(t, fsys, h2)) != "replaced" {
		t.Errorf("h2 not replaced")
	}
	s, _ := fsys.Lookup("s")
	if tgt, _ := fsys.LinkTarget(s); tgt != "\xff/../target" {
		t.Errorf("readlink %q", tgt)
	}
	c, _ := fsys.Lookup("cdev")
	if c.Mode != vfs.TypeChar|0o620 || c.RdevMajor != 4 || c.RdevMinor != 64 {
		t.Errorf("cdev %o %d:%d", c.Mode, c.RdevMajor, c.RdevMinor)
	}
	b, _ := fsys.Lookup("bdev")
	if b.Mode != vfs.TypeBlock|0o660 || b.RdevMajor != 8 || b.RdevMinor != 1 {
		t.Errorf("bdev %o %d:%d", b.Mode, b.RdevMajor, b.RdevMinor)
	}
	px, _ := fsys.Lookup("px")
	var got []string
	for _, x := range px.Xattrs {
		got = append(got, fmt.Sprintf("%s=%q", x.Name, x.Value))
	}
	want := []string{`security.capability="\x01\x00\x00\x02"`, `trusted.overlay.foo="x"`, `trusted.overlay.opaque="y"`, `user.a sp="value"`, `user.b="raw\x00"`}
	if !slices.Equal(got, want) {
		t.Errorf("xattrs %q, want %q", got, want)
	}
	if !px.HasCrtime || !px.Crtime.Equal(time.Unix(1600000000, 5e8)) || !px.Mtime.Equal(time.Unix(1700000000, 1)) {
		t.Errorf("times: crtime %v mtime %v", px.Crtime, px.Mtime)
	}
	notes := strings.Join(fsys.Notes(), "\n")
	for _, w := range []string{`member "x/y/z" at offset 1536 replaces the one at offset 512`, "global PAX header", `member "h2"`} {
		if !strings.Contains(notes, w) {
			t.Errorf("notes lack %q:\n%s", w, notes)
		}
	}
	if root.Nlink != 3 {
		t.Errorf("root nlink %d, want 3 (one subdirectory)", root.Nlink)
	}
}

// sparsePAX builds a PAX 1.0 sparse member by hand (archive/tar cannot
// write one): realsize bytes with the given data fragments.
func sparsePAX(name string, realsize int64, frags [][2]int64, fill byte, mapText string) []byte {
	var data bytes.Buffer
	if mapText == "" {
		mapText = fmt.Sprintf("%d\n", len(frags))
		for _, f := range frags {
			mapText += fmt.Sprintf("%d\n%d\n", f[0], f[1])
		}
	}
	data.WriteString(mapText)
	pad(&data)
	for _, f := range frags {
		data.Write(bytes.Repeat([]byte{fill}, int(f[1])))
	}
	stored := data.Len()
	pad(&data)
	recs := map[string]string{
		"GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.name": name,
		"GNU.sparse.realsize": fmt.Sprint(realsize),
	}
	var out bytes.Buffer
	paxData := paxRecords(recs)
	out.Write(rawHeader("./PaxHeaders/x", 'x', int64(len(paxData))))
	out.WriteString(paxData)
	pad(&out)
	out.Write(rawHeader("./GNUSparseFile.0/x", '0', int64(stored)))
	out.Write(data.Bytes())
	return out.Bytes()
}

func paxRecords(recs map[string]string) string {
	keys := make([]string, 0, len(recs))
	for k := range recs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var s strings.Builder
	for _, k := range keys {
		body := " " + k + "=" + recs[k] + "\n"
		n := len(body) + 1
		for len(fmt.Sprint(n))+len(body) != n {
			n++
		}
		fmt.Fprintf(&s, "%d%s", n, body)
	}
	return s.String()
}

func pad(b *bytes.Buffer) {
	if r := b.Len() % 512; r != 0 {
		b.Write(make([]byte, 512-r))
	}
}

func rawHeader(name string, typ byte, size int64) []byte {
	h := make([]byte, 512)
	copy(h, name)
	copy(h[100:], "0000644\x00")
	copy(h[108:], "0000000\x00")
	copy(h[116:], "0000000\x00")
	copy(h[124:], fmt.Sprintf("%011o\x00", size))
	copy(h[136:], "00000000000\x00")
	h[156] = typ
	copy(h[257:], "ustar\x0000")
	copy(h[148:], "        ")
	sum := 0
	for _, c := range h {
		sum += int(c)
	}
	copy(h[148:], fmt.Sprintf("%06o\x00 ", sum))
	return h
}

func endArchive(b []byte) []byte { return append(b, make([]byte, 1024)...) }

func TestSparseHandmade(t *testing.T) {
	good := endArchive(sparsePAX("s", 1<<40, [][2]int64{{100, 10}, {110, 5}, {1 << 30, 3}, {1<<40 - 1, 1}, {1 << 40, 0}}, 'z', ""))
	fsys, err := openBytes(t, good)
	if err != nil {
		t.Fatal(err)
	}
	in, err := fsys.Lookup("s")
	if err != nil {
		t.Fatal(err)
	}
	if in.Size != 1<<40 || in.Blocks != 1 {
		t.Errorf("size %d blocks %d", in.Size, in.Blocks)
	}
	f, _ := fsys.Open(in)
	if got := nextDataMap(t, f); !slices.Equal(got, [][2]int64{{100, 115}, {1 << 30, 1<<30 + 3}, {1<<40 - 1, 1 << 40}}) {
		t.Errorf("data map %v", got)
	}
	buf := make([]byte, 20)
	if n, err := f.ReadAt(buf, 98); n != 20 || err != nil || string(buf) != "\x00\x00zzzzzzzzzzzzzzz\x00\x00\x00" {
		t.Errorf("ReadAt: %d %v %q", n, err, buf)
	}
	if n, err := f.ReadAt(buf, 1<<40-2); n != 2 || err != io.EOF || string(buf[:2]) != "\x00z" {
		t.Errorf("ReadAt end: %d %v %q", n, err, buf[:2])
	}
	for _, c := range []struct {
		name, want string
		data       []byte
	}{
		{"beyond-size", "invalid tar header", sparsePAX("s", 100, [][2]int64{{95, 10}}, 'z', "")},
		{"overlap", "invalid tar header", sparsePAX("s", 100, [][2]int64{{10, 10}, {15, 10}}, 'z', "")},
		{"more-than-stored", "references", sparsePAX("s", 1000, [][2]int64{{0, 10}}, 'z', "1\n0\n900\n")},
		{"bad-count", "archive/tar", sparsePAX("s", 1000, nil, 'z', "99999999999999999999\n")},
		{"huge-count", "", sparsePAX("s", 1000, nil, 'z', "100000\n")},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := openBytes(t, endArchive(c.data))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
			t.Log(err)
		})
	}
}

// TestDockerExplorer reads a real-world archive of /var/lib/docker when
// it is present.
func TestDockerExplorer(t *testing.T) {
	const path = "/work/shared/realworld/docker-explorer/overlay2.v2.tgz"
	if _, err := os.Stat(path); err != nil {
		t.Skip(err)
	}
	fsys := mustOpenFile(t, path)
	t.Logf("%s: %d bytes of tar, %d inodes, notes %q", fsys.Format(), fsys.Size(), len(fsys.nodes), fsys.Notes())
	ents, err := fs.ReadDir(fsys.IOFS(), "docker/containers")
	if err != nil {
		t.Fatal(err)
	}
	dirs := 0
	parsed := 0
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		dirs++
		b, err := fs.ReadFile(fsys.IOFS(), "docker/containers/"+e.Name()+"/config.v2.json")
		if err != nil {
			continue
		}
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Errorf("%s: %v", e.Name(), err)
		}
		parsed++
	}
	if dirs != 5 || parsed == 0 {
		t.Errorf("%d container directories, %d config.v2.json parsed; want 5 and some", dirs, parsed)
	}
}

func TestEmptyAndClose(t *testing.T) {
	fsys, err := openBytes(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ents, _ := fsys.ReadDir(fsys.Root()); len(ents) != 0 {
		t.Errorf("empty archive lists %v", ents)
	}
	if err := fsys.Close(); err != nil {
		t.Error(err)
	}
	p := filepath.Join(t.TempDir(), "x")
	if err := os.WriteFile(p, []byte("BZh91AY&SY"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenFile(p, ""); err == nil || !strings.Contains(err.Error(), "bzip2") {
		t.Errorf("bzip2: %v", err)
	}
}

// TestMain shortens the fuzzer's minimization of new inputs unless
// -fuzzminimizetime is given: its default (60s) is spent whole on any
// input of a kilobyte or more (it tries removing every subset of bytes),
// and a tar archive cannot be smaller, so a 60s run would do nothing else.
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(fl *flag.Flag) { set = set || fl.Name == "test.fuzzminimizetime" })
	if !set {
		flag.Set("test.fuzzminimizetime", "2s")
	}
	os.Exit(m.Run())
}

func FuzzOpen(f *testing.F) {
	// Small seeds without the end-of-archive marker (archive/tar takes
	// the end of the input for one): the fuzzer minimizes every new input
	// byte by byte, which is slow on long ones.
	small := goTar(f, reg("d/a", "aaaa"), goMember{hdr: tar.Header{Name: "l", Typeflag: tar.TypeLink, Linkname: "d/a"}})
	f.Add(small[:len(small)-1024])
	sp := sparsePAX("s", 5000, [][2]int64{{100, 10}, {4000, 5}}, 'z', "")
	f.Add(sp)
	f.Fuzz(func(t *testing.T, data []byte) {
		fsys, err := openBytes(t, data)
		if err != nil {
			return
		}
		// Read everything: no panic, no read past the archive.
		for _, n := range fsys.nodes {
			in := fsys.vfsInode(n)
			if !in.IsRegular() {
				continue
			}
			fl, err := fsys.Open(in)
			if err != nil {
				t.Fatal(err)
			}
			if in.Size > 1<<20 {
				nextDataMap(t, fl)
				continue
			}
			if _, err := io.Copy(io.Discard, fl); err != nil {
				t.Fatal(err)
			}
		}
		fs.WalkDir(fsys.IOFS(), ".", func(string, fs.DirEntry, error) error { return nil })
	})
}

// TestGNUTarOtherFormats reads a GNU incremental archive (directories
// as 'D' dumpdir members) and a pre-POSIX v7 archive (no ustar magic).
func TestGNUTarOtherFormats(t *testing.T) {
	tr := buildTree(t, false)
	if err := os.RemoveAll(filepath.Join(tr.dir, strings.Split(longName, "/")[0])); err != nil { // v7 names stop at 100 bytes
		t.Fatal(err)
	}
	snap := filepath.Join(t.TempDir(), "snap")
	for _, c := range []struct {
		name string
		args []string
	}{
		{"incremental", []string{"--format=gnu", "--listed-incremental=" + snap}},
		{"v7", []string{"--format=v7"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			fsys := mustOpenFile(t, gnuTar(t, tr.dir, c.args...))
			for _, p := range []string{"etc/passwd", "a/b/c/d/deep.txt", "bin/su", badName} {
				in, err := fsys.Lookup(p)
				if err != nil {
					t.Fatal(err)
				}
				want, _ := os.ReadFile(filepath.Join(tr.dir, p))
				if got := readAll(t, fsys, in); !bytes.Equal(got, want) {
					t.Errorf("%q: contents differ", p)
				}
				if in.Uid != 1234 || in.Gid != 5678 {
					t.Errorf("%q: owner %d:%d", p, in.Uid, in.Gid)
				}
			}
			d, err := fsys.Lookup("a/b")
			if err != nil || !d.IsDir() {
				t.Fatalf("a/b: %v, %v", d, err)
			}
			if c.name == "incremental" && d.Sys.(*Member).Typeflag != 'D' {
				t.Errorf("a/b typeflag %q, want D", d.Sys.(*Member).Typeflag)
			}
		})
	}
}

// BenchmarkOpen indexes an archive of many small members and reports the
// memory held per member.
func BenchmarkOpen(b *testing.B) {
	const n = 200_000
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := range n {
		name := fmt.Sprintf("var/lib/docker/overlay2/%04d/diff/usr/lib/file-%d", i%1000, i)
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Size: 100, Mode: 0o644, Uid: 1, Gid: 2, ModTime: time.Unix(1700000000, 0)}); err != nil {
			b.Fatal(err)
		}
		tw.Write(make([]byte, 100))
	}
	tw.Close()
	data := buf.Bytes()
	b.ResetTimer()
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		start := time.Now()
		fsys, err := openBytes(b, data)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(time.Since(start).Nanoseconds())/n, "indexns/member")
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heapB/member")
		b.ReportMetric(float64(len(data))/n, "archiveB/member")
		runtime.KeepAlive(fsys)
	}
}
