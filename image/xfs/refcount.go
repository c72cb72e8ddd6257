package xfs

import "fmt"

// With reflink, files may share blocks, so the data of all files may
// exceed the filesystem's size. The bound on what they can map together
// comes from the reference count B+trees (one per AG), which record every
// shared run and how many owners it has: the filesystem's size plus, for
// each shared run, its length times its owners beyond the first. A forged
// extent map that makes many files read the same huge range (reflink
// amplification) then hits the bound unless the refcount tree is forged
// to match, and each refcount is capped (maxRefcount).

// AGF fields and refcount B+tree layout (short-format btree blocks).
const (
	agfMagic          = 0x58414746 // "XAGF"
	agfOffMagic       = 0
	agfOffSeqno       = 8
	agfOffRefcntRoot  = 88
	agfOffRefcntLevel = 92
	agfCRCOff         = 216
	refcMagic         = 0x52334643 // "R3FC"
	btreeSBlockCRCLen = 56         // short-format header with the v5 fields
	btreeSOffCRC      = 52
	refcRecSize       = 12 // startblock, blockcount, refcount
	refcKeySize       = 4
	refcPtrSize       = 4
	refcCowFlag       = 1 << 31 // startblock bit of CoW staging extents
	maxRefcLevels     = 8
	// maxRefcount caps the owners counted for one shared run: a forged
	// count of 2^32 would otherwise lift the bound to nothing.
	maxRefcount = 1 << 10
	// maxRefcBlocks bounds the refcount btree blocks read for the bound.
	maxRefcBlocks = 1 << 14
)

// sharingBound returns the bytes all files may map together: the
// filesystem's size plus the shared runs of the refcount B+trees, each
// counted once per owner beyond the first. It is computed once.
func (f *FS) sharingBound() int64 {
	f.shareOnce.Do(func() {
		extra, err := f.sharedBytes()
		if err != nil {
			f.warn("reflink: %v; files may not share blocks beyond the filesystem's size", err)
			extra = 0
		}
		f.shareBound = f.Size() + extra
	})
	return f.shareBound
}

// sharedBytes sums length x (refcount-1) over every AG's refcount tree.
func (f *FS) sharedBytes() (int64, error) {
	var blocks uint64
	read := 0
	sect := make([]byte, f.sectSize)
	for ag := uint64(0); ag < f.agCount; ag++ {
		off := int64(ag*f.agBlocks)*f.blockSize + f.sectSize
		if err := f.readAt(sect, off, "AGF", 0); err != nil {
			return 0, err
		}
		bad := func(field int, format string, args ...any) error {
			return &FormatError{Struct: "AGF", AG: int64(ag), Offset: off + int64(field), Msg: fmt.Sprintf(format, args...)}
		}
		if m := be.Uint32(sect[agfOffMagic:]); m != agfMagic {
			return 0, bad(agfOffMagic, "bad magic 0x%08x", m)
		}
		f.checkCRC(sect, agfCRCOff, "AGF", 0, off)
		if seq := be.Uint32(sect[agfOffSeqno:]); uint64(seq) != ag {
			return 0, bad(agfOffSeqno, "sequence number %d in AG %d", seq, ag)
		}
		root := uint64(be.Uint32(sect[agfOffRefcntRoot:]))
		level := be.Uint32(sect[agfOffRefcntLevel:])
		if level == 0 || level > maxRefcLevels {
			return 0, bad(agfOffRefcntLevel, "refcount btree of %d levels (at most %d)", level, maxRefcLevels)
		}
		n, err := f.walkRefcount(ag, root, int(level)-1, &read)
		if err != nil {
			return 0, err
		}
		if blocks += n; blocks > f.dBlocks*maxRefcount {
			break
		}
	}
	return int64(min(blocks, f.dBlocks*maxRefcount, uint64(1<<62)>>f.blockLog)) * f.blockSize, nil
}

// walkRefcount returns the shared blocks counted below refcount btree
// block agbno of AG ag, whose level must be level.
func (f *FS) walkRefcount(ag, agbno uint64, level int, read *int) (uint64, error) {
	off := int64(ag*f.agBlocks+agbno) * f.blockSize
	bad := func(field int, format string, args ...any) error {
		return &FormatError{Struct: "refcount btree block", AG: int64(ag), Offset: off + int64(field), Msg: fmt.Sprintf(format, args...)}
	}
	if agbno == 0 || agbno >= f.agBlocks || ag*f.agBlocks+agbno >= f.dBlocks {
		return 0, bad(0, "block %d lies outside AG %d (%d blocks)", agbno, ag, f.agBlocks)
	}
	if *read++; *read > maxRefcBlocks {
		return 0, bad(0, "more than %d refcount btree blocks: a loop or a forged tree", maxRefcBlocks)
	}
	buf := make([]byte, f.blockSize)
	if err := f.readAt(buf, off, "refcount btree block", 0); err != nil {
		return 0, err
	}
	if m := be.Uint32(buf); m != refcMagic {
		return 0, bad(0, "bad magic 0x%08x", m)
	}
	f.checkCRC(buf, btreeSOffCRC, "refcount btree block", 0, off)
	if l := int(be.Uint16(buf[4:])); l != level {
		return 0, bad(4, "level %d where the parent implies %d", l, level)
	}
	num := int(be.Uint16(buf[6:]))
	hdr := btreeSBlockCRCLen
	if level == 0 {
		if num > (len(buf)-hdr)/refcRecSize {
			return 0, bad(6, "%d records, room for %d", num, (len(buf)-hdr)/refcRecSize)
		}
		var shared uint64
		for i := 0; i < num; i++ {
			r := buf[hdr+i*refcRecSize:]
			start, count, refs := be.Uint32(r), uint64(be.Uint32(r[4:])), uint64(be.Uint32(r[8:]))
			if start&refcCowFlag != 0 || refs < 2 {
				continue // CoW staging or unshared
			}
			if count > f.agBlocks {
				return 0, bad(hdr+i*refcRecSize+4, "shared run of %d blocks in an AG of %d", count, f.agBlocks)
			}
			shared += count * (min(refs, maxRefcount) - 1)
		}
		return shared, nil
	}
	maxr := (len(buf) - hdr) / (refcKeySize + refcPtrSize)
	if num > maxr {
		return 0, bad(6, "%d pointers, room for %d", num, maxr)
	}
	var shared uint64
	for i := 0; i < num; i++ {
		child := uint64(be.Uint32(buf[hdr+maxr*refcKeySize+i*refcPtrSize:]))
		n, err := f.walkRefcount(ag, child, level-1, read)
		if err != nil {
			return 0, err
		}
		shared += n
	}
	return shared, nil
}
