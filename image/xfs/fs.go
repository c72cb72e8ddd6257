package xfs

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math/bits"
	"os"
	"strings"
	"sync"

	"github.com/ctrlift/ctrlift/vfs"
)

var be = binary.BigEndian

// FormatError reports a malformed on-disk structure: which one, where it
// was read (allocation group, inode, byte offset from the start of the
// filesystem), and what was bad.
type FormatError struct {
	Struct string // "superblock", "inode", "bmbt block", "directory block", ...
	AG     int64  // allocation group, -1 if none or unknown
	Ino    uint64 // inode involved, 0 if none
	Offset int64  // byte offset of the structure, -1 if unknown
	Msg    string // what is wrong, with the bad value
}

func (e *FormatError) Error() string {
	var b strings.Builder
	b.WriteString("xfs: ")
	if e.Ino != 0 {
		fmt.Fprintf(&b, "inode %d: ", e.Ino)
	}
	b.WriteString(e.Struct)
	if e.AG >= 0 {
		fmt.Fprintf(&b, " in AG %d", e.AG)
	}
	if e.Offset >= 0 {
		fmt.Fprintf(&b, " at byte %d", e.Offset)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// ErrUnsupported is wrapped by errors about content this reader will not
// decode (realtime files, metadir or zoned filesystems).
var ErrUnsupported error = vfs.Unsupported("unsupported") // matches errors.ErrUnsupported

// FS is a read-only XFS filesystem. It is safe for concurrent use.
type FS struct {
	r      io.ReaderAt
	size   int64
	closer io.Closer

	blockSize  int64
	blockLog   uint
	sectSize   int64
	inodeSize  int64
	inodeLog   uint
	inoPBLog   uint
	agBlkLog   uint
	agBlocks   uint64
	agCount    uint64
	dBlocks    uint64
	rBlocks    uint64
	rootIno    uint64
	dirBlkSize int64 // directory block: blockSize << sb_dirblklog
	logStart   uint64
	logBlocks  uint64

	v5          bool // version 5 superblock: CRCs, v3 inodes, self-describing metadata
	versionNum  uint16
	features2   uint32
	roCompat    uint32
	incompat    uint32
	logIncompat uint32
	ftype       bool // directory entries carry a file type
	uuid        [16]byte
	metaUUID    [16]byte // what metadata headers carry (sb_meta_uuid with meta_uuid)
	label       string

	logState         LogState
	logTail, logHead uint64
	logTailCycle     uint32
	inoAlign         uint64 // sb_inoalignmt, in blocks

	mu       sync.Mutex
	warnings []string
	crcSeen  map[int64]bool

	inodes inodeCache
	dirs   dirCache

	shareOnce  sync.Once
	shareBound int64 // sharingBound's result
}

// Open opens the filesystem image at path read-only.
func Open(path string) (*FS, error) {
	f, err := os.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	fsys, err := NewReader(f, st.Size())
	if err != nil {
		f.Close()
		return nil, err
	}
	fsys.closer = f
	return fsys, nil
}

// Close closes the file opened by Open; it does nothing for NewReader.
func (f *FS) Close() error {
	if f.closer != nil {
		return f.closer.Close()
	}
	return nil
}

// Options tune NewReaderOptions.
type Options struct {
	// SkipLogReplay reads the last checkpointed state of a filesystem
	// that was not cleanly unmounted, as the on-disk blocks are, without
	// replaying its log: to compare the two states, or to read past a
	// log too damaged to replay. A warning says the log was not replayed.
	SkipLogReplay bool
}

// NewReader reads the filesystem of the given size from r. When the log
// is dirty (the filesystem was not cleanly unmounted) its committed
// transactions are replayed in memory (the image itself is never
// written) and a warning says so.
func NewReader(r io.ReaderAt, size int64) (*FS, error) {
	return NewReaderOptions(r, size, Options{})
}

// NewReaderOptions is NewReader with options.
func NewReaderOptions(r io.ReaderAt, size int64, opt Options) (*FS, error) {
	f := &FS{r: r, size: size}
	if err := f.readSuperblock(); err != nil {
		return nil, err
	}
	f.checkLog(opt.SkipLogReplay)
	return f, nil
}

// Warnings returns conditions found while reading that did not prevent it:
// a dirty log, checksum mismatches, a truncated image.
func (f *FS) Warnings() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.warnings...)
}

func (f *FS) warn(format string, args ...any) {
	f.mu.Lock()
	f.warnings = append(f.warnings, fmt.Sprintf(format, args...))
	f.mu.Unlock()
}

// maxCRCWarnings bounds the checksum warnings kept for one filesystem.
const maxCRCWarnings = 100

// checkCRC verifies the CRC32c of a v5 metadata buffer whose checksum is
// stored little-endian at crcOff, and records a warning on a mismatch.
func (f *FS) checkCRC(buf []byte, crcOff int, what string, ino uint64, off int64) {
	if !f.v5 || crcOff+4 > len(buf) {
		return
	}
	want := binary.LittleEndian.Uint32(buf[crcOff:])
	if got := crc32c(buf, crcOff); got != want {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.crcSeen == nil {
			f.crcSeen = map[int64]bool{}
		}
		if f.crcSeen[off] {
			return
		}
		f.crcSeen[off] = true
		switch n := len(f.crcSeen); {
		case n < maxCRCWarnings:
			where := ""
			if ino != 0 {
				where = fmt.Sprintf("inode %d: ", ino)
			}
			f.warnings = append(f.warnings, fmt.Sprintf("%s%s at byte %d: checksum 0x%08x, computed 0x%08x (data read anyway)", where, what, off, want, got))
		case n == maxCRCWarnings:
			f.warnings = append(f.warnings, "further checksum mismatches not reported")
		}
	}
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crc32c is the XFS checksum of buf with its 4-byte CRC field at crcOff
// taken as zero.
func crc32c(buf []byte, crcOff int) uint32 {
	var zero [4]byte
	c := crc32.Update(0, castagnoli, buf[:crcOff])
	c = crc32.Update(c, castagnoli, zero[:])
	return crc32.Update(c, castagnoli, buf[crcOff+4:])
}

// BlockSize returns the filesystem block size in bytes.
func (f *FS) BlockSize() int64 { return f.blockSize }

// Label returns the volume label.
func (f *FS) Label() string { return f.label }

// UUID returns the filesystem UUID in canonical text form.
func (f *FS) UUID() string { return formatUUID(f.uuid) }

func formatUUID(u [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// Version returns the superblock version, 4 or 5.
func (f *FS) Version() int {
	if f.v5 {
		return 5
	}
	return 4
}

// Size returns the data section's size in bytes according to the superblock.
func (f *FS) Size() int64 { return int64(f.dBlocks) * f.blockSize }

// RootIno is the root directory's inode number.
func (f *FS) RootIno() uint64 { return f.rootIno }

// HasFtype reports whether directory entries record the file type.
func (f *FS) HasFtype() bool { return f.ftype }

// Reflink reports whether blocks may be shared between files.
func (f *FS) Reflink() bool { return f.roCompat&roCompatReflink != 0 }

// Features lists the features the superblock enables, by name.
func (f *FS) Features() []string {
	var out []string
	add := func(ok bool, name string) {
		if ok {
			out = append(out, name)
		}
	}
	add(f.v5, "crc")
	add(f.ftype, "ftype")
	add(f.roCompat&roCompatFinobt != 0, "finobt")
	add(f.roCompat&roCompatRmapbt != 0, "rmapbt")
	add(f.roCompat&roCompatReflink != 0, "reflink")
	add(f.roCompat&roCompatInobtCnt != 0, "inobtcount")
	for _, n := range incompatNames {
		if n.bit != incompatFtype {
			add(f.incompat&n.bit != 0, n.name)
		}
	}
	return out
}

// readAt reads exactly len(p) bytes at off, turning a short read into an
// error that names the range.
func (f *FS) readAt(p []byte, off int64, what string, ino uint64) error {
	if off < 0 || off+int64(len(p)) > f.size || off+int64(len(p)) < off {
		return &FormatError{Struct: what, AG: -1, Ino: ino, Offset: off, Msg: fmt.Sprintf("%d bytes at offset %d lie past the end of the image (%d bytes): truncated image?", len(p), off, f.size)}
	}
	n, err := f.r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("xfs: reading %s at byte %d: %w", what, off, err)
}

// fsbToLinear converts a filesystem block number (AG number in the high
// bits, block within the AG in the low sb_agblklog bits) and a run length
// to a linear block number, checking that the run lies inside one AG and
// inside the filesystem.
func (f *FS) fsbToLinear(fsb, count uint64, what string, ino uint64, at int64) (uint64, error) {
	ag := fsb >> f.agBlkLog
	agbno := fsb & (1<<f.agBlkLog - 1)
	if ag >= f.agCount || agbno >= f.agBlocks || count > f.agBlocks-agbno {
		return 0, &FormatError{Struct: what, AG: int64(min(ag, 1<<62)), Ino: ino, Offset: at,
			Msg: fmt.Sprintf("block %d (AG %d block %d, +%d) is outside the filesystem (%d AGs of %d blocks)", fsb, ag, agbno, count, f.agCount, f.agBlocks)}
	}
	lin := ag*f.agBlocks + agbno
	if lin+count > f.dBlocks {
		return 0, &FormatError{Struct: what, AG: int64(ag), Ino: ino, Offset: at,
			Msg: fmt.Sprintf("block %d (+%d) lies past the end of the filesystem (%d blocks)", fsb, count, f.dBlocks)}
	}
	return lin, nil
}

func (f *FS) readSuperblock() error {
	sbErr := func(off int, format string, args ...any) error {
		return &FormatError{Struct: "superblock", AG: 0, Offset: int64(off), Msg: fmt.Sprintf(format, args...)}
	}
	if f.size < 512 {
		return sbErr(0, "image of %d bytes is too small to hold a superblock", f.size)
	}
	sb := make([]byte, 512)
	if err := f.readAt(sb, 0, "superblock", 0); err != nil {
		return err
	}
	if m := be.Uint32(sb[sbOffMagic:]); m != sbMagic {
		return sbErr(sbOffMagic, "bad magic 0x%08x, not an XFS filesystem", m)
	}
	f.versionNum = be.Uint16(sb[sbOffVersionNum:])
	switch v := f.versionNum & versionNumMask; v {
	case 4:
		if f.versionNum&versionDirV2Bit == 0 {
			return fmt.Errorf("xfs: superblock: version 1 directories: %w", ErrUnsupported)
		}
	case 5:
		f.v5 = true
	default:
		return sbErr(sbOffVersionNum, "superblock version %d (versionnum 0x%04x): only 4 and 5 exist since 2003", v, f.versionNum)
	}

	blockSize := be.Uint32(sb[sbOffBlockSize:])
	blockLog := uint(sb[sbOffBlockLog])
	if blockLog < 9 || blockLog > 16 || blockSize != 1<<blockLog {
		return sbErr(sbOffBlockSize, "bad block size %d (log %d)", blockSize, blockLog)
	}
	f.blockSize, f.blockLog = int64(blockSize), blockLog
	sectSize := be.Uint16(sb[sbOffSectSize:])
	sectLog := uint(sb[sbOffSectLog])
	if sectLog < 9 || sectLog > 15 || uint32(sectSize) != 1<<sectLog || int64(sectSize) > f.blockSize {
		return sbErr(sbOffSectSize, "bad sector size %d (log %d)", sectSize, sectLog)
	}
	f.sectSize = int64(sectSize)
	inodeSize := be.Uint16(sb[sbOffInodeSize:])
	inodeLog := uint(sb[sbOffInodeLog])
	if inodeSize < dinodeMinSize || inodeSize > dinodeMaxSize || uint32(inodeSize) != 1<<inodeLog || int64(inodeSize) > f.blockSize {
		return sbErr(sbOffInodeSize, "bad inode size %d (log %d)", inodeSize, inodeLog)
	}
	f.inodeSize, f.inodeLog = int64(inodeSize), inodeLog
	inoPBLog := uint(sb[sbOffInoPBLog])
	if inoPBLog != blockLog-inodeLog || int64(be.Uint16(sb[sbOffInoPBlock:])) != f.blockSize/f.inodeSize {
		return sbErr(sbOffInoPBlock, "%d inodes per block (log %d), but %d-byte blocks hold %d inodes", be.Uint16(sb[sbOffInoPBlock:]), inoPBLog, f.blockSize, f.blockSize/f.inodeSize)
	}
	f.inoPBLog = inoPBLog

	f.agBlocks = uint64(be.Uint32(sb[sbOffAGBlocks:]))
	f.agCount = uint64(be.Uint32(sb[sbOffAGCount:]))
	f.agBlkLog = uint(sb[sbOffAGBlkLog])
	if f.agBlocks < 5 || f.agBlkLog != uint(bits.Len64(f.agBlocks-1)) {
		return sbErr(sbOffAGBlocks, "bad AG size %d blocks (log %d)", f.agBlocks, f.agBlkLog)
	}
	if f.agBlkLog+f.inoPBLog > 32 {
		return sbErr(sbOffAGBlkLog, "AG block log %d and inodes-per-block log %d leave no room in a 32-bit AG inode number", f.agBlkLog, f.inoPBLog)
	}
	f.dBlocks = be.Uint64(sb[sbOffDBlocks:])
	if f.agCount == 0 || f.dBlocks == 0 || f.dBlocks > f.agCount*f.agBlocks || f.dBlocks <= (f.agCount-1)*f.agBlocks {
		return sbErr(sbOffDBlocks, "%d data blocks do not make %d AGs of %d blocks", f.dBlocks, f.agCount, f.agBlocks)
	}
	if f.dBlocks > 1<<62>>f.blockLog {
		return sbErr(sbOffDBlocks, "absurd block count %d", f.dBlocks)
	}
	f.rBlocks = be.Uint64(sb[sbOffRBlocks:])
	dirBlkLog := uint(sb[sbOffDirBlkLog])
	if blockLog+dirBlkLog > 16 {
		return sbErr(sbOffDirBlkLog, "directory blocks of 2^%d bytes exceed 64 KiB", blockLog+dirBlkLog)
	}
	f.dirBlkSize = f.blockSize << dirBlkLog
	f.logStart = be.Uint64(sb[sbOffLogStart:])
	f.logBlocks = uint64(be.Uint32(sb[sbOffLogBlocks:]))
	f.inoAlign = uint64(be.Uint32(sb[sbOffInoAlignmt:]))
	copy(f.uuid[:], sb[sbOffUUID:sbOffUUID+16])
	f.metaUUID = f.uuid
	f.label = cstring(sb[sbOffFName : sbOffFName+labelMax])
	if f.versionNum&versionMoreBits != 0 || f.v5 {
		f.features2 = be.Uint32(sb[sbOffFeatures2:])
	}
	f.ftype = f.features2&features2Ftype != 0

	if f.v5 {
		// The v5 checksum covers the whole first sector.
		if f.sectSize > int64(len(sb)) {
			sect := make([]byte, f.sectSize)
			if err := f.readAt(sect, 0, "superblock", 0); err != nil {
				return err
			}
			sb = sect
		}
		f.roCompat = be.Uint32(sb[sbOffFeaturesROCompa:])
		f.incompat = be.Uint32(sb[sbOffFeaturesIncompa:])
		f.logIncompat = be.Uint32(sb[sbOffFeaturesLogInc:])
		if f.incompat&incompatFtype != 0 {
			f.ftype = true
		}
		if f.incompat&incompatMetaUUID != 0 {
			copy(f.metaUUID[:], sb[sbOffMetaUUID:sbOffMetaUUID+16])
		}
		for _, n := range incompatNames {
			if f.incompat&n.bit != 0 && incompatSupported&n.bit == 0 {
				return fmt.Errorf("xfs: superblock: %s feature: %w", n.name, ErrUnsupported)
			}
		}
		var known uint32
		for _, n := range incompatNames {
			known |= n.bit
		}
		if unk := f.incompat &^ known; unk != 0 {
			return fmt.Errorf("xfs: superblock: unknown incompatible features 0x%x: %w", unk, ErrUnsupported)
		}
		f.checkCRC(sb[:f.sectSize], sbOffCRC, "superblock", 0, 0)
		if f.incompat&incompatNeedsRepair != 0 {
			f.warn("superblock has the needsrepair flag: xfs_repair was interrupted or is required; the filesystem may be inconsistent")
		}
	}

	f.rootIno = be.Uint64(sb[sbOffRootIno:])
	if _, err := f.inodeOffset(f.rootIno); err != nil {
		return sbErr(sbOffRootIno, "root inode %d: %v", f.rootIno, err)
	}
	if sb[sbOffInProgress] != 0 {
		f.warn("superblock says mkfs did not finish (sb_inprogress set): the filesystem may be incomplete")
	}
	if f.versionNum&versionBorgBit != 0 {
		f.warn("filesystem has ASCII case-insensitive names (version ci): lookups here are case-sensitive")
	}
	if f.rBlocks != 0 {
		f.warn("filesystem has a realtime subvolume (%d blocks on a separate device): realtime files cannot be read", f.rBlocks)
	}
	if need := int64(f.dBlocks) * f.blockSize; need > f.size {
		f.warn("image holds %d bytes but the filesystem claims %d: truncated image, reads past the end will fail", f.size, need)
	}
	return nil
}

func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
