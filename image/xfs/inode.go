package xfs

import (
	"bytes"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"github.com/ctrlift/ctrlift/vfs"
)

// Inode is the metadata of one file, as stored on disk.
type Inode struct {
	Num        uint64
	Mode       uint16 // raw di_mode: S_IFMT type bits and the 07777 permission bits
	Version    uint8  // inode core version: 1, 2, or 3 (v5 filesystems)
	Format     ForkFormat
	AttrFormat ForkFormat // meaningful only when HasAttrFork
	Uid, Gid   uint32
	Nlink      uint32
	Projid     uint32
	Size       int64
	Blocks     int64  // allocated space in 512-byte units, bmbt and attribute blocks included
	NBlocks    uint64 // di_nblocks: the same in filesystem blocks
	NExtents   uint64 // extent records of the data fork
	ANExtents  uint64 // extent records of the attribute fork
	Flags      uint16 // di_flags (Flag*)
	Flags2     uint64 // di_flags2 (Flag2*), v3 inodes only
	Generation uint32

	Atime, Mtime, Ctime, Crtime time.Time
	HasCrtime                   bool // v3 inodes record a creation time

	RdevMajor, RdevMinor uint32

	// Xattrs are the extended attributes, sorted by full name
	// ("user.x", "security.capability", "system.posix_acl_access", ...).
	Xattrs []vfs.Xattr

	HasAttrFork bool

	offset   int64  // byte offset of the inode in the filesystem
	dataFork []byte // literal area of the data fork
	attrFork []byte // literal area of the attribute fork
	attrForm AttrForm
}

// Type predicates on the S_IFMT bits.
func (in *Inode) IsDir() bool      { return in.Mode&typeMask == typeDir }
func (in *Inode) IsRegular() bool  { return in.Mode&typeMask == typeRegular }
func (in *Inode) IsSymlink() bool  { return in.Mode&typeMask == typeSymlink }
func (in *Inode) IsCharDev() bool  { return in.Mode&typeMask == typeChar }
func (in *Inode) IsBlockDev() bool { return in.Mode&typeMask == typeBlock }
func (in *Inode) IsFIFO() bool     { return in.Mode&typeMask == typeFIFO }
func (in *Inode) IsSocket() bool   { return in.Mode&typeMask == typeSocket }

// coreSize is the size of the inode core, where the data fork starts.
func (in *Inode) coreSize() int {
	if in.Version == 3 {
		return dinodeCoreSizeV3
	}
	return dinodeCoreSizeV2
}

// Realtime reports whether the file's data lives on the realtime device.
func (in *Inode) Realtime() bool { return in.Flags&FlagRealtime != 0 }

// BmbtLevel is the level of the data fork's bmbt root in the inode (the
// tree's height less one), or 0 when the fork is not a B+tree.
func (in *Inode) BmbtLevel() int {
	if in.Format != FormatBtree || len(in.dataFork) < 2 {
		return 0
	}
	return int(be.Uint16(in.dataFork))
}

// AttrForm tells how the extended attributes are stored.
func (in *Inode) AttrForm() AttrForm { return in.attrForm }

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

// VFSInode converts an inode to the neutral record; Sys holds in.
func (in *Inode) VFSInode() *vfs.Inode {
	return &vfs.Inode{
		Ino: in.Num, Mode: uint32(in.Mode), Uid: in.Uid, Gid: in.Gid, Size: in.Size,
		Nlink: in.Nlink, Flags: uint32(in.Flags), Blocks: in.Blocks,
		Atime: in.Atime, Mtime: in.Mtime, Ctime: in.Ctime, Crtime: in.Crtime, HasCrtime: in.HasCrtime,
		RdevMajor: in.RdevMajor, RdevMinor: in.RdevMinor,
		Xattrs: in.Xattrs, Sys: in,
	}
}

// inodeOffset locates inode num: the AG number, the block within the AG
// and the slot within the block are bit fields of the number.
func (f *FS) inodeOffset(num uint64) (int64, error) {
	agino := num & (1<<(f.agBlkLog+f.inoPBLog) - 1)
	ag := num >> (f.agBlkLog + f.inoPBLog)
	agbno := agino >> f.inoPBLog
	slot := agino & (1<<f.inoPBLog - 1)
	if ag >= f.agCount || agbno >= f.agBlocks || ag*f.agBlocks+agbno >= f.dBlocks {
		return 0, &FormatError{Struct: "inode number", AG: int64(min(ag, 1<<62)), Ino: num, Offset: -1,
			Msg: fmt.Sprintf("AG %d block %d lies outside the filesystem (%d AGs of %d blocks, %d blocks in all)", ag, agbno, f.agCount, f.agBlocks, f.dBlocks)}
	}
	if agbno < 4 && agbno*uint64(f.blockSize) < 4*uint64(f.sectSize) {
		// The first sectors of every AG hold its headers, never inodes.
		return 0, &FormatError{Struct: "inode number", AG: int64(ag), Ino: num, Offset: -1,
			Msg: fmt.Sprintf("AG block %d holds the AG headers, not inodes", agbno)}
	}
	return int64(ag*f.agBlocks+agbno)*f.blockSize + int64(slot)*f.inodeSize, nil
}

// validIno reports whether num can name an inode of this filesystem.
func (f *FS) validIno(num uint64) bool {
	_, err := f.inodeOffset(num)
	return err == nil
}

// Inode reads inode number num, its extended attributes included.
func (f *FS) Inode(num uint64) (*Inode, error) {
	return f.readInode(num, true)
}

func (f *FS) readInode(num uint64, withXattrs bool) (*Inode, error) {
	off, err := f.inodeOffset(num)
	if err != nil {
		return nil, err
	}
	raw, err := f.inodes.get(f, off, num)
	if err != nil {
		return nil, err
	}
	in, err := f.parseInode(num, raw, off)
	if err != nil {
		return nil, err
	}
	if withXattrs {
		if err := f.readXattrs(in); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// inodeCache keeps recently read inode clusters: a walk reads inodes in
// runs, and inodes are allocated in chunks of 64, so one read of a
// cluster serves many inodes.
type inodeCache struct {
	mu     sync.Mutex
	blocks map[int64][]byte
	order  []int64
}

const (
	inodeCacheBlocks = 256
	// inodeClusterSize is what one read of inodes covers: the kernel's
	// inode cluster for 512-byte inodes (8 KiB per 256 bytes of inode),
	// or a block when blocks are larger.
	inodeClusterSize = 16 << 10
)

func (c *inodeCache) get(f *FS, off int64, ino uint64) ([]byte, error) {
	cluster := max(f.blockSize, inodeClusterSize)
	blkOff := off &^ (cluster - 1)
	// Within the image: near its end a cluster shrinks to the block.
	if blkOff+cluster > f.size {
		cluster = f.blockSize
		blkOff = off &^ (cluster - 1)
	}
	c.mu.Lock()
	b, ok := c.blocks[blkOff]
	c.mu.Unlock()
	if !ok {
		b = make([]byte, cluster)
		if err := f.readAt(b, blkOff, "inode", ino); err != nil {
			return nil, err
		}
		c.mu.Lock()
		if c.blocks == nil {
			c.blocks = map[int64][]byte{}
		}
		if _, dup := c.blocks[blkOff]; !dup {
			if len(c.order) >= inodeCacheBlocks {
				delete(c.blocks, c.order[0])
				c.order = c.order[1:]
			}
			c.blocks[blkOff] = b
			c.order = append(c.order, blkOff)
		}
		c.mu.Unlock()
	}
	within := off - blkOff
	return append([]byte(nil), b[within:within+f.inodeSize]...), nil
}

// decodeTime converts an on-disk timestamp: two signed 32-bit fields
// (seconds, nanoseconds), or with bigtime one 64-bit nanosecond count from
// the 1901 epoch.
func decodeTime(raw []byte, bigtime bool) time.Time {
	if bigtime {
		ns := be.Uint64(raw)
		return time.Unix(int64(ns/1e9)-bigtimeEpochOffset, int64(ns%1e9)).UTC()
	}
	sec := int64(int32(be.Uint32(raw)))
	nsec := int64(int32(be.Uint32(raw[4:])))
	return time.Unix(sec, nsec).UTC()
}

func (f *FS) parseInode(num uint64, raw []byte, off int64) (*Inode, error) {
	bad := func(field int, format string, args ...any) error {
		return &FormatError{Struct: "inode", AG: int64(num >> (f.agBlkLog + f.inoPBLog)), Ino: num, Offset: off + int64(field), Msg: fmt.Sprintf(format, args...)}
	}
	if m := be.Uint16(raw[diOffMagic:]); m != inodeMagic {
		return nil, bad(diOffMagic, "bad magic 0x%04x", m)
	}
	in := &Inode{Num: num, offset: off}
	in.Version = raw[diOffVersion]
	coreSize := dinodeCoreSizeV2
	switch {
	case in.Version == 3 && f.v5:
		coreSize = dinodeCoreSizeV3
	case (in.Version == 1 || in.Version == 2) && !f.v5:
	default:
		return nil, bad(diOffVersion, "inode version %d on a v%d filesystem", in.Version, f.Version())
	}
	if in.Version == 3 {
		f.checkCRC(raw, diOffCRC, "inode", num, off)
		if got := be.Uint64(raw[diOffIno:]); got != num {
			return nil, bad(diOffIno, "records inode number %d: misplaced or stale inode", got)
		}
		if !bytes.Equal(raw[diOffUUID:diOffUUID+16], f.metaUUID[:]) {
			return nil, bad(diOffUUID, "UUID %s is not the filesystem's: a stale inode from an earlier filesystem", formatUUID([16]byte(raw[diOffUUID:diOffUUID+16])))
		}
	}
	in.Mode = be.Uint16(raw[diOffMode:])
	if in.Mode&typeMask == 0 {
		return nil, bad(diOffMode, "mode %#o: unallocated inode", in.Mode)
	}
	switch in.Mode & typeMask {
	case typeRegular, typeDir, typeSymlink, typeChar, typeBlock, typeFIFO, typeSocket:
	default:
		return nil, bad(diOffMode, "mode %#o has no valid file type", in.Mode)
	}
	in.Format = ForkFormat(raw[diOffFormat])
	in.Uid = be.Uint32(raw[diOffUID:])
	in.Gid = be.Uint32(raw[diOffGID:])
	if in.Version == 1 {
		in.Nlink = uint32(be.Uint16(raw[diOffOnlink:]))
	} else {
		in.Nlink = be.Uint32(raw[diOffNlink:])
		in.Projid = uint32(be.Uint16(raw[diOffProjidHi:]))<<16 | uint32(be.Uint16(raw[diOffProjidLo:]))
	}
	size := be.Uint64(raw[diOffSize:])
	if size > 1<<63-1 {
		return nil, bad(diOffSize, "absurd size %d", size)
	}
	in.Size = int64(size)
	in.NBlocks = be.Uint64(raw[diOffNblocks:])
	if in.NBlocks > 1<<54 {
		return nil, bad(diOffNblocks, "absurd block count %d", in.NBlocks)
	}
	in.Blocks = int64(in.NBlocks << (f.blockLog - 9))
	in.Flags = be.Uint16(raw[diOffFlags:])
	in.Generation = be.Uint32(raw[diOffGen:])
	if in.Version == 3 {
		in.Flags2 = be.Uint64(raw[diOffFlags2:])
	}
	if in.Flags2&Flag2Nrext64 != 0 {
		if f.incompat&incompatNrext64 == 0 {
			return nil, bad(diOffFlags2, "large extent counters on a filesystem without nrext64")
		}
		in.NExtents = be.Uint64(raw[diOffBigNextents:])
		in.ANExtents = uint64(be.Uint32(raw[diOffNextents:]))
	} else {
		in.NExtents = uint64(be.Uint32(raw[diOffNextents:]))
		in.ANExtents = uint64(be.Uint16(raw[diOffAnextents:]))
	}
	bigtime := in.Flags2&Flag2Bigtime != 0
	if bigtime && f.incompat&incompatBigtime == 0 {
		return nil, bad(diOffFlags2, "bigtime timestamps on a filesystem without bigtime")
	}
	in.Atime = decodeTime(raw[diOffAtime:], bigtime)
	in.Mtime = decodeTime(raw[diOffMtime:], bigtime)
	in.Ctime = decodeTime(raw[diOffCtime:], bigtime)
	if in.Version == 3 {
		in.HasCrtime = true
		in.Crtime = decodeTime(raw[diOffCrtime:], bigtime)
	}

	// The literal area after the core holds the data fork, then from
	// di_forkoff*8 the attribute fork.
	lit := raw[coreSize:]
	forkOff := int(raw[diOffForkoff]) * 8
	in.dataFork = lit
	if forkOff != 0 {
		if forkOff >= len(lit) {
			return nil, bad(diOffForkoff, "attribute fork at byte %d of a %d-byte literal area", forkOff, len(lit))
		}
		in.dataFork = lit[:forkOff]
		in.attrFork = lit[forkOff:]
		in.HasAttrFork = true
		in.AttrFormat = ForkFormat(raw[diOffAformat])
	} else if in.ANExtents != 0 {
		return nil, bad(diOffAnextents, "%d attribute extents but no attribute fork", in.ANExtents)
	}

	// Which data fork formats a file type may use.
	okFormat := false
	switch in.Mode & typeMask {
	case typeDir:
		okFormat = in.Format == FormatLocal || in.Format == FormatExtents || in.Format == FormatBtree
	case typeRegular:
		okFormat = in.Format == FormatExtents || in.Format == FormatBtree
	case typeSymlink:
		okFormat = in.Format == FormatLocal || in.Format == FormatExtents || in.Format == FormatBtree
	default:
		okFormat = in.Format == FormatDev
	}
	if !okFormat {
		return nil, bad(diOffFormat, "data fork format %s for mode %#o", in.Format, in.Mode)
	}
	if in.Format == FormatLocal && in.Size > int64(len(in.dataFork)) {
		return nil, bad(diOffSize, "size %d does not fit the %d-byte inline data fork", in.Size, len(in.dataFork))
	}
	if in.Format == FormatDev && (in.IsCharDev() || in.IsBlockDev()) {
		if len(in.dataFork) < 4 {
			return nil, bad(coreSize, "no room for a device number")
		}
		// The sysv encoding: 14 bits of major, 18 of minor; Linux keeps 9
		// bits of the major (xfs_to_linux_dev_t).
		dev := be.Uint32(in.dataFork)
		in.RdevMajor = (dev >> 18) & 0x1ff
		in.RdevMinor = dev & 0x3ffff
	}
	return in, nil
}

// Lookup resolves a slash-separated path from the root without following
// any symlink: a symlink in the middle of the path is an error, and a
// final symlink is returned as itself.
func (f *FS) LookupInode(name string) (*Inode, error) {
	cur, err := f.Inode(f.rootIno)
	if err != nil {
		return nil, err
	}
	if !cur.IsDir() {
		return nil, &FormatError{Struct: "root inode", AG: -1, Ino: cur.Num, Offset: cur.offset, Msg: fmt.Sprintf("mode %#o is not a directory", cur.Mode)}
	}
	for _, part := range splitPath(name) {
		if !cur.IsDir() {
			if cur.IsSymlink() {
				return nil, fmt.Errorf("xfs: lookup %q: component before %q is a symlink (not followed): %w", name, part, vfs.ErrNotDir)
			}
			return nil, fmt.Errorf("xfs: lookup %q: %w", name, vfs.ErrNotDir)
		}
		next, err := f.LookupAtInode(cur, part)
		if err != nil {
			return nil, err
		}
		cur = next
	}
	return cur, nil
}

func splitPath(name string) []string {
	var out []string
	for _, p := range bytes.Split([]byte(name), []byte("/")) {
		if len(p) == 0 || (len(p) == 1 && p[0] == '.') {
			continue
		}
		out = append(out, string(p))
	}
	return out
}
