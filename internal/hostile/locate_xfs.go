//go:build linux

package hostile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"path"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ctrlift/ctrlift/containerd"
	"github.com/ctrlift/ctrlift/image"
	"github.com/ctrlift/ctrlift/image/xfs"
)

// This file locates XFS structures in a pristine image: a small raw parser
// of its own, independent of image/xfs, so the harness does not share the
// bugs it looks for. It assumes a sound v4 or v5 filesystem (see the
// kernel's fs/xfs/libxfs/xfs_format.h and xfs_da_format.h).

var xbe = binary.BigEndian

// XFS on-disk constants the locator and the mutations use.
const (
	xfsSBCRC    = 224 // superblock CRC (over the first sector)
	xfsAGFCRC   = 216
	xfsAGICRC   = 312
	xfsAGFLCRC  = 32
	xfsInodeCRC = 100

	xfsDataSpace = 1 << 35 // each directory space (data, leaf, free) is 32 GiB
)

// Length, count and pointer fields of each XFS structure (big-endian):
// the targets of the "huge value" mutations.
var (
	xfsSBFields = []Field{
		{4, 4, "sb_blocksize", true}, {8, 8, "sb_dblocks", true}, {16, 8, "sb_rblocks", true},
		{48, 8, "sb_logstart", true}, {56, 8, "sb_rootino", true}, {84, 4, "sb_agblocks", true},
		{88, 4, "sb_agcount", true}, {96, 4, "sb_logblocks", true}, {100, 2, "sb_versionnum", true},
		{102, 2, "sb_sectsize", true}, {104, 2, "sb_inodesize", true}, {106, 2, "sb_inopblock", true},
		{120, 1, "sb_blocklog", true}, {121, 1, "sb_sectlog", true}, {122, 1, "sb_inodelog", true},
		{123, 1, "sb_inopblog", true}, {124, 1, "sb_agblklog", true}, {126, 1, "sb_inprogress", true},
		{192, 1, "sb_dirblklog", true}, {200, 4, "sb_features2", true}, {212, 4, "sb_features_ro_compat", true},
		{216, 4, "sb_features_incompat", true}, {220, 4, "sb_features_log_incompat", true},
	}
	xfsAGFFields = []Field{
		{4, 4, "agf_versionnum", true}, {8, 4, "agf_seqno", true}, {12, 4, "agf_length", true},
		{16, 4, "agf_bno_root", true}, {20, 4, "agf_cnt_root", true}, {28, 4, "agf_bno_level", true},
		{40, 4, "agf_flfirst", true}, {44, 4, "agf_fllast", true}, {48, 4, "agf_flcount", true},
		{52, 4, "agf_freeblks", true}, {56, 4, "agf_longest", true}, {88, 4, "agf_refcount_root", true},
	}
	xfsAGIFields = []Field{
		{4, 4, "agi_versionnum", true}, {8, 4, "agi_seqno", true}, {12, 4, "agi_length", true},
		{16, 4, "agi_count", true}, {20, 4, "agi_root", true}, {24, 4, "agi_level", true},
		{28, 4, "agi_freecount", true}, {32, 4, "agi_newino", true}, {36, 4, "agi_dirino", true},
		{40, 4, "agi_unlinked[0]", true}, {328, 4, "agi_free_root", true},
	}
	xfsInodeFields = []Field{
		{2, 2, "di_mode", true}, {4, 1, "di_version", true}, {5, 1, "di_format", true},
		{16, 4, "di_nlink", true}, {24, 8, "di_big_nextents", true}, {56, 8, "di_size", true},
		{64, 8, "di_nblocks", true}, {76, 4, "di_nextents", true}, {80, 2, "di_anextents", true},
		{82, 1, "di_forkoff", true}, {83, 1, "di_aformat", true}, {90, 2, "di_flags", true},
		{120, 8, "di_flags2", true}, {152, 8, "di_ino", true}, {40, 4, "di_mtime", true},
	}
	// Long-format btree block header (bmbt).
	xfsBmbtFields = []Field{
		{0, 4, "bb_magic", true}, {4, 2, "bb_level", true}, {6, 2, "bb_numrecs", true},
		{8, 8, "bb_leftsib", true}, {16, 8, "bb_rightsib", true}, {24, 8, "bb_blkno", true}, {56, 8, "bb_owner", true},
	}
	// The root of a bmbt inside an inode.
	xfsBmdrFields = []Field{{0, 2, "bb_level", true}, {2, 2, "bb_numrecs", true}}
	// da3 blocks (directory leaf and node blocks, attribute leaf and node blocks).
	xfsDaFields = []Field{
		{0, 4, "forw", true}, {4, 4, "back", true}, {8, 2, "magic", true}, {16, 8, "blkno", true}, {48, 8, "owner", true},
		{56, 2, "count", true}, {58, 2, "level/usedbytes", true}, {60, 4, "firstused/pad", true},
	}
	// Directory data block header (v3) and a data entry.
	xfsDirDataFields = []Field{
		{0, 4, "magic", true}, {8, 8, "blkno", true}, {40, 8, "owner", true},
		{48, 2, "bestfree[0].offset", true}, {50, 2, "bestfree[0].length", true},
	}
	xfsDirEntryFields = []Field{{0, 8, "inumber", true}, {8, 1, "namelen", true}}
	// Remote attribute value and remote symlink block headers.
	xfsRmtFields = []Field{{0, 4, "magic", true}, {4, 4, "offset", true}, {8, 4, "bytes", true}, {32, 8, "owner", true}, {40, 8, "blkno", true}}
)

// XExtent is one data- or attribute-fork extent record of an inode.
type XExtent struct {
	RecOff    int64  // file offset of the 16-byte record
	L         uint64 // logical block
	P         uint64 // filesystem block number (AG-encoded)
	N         uint64 // length in blocks
	Unwritten bool
}

// XBlock is a metadata block of an inode: a bmbt block, a directory or
// attribute block, or a remote symlink block.
type XBlock struct {
	Kind   string // "bmbt", "dir-block", "dir-data", "dir-leaf1", "dir-leafn", "dir-node", "dir-free", "attr-leaf", "attr-node", "attr-remote", "symlink"
	Ino    uint64
	Off    int64 // file offset
	Len    int64
	CRCOff int // offset of the CRC in the block, -1 without one (v4)
	Level  int // bmbt level
}

// XInode is what the harness knows about one inode of an XFS base.
type XInode struct {
	Ino      uint64
	Path     string
	Role     string
	Off      int64 // file offset of the record
	Mode     uint16
	Version  uint8
	Format   uint8 // data fork format: 0 dev, 1 local, 2 extents, 3 btree
	AFormat  uint8
	Size     int64
	Fork     [2]int64 // file offsets [start, end) of the data fork literal area
	AFork    [2]int64 // of the attribute fork; zero without one
	Data     []XExtent
	Attr     []XExtent
	Blocks   []XBlock
	BmbtRoot bool // the data fork holds a bmbt root
}

func (in *XInode) IsDir() bool     { return in.Mode&0xF000 == 0x4000 }
func (in *XInode) IsReg() bool     { return in.Mode&0xF000 == 0x8000 }
func (in *XInode) IsSymlink() bool { return in.Mode&0xF000 == 0xA000 }

func (in *XInode) describe() string {
	p := in.Path
	if len(p) > 60 {
		p = "…" + p[len(p)-59:]
	}
	return fmt.Sprintf("xfs inode %d (%s, %s)", in.Ino, strings.TrimPrefix(p, "./"), in.Role)
}

// xfsGeom is the geometry of a sound XFS filesystem at byte Off of an
// image file.
type xfsGeom struct {
	r         io.ReaderAt
	Off       int64
	BS        int64
	SectSize  int64
	InodeSize int64
	InoPBLog  uint
	AGBlkLog  uint
	AGBlocks  uint64
	AGCount   uint64
	DBlocks   uint64
	RootIno   uint64
	DirBlk    int64
	V5        bool
	Ftype     bool
	Nrext64   bool
	LogStart  uint64
	LogBlocks uint64
	LogRecs   []xlogRec // a dirty log's records from tail to head (those that do not wrap)
}

// xlogRec is one record of a dirty log, where the replay reads it.
type xlogRec struct {
	Off     int64 // byte offset of its header in the base
	HBlks   int64 // header blocks (1 + extended headers)
	DataBBs int64
	Len     int64 // h_len
}

// locateLogRecords walks the records of a dirty log from its tail to its
// head with a small parser of its own (the reader found tail and head).
func (g *xfsGeom) locateLogRecords(tail, head uint64) {
	lo := g.FSBOff(g.LogStart)
	n := int64(g.LogBlocks) * g.BS / 512
	pos, span := int64(tail), (int64(head)-int64(tail)+n)%n
	for walked := int64(0); walked < span && len(g.LogRecs) < 10000; {
		h, err := readFull(g.r, lo+pos*512, 512)
		if err != nil || xbe.Uint32(h) != 0xFEEDBABE {
			return
		}
		hlen := int64(xbe.Uint32(h[12:]))
		hblks := int64(1)
		if size := int64(xbe.Uint32(h[320:])); xbe.Uint32(h[8:])&2 != 0 && size > 32<<10 {
			hblks = (size + 32<<10 - 1) / (32 << 10)
		}
		if hlen <= 0 || hlen > 256<<10 || hblks > 8 {
			return
		}
		bbs := (hlen + 511) / 512
		if pos+hblks+bbs <= n {
			g.LogRecs = append(g.LogRecs, xlogRec{Off: lo + pos*512, HBlks: hblks, DataBBs: bbs, Len: hlen})
		}
		walked += hblks + bbs
		pos = (pos + hblks + bbs) % n
	}
}

func readXFSGeom(r io.ReaderAt, off int64) (*xfsGeom, error) {
	sb, err := readFull(r, off, 512)
	if err != nil {
		return nil, err
	}
	if string(sb[:4]) != "XFSB" {
		return nil, errors.New("no XFS superblock")
	}
	g := &xfsGeom{r: r, Off: off}
	g.BS = int64(xbe.Uint32(sb[4:]))
	g.DBlocks = xbe.Uint64(sb[8:])
	g.LogStart = xbe.Uint64(sb[48:])
	g.RootIno = xbe.Uint64(sb[56:])
	g.AGBlocks = uint64(xbe.Uint32(sb[84:]))
	g.AGCount = uint64(xbe.Uint32(sb[88:]))
	g.LogBlocks = uint64(xbe.Uint32(sb[96:]))
	g.V5 = xbe.Uint16(sb[100:])&0xF == 5
	g.SectSize = int64(xbe.Uint16(sb[102:]))
	g.InodeSize = int64(xbe.Uint16(sb[104:]))
	g.InoPBLog = uint(sb[123])
	g.AGBlkLog = uint(sb[124])
	g.DirBlk = g.BS << sb[192]
	g.Ftype = xbe.Uint32(sb[200:])&0x200 != 0
	if g.V5 {
		inc := xbe.Uint32(sb[216:])
		g.Ftype = g.Ftype || inc&1 != 0
		g.Nrext64 = inc&(1<<5) != 0
	}
	if g.BS < 512 || g.InodeSize < 256 || g.AGBlocks == 0 || g.SectSize < 512 {
		return nil, errors.New("implausible XFS superblock")
	}
	return g, nil
}

// AGOff returns the file offset of allocation group ag.
func (g *xfsGeom) AGOff(ag uint64) int64 { return g.Off + int64(ag*g.AGBlocks)*g.BS }

// FSBOff returns the file offset of filesystem block fsb (AG number in
// the high bits).
func (g *xfsGeom) FSBOff(fsb uint64) int64 {
	ag := fsb >> g.AGBlkLog
	return g.AGOff(ag) + int64(fsb&(1<<g.AGBlkLog-1))*g.BS
}

// FSB returns the filesystem block number of a file offset.
func (g *xfsGeom) FSB(off int64) uint64 {
	lin := uint64((off - g.Off) / g.BS)
	return lin/g.AGBlocks<<g.AGBlkLog | lin%g.AGBlocks
}

// InodeOff returns the file offset of inode ino.
func (g *xfsGeom) InodeOff(ino uint64) int64 {
	agino := ino & (1<<(g.AGBlkLog+g.InoPBLog) - 1)
	ag := ino >> (g.AGBlkLog + g.InoPBLog)
	return g.AGOff(ag) + int64(agino>>g.InoPBLog)*g.BS + int64(agino&(1<<g.InoPBLog-1))*g.InodeSize
}

// InodeNum returns the number of the inode at file offset off.
func (g *xfsGeom) InodeNum(off int64) uint64 {
	fsb := g.FSB(off)
	slot := uint64((off - g.Off) % g.BS / g.InodeSize)
	return fsb<<g.InoPBLog | slot
}

func (g *xfsGeom) coreSize(version uint8) int64 {
	if version == 3 {
		return 176
	}
	return 100
}

// decodeExtent decodes a 128-bit bmbt record.
func decodeExtent(b []byte) XExtent {
	l0, l1 := xbe.Uint64(b), xbe.Uint64(b[8:])
	return XExtent{
		Unwritten: l0>>63 != 0,
		L:         (l0 & (1<<63 - 1)) >> 9,
		P:         (l0&0x1FF)<<43 | l1>>21,
		N:         l1 & (1<<21 - 1),
	}
}

// encodeExtent is decodeExtent's inverse.
func encodeExtent(e XExtent) []byte {
	b := make([]byte, 16)
	l0 := e.L<<9 | e.P>>43&0x1FF
	if e.Unwritten {
		l0 |= 1 << 63
	}
	xbe.PutUint64(b, l0)
	xbe.PutUint64(b[8:], e.P<<21|e.N&(1<<21-1))
	return b
}

// inode reads and maps inode ino: forks, extents, bmbt, directory,
// attribute and symlink blocks.
func (g *xfsGeom) inode(ino uint64) (*XInode, error) {
	off := g.InodeOff(ino)
	raw, err := readFull(g.r, off, int(g.InodeSize))
	if err != nil {
		return nil, err
	}
	if string(raw[:2]) != "IN" {
		return nil, fmt.Errorf("xfs inode %d at %d: no magic", ino, off)
	}
	in := &XInode{Ino: ino, Off: off, Mode: xbe.Uint16(raw[2:]), Version: raw[4], Format: raw[5], AFormat: raw[83]}
	in.Size = int64(xbe.Uint64(raw[56:]))
	core := g.coreSize(in.Version)
	forkOff := int64(raw[82]) * 8
	in.Fork = [2]int64{off + core, off + g.InodeSize}
	if forkOff != 0 {
		in.Fork[1] = off + core + forkOff
		in.AFork = [2]int64{off + core + forkOff, off + g.InodeSize}
	}
	next := uint64(xbe.Uint32(raw[76:]))
	anext := uint64(xbe.Uint16(raw[80:]))
	if in.Version == 3 && xbe.Uint64(raw[120:])&(1<<4) != 0 {
		next = xbe.Uint64(raw[24:])
		anext = uint64(xbe.Uint32(raw[76:]))
	}
	in.Data, err = g.forkExtents(in, raw, in.Fork, in.Format, next)
	if err != nil {
		return nil, err
	}
	if in.AFork[1] != 0 {
		in.Attr, err = g.forkExtents(in, raw, in.AFork, in.AFormat, anext)
		if err != nil {
			return nil, err
		}
	}
	g.classify(in)
	return in, nil
}

func (g *xfsGeom) forkExtents(in *XInode, raw []byte, fork [2]int64, format uint8, n uint64) ([]XExtent, error) {
	lit := raw[fork[0]-in.Off : fork[1]-in.Off]
	switch format {
	case 2: // extents
		var out []XExtent
		for i := uint64(0); i < n && int((i+1)*16) <= len(lit); i++ {
			e := decodeExtent(lit[i*16:])
			e.RecOff = fork[0] + int64(i*16)
			out = append(out, e)
		}
		return out, nil
	case 3: // btree root
		if fork == in.Fork {
			in.BmbtRoot = true
		}
		level := int(xbe.Uint16(lit))
		num := int(xbe.Uint16(lit[2:]))
		maxr := (len(lit) - 4) / 16
		var out []XExtent
		for i := 0; i < num && i < maxr; i++ {
			ptr := xbe.Uint64(lit[4+maxr*8+i*8:])
			if err := g.walkBmbt(in, ptr, level-1, &out, 0); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return nil, nil
}

func (g *xfsGeom) walkBmbt(in *XInode, fsb uint64, level int, out *[]XExtent, depth int) error {
	if depth > 8 || level < 0 {
		return fmt.Errorf("xfs inode %d: bmbt too deep", in.Ino)
	}
	off := g.FSBOff(fsb)
	b, err := readFull(g.r, off, int(g.BS))
	if err != nil {
		return err
	}
	hdr, crc := 24, -1
	if g.V5 {
		hdr, crc = 72, 64
	}
	in.Blocks = append(in.Blocks, XBlock{Kind: "bmbt", Ino: in.Ino, Off: off, Len: g.BS, CRCOff: crc, Level: int(xbe.Uint16(b[4:]))})
	num := int(xbe.Uint16(b[6:]))
	if level == 0 {
		for i := 0; i < num && hdr+(i+1)*16 <= len(b); i++ {
			e := decodeExtent(b[hdr+i*16:])
			e.RecOff = off + int64(hdr+i*16)
			*out = append(*out, e)
		}
		return nil
	}
	maxr := (len(b) - hdr) / 16
	for i := 0; i < num && i < maxr; i++ {
		if err := g.walkBmbt(in, xbe.Uint64(b[hdr+maxr*8+i*8:]), level-1, out, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// BlockOf maps logical block lblk of extents ext to a file offset, or -1.
func (g *xfsGeom) BlockOf(ext []XExtent, lblk uint64) int64 {
	for _, e := range ext {
		if lblk >= e.L && lblk < e.L+e.N {
			return g.FSBOff(e.P + lblk - e.L)
		}
	}
	return -1
}

// contiguous returns the file offset of n bytes from logical block lblk
// when they are contiguous on disk, else -1.
func (g *xfsGeom) contiguous(ext []XExtent, lblk uint64, n int64) int64 {
	first := g.BlockOf(ext, lblk)
	for i := int64(1); i < n/g.BS; i++ {
		if g.BlockOf(ext, lblk+uint64(i)) != first+i*g.BS {
			return -1
		}
	}
	return first
}

// classify finds the directory, attribute and symlink blocks of an inode
// by magic (a few per fork is enough to aim at).
func (g *xfsGeom) classify(in *XInode) {
	if in.IsDir() && in.Format != 1 {
		seen := 0
		for _, e := range in.Data {
			for i := uint64(0); i < e.N && seen < 64; i += uint64(g.DirBlk / g.BS) {
				lblk := e.L + i
				off := g.contiguous(in.Data, lblk, g.DirBlk)
				if off < 0 {
					continue
				}
				b, err := readFull(g.r, off, 16)
				if err != nil {
					continue
				}
				kind, crc := "", -1
				switch string(b[:4]) {
				case "XDB3", "XD2B":
					kind, crc = "dir-block", 4
				case "XDD3", "XD2D":
					kind, crc = "dir-data", 4
				case "XDF3", "XD2F":
					kind, crc = "dir-free", 4
				default:
					switch xbe.Uint16(b[8:]) {
					case 0x3df1, 0xd2f1:
						kind, crc = "dir-leaf1", 12
					case 0x3dff, 0xd2ff:
						kind, crc = "dir-leafn", 12
					case 0x3ebe, 0xfebe:
						kind, crc = "dir-node", 12
					}
				}
				if kind == "" {
					continue
				}
				if !g.V5 {
					crc = -1
				}
				seen++
				in.Blocks = append(in.Blocks, XBlock{Kind: kind, Ino: in.Ino, Off: off, Len: g.DirBlk, CRCOff: crc})
			}
		}
	}
	if in.IsSymlink() && in.Format == 2 {
		for _, e := range in.Data {
			for i := uint64(0); i < e.N; i++ {
				crc := -1
				if g.V5 {
					crc = 12
				}
				in.Blocks = append(in.Blocks, XBlock{Kind: "symlink", Ino: in.Ino, Off: g.FSBOff(e.P + i), Len: g.BS, CRCOff: crc})
			}
		}
	}
	seen := 0
	for _, e := range in.Attr {
		for i := uint64(0); i < e.N && seen < 32; i++ {
			off := g.FSBOff(e.P + i)
			b, err := readFull(g.r, off, 16)
			if err != nil {
				continue
			}
			kind, crc := "", -1
			switch {
			case string(b[:4]) == "XARM":
				kind, crc = "attr-remote", 12
			case xbe.Uint16(b[8:]) == 0x3bee || xbe.Uint16(b[8:]) == 0xfbee:
				kind, crc = "attr-leaf", 12
			case xbe.Uint16(b[8:]) == 0x3ebe || xbe.Uint16(b[8:]) == 0xfebe:
				kind, crc = "attr-node", 12
			}
			if kind == "" {
				continue
			}
			if !g.V5 {
				crc = -1
			}
			seen++
			in.Blocks = append(in.Blocks, XBlock{Kind: kind, Ino: in.Ino, Off: off, Len: g.BS, CRCOff: crc})
		}
	}
}

// xdirEntry is a directory entry and where it is.
type xdirEntry struct {
	Off  int64 // file offset of the entry (of its name length byte in a short-form directory)
	Ino  uint64
	Name string
}

// readDir lists a directory's entries (short-form, block, leaf and node
// forms: the data blocks hold every entry).
func (g *xfsGeom) readDir(in *XInode) ([]xdirEntry, error) {
	var out []xdirEntry
	if in.Format == 1 {
		lit, err := readFull(g.r, in.Fork[0], int(in.Fork[1]-in.Fork[0]))
		if err != nil {
			return nil, err
		}
		count, i8 := int(lit[0]), lit[1] != 0
		isz := 4
		if i8 {
			isz = 8
		}
		p := 2 + isz
		for i := 0; i < count && p < len(lit); i++ {
			nl := int(lit[p])
			q := p + 3 + nl
			if g.Ftype {
				q++
			}
			if q+isz > len(lit) {
				break
			}
			var ino uint64
			if i8 {
				ino = xbe.Uint64(lit[q:])
			} else {
				ino = uint64(xbe.Uint32(lit[q:]))
			}
			out = append(out, xdirEntry{Off: in.Fork[0] + int64(p), Ino: ino, Name: string(lit[p+3 : p+3+nl])})
			p = q + isz
		}
		return out, nil
	}
	hdr := int64(16)
	if g.V5 {
		hdr = 64
	}
	for _, blk := range in.Blocks {
		if blk.Kind != "dir-block" && blk.Kind != "dir-data" {
			continue
		}
		b, err := readFull(g.r, blk.Off, int(blk.Len))
		if err != nil {
			return nil, err
		}
		end := int64(len(b))
		if blk.Kind == "dir-block" {
			count := int64(xbe.Uint32(b[len(b)-8:]))
			end = int64(len(b)) - 8 - count*8
		}
		for p := hdr; p+12 <= end; {
			if xbe.Uint16(b[p:]) == 0xFFFF {
				l := int64(xbe.Uint16(b[p+2:]))
				if l < 8 {
					break
				}
				p += l
				continue
			}
			nl := int64(b[p+8])
			size := 8 + 1 + nl + 2
			if g.Ftype {
				size++
			}
			size = (size + 7) &^ 7
			name := string(b[p+9 : min(p+9+nl, int64(len(b)))])
			if name != "." && name != ".." {
				out = append(out, xdirEntry{Off: blk.Off + p, Ino: xbe.Uint64(b[p:]), Name: name})
			}
			p += size
		}
	}
	return out, nil
}

// lookup resolves a slash path from the root without following symlinks.
func (g *xfsGeom) lookup(p string) (*XInode, error) {
	in, err := g.inode(g.RootIno)
	if err != nil {
		return nil, err
	}
	in.Path = "."
	p = path.Clean(p)
	if p == "." || p == "" || p == "/" {
		return in, nil
	}
	cur := ""
	for _, part := range strings.Split(strings.Trim(p, "/"), "/") {
		if !in.IsDir() {
			return nil, fmt.Errorf("%s: not a directory", cur)
		}
		ents, err := g.readDir(in)
		if err != nil {
			return nil, err
		}
		var next uint64
		for _, e := range ents {
			if e.Name == part {
				next = e.Ino
				break
			}
		}
		if next == 0 {
			return nil, fmt.Errorf("%s/%s: not found", cur, part)
		}
		cur = path.Join(cur, part)
		if in, err = g.inode(next); err != nil {
			return nil, err
		}
		in.Path = cur
	}
	return in, nil
}

// walk visits the inodes below dir, breadth first, at most limit.
func (g *xfsGeom) walk(dir *XInode, limit int, fn func(*XInode)) error {
	queue := []*XInode{dir}
	seen := map[uint64]bool{dir.Ino: true}
	n := 0
	for len(queue) > 0 && n < limit {
		d := queue[0]
		queue = queue[1:]
		ents, err := g.readDir(d)
		if err != nil {
			return err
		}
		sort.Slice(ents, func(i, j int) bool { return ents[i].Name < ents[j].Name })
		for _, e := range ents {
			if seen[e.Ino] || n >= limit {
				continue
			}
			seen[e.Ino] = true
			in, err := g.inode(e.Ino)
			if err != nil {
				return err
			}
			in.Path = path.Join(d.Path, e.Name)
			fn(in)
			n++
			if in.IsDir() {
				queue = append(queue, in)
			}
		}
	}
	return nil
}

// xfsCRC is the XFS checksum of buf with its CRC field at crcOff taken as
// zero, as stored (little-endian).
func xfsCRC(buf []byte, crcOff int) uint32 {
	c := crc32.Update(0, castagnoliTab, buf[:crcOff])
	c = crc32.Update(c, castagnoliTab, make([]byte, 4))
	return crc32.Update(c, castagnoliTab, buf[crcOff+4:])
}

var castagnoliTab = crc32.MakeTable(crc32.Castagnoli)

// locateXFS maps an XFS base: its geometry and AG headers, the path down
// to the containerd root, the databases, the layer directories and a
// sample of their entries, each with its forks and metadata blocks. The
// containers are listed through the reader under test, as for ext4.
func (b *Base) locateXFS(p *image.Partition) error {
	g, err := readXFSGeom(b.f, p.Start)
	if err != nil {
		return err
	}
	b.XFS, b.FSSize = g, p.Size
	b.addBoundaries()
	for ag := uint64(0); ag < min(g.AGCount, 4); ag++ {
		a := g.AGOff(ag)
		b.Boundaries = append(b.Boundaries, a, a+g.SectSize, a+2*g.SectSize, a+3*g.SectSize, a+4*g.SectSize)
	}
	if g.LogBlocks > 0 {
		lo := g.FSBOff(g.LogStart)
		b.Boundaries = append(b.Boundaries, lo, lo+int64(g.LogBlocks)*g.BS/2)
	}
	b.findFreeXFS()
	fsys, err := xfs.NewReader(p.Reader(), p.Size)
	if err != nil {
		return err
	}
	if st, tail, head := fsys.LogState(); st == xfs.LogDirty && g.LogBlocks > 0 {
		g.locateLogRecords(tail, head)
	}
	add := func(in *XInode, role string) *XInode {
		in.Role = role
		b.XInodes = append(b.XInodes, in)
		for _, blk := range in.Blocks {
			b.Boundaries = append(b.Boundaries, blk.Off, blk.Off+blk.Len/2)
		}
		b.Boundaries = append(b.Boundaries, in.Off, in.Off+g.InodeSize/2)
		return in
	}
	if b.Kind != KindContainerd {
		root, err := g.lookup(".")
		if err != nil {
			return err
		}
		add(root, "path")
		b.ExportDirs = []string{"."}
		return g.walk(root, 400, func(in *XInode) { add(in, "entry") })
	}
	iofs := fsys.IOFS()
	root, err := containerd.FindRoot(iofs, "")
	if err != nil {
		return err
	}
	st, err := containerd.Load(iofs, root)
	if err != nil {
		return err
	}
	for _, c := range st.Containers {
		b.Containers = append(b.Containers, Container{c.Namespace, c.ID})
	}
	sort.Slice(b.Containers, func(i, j int) bool { return b.Containers[i].ID < b.Containers[j].ID })
	paths := []struct{ p, role string }{{".", "path"}, {"var", "path"}, {"var/lib", "path"}, {root, "path"},
		{path.Join(root, containerd.MetaDBPath), "metadb"}}
	for _, s := range st.Snapshotters {
		paths = append(paths, struct{ p, role string }{s.Dir, "path"}, struct{ p, role string }{path.Join(s.Dir, "metadata.db"), "snapdb"},
			struct{ p, role string }{path.Join(s.Dir, "snapshots"), "path"})
	}
	for _, x := range paths {
		if in, err := g.lookup(x.p); err == nil {
			add(in, x.role)
		}
	}
	seen := map[string]bool{}
	for _, c := range st.Containers {
		for _, l := range c.Layers {
			if l.Path == "" || seen[l.Path] {
				continue
			}
			seen[l.Path] = true
			in, err := g.lookup(l.Path)
			if err != nil || !in.IsDir() {
				continue
			}
			add(in, "layer-dir")
			var ents []*XInode
			if err := g.walk(in, 2000, func(e *XInode) { ents = append(ents, e) }); err != nil {
				return err
			}
			// Favour the entries with structure worth breaking.
			score := func(e *XInode) int {
				s := 0
				for _, blk := range e.Blocks {
					switch blk.Kind {
					case "bmbt":
						s += 4
					case "attr-leaf", "attr-node", "attr-remote", "symlink":
						s += 3
					default:
						s++
					}
				}
				if e.AFork[1] != 0 {
					s += 2
				}
				if e.IsDir() || e.IsSymlink() {
					s++
				}
				if len(e.Data) > 1 {
					s++
				}
				return s
			}
			sort.SliceStable(ents, func(i, j int) bool { return score(ents[i]) > score(ents[j]) })
			for i, e := range ents {
				if i >= 40 {
					break
				}
				add(e, "layer-entry")
			}
		}
	}
	if blobs, err := g.lookup(path.Join(root, "io.containerd.content.v1.content/blobs")); err == nil {
		n := 0
		g.walk(blobs, 200, func(e *XInode) {
			if e.IsReg() && n < 24 {
				add(e, "blob")
				n++
			}
		})
	}
	if len(b.Containers) == 0 {
		return errors.New("no containers found")
	}
	return nil
}

// findFreeXFS looks for the largest run of never-written blocks in the
// second half of the filesystem, outside the log.
func (b *Base) findFreeXFS() {
	g := b.XFS
	end := min(g.Off+int64(g.DBlocks)*g.BS, b.Size)
	logLo, logHi := g.FSBOff(g.LogStart), g.FSBOff(g.LogStart)+int64(g.LogBlocks)*g.BS
	fd := int(b.f.Fd())
	for pos := g.Off + (end-g.Off)/2; pos < end; {
		h, err := unix.Seek(fd, pos, unix.SEEK_HOLE)
		if err != nil || h >= end {
			return
		}
		d, err := unix.Seek(fd, h, unix.SEEK_DATA)
		if err != nil {
			d = b.Size
		}
		d = min(d, end)
		start := g.Off + (h-g.Off+g.BS-1)/g.BS*g.BS
		stop := g.Off + (d-g.Off)/g.BS*g.BS
		if start < logHi && stop > logLo { // keep clear of the log
			if logLo-start > stop-logHi {
				stop = logLo
			} else {
				start = logHi
			}
		}
		// Stay inside one AG: a forged run is addressed by AG block numbers.
		agEnd := g.AGOff(uint64((start-g.Off)/g.BS)/g.AGBlocks + 1)
		stop = min(stop, agEnd)
		if stop-start > b.Free[1]-b.Free[0] {
			b.Free = [2]int64{start, stop}
		}
		pos = d
	}
}
