//go:build linux

package hostile

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// --- XFS ---
//
// Each generator damages one structure of the XFS base (locate_xfs.go).
// v5 metadata carries CRCs, which the reader verifies but only warns
// about; most variants recompute the CRC of what they changed so the
// reader trusts it and goes deeper, the rest leave it stale.

func hasXFS(b *Base) bool { return b.XFS != nil }

// fixXFSCRC recomputes the CRC of the structure of n bytes at off whose
// checksum field is at crcOff, unless the variant chooses to leave it
// stale (one in four).
func (v *Variant) fixXFSCRC(off, n int64, crcOff int) {
	if crcOff < 0 || !v.Base.XFS.V5 {
		return
	}
	if v.R.IntN(4) == 0 {
		v.say("CRC left stale")
		return
	}
	buf := v.get(off, int(n))
	v.putUint(off+int64(crcOff), 4, uint64(xfsCRC(buf, crcOff)), false)
}

// xfsInodes returns the base's XFS inodes for which keep is true.
func (b *Base) xfsInodes(keep func(*XInode) bool) []*XInode {
	var out []*XInode
	for _, in := range b.XInodes {
		if keep(in) {
			out = append(out, in)
		}
	}
	return out
}

// xfsBlocks returns the metadata blocks of the given kinds of the base's
// inodes.
func (b *Base) xfsBlocks(kinds ...string) []XBlock {
	var out []XBlock
	for _, in := range b.XInodes {
		for _, blk := range in.Blocks {
			for _, k := range kinds {
				if blk.Kind == k {
					out = append(out, blk)
				}
			}
		}
	}
	return out
}

// damage applies one of the generic damages to a structure: zeroed,
// flipped bits, random bytes, or a huge value in one of its fields.
func (v *Variant) damage(off, n int64, fields []Field, what string) {
	switch v.R.IntN(6) {
	case 0:
		v.zero(off, n)
		v.say("(%s)", what)
	case 1:
		v.flip(off, min(n, 512))
		v.say("in %s", what)
	case 2:
		v.scribble(off, min(n, 512))
		v.say("in %s", what)
	default:
		v.hugeField(off, fields, what)
	}
}

func genXFSSuperblock(v *Variant) {
	g := v.Base.XFS
	switch v.R.IntN(6) {
	case 0:
		// An unknown or unsupported incompatible feature, or a realtime
		// subvolume: refused or warned by name.
		bit := pick(v.R, []uint32{1 << 8, 1 << 9, 1 << 10, 1 << 20, 1 << 31})
		inc := uint32(v.getUint(g.Off+216, 4, true)) | bit
		v.putUint(g.Off+216, 4, uint64(inc), true)
		v.say("superblock incompat features |= 0x%x", bit)
	case 1:
		v.setField(g.Off, Field{16, 8, "sb_rblocks", true}, 1+v.R.Uint64N(1<<40), "superblock")
	default:
		v.damage(g.Off, g.SectSize, xfsSBFields, "superblock")
	}
	v.fixXFSCRC(g.Off, g.SectSize, xfsSBCRC)
}

func genXFSAG(v *Variant) {
	g := v.Base.XFS
	ag := uint64(0)
	if v.R.IntN(2) == 0 {
		ag = v.R.Uint64N(g.AGCount)
	}
	a := g.AGOff(ag)
	switch v.R.IntN(4) {
	case 0:
		v.damage(a+g.SectSize, g.SectSize, xfsAGFFields, fmt.Sprintf("AGF of AG %d", ag))
		v.fixXFSCRC(a+g.SectSize, g.SectSize, xfsAGFCRC)
	case 1:
		v.damage(a+2*g.SectSize, g.SectSize, xfsAGIFields, fmt.Sprintf("AGI of AG %d", ag))
		v.fixXFSCRC(a+2*g.SectSize, g.SectSize, xfsAGICRC)
	case 2:
		v.flip(a+3*g.SectSize, g.SectSize)
		v.say("in the AGFL of AG %d", ag)
	default:
		if ag == 0 {
			ag = min(1, g.AGCount-1)
			a = g.AGOff(ag)
		}
		v.damage(a, g.SectSize, xfsSBFields, fmt.Sprintf("secondary superblock of AG %d", ag))
	}
}

var xfsFileTypes = []uint16{0x1000, 0x2000, 0x4000, 0x6000, 0x8000, 0xA000, 0xC000, 0x0000, 0xF000, 0x3000}

func genXFSInode(v *Variant) {
	b := v.Base
	g := b.XFS
	in := pick(v.R, b.XInodes)
	what := in.describe()
	switch v.R.IntN(9) {
	case 0:
		v.zero(in.Off, g.InodeSize)
		v.say("of %s", what)
	case 1:
		v.flip(in.Off, g.InodeSize)
		v.say("in %s", what)
	case 2:
		t := pick(v.R, xfsFileTypes)
		mode := uint16(v.getUint(in.Off+2, 2, true))&0x0FFF | t
		v.putUint(in.Off+2, 2, uint64(mode), true)
		v.say("file type of %s -> 0%o", what, t)
	case 3:
		f := uint8(v.R.IntN(6))
		v.put(in.Off+5, []byte{f})
		v.say("data fork format of %s -> %d", what, f)
	case 4:
		// Another inode's record copied over this one, its number fixed:
		// two inodes share forks and blocks.
		src := pick(v.R, b.XInodes)
		v.put(in.Off, v.get(src.Off, int(g.InodeSize)))
		if in.Version == 3 {
			v.putUint(in.Off+152, 8, in.Ino, true)
		}
		v.say("%s overwritten with the record of %s", what, src.describe())
	case 5:
		// The attribute fork offset anywhere in the literal area.
		fo := uint8(v.R.IntN(int(g.InodeSize-g.coreSize(in.Version))/8 + 2))
		v.put(in.Off+82, []byte{fo})
		v.say("di_forkoff of %s -> %d", what, fo)
	case 6:
		// Flags2: nrext64 or bigtime where the filesystem has none,
		// reflink, DAX.
		bit := pick(v.R, []uint64{1, 2, 8, 16, 1 << 63})
		f2 := v.getUint(in.Off+120, 8, true) ^ bit
		v.putUint(in.Off+120, 8, f2, true)
		v.say("di_flags2 of %s ^= 0x%x", what, bit)
	default:
		v.hugeField(in.Off, xfsInodeFields, what)
	}
	if in.Version == 3 {
		v.fixXFSCRC(in.Off, g.InodeSize, xfsInodeCRC)
	}
}

// fixContainer recomputes the CRC of the inode or bmbt block holding the
// extent record at off.
func (v *Variant) fixContainer(off int64) {
	g := v.Base.XFS
	for _, in := range v.Base.XInodes {
		if off >= in.Off && off < in.Off+g.InodeSize {
			if in.Version == 3 {
				v.fixXFSCRC(in.Off, g.InodeSize, xfsInodeCRC)
			}
			return
		}
		for _, blk := range in.Blocks {
			if off >= blk.Off && off < blk.Off+blk.Len {
				v.fixXFSCRC(blk.Off, blk.Len, blk.CRCOff)
				return
			}
		}
	}
}

func genXFSExtents(v *Variant) {
	b := v.Base
	g := b.XFS
	cands := b.xfsInodes(func(in *XInode) bool { return len(in.Data) > 0 || len(in.Attr) > 0 })
	if len(cands) == 0 {
		v.Skip = true
		return
	}
	in := pick(v.R, cands)
	ext, fork := in.Data, "data"
	if len(ext) == 0 || len(in.Attr) > 0 && v.R.IntN(4) == 0 {
		ext, fork = in.Attr, "attribute"
	}
	i := v.R.IntN(len(ext))
	e := ext[i]
	what := fmt.Sprintf("%s fork extent %d of %s (at %d)", fork, i, in.describe(), e.RecOff)
	ne := e
	switch v.R.IntN(10) {
	case 0:
		ne.L = pick(v.R, []uint64{1<<54 - 1, 1<<54 - 2, 1 << 53, xfsDataSpace / uint64(g.BS), 2 * xfsDataSpace / uint64(g.BS), e.L + 1})
		v.say("%s startoff %d -> %d", what, e.L, ne.L)
	case 1, 2:
		targets := map[string]uint64{
			"block 0 (the superblock)":   0,
			"the AG headers of AG 1":     1 << g.AGBlkLog,
			"the inode's own block":      g.FSB(in.Off),
			"the last block":             g.FSB(g.Off + int64(g.DBlocks-1)*g.BS),
			"past the end of the fs":     g.FSB(g.Off+int64(g.DBlocks-1)*g.BS) + 100,
			"an AG block past the AG":    (g.AGCount-1)<<g.AGBlkLog | (1<<g.AGBlkLog - 1),
			"an AG number past the last": g.AGCount << g.AGBlkLog,
			"the largest block number":   1<<52 - 1,
			"the log":                    g.LogStart,
		}
		k := pick(v.R, sortedKeys(targets))
		ne.P = targets[k]
		v.say("%s now starts at %s", what, k)
	case 3:
		ne.N = pick(v.R, []uint64{0, 1<<21 - 1, 1 << 20, e.N + 1, g.DBlocks})
		v.say("%s blockcount %d -> %d", what, e.N, ne.N)
	case 4:
		ne.Unwritten = !e.Unwritten
		v.say("%s unwritten flag toggled", what)
	case 5:
		// Duplicate or overlapping records.
		if i+1 < len(ext) {
			v.put(ext[i+1].RecOff, v.get(e.RecOff, 16))
			v.say("%s copied over the next record", what)
			v.fixContainer(ext[i+1].RecOff)
			return
		}
		ne.L = 0
		v.say("%s now starts at logical block 0", what)
	case 6:
		// Extent count of the fork past what the fork holds.
		if e.RecOff >= in.Off && e.RecOff < in.Off+g.InodeSize {
			field := Field{76, 4, "di_nextents", true}
			if fork == "attribute" {
				field = Field{80, 2, "di_anextents", true}
			}
			v.setField(in.Off, field, pick(v.R, []uint64{uint64(len(ext)) + 1, 0xFFFF, 0xFFFFFFFF, 0}), in.describe())
			if in.Version == 3 {
				v.fixXFSCRC(in.Off, g.InodeSize, xfsInodeCRC)
			}
			return
		}
		v.flip(e.RecOff, 16)
		v.say("in %s", what)
	default:
		v.scribble(e.RecOff, 16)
		v.say("in %s", what)
		v.fixContainer(e.RecOff)
		return
	}
	v.put(e.RecOff, encodeExtent(ne))
	v.fixContainer(e.RecOff)
}

func genXFSBtree(v *Variant) {
	b := v.Base
	g := b.XFS
	blks := b.xfsBlocks("bmbt")
	roots := b.xfsInodes(func(in *XInode) bool { return in.Format == 3 || in.AFormat == 3 })
	if len(blks) == 0 && len(roots) == 0 {
		v.Skip = true
		return
	}
	if len(blks) == 0 || len(roots) > 0 && v.R.IntN(3) == 0 {
		// The root inside the inode.
		in := pick(v.R, roots)
		fork := in.Fork
		if in.Format != 3 {
			fork = in.AFork
		}
		what := "bmbt root of " + in.describe()
		switch v.R.IntN(3) {
		case 0:
			v.hugeField(fork[0], xfsBmdrFields, what)
		case 1:
			// The first child pointer at the inode's own block, block 0 or
			// past the end.
			maxr := (fork[1] - fork[0] - 4) / 16
			t := pick(v.R, []uint64{g.FSB(in.Off), 0, 1<<52 - 1, g.AGCount << g.AGBlkLog})
			v.putUint(fork[0]+4+maxr*8, 8, t, true)
			v.say("%s first pointer -> %d", what, t)
		default:
			v.flip(fork[0], fork[1]-fork[0])
			v.say("in %s", what)
		}
		if in.Version == 3 {
			v.fixXFSCRC(in.Off, g.InodeSize, xfsInodeCRC)
		}
		return
	}
	blk := pick(v.R, blks)
	hdr := int64(24)
	if g.V5 {
		hdr = 72
	}
	what := fmt.Sprintf("bmbt block of xfs inode %d (level %d, at %d)", blk.Ino, blk.Level, blk.Off)
	switch v.R.IntN(6) {
	case 0, 1:
		v.hugeField(blk.Off, xfsBmbtFields, what)
	case 2:
		// A pointer loop: a node's child is itself; a leaf claims a level
		// and so makes its records pointers.
		if blk.Level > 0 {
			maxr := (blk.Len - hdr) / 16
			v.putUint(blk.Off+hdr+maxr*8, 8, g.FSB(blk.Off), true)
			v.say("%s: first child pointer is the block itself", what)
		} else {
			v.setField(blk.Off, Field{4, 2, "bb_level", true}, 1, what)
		}
	case 3:
		// Sibling pointers aimed at the block itself.
		v.putUint(blk.Off+8+8*int64(v.R.IntN(2)), 8, g.FSB(blk.Off), true)
		v.say("%s: a sibling pointer is the block itself", what)
	case 4:
		v.setField(blk.Off, Field{6, 2, "bb_numrecs", true}, uint64((blk.Len-hdr)/16+1+int64(v.R.IntN(3000))), what)
	default:
		v.flip(blk.Off, blk.Len)
		v.say("in %s", what)
	}
	v.fixXFSCRC(blk.Off, blk.Len, blk.CRCOff)
}

func genXFSDir(v *Variant) {
	b := v.Base
	g := b.XFS
	blks := b.xfsBlocks("dir-block", "dir-data", "dir-leaf1", "dir-leafn", "dir-node", "dir-free")
	sf := b.xfsInodes(func(in *XInode) bool { return in.IsDir() && in.Format == 1 })
	if len(blks) == 0 && len(sf) == 0 {
		v.Skip = true
		return
	}
	if len(blks) == 0 || len(sf) > 0 && v.R.IntN(3) == 0 {
		in := pick(v.R, sf)
		what := "short-form directory of " + in.describe()
		ents, _ := g.readDir(in)
		switch r := v.R.IntN(6); {
		case r == 0:
			v.put(in.Fork[0], []byte{byte(v.R.IntN(256))})
			v.say("%s: count -> %d", what, v.get(in.Fork[0], 1)[0])
		case r == 1:
			v.put(in.Fork[0]+1, []byte{byte(1 + v.R.IntN(255))})
			v.say("%s: i8count set", what)
		case r == 2 && len(ents) > 0:
			e := pick(v.R, ents)
			v.put(e.Off, []byte{byte(pick(v.R, []int{0, 255, len(e.Name) + 1 + v.R.IntN(40)}))})
			v.say("%s: name length of %q forged", what, e.Name)
		case r == 3 && len(ents) > 0:
			// An entry's inode number: the directory itself (a loop), the
			// parent, 0 or out of range.
			e := pick(v.R, ents)
			q := e.Off + 3 + int64(len(e.Name))
			if g.Ftype {
				q++
			}
			t := pick(v.R, []uint64{in.Ino, g.RootIno, 0, 0xFFFFFFFF})
			v.putUint(q, 4, t, true)
			v.say("%s: %q -> inode %d", what, e.Name, t)
		case r == 4:
			// The parent pointer at the directory itself.
			v.putUint(in.Fork[0]+2, 4, in.Ino, true)
			v.say("%s: parent is the directory itself", what)
		default:
			v.flip(in.Fork[0], in.Fork[1]-in.Fork[0])
			v.say("in %s", what)
		}
		if in.Version == 3 {
			v.fixXFSCRC(in.Off, g.InodeSize, xfsInodeCRC)
		}
		return
	}
	blk := pick(v.R, blks)
	what := fmt.Sprintf("%s block of xfs inode %d at %d", blk.Kind, blk.Ino, blk.Off)
	switch blk.Kind {
	case "dir-block", "dir-data":
		in := &XInode{Blocks: []XBlock{blk}}
		ents, _ := g.readDir(in)
		switch r := v.R.IntN(7); {
		case r < 2 && len(ents) > 0:
			e := pick(v.R, ents)
			t := pick(v.R, []uint64{blk.Ino, g.RootIno, 0, 1<<64 - 1, g.AGCount << (g.AGBlkLog + g.InoPBLog), 128})
			v.putUint(e.Off, 8, t, true)
			v.say("%s: entry %q -> inode %d", what, e.Name, t)
		case r == 2 && len(ents) > 0:
			e := pick(v.R, ents)
			v.hugeField(e.Off, xfsDirEntryFields, fmt.Sprintf("%s entry %q", what, e.Name))
		case r == 3:
			// A free region claiming to run past the block.
			hdr := int64(16)
			if g.V5 {
				hdr = 64
			}
			v.putUint(blk.Off+hdr, 2, 0xFFFF, true)
			v.putUint(blk.Off+hdr+2, 2, pick(v.R, []uint64{0, 1, 0xFFF8, uint64(blk.Len)}), true)
			v.say("%s: first entry made a free region of forged length", what)
		case r == 4 && blk.Kind == "dir-block":
			v.setField(blk.Off+blk.Len-8, Field{0, 4, "block tail count", true}, pick(v.R, []uint64{0xFFFFFFFF, uint64(blk.Len / 8), 1 << 20}), what)
		default:
			v.damage(blk.Off, blk.Len, xfsDirDataFields, what)
		}
	case "dir-node":
		// B+tree pointers: a child that is the node itself.
		switch v.R.IntN(3) {
		case 0:
			hdr := int64(16)
			if g.V5 {
				hdr = 64
			}
			self := uint64(0)
			for _, in := range b.XInodes {
				if in.Ino == blk.Ino {
					for _, e := range in.Data {
						if o := g.FSBOff(e.P); blk.Off >= o && blk.Off < o+int64(e.N)*g.BS {
							self = e.L + uint64((blk.Off-o)/g.BS)
						}
					}
				}
			}
			v.putUint(blk.Off+hdr+4, 4, self, true)
			v.say("%s: first child is the node itself (dablk %d)", what, self)
		default:
			v.damage(blk.Off, blk.Len, xfsDaFields, what)
		}
	default:
		v.damage(blk.Off, blk.Len, xfsDaFields, what)
	}
	v.fixXFSCRC(blk.Off, blk.Len, blk.CRCOff)
}

func genXFSAttr(v *Variant) {
	b := v.Base
	g := b.XFS
	blks := b.xfsBlocks("attr-leaf", "attr-node", "attr-remote")
	sf := b.xfsInodes(func(in *XInode) bool { return in.AFork[1] != 0 && in.AFormat == 1 })
	if len(blks) == 0 && len(sf) == 0 {
		v.Skip = true
		return
	}
	if len(blks) == 0 || len(sf) > 0 && v.R.IntN(2) == 0 {
		in := pick(v.R, sf)
		what := "short-form attributes of " + in.describe()
		a := in.AFork[0]
		switch v.R.IntN(5) {
		case 0:
			v.setField(a, Field{0, 2, "totsize", true}, pick(v.R, []uint64{0, 1, 3, 0xFFFF, uint64(in.AFork[1] - in.AFork[0] + 1)}), what)
		case 1:
			v.setField(a, Field{2, 1, "count", true}, uint64(1+v.R.IntN(255)), what)
		case 2:
			// The first entry's name or value length.
			v.setField(a+4, pick(v.R, []Field{{0, 1, "namelen", true}, {1, 1, "valuelen", true}, {2, 1, "flags", true}}), uint64(v.R.IntN(256)), what+" entry 0")
		default:
			v.flip(a, in.AFork[1]-in.AFork[0])
			v.say("in %s", what)
		}
		if in.Version == 3 {
			v.fixXFSCRC(in.Off, g.InodeSize, xfsInodeCRC)
		}
		return
	}
	blk := pick(v.R, blks)
	what := fmt.Sprintf("%s block of xfs inode %d at %d", blk.Kind, blk.Ino, blk.Off)
	switch blk.Kind {
	case "attr-remote":
		v.damage(blk.Off, blk.Len, xfsRmtFields, what)
	case "attr-leaf":
		hdr := int64(32)
		if g.V5 {
			hdr = 80
		}
		count := int64(v.getUint(blk.Off+hdrCountOff(g), 2, true))
		switch r := v.R.IntN(5); {
		case r == 0 && count > 0:
			// An entry's name offset ("nameidx") anywhere.
			e := blk.Off + hdr + 8*v.R.Int64N(count)
			v.setField(e, Field{4, 2, "nameidx", true}, pick(v.R, []uint64{0, 1, uint64(blk.Len - 1), uint64(blk.Len), 0xFFFF}), what+" entry")
		case r == 1 && count > 0:
			// Flip an entry between local and remote, or forge a remote
			// value's block and length.
			e := blk.Off + hdr + 8*v.R.Int64N(count)
			fl := v.get(e+6, 1)[0] ^ 1
			v.put(e+6, []byte{fl})
			v.say("%s: entry at %d local flag toggled", what, e)
		default:
			v.damage(blk.Off, blk.Len, xfsDaFields, what)
		}
	default:
		v.damage(blk.Off, blk.Len, xfsDaFields, what)
	}
	v.fixXFSCRC(blk.Off, blk.Len, blk.CRCOff)
}

// hdrCountOff is the offset of an attribute leaf's entry count.
func hdrCountOff(g *xfsGeom) int64 {
	if g.V5 {
		return 56
	}
	return 12
}

func genXFSSymlink(v *Variant) {
	b := v.Base
	g := b.XFS
	links := b.xfsInodes(func(in *XInode) bool { return in.IsSymlink() })
	remote := b.xfsBlocks("symlink")
	if len(links) == 0 {
		v.Skip = true
		return
	}
	if len(remote) > 0 && v.R.IntN(2) == 0 {
		blk := pick(v.R, remote)
		what := fmt.Sprintf("remote symlink block of xfs inode %d at %d", blk.Ino, blk.Off)
		if g.V5 {
			v.damage(blk.Off, blk.Len, xfsRmtFields, what)
		} else {
			v.flip(blk.Off, blk.Len)
		}
		v.fixXFSCRC(blk.Off, blk.Len, blk.CRCOff)
		return
	}
	in := pick(v.R, links)
	size := pick(v.R, []uint64{0, 1023, 1024, 1025, 4096, 1 << 20, 1<<63 - 1, uint64(in.Fork[1]-in.Fork[0]) + 1})
	v.setField(in.Off, Field{56, 8, "di_size", true}, size, in.describe())
	if v.R.IntN(3) == 0 {
		// Local <-> extents: inline bytes read as extent records.
		f := uint8(3 - in.Format)
		if in.Format != 1 && in.Format != 2 {
			f = 1
		}
		v.put(in.Off+5, []byte{f})
		v.say("data fork format -> %d", f)
	}
	if in.Version == 3 {
		v.fixXFSCRC(in.Off, g.InodeSize, xfsInodeCRC)
	}
}

// genXFSAmplify makes many regular files map the same huge run of the
// filesystem (reflink amplification): each forged extent names up to 8 GiB
// at one place, so a reader that trusts sharing reads it once per file.
func genXFSAmplify(v *Variant) {
	b := v.Base
	g := b.XFS
	// Not the databases: the containers must still be listed.
	files := b.xfsInodes(func(in *XInode) bool {
		return in.IsReg() && in.Format == 2 && len(in.Data) > 0 && in.Role != "metadb" && in.Role != "snapdb"
	})
	if len(files) == 0 {
		v.Skip = true
		return
	}
	n := min(len(files), pick(v.R, []int{1, 4, 16, 64}))
	v.R.Shuffle(len(files), func(i, j int) { files[i], files[j] = files[j], files[i] })
	files = files[:n]
	// A run that stays inside one AG, as the reader requires of an extent:
	// from the start of AG 0 or 1, or from the root inode's block.
	start := pick(v.R, []uint64{g.RootIno >> g.InoPBLog, 0, min(1, g.AGCount-1) << g.AGBlkLog})
	room := g.AGBlocks - start&(1<<g.AGBlkLog-1)
	if last := g.DBlocks - (start>>g.AGBlkLog)*g.AGBlocks - start&(1<<g.AGBlkLog-1); last < room {
		room = last // the last AG may be short
	}
	count := min(room, 1<<21-1)
	if v.R.IntN(3) == 0 {
		count = max(1, count/2)
	}
	flagged := v.R.IntN(2) == 0
	stale := v.R.IntN(4) == 0
	for _, in := range files {
		e := XExtent{L: 0, P: start, N: count}
		v.put(in.Data[0].RecOff, encodeExtent(e))
		if len(in.Data) > 1 {
			v.putUint(in.Off+76, 4, 1, true)
		}
		v.putUint(in.Off+56, 8, count*uint64(g.BS), true)
		if flagged && in.Version == 3 {
			v.putUint(in.Off+120, 8, v.getUint(in.Off+120, 8, true)|2, true) // XFS_DIFLAG2_REFLINK
		}
		if in.Version == 3 && g.V5 && !stale {
			v.putUint(in.Off+xfsInodeCRC, 4, uint64(xfsCRC(v.get(in.Off, int(g.InodeSize)), xfsInodeCRC)), false)
		}
	}
	if stale {
		v.say("CRCs left stale")
	}
	v.say("%d files now map the same %d blocks (%d MiB) at block %d (reflink flag set: %v)", n, count, count*uint64(g.BS)>>20, start, flagged)
}

// logPayload returns a record's payload as the replay sees it: the first
// word of each block restored from the header's cycle data.
func (v *Variant) logPayload(r xlogRec) (hdr, data []byte) {
	hdr = v.get(r.Off, int(r.HBlks*512))
	data = v.get(r.Off+r.HBlks*512, int(r.DataBBs*512))
	for i := int64(0); i < r.DataBBs; i++ {
		copy(data[i*512:i*512+4], hdr[logCycleWord(i):])
	}
	return hdr, data[:r.Len]
}

// logCycleWord is where in the header blocks the first word of payload
// block i is kept.
func logCycleWord(i int64) int64 {
	if j, k := i/64, i%64; j > 0 {
		return j*512 + 4 + 4*k
	}
	return 44 + 4*i
}

// putLogPayload writes data at payload offset pos of a record, through
// the cycle data where it covers a block's first word.
func (v *Variant) putLogPayload(r xlogRec, pos int64, data []byte) {
	for i := range int64(len(data)) {
		p := pos + i
		if p >= r.DataBBs*512 {
			return
		}
		if p%512 < 4 {
			v.put(r.Off+logCycleWord(p/512)+p%512, data[i:i+1])
		} else {
			v.put(r.Off+r.HBlks*512+p, data[i:i+1])
		}
	}
}

// fixLogCRC recomputes a record's checksum (xlog_cksum) so the mutation
// reaches the parser instead of ending the log as a torn record.
func (v *Variant) fixLogCRC(r xlogRec) {
	hdr := v.get(r.Off, int(r.HBlks*512))
	hlen := int64(binary.BigEndian.Uint32(hdr[12:]))
	if hlen <= 0 || hlen > r.DataBBs*512 {
		hlen = r.Len
	}
	data := v.get(r.Off+r.HBlks*512, int(hlen))
	c := xfsCRC(hdr[:328], 32)
	for i := int64(1); i < (hlen+32<<10-1)/(32<<10) && i < r.HBlks; i++ {
		c = crc32.Update(c, castagnoliTab, hdr[i*512:i*512+260])
	}
	c = crc32.Update(c, castagnoliTab, data)
	v.put32(r.Off+32, c)
}

// genXFSLogReplay aims at the records a dirty log's replay reads: the
// record header's lengths, the operation headers, the item formats
// (buffer maps and lengths, inode format fields, log dinodes), with the
// record checksum fixed (most of the time) so the parser sees them.
func genXFSLogReplay(v *Variant) {
	g := v.Base.XFS
	ri := v.R.IntN(len(g.LogRecs))
	r := g.LogRecs[ri]
	_, data := v.logPayload(r)
	what := ""
	switch v.R.IntN(5) {
	case 0: // record header fields
		field := []struct {
			off   int64
			width int
			name  string
		}{{12, 4, "h_len"}, {40, 4, "h_num_logops"}, {320, 4, "h_size"}, {8, 4, "h_version"}, {24, 8, "h_tail_lsn"}}[v.R.IntN(5)]
		v.putUint(r.Off+field.off, field.width, v.hugeValue(field.width), true)
		what = field.name
	case 1, 2: // an operation header
		var ops []int64
		for p := int64(0); p+12 <= int64(len(data)) && len(ops) < 4096; {
			ops = append(ops, p)
			p += 12 + int64(binary.BigEndian.Uint32(data[p+4:]))
		}
		if len(ops) == 0 {
			v.Skip = true
			return
		}
		op := ops[v.R.IntN(len(ops))]
		switch v.R.IntN(3) {
		case 0:
			b := make([]byte, 4)
			binary.BigEndian.PutUint32(b, uint32(v.hugeValue(4)))
			v.putLogPayload(r, op+4, b)
			what = "oh_len"
		case 1:
			v.putLogPayload(r, op+9, []byte{byte(v.R.IntN(256))})
			what = "oh_flags"
		default:
			b := make([]byte, 4)
			binary.BigEndian.PutUint32(b, v.R.Uint32())
			v.putLogPayload(r, op, b)
			what = "oh_tid"
		}
		// And sometimes the start of the region after it (item format:
		// type, region count, flags, lengths, block numbers).
		if v.R.IntN(2) == 0 && op+12+16 <= int64(len(data)) {
			b := make([]byte, 2+v.R.IntN(6))
			for i := range b {
				b[i] = byte(v.R.IntN(256))
			}
			if v.R.IntN(2) == 0 {
				binary.LittleEndian.PutUint16(b, uint16(v.hugeValue(2)))
			}
			v.putLogPayload(r, op+12+int64(v.R.IntN(16)), b)
			what += " and its region's format"
		}
	default: // bytes inside the regions
		n := int64(1 + v.R.IntN(16))
		pos := v.R.Int64N(max(1, int64(len(data))-n))
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(v.R.IntN(256))
		}
		v.putLogPayload(r, pos, b)
		what = fmt.Sprintf("%d payload bytes at %d", n, pos)
	}
	if v.R.IntN(4) != 0 {
		v.fixLogCRC(r)
	} else {
		what += ", CRC left stale"
	}
	v.say("dirty log record at %d (record %d of %d): %s", r.Off, ri+1, len(g.LogRecs), what)
}

func genXFSLog(v *Variant) {
	b := v.Base
	g := b.XFS
	if g.LogBlocks == 0 {
		v.Skip = true
		return
	}
	if len(g.LogRecs) > 0 && v.R.IntN(4) != 0 {
		genXFSLogReplay(v)
		return
	}
	lo := g.FSBOff(g.LogStart)
	n := int64(g.LogBlocks) * g.BS
	// A log record header anywhere in the log, with forged fields.
	off := lo + v.R.Int64N(n/512)*512
	switch v.R.IntN(3) {
	case 0:
		h := make([]byte, 512)
		binary.BigEndian.PutUint32(h, 0xFEEDBABE)
		binary.BigEndian.PutUint32(h[4:], uint32(v.R.IntN(4)))
		binary.BigEndian.PutUint32(h[8:], uint32(v.R.IntN(3)))
		binary.BigEndian.PutUint32(h[12:], uint32(v.hugeValue(4)))
		binary.BigEndian.PutUint64(h[16:], v.R.Uint64())
		binary.BigEndian.PutUint64(h[24:], v.R.Uint64())
		binary.BigEndian.PutUint32(h[40:], uint32(v.hugeValue(4)))
		binary.BigEndian.PutUint32(h[300:], uint32(v.hugeValue(4)))
		v.put(off, h)
		v.say("forged log record header at %d", off)
	case 1:
		v.flip(lo, min(n, 64<<10))
		v.say("in the head of the log")
	default:
		v.scribble(off, 512)
		v.say("in the log")
	}
}
