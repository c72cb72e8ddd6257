package oci

import (
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/ctrlift/ctrlift/vfs"
)

// memFS is an in-memory vfs.FS for tests: whiteouts, opaque directories,
// hardlinks and files with holes, without root or mkfs.
type memFS struct {
	byPath map[string]*memNode
	byIno  map[uint64]string // an inode's first path (directories: their only one)
	next   uint64
	bound  int64
}

type memNode struct {
	in     *vfs.Inode
	spans  []memSpan // regular files: data stretches, the rest holes
	target string
}

type memSpan struct {
	off  int64
	data []byte
}

var memTime = time.Unix(1700000000, 123456789)

func newMemFS() *memFS {
	m := &memFS{byPath: map[string]*memNode{}, byIno: map[uint64]string{}}
	m.add(".", &vfs.Inode{Mode: vfs.TypeDir | 0o755})
	return m
}

func (m *memFS) add(p string, in *vfs.Inode) *memNode {
	if d := path.Dir(p); p != "." && m.byPath[d] == nil {
		m.dir(d, 0o755)
	}
	m.next++
	in.Ino, in.Nlink = m.next, 1
	if in.Mtime.IsZero() {
		in.Mtime, in.Atime, in.Ctime = memTime, memTime, memTime
	}
	n := &memNode{in: in}
	m.byPath[p], m.byIno[in.Ino] = n, p
	return n
}

func (m *memFS) dir(p string, mode uint32, xattrs ...vfs.Xattr) {
	m.add(p, &vfs.Inode{Mode: vfs.TypeDir | mode, Xattrs: xattrs})
}

func (m *memFS) file(p string, data string, xattrs ...vfs.Xattr) *memNode {
	n := m.add(p, &vfs.Inode{Mode: vfs.TypeRegular | 0o644, Size: int64(len(data)), Uid: 33, Gid: 33, Xattrs: xattrs})
	n.spans = []memSpan{{0, []byte(data)}}
	return n
}

// sparse is a file of size bytes holding data at off.
func (m *memFS) sparse(p string, size, off int64, data string) {
	n := m.add(p, &vfs.Inode{Mode: vfs.TypeRegular | 0o600, Size: size})
	n.spans = []memSpan{{off, []byte(data)}}
	n.in.Blocks = 8
}

func (m *memFS) symlink(p, target string) {
	n := m.add(p, &vfs.Inode{Mode: vfs.TypeSymlink | 0o777, Size: int64(len(target))})
	n.target = target
}

func (m *memFS) whiteout(p string) {
	m.add(p, &vfs.Inode{Mode: vfs.TypeChar})
}

// link gives the file at old a second name.
func (m *memFS) link(old, p string) {
	n := m.byPath[old]
	n.in.Nlink++
	m.byPath[p] = n
}

func (m *memFS) Lookup(p string) (*vfs.Inode, error) {
	if n := m.byPath[path.Clean(p)]; n != nil {
		return n.in, nil
	}
	return nil, fs.ErrNotExist
}

func (m *memFS) LookupAt(dir *vfs.Inode, name string) (*vfs.Inode, error) {
	return m.Lookup(path.Join(m.byIno[dir.Ino], name))
}

func (m *memFS) ReadDir(dir *vfs.Inode) ([]vfs.DirEntry, error) {
	d := m.byIno[dir.Ino]
	var out []vfs.DirEntry
	for p, n := range m.byPath {
		if p != "." && path.Dir(p) == d {
			out = append(out, vfs.DirEntry{Name: path.Base(p), Ino: n.in.Ino})
		}
	}
	slices.SortFunc(out, func(a, b vfs.DirEntry) int { return strings.Compare(b.Name, a.Name) }) // any order
	return out, nil
}

func (m *memFS) LinkTarget(in *vfs.Inode) (string, error) {
	return m.byPath[m.byIno[in.Ino]].target, nil
}

func (m *memFS) Open(in *vfs.Inode) (vfs.File, error) {
	n := m.byPath[m.byIno[in.Ino]]
	return &memFile{n: n, r: io.NewSectionReader(&memFile{n: n}, 0, in.Size)}, nil
}

func (m *memFS) DataBound() int64 { return m.bound }

type memFile struct {
	n *memNode
	r *io.SectionReader
}

func (f *memFile) Size() int64 { return f.n.in.Size }

func (f *memFile) Read(p []byte) (int, error) { return f.r.Read(p) }

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	if off >= f.Size() {
		return 0, io.EOF
	}
	n := min(int64(len(p)), f.Size()-off)
	clear(p[:n])
	for _, s := range f.n.spans {
		lo, hi := max(off, s.off), min(off+n, s.off+int64(len(s.data)))
		if lo < hi {
			copy(p[lo-off:hi-off], s.data[lo-s.off:hi-s.off])
		}
	}
	if n < int64(len(p)) {
		return int(n), io.EOF
	}
	return int(n), nil
}

func (f *memFile) NextData(off int64) (int64, int64, error) {
	for _, s := range f.n.spans {
		if end := s.off + int64(len(s.data)); end > off {
			return max(s.off, off), end, nil
		}
	}
	return f.Size(), f.Size(), nil
}
