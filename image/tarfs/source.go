package tarfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"

	"github.com/ctrlift/ctrlift/vfs"
)

// The vfs.FS methods. Names are raw bytes; nothing follows symlinks.

func (f *FS) vfsInode(n *node) *vfs.Inode {
	in := n.attr
	in.Sys = &n.member
	return &in
}

// node returns the file behind an inode of this archive.
func (f *FS) node(in *vfs.Inode) (*node, error) {
	if in == nil || in.Ino == 0 || in.Ino > uint64(len(f.nodes)) {
		return nil, fmt.Errorf("tarfs: inode %v is not of this archive", inoOf(in))
	}
	n := f.nodes[in.Ino-1]
	if m, ok := in.Sys.(*Member); ok && m != &n.member {
		return nil, fmt.Errorf("tarfs: inode %d is not of this archive", in.Ino)
	}
	return n, nil
}

func inoOf(in *vfs.Inode) any {
	if in == nil {
		return "nil"
	}
	return in.Ino
}

// Root returns the root directory.
func (f *FS) Root() *vfs.Inode { return f.vfsInode(f.nodes[0]) }

// Lookup resolves a slash-separated path from the root ("." or "" is the
// root) without following symlinks.
func (f *FS) Lookup(path string) (*vfs.Inode, error) {
	cur := f.nodes[0]
	for part := range strings.SplitSeq(path, "/") {
		if part == "" || part == "." {
			continue
		}
		if !cur.isDir() {
			if cur.attr.Mode&vfs.TypeMask == vfs.TypeSymlink {
				return nil, fmt.Errorf("tarfs: lookup %q: component before %q is a symlink (not followed)", path, part)
			}
			return nil, fmt.Errorf("tarfs: lookup %q: component before %q: %w", path, part, vfs.ErrNotDir)
		}
		next := cur.children[part]
		if next == nil {
			return nil, fmt.Errorf("tarfs: lookup %q: %w", path, fs.ErrNotExist)
		}
		cur = next
	}
	return f.vfsInode(cur), nil
}

// LookupAt finds one name in dir.
func (f *FS) LookupAt(dir *vfs.Inode, name string) (*vfs.Inode, error) {
	d, err := f.node(dir)
	if err != nil {
		return nil, err
	}
	if !d.isDir() {
		return nil, fmt.Errorf("tarfs: lookup %q in inode %d: %w", name, dir.Ino, vfs.ErrNotDir)
	}
	n := d.children[name]
	if n == nil {
		return nil, fmt.Errorf("tarfs: lookup %q in inode %d: %w", name, dir.Ino, fs.ErrNotExist)
	}
	return f.vfsInode(n), nil
}

// ReadDir lists dir sorted by name.
func (f *FS) ReadDir(dir *vfs.Inode) ([]vfs.DirEntry, error) {
	d, err := f.node(dir)
	if err != nil {
		return nil, err
	}
	if !d.isDir() {
		return nil, fmt.Errorf("tarfs: readdir inode %d: %w", dir.Ino, vfs.ErrNotDir)
	}
	out := make([]vfs.DirEntry, len(d.names))
	for i, name := range d.names {
		out[i] = vfs.DirEntry{Name: name, Ino: d.children[name].attr.Ino}
	}
	return out, nil
}

// LinkTarget returns a symlink's target as recorded.
func (f *FS) LinkTarget(in *vfs.Inode) (string, error) {
	n, err := f.node(in)
	if err != nil {
		return "", err
	}
	if n.attr.Mode&vfs.TypeMask != vfs.TypeSymlink {
		return "", fmt.Errorf("tarfs: readlink inode %d: not a symlink", in.Ino)
	}
	return n.link, nil
}

// Open opens a regular file's data.
func (f *FS) Open(in *vfs.Inode) (vfs.File, error) {
	n, err := f.node(in)
	if err != nil {
		return nil, err
	}
	return f.open(n)
}

func (f *FS) open(n *node) (*File, error) {
	if n.attr.Mode&vfs.TypeMask != vfs.TypeRegular {
		return nil, fmt.Errorf("tarfs: open inode %d (%q): not a regular file", n.attr.Ino, n.member.Name)
	}
	return &File{r: f.r, n: n, size: n.attr.Size}, nil
}

// DataBound is the size of the uncompressed archive: every file's stored
// data is its own stretch of the archive (hardlinks share one inode, and
// so one stretch), so all files together map no more than that.
func (f *FS) DataBound() int64 { return f.size }

// File reads one regular file in place. Holes of sparse members read as
// zeros without being stored anywhere. ReadAt is safe for concurrent use.
type File struct {
	r    io.ReaderAt
	n    *node
	size int64
	pos  int64
}

var _ vfs.File = (*File)(nil)

// Size returns the logical size of the file.
func (r *File) Size() int64 { return r.size }

func (r *File) Read(p []byte) (int, error) {
	n, err := r.ReadAt(p, r.pos)
	r.pos += int64(n)
	return n, err
}

func (r *File) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.pos
	case io.SeekEnd:
		offset += r.size
	default:
		return 0, errors.New("tarfs: seek: invalid whence")
	}
	if offset < 0 {
		return 0, errors.New("tarfs: seek: negative position")
	}
	r.pos = offset
	return offset, nil
}

// ReadAt reads len(p) bytes at off.
func (r *File) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("tarfs: read: negative offset")
	}
	if off >= r.size {
		return 0, io.EOF
	}
	want := len(p)
	if rem := r.size - off; int64(want) > rem {
		want = int(rem)
	}
	if r.n.frags == nil {
		if err := r.readStored(p[:want], off); err != nil {
			return 0, err
		}
		return r.eof(want, len(p))
	}
	frags := r.n.frags
	i := sort.Search(len(frags), func(i int) bool { return frags[i].off+frags[i].n > off })
	done := 0
	for done < want {
		pos := off + int64(done)
		dst := p[done:want]
		if i < len(frags) && pos >= frags[i].off {
			fr := frags[i]
			n := min(int64(len(dst)), fr.off+fr.n-pos)
			if err := r.readStored(dst[:n], fr.phys+pos-fr.off); err != nil {
				return done, err
			}
			done += int(n)
			i++
			continue
		}
		hole := int64(len(dst))
		if i < len(frags) {
			hole = min(hole, frags[i].off-pos)
		}
		clear(dst[:hole])
		done += int(hole)
	}
	return r.eof(done, len(p))
}

// readStored reads stored bytes at phys bytes into the member's data;
// the index checked that they lie within the archive.
func (r *File) readStored(p []byte, phys int64) error {
	at := r.n.member.DataOffset + phys
	n, err := r.r.ReadAt(p, at)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("tarfs: %q: reading archive offset %d: %w", r.n.member.Name, at+int64(n), err)
}

func (r *File) eof(n, asked int) (int, error) {
	if n < asked {
		return n, io.EOF
	}
	return n, nil
}

// WriteTo copies the rest of the file in large reads.
func (r *File) WriteTo(w io.Writer) (int64, error) {
	buf := make([]byte, min(1<<20, max(r.size-r.pos, 1)))
	var total int64
	for r.pos < r.size {
		n, err := r.ReadAt(buf, r.pos)
		if n > 0 {
			m, werr := w.Write(buf[:n])
			total += int64(m)
			r.pos += int64(m)
			if werr != nil {
				return total, werr
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// NextData returns the first stretch of stored data at or after off as
// [start, end), like SEEK_DATA and SEEK_HOLE; start == Size() when only
// holes follow. A member that is not sparse is all data.
func (r *File) NextData(off int64) (start, end int64, err error) {
	if off < 0 {
		return 0, 0, errors.New("tarfs: next data: negative offset")
	}
	if off >= r.size {
		return r.size, r.size, nil
	}
	frags := r.n.frags
	if frags == nil {
		return off, r.size, nil
	}
	i := sort.Search(len(frags), func(i int) bool { return frags[i].off+frags[i].n > off })
	if i == len(frags) {
		return r.size, r.size, nil
	}
	// Fragments are merged when adjacent, so one fragment is one stretch.
	return max(off, frags[i].off), frags[i].off + frags[i].n, nil
}

// Member returns the archive member behind the file.
func (r *File) Member() *Member { return &r.n.member }

// IOFS is the io/fs view of the tree (symlinks resolved inside it, as
// under chroot), for the containerd state reader.
func (f *FS) IOFS() *vfs.IOFS { return vfs.NewIOFS(f) }
