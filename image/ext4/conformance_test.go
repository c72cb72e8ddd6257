package ext4_test

// Conformance: the reader against images made by the real e2fsprogs tools
// (testdata/images/ext4/make-ext4.py) and against the COS node fixture. The
// expectations come from the source trees and from debugfs, never from this
// package.

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ctrlift/ctrlift/image/ext4"
)

// Type bits of i_mode and the dirent file type codes, from the ext4 layout.
const (
	TypeMask = 0o170000
	flIndex  = 0x1000     // EXT4_INDEX_FL: hash-tree directory
	flInl    = 0x10000000 // EXT4_INLINE_DATA_FL
)

var typeOfName = map[string]struct {
	ifmt uint32
	mode fs.FileMode
	ft   uint8
}{
	"file":    {0o100000, 0, 1},
	"dir":     {0o040000, fs.ModeDir, 2},
	"char":    {0o020000, fs.ModeDevice | fs.ModeCharDevice, 3},
	"block":   {0o060000, fs.ModeDevice, 4},
	"fifo":    {0o010000, fs.ModeNamedPipe, 5},
	"socket":  {0o140000, fs.ModeSocket, 6},
	"symlink": {0o120000, fs.ModeSymlink, 7},
}

func TestConformance(t *testing.T) {
	names := fixtureImageNames(t)
	if len(names) == 0 {
		t.Fatal("no images in testdata/images/ext4 (run make-ext4.py)")
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			doc := loadExpect(t, name)
			fsys := openFixtureImage(t, name)
			if w := fsys.Warnings(); len(w) > 0 {
				t.Errorf("clean image, but warnings: %q", w)
			}
			checkImage(t, fsys, doc)
		})
	}
}

// TestMakeExt4Script runs the fixture generator for a few quick images into a
// temporary directory and checks the reader against what it produced, so the
// path from real tools to expectations is exercised, not only its committed
// output. CTRLIFT_EXT4_REGEN=all (or a comma-separated list) picks the images.
func TestMakeExt4Script(t *testing.T) {
	if testing.Short() {
		t.Skip("runs mke2fs, debugfs and e2fsck")
	}
	if os.Geteuid() != 0 {
		t.Skip("the generator needs root (chown, mknod, trusted.* xattrs)")
	}
	needTools(t, "python3", "mke2fs", "debugfs", "e2fsck", "dumpe2fs")
	names := []string{"ext4-inline", "ext2-1k"}
	if v := os.Getenv("CTRLIFT_EXT4_REGEN"); v == "all" {
		names = fixtureImageNames(t)
	} else if v != "" {
		names = strings.Split(v, ",")
	}
	script := filepath.Join(ext4FixtureDir(t), "make-ext4.py")
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			out := t.TempDir()
			cmd := exec.Command("python3", script, "-o", out, "--no-compress", name)
			cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("make-ext4.py %s: %v\n%s", name, err, b)
			}
			doc := loadExpectFrom(t, out, name)
			fsys, err := ext4.Open(filepath.Join(out, name+".img"))
			if err != nil {
				t.Fatal(err)
			}
			defer fsys.Close()
			if w := fsys.Warnings(); len(w) > 0 {
				t.Errorf("clean image, but warnings: %q", w)
			}
			checkImage(t, fsys, doc)
		})
	}
}

func checkImage(t *testing.T, fsys *ext4.FS, doc *expectDoc) {
	errs := &errLimiter{t: t, max: 40}
	byPath := map[string]*expectEntry{}
	children := map[string][]string{}
	for i := range doc.Entries {
		e := &doc.Entries[i]
		p := e.name()
		byPath[p] = e
		if p != "." {
			children[path.Dir(p)] = append(children[path.Dir(p)], path.Base(p))
		}
	}

	// fs.WalkDir must reach exactly the expected names.
	seen := map[string]bool{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			errs.Errorf("walk %q: %v", p, err)
			return nil
		}
		seen[p] = true
		e := byPath[p]
		if e == nil {
			errs.Errorf("walk found %q, which is not in the image", p)
			return nil
		}
		if want := typeOfName[e.Type].mode; d.Type() != want.Type() {
			errs.Errorf("%q: DirEntry.Type() = %v, want %v", p, d.Type(), want.Type())
		}
		return nil
	})
	if err != nil {
		t.Fatalf("WalkDir: %v", err)
	}
	for p := range byPath {
		if !seen[p] {
			errs.Errorf("walk missed %q", p)
		}
	}

	filetype := slices.Contains(doc.Features, "filetype")
	for i := range doc.Entries {
		checkEntry(t, errs, fsys, &doc.Entries[i], byPath, children[doc.Entries[i].name()], filetype)
	}
	checkFacts(t, errs, fsys, doc)
}

func checkEntry(t *testing.T, errs *errLimiter, fsys *ext4.FS, e *expectEntry, byPath map[string]*expectEntry, kids []string, filetype bool) {
	p := e.name()
	fi, err := fs.Lstat(fsys, p)
	if err != nil {
		errs.Errorf("Lstat(%q): %v", p, err)
		return
	}
	in, ok := fi.Sys().(*ext4.Inode)
	if !ok {
		errs.Errorf("%q: Sys() is %T, want *ext4.Inode", p, fi.Sys())
		return
	}
	if want := path.Base(p); p != "." && fi.Name() != want {
		errs.Errorf("%q: Name() = %q, want %q", p, fi.Name(), want)
	}
	if lin, err := fsys.Lookup(p); err != nil || lin.Num != in.Num {
		errs.Errorf("%q: Lookup = %v, %v; Lstat gave inode %d", p, lin, err, in.Num)
	}
	if in.Num != e.Ino {
		errs.Errorf("%q: inode %d, debugfs says %d", p, in.Num, e.Ino)
	}
	ty := typeOfName[e.Type]
	if uint32(in.Mode) != e.Mode {
		errs.Errorf("%q: Mode %#o, want %#o", p, in.Mode, e.Mode)
	}
	wantMode := ty.mode | fs.FileMode(e.Mode&0o777)
	if e.Mode&0o4000 != 0 {
		wantMode |= fs.ModeSetuid
	}
	if e.Mode&0o2000 != 0 {
		wantMode |= fs.ModeSetgid
	}
	if e.Mode&0o1000 != 0 {
		wantMode |= fs.ModeSticky
	}
	if fi.Mode() != wantMode || in.FileMode() != wantMode {
		errs.Errorf("%q: FileMode %v (Inode.FileMode %v), want %v", p, fi.Mode(), in.FileMode(), wantMode)
	}
	if fi.IsDir() != (e.Type == "dir") {
		errs.Errorf("%q: IsDir() = %v", p, fi.IsDir())
	}
	if in.Uid != e.Uid || in.Gid != e.Gid {
		errs.Errorf("%q: owner %d:%d, want %d:%d", p, in.Uid, in.Gid, e.Uid, e.Gid)
	}
	if in.Nlink != e.Nlink {
		errs.Errorf("%q: nlink %d, want %d", p, in.Nlink, e.Nlink)
	}
	if in.Size != e.Size || fi.Size() != e.Size {
		errs.Errorf("%q: size %d (FileInfo %d), want %d", p, in.Size, fi.Size(), e.Size)
	}
	checkTime(errs, p, "atime", in.Atime, e.Atime)
	checkTime(errs, p, "mtime", in.Mtime, e.Mtime)
	checkTime(errs, p, "ctime", in.Ctime, e.Ctime)
	checkTime(errs, p, "ModTime()", fi.ModTime(), e.Mtime)
	if e.Crtime != nil {
		if !in.HasCrtime {
			errs.Errorf("%q: HasCrtime false, want crtime %v", p, *e.Crtime)
		} else {
			checkTime(errs, p, "crtime", in.Crtime, *e.Crtime)
		}
	} else if in.HasCrtime {
		errs.Errorf("%q: HasCrtime true on an inode without one (crtime %v)", p, in.Crtime)
	}
	if e.Rdev != nil {
		if in.RdevMajor != e.Rdev[0] || in.RdevMinor != e.Rdev[1] {
			errs.Errorf("%q: rdev %d:%d, want %d:%d", p, in.RdevMajor, in.RdevMinor, e.Rdev[0], e.Rdev[1])
		}
	} else if in.RdevMajor != 0 || in.RdevMinor != 0 {
		errs.Errorf("%q: rdev %d:%d on a %s", p, in.RdevMajor, in.RdevMinor, e.Type)
	}
	checkXattrs(errs, p, in, e.Xattrs)

	switch e.Type {
	case "symlink":
		want := ""
		if e.Target != nil {
			want = *e.Target
		} else {
			want = string(e.TargetB64)
		}
		if got, err := fs.ReadLink(fsys, p); err != nil || got != want {
			errs.Errorf("ReadLink(%q) = %q, %v; want %q", p, got, err, want)
		}
		if got, err := fsys.LinkTarget(in); err != nil || got != want {
			errs.Errorf("%q: LinkTarget(inode) = %q, %v; want %q", p, got, err, want)
		}
	case "file":
		checkContent(t, errs, fsys, p, in, e)
	case "dir":
		checkDir(errs, fsys, p, in, kids, byPath, filetype)
	}
}

func checkTime(errs *errLimiter, p, what string, got time.Time, want [2]int64) {
	if got.Unix() != want[0] || int64(got.Nanosecond()) != want[1] {
		errs.Errorf("%q: %s = %d.%09d (%v), want %d.%09d (%v)", p, what, got.Unix(), got.Nanosecond(),
			got.UTC(), want[0], want[1], time.Unix(want[0], want[1]).UTC())
	}
}

func checkXattrs(errs *errLimiter, p string, in *ext4.Inode, want map[string][]byte) {
	got := map[string][]byte{}
	for i, x := range in.Xattrs {
		if i > 0 && in.Xattrs[i-1].Name >= x.Name {
			errs.Errorf("%q: xattrs not sorted by name / duplicated: %q then %q", p, in.Xattrs[i-1].Name, x.Name)
		}
		got[x.Name] = x.Value
	}
	for name, w := range want {
		g, ok := got[name]
		if !ok {
			errs.Errorf("%q: xattr %s missing (have %v)", p, name, xattrNames(in))
			continue
		}
		if !bytes.Equal(g, w) {
			errs.Errorf("%q: xattr %s = %s, want %s", p, name, short(g), short(w))
		}
		if v, ok := in.Xattr(name); !ok || !bytes.Equal(v, w) {
			errs.Errorf("%q: Inode.Xattr(%q) disagrees with Xattrs", p, name)
		}
	}
	for name, g := range got {
		if _, ok := want[name]; !ok {
			errs.Errorf("%q: unexpected xattr %s = %s", p, name, short(g))
		}
	}
}

func xattrNames(in *ext4.Inode) []string {
	var n []string
	for _, x := range in.Xattrs {
		n = append(n, x.Name)
	}
	return n
}

func short(b []byte) string {
	if len(b) > 48 {
		return fmt.Sprintf("%x...(%d bytes)", b[:48], len(b))
	}
	return fmt.Sprintf("%q", b)
}

// maxWhole bounds the files read in full; the 5 GiB sparse file is checked
// by its segments and by sampling its holes.
const maxWhole = 64 << 20

func checkContent(t *testing.T, errs *errLimiter, fsys *ext4.FS, p string, in *ext4.Inode, e *expectEntry) {
	r, err := fsys.NewFileReader(in)
	if err != nil {
		errs.Errorf("%q: NewFileReader: %v", p, err)
		return
	}
	if r.Size() != e.Size {
		errs.Errorf("%q: File.Size() = %d, want %d", p, r.Size(), e.Size)
	}
	if e.Size <= maxWhole {
		// Sequential reads through fs.FS Open.
		f, err := fsys.Open(p)
		if err != nil {
			errs.Errorf("Open(%q): %v", p, err)
			return
		}
		var data bytes.Buffer
		_, err = io.Copy(&data, f)
		f.Close()
		if err != nil {
			errs.Errorf("%q: read: %v", p, err)
			return
		}
		if int64(data.Len()) != e.Size {
			errs.Errorf("%q: read %d bytes, want %d", p, data.Len(), e.Size)
			return
		}
		if e.SHA256 != "" && sha(data.Bytes()) != e.SHA256 {
			errs.Errorf("%q: content sha256 %s, want %s", p, sha(data.Bytes()), e.SHA256)
			return
		}
		// ReadAt at awkward offsets must agree with the verified bytes.
		checkReadAt(errs, p, r, data.Bytes())
	}
	for _, s := range e.Segments {
		buf := make([]byte, s.Len)
		if n, err := r.ReadAt(buf, s.Off); int64(n) != s.Len || (err != nil && err != io.EOF) {
			errs.Errorf("%q: ReadAt(%d bytes at %d) = %d, %v", p, s.Len, s.Off, n, err)
			continue
		}
		if got := sha(buf); got != s.SHA256 {
			errs.Errorf("%q: data at [%d,%d) sha256 %s, want %s", p, s.Off, s.Off+s.Len, got, s.SHA256)
		}
	}
	if e.Size > maxWhole {
		checkHoles(errs, p, r, e)
	}
	if e.Segments != nil {
		checkNextData(errs, p, r, e, fsys.BlockSize())
	}
}

// checkNextData compares the data stretches NextData reports with the
// source file's (SEEK_DATA/SEEK_HOLE on the file mkfs copied), rounded out
// to whole blocks: a block is allocated when any byte of it held data.
// Unwritten extents count as holes, so frag/prealloc still matches its
// source, whose preallocated range never existed.
func checkNextData(errs *errLimiter, p string, r *ext4.File, e *expectEntry, bs int64) {
	var want [][2]int64
	for _, s := range e.Segments {
		lo, hi := s.Off/bs*bs, min((s.Off+s.Len+bs-1)/bs*bs, e.Size)
		if n := len(want); n > 0 && lo <= want[n-1][1] {
			want[n-1][1] = max(want[n-1][1], hi)
			continue
		}
		want = append(want, [2]int64{lo, hi})
	}
	var got [][2]int64
	for off := int64(0); ; {
		start, end, err := r.NextData(off)
		if err != nil {
			errs.Errorf("%q: NextData(%d): %v", p, off, err)
			return
		}
		if start >= e.Size {
			if start != e.Size || end != e.Size {
				errs.Errorf("%q: NextData(%d) = %d, %d at the end; want %d, %d", p, off, start, end, e.Size, e.Size)
			}
			break
		}
		if start < off || end <= start || len(got) > len(want) {
			errs.Errorf("%q: NextData(%d) = %d, %d", p, off, start, end)
			return
		}
		got = append(got, [2]int64{start, end})
		off = end
	}
	// The source's segments end on its own filesystem's 4 KiB blocks, past
	// the last byte written; on smaller blocks the image's stretch may end
	// up to 4 KiB - 1 earlier.
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		g, w := got[i], want[i]
		ok = g[0] == w[0] && (g[1] == w[1] || bs < 4096 && g[1] < w[1] && w[1]-g[1] < 4096 && g[1] > g[0])
	}
	if !ok {
		errs.Errorf("%q: data stretches %v, want %v (from the source's segments)", p, got, want)
	}
	// From inside a stretch, NextData starts where it was asked to.
	for _, g := range got {
		mid := g[0] + (g[1]-g[0])/2
		if s, en, err := r.NextData(mid); err != nil || s != mid || en != g[1] {
			errs.Errorf("%q: NextData(%d) = %d, %d, %v; want %d, %d", p, mid, s, en, err, mid, g[1])
		}
	}
}

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// checkReadAt compares ReadAt of ranges around block boundaries and EOF with want.
func checkReadAt(errs *errLimiter, p string, r *ext4.File, want []byte) {
	size := int64(len(want))
	var offs []int64
	for _, bs := range []int64{1024, 4096, 65536} {
		for k := int64(1); k*bs < size && k < 40; k++ {
			offs = append(offs, k*bs-1, k*bs)
		}
	}
	offs = append(offs, 0, size/3, size-1, size)
	for _, off := range offs {
		if off < 0 || off > size {
			continue
		}
		for _, n := range []int64{1, 7, 4097} {
			buf := make([]byte, n)
			got, err := r.ReadAt(buf, off)
			end := min(off+n, size)
			if int64(got) != end-off {
				errs.Errorf("%q: ReadAt(%d bytes at %d) = %d bytes, want %d (err %v)", p, n, off, got, end-off, err)
				continue
			}
			if end-off < n && err != io.EOF {
				errs.Errorf("%q: short ReadAt(%d at %d) returned err %v, want io.EOF", p, n, off, err)
			}
			if end-off == n && err != nil && err != io.EOF {
				errs.Errorf("%q: ReadAt(%d at %d): %v", p, n, off, err)
			}
			if !bytes.Equal(buf[:got], want[off:end]) {
				errs.Errorf("%q: ReadAt(%d at %d) returned wrong bytes", p, n, off)
			}
		}
	}
}

// checkHoles reads the whole of a huge sparse file (or samples it with
// -short): everything outside the data segments must be zero.
func checkHoles(errs *errLimiter, p string, r *ext4.File, e *expectEntry) {
	const chunk = 4 << 20
	buf := make([]byte, chunk)
	zero := make([]byte, chunk)
	step := int64(chunk)
	if testing.Short() {
		step = 97 * chunk
	}
	for off := int64(0); off < e.Size; off += step {
		n, err := r.ReadAt(buf, off)
		if err != nil && err != io.EOF {
			errs.Errorf("%q: ReadAt(%d): %v", p, off, err)
			return
		}
		if int64(n) != min(chunk, e.Size-off) {
			errs.Errorf("%q: ReadAt(%d) = %d bytes", p, off, n)
			return
		}
		// Blank the expected data, then the chunk must be all zeros.
		for _, s := range e.Segments {
			lo, hi := max(s.Off, off), min(s.Off+s.Len, off+int64(n))
			if lo < hi {
				clear(buf[lo-off : hi-off])
			}
		}
		if !bytes.Equal(buf[:n], zero[:n]) {
			i := slices.IndexFunc(buf[:n], func(b byte) bool { return b != 0 })
			errs.Errorf("%q: byte %d in a hole is %#x", p, off+int64(i), buf[i])
			return
		}
	}
}

// checkDir compares a directory's listing; without the filetype feature the
// raw entries carry type 0.
func checkDir(errs *errLimiter, fsys *ext4.FS, p string, in *ext4.Inode, kids []string, byPath map[string]*expectEntry, filetype bool) {
	ents, err := fs.ReadDir(fsys, p)
	if err != nil {
		errs.Errorf("ReadDir(%q): %v", p, err)
		return
	}
	var got []string
	for _, d := range ents {
		got = append(got, d.Name())
	}
	want := slices.Clone(kids)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		errs.Errorf("ReadDir(%q): %d names %s, want %d names %s", p, len(got), firstFew(got), len(want), firstFew(want))
	}
	raw, err := fsys.ReadDirInode(in)
	if err != nil {
		errs.Errorf("%q: ReadDirInode: %v", p, err)
		return
	}
	if len(raw) != len(want) {
		errs.Errorf("%q: ReadDirInode returned %d entries, want %d", p, len(raw), len(want))
	}
	for _, d := range raw {
		if d.Name == "." || d.Name == ".." {
			errs.Errorf("%q: ReadDirInode returned %q", p, d.Name)
			continue
		}
		c := byPath[path.Join(p, d.Name)]
		if c == nil {
			errs.Errorf("%q: ReadDirInode returned unknown name %q", p, d.Name)
			continue
		}
		if d.Ino != c.Ino {
			errs.Errorf("%q: entry %q inode %d, want %d", p, d.Name, d.Ino, c.Ino)
		}
		want := typeOfName[c.Type].ft
		if !filetype {
			want = 0
		}
		if d.Type != want {
			errs.Errorf("%q: entry %q file type %d, want %d", p, d.Name, d.Type, want)
		}
	}
}

func firstFew(s []string) string {
	if len(s) > 8 {
		return fmt.Sprintf("%q...", s[:8])
	}
	return fmt.Sprintf("%q", s)
}

// checkFacts checks the structures the generator asserted with debugfs that
// the image has (htree directories, inline data); they are what makes each
// fixture worth having, so the reader must see them too.
func checkFacts(t *testing.T, errs *errLimiter, fsys *ext4.FS, doc *expectDoc) {
	flagged := func(fact string, flag uint32, want bool) {
		raw, ok := doc.Facts[fact]
		if !ok {
			return
		}
		var paths []string
		if err := json.Unmarshal(raw, &paths); err != nil {
			t.Fatalf("fact %s: %v", fact, err)
		}
		for _, p := range paths {
			in, err := fsys.Lookup(p)
			if err != nil {
				errs.Errorf("Lookup(%q): %v", p, err)
				continue
			}
			if (in.Flags&flag != 0) != want {
				errs.Errorf("%q: flags %#x, but debugfs found %s", p, in.Flags, fact)
			}
		}
	}
	flagged("htree", flIndex, true)
	flagged("inline", flInl, true)
	flagged("noinline", flInl, false)
}

// TestCOSStateListing reads the STATE partition of the COS node fixture and
// compares every path of expected/stateful-partition-listing.txt, a
// `find -printf '%y %m %U:%G %s %p'` listing: type, permission bits (octal,
// with setuid/setgid/sticky), uid:gid, size, path. It also checks that the
// content store blobs hash to their names.
func TestCOSStateListing(t *testing.T) {
	if testing.Short() {
		t.Skip("decompresses a 5 GiB sparse disk")
	}
	t.Parallel()
	dir := sharedFixture(t, "fixtures/cos-node")
	fsys, _ := openCOSState(t, "cos-node.raw.zst")
	if w := fsys.Warnings(); len(w) > 0 {
		t.Errorf("clean shutdown, but warnings: %q", w)
	}

	lf, err := os.Open(filepath.Join(dir, "expected", "stateful-partition-listing.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	errs := &errLimiter{t: t, max: 40}
	listed := map[string]bool{}
	sc := bufio.NewScanner(lf)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.SplitN(line, " ", 5)
		if len(fields) != 5 {
			t.Fatalf("listing line %q: want 5 fields", line)
		}
		typ, perm, owner, sizeS, p := fields[0], fields[1], fields[2], fields[3], fields[4]
		p = strings.TrimPrefix(p, "./")
		listed[p] = true
		fi, err := fs.Lstat(fsys, p)
		if err != nil {
			errs.Errorf("Lstat(%q): %v", p, err)
			continue
		}
		in := fi.Sys().(*ext4.Inode)
		if got := findType(in); got != typ {
			errs.Errorf("%q: type %s, listing says %s", p, got, typ)
		}
		if got := strconv.FormatUint(uint64(in.Mode&0o7777), 8); got != perm {
			errs.Errorf("%q: mode %s, listing says %s", p, got, perm)
		}
		if got := fmt.Sprintf("%d:%d", in.Uid, in.Gid); got != owner {
			errs.Errorf("%q: owner %s, listing says %s", p, got, owner)
		}
		if got := strconv.FormatInt(in.Size, 10); got != sizeS {
			errs.Errorf("%q: size %s, listing says %s", p, got, sizeS)
		}
		if typ == "l" {
			if target, err := fs.ReadLink(fsys, p); err != nil || strconv.Itoa(len(target)) != sizeS {
				errs.Errorf("%q: ReadLink = %q, %v; want %s bytes", p, target, err, sizeS)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(listed) < 9000 {
		t.Fatalf("listing has only %d paths", len(listed))
	}
	// The listing is of the whole filesystem: the walk must find nothing else.
	err = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			errs.Errorf("walk %q: %v", p, err)
			return nil
		}
		if !listed[p] {
			errs.Errorf("walk found %q, not in the listing", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Content-addressed blobs: their bytes must hash to their names.
	blobs := "var/lib/containerd/io.containerd.content.v1.content/blobs/sha256"
	ents, err := fs.ReadDir(fsys, blobs)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, d := range ents {
		b, err := fs.ReadFile(fsys, blobs+"/"+d.Name())
		if err != nil {
			errs.Errorf("%s: %v", d.Name(), err)
			continue
		}
		total += int64(len(b))
		if got := sha(b); got != d.Name() {
			errs.Errorf("blob %s hashes to %s", d.Name(), got)
		}
	}
	if len(ents) < 10 {
		t.Errorf("only %d content blobs", len(ents))
	}
	t.Logf("%d listed paths, %d content blobs (%d bytes) verified", len(listed), len(ents), total)
}

// openCOSState decompresses a COS fixture disk and opens its STATE partition.
func openCOSState(t *testing.T, disk string) (*ext4.FS, *io.SectionReader) {
	t.Helper()
	dir := sharedFixture(t, "fixtures/cos-node")
	start, size := gptPartition(t, filepath.Join(dir, "expected", "gpt.txt"), "STATE")
	raw := filepath.Join(t.TempDir(), strings.TrimSuffix(disk, ".zst"))
	decompressZstd(t, filepath.Join(dir, disk), raw)
	f, err := os.Open(raw)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	sec := io.NewSectionReader(f, start, size)
	fsys, err := ext4.NewReader(sec, size)
	if err != nil {
		t.Fatalf("%s: %v", disk, err)
	}
	return fsys, sec
}

// TestCOSLiveJournalReplay checks journal replay against e2fsck's. The disk
// copied while pods ran has needs_recovery and 23 committed transactions, but
// the kernel had already written those blocks in place, so replaying them
// changes nothing. To see a real difference the test makes the home locations
// stale, as after a crash: every block the journal holds a copy of is zeroed
// in a copy of the partition (except the superblock, the group descriptors
// and the block with the journal inode, which replay needs to start). Then
// the reader's in-memory replay of that copy must give exactly the tree that
// `e2fsck -E journal_only` writes, read back by the same reader. Without a
// replay the tree is mostly unreadable, so the comparison has teeth.
func TestCOSLiveJournalReplay(t *testing.T) {
	if testing.Short() {
		t.Skip("decompresses a 5 GiB sparse disk")
	}
	needTools(t, "e2fsck", "debugfs", "dumpe2fs")
	t.Parallel()
	live, sec := openCOSState(t, "cos-node-live.raw.zst")
	if w := live.Warnings(); len(w) == 0 || !strings.Contains(strings.Join(w, " "), "journal") {
		t.Errorf("needs_recovery image: warnings %q, want one about the journal replay", w)
	}
	dir := t.TempDir()
	stale := filepath.Join(dir, "stale.img")
	sparseCopy(t, sec, stale)

	bs := toolInt(t, `(?m)^Block size:\s+(\d+)`, "dumpe2fs", "-h", stale)
	keep := map[int64]bool{0: true, toolInt(t, `located at block (\d+)`, "debugfs", "-R", "imap <8>", stale): true}
	gdt := regexp.MustCompile(`Group descriptors at (\d+)-(\d+)`).FindStringSubmatch(toolOutput(t, "dumpe2fs", stale))
	if gdt == nil {
		t.Fatal("dumpe2fs: no group descriptor location")
	}
	lo, _ := strconv.ParseInt(gdt[1], 10, 64)
	hi, _ := strconv.ParseInt(gdt[2], 10, 64)
	for b := lo; b <= hi; b++ {
		keep[b] = true
	}
	logged := regexp.MustCompile(`(?m)^\s+FS block (\d+) logged at journal block`).FindAllStringSubmatch(
		toolOutput(t, "debugfs", "-R", "logdump -a", stale), -1)
	f, err := os.OpenFile(stale, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	zeroed := map[int64]bool{}
	for _, m := range logged {
		b, _ := strconv.ParseInt(m[1], 10, 64)
		if keep[b] || zeroed[b] {
			continue
		}
		if _, err := f.WriteAt(make([]byte, bs), b*bs); err != nil {
			t.Fatal(err)
		}
		zeroed[b] = true
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if len(zeroed) < 50 {
		t.Fatalf("only %d journaled blocks to make stale; debugfs logdump found %d", len(zeroed), len(logged))
	}

	fixed := filepath.Join(dir, "e2fsck.img")
	sf, err := os.Open(stale)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := sf.Stat()
	sparseCopy(t, io.NewSectionReader(sf, 0, st.Size()), fixed)
	sf.Close()
	if b, err := exec.Command("e2fsck", "-y", "-E", "journal_only", fixed).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck -E journal_only: %v\n%s", err, b)
	}

	replayed, err := ext4.Open(stale)
	if err != nil {
		t.Fatalf("stale copy: %v", err)
	}
	defer replayed.Close()
	if w := replayed.Warnings(); len(w) == 0 || !strings.Contains(strings.Join(w, " "), "replayed") {
		t.Errorf("stale copy: warnings %q, want one saying the journal was replayed", w)
	}
	oracle, err := ext4.Open(fixed)
	if err != nil {
		t.Fatal(err)
	}
	defer oracle.Close()
	if w := oracle.Warnings(); len(w) > 0 {
		t.Errorf("after e2fsck replay: warnings %q", w)
	}
	t.Logf("%d of %d journaled blocks made stale", len(zeroed), len(logged))
	compareTrees(t, replayed, oracle)

	// SkipJournal reads the stale home locations as they are: the walk
	// differs from the replayed one (it fails, or finds other entries).
	raw, err := os.Open(stale)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	rst, _ := raw.Stat()
	unreplayed, err := ext4.NewReaderOptions(raw, rst.Size(), ext4.Options{SkipJournal: true})
	if err != nil {
		t.Fatalf("SkipJournal: %v", err)
	}
	if w := unreplayed.Warnings(); len(w) == 0 || !strings.Contains(strings.Join(w, " "), "not replayed") {
		t.Errorf("SkipJournal: warnings %q, want one saying the journal was not replayed", w)
	}
	walk := func(fsys fs.FS) (n int, err error) {
		err = fs.WalkDir(fsys, ".", func(string, fs.DirEntry, error) error { n++; return nil })
		return n, err
	}
	nr, errR := walk(replayed)
	nu, errU := walk(unreplayed)
	if errR != nil || (errU == nil && nu == nr) {
		t.Errorf("replayed walk: %d entries (%v); unreplayed walk: %d entries (%v): want them to differ", nr, errR, nu, errU)
	}
}

// sparseCopy copies r to a new file at dst, leaving zero runs as holes.
func sparseCopy(t *testing.T, r *io.SectionReader, dst string) {
	t.Helper()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	zero := make([]byte, len(buf))
	for off := int64(0); off < r.Size(); off += int64(len(buf)) {
		n, err := r.ReadAt(buf, off)
		if err != nil && err != io.EOF {
			t.Fatal(err)
		}
		if !bytes.Equal(buf[:n], zero[:n]) {
			if _, err := out.WriteAt(buf[:n], off); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := errors.Join(out.Truncate(r.Size()), out.Close()); err != nil {
		t.Fatal(err)
	}
}

func toolOutput(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		t.Fatalf("%s %q: %v", name, args, err)
	}
	return string(out)
}

// toolInt runs a tool and parses the first number captured by re.
func toolInt(t *testing.T, re, name string, args ...string) int64 {
	t.Helper()
	out := toolOutput(t, name, args...)
	m := regexp.MustCompile(re).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("%s %q: no match for %s in:\n%s", name, args, re, out)
	}
	v, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// compareTrees checks that two filesystems hold the same names, inodes and bytes.
func compareTrees(t *testing.T, a, b *ext4.FS) {
	errs := &errLimiter{t: t, max: 40}
	walk := func(fsys *ext4.FS) []string {
		var paths []string
		if err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				errs.Errorf("walk %q: %v", p, err)
				return nil
			}
			paths = append(paths, p)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return paths
	}
	pa, pb := walk(a), walk(b)
	if !slices.Equal(pa, pb) {
		errs.Errorf("trees differ: %d paths vs %d after e2fsck replay", len(pa), len(pb))
		setB := map[string]bool{}
		for _, p := range pb {
			setB[p] = true
		}
		for _, p := range pa {
			if !setB[p] {
				errs.Errorf("only in the in-memory replay: %q", p)
			}
			delete(setB, p)
		}
		for p := range setB {
			errs.Errorf("only after e2fsck's replay: %q", p)
		}
	}
	var bytesRead int64
	for _, p := range pa {
		ia, err1 := a.Lookup(p)
		ib, err2 := b.Lookup(p)
		if err1 != nil || err2 != nil {
			if (err1 == nil) != (err2 == nil) {
				errs.Errorf("%q: Lookup %v vs %v", p, err1, err2)
			}
			continue
		}
		ga, gb := inodeSummary(ia), inodeSummary(ib)
		if ga != gb {
			errs.Errorf("%q: inode differs:\n in-memory replay %s\n e2fsck replay    %s", p, ga, gb)
			continue
		}
		switch {
		case ia.IsRegular():
			ca, err1 := fs.ReadFile(a, p)
			cb, err2 := fs.ReadFile(b, p)
			if err1 != nil || err2 != nil || !bytes.Equal(ca, cb) {
				errs.Errorf("%q: contents differ (%v, %v)", p, err1, err2)
			}
			bytesRead += int64(len(ca))
		case ia.IsSymlink():
			la, err1 := a.LinkTarget(ia)
			lb, err2 := b.LinkTarget(ib)
			if err1 != nil || err2 != nil || la != lb {
				errs.Errorf("%q: targets %q, %q (%v, %v)", p, la, lb, err1, err2)
			}
		}
	}
	t.Logf("%d paths, %d bytes of file content compared", len(pa), bytesRead)
}

func inodeSummary(in *ext4.Inode) string {
	x := ""
	for _, a := range in.Xattrs {
		x += fmt.Sprintf(" %s=%x", a.Name, a.Value)
	}
	return fmt.Sprintf("ino=%d mode=%#o uid=%d gid=%d size=%d nlink=%d flags=%#x blocks=%d gen=%d a=%v m=%v c=%v cr=%v/%v rdev=%d:%d%s",
		in.Num, in.Mode, in.Uid, in.Gid, in.Size, in.Nlink, in.Flags, in.Blocks, in.Generation,
		in.Atime.UnixNano(), in.Mtime.UnixNano(), in.Ctime.UnixNano(), in.HasCrtime, in.Crtime.UnixNano(),
		in.RdevMajor, in.RdevMinor, x)
}

func findType(in *ext4.Inode) string {
	switch uint32(in.Mode) & TypeMask {
	case 0o100000:
		return "f"
	case 0o040000:
		return "d"
	case 0o120000:
		return "l"
	case 0o020000:
		return "c"
	case 0o060000:
		return "b"
	case 0o010000:
		return "p"
	case 0o140000:
		return "s"
	}
	return "?"
}

// gptPartition reads the byte offset and size of the named partition from
// an `sgdisk -p` listing.
func gptPartition(t *testing.T, listing, name string) (start, size int64) {
	t.Helper()
	b, err := os.ReadFile(listing)
	if err != nil {
		t.Fatal(err)
	}
	sector := int64(0)
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Sector size (logical): "); ok {
			sector, err = strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
		}
		f := strings.Fields(line)
		// Number Start End Size Unit Code Name
		if len(f) >= 7 && f[len(f)-1] == name {
			s, err1 := strconv.ParseInt(f[1], 10, 64)
			e, err2 := strconv.ParseInt(f[2], 10, 64)
			if err := errors.Join(err1, err2); err != nil || sector == 0 {
				t.Fatalf("gpt listing line %q: %v (sector size %d)", line, err, sector)
			}
			return s * sector, (e - s + 1) * sector
		}
	}
	t.Fatalf("partition %s not in %s", name, listing)
	return 0, 0
}
