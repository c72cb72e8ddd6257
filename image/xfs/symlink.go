package xfs

import "fmt"

// LinkTargetInode returns the target of symlink in, byte-exact. Short
// targets live in the inode; longer ones in up to three extents, each
// starting (on v5) with a header naming the owner and the part it holds.
func (f *FS) LinkTargetInode(in *Inode) (string, error) {
	if !in.IsSymlink() {
		return "", fmt.Errorf("xfs: inode %d: mode %#o is not a symlink", in.Num, in.Mode)
	}
	bad := func(off int64, format string, args ...any) error {
		return &FormatError{Struct: "symlink", AG: -1, Ino: in.Num, Offset: off, Msg: fmt.Sprintf(format, args...)}
	}
	if in.Size <= 0 || in.Size > maxSymlinkLen {
		return "", bad(in.offset+diOffSize, "target length %d (1..%d)", in.Size, maxSymlinkLen)
	}
	if in.Format == FormatLocal {
		return string(in.dataFork[:in.Size]), nil
	}
	m, err := f.newForkMap(in, dataFork)
	if err != nil {
		return "", err
	}
	exts, err := m.extents(maxSymlinkMaps)
	if err != nil {
		return "", err
	}
	out := make([]byte, 0, in.Size)
	var next uint64 // file block the next extent must start at
	for _, e := range exts {
		if len(out) == int(in.Size) {
			break
		}
		if e.off != next || e.unwritten {
			return "", bad(int64(e.block)*f.blockSize, "extent at file block %d (unwritten %v) where block %d was expected", e.off, e.unwritten, next)
		}
		if maxBlocks := uint64((maxSymlinkLen + symlinkHdrSize + f.blockSize - 1) >> f.blockLog); e.count > maxBlocks {
			return "", bad(int64(e.block)*f.blockSize, "extent of %d blocks, a target needs at most %d", e.count, maxBlocks)
		}
		next = e.off + e.count
		buf := make([]byte, e.count<<f.blockLog)
		off := int64(e.block) * f.blockSize
		if err := f.readAt(buf, off, "symlink block", in.Num); err != nil {
			return "", err
		}
		data := buf
		n := min(len(data), int(in.Size)-len(out))
		if f.v5 {
			if magic := be.Uint32(buf); magic != symlinkMagic {
				return "", bad(off, "bad magic 0x%08x", magic)
			}
			f.checkCRC(buf, rmtOffCRC, "symlink block", in.Num, off)
			n = min(len(buf)-symlinkHdrSize, int(in.Size)-len(out))
			if o, c := int(be.Uint32(buf[rmtOffOffset:])), int(be.Uint32(buf[rmtOffBytes:])); o != len(out) || c != n {
				return "", bad(off, "holds %d bytes at target offset %d, expected %d at %d", c, o, n, len(out))
			}
			if owner := be.Uint64(buf[rmtOffOwner:]); owner != in.Num {
				return "", bad(off, "owned by inode %d", owner)
			}
			if blkno := be.Uint64(buf[rmtOffBlkno:]); blkno != uint64(off)/512 {
				return "", bad(off, "records sector %d, read from sector %d: a misdirected write", blkno, off/512)
			}
			data = buf[symlinkHdrSize:]
		}
		out = append(out, data[:n]...)
	}
	if len(out) != int(in.Size) {
		return "", bad(-1, "extents hold %d of the %d target bytes", len(out), in.Size)
	}
	return string(out), nil
}
