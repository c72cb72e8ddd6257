package xfs

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
)

// forkKind says which fork of an inode a map describes.
type forkKind int

const (
	dataFork forkKind = iota
	attrFork
)

func (k forkKind) String() string {
	if k == attrFork {
		return "attribute fork"
	}
	return "data fork"
}

// extent is one decoded extent record: file blocks [off, off+count) are
// stored at linear filesystem blocks [block, block+count).
type extent struct {
	off       uint64
	block     uint64 // linear block: AG * sb_agblocks + block within the AG
	count     uint64
	unwritten bool
}

// mapping is a run of file blocks starting at the block asked for: stored
// contiguously from block, unwritten (allocated, reads as zeros) or a hole.
type mapping struct {
	block     uint64
	count     uint64
	hole      bool
	unwritten bool
}

// bmapLeaf is one decoded bmbt leaf and the file range its parent's keys
// give it.
type bmapLeaf struct {
	first, end uint64
	ext        []extent
}

// forkMap maps file blocks of one fork to disk blocks. For the extents
// format the records are decoded once; for a bmbt, one leaf at a time, so
// memory stays bounded whatever the file's extent count.
type forkMap struct {
	fs    *FS
	ino   uint64
	kind  forkKind
	btree bool
	ext   []extent // extents format
	root  []byte   // bmbt root in the inode
	leaf  atomic.Pointer[bmapLeaf]

	// seen records the key range each bmbt block was reached with. A block
	// reached again with another range is a pointer loop or a block shared
	// between two places of the tree, which no valid bmbt has (reflink
	// shares data blocks, never bmbt blocks): without this, a forged tree
	// whose pointers all name one block would describe a virtual tree of
	// astronomical size.
	mu   sync.Mutex
	seen map[uint64][2]uint64
}

// newForkMap decodes the mapping of a fork stored in the extents or btree
// format.
func (f *FS) newForkMap(in *Inode, kind forkKind) (*forkMap, error) {
	lit, format, n := in.dataFork, in.Format, in.NExtents
	litOff := in.offset + int64(in.coreSize())
	if kind == attrFork {
		lit, format, n = in.attrFork, in.AttrFormat, in.ANExtents
		litOff += int64(len(in.dataFork))
	}
	m := &forkMap{fs: f, ino: in.Num, kind: kind}
	bad := func(format string, args ...any) error {
		return &FormatError{Struct: kind.String(), AG: -1, Ino: in.Num, Offset: litOff, Msg: fmt.Sprintf(format, args...)}
	}
	switch format {
	case FormatExtents:
		if room := uint64(len(lit) / bmbtRecSize); n > room {
			return nil, bad("%d extents, but the fork holds at most %d", n, room)
		}
		ext, err := f.decodeExtents(lit[:n*bmbtRecSize], in.Num, kind, litOff, 0, maxFileOff)
		if err != nil {
			return nil, err
		}
		m.ext = ext
	case FormatBtree:
		if len(lit) < bmdrHeaderSize+bmbtKeySize+bmbtPtrSize {
			return nil, bad("%d-byte fork too small for a bmbt root", len(lit))
		}
		level := be.Uint16(lit)
		if level == 0 || level > maxBmbtLevels {
			return nil, bad("bmbt root level %d (1..%d)", level, maxBmbtLevels)
		}
		m.btree = true
		m.root = lit
	default:
		return nil, bad("format %s has no extent map", format)
	}
	return m, nil
}

// decodeExtents decodes extent records, which must be sorted, disjoint and
// inside [first, end) (the range a bmbt parent gives this leaf).
func (f *FS) decodeExtents(b []byte, ino uint64, kind forkKind, at int64, first, end uint64) ([]extent, error) {
	out := make([]extent, 0, len(b)/bmbtRecSize)
	var prevEnd uint64
	for i := 0; i+bmbtRecSize <= len(b); i += bmbtRecSize {
		l0, l1 := be.Uint64(b[i:]), be.Uint64(b[i+8:])
		e := extent{
			unwritten: l0>>63 != 0,
			off:       (l0 &^ (1 << 63)) >> 9,
			count:     l1 & (1<<bmbtBlockcntBits - 1),
		}
		fsb := (l0&0x1ff)<<43 | l1>>bmbtBlockcntBits
		bad := func(format string, args ...any) error {
			return &FormatError{Struct: kind.String() + " extent", AG: -1, Ino: ino, Offset: at + int64(i), Msg: fmt.Sprintf(format, args...)}
		}
		if e.count == 0 {
			return nil, bad("record %d has length 0", i/bmbtRecSize)
		}
		if e.off+e.count > maxFileOff {
			return nil, bad("record %d maps file blocks %d+%d, past the largest file offset", i/bmbtRecSize, e.off, e.count)
		}
		if len(out) > 0 && e.off < prevEnd {
			return nil, bad("record %d starts at file block %d, before the previous one ends (%d)", i/bmbtRecSize, e.off, prevEnd)
		}
		if e.off < first || e.off+e.count > end {
			return nil, bad("record %d maps file blocks %d+%d, outside the range %d..%d its parent key gives", i/bmbtRecSize, e.off, e.count, first, end)
		}
		lin, err := f.fsbToLinear(fsb, e.count, kind.String()+" extent", ino, at+int64(i))
		if err != nil {
			return nil, err
		}
		e.block = lin
		prevEnd = e.off + e.count
		out = append(out, e)
	}
	return out, nil
}

// lookup maps file block lblk.
func (m *forkMap) lookup(lblk uint64) (mapping, error) {
	if lblk >= maxFileOff {
		return mapping{count: 1 << 40, hole: true}, nil
	}
	if !m.btree {
		return findIn(m.ext, lblk, 0, maxFileOff), nil
	}
	leaf := m.leaf.Load()
	if leaf == nil || lblk < leaf.first || lblk >= leaf.end {
		var err error
		leaf, err = m.findLeaf(lblk)
		if err != nil {
			return mapping{}, err
		}
		m.leaf.Store(leaf)
	}
	return findIn(leaf.ext, lblk, leaf.first, leaf.end), nil
}

// findIn maps lblk through sorted extents covering the range [first, end).
func findIn(ext []extent, lblk, first, end uint64) mapping {
	i, _ := slices.BinarySearchFunc(ext, lblk, func(e extent, t uint64) int {
		switch {
		case e.off+e.count <= t:
			return -1
		case e.off > t:
			return 1
		}
		return 0
	})
	if i < len(ext) && ext[i].off <= lblk {
		e := ext[i]
		d := lblk - e.off
		return mapping{block: e.block + d, count: e.count - d, hole: e.unwritten, unwritten: e.unwritten}
	}
	next := end
	if i < len(ext) {
		next = ext[i].off
	}
	if next <= lblk {
		next = lblk + 1
	}
	return mapping{count: next - lblk, hole: true}
}

// bmbtNode is one decoded bmbt node: keys are the first file block of each
// child, ptrs the children's filesystem block numbers.
type bmbtNode struct {
	level uint16
	keys  []uint64
	ptrs  []uint64
}

// findLeaf descends the bmbt from the root in the inode to the leaf
// covering lblk.
func (m *forkMap) findLeaf(lblk uint64) (*bmapLeaf, error) {
	f := m.fs
	rootLevel := be.Uint16(m.root)
	n, err := m.parseNode(m.root, bmdrHeaderSize, int(be.Uint16(m.root[2:])), rootLevel, -1)
	if err != nil {
		return nil, err
	}
	first, end := uint64(0), uint64(maxFileOff)
	level := rootLevel
	for {
		// The last child whose key is at or before lblk.
		i, found := slices.BinarySearch(n.keys, lblk)
		if !found {
			i--
		}
		if i < 0 {
			// lblk lies before the first key: a hole up to it.
			return &bmapLeaf{first: first, end: min(end, n.keys[0])}, nil
		}
		if i+1 < len(n.keys) {
			end = min(end, n.keys[i+1])
		}
		first = max(first, n.keys[i])
		blk, err := f.fsbToLinear(n.ptrs[i], 1, "bmbt pointer", m.ino, -1)
		if err != nil {
			return nil, err
		}
		if err := m.visit(blk, first, end); err != nil {
			return nil, err
		}
		buf := make([]byte, f.blockSize)
		off := int64(blk) * f.blockSize
		if err := f.readAt(buf, off, "bmbt block", m.ino); err != nil {
			return nil, err
		}
		hdr, err := m.checkBlockHeader(buf, off, level-1)
		if err != nil {
			return nil, err
		}
		if level-1 == 0 {
			numrecs := int(be.Uint16(buf[6:]))
			if max := (len(buf) - hdr) / bmbtRecSize; numrecs > max {
				return nil, &FormatError{Struct: "bmbt leaf", AG: -1, Ino: m.ino, Offset: off, Msg: fmt.Sprintf("%d records, room for %d", numrecs, max)}
			}
			ext, err := f.decodeExtents(buf[hdr:hdr+numrecs*bmbtRecSize], m.ino, m.kind, off+int64(hdr), first, end)
			if err != nil {
				return nil, err
			}
			return &bmapLeaf{first: first, end: end, ext: ext}, nil
		}
		level--
		if n, err = m.parseNode(buf, hdr, int(be.Uint16(buf[6:])), level, off); err != nil {
			return nil, err
		}
	}
}

// visit records that bmbt block blk was reached for [first, end).
func (m *forkMap) visit(blk, first, end uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen == nil {
		m.seen = map[uint64][2]uint64{}
	}
	if r, ok := m.seen[blk]; ok && r != [2]uint64{first, end} {
		return &FormatError{Struct: "bmbt", AG: -1, Ino: m.ino, Offset: int64(blk) * m.fs.blockSize,
			Msg: fmt.Sprintf("block reached for file blocks %d..%d and again for %d..%d: a pointer loop or a shared bmbt block", r[0], r[1], first, end)}
	}
	m.seen[blk] = [2]uint64{first, end}
	return nil
}

// checkBlockHeader checks a long-format bmbt block header and returns its
// length.
func (m *forkMap) checkBlockHeader(buf []byte, off int64, wantLevel uint16) (int, error) {
	f := m.fs
	bad := func(format string, args ...any) error {
		return &FormatError{Struct: "bmbt block", AG: -1, Ino: m.ino, Offset: off, Msg: fmt.Sprintf(format, args...)}
	}
	magic := be.Uint32(buf)
	hdr := btreeLBlockLen
	want := uint32(bmapMagic)
	if f.v5 {
		hdr, want = btreeLBlockCRCLen, bmapCRCMagic
	}
	if magic != want {
		return 0, bad("bad magic 0x%08x, want 0x%08x", magic, want)
	}
	if level := be.Uint16(buf[4:]); level != wantLevel {
		return 0, bad("level %d where the parent implies %d", level, wantLevel)
	}
	if f.v5 {
		f.checkCRC(buf, btreeLOffCRC, "bmbt block", m.ino, off)
		if owner := be.Uint64(buf[btreeLOffOwner:]); owner != m.ino {
			return 0, bad("owned by inode %d", owner)
		}
		if blkno := be.Uint64(buf[btreeLOffBlkno:]); blkno != uint64(off)/512 {
			return 0, bad("records sector %d, read from sector %d: a misdirected write", blkno, off/512)
		}
	}
	return hdr, nil
}

// parseNode decodes a bmbt node: the root in the inode (hdr = 4, records
// sized for the fork) or a node block (hdr = the block header).
func (m *forkMap) parseNode(b []byte, hdr, numrecs int, level uint16, off int64) (*bmbtNode, error) {
	maxrecs := (len(b) - hdr) / (bmbtKeySize + bmbtPtrSize)
	what := "bmbt node"
	if off < 0 {
		what = "bmbt root"
	}
	if numrecs == 0 || numrecs > maxrecs {
		return nil, &FormatError{Struct: what, AG: -1, Ino: m.ino, Offset: off, Msg: fmt.Sprintf("%d records, room for %d", numrecs, maxrecs)}
	}
	n := &bmbtNode{level: level, keys: make([]uint64, numrecs), ptrs: make([]uint64, numrecs)}
	ptrBase := hdr + maxrecs*bmbtKeySize
	for i := range numrecs {
		n.keys[i] = be.Uint64(b[hdr+i*bmbtKeySize:])
		n.ptrs[i] = be.Uint64(b[ptrBase+i*bmbtPtrSize:])
		if i > 0 && n.keys[i] <= n.keys[i-1] {
			return nil, &FormatError{Struct: what, AG: -1, Ino: m.ino, Offset: off, Msg: fmt.Sprintf("key %d (%d) does not follow key %d (%d)", i, n.keys[i], i-1, n.keys[i-1])}
		}
	}
	return n, nil
}

// extents returns every extent of the fork in file order, for small forks
// (symlinks, directories, attributes) and tests. max bounds how many are
// collected.
func (m *forkMap) extents(max int) ([]extent, error) {
	if !m.btree {
		return m.ext, nil
	}
	var out []extent
	for lblk := uint64(0); lblk < maxFileOff; {
		mp, err := m.lookup(lblk)
		if err != nil {
			return nil, err
		}
		if !mp.hole || mp.unwritten {
			if len(out) >= max {
				return nil, &FormatError{Struct: m.kind.String(), AG: -1, Ino: m.ino, Offset: -1, Msg: fmt.Sprintf("more than %d extents", max)}
			}
			out = append(out, extent{off: lblk, block: mp.block, count: mp.count, unwritten: mp.unwritten})
		}
		lblk += mp.count
	}
	return out, nil
}
