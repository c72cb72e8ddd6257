//go:build linux

package hostile

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
)

// --- ext4 ---

func genSuperblock(v *Variant) {
	g := v.Base.FS
	off := g.Off + sbOff
	switch v.R.IntN(5) {
	case 0:
		v.zero(off, 1024)
	case 1:
		v.flip(off, 0x180)
	case 2:
		v.scribble(off, 0x180)
	default:
		v.hugeField(off, superblockFields, "superblock")
	}
}

func genGroupDesc(v *Variant) {
	g := v.Base.FS
	grp := uint64(0)
	switch v.R.IntN(4) {
	case 1:
		grp = min(1, g.Groups-1)
	case 2:
		grp = g.Groups - 1
	case 3:
		grp = v.R.Uint64N(g.Groups)
	}
	off := g.GroupDescOff(grp)
	fields := groupDescFields
	if g.DescSize >= 64 {
		fields = append(append([]Field{}, fields...), groupDesc64Fields...)
	}
	switch v.R.IntN(5) {
	case 0:
		v.zero(off, g.DescSize)
	case 1:
		blk := pick(v.R, g.GDTBlocks)
		v.zero(blk, g.BS)
	case 2:
		v.flip(off, g.DescSize)
	default:
		v.hugeField(off, fields, fmt.Sprintf("group descriptor %d", grp))
	}
}

// Inode flag bits worth toggling.
var inodeFlagBits = []struct {
	bit  uint32
	name string
}{
	{0x4, "COMPR"}, {0x800, "ENCRYPT"}, {0x1000, "INDEX"}, {0x40000, "HUGE_FILE"},
	{0x80000, "EXTENTS"}, {0x200000, "EA_INODE"}, {0x10000000, "INLINE_DATA"},
}

var fileTypes = []uint16{0x1000, 0x2000, 0x4000, 0x6000, 0x8000, 0xA000, 0xC000, 0x0000, 0xF000}

func genInode(v *Variant) {
	b := v.Base
	in := pick(v.R, b.Inodes)
	g := b.FS
	what := describeInode(in)
	switch v.R.IntN(8) {
	case 0:
		v.zero(in.Off, g.InodeSize)
		v.say("of %s", what)
	case 7:
		// The whole inode table block holding it: its neighbours too.
		blk := g.Off + (in.Off-g.Off)/g.BS*g.BS
		if v.R.IntN(2) == 0 {
			v.zero(blk, g.BS)
		} else {
			v.flip(blk, g.BS)
		}
		v.say("(the inode table block of %s)", what)
	case 1:
		v.flip(in.Off, g.InodeSize)
		v.say("in %s", what)
	case 2:
		f := inodeFlagBits[v.R.IntN(len(inodeFlagBits))]
		flags := uint32(v.getUint(in.Off+0x20, 4, false)) ^ f.bit
		v.put32(in.Off+0x20, flags)
		v.say("toggled flag %s of %s", f.name, what)
	case 3:
		t := pick(v.R, fileTypes)
		mode := uint16(v.getUint(in.Off, 2, false))&0x0FFF | t
		v.putUint(in.Off, 2, uint64(mode), false)
		v.say("file type of %s -> 0%o", what, t)
	case 4:
		// Another inode's record copied over this one: shared blocks.
		src := pick(v.R, b.Inodes)
		v.put(in.Off, v.get(src.Off, int(g.InodeSize)))
		v.say("%s overwritten with the record of %s", what, describeInode(src))
	default:
		fields := inodeFields
		if g.InodeSize <= 128 {
			fields = fields[:len(fields)-2]
		}
		v.hugeField(in.Off, fields, what)
	}
}

func extentNodes(b *Base) []Node {
	var out []Node
	for _, in := range b.Inodes {
		for _, n := range in.Nodes {
			if n.Extent {
				out = append(out, n)
			}
		}
	}
	return out
}

func genExtent(v *Variant) {
	b := v.Base
	nodes := extentNodes(b)
	if len(nodes) == 0 {
		// ext2: indirect blocks take the place of extent nodes.
		genIndirect(v)
		return
	}
	// Favour external nodes (deep trees) when there are any.
	var ext []Node
	for _, n := range nodes {
		if n.Len > 60 {
			ext = append(ext, n)
		}
	}
	n := pick(v.R, nodes)
	if len(ext) > 0 && v.R.IntN(2) == 0 {
		n = pick(v.R, ext)
	}
	what := fmt.Sprintf("extent node of inode %d (depth %d, at %d)", n.Ino, n.Depth, n.Off)
	entries := int(v.getUint(n.Off+2, 2, false))
	entry := func() int64 { return n.Off + 12 + 12*int64(v.R.IntN(max(entries, 1))) }
	switch v.R.IntN(8) {
	case 0:
		v.zero(n.Off, n.Len)
		v.say("of %s", what)
	case 1:
		v.flip(n.Off, min(n.Len, 12+12*int64(max(entries, 1))))
		v.say("in %s", what)
	case 2, 3:
		v.hugeField(n.Off, extentHeaderFields, what)
	case 4, 5:
		if n.Depth == 0 {
			v.hugeField(entry(), extentLeafFields, what+" leaf entry")
		} else {
			v.hugeField(entry(), extentIndexFields, what+" index entry")
		}
	case 6:
		// Point the first entry at a metadata block: the superblock, the
		// inode table or the node itself (a cycle for index nodes).
		targets := map[string]uint64{
			"block 0":            0,
			"the inode table":    b.FS.InodeTables[0],
			"the node itself":    uint64((n.Off - b.FS.Off) / b.FS.BS),
			"the last fs block":  b.FS.BlocksCount - 1,
			"past the fs end":    b.FS.BlocksCount + 10,
			"the group desc blk": uint64((b.FS.GDTBlocks[0] - b.FS.Off) / b.FS.BS),
		}
		keys := sortedKeys(targets)
		k := pick(v.R, keys)
		e := n.Off + 12
		if n.Depth == 0 {
			v.putUint(e+8, 4, targets[k]&0xFFFFFFFF, false)
			v.putUint(e+6, 2, targets[k]>>32, false)
		} else {
			v.putUint(e+4, 4, targets[k]&0xFFFFFFFF, false)
			v.putUint(e+8, 2, targets[k]>>32, false)
		}
		v.say("first entry of %s points at %s", what, k)
	default:
		// Duplicate or unordered entries.
		if entries >= 2 {
			first := v.get(n.Off+12, 12)
			v.put(n.Off+24, first)
			v.say("entry 1 of %s is a copy of entry 0", what)
		} else {
			v.setField(n.Off, extentHeaderFields[1], 2+uint64(v.R.IntN(3)), what)
		}
	}
}

func genIndirect(v *Variant) {
	var nodes []Node
	var holders []*InodeInfo
	for _, in := range v.Base.Inodes {
		nodes = append(nodes, in.Nodes...)
		if len(in.Runs) > 0 && in.Flags&inodeFlagExtents == 0 {
			holders = append(holders, in)
		}
	}
	if len(nodes) > 0 && v.R.IntN(2) == 0 {
		n := pick(v.R, nodes)
		p := n.Off + 4*v.R.Int64N(n.Len/4)
		v.putUint(p, 4, v.hugeValue(4), false)
		v.say("indirect block of inode %d at %d: pointer at %d set", n.Ino, n.Off, p)
		return
	}
	if len(holders) == 0 {
		v.Skip = true
		return
	}
	in := pick(v.R, holders)
	slot := v.R.Int64N(15)
	v.putUint(in.Off+0x28+4*slot, 4, v.hugeValue(4), false)
	v.say("i_block[%d] of %s set", slot, describeInode(in))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func genDir(v *Variant) {
	b := v.Base
	g := b.FS
	dirs := b.inodesWith(func(in *InodeInfo) bool { return in.IsDir() && len(in.Runs) > 0 })
	if len(dirs) == 0 {
		v.Skip = true
		return
	}
	d := pick(v.R, dirs)
	blocks := g.DataBlocks(d)
	bi := v.R.IntN(len(blocks))
	blk := blocks[bi]
	what := fmt.Sprintf("directory block %d of %s", bi, describeInode(d))
	// Entries of this block.
	var ents []int64
	raw := v.get(blk, int(g.BS))
	for p := 0; p+8 <= len(raw); {
		rl := int(binary.LittleEndian.Uint16(raw[p+4:]))
		if g.BS >= 65536 && (rl == 65535 || rl == 0) {
			rl = int(g.BS)
		}
		if rl < 8 {
			break
		}
		ents = append(ents, blk+int64(p))
		p += rl
	}
	if len(ents) == 0 {
		ents = []int64{blk}
	}
	e := pick(v.R, ents)
	switch v.R.IntN(9) {
	case 0:
		v.zero(blk, g.BS)
		v.say("(%s)", what)
	case 1:
		v.flip(blk, g.BS)
		v.say("in %s", what)
	case 2, 3, 4:
		v.hugeField(e, dirEntryFields, what+" entry")
	case 5:
		// A directory loop: an entry names an ancestor (or itself).
		targets := []uint32{2, d.Ino}
		for _, in := range b.Inodes {
			if in.IsDir() && strings.HasPrefix(d.Path, in.Path) {
				targets = append(targets, in.Ino)
			}
		}
		t := pick(v.R, targets)
		v.putUint(e, 4, uint64(t), false)
		v.say("entry at %d of %s renamed to inode %d (directory loop)", e, what, t)
	case 6:
		if bi == 0 && d.Flags&inodeFlagIndex != 0 {
			v.hugeField(blk, dxRootFields, what+" dx_root")
			return
		}
		// rec_len that makes the entry overlap its neighbour or the next block.
		rl := pick(v.R, []uint64{0, 1, 4, 7, 9, 12, uint64(g.BS), uint64(g.BS) + 4, 0xFFFC})
		v.setField(e, dirEntryFields[1], rl, what+" entry")
	case 7:
		// The entry names an inode of another type: a file as directory.
		others := b.inodesWith(func(in *InodeInfo) bool { return !in.IsDir() })
		if len(others) == 0 {
			v.Skip = true
			return
		}
		o := pick(v.R, others)
		v.putUint(e, 4, uint64(o.Ino), false)
		v.say("entry at %d of %s now names %s", e, what, describeInode(o))
	default:
		v.scribble(blk, g.BS)
		v.say("(%s)", what)
	}
}

// hostileNames replace a directory entry's name (cut or padded to its
// length): path traversal, separators, NUL, terminal escapes, line
// breaks, invalid UTF-8, a bidi override, the dot entries.
var hostileNames = []string{"/..", "../", "a/b", "/", "..", ".", "a\x00b", "\x1b[2J\x1b[H", "a\nctrlift: fake", "\r", "\xff\xfe", "\u202e", "-rf"}

func genNames(v *Variant) {
	b := v.Base
	g := b.FS
	dirs := b.inodesWith(func(in *InodeInfo) bool { return in.IsDir() && len(in.Runs) > 0 })
	if len(dirs) == 0 {
		v.Skip = true
		return
	}
	d := pick(v.R, dirs)
	ents, err := g.readDir(d)
	if err != nil || len(ents) == 0 {
		v.Skip = true
		return
	}
	e := pick(v.R, ents)
	name := pick(v.R, hostileNames)
	buf := renameAt(v, e, name, v.R.IntN(2) == 0)
	v.say("entry %q of %s renamed %q", e.Name, describeInode(d), buf)
}

// renameAt overwrites the name of entry e with name, repeated or cut to
// the entry's name length, or fitted exactly when exact and the record
// has room.
func renameAt(v *Variant, e dirEntry, name string, exact bool) []byte {
	nl := int(v.get(e.Off+6, 1)[0])
	if exact || len(name) > nl {
		if rl := int(le.Uint16(v.get(e.Off+4, 2))); 8+len(name) <= rl {
			nl = len(name)
			v.put(e.Off+6, []byte{byte(nl)})
		}
	}
	buf := []byte(strings.Repeat(name, nl/max(len(name), 1)+1))[:nl]
	v.put(e.Off+8, buf)
	return buf
}

// RenameEntry gives the first entry of directory dir whose record has room
// for it the name name, and returns the entry's file offset.
func RenameEntry(v *Variant, dir *InodeInfo, name string) (int64, bool) {
	ents, err := v.Base.FS.readDir(dir)
	if err != nil {
		return 0, false
	}
	for _, e := range ents {
		if rl := int(le.Uint16(v.get(e.Off+4, 2))); 8+len(name) <= rl {
			renameAt(v, e, name, true)
			return e.Off, true
		}
	}
	return 0, false
}

func genXattr(v *Variant) {
	b := v.Base
	with := b.inodesWith(func(in *InodeInfo) bool { return in.EABlk != 0 || in.EAArea[1] != 0 })
	if len(with) == 0 {
		// No xattrs: give an inode a bogus xattr block or area.
		in := pick(v.R, b.Inodes)
		blk := pick(v.R, append(b.FS.DataBlocks(in), b.FS.GDTBlocks[0]))
		v.putUint(in.Off+0x68, 4, uint64((blk-b.FS.Off)/b.FS.BS), false)
		v.say("i_file_acl of %s points at a non-xattr block", describeInode(in))
		return
	}
	in := pick(v.R, with)
	what := describeInode(in)
	var start, end int64
	ents := int64(0)
	if in.EABlk != 0 && (in.EAArea[1] == 0 || v.R.IntN(2) == 0) {
		start, end, ents = in.EABlk, in.EABlk+b.FS.BS, in.EABlk+32
		what = "xattr block of " + what
		if v.R.IntN(4) == 0 {
			v.hugeField(start, xattrBlockFields, what)
			return
		}
	} else {
		start, end, ents = in.EAArea[0], in.EAArea[1], in.EAArea[0]+4
		what = "in-inode xattrs of " + what
	}
	// Entry offsets.
	var list []int64
	for p := ents; p+16 <= end && len(list) < 64; {
		h := v.get(p, 16)
		if binary.LittleEndian.Uint32(h) == 0 {
			break
		}
		list = append(list, p)
		p += (16 + int64(h[0]) + 3) &^ 3
	}
	switch v.R.IntN(6) {
	case 0:
		v.flip(start, end-start)
		v.say("in %s", what)
	case 1:
		v.zero(start, min(end-start, 64))
		v.say("(%s)", what)
	case 2:
		if len(list) == 0 {
			v.flip(start, end-start)
			return
		}
		// Value in an EA inode: a random inode, the owner, or a huge number.
		e := pick(v.R, list)
		t := pick(v.R, []uint64{uint64(in.Ino), 2, 8, 11, uint64(b.FS.InodesCount), uint64(b.FS.InodesCount) + 1, 0xFFFFFFFF})
		v.putUint(e+4, 4, t, false)
		v.say("%s entry at %d: e_value_inum -> %d", what, e, t)
	default:
		if len(list) == 0 {
			v.scribble(start, end-start)
			return
		}
		v.hugeField(pick(v.R, list), xattrEntryFields, what+" entry")
	}
}

// genAmplify forges an extent tree in free blocks that maps one block of
// a directory (or file) again and again, so a few forged blocks make a
// directory of hundreds of MiB whose entries all repeat: a reader that
// collects every entry of a directory runs out of memory.
func genAmplify(v *Variant) {
	b := v.Base
	g := b.FS
	cands := b.inodesWith(func(in *InodeInfo) bool {
		return len(in.Runs) > 0 && in.Flags&inodeFlagExtents != 0 && (in.IsDir() || in.IsReg())
	})
	if len(cands) == 0 || g.BS < 1024 {
		v.Skip = true
		return
	}
	dirs := b.inodesWith(func(in *InodeInfo) bool { return in.IsDir() && len(in.Runs) > 0 && in.Flags&inodeFlagExtents != 0 })
	// Directories whose first block names many entries amplify most.
	var full []*InodeInfo
	for _, d := range dirs {
		if ents, err := g.readDir(&InodeInfo{Runs: d.Runs[:1]}); err == nil && len(ents) >= 16 {
			full = append(full, d)
		}
	}
	in := pick(v.R, cands)
	switch r := v.R.IntN(4); {
	case r < 2 && len(full) > 0:
		in = pick(v.R, full)
	case r < 3 && len(dirs) > 0:
		in = pick(v.R, dirs)
	}
	per := int((g.BS - 12) / 12)
	room := int((b.Free[1]-b.Free[0])/g.BS) - 1
	Amplify(v, in, min(pick(v.R, []int{1, 8, 64, per}), room, per))
}

// Amplify makes inode in map its first data block again and again through
// a forged depth-2 extent tree of leaves leaf blocks, written into the
// base's free blocks (Base.Free).
func Amplify(v *Variant, in *InodeInfo, leaves int) {
	b := v.Base
	g := b.FS
	per := int((g.BS - 12) / 12) // entries per extent block
	target := in.Runs[0].P
	free := uint64((b.Free[0] - g.Off) / g.BS)
	idx := free
	blk := make([]byte, g.BS)
	hdr := func(entries, depth int) {
		clear(blk)
		le.PutUint16(blk[0:], 0xF30A)
		le.PutUint16(blk[2:], uint16(entries))
		le.PutUint16(blk[4:], uint16(per))
		le.PutUint16(blk[6:], uint16(depth))
	}
	// Index block: one entry per leaf.
	hdr(leaves, 1)
	for j := 0; j < leaves; j++ {
		e := blk[12+12*j:]
		le.PutUint32(e[0:], uint32(j*per))
		le.PutUint32(e[4:], uint32(free+1+uint64(j)))
	}
	v.put(g.BlockOff(idx), blk)
	// Leaves: every extent is the same single block.
	for j := 0; j < leaves; j++ {
		hdr(per, 0)
		for i := 0; i < per; i++ {
			e := blk[12+12*i:]
			le.PutUint32(e[0:], uint32(j*per+i))
			le.PutUint16(e[4:], 1)
			le.PutUint16(e[6:], uint16(target>>32))
			le.PutUint32(e[8:], uint32(target))
		}
		v.put(g.BlockOff(free+1+uint64(j)), blk)
	}
	// The root in the inode: depth 2, one index entry.
	root := make([]byte, 60)
	le.PutUint16(root[0:], 0xF30A)
	le.PutUint16(root[2:], 1)
	le.PutUint16(root[4:], 4)
	le.PutUint16(root[6:], 2)
	le.PutUint32(root[12+4:], uint32(idx))
	le.PutUint16(root[12+8:], uint16(idx>>32))
	v.put(in.Off+0x28, root)
	size := uint64(leaves*per) * uint64(g.BS)
	setSize(v, in, size)
	v.say("%s now maps its first block %d times through %d forged extent leaves (%d MiB)", describeInode(in), leaves*per, leaves, size>>20)
}

// AmplifyIndirect makes block-mapped inode in map its first data block
// per^3 times through a forged triple-indirect chain of three blocks, each
// pointing per times at the next, written into the base's free blocks.
func AmplifyIndirect(v *Variant, in *InodeInfo) {
	b := v.Base
	g := b.FS
	per := int(g.BS / 4)
	free := uint64((b.Free[0] - g.Off) / g.BS)
	blk := make([]byte, g.BS)
	for level, next := range []uint64{free + 1, free + 2, in.Runs[0].P} {
		for i := 0; i < per; i++ {
			le.PutUint32(blk[4*i:], uint32(next))
		}
		v.put(g.BlockOff(free+uint64(level)), blk)
	}
	v.put(in.Off+0x28+12*4, make([]byte, 8)) // no single or double indirect block
	v.putUint(in.Off+0x28+14*4, 4, free, false)
	blocks := uint64(12 + per + per*per + per*per*per)
	setSize(v, in, blocks*uint64(g.BS))
	v.say("%s now maps its first block %d times through a forged triple-indirect chain", describeInode(in), per*per*per)
}

func setSize(v *Variant, in *InodeInfo, size uint64) {
	v.putUint(in.Off+0x04, 4, size&0xFFFFFFFF, false)
	v.putUint(in.Off+0x6C, 4, size>>32, false)
}

// SetInodeSize forges the size (i_size_lo and i_size_high) of inode in.
func SetInodeSize(v *Variant, in *InodeInfo, size uint64) {
	setSize(v, in, size)
	v.say("%s i_size set to %d", describeInode(in), size)
}

func genJournal(v *Variant) {
	b := v.Base
	g := b.FS
	j := b.Journal
	jsb := g.FileOff(j, 0)
	if jsb < 0 {
		v.Skip = true
		return
	}
	// Make the reader replay the journal, as for an image of a running node.
	if v.R.IntN(4) != 0 {
		inc := uint32(v.getUint(g.Off+sbOff+0x60, 4, false)) | incompatRecover
		v.put32(g.Off+sbOff+0x60, inc)
		v.say("needs_recovery set")
		if binary.BigEndian.Uint32(v.get(jsb+0x1C, 4)) == 0 {
			v.putUint(jsb+0x1C, 4, 1, true)
			v.say("journal s_start = 1")
		}
	}
	blocks := g.DataBlocks(j)
	switch v.R.IntN(5) {
	case 0:
		v.hugeField(jsb, journalSBFields, "journal superblock")
	case 1:
		v.flip(jsb, 0x100)
		v.say("in the journal superblock")
	case 2:
		// A block of the log: descriptor, commit or revoke blocks live at
		// the start of the log.
		bl := blocks[1+v.R.IntN(min(len(blocks)-1, 64))]
		v.flip(bl, g.BS)
		v.say("in journal block at %d", bl)
	case 3:
		// A forged descriptor block at the start of the log tagging the
		// superblock, GDT or an inode table block.
		bl := blocks[1]
		d := make([]byte, 12+16)
		binary.BigEndian.PutUint32(d[0:], 0xC03B3998)
		binary.BigEndian.PutUint32(d[4:], 1)
		binary.BigEndian.PutUint32(d[8:], binary.BigEndian.Uint32(v.get(jsb+0x18, 4)))
		target := pick(v.R, []uint64{0, uint64((g.GDTBlocks[0] - g.Off) / g.BS), g.InodeTables[0], g.BlocksCount + 5, 0xFFFFFFFF})
		binary.BigEndian.PutUint32(d[12:], uint32(target))
		binary.BigEndian.PutUint32(d[16:], 0x8|0x2) // last tag, same UUID
		v.put(bl, d)
		v.putUint(jsb+0x1C, 4, 1, true)
		v.say("forged journal descriptor at %d tagging block %d", bl, target)
	default:
		v.scribble(jsb, 0x400)
	}
}
