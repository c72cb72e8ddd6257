//go:build linux

package hostile

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
)

// Class is one kind of damage.
type Class struct {
	Name    string
	Weight  int              // share of the sweep
	Applies func(*Base) bool // nil: every base
	Gen     func(v *Variant) // aims at a structure of v.Base; sets v.Skip when there is none
}

func hasFS(b *Base) bool         { return b.FS != nil }
func hasContainerd(b *Base) bool { return b.MetaDB != nil }

// Classes are the mutation classes of the sweep, in report order.
var Classes = []Class{
	{Name: "truncate-random", Weight: 6, Gen: genTruncRandom},
	{Name: "truncate-boundary", Weight: 6, Gen: genTruncBoundary},
	{Name: "ext4-superblock", Weight: 6, Applies: hasFS, Gen: genSuperblock},
	{Name: "ext4-group-desc", Weight: 5, Applies: hasFS, Gen: genGroupDesc},
	{Name: "ext4-inode", Weight: 8, Applies: hasFS, Gen: genInode},
	{Name: "ext4-extent", Weight: 7, Applies: hasFS, Gen: genExtent},
	{Name: "ext4-dir", Weight: 8, Applies: hasFS, Gen: genDir},
	{Name: "ext4-names", Weight: 4, Applies: hasFS, Gen: genNames},
	{Name: "ext4-xattr", Weight: 5, Applies: hasFS, Gen: genXattr},
	{Name: "ext4-amplify", Weight: 3, Applies: func(b *Base) bool { return b.FS != nil && b.Free[1]-b.Free[0] >= 8*b.FS.BS }, Gen: genAmplify},
	{Name: "ext4-journal", Weight: 3, Applies: func(b *Base) bool { return b.Journal != nil }, Gen: genJournal},
	{Name: "gpt-header", Weight: 5, Applies: func(b *Base) bool { return b.GPT != nil }, Gen: genGPTHeader},
	{Name: "gpt-entries", Weight: 5, Applies: func(b *Base) bool { return b.GPT != nil }, Gen: genGPTEntries},
	{Name: "mbr", Weight: 2, Applies: func(b *Base) bool { return b.MBR != nil }, Gen: genMBR},
	{Name: "file-size", Weight: 5, Applies: hasContainerd, Gen: genFileSize},
	{Name: "bbolt-flip", Weight: 6, Applies: hasContainerd, Gen: genBoltFlip},
	{Name: "bbolt-truncate", Weight: 4, Applies: hasContainerd, Gen: genBoltTruncate},
	{Name: "bbolt-cycle", Weight: 4, Applies: hasContainerd, Gen: genBoltCycle},
	{Name: "bbolt-meta", Weight: 4, Applies: hasContainerd, Gen: genBoltMeta},
	{Name: "snapshot-chain", Weight: 5, Applies: func(b *Base) bool { return len(b.Snapshots) > 0 }, Gen: genSnapshotChain},
	{Name: "containerd-values", Weight: 5, Applies: hasContainerd, Gen: genContainerdValues},
	{Name: "layer-symlink", Weight: 4, Applies: func(b *Base) bool { return len(b.Layers) > 0 }, Gen: genLayerSymlink},
	{Name: "huge-fields", Weight: 8, Gen: genHugeFields},
}

// ClassByName returns the class called name.
func ClassByName(name string) (Class, bool) {
	for _, c := range Classes {
		if c.Name == name {
			return c, true
		}
	}
	return Class{}, false
}

// --- truncation ---

func genTruncRandom(v *Variant) {
	b := v.Base
	switch {
	case v.R.IntN(3) == 0 || b.FS == nil:
		v.Truncate = v.R.Int64N(b.Size)
		v.say("cut anywhere")
	case v.R.IntN(2) == 0:
		v.Truncate = b.FS.Off + v.R.Int64N(b.FSSize)
		v.say("cut inside the filesystem")
	default:
		in := pick(v.R, b.Inodes)
		offs := append(b.FS.DataBlocks(in), in.Off)
		v.Truncate = pick(v.R, offs) + v.R.Int64N(b.FS.BS)
		v.say("cut inside the data of %s", describeInode(in))
	}
}

func genTruncBoundary(v *Variant) {
	b := v.Base
	cands := append([]int64{}, b.Boundaries...)
	what := "structure boundary"
	if b.FS != nil && v.R.IntN(2) == 0 && len(b.Inodes) > 0 {
		in := pick(v.R, b.Inodes)
		cands = append(b.FS.DataBlocks(in), in.Off, in.Off+b.FS.InodeSize)
		for _, n := range in.Nodes {
			cands = append(cands, n.Off)
		}
		what = "a block of " + describeInode(in)
	}
	if b.GPT != nil && v.R.IntN(3) == 0 {
		g := b.GPT
		cands = []int64{g.Primary.HeaderOff, g.Primary.EntriesOff, g.Primary.EntriesOff + int64(g.Primary.NumEntries*g.Primary.EntrySize)}
		if g.HaveBackup {
			cands = append(cands, g.Backup.EntriesOff, g.Backup.HeaderOff)
		}
		what = "a GPT structure"
	}
	deltas := []int64{0, 0, -1, 1, -512, 512, -4096, 4096, 1024}
	t := pick(v.R, cands) + pick(v.R, deltas)
	t = max(0, min(t, b.Size-1))
	v.Truncate = t
	v.say("cut at %s", what)
}

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

// --- partition tables ---

func gptCopies(v *Variant) []GPTCopy {
	g := v.Base.GPT
	switch r := v.R.IntN(6); {
	case r < 3 || !g.HaveBackup:
		v.say("primary GPT")
		return []GPTCopy{g.Primary}
	case r < 5:
		v.say("both GPTs")
		return []GPTCopy{g.Primary, g.Backup}
	}
	v.say("backup GPT")
	return []GPTCopy{g.Backup}
}

func genGPTHeader(v *Variant) {
	ss := int64(v.Base.GPT.SectorSize)
	copies := gptCopies(v)
	fix := v.R.IntN(3) != 0
	op := v.R.IntN(6)
	f := pick(v.R, gptHeaderFields)
	val := v.hugeValue(f.Width)
	for _, c := range copies {
		switch op {
		case 0:
			v.zero(c.HeaderOff, ss)
		case 1:
			v.flip(c.HeaderOff, 92)
		default:
			v.setField(c.HeaderOff, f, val, "GPT header")
		}
	}
	if fix {
		for _, c := range copies {
			gptFixCRCs(v, c)
		}
		v.say("CRCs recomputed")
	}
}

func genGPTEntries(v *Variant) {
	g := v.Base.GPT
	copies := gptCopies(v)
	c0 := copies[0]
	idx := 0
	if len(c0.Used) > 0 {
		idx = pick(v.R, c0.Used)
	}
	if v.R.IntN(2) == 0 {
		idx = 0 // STATE
	}
	op := v.R.IntN(8)
	f := pick(v.R, gptEntryFields)
	val := v.hugeValue(f.Width)
	last := uint64(v.Base.Size/int64(g.SectorSize)) - 1
	lbaVals := []uint64{0, 1, 2, last, last + 1, last * 2, 1 << 40, 1<<63 - 1}
	lba := pick(v.R, lbaVals)
	for _, c := range copies {
		e := c.EntriesOff + int64(idx*c.EntrySize)
		switch op {
		case 0:
			v.zero(e, int64(c.EntrySize))
		case 1:
			v.flip(e, int64(c.EntrySize))
		case 2:
			v.zero(c.EntriesOff, int64(c.NumEntries*c.EntrySize))
		case 3:
			// Shift the partition: its filesystem is no longer where it says.
			d := int64(pick(v.R, []int{-8, -1, 1, 2, 8, 2048}))
			first := int64(v.getUint(e+32, 8, false))
			v.putUint(e+32, 8, uint64(max(first+d, 0)), false)
			v.say("entry %d start shifted by %d sectors", idx+1, d)
		case 4:
			v.setField(e, gptEntryFields[v.R.IntN(2)], lba, fmt.Sprintf("GPT entry %d", idx+1))
		case 5:
			// Overlap: copy another used entry's LBAs.
			if len(c.Used) > 1 {
				o := pick(v.R, c.Used)
				v.put(e+32, v.get(c.EntriesOff+int64(o*c.EntrySize)+32, 16))
				v.say("entry %d takes the LBAs of entry %d", idx+1, o+1)
			} else {
				v.setField(e, f, val, "GPT entry")
			}
		case 6:
			name := make([]byte, 72)
			for i := range name {
				name[i] = byte(v.R.UintN(256))
			}
			v.put(e+56, name)
			v.say("entry %d name is random UTF-16", idx+1)
		default:
			v.setField(e, f, val, fmt.Sprintf("GPT entry %d", idx+1))
		}
	}
	if v.R.IntN(4) != 0 {
		for _, c := range copies {
			gptFixCRCs(v, c)
		}
		v.say("CRCs recomputed")
	}
}

func genMBR(v *Variant) {
	m := v.Base.MBR
	switch r := v.R.IntN(6); {
	case r == 0 && len(m.EBRs) > 0:
		// The EBR chain loops: an EBR's next link points at itself or the first.
		i := v.R.IntN(len(m.EBRs))
		ext := m.EBRs[0] / 512
		to := pick(v.R, []int64{m.EBRs[i]/512 - ext, 0})
		v.putUint(m.EBRs[i]+446+16+8, 4, uint64(to), false)
		v.say("EBR %d next link -> relative LBA %d", i, to)
	case r == 1 && len(m.EBRs) > 0:
		e := pick(v.R, m.EBRs) + 446 + 16*int64(v.R.IntN(2))
		v.hugeField(e, mbrEntryFields, "EBR entry")
	case r == 2:
		v.flip(446, 66)
		v.say("in the MBR table")
	case r == 3:
		v.put(510, []byte{0, 0})
		v.say("MBR signature cleared")
	default:
		v.hugeField(pick(v.R, m.Entries), mbrEntryFields, "MBR entry")
	}
}

// genFileSize gives a file that ctrlift reads whole (a database, a CRI
// status, a content blob) a huge or slightly wrong size: its data then
// ends early or continues as a hole.
func genFileSize(v *Variant) {
	files := v.Base.inodesWith(func(in *InodeInfo) bool {
		switch in.Role {
		case "metadb", "snapdb", "cri-file", "blob":
			return true
		}
		return false
	})
	in := pick(v.R, files)
	if v.R.IntN(3) == 0 {
		in = v.Base.MetaDB.Inode
	}
	sizes := []int64{0, 1, in.Size - 1, in.Size + 1, in.Size*2 + 1, 64 << 20, 256<<20 + 1, 1<<31 - 16, 1 << 31, 1<<32 - 1, 1 << 40, 1 << 62, 1<<63 - 1}
	n := uint64(pick(v.R, sizes))
	v.putUint(in.Off+0x04, 4, n&0xFFFFFFFF, false)
	v.putUint(in.Off+0x6C, 4, n>>32, false)
	v.say("i_size of %s: %d -> %d", describeInode(in), in.Size, n)
}

// --- bbolt ---

func pickDB(v *Variant) *BoltFile {
	b := v.Base
	if len(b.SnapDBs) == 0 || v.R.IntN(2) == 0 {
		return b.MetaDB
	}
	return pick(v.R, b.SnapDBs)
}

// SetMetaValue overwrites the value of key in meta.db's bucket path with
// val, which must have the value's length (so the page stays valid).
func SetMetaValue(v *Variant, val []byte, key string, path ...string) error {
	db := v.Base.MetaDB
	if db == nil {
		return fmt.Errorf("%s: no meta.db", v.Base.Name)
	}
	kv, ok := db.Map.BucketKV(key, path...)
	if !ok || kv.IsBucket || kv.ValLen != len(val) {
		return fmt.Errorf("%s: no %d-byte value %s in bucket %v", db.Path, len(val), key, path)
	}
	v.filePut(db.Inode, kv.ValOff, val)
	v.say("%s: value of %s/%s set to %x", db.Path, strings.Join(path, "/"), key, val)
	return nil
}

func genBoltFlip(v *Variant) {
	db := pickDB(v)
	m := db.Map
	n := 1 + v.R.IntN(16)
	for i := 0; i < n; i++ {
		var pos int64
		if v.R.IntN(3) == 0 {
			pos = v.R.Int64N(int64(m.Size))
		} else {
			// Inside a reachable page, where flips matter.
			p := pick(v.R, m.Pages)
			pos = p.Off + v.R.Int64N(int64(m.PageSize))
		}
		c := v.fileGet(db.Inode, pos, 1)
		c[0] ^= byte(1 + v.R.IntN(255))
		v.filePut(db.Inode, pos, c)
	}
	v.say("%d bytes changed in %s", n, db.Path)
}

func genBoltTruncate(v *Variant) {
	db := pickDB(v)
	m := db.Map
	in := db.Inode
	ps := int64(m.PageSize)
	pages := int64(m.Size) / ps
	var size int64
	switch v.R.IntN(4) {
	case 0:
		size = ps * v.R.Int64N(pages) // a page boundary
	case 1:
		size = ps*v.R.Int64N(pages) + 1 + v.R.Int64N(ps-1) // mid-page
	case 2:
		size = v.R.Int64N(2 * ps) // not even two meta pages
	default:
		// The tail pages read as zeros (a hole): blocks never written.
		from := ps * (2 + v.R.Int64N(max(pages-2, 1)))
		for p := from; p < int64(m.Size); p += v.Base.FS.BS {
			v.filePut(in, p, make([]byte, min(v.Base.FS.BS, int64(m.Size)-p)))
		}
		v.say("%s zeroed from byte %d", db.Path, from)
		return
	}
	v.putUint(in.Off+0x04, 4, uint64(size), false)
	v.putUint(in.Off+0x6C, 4, 0, false)
	v.say("%s i_size %d -> %d", db.Path, m.Size, size)
}

func genBoltCycle(v *Variant) {
	db := pickDB(v)
	m := db.Map
	var ptrs []BoltPtr
	for _, p := range m.Ptrs {
		if len(p.Ancestors) > 0 {
			ptrs = append(ptrs, p)
		}
	}
	if len(ptrs) == 0 {
		v.Skip = true
		return
	}
	p := pick(v.R, ptrs)
	var to uint64
	var why string
	switch v.R.IntN(5) {
	case 0, 1:
		to, why = pick(v.R, p.Ancestors), "an ancestor (cycle)"
	case 2:
		to, why = p.Ancestors[len(p.Ancestors)-1], "the page holding it (cycle)"
	case 3:
		to, why = pick(v.R, m.Pages).ID, "another reachable page (shared)"
	default:
		to, why = pick(v.R, []uint64{0, 1}), "a meta page"
	}
	v.filePutUint(db.Inode, p.Off, 8, to)
	v.say("%s: %s at file offset %d (-> page %d) now points at page %d, %s", db.Path, p.Kind, p.Off, p.Target, to, why)
}

func genBoltMeta(v *Variant) {
	db := pickDB(v)
	ps := int64(db.Map.PageSize)
	fixSum := func(meta int64) {
		b := v.fileGet(db.Inode, meta, 16+64)
		v.filePutUint(db.Inode, meta+16+56, 8, boltMetaSum(b))
	}
	both := []int64{0, ps}
	one := []int64{int64(db.Map.Meta) * ps}
	switch v.R.IntN(6) {
	case 0:
		for _, m := range both {
			v.filePut(db.Inode, m, make([]byte, ps))
		}
		v.say("%s: both meta pages zeroed", db.Path)
	case 1:
		for _, m := range both {
			p := m + 16 + v.R.Int64N(64)
			c := v.fileGet(db.Inode, p, 1)
			c[0] ^= byte(1 << v.R.IntN(8))
			v.filePut(db.Inode, p, c)
		}
		v.say("%s: a bit flipped in both meta pages (checksums now wrong)", db.Path)
	case 2, 3:
		// The same field of both metas set, checksums recomputed: bbolt
		// trusts them.
		f := pick(v.R, boltMetaFields)
		val := v.hugeValue(f.Width)
		targets := both
		if v.R.IntN(2) == 0 {
			targets = one
		}
		for _, m := range targets {
			v.filePutUint(db.Inode, m+int64(f.Off), f.Width, val)
			fixSum(m)
		}
		v.say("%s: %s = %d in %d meta page(s), checksum recomputed", db.Path, f.Name, val, len(targets))
	case 4:
		// The newest meta's tree broken (its root to an invalid page), the
		// other meta still checksummed: the reader must fall back or fail.
		m := one[0]
		v.filePutUint(db.Inode, m+32, 8, pick(v.R, []uint64{0, 1, uint64(db.Map.Size) / uint64(ps), 1 << 40}))
		fixSum(m)
		o := ps - m
		c := v.fileGet(db.Inode, o+16, 1)
		c[0] ^= 0xFF
		v.filePut(db.Inode, o+16, c)
		v.say("%s: newest meta's root invalid, other meta's magic broken", db.Path)
	default:
		// Both metas claim the same txid with different roots.
		src := v.fileGet(db.Inode, one[0], 16+64)
		v.filePut(db.Inode, ps-one[0], src)
		v.say("%s: meta page copied over the other", db.Path)
	}
}

// --- containerd state ---

// sameLenOther returns a name of the same length as s among names, not s.
func sameLenOther(v *Variant, names []string, s string) (string, bool) {
	var c []string
	for _, n := range names {
		if len(n) == len(s) && n != s {
			c = append(c, n)
		}
	}
	if len(c) == 0 {
		return "", false
	}
	return pick(v.R, c), true
}

func snapDB(b *Base) *BoltFile {
	for _, d := range b.SnapDBs {
		if strings.Contains(d.Path, "overlayfs") {
			return d
		}
	}
	return nil
}

func genSnapshotChain(v *Variant) {
	b := v.Base
	db := snapDB(b)
	if db == nil {
		v.Skip = true
		return
	}
	var withParent []Snapshot
	for _, s := range b.Snapshots {
		if s.Parent.ValLen > 0 {
			withParent = append(withParent, s)
		}
	}
	if len(withParent) == 0 {
		v.Skip = true
		return
	}
	s := pick(v.R, withParent)
	parent := string(v.fileGet(db.Inode, s.Parent.ValOff, s.Parent.ValLen))
	var names []string
	for _, o := range b.Snapshots {
		names = append(names, o.Name)
	}
	switch v.R.IntN(6) {
	case 0:
		if len(s.Name) == len(parent) {
			v.filePut(db.Inode, s.Parent.ValOff, []byte(s.Name))
			v.say("snapshot %s is its own parent (loop)", s.Name)
			return
		}
		fallthrough
	case 1:
		// The parent's parent is the child: a two-step loop.
		for _, p := range b.Snapshots {
			if p.Name == parent && p.Parent.ValLen == len(s.Name) {
				v.filePut(db.Inode, p.Parent.ValOff, []byte(s.Name))
				v.say("snapshot %s and its parent %s are each other's parent (loop)", s.Name, parent)
				return
			}
		}
		fallthrough
	case 2:
		// Point at a snapshot higher up (a descendant) to make a longer loop.
		if o, ok := sameLenOther(v, names, parent); ok {
			v.filePut(db.Inode, s.Parent.ValOff, []byte(o))
			v.say("snapshot %s's parent %s -> %s", s.Name, parent, o)
			return
		}
		fallthrough
	case 3:
		// A parent name that names no snapshot.
		q := []byte(parent)
		q[len(q)-1] ^= 0x01
		v.filePut(db.Inode, s.Parent.ValOff, q)
		v.say("snapshot %s's parent %q -> %q (missing)", s.Name, parent, q)
	case 4:
		// The snapshot id: a directory that does not exist, or another
		// snapshot's directory.
		if s.ID.ValLen == 0 {
			v.Skip = true
			return
		}
		id := make([]byte, s.ID.ValLen)
		for i := range id {
			id[i] = 0xFF
		}
		id[len(id)-1] = byte(v.R.IntN(0x80))
		if o := pick(v.R, b.Snapshots); v.R.IntN(2) == 0 && o.ID.ValLen == s.ID.ValLen {
			id = v.fileGet(db.Inode, o.ID.ValOff, o.ID.ValLen)
			v.say("snapshot %s takes the id of %s", s.Name, o.Name)
		} else {
			v.say("snapshot %s gets id bytes %x", s.Name, id)
		}
		v.filePut(db.Inode, s.ID.ValOff, id)
	default:
		if s.Kind.ValLen > 0 {
			k := byte(pick(v.R, []int{0, 1, 2, 3, 4, 0x7F, 0xFF}))
			v.filePut(db.Inode, s.Kind.ValOff, []byte{k})
			v.say("snapshot %s kind -> %d", s.Name, k)
		} else {
			v.Skip = true
		}
	}
}

// hostileStrings are same-length replacements for names read from the
// evidence: path traversal, separators, control bytes.
var hostileStrings = []string{"../../../../../../../../../../../../etc/passwd", "/", "..", "a/../../b", "\x00\n\r\t", "%s%n%x", "\xff\xfe"}

func genContainerdValues(v *Variant) {
	b := v.Base
	if len(b.CRIFiles) > 0 && v.R.IntN(4) == 0 {
		f := pick(v.R, b.CRIFiles)
		if v.R.IntN(2) == 0 {
			v.flip(b.FS.FileOff(f, 0), min(f.Size, b.FS.BS))
			v.say("in CRI file %s", f.Path)
		} else {
			v.putUint(f.Off+0x04, 4, uint64(v.R.Int64N(f.Size)), false)
			v.say("CRI file %s cut short", f.Path)
		}
		return
	}
	db := pickDB(v)
	var vals []BoltKV
	for _, kv := range db.Map.KVs {
		if !kv.IsBucket && kv.ValLen > 0 {
			vals = append(vals, kv)
		}
	}
	if len(vals) == 0 {
		v.Skip = true
		return
	}
	kv := pick(v.R, vals)
	where := strings.Join(append(append([]string{}, kv.Bucket...), kv.Key), "/")
	switch v.R.IntN(4) {
	case 0:
		v.filePut(db.Inode, kv.ValOff, make([]byte, kv.ValLen))
		v.say("%s: value of %s zeroed", db.Path, where)
	case 1:
		s := pick(v.R, hostileStrings)
		buf := []byte(strings.Repeat(s, kv.ValLen/len(s)+1))[:kv.ValLen]
		v.filePut(db.Inode, kv.ValOff, buf)
		v.say("%s: value of %s -> %q", db.Path, where, buf)
	default:
		n := 1 + v.R.IntN(4)
		for i := 0; i < n; i++ {
			p := kv.ValOff + v.R.Int64N(int64(kv.ValLen))
			c := v.fileGet(db.Inode, p, 1)
			c[0] ^= byte(1 + v.R.IntN(255))
			v.filePut(db.Inode, p, c)
		}
		v.say("%s: %d bytes of the value of %s changed", db.Path, n, where)
	}
}

// symlinkTargets replace a layer directory: the root, the analyst's /etc,
// an escape, the directory itself, another layer.
var symlinkTargets = []string{"/", "/etc", "../../../../../../../../../../etc", "..", ".", "../1/fs", "/proc/self/root", "/var/lib/containerd", "fs"}

func genLayerSymlink(v *Variant) {
	b := v.Base
	cands := b.inodesWith(func(in *InodeInfo) bool {
		return in.Role == "layer-dir" || in.Role == "layer-parent" || (in.Role == "path" && in.Path != ".")
	})
	in := pick(v.R, b.Layers)
	if v.R.IntN(3) == 0 {
		in = pick(v.R, cands)
	}
	if v.R.IntN(4) == 0 {
		// A slow symlink: the directory's own blocks become the target.
		mode := uint16(v.getUint(in.Off, 2, false))&0x0FFF | 0xA000
		v.putUint(in.Off, 2, uint64(mode), false)
		v.say("%s turned into a symlink whose target is its directory block", describeInode(in))
		return
	}
	t := pick(v.R, symlinkTargets)
	v.putUint(in.Off, 2, 0xA1FF, false)
	flags := uint32(v.getUint(in.Off+0x20, 4, false)) &^ (inodeFlagExtents | inodeFlagInline | inodeFlagIndex)
	v.put32(in.Off+0x20, flags)
	ib := make([]byte, 60)
	copy(ib, t)
	v.put(in.Off+0x28, ib)
	v.putUint(in.Off+0x04, 4, uint64(len(t)), false)
	v.putUint(in.Off+0x1C, 4, 0, false) // i_blocks: a fast symlink
	v.putUint(in.Off+0x68, 4, 0, false) // no xattr block
	v.say("%s replaced by a symlink to %q", describeInode(in), t)
}

// --- huge values in length and count fields of every structure ---

func genHugeFields(v *Variant) {
	b := v.Base
	type target struct {
		name string
		fn   func()
	}
	var ts []target
	if g := b.FS; g != nil {
		ts = append(ts,
			target{"superblock", func() { v.hugeField(g.Off+sbOff, superblockFields, "superblock") }},
			target{"group descriptor", func() {
				f := groupDescFields
				if g.DescSize >= 64 {
					f = append(append([]Field{}, f...), groupDesc64Fields...)
				}
				v.hugeField(g.GroupDescOff(v.R.Uint64N(g.Groups)), f, "group descriptor")
			}},
			target{"inode", func() {
				in := pick(v.R, b.Inodes)
				v.hugeField(in.Off, inodeFields, describeInode(in))
			}},
		)
		if nodes := extentNodes(b); len(nodes) > 0 {
			ts = append(ts, target{"extent", func() {
				n := pick(v.R, nodes)
				if v.R.IntN(2) == 0 {
					v.hugeField(n.Off, extentHeaderFields, fmt.Sprintf("extent header of inode %d", n.Ino))
				} else if n.Depth == 0 {
					v.hugeField(n.Off+12, extentLeafFields, fmt.Sprintf("extent of inode %d", n.Ino))
				} else {
					v.hugeField(n.Off+12, extentIndexFields, fmt.Sprintf("extent index of inode %d", n.Ino))
				}
			}})
		}
		if dirs := b.inodesWith(func(in *InodeInfo) bool { return in.IsDir() && len(in.Runs) > 0 }); len(dirs) > 0 {
			ts = append(ts, target{"dirent", func() {
				d := pick(v.R, dirs)
				blk := pick(v.R, g.DataBlocks(d))
				// The first entry (".") or the second ("..", at 12).
				v.hugeField(blk+pick(v.R, []int64{0, 12}), dirEntryFields, "directory entry of "+describeInode(d))
			}})
		}
		if xs := b.inodesWith(func(in *InodeInfo) bool { return in.EABlk != 0 || in.EAArea[1] != 0 }); len(xs) > 0 {
			ts = append(ts, target{"xattr", func() {
				in := pick(v.R, xs)
				if in.EABlk != 0 {
					v.hugeField(in.EABlk+32, xattrEntryFields, "xattr block entry of "+describeInode(in))
				} else {
					v.hugeField(in.EAArea[0]+4, xattrEntryFields, "in-inode xattr entry of "+describeInode(in))
				}
			}})
		}
		if b.Journal != nil {
			ts = append(ts, target{"journal", func() {
				inc := uint32(v.getUint(g.Off+sbOff+0x60, 4, false)) | incompatRecover
				v.put32(g.Off+sbOff+0x60, inc)
				v.hugeField(g.FileOff(b.Journal, 0), journalSBFields, "journal superblock (needs_recovery set)")
			}})
		}
	}
	if b.GPT != nil {
		ts = append(ts, target{"gpt", func() {
			c := b.GPT.Primary
			if v.R.IntN(2) == 0 {
				v.hugeField(c.HeaderOff, gptHeaderFields, "GPT header")
			} else {
				v.hugeField(c.EntriesOff+int64(c.EntrySize*pick(v.R, append(c.Used, 0))), gptEntryFields, "GPT entry")
			}
			gptFixCRCs(v, c)
		}})
	}
	if b.MBR != nil {
		ts = append(ts, target{"mbr", func() { v.hugeField(pick(v.R, b.MBR.Entries), mbrEntryFields, "MBR entry") }})
	}
	if b.MetaDB != nil {
		ts = append(ts, target{"bbolt", func() {
			db := pickDB(v)
			m := db.Map
			switch v.R.IntN(4) {
			case 0:
				f := pick(v.R, boltMetaFields)
				val := v.hugeValue(f.Width)
				for _, mo := range []int64{0, int64(m.PageSize)} {
					v.filePutUint(db.Inode, mo+int64(f.Off), f.Width, val)
					b := v.fileGet(db.Inode, mo, 16+64)
					v.filePutUint(db.Inode, mo+16+56, 8, boltMetaSum(b))
				}
				v.say("%s: both metas %s = %d, checksums recomputed", db.Path, f.Name, val)
			case 1:
				p := pick(v.R, m.Pages)
				f := pick(v.R, boltPageFields)
				val := v.hugeValue(f.Width)
				v.filePutUint(db.Inode, p.Off+int64(f.Off), f.Width, val)
				v.say("%s: page %d %s = %d", db.Path, p.ID, f.Name, val)
			case 2:
				e := pick(v.R, m.Elems)
				fs := boltLeafFields
				if e.Branch {
					fs = boltBranchFields
				}
				f := pick(v.R, fs)
				val := v.hugeValue(f.Width)
				v.filePutUint(db.Inode, e.Off+int64(f.Off), f.Width, val)
				v.say("%s: element at %d (page %d) %s = %d", db.Path, e.Off, e.Page, f.Name, val)
			default:
				p := pick(v.R, m.Ptrs)
				val := v.hugeValue(8)
				v.filePutUint(db.Inode, p.Off, 8, val)
				v.say("%s: %s at %d = %d", db.Path, p.Kind, p.Off, val)
			}
		}})
	}
	if len(ts) == 0 {
		v.Skip = true
		return
	}
	t := pick(v.R, ts)
	t.fn()
}
