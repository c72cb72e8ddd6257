package ext4

import (
	"fmt"

	"github.com/ctrlift/ctrlift/vfs"
)

// Source is the filesystem as a vfs.FS, the interface the layer merge,
// diff and export read. Each vfs.Inode it returns carries the *Inode it
// was made from in Sys.
type Source struct{ f *FS }

// Source returns f as a vfs.FS.
func (f *FS) Source() *Source { return &Source{f: f} }

// FS returns the filesystem behind s.
func (s *Source) FS() *FS { return s.f }

var _ vfs.FS = (*Source)(nil)

// VFSInode converts an inode to the neutral record.
func (in *Inode) VFSInode() *vfs.Inode {
	blocks := in.Blocks
	if in.Flags&FlagInlineData != 0 {
		// Inline data lives in the inode: no holes, whatever i_blocks says.
		blocks = (in.Size + 511) / 512
	}
	return &vfs.Inode{
		Ino: uint64(in.Num), Mode: uint32(in.Mode), Uid: in.Uid, Gid: in.Gid, Size: in.Size,
		Nlink: in.Nlink, Flags: in.Flags, Blocks: blocks,
		Atime: in.Atime, Mtime: in.Mtime, Ctime: in.Ctime, Crtime: in.Crtime, HasCrtime: in.HasCrtime,
		RdevMajor: in.RdevMajor, RdevMinor: in.RdevMinor,
		Xattrs: xattrsToVFS(in.Xattrs), Sys: in,
	}
}

func xattrsToVFS(xs []Xattr) []vfs.Xattr {
	if xs == nil {
		return nil
	}
	out := make([]vfs.Xattr, len(xs))
	for i, x := range xs {
		out[i] = vfs.Xattr{Name: x.Name, Value: x.Value}
	}
	return out
}

// inode returns the ext4 inode behind a vfs.Inode of this filesystem.
func (s *Source) inode(in *vfs.Inode) (*Inode, error) {
	if e, ok := in.Sys.(*Inode); ok {
		return e, nil
	}
	if in.Ino == 0 || in.Ino > uint64(^uint32(0)) {
		return nil, fmt.Errorf("ext4: inode %d is not of this filesystem", in.Ino)
	}
	return s.f.Inode(uint32(in.Ino))
}

func (s *Source) Lookup(path string) (*vfs.Inode, error) {
	in, err := s.f.Lookup(path)
	if err != nil {
		return nil, err
	}
	return in.VFSInode(), nil
}

func (s *Source) LookupAt(dir *vfs.Inode, name string) (*vfs.Inode, error) {
	d, err := s.inode(dir)
	if err != nil {
		return nil, err
	}
	in, err := s.f.LookupAt(d, name)
	if err != nil {
		return nil, err
	}
	return in.VFSInode(), nil
}

// MaxFileSize is the largest file ext4 can address: 2^32 blocks (the
// kernel's limit is a block less, and less without huge_file or extents).
// A larger i_size is forged or damaged.
func (s *Source) MaxFileSize() int64 { return 1 << 32 * s.f.blockSize }

// EntryInode reads the inode of e, an entry ReadDir listed in dir: the
// inode LookupAt(dir, e.Name) finds, without looking the name up again.
// Of a name listed twice (corrupt), LookupAt finds the last one in a
// block directory and the first one in an inline directory: for those
// the name is looked up.
func (s *Source) EntryInode(dir *vfs.Inode, e vfs.DirEntry) (*vfs.Inode, error) {
	d, err := s.inode(dir)
	if err != nil {
		return nil, err
	}
	if d.Flags&FlagInlineData != 0 || e.Ino == 0 || e.Ino > uint64(^uint32(0)) {
		return s.LookupAt(dir, e.Name)
	}
	in, err := s.f.Inode(uint32(e.Ino))
	if err != nil {
		return nil, err
	}
	return in.VFSInode(), nil
}

func (s *Source) ReadDir(dir *vfs.Inode) ([]vfs.DirEntry, error) {
	d, err := s.inode(dir)
	if err != nil {
		return nil, err
	}
	var out []vfs.DirEntry
	err = s.f.walkDir(d, func(e DirEntry) bool {
		out = append(out, vfs.DirEntry{Name: e.Name, Ino: uint64(e.Ino)})
		return true
	})
	return out, err
}

func (s *Source) LinkTarget(in *vfs.Inode) (string, error) {
	e, err := s.inode(in)
	if err != nil {
		return "", err
	}
	return s.f.LinkTarget(e)
}

func (s *Source) Open(in *vfs.Inode) (vfs.File, error) {
	e, err := s.inode(in)
	if err != nil {
		return nil, err
	}
	return s.f.NewFileReader(e)
}

// DataBound is the filesystem's size: ext4 shares no blocks between files.
func (s *Source) DataBound() int64 { return s.f.Size() }
