package ext4

import (
	"errors"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
)

// The io/fs view. Paths are slash-separated and relative to the root ("."
// is the root). Names are the raw on-disk bytes, so unlike fs.ValidPath,
// non-UTF-8 names are accepted. Symlinks are resolved inside this
// filesystem only: an absolute target or a ".." that climbs above the root
// stays at the root, exactly as under chroot; nothing on the host is ever
// touched.

var (
	_ fs.FS         = (*FS)(nil)
	_ fs.ReadDirFS  = (*FS)(nil)
	_ fs.StatFS     = (*FS)(nil)
	_ fs.ReadLinkFS = (*FS)(nil)
)

// maxSymlinkHops matches the kernel's limit on symlinks in one resolution.
const maxSymlinkHops = 40

func validPath(name string) bool {
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

var errSymlinkLoop = errors.New("too many levels of symbolic links")

// resolve walks name from the root, following symlinks confined to this
// filesystem; the final component is followed only if followLast.
func (f *FS) resolve(op, name string, followLast bool) (*Inode, error) {
	if !validPath(name) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	root, err := f.Inode(RootIno)
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
			return nil, &fs.PathError{Op: op, Path: name, Err: errNotDir}
		}
		next, err := f.LookupAt(cur, part)
		if err != nil {
			return nil, &fs.PathError{Op: op, Path: name, Err: err}
		}
		if next.IsSymlink() && (len(todo) > 0 || followLast) {
			hops++
			if hops > maxSymlinkHops {
				return nil, &fs.PathError{Op: op, Path: name, Err: errSymlinkLoop}
			}
			target, err := f.LinkTarget(next)
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

// Open opens the named file (following symlinks inside the filesystem).
func (f *FS) Open(name string) (fs.File, error) {
	in, err := f.resolve("open", name, true)
	if err != nil {
		return nil, err
	}
	of := &openFile{fs: f, name: name, in: in}
	if !in.IsDir() {
		r, err := f.NewFileReader(in)
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		of.r = r
	}
	return of, nil
}

// Stat returns the FileInfo of the named file, following symlinks.
func (f *FS) Stat(name string) (fs.FileInfo, error) {
	in, err := f.resolve("stat", name, true)
	if err != nil {
		return nil, err
	}
	return in.FileInfo(baseName(name)), nil
}

// Lstat returns the FileInfo of the named file; a final symlink is not followed.
func (f *FS) Lstat(name string) (fs.FileInfo, error) {
	in, err := f.resolve("lstat", name, false)
	if err != nil {
		return nil, err
	}
	return in.FileInfo(baseName(name)), nil
}

// ReadLink returns the target of the named symlink, byte-exact.
func (f *FS) ReadLink(name string) (string, error) {
	in, err := f.resolve("readlink", name, false)
	if err != nil {
		return "", err
	}
	t, err := f.LinkTarget(in)
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: err}
	}
	return t, nil
}

// ReadDir lists the named directory sorted by name.
func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	in, err := f.resolve("readdir", name, true)
	if err != nil {
		return nil, err
	}
	ents, err := f.dirEntries(in)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	return ents, nil
}

func (f *FS) dirEntries(dir *Inode) ([]fs.DirEntry, error) {
	raw, err := f.ReadDirInode(dir)
	if err != nil {
		return nil, err
	}
	out := make([]fs.DirEntry, len(raw))
	for i, e := range raw {
		out[i] = &dirEntry{fs: f, e: e}
	}
	slices.SortFunc(out, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return out, nil
}

type dirEntry struct {
	fs *FS
	e  DirEntry
}

func (d *dirEntry) Name() string { return d.e.Name }
func (d *dirEntry) IsDir() bool  { return d.Type().IsDir() }

func (d *dirEntry) Type() fs.FileMode {
	switch d.e.Type {
	case ftRegular:
		return 0
	case ftDir:
		return fs.ModeDir
	case ftChrdev:
		return fs.ModeDevice | fs.ModeCharDevice
	case ftBlkdev:
		return fs.ModeDevice
	case ftFifo:
		return fs.ModeNamedPipe
	case ftSock:
		return fs.ModeSocket
	case ftSymlink:
		return fs.ModeSymlink
	}
	in, err := d.fs.Inode(d.e.Ino)
	if err != nil {
		return fs.ModeIrregular
	}
	return in.FileMode().Type()
}

func (d *dirEntry) Info() (fs.FileInfo, error) {
	in, err := d.fs.Inode(d.e.Ino)
	if err != nil {
		return nil, err
	}
	return in.FileInfo(d.e.Name), nil
}

func (d *dirEntry) String() string { return fs.FormatDirEntry(d) }

// openFile is what Open returns: a regular file, device, or directory.
type openFile struct {
	fs   *FS
	name string
	in   *Inode
	r    *File
	dir  []fs.DirEntry
	read bool // dir listed
	pos  int
}

func (o *openFile) Stat() (fs.FileInfo, error) { return o.in.FileInfo(baseName(o.name)), nil }
func (o *openFile) Close() error               { return nil }

func (o *openFile) Read(p []byte) (int, error) {
	if o.r == nil {
		return 0, &fs.PathError{Op: "read", Path: o.name, Err: errors.New("is a directory")}
	}
	return o.r.Read(p)
}

func (o *openFile) ReadAt(p []byte, off int64) (int, error) {
	if o.r == nil {
		return 0, &fs.PathError{Op: "read", Path: o.name, Err: errors.New("is a directory")}
	}
	return o.r.ReadAt(p, off)
}

func (o *openFile) WriteTo(w io.Writer) (int64, error) {
	if o.r == nil {
		return 0, &fs.PathError{Op: "read", Path: o.name, Err: errors.New("is a directory")}
	}
	return o.r.WriteTo(w)
}

func (o *openFile) Seek(off int64, whence int) (int64, error) {
	if o.r == nil {
		return 0, &fs.PathError{Op: "seek", Path: o.name, Err: errors.New("is a directory")}
	}
	return o.r.Seek(off, whence)
}

func (o *openFile) ReadDir(n int) ([]fs.DirEntry, error) {
	if !o.in.IsDir() {
		return nil, &fs.PathError{Op: "readdir", Path: o.name, Err: errNotDir}
	}
	if !o.read {
		ents, err := o.fs.dirEntries(o.in)
		if err != nil {
			return nil, &fs.PathError{Op: "readdir", Path: o.name, Err: err}
		}
		o.dir, o.read = ents, true
	}
	rest := o.dir[o.pos:]
	if n <= 0 {
		o.pos = len(o.dir)
		return rest, nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	if n > len(rest) {
		n = len(rest)
	}
	o.pos += n
	return rest[:n], nil
}
