package xfs

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/ctrlift/ctrlift/vfs"
)

// rawAttr is one attribute as stored: namespace flags, name and value.
type rawAttr struct {
	flags uint8
	name  []byte
	value []byte
}

// attrCollector turns stored attributes into named ones and bounds the
// memory one inode's attributes may take.
type attrCollector struct {
	f     *FS
	in    *Inode
	out   []vfs.Xattr
	total int
}

func (c *attrCollector) add(a rawAttr, at int64) error {
	full, isACL, keep := xattrName(a.flags, a.name)
	if !keep {
		return nil
	}
	value := a.value
	if isACL {
		v, err := aclToXattr(value, c.f.v5)
		if err != nil {
			return &FormatError{Struct: "attribute", AG: -1, Ino: c.in.Num, Offset: at, Msg: fmt.Sprintf("%s: %v", full, err)}
		}
		value = v
	}
	c.total += len(full) + len(value)
	if c.total > maxXattrTotalBytes {
		return &FormatError{Struct: "attribute fork", AG: -1, Ino: c.in.Num, Offset: at, Msg: fmt.Sprintf("attributes exceed %d bytes", maxXattrTotalBytes)}
	}
	c.out = append(c.out, vfs.Xattr{Name: full, Value: value})
	return nil
}

// xattrName gives the name getxattr(2) uses for a stored attribute. The
// POSIX ACLs, stored as trusted SGI_ACL_FILE and SGI_ACL_DEFAULT, become
// system.posix_acl_access and system.posix_acl_default (the kernel lists
// them under both names; the trusted ones are only the storage). Parent
// pointers are filesystem metadata and are not listed.
func xattrName(flags uint8, name []byte) (full string, isACL, keep bool) {
	if flags&attrParent != 0 {
		return "", false, false
	}
	switch flags & (attrRoot | attrSecure) {
	case 0:
		return "user." + string(name), false, true
	case attrSecure:
		return "security." + string(name), false, true
	case attrRoot:
		switch string(name) {
		case aclFileName:
			return "system.posix_acl_access", true, true
		case aclDefaultName:
			return "system.posix_acl_default", true, true
		}
		return "trusted." + string(name), false, true
	}
	// Both namespace bits: no namespace the kernel would list.
	return "", false, false
}

// readXattrs reads the attribute fork of in into in.Xattrs, sorted by name.
func (f *FS) readXattrs(in *Inode) error {
	if !in.HasAttrFork {
		return nil
	}
	c := &attrCollector{f: f, in: in}
	at := in.offset + int64(in.coreSize()+len(in.dataFork))
	switch in.AttrFormat {
	case FormatLocal:
		in.attrForm = AttrShortform
		if err := f.walkShortformAttrs(in, at, c.add); err != nil {
			return err
		}
	case FormatExtents, FormatBtree:
		if in.AttrFormat == FormatExtents && in.ANExtents == 0 {
			// An attribute fork emptied of its last block.
			break
		}
		m, err := f.newForkMap(in, attrFork)
		if err != nil {
			return err
		}
		form, err := f.walkAttrTree(in, m, c.add)
		if err != nil {
			return err
		}
		in.attrForm = form
		if in.AttrFormat == FormatBtree {
			in.attrForm = AttrBtree
		}
	default:
		return &FormatError{Struct: "inode", AG: -1, Ino: in.Num, Offset: in.offset + diOffAformat, Msg: fmt.Sprintf("attribute fork format %s", in.AttrFormat)}
	}
	slices.SortStableFunc(c.out, func(a, b vfs.Xattr) int { return strings.Compare(a.Name, b.Name) })
	in.Xattrs = c.out
	return nil
}

// walkShortformAttrs parses attributes kept inside the inode.
func (f *FS) walkShortformAttrs(in *Inode, at int64, fn func(rawAttr, int64) error) error {
	b := in.attrFork
	bad := func(p int, format string, args ...any) error {
		return &FormatError{Struct: "short-form attributes", AG: -1, Ino: in.Num, Offset: at + int64(p), Msg: fmt.Sprintf(format, args...)}
	}
	if len(b) < attrSFHdrSize {
		return bad(0, "%d-byte fork too small for a header", len(b))
	}
	total := int(be.Uint16(b))
	if total < attrSFHdrSize || total > len(b) {
		return bad(0, "total size %d, fork holds %d", total, len(b))
	}
	count := int(b[2])
	p := attrSFHdrSize
	for i := 0; i < count; i++ {
		if p+attrSFEntHdr > total {
			return bad(p, "entry %d of %d runs past the %d bytes", i, count, total)
		}
		nameLen, valueLen, flags := int(b[p]), int(b[p+1]), b[p+2]
		q := p + attrSFEntHdr
		if nameLen == 0 || q+nameLen+valueLen > total {
			return bad(p, "entry %d (%d-byte name, %d-byte value) runs past the %d bytes", i, nameLen, valueLen, total)
		}
		a := rawAttr{flags: flags, name: b[q : q+nameLen], value: append([]byte{}, b[q+nameLen:q+nameLen+valueLen]...)}
		if err := fn(a, at+int64(p)); err != nil {
			return err
		}
		p = q + nameLen + valueLen
	}
	return nil
}

// readAttrBlock reads attribute fork block lblk (attribute blocks are one
// filesystem block).
func (f *FS) readAttrBlock(m *forkMap, lblk uint64) ([]byte, int64, error) {
	mp, err := m.lookup(lblk)
	if err != nil {
		return nil, 0, err
	}
	if mp.hole {
		return nil, 0, &FormatError{Struct: "attribute fork", AG: -1, Ino: m.ino, Offset: -1, Msg: fmt.Sprintf("block %d is not mapped", lblk)}
	}
	b := make([]byte, f.blockSize)
	off := int64(mp.block) * f.blockSize
	if err := f.readAt(b, off, "attribute block", m.ino); err != nil {
		return nil, 0, err
	}
	return b, off, nil
}

// checkDa3Header checks the v5 self-describing header of a dabtree block.
func (f *FS) checkDa3Header(b []byte, off int64, ino uint64, what string) error {
	if !f.v5 {
		return nil
	}
	f.checkCRC(b, da3OffCRC, what, ino, off)
	if owner := be.Uint64(b[da3OffOwner:]); owner != ino {
		return &FormatError{Struct: what, AG: -1, Ino: ino, Offset: off, Msg: fmt.Sprintf("owned by inode %d", owner)}
	}
	if blkno := be.Uint64(b[da3OffBlkno:]); blkno != uint64(off)/512 {
		return &FormatError{Struct: what, AG: -1, Ino: ino, Offset: off, Msg: fmt.Sprintf("records sector %d, read from sector %d: a misdirected write", blkno, off/512)}
	}
	return nil
}

// walkAttrTree visits every leaf of the attribute dabtree, whose root is
// block 0 of the attribute fork, in key order. Every child pointer is
// followed (not the sibling links) with a visited set and a depth limit,
// so a loop in a forged tree ends with an error.
func (f *FS) walkAttrTree(in *Inode, m *forkMap, fn func(rawAttr, int64) error) (AttrForm, error) {
	leafMagic, nodeMagic := uint16(attrLeafMagic), uint16(daNodeMagic)
	nodeHdr, countOff := daNodeHdrSize, daBlkinfoSize // count, then level
	if f.v5 {
		leafMagic, nodeMagic, nodeHdr, countOff = attr3LeafMagic, da3NodeMagic, da3NodeHdrSize, da3BlkinfoSize
	}
	visited := map[uint64]bool{}
	form := AttrLeaf
	var visit func(lblk uint64, wantLevel int, depth int) error
	visit = func(lblk uint64, wantLevel int, depth int) error {
		if visited[lblk] {
			return &FormatError{Struct: "attribute tree", AG: -1, Ino: in.Num, Offset: -1, Msg: fmt.Sprintf("block %d reached twice: a loop", lblk)}
		}
		visited[lblk] = true
		b, off, err := f.readAttrBlock(m, lblk)
		if err != nil {
			return err
		}
		switch magic := be.Uint16(b[daOffMagic:]); {
		case magic == leafMagic && wantLevel <= 0:
			if err := f.checkDa3Header(b, off, in.Num, "attribute leaf"); err != nil {
				return err
			}
			return f.parseAttrLeaf(in, m, b, off, fn)
		case magic == nodeMagic && wantLevel != 0:
			if err := f.checkDa3Header(b, off, in.Num, "attribute node"); err != nil {
				return err
			}
			form = AttrNode
			count := int(be.Uint16(b[countOff:]))
			level := int(be.Uint16(b[countOff+2:]))
			if level < 1 || level > maxDaDepth || depth+level > maxDaDepth || (wantLevel > 0 && level != wantLevel) {
				return &FormatError{Struct: "attribute node", AG: -1, Ino: in.Num, Offset: off, Msg: fmt.Sprintf("level %d at depth %d (parent implies %d)", level, depth, wantLevel)}
			}
			if count == 0 || count > (len(b)-nodeHdr)/daNodeEntrySize {
				return &FormatError{Struct: "attribute node", AG: -1, Ino: in.Num, Offset: off, Msg: fmt.Sprintf("%d entries", count)}
			}
			for i := range count {
				child := uint64(be.Uint32(b[nodeHdr+i*daNodeEntrySize+4:]))
				if err := visit(child, level-1, depth+1); err != nil {
					return err
				}
			}
			return nil
		default:
			return &FormatError{Struct: "attribute block", AG: -1, Ino: in.Num, Offset: off, Msg: fmt.Sprintf("bad magic 0x%04x at level %d", magic, wantLevel)}
		}
	}
	// The root may be a leaf or a node of any level.
	if err := visit(0, -1, 0); err != nil {
		return 0, err
	}
	return form, nil
}

// parseAttrLeaf parses the entries of one attribute leaf block.
func (f *FS) parseAttrLeaf(in *Inode, m *forkMap, b []byte, off int64, fn func(rawAttr, int64) error) error {
	hdr, countOff := attrLeafHdrSize, 12
	if f.v5 {
		hdr, countOff = attr3LeafHdrSize, da3BlkinfoSize
	}
	bad := func(p int, format string, args ...any) error {
		return &FormatError{Struct: "attribute leaf", AG: -1, Ino: in.Num, Offset: off + int64(p), Msg: fmt.Sprintf(format, args...)}
	}
	count := int(be.Uint16(b[countOff:]))
	entEnd := hdr + count*attrLeafEntrySize
	if entEnd > len(b) {
		return bad(countOff, "%d entries do not fit the block", count)
	}
	for i := range count {
		e := hdr + i*attrLeafEntrySize
		nameIdx := int(be.Uint16(b[e+4:]))
		flags := b[e+6]
		if flags&attrIncomplete != 0 {
			continue
		}
		if nameIdx < entEnd || nameIdx >= len(b) {
			return bad(e, "entry %d: name at %d, outside %d..%d", i, nameIdx, entEnd, len(b))
		}
		var a rawAttr
		a.flags = flags
		if flags&attrLocal != 0 {
			if nameIdx+attrLocalNameHdr > len(b) {
				return bad(nameIdx, "entry %d: local name header runs past the block", i)
			}
			valueLen := int(be.Uint16(b[nameIdx:]))
			nameLen := int(b[nameIdx+2])
			q := nameIdx + attrLocalNameHdr
			if nameLen == 0 || q+nameLen+valueLen > len(b) {
				return bad(nameIdx, "entry %d: %d-byte name and %d-byte value run past the block", i, nameLen, valueLen)
			}
			a.name = b[q : q+nameLen]
			a.value = append([]byte{}, b[q+nameLen:q+nameLen+valueLen]...)
		} else {
			if nameIdx+attrRemoteNameHdr > len(b) {
				return bad(nameIdx, "entry %d: remote name header runs past the block", i)
			}
			valueBlk := uint64(be.Uint32(b[nameIdx:]))
			valueLen := int(be.Uint32(b[nameIdx+4:]))
			nameLen := int(b[nameIdx+8])
			q := nameIdx + attrRemoteNameHdr
			if nameLen == 0 || q+nameLen > len(b) {
				return bad(nameIdx, "entry %d: %d-byte name runs past the block", i, nameLen)
			}
			a.name = b[q : q+nameLen]
			if valueLen < 0 || valueLen > maxXattrValueSize {
				return bad(nameIdx, "entry %d: remote value of %d bytes exceeds %d", i, valueLen, maxXattrValueSize)
			}
			if _, _, keep := xattrName(flags, a.name); keep {
				v, err := f.readRemoteValue(in, m, valueBlk, valueLen)
				if err != nil {
					return err
				}
				a.value = v
			}
		}
		if err := fn(a, off+int64(nameIdx)); err != nil {
			return err
		}
	}
	return nil
}

// readRemoteValue reads an attribute value stored in its own blocks of the
// attribute fork. On v5 each block starts with a header naming the owner
// and the part of the value it holds.
func (f *FS) readRemoteValue(in *Inode, m *forkMap, blk uint64, length int) ([]byte, error) {
	space := int(f.blockSize)
	if f.v5 {
		space -= attrRmtHdrSize
	}
	out := make([]byte, 0, length)
	for i := uint64(0); len(out) < length; i++ {
		b, off, err := f.readAttrBlock(m, blk+i)
		if err != nil {
			return nil, err
		}
		n := min(space, length-len(out))
		if !f.v5 {
			out = append(out, b[:n]...)
			continue
		}
		bad := func(format string, args ...any) error {
			return &FormatError{Struct: "remote attribute value", AG: -1, Ino: in.Num, Offset: off, Msg: fmt.Sprintf(format, args...)}
		}
		if magic := be.Uint32(b); magic != attrRmtMagic {
			return nil, bad("bad magic 0x%08x", magic)
		}
		f.checkCRC(b, rmtOffCRC, "remote attribute value", in.Num, off)
		if o, c := int(be.Uint32(b[rmtOffOffset:])), int(be.Uint32(b[rmtOffBytes:])); o != len(out) || c != n {
			return nil, bad("holds %d bytes at value offset %d, expected %d at %d", c, o, n, len(out))
		}
		if owner := be.Uint64(b[rmtOffOwner:]); owner != in.Num {
			return nil, bad("owned by inode %d", owner)
		}
		if blkno := be.Uint64(b[rmtOffBlkno:]); blkno != uint64(off)/512 {
			return nil, bad("records sector %d, read from sector %d: a misdirected write", blkno, off/512)
		}
		out = append(out, b[attrRmtHdrSize:attrRmtHdrSize+n]...)
	}
	return out, nil
}

// aclToXattr converts an XFS on-disk POSIX ACL (big-endian count, then
// 12-byte {tag, id, perm, pad} entries) to the xattr form getxattr(2)
// returns: little-endian version 2, then 8-byte {tag, perm, id} entries.
func aclToXattr(v []byte, v5 bool) ([]byte, error) {
	if len(v) < 4 {
		return nil, fmt.Errorf("ACL of %d bytes has no header", len(v))
	}
	count := int(be.Uint32(v))
	if count < 0 || count > (len(v)-4)/aclEntrySize || 4+count*aclEntrySize != len(v) {
		return nil, fmt.Errorf("ACL of %d bytes claims %d entries", len(v), count)
	}
	if !v5 && count > aclMaxEntriesV4 {
		return nil, fmt.Errorf("ACL of %d entries exceeds the v4 limit of %d", count, aclMaxEntriesV4)
	}
	le := binary.LittleEndian
	out := make([]byte, 4, 4+8*count)
	le.PutUint32(out, aclXattrVersion)
	for i := range count {
		e := v[4+i*aclEntrySize:]
		tag, id, perm := be.Uint32(e), be.Uint32(e[4:]), be.Uint16(e[8:])
		switch tag {
		case aclUser, aclGroup:
		case 0x01, 0x04, 0x10, 0x20: // user obj, group obj, mask, other
			id = aclUndefinedID
		default:
			return nil, fmt.Errorf("ACL entry %d has unknown tag 0x%x", i, tag)
		}
		var x [8]byte
		le.PutUint16(x[0:], uint16(tag))
		le.PutUint16(x[2:], perm)
		le.PutUint32(x[4:], id)
		out = append(out, x[:]...)
	}
	return out, nil
}
