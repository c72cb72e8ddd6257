package vfs

import (
	"errors"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"
)

// IOFS is the io/fs view of a vfs.FS, for readers of named files (the
// containerd state reader). Paths are slash-separated and relative to the
// root ("." is the root); names need not be UTF-8. Symlinks are resolved
// inside the tree only: an absolute target or a ".." above the root stays
// at the root, as under chroot, so nothing on the host is ever reached.
type IOFS struct{ fsys FS }

// NewIOFS returns the io/fs view of fsys.
func NewIOFS(fsys FS) *IOFS { return &IOFS{fsys: fsys} }

var (
	_ fs.FS         = (*IOFS)(nil)
	_ fs.ReadDirFS  = (*IOFS)(nil)
	_ fs.StatFS     = (*IOFS)(nil)
	_ fs.ReadLinkFS = (*IOFS)(nil)
)

// maxSymlinkHops is the kernel's limit on links followed in one resolution.
const maxSymlinkHops = 40

var errSymlinkLoop = errors.New("too many levels of symbolic links")

// ValidPath is fs.ValidPath without its UTF-8 rule: names from evidence
// are kept byte-exact, whatever their encoding.
func ValidPath(name string) bool {
	if name == "." {
		return true
	}
	for _, elem := range strings.Split(name, "/") {
		if elem == "" || elem == "." || elem == ".." {
			return false
		}
	}
	return true
}

func (v *IOFS) resolve(op, name string, followLast bool) (*Inode, error) {
	if !ValidPath(name) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	root, err := v.fsys.Lookup(".")
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: err}
	}
	stack := []*Inode{root}
	var todo []string
	if name != "." {
		todo = strings.Split(name, "/")
	}
	hops := 0
	for len(todo) > 0 {
		part := todo[0]
		todo = todo[1:]
		cur := stack[len(stack)-1]
		switch part {
		case "", ".":
			continue
		case "..":
			if len(stack) > 1 {
				stack = stack[:len(stack)-1]
			}
			continue
		}
		if !cur.IsDir() {
			return nil, &fs.PathError{Op: op, Path: name, Err: ErrNotDir}
		}
		next, err := v.fsys.LookupAt(cur, part)
		if err != nil {
			return nil, &fs.PathError{Op: op, Path: name, Err: err}
		}
		if next.IsSymlink() && (len(todo) > 0 || followLast) {
			if hops++; hops > maxSymlinkHops {
				return nil, &fs.PathError{Op: op, Path: name, Err: errSymlinkLoop}
			}
			target, err := v.fsys.LinkTarget(next)
			if err != nil {
				return nil, &fs.PathError{Op: op, Path: name, Err: err}
			}
			if strings.HasPrefix(target, "/") {
				stack = stack[:1]
			}
			todo = append(strings.Split(target, "/"), todo...)
			continue
		}
		stack = append(stack, next)
	}
	return stack[len(stack)-1], nil
}

func baseName(name string) string {
	if name == "." {
		return "."
	}
	return path.Base(name)
}

// Open opens the named file, following symlinks inside the tree.
func (v *IOFS) Open(name string) (fs.File, error) {
	in, err := v.resolve("open", name, true)
	if err != nil {
		return nil, err
	}
	f := &ioFile{v: v, name: name, in: in}
	if in.IsRegular() {
		if f.r, err = v.fsys.Open(in); err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
	}
	return f, nil
}

// Stat describes the named file, following symlinks.
func (v *IOFS) Stat(name string) (fs.FileInfo, error) {
	in, err := v.resolve("stat", name, true)
	if err != nil {
		return nil, err
	}
	return in.FileInfo(baseName(name)), nil
}

// Lstat describes the named file; a final symlink is not followed.
func (v *IOFS) Lstat(name string) (fs.FileInfo, error) {
	in, err := v.resolve("lstat", name, false)
	if err != nil {
		return nil, err
	}
	return in.FileInfo(baseName(name)), nil
}

// ReadLink returns the target of the named symlink, byte-exact.
func (v *IOFS) ReadLink(name string) (string, error) {
	in, err := v.resolve("readlink", name, false)
	if err != nil {
		return "", err
	}
	t, err := v.fsys.LinkTarget(in)
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: err}
	}
	return t, nil
}

// ReadDir lists the named directory sorted by name.
func (v *IOFS) ReadDir(name string) ([]fs.DirEntry, error) {
	in, err := v.resolve("readdir", name, true)
	if err != nil {
		return nil, err
	}
	ents, err := v.entries(in)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	return ents, nil
}

func (v *IOFS) entries(dir *Inode) ([]fs.DirEntry, error) {
	if !dir.IsDir() {
		return nil, ErrNotDir
	}
	raw, err := v.fsys.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := make([]fs.DirEntry, 0, len(raw))
	for _, e := range raw {
		in, err := v.fsys.LookupAt(dir, e.Name)
		if err != nil {
			return nil, err
		}
		out = append(out, fs.FileInfoToDirEntry(in.FileInfo(e.Name)))
	}
	slices.SortFunc(out, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return out, nil
}

// FileInfo describes the inode under name; Sys returns the *Inode.
func (in *Inode) FileInfo(name string) fs.FileInfo { return &fileInfo{name: name, in: in} }

type fileInfo struct {
	name string
	in   *Inode
}

func (fi *fileInfo) Name() string       { return fi.name }
func (fi *fileInfo) Size() int64        { return fi.in.Size }
func (fi *fileInfo) Mode() fs.FileMode  { return fi.in.FileMode() }
func (fi *fileInfo) ModTime() time.Time { return fi.in.Mtime }
func (fi *fileInfo) IsDir() bool        { return fi.in.IsDir() }
func (fi *fileInfo) Sys() any           { return fi.in }

type ioFile struct {
	v    *IOFS
	name string
	in   *Inode
	r    File // regular files
	dir  []fs.DirEntry
	read bool
	pos  int
}

func (f *ioFile) Stat() (fs.FileInfo, error) { return f.in.FileInfo(baseName(f.name)), nil }

func (f *ioFile) Close() error {
	if c, ok := f.r.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

func (f *ioFile) Read(p []byte) (int, error) {
	if f.r == nil {
		return 0, &fs.PathError{Op: "read", Path: f.name, Err: errors.New("not a regular file")}
	}
	return f.r.Read(p)
}

func (f *ioFile) ReadAt(p []byte, off int64) (int, error) {
	if f.r == nil {
		return 0, &fs.PathError{Op: "read", Path: f.name, Err: errors.New("not a regular file")}
	}
	return f.r.ReadAt(p, off)
}

func (f *ioFile) ReadDir(n int) ([]fs.DirEntry, error) {
	if !f.in.IsDir() {
		return nil, &fs.PathError{Op: "readdir", Path: f.name, Err: ErrNotDir}
	}
	if !f.read {
		ents, err := f.v.entries(f.in)
		if err != nil {
			return nil, &fs.PathError{Op: "readdir", Path: f.name, Err: err}
		}
		f.dir, f.read = ents, true
	}
	rest := f.dir[f.pos:]
	if n <= 0 {
		f.pos = len(f.dir)
		return rest, nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(rest))
	f.pos += n
	return rest[:n], nil
}
