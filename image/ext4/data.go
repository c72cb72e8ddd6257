package ext4

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
)

// File reads the contents of one inode. Holes and uninitialized extents
// read as zeros. It implements io.ReaderAt (safe for concurrent use),
// io.Reader and io.Seeker.
type File struct {
	fs   *FS
	in   *Inode
	size int64
	pos  int64

	inline []byte // whole contents for inline-data inodes

	leaf  atomic.Pointer[extentLeaf] // last extent leaf used, for sequential reads
	indir atomic.Pointer[indirCache] // last indirect block used (block-mapped files)
}

// extentLeaf caches one decoded leaf node and the logical range it covers.
type extentLeaf struct {
	first, end uint64 // logical blocks [first, end) covered by this leaf
	ext        []extent
}

type extent struct {
	lblk   uint64
	len    uint64
	pblk   uint64
	uninit bool
}

type indirCache struct {
	blk  uint64
	ptrs []uint32
}

// NewFileReader returns a reader over the contents of in.
func (f *FS) NewFileReader(in *Inode) (*File, error) {
	if in.Flags&FlagEncrypt != 0 {
		return nil, fmt.Errorf("ext4: inode %d: encrypted contents: %w", in.Num, ErrUnsupported)
	}
	if in.Flags&FlagCompr != 0 && !in.IsDir() {
		return nil, fmt.Errorf("ext4: inode %d: compressed contents: %w", in.Num, ErrUnsupported)
	}
	r := &File{fs: f, in: in, size: in.Size}
	switch {
	case in.Flags&FlagInlineData != 0:
		data := append(append([]byte{}, in.iblock[:]...), in.inlineEA...)
		if int64(len(data)) < in.Size {
			return nil, &FormatError{Struct: "inline data", Ino: in.Num, Offset: -1, Msg: fmt.Sprintf("size %d but only %d bytes of inline data", in.Size, len(data))}
		}
		r.inline = data[:in.Size]
	case in.Flags&FlagExtents != 0:
		if _, err := f.parseExtentNode(in.Num, in.iblock[:], -1, -1); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Size returns the logical size of the file.
func (r *File) Size() int64 { return r.size }

// Inode returns the inode being read.
func (r *File) Inode() *Inode { return r.in }

func (r *File) Read(p []byte) (int, error) {
	n, err := r.ReadAt(p, r.pos)
	r.pos += int64(n)
	return n, err
}

// WriteTo copies the rest of the file to w in large reads, so that
// io.Copy does not fall back to small buffers.
func (r *File) WriteTo(w io.Writer) (int64, error) {
	buf := make([]byte, min(1<<20, max(r.size-r.pos, 1)))
	var total int64
	for r.pos < r.size {
		n, err := r.ReadAt(buf, r.pos)
		if n > 0 {
			m, werr := w.Write(buf[:n])
			total += int64(m)
			r.pos += int64(m)
			if werr != nil {
				return total, werr
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func (r *File) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.pos
	case io.SeekEnd:
		offset += r.size
	default:
		return 0, errors.New("ext4: seek: invalid whence")
	}
	if offset < 0 {
		return 0, errors.New("ext4: seek: negative position")
	}
	r.pos = offset
	return offset, nil
}

// ReadAt reads len(p) bytes at off, mapping each run of logical blocks to
// one read of the underlying image.
func (r *File) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("ext4: read: negative offset")
	}
	if off >= r.size {
		return 0, io.EOF
	}
	want := len(p)
	if rem := r.size - off; int64(want) > rem {
		want = int(rem)
	}
	if r.inline != nil || r.in.Flags&FlagInlineData != 0 {
		n := copy(p[:want], r.inline[off:])
		return r.eof(n, len(p))
	}
	bs := r.fs.blockSize
	done := 0
	for done < want {
		pos := off + int64(done)
		lblk := uint64(pos / bs)
		within := pos % bs
		run, err := r.mapBlock(lblk)
		if err != nil {
			return done, err
		}
		n := int64(want - done)
		if avail := int64(run.count)*bs - within; n > avail {
			n = avail
		}
		dst := p[done : done+int(n)]
		if run.hole {
			clear(dst)
		} else {
			if err := r.fs.readAt(dst, int64(run.pblk)*bs+within, "file data", r.in.Num); err != nil {
				return done, err
			}
		}
		done += int(n)
	}
	return r.eof(done, len(p))
}

func (r *File) eof(n, asked int) (int, error) {
	if n < asked {
		return n, io.EOF
	}
	return n, nil
}

// NextData returns the first stretch of stored data at or after off, as
// the byte range [start, end), in the manner of lseek's SEEK_DATA and
// SEEK_HOLE: holes and uninitialized extents are not data, and adjacent
// mapped blocks form one stretch even when they lie apart on disk. When
// only holes follow off, start and end are both Size().
func (r *File) NextData(off int64) (start, end int64, err error) {
	if off < 0 {
		return 0, 0, errors.New("ext4: next data: negative offset")
	}
	if off >= r.size {
		return r.size, r.size, nil
	}
	if r.inline != nil || r.in.Flags&FlagInlineData != 0 {
		return off, r.size, nil
	}
	bs := r.fs.blockSize
	start = -1
	for pos := off; pos < r.size; {
		run, err := r.mapBlock(uint64(pos / bs))
		if err != nil {
			return 0, 0, err
		}
		next := (pos/bs + int64(min(run.count, maxRun))) * bs
		if next <= pos || next > r.size { // overflow or past the end
			next = r.size
		}
		switch {
		case !run.hole && start < 0:
			start = pos
		case run.hole && start >= 0:
			return start, pos, nil
		}
		if start >= 0 && next-start > r.fs.Size() {
			// One stretch of data longer than the filesystem: a forged map
			// listing the same blocks again and again. Stop here rather
			// than walk up to 2^32 of them.
			return 0, 0, &FormatError{Struct: "block map", Ino: r.in.Num, Offset: -1,
				Msg: fmt.Sprintf("data from byte %d maps more than the filesystem's %d bytes: a forged block map", start, r.fs.Size())}
		}
		pos = next
	}
	if start < 0 {
		return r.size, r.size, nil
	}
	return start, r.size, nil
}

// run is a stretch of logical blocks that are either a hole or stored
// contiguously starting at pblk.
type run struct {
	pblk  uint64
	count uint64
	hole  bool
}

func (r *File) mapBlock(lblk uint64) (run, error) {
	if lblk >= maxLogicalBlocks {
		// No block map reaches this far, whatever i_size says: one hole
		// to the end, so a forged size costs one step, not one per block.
		return run{count: maxRun, hole: true}, nil
	}
	if r.in.Flags&FlagExtents != 0 {
		return r.mapExtent(lblk)
	}
	return r.mapIndirect(lblk)
}

const (
	// maxLogicalBlocks is past the end of any file ext4 can hold (2^32 blocks).
	maxLogicalBlocks = 1 << 32
	// maxRun bounds a run so that run.count*blockSize fits in an int64.
	maxRun = 1 << 40
)

func (r *File) mapExtent(lblk uint64) (run, error) {
	leaf := r.leaf.Load()
	if leaf == nil || lblk < leaf.first || lblk >= leaf.end {
		var err error
		leaf, err = r.findLeaf(lblk)
		if err != nil {
			return run{}, err
		}
		r.leaf.Store(leaf)
	}
	// Extents in a leaf are sorted; find the first that ends after lblk.
	ext := leaf.ext
	lo, hi := 0, len(ext)
	for lo < hi {
		m := (lo + hi) / 2
		if ext[m].lblk+ext[m].len <= lblk {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(ext) && ext[lo].lblk <= lblk {
		e := ext[lo]
		d := lblk - e.lblk
		return run{pblk: e.pblk + d, count: e.len - d, hole: e.uninit}, nil
	}
	next := leaf.end
	if lo < len(ext) {
		next = ext[lo].lblk
	}
	if next <= lblk {
		next = lblk + 1
	}
	return run{count: next - lblk, hole: true}, nil
}

// findLeaf descends the extent tree to the leaf covering lblk.
func (r *File) findLeaf(lblk uint64) (*extentLeaf, error) {
	node := r.in.iblock[:]
	nodeOff := int64(-1)
	first, end := uint64(0), uint64(maxLogicalBlocks)
	wantDepth := -1
	for {
		n, err := r.fs.parseExtentNode(r.in.Num, node, nodeOff, wantDepth)
		if err != nil {
			return nil, err
		}
		if n.depth == 0 {
			return &extentLeaf{first: first, end: end, ext: n.ext}, nil
		}
		// Pick the last index entry starting at or before lblk.
		i := -1
		for j := range n.idx {
			if n.idx[j].lblk <= lblk {
				i = j
			} else {
				break
			}
		}
		if i < 0 {
			// lblk lies before the first index: a hole up to it.
			e := end
			if len(n.idx) > 0 {
				e = n.idx[0].lblk
			}
			return &extentLeaf{first: first, end: e}, nil
		}
		if i+1 < len(n.idx) && n.idx[i+1].lblk < end {
			end = n.idx[i+1].lblk
		}
		if n.idx[i].lblk > first {
			first = n.idx[i].lblk
		}
		child := n.idx[i].pblk
		if err := r.fs.checkBlock(child, 1, "extent index", r.in.Num, nodeOff); err != nil {
			return nil, err
		}
		buf := make([]byte, r.fs.blockSize)
		nodeOff = int64(child) * r.fs.blockSize
		if err := r.fs.readAt(buf, nodeOff, "extent node", r.in.Num); err != nil {
			return nil, err
		}
		node = buf
		wantDepth = int(n.depth) - 1
	}
}

type extentNode struct {
	depth uint16
	ext   []extent
	idx   []extent // for index nodes: lblk and child block in pblk
}

// parseExtentNode decodes one node; wantDepth (unless -1) is the depth the
// parent implies, which makes loops in the tree impossible.
func (f *FS) parseExtentNode(ino uint32, b []byte, off int64, wantDepth int) (*extentNode, error) {
	le := binary.LittleEndian
	bad := func(msg string, args ...any) error {
		return &FormatError{Struct: "extent node", Ino: ino, Offset: off, Msg: fmt.Sprintf(msg, args...)}
	}
	if len(b) < extentHdrSize {
		return nil, bad("too short")
	}
	if m := le.Uint16(b); m != extentMagic {
		return nil, bad("bad magic 0x%04x", m)
	}
	entries := int(le.Uint16(b[2:]))
	max := int(le.Uint16(b[4:]))
	depth := le.Uint16(b[6:])
	if cap := (len(b) - extentHdrSize) / extentEntrySize; max > cap || entries > max {
		return nil, bad("%d entries, max %d, room for %d", entries, max, cap)
	}
	if depth > extentMaxDepth {
		return nil, bad("depth %d exceeds %d", depth, extentMaxDepth)
	}
	if wantDepth >= 0 && int(depth) != wantDepth {
		return nil, bad("depth %d where the parent implies %d", depth, wantDepth)
	}
	n := &extentNode{depth: depth}
	var prevEnd uint64
	for i := 0; i < entries; i++ {
		e := b[extentHdrSize+i*extentEntrySize:]
		lblk := uint64(le.Uint32(e))
		if i > 0 && lblk < prevEnd {
			return nil, bad("entry %d starts at logical block %d, before the previous one ends (%d)", i, lblk, prevEnd)
		}
		if depth == 0 {
			l := uint64(le.Uint16(e[4:]))
			uninit := false
			if l > extentInitMax {
				l -= extentInitMax
				uninit = true
			}
			pblk := uint64(le.Uint16(e[6:]))<<32 | uint64(le.Uint32(e[8:]))
			if l == 0 {
				continue
			}
			if err := f.checkBlock(pblk, l, "extent", ino, off); err != nil {
				return nil, err
			}
			n.ext = append(n.ext, extent{lblk: lblk, len: l, pblk: pblk, uninit: uninit})
			prevEnd = lblk + l
		} else {
			pblk := uint64(le.Uint16(e[8:]))<<32 | uint64(le.Uint32(e[4:]))
			n.idx = append(n.idx, extent{lblk: lblk, pblk: pblk})
			prevEnd = lblk
			if i > 0 && lblk == n.idx[i-1].lblk {
				return nil, bad("index entries %d and %d both start at logical block %d", i-1, i, lblk)
			}
		}
	}
	return n, nil
}

// mapIndirect maps lblk through the ext2/3 direct and indirect blocks.
func (r *File) mapIndirect(lblk uint64) (run, error) {
	le := binary.LittleEndian
	per := uint64(r.fs.blockSize / 4)
	ib := func(i int) uint32 { return le.Uint32(r.in.iblock[i*4:]) }
	if lblk < 12 {
		p := uint64(ib(int(lblk)))
		n := uint64(1)
		for lblk+n < 12 && ((p == 0 && ib(int(lblk+n)) == 0) || (p != 0 && uint64(ib(int(lblk+n))) == p+n)) {
			n++
		}
		return r.indirectRun(p, n)
	}
	// Indices along the path through single, double, triple indirect blocks.
	rel := lblk - 12
	var root uint32
	var path []uint64
	switch {
	case rel < per:
		root, path = ib(12), []uint64{rel}
	case rel < per+per*per:
		rel -= per
		root, path = ib(13), []uint64{rel / per, rel % per}
	case rel < per+per*per+per*per*per:
		rel -= per + per*per
		root, path = ib(14), []uint64{rel / (per * per), (rel / per) % per, rel % per}
	default:
		// Past the triple indirect block: nothing is mapped up there.
		return run{count: maxRun, hole: true}, nil
	}
	blk := uint64(root)
	for level, idx := range path {
		if blk == 0 {
			// The whole subtree below this pointer is a hole: skip the rest of it.
			span, off := uint64(1), uint64(0)
			for _, x := range path[level:] {
				span *= per
				off = off*per + x
			}
			return run{count: span - off, hole: true}, nil
		}
		ptrs, err := r.indirectBlock(blk)
		if err != nil {
			return run{}, err
		}
		if level == len(path)-1 {
			p := uint64(ptrs[idx])
			n := uint64(1)
			for idx+n < per && ((p == 0 && ptrs[idx+n] == 0) || (p != 0 && uint64(ptrs[idx+n]) == p+n)) {
				n++
			}
			return r.indirectRun(p, n)
		}
		blk = uint64(ptrs[idx])
	}
	return run{}, errors.New("unreachable")
}

func (r *File) indirectRun(p, n uint64) (run, error) {
	if p == 0 {
		return run{count: n, hole: true}, nil
	}
	if err := r.fs.checkBlock(p, n, "block map", r.in.Num, -1); err != nil {
		return run{}, err
	}
	return run{pblk: p, count: n}, nil
}

func (r *File) indirectBlock(blk uint64) ([]uint32, error) {
	if c := r.indir.Load(); c != nil && c.blk == blk {
		return c.ptrs, nil
	}
	if err := r.fs.checkBlock(blk, 1, "indirect block", r.in.Num, -1); err != nil {
		return nil, err
	}
	buf := make([]byte, r.fs.blockSize)
	if err := r.fs.readAt(buf, int64(blk)*r.fs.blockSize, "indirect block", r.in.Num); err != nil {
		return nil, err
	}
	ptrs := make([]uint32, len(buf)/4)
	for i := range ptrs {
		ptrs[i] = binary.LittleEndian.Uint32(buf[i*4:])
	}
	r.indir.Store(&indirCache{blk: blk, ptrs: ptrs})
	return ptrs, nil
}
