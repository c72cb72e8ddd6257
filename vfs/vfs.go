// Package vfs is the filesystem interface under ctrlift's layer merge,
// diff and export: every source of directory trees (an ext4 or XFS
// filesystem read from an image, a host directory, a tar of a runtime
// tree) implements FS, and package layers merges any of them.
//
// Lookups never follow symbolic links: a link is data, returned as an
// Inode of type symlink, so nothing read from evidence can redirect a
// lookup outside the tree.
package vfs

import (
	"errors"
	"io"
	"io/fs"
	"time"
)

// FS is one tree of inodes.
type FS interface {
	// Lookup resolves a slash-separated path from the root ("." is the
	// root) without following symbolic links: a component that is a
	// link is an error.
	Lookup(path string) (*Inode, error)
	// LookupAt finds name (one component, raw bytes) in directory dir;
	// fs.ErrNotExist when it is absent.
	LookupAt(dir *Inode, name string) (*Inode, error)
	// ReadDir lists dir without "." and "..", in the source's order.
	ReadDir(dir *Inode) ([]DirEntry, error)
	// Readlink returns a symbolic link's target as stored.
	LinkTarget(in *Inode) (string, error)
	// Open opens a regular file's data.
	Open(in *Inode) (File, error)
	// DataBound is the most file data that can be read from this source
	// without a block being read twice: an ext4 filesystem's size, since
	// ext4 shares no blocks between files, so a file map claiming more is
	// forged. 0 when data may be shared (reflinks, host directories).
	DataBound() int64
}

// MaxFileSizer is a source that knows the largest file it can hold (ext4:
// 2^32 blocks); a larger size is forged or damaged. 0 when unknown.
type MaxFileSizer interface {
	MaxFileSize() int64
}

// File is the data of a regular file.
type File interface {
	io.ReaderAt
	io.Reader // sequential, from offset 0
	Size() int64
	// NextData returns the first stretch of data at or after off, as
	// SEEK_DATA and SEEK_HOLE would: [start, end). start == Size() when
	// only holes follow.
	NextData(off int64) (start, end int64, err error)
}

// DirEntry is one name in a directory. Name holds the name's bytes, which
// need not be UTF-8.
type DirEntry struct {
	Name string
	Ino  uint64
}

// Inode is what ctrlift knows of one file: the fields of stat(2) and
// statx(2), and the extended attributes.
type Inode struct {
	Ino      uint64
	Mode     uint32 // raw st_mode: S_IFMT type bits and the 07777 permission bits
	Uid, Gid uint32
	Size     int64
	Nlink    uint32
	Flags    uint32 // the source's inode flags (ext4 i_flags, XFS di_flags)
	Blocks   int64  // allocated space in 512-byte units

	Atime, Mtime, Ctime, Crtime time.Time
	HasCrtime                   bool // the source records a creation time

	RdevMajor, RdevMinor uint32

	// Xattrs are the extended attributes, sorted by full name
	// ("user.x", "trusted.overlay.opaque", "system.posix_acl_access", ...).
	Xattrs []Xattr

	// Sys is the source's own record of the inode (e.g. *ext4.Inode).
	Sys any
}

// Xattr is one extended attribute with its full name.
type Xattr struct {
	Name  string
	Value []byte
}

// File type bits of Inode.Mode (S_IFMT), as in stat(2).
const (
	TypeMask    = 0o170000
	TypeSocket  = 0o140000
	TypeSymlink = 0o120000
	TypeRegular = 0o100000
	TypeBlock   = 0o060000
	TypeDir     = 0o040000
	TypeChar    = 0o020000
	TypeFIFO    = 0o010000
)

// ErrNotDir is returned when a path component or a ReadDir argument is
// not a directory (a symlink included: lookups never follow one).
var ErrNotDir = errors.New("not a directory")

// Unsupported is an error for a feature a reader recognises but does not
// implement; errors.Is(err, errors.ErrUnsupported) holds for it.
type Unsupported string

func (u Unsupported) Error() string { return string(u) }

// Is makes Unsupported match errors.ErrUnsupported.
func (u Unsupported) Is(target error) bool { return target == errors.ErrUnsupported }

func (in *Inode) IsDir() bool      { return in.Mode&TypeMask == TypeDir }
func (in *Inode) IsRegular() bool  { return in.Mode&TypeMask == TypeRegular }
func (in *Inode) IsSymlink() bool  { return in.Mode&TypeMask == TypeSymlink }
func (in *Inode) IsCharDev() bool  { return in.Mode&TypeMask == TypeChar }
func (in *Inode) IsBlockDev() bool { return in.Mode&TypeMask == TypeBlock }
func (in *Inode) IsFIFO() bool     { return in.Mode&TypeMask == TypeFIFO }
func (in *Inode) IsSocket() bool   { return in.Mode&TypeMask == TypeSocket }

// Xattr returns the value of the named extended attribute.
func (in *Inode) Xattr(name string) ([]byte, bool) {
	for _, x := range in.Xattrs {
		if x.Name == name {
			return x.Value, true
		}
	}
	return nil, false
}

// Sparse reports whether a regular file has fewer bytes allocated than its
// size (holes), judged from the block count as du would.
func (in *Inode) Sparse() bool {
	return in.IsRegular() && in.Blocks*512 < in.Size
}

// FileMode converts Mode to an fs.FileMode.
func (in *Inode) FileMode() fs.FileMode {
	m := fs.FileMode(in.Mode & 0o777)
	if in.Mode&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if in.Mode&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if in.Mode&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	switch in.Mode & TypeMask {
	case TypeDir:
		m |= fs.ModeDir
	case TypeSymlink:
		m |= fs.ModeSymlink
	case TypeChar:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case TypeBlock:
		m |= fs.ModeDevice
	case TypeFIFO:
		m |= fs.ModeNamedPipe
	case TypeSocket:
		m |= fs.ModeSocket
	case TypeRegular:
	default:
		m |= fs.ModeIrregular
	}
	return m
}
