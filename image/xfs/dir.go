package xfs

import (
	"bytes"
	"fmt"
	"io/fs"
	"sync"

	"github.com/ctrlift/ctrlift/vfs"
)

// DirEntry is one raw directory entry. Name holds the on-disk bytes, which
// need not be UTF-8.
type DirEntry struct {
	Name string
	Ino  uint64
	Type FileType // FileTypeUnknown when the filesystem lacks ftype
}

// Entries returns the entries of directory dir except "." and "..", in
// on-disk order.
func (f *FS) Entries(dir *Inode) ([]DirEntry, error) {
	var out []DirEntry
	err := f.walkDir(dir, func(e DirEntry) bool {
		out = append(out, e)
		return true
	})
	return out, err
}

// DirForm tells how directory dir is stored.
func (f *FS) DirForm(dir *Inode) (DirForm, error) {
	if !dir.IsDir() {
		return 0, fmt.Errorf("xfs: inode %d: %w", dir.Num, vfs.ErrNotDir)
	}
	switch dir.Format {
	case FormatLocal:
		return DirShortform, nil
	case FormatBtree:
		return DirBtree, nil
	}
	m, err := f.newForkMap(dir, dataFork)
	if err != nil {
		return 0, err
	}
	if dir.Size == f.dirBlkSize {
		b, _, hole, err := f.readDirBlock(m, 0)
		if err != nil {
			return 0, err
		}
		if !hole {
			if magic := be.Uint32(b); magic == dir2BlockMagic || magic == dir3BlockMagic {
				return DirBlock, nil
			}
		}
	}
	b, off, hole, err := f.readDirBlock(m, dirSpaceSize>>f.blockLog)
	if err != nil {
		return 0, err
	}
	if hole {
		return 0, &FormatError{Struct: "directory", AG: -1, Ino: dir.Num, Offset: -1, Msg: "no leaf block in a directory of several blocks"}
	}
	switch magic := be.Uint16(b[daOffMagic:]); magic {
	case dir2Leaf1Magic, dir3Leaf1Magic:
		return DirLeaf, nil
	case dir2LeafNMagic, dir3LeafNMagic, daNodeMagic, da3NodeMagic:
		return DirNode, nil
	default:
		return 0, &FormatError{Struct: "directory leaf block", AG: -1, Ino: dir.Num, Offset: off, Msg: fmt.Sprintf("bad magic 0x%04x", magic)}
	}
}

// walkDir calls fn for each entry except "." and ".." until fn returns
// false.
func (f *FS) walkDir(dir *Inode, fn func(DirEntry) bool) error {
	if !dir.IsDir() {
		return fmt.Errorf("xfs: inode %d: %w", dir.Num, vfs.ErrNotDir)
	}
	if dir.Format == FormatLocal {
		return f.walkShortform(dir, fn)
	}
	if dir.Size > dirSpaceSize || dir.Size < 0 {
		return &FormatError{Struct: "directory", AG: -1, Ino: dir.Num, Offset: dir.offset + diOffSize, Msg: fmt.Sprintf("size %d exceeds the 32 GiB data space", dir.Size)}
	}
	m, err := f.newForkMap(dir, dataFork)
	if err != nil {
		return err
	}
	perDirBlock := uint64(f.dirBlkSize >> f.blockLog)
	end := (uint64(dir.Size) + uint64(f.blockSize) - 1) >> f.blockLog
	single := dir.Size == f.dirBlkSize
	// A block listed twice would be read twice: corruption, and a way for
	// a forged map to cost time out of proportion to the image.
	seen := map[uint64]uint64{}
	for lblk := uint64(0); lblk < end; lblk += perDirBlock {
		mp, err := m.lookup(lblk)
		if err != nil {
			return err
		}
		if mp.hole {
			// Skip the whole hole, to the next directory block boundary.
			skip := (mp.count + perDirBlock - 1) / perDirBlock * perDirBlock
			lblk += skip - perDirBlock
			continue
		}
		if prev, dup := seen[mp.block]; dup {
			return &FormatError{Struct: "directory", AG: -1, Ino: dir.Num, Offset: int64(mp.block) * f.blockSize,
				Msg: fmt.Sprintf("directory block %d maps disk block %d, already read as directory block %d", lblk, mp.block, prev)}
		}
		seen[mp.block] = lblk
		b, off, hole, err := f.readDirBlock(m, lblk)
		if err != nil {
			return err
		}
		if hole {
			continue
		}
		more, err := f.parseDataBlock(dir, b, off, lblk == 0 && single, fn)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// readDirBlock reads the directory block starting at file block lblk,
// which may span several extents. hole is true when it is not mapped.
func (f *FS) readDirBlock(m *forkMap, lblk uint64) (b []byte, off int64, hole bool, err error) {
	b = make([]byte, f.dirBlkSize)
	off = -1
	for got := int64(0); got < f.dirBlkSize; {
		mp, err := m.lookup(lblk + uint64(got>>f.blockLog))
		if err != nil {
			return nil, 0, false, err
		}
		if mp.hole {
			if got == 0 {
				return nil, 0, true, nil
			}
			return nil, 0, false, &FormatError{Struct: "directory block", AG: -1, Ino: m.ino, Offset: off, Msg: fmt.Sprintf("file block %d, inside a directory block, is not mapped", lblk+uint64(got>>f.blockLog))}
		}
		n := min(int64(mp.count)<<f.blockLog, f.dirBlkSize-got)
		pos := int64(mp.block) * f.blockSize
		if got == 0 {
			off = pos
		}
		if err := f.readAt(b[got:got+n], pos, "directory block", m.ino); err != nil {
			return nil, 0, false, err
		}
		got += n
	}
	return b, off, false, nil
}

// parseDataBlock walks the entries of one directory data block. single is
// true for the first block of a directory one block long, which may be a
// single-block directory whose hash index and tail fill the end.
func (f *FS) parseDataBlock(dir *Inode, b []byte, off int64, single bool, fn func(DirEntry) bool) (bool, error) {
	bad := func(at int, format string, args ...any) error {
		o := off
		if o >= 0 {
			o += int64(at)
		}
		return &FormatError{Struct: "directory block", AG: -1, Ino: dir.Num, Offset: o, Msg: fmt.Sprintf(format, args...)}
	}
	magic := be.Uint32(b)
	var wantBlock, wantData uint32 = dir2BlockMagic, dir2DataMagic
	hdr := dir2DataHdrSize
	if f.v5 {
		wantBlock, wantData, hdr = dir3BlockMagic, dir3DataMagic, dir3DataHdrSize
	}
	end := len(b)
	switch {
	case single && magic == wantBlock:
		count := int(be.Uint32(b[len(b)-dirBlockTail:]))
		if count < 0 || count > (len(b)-hdr-dirBlockTail)/dirLeafEntSize {
			return false, bad(len(b)-dirBlockTail, "single-block directory claims %d hash entries", count)
		}
		end = len(b) - dirBlockTail - count*dirLeafEntSize
	case magic == wantData:
	default:
		return false, bad(0, "bad magic 0x%08x (want 0x%08x)", magic, wantData)
	}
	if f.v5 {
		f.checkCRC(b, dir3OffCRC, "directory block", dir.Num, off)
		if owner := be.Uint64(b[dir3OffOwner:]); owner != dir.Num {
			return false, bad(dir3OffOwner, "owned by inode %d", owner)
		}
		if blkno := be.Uint64(b[dir3OffBlkno:]); blkno != uint64(off)/512 {
			return false, bad(dir3OffBlkno, "records sector %d, read from sector %d: a misdirected write", blkno, off/512)
		}
	}
	for p := hdr; p < end; {
		if p+4 <= end && be.Uint16(b[p:]) == dirFreeTag {
			l := int(be.Uint16(b[p+2:]))
			if l < dirAlign || l%dirAlign != 0 || p+l > end {
				return false, bad(p, "free space of %d bytes (%d left)", l, end-p)
			}
			p += l
			continue
		}
		if p+8+1 > end {
			return false, bad(p, "entry header runs past the end of the entries (%d)", end)
		}
		ino := be.Uint64(b[p:])
		nameLen := int(b[p+8])
		extra := 0
		if f.ftype {
			extra = 1
		}
		size := (8 + 1 + nameLen + extra + 2 + dirAlign - 1) &^ (dirAlign - 1)
		if nameLen == 0 || p+size > end {
			return false, bad(p, "entry with a %d-byte name does not fit (%d bytes left)", nameLen, end-p)
		}
		if tag := int(be.Uint16(b[p+size-2:])); tag != p {
			return false, bad(p, "entry tag %d, not its offset %d", tag, p)
		}
		name := b[p+9 : p+9+nameLen]
		typ := FileTypeUnknown
		if f.ftype {
			typ = FileType(b[p+9+nameLen])
		}
		if err := f.checkEntry(dir, name, ino, typ); err != nil {
			return false, bad(p, "%v", err)
		}
		if !isDotOrDotDot(name) && !fn(DirEntry{Name: string(name), Ino: ino, Type: typ}) {
			return false, nil
		}
		p += size
	}
	return true, nil
}

func isDotOrDotDot(name []byte) bool {
	return (len(name) == 1 && name[0] == '.') || (len(name) == 2 && name[0] == '.' && name[1] == '.')
}

// checkEntry validates one entry's name, inode number and type.
func (f *FS) checkEntry(dir *Inode, name []byte, ino uint64, typ FileType) error {
	// A name is one path element: with a slash or a NUL it would become
	// "/../etc/x" in a tar.
	if bytes.ContainsAny(name, "/\x00") {
		return fmt.Errorf("name %q contains a slash or NUL", name)
	}
	if !f.validIno(ino) {
		return fmt.Errorf("name %q: inode %d is not of this filesystem", name, ino)
	}
	if typ > FileTypeWhiteout {
		return fmt.Errorf("name %q: file type %d", name, typ)
	}
	return nil
}

// walkShortform parses a directory kept inside the inode: a header with
// the count and the parent, then packed entries.
func (f *FS) walkShortform(dir *Inode, fn func(DirEntry) bool) error {
	b := dir.dataFork[:dir.Size]
	at := dir.offset + int64(dir.coreSize())
	bad := func(p int, format string, args ...any) error {
		return &FormatError{Struct: "short-form directory", AG: -1, Ino: dir.Num, Offset: at + int64(p), Msg: fmt.Sprintf(format, args...)}
	}
	if len(b) < 2 {
		return bad(0, "size %d too small for a header", len(b))
	}
	count, i8count := int(b[0]), int(b[1])
	inoSize := 4
	if i8count > 0 {
		inoSize = 8
	}
	p := 2 + inoSize
	if p > len(b) {
		return bad(0, "header runs past the %d-byte directory", len(b))
	}
	readIno := func(q int) uint64 {
		if inoSize == 8 {
			return be.Uint64(b[q:])
		}
		return uint64(be.Uint32(b[q:]))
	}
	if parent := readIno(2); !f.validIno(parent) {
		return bad(2, "parent inode %d is not of this filesystem", parent)
	}
	for i := 0; i < count; i++ {
		if p+3 > len(b) {
			return bad(p, "entry %d of %d runs past the %d-byte directory", i, count, len(b))
		}
		nameLen := int(b[p])
		q := p + 3 + nameLen
		typ := FileTypeUnknown
		if f.ftype {
			if q+1 > len(b) {
				return bad(p, "entry %d runs past the directory", i)
			}
			typ = FileType(b[q])
			q++
		}
		if nameLen == 0 || q+inoSize > len(b) {
			return bad(p, "entry %d with a %d-byte name runs past the directory", i, nameLen)
		}
		name := b[p+3 : p+3+nameLen]
		ino := readIno(q)
		if err := f.checkEntry(dir, name, ino, typ); err != nil {
			return bad(p, "%v", err)
		}
		if !fn(DirEntry{Name: string(name), Ino: ino, Type: typ}) {
			return nil
		}
		p = q + inoSize
	}
	return nil
}

// LookupAtInode finds name in directory dir. Directories are indexed once
// and kept in a bounded cache, so resolving every path of a big tree does
// not rescan its directories.
func (f *FS) LookupAtInode(dir *Inode, name string) (*Inode, error) {
	var found uint64
	if dir.Format == FormatLocal {
		err := f.walkDir(dir, func(e DirEntry) bool {
			if e.Name == name {
				found = e.Ino
				return false
			}
			return true
		})
		if err != nil {
			return nil, err
		}
	} else {
		idx, err := f.dirIndex(dir)
		if err != nil {
			return nil, err
		}
		found = idx[name]
	}
	if found == 0 {
		return nil, fs.ErrNotExist
	}
	return f.Inode(found)
}

// dirCache holds name indexes of recently used directories.
type dirCache struct {
	mu      sync.Mutex
	byIno   map[uint64]map[string]uint64
	order   []uint64
	entries int
}

// dirCacheMaxEntries bounds the names held across all cached directories.
const dirCacheMaxEntries = 1 << 20

func (f *FS) dirIndex(dir *Inode) (map[string]uint64, error) {
	c := &f.dirs
	c.mu.Lock()
	idx, ok := c.byIno[dir.Num]
	c.mu.Unlock()
	if ok {
		return idx, nil
	}
	idx = map[string]uint64{}
	err := f.walkDir(dir, func(e DirEntry) bool {
		idx[e.Name] = e.Ino
		return true
	})
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byIno == nil {
		c.byIno = map[uint64]map[string]uint64{}
	}
	for c.entries+len(idx) > dirCacheMaxEntries && len(c.order) > 0 {
		old := c.order[0]
		c.order = c.order[1:]
		c.entries -= len(c.byIno[old])
		delete(c.byIno, old)
	}
	if _, dup := c.byIno[dir.Num]; !dup && len(idx) <= dirCacheMaxEntries {
		c.byIno[dir.Num] = idx
		c.order = append(c.order, dir.Num)
		c.entries += len(idx)
	}
	return idx, nil
}
