package ext4

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"github.com/ctrlift/ctrlift/vfs"
)

// Inode is the metadata of one file, as stored on disk.
type Inode struct {
	Num        uint32
	Mode       uint16 // raw i_mode: S_IFMT type bits and the 07777 permission bits
	Uid, Gid   uint32
	Size       int64
	Nlink      uint32
	Flags      uint32
	Blocks     int64 // allocated space in 512-byte units
	Generation uint32

	Atime, Mtime, Ctime, Crtime time.Time
	HasCrtime                   bool // the inode is large enough to hold a creation time

	RdevMajor, RdevMinor uint32

	// Xattrs are the extended attributes, sorted by full name
	// ("user.x", "security.capability", "system.posix_acl_access", ...).
	Xattrs []Xattr

	iblock   [iBlockSize]byte
	fileACL  uint64
	inlineEA []byte // value of system.data: inline data past i_block
}

// Xattr is one extended attribute with its full name.
type Xattr struct {
	Name  string
	Value []byte
}

// Type predicates on the S_IFMT bits.
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

// FileMode converts the on-disk mode to an fs.FileMode.
func (in *Inode) FileMode() fs.FileMode { return (&vfs.Inode{Mode: uint32(in.Mode)}).FileMode() }

// Sparse reports whether the file has fewer bytes allocated than its size
// (holes), judged from the block count as du would.
func (in *Inode) Sparse() bool {
	return in.IsRegular() && in.Flags&FlagInlineData == 0 && in.Blocks*512 < in.Size
}

// Inode reads inode number num.
func (f *FS) Inode(num uint32) (*Inode, error) {
	if num == 0 || num > f.inodesCount {
		return nil, &FormatError{Struct: "inode number", Ino: num, Offset: -1, Msg: fmt.Sprintf("out of range 1..%d", f.inodesCount)}
	}
	g := uint64(num-1) / uint64(f.inodesPerGroup)
	idx := int64(num-1) % int64(f.inodesPerGroup)
	table := int64(f.inodeTables[g]) * f.blockSize
	off := table + idx*f.inodeSize
	// The piece of the group's inode table holding the inode, or its
	// block when the piece would run past the image.
	start := table + idx*f.inodeSize/itablePiece*itablePiece
	end := min(start+itablePiece, table+int64(f.inodesPerGroup)*f.inodeSize)
	if end > f.size || end < start {
		start = off / f.blockSize * f.blockSize
		end = start + f.blockSize
	}
	piece, err := f.itable.piece(f, start, end, num)
	if err != nil {
		return nil, err
	}
	within := off - start
	// Cached pieces are never written again, so the inode can be parsed
	// in place.
	return f.parseInode(num, piece[within:within+f.inodeSize:within+f.inodeSize], off)
}

// itableCache keeps recently read pieces of inode tables: a walk reads
// inodes in runs (a directory's files were mostly allocated together, and
// a layer's in one stretch), so one read of 64 KiB serves 256 inodes.
type itableCache struct {
	mu     sync.Mutex
	pieces map[int64][]byte // byte offset -> the piece there
	order  []int64
}

const (
	itablePiece = 64 << 10
	// itableCachePieces bounds the cache to 16 MiB: the inode tables of
	// about 65,000 inodes of 256 bytes, enough that the export of a
	// 71-layer container, whose walk goes back and forth between the
	// layers' inodes, reads each piece of their tables once.
	itableCachePieces = 256
)

func (c *itableCache) piece(f *FS, start, end int64, ino uint32) ([]byte, error) {
	c.mu.Lock()
	b, ok := c.pieces[start]
	c.mu.Unlock()
	if ok && int64(len(b)) == end-start {
		return b, nil
	}
	b = make([]byte, end-start)
	if err := f.readAt(b, start, "inode", ino); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pieces == nil {
		c.pieces = map[int64][]byte{}
	}
	if _, ok := c.pieces[start]; !ok {
		if len(c.order) >= itableCachePieces {
			delete(c.pieces, c.order[0])
			c.order = c.order[1:]
		}
		c.pieces[start] = b
		c.order = append(c.order, start)
	}
	return b, nil
}

func (f *FS) parseInode(num uint32, raw []byte, off int64) (*Inode, error) {
	le := binary.LittleEndian
	in := &Inode{Num: num}
	in.Mode = le.Uint16(raw[inMode:])
	in.Uid = uint32(le.Uint16(raw[inUIDLo:])) | uint32(le.Uint16(raw[inUIDHigh:]))<<16
	in.Gid = uint32(le.Uint16(raw[inGIDLo:])) | uint32(le.Uint16(raw[inGIDHigh:]))<<16
	size := uint64(le.Uint32(raw[inSizeLo:])) | uint64(le.Uint32(raw[inSizeHigh:]))<<32
	if size > 1<<62 {
		return nil, &FormatError{Struct: "inode", Ino: num, Offset: off + inSizeLo, Msg: fmt.Sprintf("absurd size %d", size)}
	}
	in.Size = int64(size)
	in.Nlink = uint32(le.Uint16(raw[inLinksCount:]))
	in.Flags = le.Uint32(raw[inFlags:])
	blocks := uint64(le.Uint32(raw[inBlocksLo:]))
	if f.roCompat&roCompatHugeFile != 0 {
		blocks |= uint64(le.Uint16(raw[inBlocksHigh:])) << 32
		if in.Flags&FlagHugeFile != 0 {
			blocks *= uint64(f.blockSize / 512)
		}
	}
	in.Blocks = int64(blocks)
	in.Generation = le.Uint32(raw[inGeneration:])
	in.fileACL = uint64(le.Uint32(raw[inFileACLLo:])) | uint64(le.Uint16(raw[inFileACLHigh:]))<<32
	copy(in.iblock[:], raw[inBlock:inBlock+iBlockSize])

	extra := 0
	if len(raw) > goodOldInodeSize {
		extra = int(le.Uint16(raw[inExtraIsize:]))
		if extra&3 != 0 || goodOldInodeSize+extra > len(raw) {
			return nil, &FormatError{Struct: "inode", Ino: num, Offset: off + inExtraIsize, Msg: fmt.Sprintf("bad extra_isize %d for %d-byte inodes", extra, len(raw))}
		}
	}
	has := func(fieldOff int) bool { return fieldOff+4 <= goodOldInodeSize+extra }
	ts := func(secOff, extraOff int) time.Time {
		sec := int64(int32(le.Uint32(raw[secOff:])))
		if extraOff == 0 || !has(extraOff) {
			return time.Unix(sec, 0).UTC()
		}
		x := le.Uint32(raw[extraOff:])
		sec += int64(x&3) << 32
		return time.Unix(sec, int64(x>>2)).UTC()
	}
	in.Atime = ts(inAtime, inAtimeExtra)
	in.Mtime = ts(inMtime, inMtimeExtra)
	in.Ctime = ts(inCtime, inCtimeExtra)
	if has(inCrtime) {
		in.HasCrtime = true
		in.Crtime = ts(inCrtime, inCrtimeExtra)
	}
	if in.IsCharDev() || in.IsBlockDev() {
		// Old encoding in i_block[0] (8-bit major/minor); new one in i_block[1].
		if old := le.Uint32(in.iblock[0:]); old != 0 {
			in.RdevMajor = (old >> 8) & 0xff
			in.RdevMinor = old & 0xff
		} else {
			dev := le.Uint32(in.iblock[4:])
			in.RdevMajor = (dev >> 8) & 0xfff
			in.RdevMinor = (dev & 0xff) | ((dev >> 12) & 0xfff00)
		}
	}
	if err := f.readXattrs(in, raw, off, extra); err != nil {
		return nil, err
	}
	return in, nil
}

// Inode implements Sys() for fs.FileInfo values: it returns the inode.
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

// FileInfo returns an fs.FileInfo for the inode under the given name; its
// Sys method returns the *Inode.
func (in *Inode) FileInfo(name string) fs.FileInfo { return &fileInfo{name: name, in: in} }
