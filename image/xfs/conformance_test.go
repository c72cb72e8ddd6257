package xfs_test

// Conformance: the reader against images made by the real xfsprogs tools
// and the kernel (testdata/images/xfs/make-xfs.py). The expectations come
// from a read-only kernel mount of each image (or, for v4, from the source
// tree and xfs_db), never from this package.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"
	"unicode/utf8"

	"github.com/ctrlift/ctrlift/image/xfs"
	"github.com/ctrlift/ctrlift/vfs"
)

var typeOfName = map[string]struct {
	mode fs.FileMode
	ft   xfs.FileType
}{
	"file":    {0, xfs.FileTypeRegular},
	"dir":     {fs.ModeDir, xfs.FileTypeDir},
	"char":    {fs.ModeDevice | fs.ModeCharDevice, xfs.FileTypeChar},
	"block":   {fs.ModeDevice, xfs.FileTypeBlock},
	"fifo":    {fs.ModeNamedPipe, xfs.FileTypeFIFO},
	"socket":  {fs.ModeSocket, xfs.FileTypeSocket},
	"symlink": {fs.ModeSymlink, xfs.FileTypeSymlink},
}

// conformanceDir is where the images are: the committed fixtures, or
// CTRLIFT_XFS_FIXTURES (a make-xfs.py -o directory) while developing.
func conformanceDir(t testing.TB) string {
	if d := os.Getenv("CTRLIFT_XFS_FIXTURES"); d != "" {
		return d
	}
	return fixtureDir(t)
}

func TestConformance(t *testing.T) {
	dir := conformanceDir(t)
	names := fixtureNames(t, dir)
	if len(names) == 0 {
		t.Fatalf("no images in %s (run make-xfs.sh)", dir)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			doc := loadExpect(t, dir, name)
			fsys, _ := openFixture(t, dir, name)
			w := fsys.Warnings()
			if doc.Facts.Log == "dirty" {
				// The expectation is the kernel's tree after its replay.
				if len(w) != 1 || !strings.Contains(w[0], "log is dirty") || !strings.Contains(w[0], "replayed") || strings.Contains(w[0], "not replayed") || strings.Contains(w[0], "could not") {
					t.Errorf("dirty log, but warnings %q", w)
				}
				if st, _, _ := fsys.LogState(); st != xfs.LogDirty {
					t.Errorf("LogState %v, want dirty", st)
				}
			} else if len(w) > 0 {
				t.Errorf("clean image, but warnings: %q", w)
			}
			checkImage(t, fsys, doc)
		})
	}
}

func checkImage(t *testing.T, fsys *xfs.FS, doc *expectDoc) {
	checkTree(t, fsys, doc, func(string) bool { return false })
}

// checkTree compares the tree with the expectation; extraOK names paths
// that may differ.
func checkTree(t *testing.T, fsys *xfs.FS, doc *expectDoc, extraOK func(string) bool) {
	errs := &errLimiter{t: t, max: 40}
	iofs := fsys.IOFS()
	byPath := map[string]*expectEntry{}
	children := map[string][]string{}
	for _, e := range doc.Entries {
		p := e.name()
		byPath[p] = e
		if p != "." {
			children[path.Dir(p)] = append(children[path.Dir(p)], path.Base(p))
		}
	}

	seen := map[string]bool{}
	err := fs.WalkDir(iofs, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if !extraOK(p) {
				errs.Errorf("walk %q: %v", p, err)
			}
			return nil
		}
		seen[p] = true
		e := byPath[p]
		if e == nil {
			if !extraOK(p) {
				errs.Errorf("walk found %q, which is not in the image", p)
			}
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
	content := map[uint64]bool{} // inodes whose content was checked (hardlinks)
	for _, e := range doc.Entries {
		checkEntry(errs, fsys, e, children[e.name()], content, extraOK)
	}
	checkFacts(errs, fsys, doc)
}

func checkTime(errs *errLimiter, p, what string, got time.Time, want [2]int64) {
	if got.Unix() != want[0] || int64(got.Nanosecond()) != want[1] {
		errs.Errorf("%q: %s %d.%09d, want %d.%09d", p, what, got.Unix(), got.Nanosecond(), want[0], want[1])
	}
}

func checkEntry(errs *errLimiter, fsys *xfs.FS, e *expectEntry, kids []string, content map[uint64]bool, extraOK func(string) bool) {
	p := e.name()
	iofs := fsys.IOFS()
	fi, err := fs.Lstat(iofs, p)
	if err != nil {
		errs.Errorf("Lstat(%q): %v", p, err)
		return
	}
	vin, ok := fi.Sys().(*vfs.Inode)
	if !ok {
		errs.Errorf("%q: Sys() is %T, want *vfs.Inode", p, fi.Sys())
		return
	}
	in, ok := vin.Sys.(*xfs.Inode)
	if !ok {
		errs.Errorf("%q: vfs.Inode.Sys is %T, want *xfs.Inode", p, vin.Sys)
		return
	}
	if lin, err := fsys.Lookup(p); err != nil || lin.Ino != in.Num {
		errs.Errorf("%q: Lookup = %v, %v; Lstat gave inode %d", p, lin, err, in.Num)
	}
	if in.Num != e.Ino {
		errs.Errorf("%q: inode %d, want %d", p, in.Num, e.Ino)
	}
	if uint32(in.Mode) != e.Mode || vin.Mode != e.Mode {
		errs.Errorf("%q: mode %#o, want %#o", p, in.Mode, e.Mode)
	}
	wantMode := typeOfName[e.Type].mode | fs.FileMode(e.Mode&0o777)
	for bit, m := range map[uint32]fs.FileMode{0o4000: fs.ModeSetuid, 0o2000: fs.ModeSetgid, 0o1000: fs.ModeSticky} {
		if e.Mode&bit != 0 {
			wantMode |= m
		}
	}
	if fi.Mode() != wantMode {
		errs.Errorf("%q: FileMode %v, want %v", p, fi.Mode(), wantMode)
	}
	if in.Uid != e.Uid || in.Gid != e.Gid {
		errs.Errorf("%q: owner %d:%d, want %d:%d", p, in.Uid, in.Gid, e.Uid, e.Gid)
	}
	if in.Nlink != e.Nlink {
		errs.Errorf("%q: nlink %d, want %d", p, in.Nlink, e.Nlink)
	}
	if in.Size != e.Size || fi.Size() != e.Size {
		errs.Errorf("%q: size %d, want %d", p, in.Size, e.Size)
	}
	checkTime(errs, p, "atime", in.Atime, e.Atime)
	checkTime(errs, p, "mtime", in.Mtime, e.Mtime)
	checkTime(errs, p, "ctime", in.Ctime, e.Ctime)
	if e.Crtime != nil {
		if !in.HasCrtime {
			errs.Errorf("%q: no crtime, want %v", p, *e.Crtime)
		} else {
			checkTime(errs, p, "crtime", in.Crtime, *e.Crtime)
		}
	}
	if e.Rdev != nil {
		if in.RdevMajor != e.Rdev[0] || in.RdevMinor != e.Rdev[1] {
			errs.Errorf("%q: rdev %d:%d, want %d:%d", p, in.RdevMajor, in.RdevMinor, e.Rdev[0], e.Rdev[1])
		}
	} else if in.RdevMajor != 0 || in.RdevMinor != 0 {
		errs.Errorf("%q: rdev %d:%d on a %s", p, in.RdevMajor, in.RdevMinor, e.Type)
	}
	got := map[string][]byte{}
	for i, x := range in.Xattrs {
		got[x.Name] = x.Value
		if i > 0 && in.Xattrs[i-1].Name >= x.Name {
			errs.Errorf("%q: xattrs not sorted: %q before %q", p, in.Xattrs[i-1].Name, x.Name)
		}
	}
	if !maps.EqualFunc(got, e.Xattrs, bytes.Equal) && !(len(got) == 0 && len(e.Xattrs) == 0) {
		errs.Errorf("%q: xattrs %v, want %v", p, slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(e.Xattrs)))
		for k, v := range e.Xattrs {
			if g, ok := got[k]; ok && !bytes.Equal(g, v) {
				errs.Errorf("%q: xattr %s = %x, want %x", p, k, g, v)
			}
		}
	}

	switch e.Type {
	case "symlink":
		if got, err := fs.ReadLink(iofs, p); err != nil || got != e.target() {
			errs.Errorf("ReadLink(%q) = %q, %v; want %q", p, got, err, e.target())
		}
	case "file":
		if content[in.Num] {
			return
		}
		content[in.Num] = true
		checkContent(errs, fsys, p, in, e)
	case "dir":
		checkDir(errs, fsys, p, in, kids, extraOK)
	}
}

func checkContent(errs *errLimiter, fsys *xfs.FS, p string, in *xfs.Inode, e *expectEntry) {
	r, err := fsys.OpenInode(in)
	if err != nil {
		errs.Errorf("%q: open: %v", p, err)
		return
	}
	if e.SHA256 != "" {
		h := sha256.New()
		if n, err := io.Copy(h, r); err != nil || n != e.Size {
			errs.Errorf("%q: read %d bytes, %v; want %d", p, n, err, e.Size)
		} else if got := hex.EncodeToString(h.Sum(nil)); got != e.SHA256 {
			errs.Errorf("%q: sha256 %s, want %s", p, got, e.SHA256)
		}
	}
	want := e.Segments
	if want == nil && e.Size > 0 {
		want = []segment{{0, e.Size, ""}}
	}
	var segs []segment
	for off := int64(0); off < e.Size; {
		start, end, err := r.NextData(off)
		if err != nil {
			errs.Errorf("%q: NextData(%d): %v", p, off, err)
			return
		}
		if start >= e.Size {
			break
		}
		s := segment{Off: start, Len: end - start}
		if len(want) > 0 && want[0].SHA256 != "" {
			h := sha256.New()
			if _, err := io.Copy(h, io.NewSectionReader(r, start, end-start)); err != nil {
				errs.Errorf("%q: reading data at %d: %v", p, start, err)
				return
			}
			s.SHA256 = hex.EncodeToString(h.Sum(nil))
		}
		segs = append(segs, s)
		off = end
	}
	if !slices.Equal(segs, want) {
		errs.Errorf("%q: data segments %v, want %v", p, segs, want)
	}
}

func checkDir(errs *errLimiter, fsys *xfs.FS, p string, in *xfs.Inode, kids []string, extraOK func(string) bool) {
	ents, err := fsys.Entries(in)
	if err != nil {
		errs.Errorf("%q: Entries: %v", p, err)
		return
	}
	var names []string
	for _, d := range ents {
		full := path.Join(p, d.Name)
		if extraOK(full) {
			continue
		}
		names = append(names, d.Name)
		c, err := fsys.LookupAtInode(in, d.Name)
		if err != nil {
			errs.Errorf("%q: LookupAtInode(%q): %v", p, d.Name, err)
			continue
		}
		if c.Num != d.Ino {
			errs.Errorf("%q: entry %q has inode %d, lookup gives %d", p, d.Name, d.Ino, c.Num)
		}
		// The merge reads a listed entry's inode through EntryInode.
		if e, err := fsys.EntryInode(in.VFSInode(), vfs.DirEntry{Name: d.Name, Ino: d.Ino}); err != nil || e.Ino != c.Num {
			errs.Errorf("%q: EntryInode(%q) = %v, %v; lookup gives inode %d", p, d.Name, e, err, c.Num)
		}
		if fsys.HasFtype() {
			want := xfs.FileTypeUnknown
			for n, ty := range typeOfName {
				if uint32(c.Mode)&0o170000 == typeMode(n) {
					want = ty.ft
				}
			}
			if d.Type != want {
				errs.Errorf("%q: entry %q file type %v, inode says %v", p, d.Name, d.Type, want)
			}
		} else if d.Type != xfs.FileTypeUnknown {
			errs.Errorf("%q: entry %q has file type %v without ftype", p, d.Name, d.Type)
		}
	}
	slices.Sort(names)
	want := slices.Sorted(slices.Values(kids))
	if !slices.Equal(names, want) {
		errs.Errorf("%q: %d entries, want %d", p, len(names), len(want))
	}
	if _, err := fsys.LookupAtInode(in, "no such name"); !errors.Is(err, fs.ErrNotExist) {
		errs.Errorf("%q: lookup of a missing name: %v", p, err)
	}
}

func typeMode(name string) uint32 {
	return map[string]uint32{"file": 0o100000, "dir": 0o040000, "char": 0o020000, "block": 0o060000,
		"fifo": 0o010000, "socket": 0o140000, "symlink": 0o120000}[name]
}

// checkFacts checks the structures the generator found with xfs_db
// (directory and attribute forms, bmbt height): they are what makes each
// fixture worth having, so the reader must see them too.
func checkFacts(errs *errLimiter, fsys *xfs.FS, doc *expectDoc) {
	for p, want := range doc.Facts.DirForms {
		in, err := fsys.LookupInode(p)
		if err != nil {
			errs.Errorf("fact: Lookup(%q): %v", p, err)
			continue
		}
		if got, err := fsys.DirForm(in); err != nil || got.String() != want {
			errs.Errorf("fact: %q is a %v directory (%v), xfs_db says %s", p, got, err, want)
		}
	}
	for p, want := range doc.Facts.AttrForms {
		in, err := fsys.LookupInode(p)
		if err != nil {
			errs.Errorf("fact: Lookup(%q): %v", p, err)
			continue
		}
		if got := in.AttrForm(); got.String() != want {
			errs.Errorf("fact: %q has %v attributes, xfs_db says %s", p, got, want)
		}
	}
	for p, want := range doc.Facts.BmbtLevels {
		in, err := fsys.LookupInode(p)
		if err != nil {
			errs.Errorf("fact: Lookup(%q): %v", p, err)
			continue
		}
		if got := in.BmbtLevel(); got != want {
			errs.Errorf("fact: %q has a bmbt root of level %d, xfs_db says %d", p, got, want)
		}
	}
}

// TestIOFS runs testing/fstest over the io/fs view (IOFS) of two
// fixtures. fstest opens and reads every file it finds, which
// vfs.IOFS refuses for devices, FIFOs and sockets, and it requires UTF-8
// names, so it sees the tree through tameFS: directories and regular files
// with UTF-8 names. Directories with files over 64 MiB (the 5 GiB sparse
// file) or thousands of names are covered by TestConformance instead.
func TestIOFS(t *testing.T) {
	dir := conformanceDir(t)
	for _, name := range []string{"xfs-default", "xfs-v4"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			doc := loadExpect(t, dir, name)
			fsys, _ := openFixture(t, dir, name)
			want := map[string][]string{} // top-level directory -> paths below it
			skip := map[string]bool{"dirs": true}
			for _, e := range doc.Entries {
				p := e.name()
				top, rest, ok := strings.Cut(p, "/")
				if !ok || !utf8.ValidString(p) || (e.Type != "file" && e.Type != "dir") {
					continue
				}
				want[top] = append(want[top], rest)
				if e.Size > 64<<20 {
					skip[top] = true
				}
			}
			for top, paths := range want {
				if skip[top] {
					continue
				}
				sub, err := fs.Sub(tameFS{fsys.IOFS()}, top)
				if err != nil {
					t.Fatal(err)
				}
				if err := fstest.TestFS(sub, paths...); err != nil {
					t.Errorf("%s: %v", top, err)
				}
			}
		})
	}
}

// tameFS shows only directories and regular files with UTF-8 names.
type tameFS struct{ fsys fs.FS }

func (t tameFS) Open(name string) (fs.File, error) {
	f, err := t.fsys.Open(name)
	if err != nil {
		return nil, err
	}
	if d, ok := f.(fs.ReadDirFile); ok {
		return tameDir{d}, nil
	}
	return f, nil
}

type tameDir struct{ fs.ReadDirFile }

func (d tameDir) ReadDir(n int) ([]fs.DirEntry, error) {
	keep := func(ents []fs.DirEntry) []fs.DirEntry {
		var out []fs.DirEntry
		for _, e := range ents {
			if utf8.ValidString(e.Name()) && (e.IsDir() || e.Type().IsRegular()) {
				out = append(out, e)
			}
		}
		return out
	}
	if n <= 0 {
		ents, err := d.ReadDirFile.ReadDir(-1)
		return keep(ents), err
	}
	var out []fs.DirEntry
	for len(out) < n {
		ents, err := d.ReadDirFile.ReadDir(1)
		out = append(out, keep(ents)...)
		if err != nil {
			if len(out) > 0 && err == io.EOF {
				return out, nil
			}
			return out, err
		}
	}
	return out, nil
}
