// Package xfs reads XFS filesystems (v4 and v5 superblocks) from an
// io.ReaderAt, read-only and without the kernel.
//
// It is written for forensic export, like package ext4: holes and
// unwritten extents read as zeros, every directory and attribute form is
// decoded, nanosecond and bigtime timestamps and raw (possibly non-UTF-8)
// names are preserved, and every length, offset and pointer read from the
// disk is checked before it is used. Checksums (v5) are verified but a
// mismatch is only reported in Warnings(): the data may still be what the
// investigator needs.
//
// This file holds the on-disk constants and layouts; parsing lives in the
// other files. All XFS fields are big-endian except the CRCs.
package xfs

// Superblock (struct xfs_dsb) at byte 0 of the filesystem.
const (
	sbMagic = 0x58465342 // "XFSB"

	sbOffMagic           = 0
	sbOffBlockSize       = 4
	sbOffDBlocks         = 8
	sbOffRBlocks         = 16
	sbOffUUID            = 32
	sbOffLogStart        = 48
	sbOffRootIno         = 56
	sbOffAGBlocks        = 84
	sbOffAGCount         = 88
	sbOffLogBlocks       = 96
	sbOffVersionNum      = 100
	sbOffSectSize        = 102
	sbOffInodeSize       = 104
	sbOffInoPBlock       = 106
	sbOffFName           = 108
	sbOffBlockLog        = 120
	sbOffSectLog         = 121
	sbOffInodeLog        = 122
	sbOffInoPBLog        = 123
	sbOffAGBlkLog        = 124
	sbOffInProgress      = 126
	sbOffDirBlkLog       = 192
	sbOffLogSectSize     = 194
	sbOffFeatures2       = 200
	sbOffFeaturesCompat  = 208
	sbOffFeaturesROCompa = 212
	sbOffFeaturesIncompa = 216
	sbOffFeaturesLogInc  = 220
	sbOffCRC             = 224
	sbOffMetaUUID        = 248
	sbOffInoAlignmt      = 180
	sbV5Size             = 264 // bytes of the v5 superblock this reader uses
	labelMax             = 12
)

// sb_versionnum bits.
const (
	versionNumMask   = 0x000f
	versionAttrBit   = 0x0010
	versionNlinkBit  = 0x0020
	versionLogV2Bit  = 0x0400
	versionExtFlgBit = 0x1000
	versionDirV2Bit  = 0x2000
	versionBorgBit   = 0x4000 // ASCII case-insensitive names
	versionMoreBits  = 0x8000
)

// sb_features2 bits (v4 and v5).
const (
	features2Ftype = 0x200
)

// v5 read-only compatible features.
const (
	roCompatFinobt   = 1 << 0
	roCompatRmapbt   = 1 << 1
	roCompatReflink  = 1 << 2
	roCompatInobtCnt = 1 << 3
)

// v5 incompatible features: a reader must understand each one that is set.
const (
	incompatFtype       = 1 << 0
	incompatSpinodes    = 1 << 1
	incompatMetaUUID    = 1 << 2
	incompatBigtime     = 1 << 3
	incompatNeedsRepair = 1 << 4
	incompatNrext64     = 1 << 5
	incompatExchRange   = 1 << 6
	incompatParent      = 1 << 7
	incompatMetadir     = 1 << 8
	incompatZoned       = 1 << 9
	incompatZoneGaps    = 1 << 10

	// incompatSupported are the incompatible features this reader handles.
	// exchrange only changes what the log may hold; parent pointers are
	// attributes this reader hides.
	incompatSupported = incompatFtype | incompatSpinodes | incompatMetaUUID |
		incompatBigtime | incompatNeedsRepair | incompatNrext64 |
		incompatExchRange | incompatParent
)

// incompatNames names the incompatible features, for errors and Features().
var incompatNames = []struct {
	bit  uint32
	name string
}{
	{incompatFtype, "ftype"},
	{incompatSpinodes, "sparse inodes"},
	{incompatMetaUUID, "meta_uuid"},
	{incompatBigtime, "bigtime"},
	{incompatNeedsRepair, "needsrepair"},
	{incompatNrext64, "nrext64"},
	{incompatExchRange, "exchrange"},
	{incompatParent, "parent pointers"},
	{incompatMetadir, "metadir (metadata directory tree)"},
	{incompatZoned, "zoned realtime allocator"},
	{incompatZoneGaps, "zone gaps"},
}

// Inode core (struct xfs_dinode).
const (
	inodeMagic = 0x494e // "IN"

	diOffMagic        = 0
	diOffMode         = 2
	diOffVersion      = 4
	diOffFormat       = 5
	diOffOnlink       = 6
	diOffUID          = 8
	diOffGID          = 12
	diOffNlink        = 16
	diOffProjidLo     = 20
	diOffProjidHi     = 22
	diOffBigNextents  = 24 // nrext64: 64-bit data fork extent count
	diOffAtime        = 32
	diOffMtime        = 40
	diOffCtime        = 48
	diOffSize         = 56
	diOffNblocks      = 64
	diOffExtsize      = 72
	diOffNextents     = 76 // nrext64: 32-bit attr fork extent count
	diOffAnextents    = 80
	diOffForkoff      = 82
	diOffAformat      = 83
	diOffFlags        = 90
	diOffGen          = 92
	diOffCRC          = 100
	diOffFlags2       = 120
	diOffCowextsize   = 128
	diOffCrtime       = 144
	diOffIno          = 152
	diOffUUID         = 160
	dinodeCoreSizeV2  = 100 // versions 1 and 2
	dinodeCoreSizeV3  = 176
	dinodeMinSize     = 256
	dinodeMaxSize     = 2048
	maxSymlinkLen     = 1024 // XFS_SYMLINK_MAXLEN
	maxSymlinkMaps    = 3    // XFS_SYMLINK_MAPS
	maxXattrValueSize = 1 << 16
)

// di_flags bits.
const (
	FlagRealtime  = 1 << 0
	FlagPrealloc  = 1 << 1
	FlagImmutable = 1 << 3
	FlagAppend    = 1 << 4
)

// di_flags2 bits.
const (
	Flag2DAX     = 1 << 0
	Flag2Reflink = 1 << 1
	Flag2Bigtime = 1 << 3
	Flag2Nrext64 = 1 << 4
)

// bigtimeEpochOffset converts bigtime seconds (counted from the start of
// the classic 32-bit range, 1901-12-13) to Unix seconds.
const bigtimeEpochOffset = 1 << 31

// ForkFormat is di_format / di_aformat: how a fork's contents are stored.
type ForkFormat uint8

const (
	FormatDev     ForkFormat = 0 // device number (special files)
	FormatLocal   ForkFormat = 1 // contents inside the inode
	FormatExtents ForkFormat = 2 // an array of extent records in the inode
	FormatBtree   ForkFormat = 3 // the root of a B+tree of extents (bmbt)
	FormatUUID    ForkFormat = 4 // defined long ago, never used
)

func (f ForkFormat) String() string {
	switch f {
	case FormatDev:
		return "dev"
	case FormatLocal:
		return "local"
	case FormatExtents:
		return "extents"
	case FormatBtree:
		return "btree"
	case FormatUUID:
		return "uuid"
	}
	return "unknown-format"
}

// Extent records (struct xfs_bmbt_rec): 128 bits, big-endian.
const (
	bmbtRecSize       = 16
	bmbtKeySize       = 8
	bmbtPtrSize       = 8
	bmdrHeaderSize    = 4 // level, numrecs of the root inside the inode
	bmbtStartoffBits  = 54
	bmbtBlockcntBits  = 21
	maxFileOff        = 1<<bmbtStartoffBits + 1<<bmbtBlockcntBits - 1 // XFS_MAX_FILEOFF
	bmapMagic         = 0x424d4150                                    // "BMAP"
	bmapCRCMagic      = 0x424d4133                                    // "BMA3"
	btreeLBlockLen    = 24                                            // long-format btree block header, v4
	btreeLBlockCRCLen = 72                                            // with the v5 fields
	btreeLOffBlkno    = 24
	btreeLOffUUID     = 40
	btreeLOffOwner    = 56
	btreeLOffCRC      = 64
	// maxBmbtLevels bounds the height of a bmbt: the kernel's computed
	// maximum for 2^48 extents in 1 KiB blocks is well under this.
	maxBmbtLevels = 12
)

// Directory and attribute B+tree (dabtree) blocks.
const (
	daNodeMagic     = 0xfebe
	da3NodeMagic    = 0x3ebe
	attrLeafMagic   = 0xfbee
	attr3LeafMagic  = 0x3bee
	dir2Leaf1Magic  = 0xd2f1
	dir3Leaf1Magic  = 0x3df1
	dir2LeafNMagic  = 0xd2ff
	dir3LeafNMagic  = 0x3dff
	daBlkinfoSize   = 12 // forw, back, magic, pad
	da3BlkinfoSize  = 56 // plus crc, blkno, lsn, uuid, owner
	daOffMagic      = 8
	da3OffCRC       = 12
	da3OffBlkno     = 16
	da3OffUUID      = 32
	da3OffOwner     = 48
	daNodeHdrSize   = 16 // blkinfo, count, level
	da3NodeHdrSize  = 64 // da3 blkinfo, count, level, pad
	daNodeEntrySize = 8  // hashval, before
	maxDaDepth      = 5  // XFS_DA_NODE_MAXDEPTH
)

// Directory data blocks (v2 directories; v3 add a header with CRCs).
const (
	dir2BlockMagic = 0x58443242 // "XD2B": single-block directory
	dir2DataMagic  = 0x58443244 // "XD2D": data block of a bigger one
	dir2FreeMagic  = 0x58443246 // "XD2F"
	dir3BlockMagic = 0x58444233 // "XDB3"
	dir3DataMagic  = 0x58444433 // "XDD3"
	dir3FreeMagic  = 0x58444633 // "XDF3"

	dir2DataHdrSize = 16 // magic, bestfree[3]
	dir3DataHdrSize = 64 // dir3_blk_hdr (48), bestfree[3], pad
	dir3OffCRC      = 4
	dir3OffBlkno    = 8
	dir3OffUUID     = 24
	dir3OffOwner    = 40
	dirFreeTag      = 0xffff
	dirBlockTail    = 8 // count, stale at the end of a single-block directory
	dirLeafEntSize  = 8
	dirAlign        = 8
	// dirSpaceSize is the size of each of the three logical spaces of a
	// directory (data, leaf, free index): 32 GiB.
	dirSpaceSize = 1 << 35
	maxNameLen   = 255
)

// Directory entry file types (with the ftype feature).
type FileType uint8

const (
	FileTypeUnknown  FileType = 0
	FileTypeRegular  FileType = 1
	FileTypeDir      FileType = 2
	FileTypeChar     FileType = 3
	FileTypeBlock    FileType = 4
	FileTypeFIFO     FileType = 5
	FileTypeSocket   FileType = 6
	FileTypeSymlink  FileType = 7
	FileTypeWhiteout FileType = 8
)

func (t FileType) String() string {
	switch t {
	case FileTypeUnknown:
		return "unknown"
	case FileTypeRegular:
		return "regular"
	case FileTypeDir:
		return "dir"
	case FileTypeChar:
		return "char"
	case FileTypeBlock:
		return "block"
	case FileTypeFIFO:
		return "fifo"
	case FileTypeSocket:
		return "socket"
	case FileTypeSymlink:
		return "symlink"
	case FileTypeWhiteout:
		return "whiteout"
	}
	return "invalid-ftype"
}

// DirForm is how a directory is stored.
type DirForm int

const (
	DirShortform DirForm = iota // entries inside the inode
	DirBlock                    // one directory block with its own hash index
	DirLeaf                     // data blocks and one leaf (hash) block
	DirNode                     // data blocks, a dabtree of leaves, free index blocks
	DirBtree                    // a node directory whose extent map is a bmbt
)

func (d DirForm) String() string {
	switch d {
	case DirShortform:
		return "shortform"
	case DirBlock:
		return "block"
	case DirLeaf:
		return "leaf"
	case DirNode:
		return "node"
	case DirBtree:
		return "btree"
	}
	return "unknown-dir-form"
}

// AttrForm is how an inode's extended attributes are stored.
type AttrForm int

const (
	AttrNone      AttrForm = iota // no attribute fork
	AttrShortform                 // inside the inode
	AttrLeaf                      // one leaf block
	AttrNode                      // a dabtree of leaf blocks
	AttrBtree                     // a dabtree whose extent map is a bmbt
)

func (a AttrForm) String() string {
	switch a {
	case AttrNone:
		return "none"
	case AttrShortform:
		return "shortform"
	case AttrLeaf:
		return "leaf"
	case AttrNode:
		return "node"
	case AttrBtree:
		return "btree"
	}
	return "unknown-attr-form"
}

// Extended attributes.
const (
	attrLocal      = 1 << 0
	attrRoot       = 1 << 1 // trusted.
	attrSecure     = 1 << 2 // security.
	attrParent     = 1 << 3 // parent pointer: filesystem metadata, hidden
	attrIncomplete = 1 << 7 // being created or removed: not an attribute yet

	attrSFHdrSize      = 4 // totsize, count, pad
	attrSFEntHdr       = 3 // namelen, valuelen, flags
	attrLeafHdrSize    = 32
	attr3LeafHdrSize   = 80
	attrLeafEntrySize  = 8          // hashval, nameidx, flags, pad
	attrLocalNameHdr   = 3          // valuelen(2), namelen(1)
	attrRemoteNameHdr  = 9          // valueblk(4), valuelen(4), namelen(1)
	attrRmtMagic       = 0x5841524d // "XARM"
	attrRmtHdrSize     = 56
	rmtOffOffset       = 4
	rmtOffBytes        = 8
	rmtOffCRC          = 12
	rmtOffUUID         = 16
	rmtOffOwner        = 32
	rmtOffBlkno        = 40
	symlinkMagic       = 0x58534c4d // "XSLM"
	symlinkHdrSize     = 56
	aclFileName        = "SGI_ACL_FILE"
	aclDefaultName     = "SGI_ACL_DEFAULT"
	aclEntrySize       = 12 // tag, id, perm, pad (all big-endian)
	aclMaxEntriesV4    = 25
	aclXattrVersion    = 2
	aclUser            = 0x02
	aclGroup           = 0x08
	aclUndefinedID     = 0xFFFFFFFF
	maxXattrTotalBytes = 16 << 20 // names and values of one inode
)

// Log (journal) records.
const (
	logHeaderMagic  = 0xFEEDbabe
	logBBSize       = 512 // the log is addressed in 512-byte basic blocks
	logCycleSize    = 32 << 10
	logOffCycle     = 4
	logOffVersion   = 8
	logOffLen       = 12
	logOffLSN       = 16
	logOffTailLSN   = 24
	logOffCRC       = 32
	logOffNumLogops = 40
	logOffCycleData = 44  // h_cycle_data[64]: the first word of each data block
	logOffFmt       = 300 // h_fmt: the byte order of the host that wrote the record
	logOffFSUUID    = 304
	logOffSize      = 320 // h_size, after h_cycle_data[64], h_fmt, h_fs_uuid
	logOpHdrSize    = 12
	logOpOffFlags   = 9
	logUnmountTrans = 0x20
	// logMaxRecordBBs bounds the backwards search for the last record
	// header: 8 in-core logs of at most 256 KiB each.
	logMaxRecordBBs = 8 * (256 << 10) / logBBSize
)

// File type bits of di_mode (POSIX S_IF* values).
const (
	typeMask    = 0o170000
	typeSocket  = 0o140000
	typeSymlink = 0o120000
	typeRegular = 0o100000
	typeBlock   = 0o060000
	typeDir     = 0o040000
	typeChar    = 0o020000
	typeFIFO    = 0o010000
)
