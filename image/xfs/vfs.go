package xfs

import (
	"fmt"

	"github.com/ctrlift/ctrlift/vfs"
)

// The vfs.FS view, which the layer merge, diff and export read. Each
// vfs.Inode returned carries the *Inode it was made from in Sys.

var _ vfs.FS = (*FS)(nil)

// IOFS returns the io/fs view of the filesystem (fs.FS, fs.ReadDirFS,
// fs.StatFS, fs.ReadLinkFS); FileInfo.Sys returns the *vfs.Inode.
func (f *FS) IOFS() *vfs.IOFS { return vfs.NewIOFS(f) }

// inode returns the XFS inode behind a vfs.Inode of this filesystem.
func (f *FS) inode(in *vfs.Inode) (*Inode, error) {
	if in == nil {
		return nil, fmt.Errorf("xfs: nil inode")
	}
	if x, ok := in.Sys.(*Inode); ok {
		return x, nil
	}
	return f.Inode(in.Ino)
}

// Lookup resolves a slash-separated path from the root ("." is the root)
// without following symbolic links.
func (f *FS) Lookup(path string) (*vfs.Inode, error) {
	in, err := f.LookupInode(path)
	if err != nil {
		return nil, err
	}
	return in.VFSInode(), nil
}

// LookupAt finds name in directory dir; fs.ErrNotExist when it is absent.
func (f *FS) LookupAt(dir *vfs.Inode, name string) (*vfs.Inode, error) {
	d, err := f.inode(dir)
	if err != nil {
		return nil, err
	}
	in, err := f.LookupAtInode(d, name)
	if err != nil {
		return nil, err
	}
	return in.VFSInode(), nil
}

// EntryInode reads the inode of e, an entry ReadDir listed in dir: the
// inode LookupAt(dir, e.Name) finds, without indexing the directory to
// look the name up again. Of a name listed twice (corrupt), LookupAt
// finds the last one in a block, leaf, node or B+tree directory, which is
// the one the merge passes, and the first in a short-form directory: for
// those (small by construction) the name is looked up.
func (f *FS) EntryInode(dir *vfs.Inode, e vfs.DirEntry) (*vfs.Inode, error) {
	d, err := f.inode(dir)
	if err != nil {
		return nil, err
	}
	if d.Format == FormatLocal || e.Ino == 0 {
		return f.LookupAt(dir, e.Name)
	}
	in, err := f.Inode(e.Ino)
	if err != nil {
		return nil, err
	}
	return in.VFSInode(), nil
}

// ReadDir lists dir without "." and "..", in on-disk order.
func (f *FS) ReadDir(dir *vfs.Inode) ([]vfs.DirEntry, error) {
	d, err := f.inode(dir)
	if err != nil {
		return nil, err
	}
	var out []vfs.DirEntry
	err = f.walkDir(d, func(e DirEntry) bool {
		out = append(out, vfs.DirEntry{Name: e.Name, Ino: e.Ino})
		return true
	})
	return out, err
}

// LinkTarget returns a symbolic link's target as stored.
func (f *FS) LinkTarget(in *vfs.Inode) (string, error) {
	x, err := f.inode(in)
	if err != nil {
		return "", err
	}
	return f.LinkTargetInode(x)
}

// Open opens a regular file's data.
func (f *FS) Open(in *vfs.Inode) (vfs.File, error) {
	x, err := f.inode(in)
	if err != nil {
		return nil, err
	}
	return f.OpenInode(x)
}

// DataBound is what all files together may map: the filesystem's size,
// plus with reflink the sharing its refcount B+trees record
// (sharingBound).
func (f *FS) DataBound() int64 {
	if f.Reflink() {
		return f.sharingBound()
	}
	return f.Size()
}
