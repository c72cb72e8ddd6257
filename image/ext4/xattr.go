package ext4

import (
	"encoding/binary"
	"fmt"
	"sort"
)

// maxXattrValue bounds a value stored in an EA inode: the kernel's limit
// (XATTR_SIZE_MAX) is 64 KiB.
const maxXattrValue = 64 << 10

var xattrPrefixes = map[uint8]string{
	xattrIdxUser:     "user.",
	xattrIdxACLAcc:   "system.posix_acl_access",
	xattrIdxACLDef:   "system.posix_acl_default",
	xattrIdxTrusted:  "trusted.",
	xattrIdxSecurity: "security.",
	xattrIdxSystem:   "system.",
	xattrIdxRichACL:  "system.richacl",
}

// readXattrs collects the in-inode and external-block attributes of in.
// raw is the whole on-disk inode read at off.
func (f *FS) readXattrs(in *Inode, raw []byte, off int64, extra int) error {
	var list []Xattr
	// In-inode area: after the fixed part and i_extra_isize, a magic then entries
	// whose value offsets count from the first entry.
	start := goodOldInodeSize + extra
	if len(raw) > goodOldInodeSize && start+4 <= len(raw) && binary.LittleEndian.Uint32(raw[start:]) == xattrMagic {
		area := raw[start+4:]
		xs, err := f.parseXattrEntries(in, area, area, off+int64(start)+4, "in-inode xattrs")
		if err != nil {
			return err
		}
		list = append(list, xs...)
	}
	if in.fileACL != 0 {
		if err := f.checkBlock(in.fileACL, 1, "xattr block", in.Num, off+inFileACLLo); err != nil {
			return err
		}
		blk := make([]byte, f.blockSize)
		boff := int64(in.fileACL) * f.blockSize
		if err := f.readAt(blk, boff, "xattr block", in.Num); err != nil {
			return err
		}
		if m := binary.LittleEndian.Uint32(blk); m != xattrMagic {
			return &FormatError{Struct: "xattr block", Ino: in.Num, Offset: boff, Msg: fmt.Sprintf("bad magic 0x%08x", m)}
		}
		xs, err := f.parseXattrEntries(in, blk[xattrBlockHdr:], blk, boff+xattrBlockHdr, "xattr block")
		if err != nil {
			return err
		}
		list = append(list, xs...)
	}
	for _, x := range list {
		if x.Name == "system.data" {
			in.inlineEA = x.Value
			continue
		}
		in.Xattrs = append(in.Xattrs, x)
	}
	sort.SliceStable(in.Xattrs, func(i, j int) bool { return in.Xattrs[i].Name < in.Xattrs[j].Name })
	return nil
}

// parseXattrEntries walks entries in ents; value offsets are relative to
// vals. base is the byte offset of ents in the filesystem, for errors.
func (f *FS) parseXattrEntries(in *Inode, ents, vals []byte, base int64, what string) ([]Xattr, error) {
	le := binary.LittleEndian
	var out []Xattr
	p := 0
	for {
		if p+4 > len(ents) {
			// The in-inode area may end exactly where the space ends.
			return out, nil
		}
		if le.Uint32(ents[p:]) == 0 {
			return out, nil
		}
		if p+xattrEntryHdr > len(ents) {
			return nil, &FormatError{Struct: what, Ino: in.Num, Offset: base + int64(p), Msg: "entry runs past the end of the area"}
		}
		nameLen := int(ents[p])
		idx := ents[p+1]
		valOff := int(le.Uint16(ents[p+2:]))
		valInum := le.Uint32(ents[p+4:])
		valSize := int(le.Uint32(ents[p+8:]))
		if p+xattrEntryHdr+nameLen > len(ents) {
			return nil, &FormatError{Struct: what, Ino: in.Num, Offset: base + int64(p), Msg: fmt.Sprintf("name of %d bytes runs past the end of the area", nameLen)}
		}
		name := string(ents[p+xattrEntryHdr : p+xattrEntryHdr+nameLen])
		prefix, known := xattrPrefixes[idx]
		var value []byte
		switch {
		case valInum != 0:
			if valSize > maxXattrValue {
				return nil, &FormatError{Struct: what, Ino: in.Num, Offset: base + int64(p), Msg: fmt.Sprintf("xattr %q: value size %d in EA inode exceeds %d", name, valSize, maxXattrValue)}
			}
			v, err := f.readEAInode(in.Num, valInum, valSize)
			if err != nil {
				return nil, fmt.Errorf("ext4: inode %d: xattr %q: %w", in.Num, prefix+name, err)
			}
			value = v
		default:
			if valSize < 0 || valOff+valSize > len(vals) || valOff+valSize < valOff {
				return nil, &FormatError{Struct: what, Ino: in.Num, Offset: base + int64(p), Msg: fmt.Sprintf("xattr %q: value of %d bytes at offset %d runs past the end (%d)", name, valSize, valOff, len(vals))}
			}
			value = append([]byte{}, vals[valOff:valOff+valSize]...)
		}
		if known {
			full := prefix + name
			if idx == xattrIdxACLAcc || idx == xattrIdxACLDef {
				v, err := aclToXattr(value)
				if err != nil {
					return nil, &FormatError{Struct: what, Ino: in.Num, Offset: base + int64(p), Msg: fmt.Sprintf("%s: %v", full, err)}
				}
				value = v
			}
			out = append(out, Xattr{Name: full, Value: value})
		}
		// Unknown name indexes (encryption context, Lustre, Hurd) are
		// filesystem internals the kernel does not list either.
		p += (xattrEntryHdr + nameLen + 3) &^ 3
	}
}

// readEAInode reads an xattr value stored in its own inode (ea_inode).
func (f *FS) readEAInode(owner, num uint32, size int) ([]byte, error) {
	ea, err := f.inodeNoXattrs(num)
	if err != nil {
		return nil, err
	}
	if ea.Flags&FlagEAInode == 0 {
		return nil, &FormatError{Struct: "EA inode", Ino: num, Offset: -1, Msg: fmt.Sprintf("referenced by inode %d but not flagged as an EA inode", owner)}
	}
	if ea.Size < int64(size) {
		return nil, &FormatError{Struct: "EA inode", Ino: num, Offset: -1, Msg: fmt.Sprintf("holds %d bytes, xattr wants %d", ea.Size, size)}
	}
	r, err := f.NewFileReader(ea)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, size)
	if _, err := r.ReadAt(buf, 0); err != nil && size > 0 {
		return nil, err
	}
	return buf, nil
}

// inodeNoXattrs reads an inode without its attributes (EA inodes hold
// none, and this stops a loop of EA inodes referring to each other).
func (f *FS) inodeNoXattrs(num uint32) (*Inode, error) {
	if num == 0 || num > f.inodesCount {
		return nil, &FormatError{Struct: "inode number", Ino: num, Offset: -1, Msg: fmt.Sprintf("out of range 1..%d", f.inodesCount)}
	}
	g := uint64(num-1) / uint64(f.inodesPerGroup)
	idx := int64(num-1) % int64(f.inodesPerGroup)
	off := int64(f.inodeTables[g])*f.blockSize + idx*f.inodeSize
	raw := make([]byte, f.inodeSize)
	if err := f.readAt(raw, off, "inode", num); err != nil {
		return nil, err
	}
	// Hide the attribute area so parseInode does not recurse.
	if len(raw) > goodOldInodeSize {
		extra := int(binary.LittleEndian.Uint16(raw[inExtraIsize:]))
		if s := goodOldInodeSize + extra; s+4 <= len(raw) {
			binary.LittleEndian.PutUint32(raw[s:], 0)
		}
	}
	binary.LittleEndian.PutUint32(raw[inFileACLLo:], 0)
	binary.LittleEndian.PutUint16(raw[inFileACLHigh:], 0)
	return f.parseInode(num, raw, off)
}

// aclToXattr converts ext4's compact POSIX ACL to the xattr form returned
// by getxattr(2): version 2, then 8-byte {tag, perm, id} entries.
func aclToXattr(v []byte) ([]byte, error) {
	le := binary.LittleEndian
	if len(v) < 4 {
		return nil, fmt.Errorf("ACL of %d bytes has no header", len(v))
	}
	if ver := le.Uint32(v); ver != aclExt4Version {
		return nil, fmt.Errorf("ACL version %d, want %d", ver, aclExt4Version)
	}
	out := make([]byte, 4, 4+2*len(v))
	le.PutUint32(out, aclXattrVersion)
	for p := 4; p < len(v); {
		if p+4 > len(v) {
			return nil, fmt.Errorf("ACL entry at %d truncated", p)
		}
		tag, perm := le.Uint16(v[p:]), le.Uint16(v[p+2:])
		id := uint32(aclUndefinedID)
		switch tag {
		case aclUser, aclGroup:
			if p+8 > len(v) {
				return nil, fmt.Errorf("ACL entry at %d truncated", p)
			}
			id = le.Uint32(v[p+4:])
			p += 8
		case aclUserObj, aclGroupObj, aclMask, aclOther:
			p += 4
		default:
			return nil, fmt.Errorf("ACL entry at %d has unknown tag 0x%x", p, tag)
		}
		var e [8]byte
		le.PutUint16(e[0:], tag)
		le.PutUint16(e[2:], perm)
		le.PutUint32(e[4:], id)
		out = append(out, e[:]...)
	}
	return out, nil
}
