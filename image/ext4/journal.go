package ext4

import (
	"encoding/binary"
	"fmt"
	"io"
)

// A disk copied from a running node has committed transactions in its
// jbd2 journal that were never written to their home blocks. The kernel
// replays them at mount; we do the same in memory, so the image itself is
// never modified: reads of a journaled block come from the journal copy.

// journalOverlay serves reads from the image, except for blocks whose
// newest committed copy is in the journal.
type journalOverlay struct {
	base   io.ReaderAt
	bs     int64
	blocks map[uint64]journalCopy // filesystem block -> where its copy is
}

type journalCopy struct {
	pblk    uint64 // physical filesystem block holding the copy
	escaped bool   // the copy's first 4 bytes were replaced by zeros because they equalled the jbd2 magic
}

func (o *journalOverlay) ReadAt(p []byte, off int64) (int, error) {
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		blk := uint64(pos / o.bs)
		within := pos % o.bs
		n := int(o.bs - within)
		if n > len(p)-done {
			n = len(p) - done
		}
		c, ok := o.blocks[blk]
		if !ok {
			// Extend over following blocks that are not journaled.
			for done+n < len(p) {
				if _, j := o.blocks[uint64((pos+int64(n))/o.bs)]; j {
					break
				}
				n += int(min(o.bs, int64(len(p)-done-n)))
			}
			m, err := o.base.ReadAt(p[done:done+n], pos)
			done += m
			if err != nil {
				return done, err
			}
			continue
		}
		m, err := o.base.ReadAt(p[done:done+n], int64(c.pblk)*o.bs+within)
		if c.escaped && within < 4 {
			var magic [4]byte
			binary.BigEndian.PutUint32(magic[:], jbdMagic)
			copy(p[done:done+min(m, 4-int(within))], magic[within:])
		}
		done += m
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

type journalTxn struct {
	seq    uint32
	copies map[uint64]journalCopy
}

func (f *FS) replayJournal() error {
	if f.compat&compatHasJournal == 0 || f.journalInum == 0 {
		return fmt.Errorf("no internal journal")
	}
	jin, err := f.Inode(f.journalInum)
	if err != nil {
		return err
	}
	jr, err := f.NewFileReader(jin)
	if err != nil {
		return err
	}
	bs := f.blockSize
	sb := make([]byte, bs)
	if _, err := jr.ReadAt(sb, 0); err != nil {
		return fmt.Errorf("journal superblock: %w", err)
	}
	be := binary.BigEndian
	if be.Uint32(sb) != jbdMagic {
		return &FormatError{Struct: "journal superblock", Ino: f.journalInum, Offset: -1, Msg: fmt.Sprintf("bad magic 0x%08x", be.Uint32(sb))}
	}
	bt := be.Uint32(sb[4:])
	if bt != jbdSuperV1 && bt != jbdSuperV2 {
		return &FormatError{Struct: "journal superblock", Ino: f.journalInum, Offset: -1, Msg: fmt.Sprintf("block type %d", bt)}
	}
	if jbs := int64(be.Uint32(sb[0xC:])); jbs != bs {
		return &FormatError{Struct: "journal superblock", Ino: f.journalInum, Offset: -1, Msg: fmt.Sprintf("journal block size %d differs from filesystem's %d", jbs, bs)}
	}
	maxLen := uint64(be.Uint32(sb[0x10:]))
	first := uint64(be.Uint32(sb[0x14:]))
	seq := be.Uint32(sb[0x18:])
	start := uint64(be.Uint32(sb[0x1C:]))
	if fileBlocks := uint64(jin.Size / bs); maxLen > fileBlocks {
		return &FormatError{Struct: "journal superblock", Ino: f.journalInum, Offset: -1, Msg: fmt.Sprintf("journal length %d blocks exceeds its inode's %d", maxLen, fileBlocks)}
	}
	if start == 0 {
		return nil // clean journal: nothing to replay
	}
	if first == 0 || first >= maxLen || start < first || start >= maxLen {
		return &FormatError{Struct: "journal superblock", Ino: f.journalInum, Offset: -1, Msg: fmt.Sprintf("bad first %d / start %d for length %d", first, start, maxLen)}
	}
	var incompat uint32
	if bt == jbdSuperV2 {
		incompat = be.Uint32(sb[0x28:])
	}
	tagBytes := 12
	switch {
	case incompat&jbdFeatCsumV3 != 0:
		tagBytes = 16
	default:
		if incompat&jbdFeatCsumV2 != 0 {
			tagBytes += 2
		}
		if incompat&jbdFeat64Bit == 0 {
			tagBytes -= 4
		}
	}
	is64 := incompat&jbdFeat64Bit != 0
	csum := incompat&(jbdFeatCsumV2|jbdFeatCsumV3) != 0

	next := func(b uint64) uint64 {
		b++
		if b >= maxLen {
			b = first
		}
		return b
	}
	// physical returns the filesystem block that holds journal block jb.
	physical := func(jb uint64) (uint64, error) {
		m, err := jr.mapBlock(jb)
		if err != nil {
			return 0, err
		}
		if m.hole {
			return 0, fmt.Errorf("journal block %d is not allocated", jb)
		}
		return m.pblk, nil
	}

	var txns []journalTxn
	revoked := map[uint64]uint32{} // block -> newest transaction that revoked it
	blk := start
	buf := make([]byte, bs)
	cur := journalTxn{seq: seq, copies: map[uint64]journalCopy{}}
	for scanned := uint64(0); scanned < maxLen; scanned++ {
		if _, err := jr.ReadAt(buf, int64(blk)*bs); err != nil {
			return fmt.Errorf("journal block %d: %w", blk, err)
		}
		if be.Uint32(buf) != jbdMagic || be.Uint32(buf[8:]) != cur.seq {
			break // end of the log
		}
		switch be.Uint32(buf[4:]) {
		case jbdDescriptor:
			end := int(bs)
			if csum {
				end -= 4
			}
			for p := jbdHeaderSize; p+tagBytes <= end; {
				t := buf[p:]
				fsblk := uint64(be.Uint32(t))
				var flags uint32
				if tagBytes == 16 {
					flags = be.Uint32(t[4:])
					if is64 {
						fsblk |= uint64(be.Uint32(t[8:])) << 32
					}
				} else {
					flags = uint32(be.Uint16(t[6:]))
					if is64 {
						fsblk |= uint64(be.Uint32(t[8:])) << 32
					}
				}
				blk = next(blk)
				scanned++
				pb, err := physical(blk)
				if err != nil {
					return err
				}
				if fsblk >= f.blocksCount {
					return &FormatError{Struct: "journal descriptor", Ino: f.journalInum, Offset: -1, Msg: fmt.Sprintf("tag names block %d past the filesystem's %d", fsblk, f.blocksCount)}
				}
				cur.copies[fsblk] = journalCopy{pblk: pb, escaped: flags&jbdTagEscape != 0}
				if len(cur.copies) > jbdMaxTransaction {
					return fmt.Errorf("journal transaction %d holds too many blocks", cur.seq)
				}
				p += tagBytes
				if flags&jbdTagSameUUID == 0 {
					p += 16
				}
				if flags&jbdTagLast != 0 {
					break
				}
			}
		case jbdRevoke:
			used := int(be.Uint32(buf[12:]))
			if used > int(bs) || used < 16 {
				return &FormatError{Struct: "journal revoke block", Ino: f.journalInum, Offset: -1, Msg: fmt.Sprintf("r_count %d", used)}
			}
			rec := 4
			if is64 {
				rec = 8
			}
			for p := 16; p+rec <= used; p += rec {
				var b uint64
				if is64 {
					b = be.Uint64(buf[p:])
				} else {
					b = uint64(be.Uint32(buf[p:]))
				}
				if s, ok := revoked[b]; !ok || seqAfter(cur.seq, s) {
					revoked[b] = cur.seq
				}
			}
		case jbdCommit:
			txns = append(txns, cur)
			cur = journalTxn{seq: cur.seq + 1, copies: map[uint64]journalCopy{}}
		default:
			scanned = maxLen // unknown block type ends the log
			continue
		}
		blk = next(blk)
	}
	if len(txns) == 0 {
		return nil
	}
	ov := &journalOverlay{base: f.raw, bs: bs, blocks: map[uint64]journalCopy{}}
	for _, t := range txns {
		for b, c := range t.copies {
			if s, ok := revoked[b]; ok && !seqAfter(t.seq, s) {
				continue // revoked by this or a later transaction
			}
			ov.blocks[b] = c
		}
	}
	f.r = ov
	// Forget what was read before the replay (the journal's own inode).
	f.itable = itableCache{}
	f.dirs = dirCache{}
	f.warnings = append(f.warnings, fmt.Sprintf("filesystem was not cleanly unmounted: replayed %d committed journal transactions (%d blocks) in memory", len(txns), len(ov.blocks)))
	// Group descriptors may have been journaled too.
	return f.readGroupDescriptors()
}

// seqAfter reports whether transaction a is newer than b (sequence numbers wrap).
func seqAfter(a, b uint32) bool { return int32(a-b) > 0 }
