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
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ctrlift/ctrlift/image/ext4"
)

// Type bits of i_mode and the dirent file type codes, from the ext4 layout.
const (
	sIFMT   = 0o170000
	flIndex = 0x1000     // EXT4_INDEX_FL: hash-tree directory
	flInl   = 0x10000000 // EXT4_INLINE_DATA_FL
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

	for i := range doc.Entries {
		checkEntry(t, errs, fsys, &doc.Entries[i], byPath, children[doc.Entries[i].name()])
	}
	checkFacts(t, errs, fsys, doc)
}

func checkEntry(t *testing.T, errs *errLimiter, fsys *ext4.FS, e *expectEntry, byPath map[string]*expectEntry, kids []string) {
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
		if got, err := fsys.Readlink(in); err != nil || got != want {
			errs.Errorf("%q: Readlink(inode) = %q, %v; want %q", p, got, err, want)
		}
	case "file":
		checkContent(t, errs, fsys, p, in, e)
	case "dir":
		checkDir(errs, fsys, p, in, kids, byPath)
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
	inData := func(off int64) bool {
		for _, s := range e.Segments {
			if off >= s.Off && off < s.Off+s.Len {
				return true
			}
		}
		return false
	}
	const chunk = 1 << 20
	buf := make([]byte, chunk)
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
		for i, b := range buf[:n] {
			if b != 0 && !inData(off+int64(i)) {
				errs.Errorf("%q: byte %d in a hole is %#x", p, off+int64(i), b)
				return
			}
		}
	}
}

func checkDir(errs *errLimiter, fsys *ext4.FS, p string, in *ext4.Inode, kids []string, byPath map[string]*expectEntry) {
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
		if d.Type != typeOfName[c.Type].ft {
			errs.Errorf("%q: entry %q file type %d, want %d", p, d.Name, d.Type, typeOfName[c.Type].ft)
		}
	}
}

func firstFew(s []string) string {
	if len(s) > 8 {
		return fmt.Sprintf("%q...", s[:8])
	}
	return fmt.Sprintf("%q", s)
}

// checkFacts checks the structures the generator asserted the image has
// (htree and inline flags); they are what makes each fixture worth having.
func checkFacts(t *testing.T, errs *errLimiter, fsys *ext4.FS, doc *expectDoc) {
	if raw, ok := doc.Facts["htree_levels"]; ok {
		var levels map[string]int
		if err := json.Unmarshal(raw, &levels); err != nil {
			t.Fatal(err)
		}
		for dir := range levels {
			in, err := fsys.Lookup(dir)
			if err != nil {
				errs.Errorf("Lookup(%q): %v", dir, err)
				continue
			}
			if in.Flags&flIndex == 0 {
				errs.Errorf("%q: flags %#x lack EXT4_INDEX_FL, but e2fsck built an htree", dir, in.Flags)
			}
		}
	}
	if slices.Contains(doc.Features, "inline_data") {
		for _, p := range []string{"inline/s59", "inline/tiny-dir"} {
			if in, err := fsys.Lookup(p); err != nil || in.Flags&flInl == 0 {
				errs.Errorf("%q: want an inline-data inode (%v, %v)", p, in, err)
			}
		}
	}
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
	dir := sharedFixture(t, "fixtures/cos-node")
	start, size := gptPartition(t, filepath.Join(dir, "expected", "gpt.txt"), "STATE")
	raw := filepath.Join(t.TempDir(), "cos-node.raw")
	decompressZstd(t, filepath.Join(dir, "cos-node.raw.zst"), raw)
	f, err := os.Open(raw)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fsys, err := ext4.NewReader(io.NewSectionReader(f, start, size), size)
	if err != nil {
		t.Fatal(err)
	}
	if w := fsys.Warnings(); len(w) > 0 {
		t.Logf("warnings: %q", w)
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

func findType(in *ext4.Inode) string {
	switch uint32(in.Mode) & sIFMT {
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
