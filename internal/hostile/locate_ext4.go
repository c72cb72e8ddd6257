//go:build linux

package hostile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// This file locates ext2/3/4 structures in a pristine image: its own small
// raw parser, independent of image/ext4, so that the harness does not
// share the bugs it looks for. It assumes a sound filesystem.

var le = binary.LittleEndian

// Offsets of on-disk fields used to aim mutations (see the kernel's
// fs/ext4/ext4.h and Documentation/filesystems/ext4).
const (
	sbOff = 1024

	inodeFlagIndex   = 0x1000
	inodeFlagExtents = 0x80000
	inodeFlagInline  = 0x10000000

	incompatMetaBg  = 0x10
	incompat64Bit   = 0x80
	incompatRecover = 0x4
)

// Field is a little-endian integer field of a structure: its byte offset
// inside the structure, width in bytes and name.
type Field struct {
	Off   int
	Width int
	Name  string
	BE    bool // big-endian (jbd2)
}

// Length, count and pointer fields of each ext4 structure: the targets of
// the "huge value" mutations.
var (
	superblockFields = []Field{
		{0x00, 4, "s_inodes_count", false}, {0x04, 4, "s_blocks_count_lo", false},
		{0x14, 4, "s_first_data_block", false}, {0x18, 4, "s_log_block_size", false},
		{0x20, 4, "s_blocks_per_group", false}, {0x28, 4, "s_inodes_per_group", false},
		{0x4C, 4, "s_rev_level", false}, {0x54, 4, "s_first_ino", false},
		{0x58, 2, "s_inode_size", false}, {0x5C, 4, "s_feature_compat", false},
		{0x60, 4, "s_feature_incompat", false}, {0x64, 4, "s_feature_ro_compat", false},
		{0xE0, 4, "s_journal_inum", false}, {0xFE, 2, "s_desc_size", false},
		{0x104, 4, "s_first_meta_bg", false}, {0x150, 4, "s_blocks_count_hi", false},
		{0x15C, 2, "s_min_extra_isize", false}, {0x174, 1, "s_log_groups_per_flex", false},
		{0x38, 2, "s_magic", false},
	}
	groupDescFields = []Field{
		{0x00, 4, "bg_block_bitmap_lo", false}, {0x04, 4, "bg_inode_bitmap_lo", false},
		{0x08, 4, "bg_inode_table_lo", false}, {0x0C, 2, "bg_free_blocks_count_lo", false},
		{0x12, 2, "bg_flags", false}, {0x1C, 2, "bg_itable_unused_lo", false},
	}
	groupDesc64Fields = []Field{{0x28, 4, "bg_inode_table_hi", false}}
	inodeFields       = []Field{
		{0x00, 2, "i_mode", false}, {0x04, 4, "i_size_lo", false}, {0x6C, 4, "i_size_high", false},
		{0x1A, 2, "i_links_count", false}, {0x1C, 4, "i_blocks_lo", false}, {0x74, 2, "i_blocks_high", false},
		{0x20, 4, "i_flags", false}, {0x68, 4, "i_file_acl_lo", false}, {0x76, 2, "i_file_acl_high", false},
		{0x80, 2, "i_extra_isize", false}, {0x10, 4, "i_mtime", false}, {0x88, 4, "i_mtime_extra", false},
	}
	extentHeaderFields = []Field{
		{0x0, 2, "eh_magic", false}, {0x2, 2, "eh_entries", false}, {0x4, 2, "eh_max", false}, {0x6, 2, "eh_depth", false},
	}
	// Relative to an entry (12 bytes, after the 12-byte header).
	extentLeafFields  = []Field{{0x0, 4, "ee_block", false}, {0x4, 2, "ee_len", false}, {0x6, 2, "ee_start_hi", false}, {0x8, 4, "ee_start_lo", false}}
	extentIndexFields = []Field{{0x0, 4, "ei_block", false}, {0x4, 4, "ei_leaf_lo", false}, {0x8, 2, "ei_leaf_hi", false}}
	dirEntryFields    = []Field{{0x0, 4, "inode", false}, {0x4, 2, "rec_len", false}, {0x6, 1, "name_len", false}, {0x7, 1, "file_type", false}}
	dxRootFields      = []Field{{0x1C, 1, "dx_info_length", false}, {0x1E, 1, "dx_indirect_levels", false}, {0x20, 2, "dx_limit", false}, {0x22, 2, "dx_count", false}, {0x24, 4, "dx_block", false}}
	xattrBlockFields  = []Field{{0x0, 4, "h_magic", false}, {0x4, 4, "h_refcount", false}, {0x8, 4, "h_blocks", false}}
	xattrEntryFields  = []Field{{0x0, 1, "e_name_len", false}, {0x1, 1, "e_name_index", false}, {0x2, 2, "e_value_offs", false}, {0x4, 4, "e_value_inum", false}, {0x8, 4, "e_value_size", false}}
	journalSBFields   = []Field{
		{0x0, 4, "h_magic", true}, {0x4, 4, "h_blocktype", true}, {0xC, 4, "s_blocksize", true}, {0x10, 4, "s_maxlen", true},
		{0x14, 4, "s_first", true}, {0x18, 4, "s_sequence", true}, {0x1C, 4, "s_start", true},
		{0x28, 4, "s_feature_incompat", true}, {0x24, 4, "s_feature_compat", true},
	}
)

// ext4Geom is the geometry of a sound ext2/3/4 filesystem at byte Off of
// an image file.
type ext4Geom struct {
	r              io.ReaderAt
	Off            int64 // byte offset of the filesystem in the file
	BS             int64
	BlocksCount    uint64
	FirstDataBlock uint64
	BlocksPerGroup uint64
	InodesPerGroup uint32
	InodesCount    uint32
	InodeSize      int64
	DescSize       int64
	Groups         uint64
	Incompat       uint32
	GDTBlocks      []int64 // file offsets of the group descriptor blocks
	InodeTables    []uint64
}

func readFull(r io.ReaderAt, off int64, n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := r.ReadAt(b, off); err != nil {
		return nil, fmt.Errorf("reading %d bytes at %d: %w", n, off, err)
	}
	return b, nil
}

func readExt4Geom(r io.ReaderAt, off int64) (*ext4Geom, error) {
	sb, err := readFull(r, off+sbOff, 1024)
	if err != nil {
		return nil, err
	}
	if le.Uint16(sb[0x38:]) != 0xEF53 {
		return nil, errors.New("no ext2/3/4 superblock")
	}
	g := &ext4Geom{r: r, Off: off}
	g.BS = 1024 << le.Uint32(sb[0x18:])
	g.Incompat = le.Uint32(sb[0x60:])
	g.BlocksCount = uint64(le.Uint32(sb[0x04:]))
	if g.Incompat&incompat64Bit != 0 {
		g.BlocksCount |= uint64(le.Uint32(sb[0x150:])) << 32
	}
	g.FirstDataBlock = uint64(le.Uint32(sb[0x14:]))
	g.BlocksPerGroup = uint64(le.Uint32(sb[0x20:]))
	g.InodesPerGroup = le.Uint32(sb[0x28:])
	g.InodesCount = le.Uint32(sb[0x00:])
	g.InodeSize = 128
	if le.Uint32(sb[0x4C:]) >= 1 {
		g.InodeSize = int64(le.Uint16(sb[0x58:]))
	}
	g.DescSize = 32
	if g.Incompat&incompat64Bit != 0 {
		g.DescSize = int64(le.Uint16(sb[0xFE:]))
	}
	g.Groups = (g.BlocksCount - g.FirstDataBlock + g.BlocksPerGroup - 1) / g.BlocksPerGroup
	perBlock := uint64(g.BS / g.DescSize)
	firstMetaBg := uint64(le.Uint32(sb[0x104:]))
	metaBg := g.Incompat&incompatMetaBg != 0
	sparse := le.Uint32(sb[0x64:])&1 != 0
	g.InodeTables = make([]uint64, g.Groups)
	for grp := uint64(0); grp < g.Groups; grp += perBlock {
		db := grp / perBlock
		var blk uint64
		if !metaBg || db < firstMetaBg {
			blk = g.FirstDataBlock + 1 + db
		} else {
			first := db * perBlock
			blk = g.FirstDataBlock + first*g.BlocksPerGroup
			if hasSuper(first, sparse) {
				blk++
			}
		}
		boff := off + int64(blk)*g.BS
		g.GDTBlocks = append(g.GDTBlocks, boff)
		buf, err := readFull(r, boff, int(g.BS))
		if err != nil {
			return nil, err
		}
		for i := uint64(0); i < perBlock && grp+i < g.Groups; i++ {
			d := buf[int64(i)*g.DescSize:]
			t := uint64(le.Uint32(d[0x08:]))
			if g.DescSize >= 64 {
				t |= uint64(le.Uint32(d[0x28:])) << 32
			}
			g.InodeTables[grp+i] = t
		}
	}
	return g, nil
}

func hasSuper(g uint64, sparse bool) bool {
	if g <= 1 || !sparse {
		return true
	}
	for _, base := range []uint64{3, 5, 7} {
		n := base
		for n < g {
			n *= base
		}
		if n == g {
			return true
		}
	}
	return false
}

// GroupDescOff returns the file offset of group descriptor grp.
func (g *ext4Geom) GroupDescOff(grp uint64) int64 {
	perBlock := uint64(g.BS / g.DescSize)
	return g.GDTBlocks[grp/perBlock] + int64(grp%perBlock)*g.DescSize
}

// InodeOff returns the file offset of inode ino's record.
func (g *ext4Geom) InodeOff(ino uint32) int64 {
	grp := uint64(ino-1) / uint64(g.InodesPerGroup)
	idx := int64(ino-1) % int64(g.InodesPerGroup)
	return g.Off + int64(g.InodeTables[grp])*g.BS + idx*g.InodeSize
}

// BlockOff returns the file offset of filesystem block blk.
func (g *ext4Geom) BlockOff(blk uint64) int64 { return g.Off + int64(blk)*g.BS }

// BlockRun maps logical blocks [L, L+N) of a file to physical blocks [P, P+N).
type BlockRun struct{ L, P, N uint64 }

// Node is a block-mapping structure of an inode: an extent tree node (the
// root lives in the inode: Len 60) or an indirect block.
type Node struct {
	Ino    uint32
	Off    int64 // file offset
	Len    int64
	Depth  int  // extent depth; for indirect blocks the level (1 = single)
	Extent bool // extent node, else indirect block
	Parent int64
}

// InodeInfo is what the harness knows about one inode of a base image.
type InodeInfo struct {
	Ino    uint32
	Path   string // slash path on the filesystem, "." for the root
	Role   string // why it was picked: "path", "metadb", "layer-dir", "layer-entry", ...
	Off    int64  // file offset of the record
	Mode   uint16
	Flags  uint32
	Size   int64
	Runs   []BlockRun
	Nodes  []Node
	EAArea [2]int64 // file offsets [start, end) of the in-inode xattr area, when it holds xattrs
	EABlk  int64    // file offset of the external xattr block, 0 if none
}

func (in *InodeInfo) IsDir() bool     { return in.Mode&0xF000 == 0x4000 }
func (in *InodeInfo) IsReg() bool     { return in.Mode&0xF000 == 0x8000 }
func (in *InodeInfo) IsSymlink() bool { return in.Mode&0xF000 == 0xA000 }

// inode reads and maps inode ino.
func (g *ext4Geom) inode(ino uint32) (*InodeInfo, error) {
	off := g.InodeOff(ino)
	raw, err := readFull(g.r, off, int(g.InodeSize))
	if err != nil {
		return nil, err
	}
	in := &InodeInfo{Ino: ino, Off: off, Mode: le.Uint16(raw[0:]), Flags: le.Uint32(raw[0x20:])}
	in.Size = int64(uint64(le.Uint32(raw[0x04:])) | uint64(le.Uint32(raw[0x6C:]))<<32)
	if g.InodeSize > 128 {
		extra := int64(le.Uint16(raw[0x80:]))
		start := 128 + extra
		if start+4 <= g.InodeSize && le.Uint32(raw[start:]) == 0xEA020000 {
			in.EAArea = [2]int64{off + start, off + g.InodeSize}
		}
	}
	if acl := uint64(le.Uint32(raw[0x68:])) | uint64(le.Uint16(raw[0x76:]))<<32; acl != 0 {
		in.EABlk = g.BlockOff(acl)
	}
	fast := in.IsSymlink() && in.Size < 60 && in.Flags&inodeFlagExtents == 0
	switch {
	case in.Flags&inodeFlagInline != 0, fast, in.Mode&0xF000 == 0x2000, in.Mode&0xF000 == 0x6000,
		in.Mode&0xF000 == 0x1000, in.Mode&0xF000 == 0xC000:
		// No block mapping.
	case in.Flags&inodeFlagExtents != 0:
		err = g.walkExtents(in, raw[0x28:0x28+60], off+0x28, -1, 0)
	default:
		err = g.walkIndirect(in, raw[0x28:0x28+60], off+0x28)
	}
	return in, err
}

func (g *ext4Geom) walkExtents(in *InodeInfo, node []byte, off, parent int64, level int) error {
	if level > 5 || le.Uint16(node) != 0xF30A {
		return fmt.Errorf("inode %d: bad extent node at %d", in.Ino, off)
	}
	n := int(le.Uint16(node[2:]))
	depth := int(le.Uint16(node[6:]))
	in.Nodes = append(in.Nodes, Node{Ino: in.Ino, Off: off, Len: int64(len(node)), Depth: depth, Extent: true, Parent: parent})
	for i := 0; i < n && 12+i*12+12 <= len(node); i++ {
		e := node[12+i*12:]
		if depth == 0 {
			l := uint64(le.Uint16(e[4:]))
			if l > 32768 {
				l -= 32768
			}
			p := uint64(le.Uint16(e[6:]))<<32 | uint64(le.Uint32(e[8:]))
			in.Runs = append(in.Runs, BlockRun{L: uint64(le.Uint32(e)), P: p, N: l})
			continue
		}
		child := uint64(le.Uint16(e[8:]))<<32 | uint64(le.Uint32(e[4:]))
		coff := g.BlockOff(child)
		buf, err := readFull(g.r, coff, int(g.BS))
		if err != nil {
			return err
		}
		if err := g.walkExtents(in, buf, coff, off, level+1); err != nil {
			return err
		}
	}
	return nil
}

func (g *ext4Geom) walkIndirect(in *InodeInfo, iblock []byte, off int64) error {
	per := uint64(g.BS / 4)
	for i := 0; i < 12; i++ {
		if p := uint64(le.Uint32(iblock[i*4:])); p != 0 {
			in.Runs = append(in.Runs, BlockRun{L: uint64(i), P: p, N: 1})
		}
	}
	base := uint64(12)
	span := per
	for level := 1; level <= 3; level++ {
		if p := uint64(le.Uint32(iblock[(11+level)*4:])); p != 0 {
			if err := g.indirect(in, p, level, base, off+int64(11+level)*4); err != nil {
				return err
			}
		}
		base += span
		span *= per
	}
	return nil
}

func (g *ext4Geom) indirect(in *InodeInfo, blk uint64, level int, lbase uint64, parent int64) error {
	boff := g.BlockOff(blk)
	buf, err := readFull(g.r, boff, int(g.BS))
	if err != nil {
		return err
	}
	in.Nodes = append(in.Nodes, Node{Ino: in.Ino, Off: boff, Len: g.BS, Depth: level, Parent: parent})
	per := uint64(g.BS / 4)
	span := uint64(1)
	for i := 1; i < level; i++ {
		span *= per
	}
	for i := uint64(0); i < per; i++ {
		p := uint64(le.Uint32(buf[i*4:]))
		if p == 0 {
			continue
		}
		if level == 1 {
			in.Runs = append(in.Runs, BlockRun{L: lbase + i, P: p, N: 1})
			continue
		}
		if err := g.indirect(in, p, level-1, lbase+i*span, boff+int64(i)*4); err != nil {
			return err
		}
	}
	return nil
}

// FileOff maps a byte offset of the inode's contents to a file offset of
// the image, or -1 for a hole.
func (g *ext4Geom) FileOff(in *InodeInfo, pos int64) int64 {
	lblk := uint64(pos / g.BS)
	for _, r := range in.Runs {
		if lblk >= r.L && lblk < r.L+r.N {
			return g.BlockOff(r.P+lblk-r.L) + pos%g.BS
		}
	}
	return -1
}

// Contents reads the inode's contents (holes as zeros), at most limit bytes.
func (g *ext4Geom) Contents(in *InodeInfo, limit int64) ([]byte, error) {
	n := min(in.Size, limit)
	out := make([]byte, n)
	for _, r := range in.Runs {
		for i := uint64(0); i < r.N; i++ {
			pos := int64(r.L+i) * g.BS
			if pos >= n {
				continue
			}
			end := min(pos+g.BS, n)
			if _, err := g.r.ReadAt(out[pos:end], g.BlockOff(r.P+i)); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// DataBlocks returns the file offsets of the inode's data blocks, in
// logical order.
func (g *ext4Geom) DataBlocks(in *InodeInfo) []int64 {
	var out []int64
	for _, r := range in.Runs {
		for i := uint64(0); i < r.N && len(out) < 1<<16; i++ {
			out = append(out, g.BlockOff(r.P+i))
		}
	}
	return out
}

// PatchFile turns a write of data at byte pos of the inode's contents into
// image patches (a write may span blocks that are not contiguous).
func (g *ext4Geom) PatchFile(in *InodeInfo, pos int64, data []byte) []Patch {
	var out []Patch
	for len(data) > 0 {
		n := min(int64(len(data)), g.BS-pos%g.BS)
		if off := g.FileOff(in, pos); off >= 0 {
			out = append(out, Patch{Off: off, Data: data[:n]})
		}
		data = data[n:]
		pos += n
	}
	return out
}

// dirEntry is a parsed linear directory entry and where it is.
type dirEntry struct {
	Off  int64 // file offset of the entry
	Ino  uint32
	Name string
	Type uint8
}

// readDir parses a directory's linear entries (block-mapped or extent
// directories; inline directories return nothing).
func (g *ext4Geom) readDir(in *InodeInfo) ([]dirEntry, error) {
	var out []dirEntry
	for _, boff := range g.DataBlocks(in) {
		b, err := readFull(g.r, boff, int(g.BS))
		if err != nil {
			return nil, err
		}
		for p := 0; p+8 <= len(b); {
			ino := le.Uint32(b[p:])
			rl := int(le.Uint16(b[p+4:]))
			if g.BS >= 65536 && (rl == 65535 || rl == 0) {
				rl = int(g.BS)
			} else if g.BS >= 65536 {
				rl = rl&65532 | (rl&3)<<16
			}
			nl := int(b[p+6])
			if rl < 8 || p+rl > len(b) {
				break
			}
			if ino != 0 && 8+nl <= rl {
				name := string(b[p+8 : p+8+nl])
				if name != "." && name != ".." {
					out = append(out, dirEntry{Off: boff + int64(p), Ino: ino, Name: name, Type: b[p+7]})
				}
			}
			p += rl
		}
	}
	return out, nil
}

// lookup resolves a slash path from the root without following symlinks.
func (g *ext4Geom) lookup(p string) (*InodeInfo, error) {
	in, err := g.inode(2)
	if err != nil {
		return nil, err
	}
	in.Path = "."
	if p == "." || p == "" {
		return in, nil
	}
	cur := ""
	for _, part := range splitPath(p) {
		if !in.IsDir() {
			return nil, fmt.Errorf("%s: not a directory", cur)
		}
		ents, err := g.readDir(in)
		if err != nil {
			return nil, err
		}
		found := uint32(0)
		for _, e := range ents {
			if e.Name == part {
				found = e.Ino
				break
			}
		}
		if found == 0 {
			return nil, fmt.Errorf("%s/%s: not found", cur, part)
		}
		if cur == "" {
			cur = part
		} else {
			cur += "/" + part
		}
		if in, err = g.inode(found); err != nil {
			return nil, err
		}
		in.Path = cur
	}
	return in, nil
}

func splitPath(p string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(p); i++ {
		if i == len(p) || p[i] == '/' {
			if s := p[start:i]; s != "" && s != "." {
				out = append(out, s)
			}
			start = i + 1
		}
	}
	return out
}

// walk visits the tree below dir (depth first, at most limit inodes),
// calling fn with each inode. Directories are entered once.
func (g *ext4Geom) walk(dir *InodeInfo, limit int, fn func(*InodeInfo)) error {
	seen := map[uint32]bool{}
	var rec func(d *InodeInfo) error
	count := 0
	rec = func(d *InodeInfo) error {
		if seen[d.Ino] || count >= limit {
			return nil
		}
		seen[d.Ino] = true
		ents, err := g.readDir(d)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if count >= limit {
				return nil
			}
			c, err := g.inode(e.Ino)
			if err != nil {
				return err
			}
			c.Path = d.Path + "/" + e.Name
			if d.Path == "." {
				c.Path = e.Name
			}
			count++
			fn(c)
			if c.IsDir() && c.Flags&inodeFlagInline == 0 {
				if err := rec(c); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return rec(dir)
}
