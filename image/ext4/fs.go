package ext4

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/ctrlift/ctrlift/vfs"
)

// FormatError reports a malformed on-disk structure: which one, where it
// was read (byte offset from the start of the filesystem), and what was bad.
type FormatError struct {
	Struct string // "superblock", "inode", "extent node", "directory block", ...
	Ino    uint32 // inode involved, 0 if none
	Offset int64  // byte offset of the structure, -1 if unknown
	Msg    string // what is wrong, with the bad value
}

func (e *FormatError) Error() string {
	var b strings.Builder
	b.WriteString("ext4: ")
	if e.Ino != 0 {
		fmt.Fprintf(&b, "inode %d: ", e.Ino)
	}
	b.WriteString(e.Struct)
	if e.Offset >= 0 {
		fmt.Fprintf(&b, " at byte %d", e.Offset)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// ErrUnsupported is wrapped by errors about content this reader will not
// decode (compressed or encrypted files).
var ErrUnsupported error = vfs.Unsupported("unsupported") // matches errors.ErrUnsupported

// FS is a read-only ext2/3/4 filesystem. It is safe for concurrent use.
type FS struct {
	r      io.ReaderAt // the filesystem, with the journal replayed over it when needed
	raw    io.ReaderAt // the filesystem as stored
	size   int64
	closer io.Closer

	blockSize      int64
	blocksCount    uint64
	firstDataBlock uint64
	blocksPerGroup uint64
	inodesPerGroup uint32
	inodesCount    uint32
	inodeSize      int64
	groupCount     uint64
	descSize       int64
	inodeTables    []uint64 // first block of each group's inode table

	compat, incompat, roCompat uint32
	uuid                       [16]byte
	label                      string
	lastMounted                string
	journalInum                uint32
	warnings                   []string

	dirs    dirCache
	itable  itableCache
	dirBufs sync.Pool // *[]byte of one block, for reading directories
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
	// SkipJournal reads the last checkpointed state of a filesystem that
	// needs recovery, as the on-disk blocks are, without replaying its
	// journal: to compare the two states, or to read past a journal
	// too damaged to replay. A warning says the journal was not replayed.
	SkipJournal bool
}

// NewReader reads the filesystem of the given size from r. When the
// filesystem was not cleanly unmounted its journal is replayed in memory
// (the image itself is never written) and a warning says so.
func NewReader(r io.ReaderAt, size int64) (*FS, error) {
	return NewReaderOptions(r, size, Options{})
}

// NewReaderOptions is NewReader with options.
func NewReaderOptions(r io.ReaderAt, size int64, opt Options) (*FS, error) {
	f := &FS{r: r, raw: r, size: size}
	f.dirBufs.New = func() any { return new([]byte) }
	if err := f.readSuperblock(); err != nil {
		return nil, err
	}
	if err := f.readGroupDescriptors(); err != nil {
		return nil, err
	}
	switch {
	case f.incompat&incompatRecover != 0 && opt.SkipJournal:
		f.warnings = append(f.warnings, "filesystem needs journal recovery; the journal was not replayed (as asked): reading the last checkpointed state")
	case f.incompat&incompatRecover != 0:
		if err := f.replayJournal(); err != nil {
			f.warnings = append(f.warnings, fmt.Sprintf("filesystem needs journal recovery and the journal could not be replayed (%v): reading the last checkpointed state; recent changes may be missing", err))
		}
	}
	return f, nil
}

// Warnings returns conditions found while opening that did not prevent
// reading, such as an unreplayed journal.
func (f *FS) Warnings() []string { return append([]string(nil), f.warnings...) }

// BlockSize returns the filesystem block size in bytes.
func (f *FS) BlockSize() int64 { return f.blockSize }

// Label returns the volume label.
func (f *FS) Label() string { return f.label }

// UUID returns the filesystem UUID in canonical text form.
func (f *FS) UUID() string {
	u := f.uuid
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// Size returns the filesystem size in bytes according to the superblock.
func (f *FS) Size() int64 { return int64(f.blocksCount) * f.blockSize }

// readAt reads exactly len(p) bytes at off from the (journal-replayed)
// filesystem, turning a short read into an error that names the range.
func (f *FS) readAt(p []byte, off int64, what string, ino uint32) error {
	if off < 0 || off+int64(len(p)) > f.size || off+int64(len(p)) < off {
		return &FormatError{Struct: what, Ino: ino, Offset: off, Msg: fmt.Sprintf("%d bytes at offset %d lie past the end of the image (%d bytes): truncated image?", len(p), off, f.size)}
	}
	n, err := f.r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("ext4: reading %s at byte %d: %w", what, off, err)
}

// checkBlock makes sure a block number read from disk names a block of
// this filesystem and of the image.
func (f *FS) checkBlock(blk uint64, count uint64, what string, ino uint32, at int64) error {
	if blk >= f.blocksCount || count > f.blocksCount-blk {
		return &FormatError{Struct: what, Ino: ino, Offset: at, Msg: fmt.Sprintf("block %d (+%d) is outside the filesystem (%d blocks)", blk, count, f.blocksCount)}
	}
	return nil
}

func (f *FS) readSuperblock() error {
	var sb [superblockSize]byte
	if f.size < superblockOffset+superblockSize {
		return &FormatError{Struct: "superblock", Offset: superblockOffset, Msg: fmt.Sprintf("image of %d bytes is too small to hold a superblock", f.size)}
	}
	if err := f.readAt(sb[:], superblockOffset, "superblock", 0); err != nil {
		return err
	}
	le := binary.LittleEndian
	if m := le.Uint16(sb[sbMagic:]); m != superMagic {
		return &FormatError{Struct: "superblock", Offset: superblockOffset + sbMagic, Msg: fmt.Sprintf("bad magic 0x%04x, not an ext2/3/4 filesystem", m)}
	}
	bad := func(field string, off int, val any) error {
		return &FormatError{Struct: "superblock", Offset: superblockOffset + int64(off), Msg: fmt.Sprintf("bad %s %v", field, val)}
	}
	logBS := le.Uint32(sb[sbLogBlockSize:])
	if logBS > 6 { // 1 KiB << 6 = 64 KiB, the largest block size ext4 knows
		return bad("log block size", sbLogBlockSize, logBS)
	}
	f.blockSize = 1024 << logBS
	f.compat = le.Uint32(sb[sbFeatureCompat:])
	f.incompat = le.Uint32(sb[sbFeatureIncompat:])
	f.roCompat = le.Uint32(sb[sbFeatureROCompat:])
	if f.incompat&incompatJournalDev != 0 {
		return &FormatError{Struct: "superblock", Offset: superblockOffset + sbFeatureIncompat, Msg: "this is an external journal device, not a filesystem"}
	}
	if f.incompat&incompatCompression != 0 {
		return fmt.Errorf("ext4: superblock: compression feature: %w", ErrUnsupported)
	}
	if f.incompat&incompatDirData != 0 {
		return fmt.Errorf("ext4: superblock: dirdata (Lustre) feature: %w", ErrUnsupported)
	}
	if unk := f.incompat &^ incompatSupported; unk != 0 {
		return fmt.Errorf("ext4: superblock: unknown incompatible features 0x%x: %w", unk, ErrUnsupported)
	}
	f.blocksCount = uint64(le.Uint32(sb[sbBlocksCountLo:]))
	if f.incompat&incompat64Bit != 0 {
		f.blocksCount |= uint64(le.Uint32(sb[sbBlocksCountHi:])) << 32
	}
	if f.blocksCount == 0 {
		return bad("block count", sbBlocksCountLo, 0)
	}
	f.firstDataBlock = uint64(le.Uint32(sb[sbFirstDataBlock:]))
	if f.firstDataBlock >= f.blocksCount {
		return bad("first data block", sbFirstDataBlock, f.firstDataBlock)
	}
	f.blocksPerGroup = uint64(le.Uint32(sb[sbBlocksPerGroup:]))
	// A block bitmap covers blockSize*8 allocation units: blocks, or
	// clusters of several blocks with bigalloc.
	perCluster := uint64(1)
	if f.roCompat&roCompatBigalloc != 0 {
		logCluster := le.Uint32(sb[sbLogClusterSize:])
		if logCluster < logBS || logCluster > logBS+16 {
			return bad("log cluster size", sbLogClusterSize, logCluster)
		}
		perCluster = 1 << (logCluster - logBS)
	}
	if f.blocksPerGroup == 0 || f.blocksPerGroup > uint64(f.blockSize)*8*perCluster {
		return bad("blocks per group", sbBlocksPerGroup, f.blocksPerGroup)
	}
	f.inodesPerGroup = le.Uint32(sb[sbInodesPerGroup:])
	if f.inodesPerGroup == 0 || int64(f.inodesPerGroup) > f.blockSize*8 {
		return bad("inodes per group", sbInodesPerGroup, f.inodesPerGroup)
	}
	f.inodesCount = le.Uint32(sb[sbInodesCount:])
	f.inodeSize = goodOldInodeSize
	if le.Uint32(sb[sbRevLevel:]) >= 1 {
		f.inodeSize = int64(le.Uint16(sb[sbInodeSize:]))
		if f.inodeSize < goodOldInodeSize || f.inodeSize > f.blockSize || f.inodeSize&(f.inodeSize-1) != 0 {
			return bad("inode size", sbInodeSize, f.inodeSize)
		}
	}
	f.groupCount = (f.blocksCount - f.firstDataBlock + f.blocksPerGroup - 1) / f.blocksPerGroup
	if want := (uint64(f.inodesCount) + uint64(f.inodesPerGroup) - 1) / uint64(f.inodesPerGroup); want != f.groupCount {
		return &FormatError{Struct: "superblock", Offset: superblockOffset, Msg: fmt.Sprintf("inode count %d / %d per group gives %d groups but block count %d gives %d", f.inodesCount, f.inodesPerGroup, want, f.blocksCount, f.groupCount)}
	}
	f.descSize = gdSizeMin
	if f.incompat&incompat64Bit != 0 {
		f.descSize = int64(le.Uint16(sb[sbDescSize:]))
		if f.descSize < gdSize64 || f.descSize > 1024 || f.descSize&(f.descSize-1) != 0 {
			return bad("group descriptor size", sbDescSize, f.descSize)
		}
	}
	copy(f.uuid[:], sb[sbUUID:sbUUID+16])
	f.label = cstring(sb[sbVolumeName : sbVolumeName+16])
	f.lastMounted = cstring(sb[sbLastMounted : sbLastMounted+64])
	f.journalInum = le.Uint32(sb[sbJournalInum:])
	if f.incompat&incompatEncrypt != 0 {
		f.warnings = append(f.warnings, "filesystem has encryption enabled: encrypted files and directories cannot be read")
	}
	if int64(f.blocksCount)*f.blockSize > f.size {
		f.warnings = append(f.warnings, fmt.Sprintf("image holds %d bytes but the filesystem claims %d: truncated image, reads past the end will fail", f.size, int64(f.blocksCount)*f.blockSize))
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

// hasSuper reports whether block group g holds a superblock backup (and so
// a copy of the group descriptors, which shifts a meta_bg descriptor block).
func (f *FS) hasSuper(g uint64) bool {
	if g <= 1 || f.roCompat&roCompatSparseSuper == 0 {
		return true
	}
	for _, base := range []uint64{3, 5, 7} {
		n := base
		for n < g {
			n *= base
		}
		if n == g {
			return true
		}
	}
	return false
}

func (f *FS) readGroupDescriptors() error {
	perBlock := uint64(f.blockSize / f.descSize)
	gdtBytes := f.groupCount * uint64(f.descSize)
	if gdtBytes > uint64(f.size) {
		return &FormatError{Struct: "group descriptors", Offset: -1, Msg: fmt.Sprintf("%d groups need %d bytes of descriptors, more than the image holds", f.groupCount, gdtBytes)}
	}
	f.inodeTables = make([]uint64, f.groupCount)
	firstMetaBg := uint64(0)
	metaBg := f.incompat&incompatMetaBg != 0
	if metaBg {
		var b [4]byte
		if err := f.readAt(b[:], superblockOffset+sbFirstMetaBg, "superblock", 0); err != nil {
			return err
		}
		firstMetaBg = uint64(binary.LittleEndian.Uint32(b[:]))
	}
	buf := make([]byte, f.blockSize)
	le := binary.LittleEndian
	for g := uint64(0); g < f.groupCount; g += perBlock {
		descBlock := g / perBlock
		var blk uint64
		if !metaBg || descBlock < firstMetaBg {
			blk = f.firstDataBlock + 1 + descBlock
		} else {
			first := descBlock * perBlock // first group of this meta block group
			blk = f.firstDataBlock + first*f.blocksPerGroup
			if f.hasSuper(first) {
				blk++
			}
		}
		if err := f.checkBlock(blk, 1, "group descriptor block", 0, -1); err != nil {
			return err
		}
		off := int64(blk) * f.blockSize
		if err := f.readAt(buf, off, "group descriptor block", 0); err != nil {
			return err
		}
		for i := uint64(0); i < perBlock && g+i < f.groupCount; i++ {
			d := buf[int64(i)*f.descSize:]
			t := uint64(le.Uint32(d[gdInodeTableLo:]))
			if f.descSize >= gdSize64 {
				t |= uint64(le.Uint32(d[gdInodeTableHi:])) << 32
			}
			tableBlocks := (uint64(f.inodesPerGroup)*uint64(f.inodeSize) + uint64(f.blockSize) - 1) / uint64(f.blockSize)
			if err := f.checkBlock(t, tableBlocks, fmt.Sprintf("group descriptor %d inode table", g+i), 0, off+int64(i)*f.descSize+gdInodeTableLo); err != nil {
				return err
			}
			f.inodeTables[g+i] = t
		}
	}
	return nil
}
