// Package ext4 reads ext2, ext3 and ext4 filesystems from an io.ReaderAt,
// read-only and without the kernel.
//
// It is written for forensic export: holes read as zeros, inline data,
// every xattr namespace, nanosecond and extended-epoch timestamps and raw
// (possibly non-UTF-8) names are preserved, and every length or offset read
// from the disk is checked before it is used.
//
// This file holds the on-disk constants and layouts; parsing lives in the
// other files.
package ext4

// Well-known inode numbers.
const (
	RootIno    = 2
	journalIno = 8
)

const (
	superblockOffset = 1024
	superblockSize   = 1024
	superMagic       = 0xEF53
)

// Superblock field offsets.
const (
	sbInodesCount     = 0x00
	sbBlocksCountLo   = 0x04
	sbFirstDataBlock  = 0x14
	sbLogBlockSize    = 0x18
	sbLogClusterSize  = 0x1C
	sbBlocksPerGroup  = 0x20
	sbInodesPerGroup  = 0x28
	sbMagic           = 0x38
	sbState           = 0x3A
	sbRevLevel        = 0x4C
	sbFirstIno        = 0x54
	sbInodeSize       = 0x58
	sbFeatureCompat   = 0x5C
	sbFeatureIncompat = 0x60
	sbFeatureROCompat = 0x64
	sbUUID            = 0x68
	sbVolumeName      = 0x78
	sbLastMounted     = 0x88
	sbJournalInum     = 0xE0
	sbDescSize        = 0xFE
	sbFirstMetaBg     = 0x104
	sbBlocksCountHi   = 0x150
)

// Compatible features (informational only).
const (
	compatHasJournal = 0x4
	compatExtAttr    = 0x8
	compatDirIndex   = 0x20
	compatSparseSup2 = 0x200
)

// Incompatible features: a reader must understand each one that is set.
const (
	incompatCompression = 0x1
	incompatFiletype    = 0x2
	incompatRecover     = 0x4
	incompatJournalDev  = 0x8
	incompatMetaBg      = 0x10
	incompatExtents     = 0x40
	incompat64Bit       = 0x80
	incompatMMP         = 0x100
	incompatFlexBg      = 0x200
	incompatEAInode     = 0x400
	incompatDirData     = 0x1000
	incompatCsumSeed    = 0x2000
	incompatLargeDir    = 0x4000
	incompatInlineData  = 0x8000
	incompatEncrypt     = 0x10000
	incompatCasefold    = 0x20000

	// incompatSupported are the incompatible features this reader handles.
	incompatSupported = incompatFiletype | incompatRecover | incompatMetaBg |
		incompatExtents | incompat64Bit | incompatMMP | incompatFlexBg |
		incompatEAInode | incompatCsumSeed | incompatLargeDir |
		incompatInlineData | incompatEncrypt | incompatCasefold
)

// Read-only compatible features that change how data is read.
const (
	roCompatSparseSuper = 0x1
	roCompatHugeFile    = 0x8
	roCompatBigalloc    = 0x200
)

// Group descriptor layout.
const (
	gdInodeTableLo = 0x08
	gdInodeTableHi = 0x28
	gdSizeMin      = 32
	gdSize64       = 64
)

// Inode field offsets.
const (
	inMode        = 0x00
	inUIDLo       = 0x02
	inSizeLo      = 0x04
	inAtime       = 0x08
	inCtime       = 0x0C
	inMtime       = 0x10
	inGIDLo       = 0x18
	inLinksCount  = 0x1A
	inBlocksLo    = 0x1C
	inFlags       = 0x20
	inBlock       = 0x28 // i_block[15]: extent root, block map, inline data or symlink
	inGeneration  = 0x64
	inFileACLLo   = 0x68
	inSizeHigh    = 0x6C
	inBlocksHigh  = 0x74
	inFileACLHigh = 0x76
	inUIDHigh     = 0x78
	inGIDHigh     = 0x7A
	inExtraIsize  = 0x80
	inCtimeExtra  = 0x84
	inMtimeExtra  = 0x88
	inAtimeExtra  = 0x8C
	inCrtime      = 0x90
	inCrtimeExtra = 0x94

	goodOldInodeSize = 128
	iBlockSize       = 60
)

// Inode flags (i_flags) that change how an inode is read.
const (
	FlagCompr      = 0x4
	FlagIndex      = 0x1000
	FlagEncrypt    = 0x800
	FlagHugeFile   = 0x40000
	FlagExtents    = 0x80000
	FlagEAInode    = 0x200000
	FlagInlineData = 0x10000000
)

// File type bits of i_mode (same values as POSIX S_IF*).
const (
	TypeMask    = 0xF000
	TypeSocket  = 0xC000
	TypeSymlink = 0xA000
	TypeRegular = 0x8000
	TypeBlock   = 0x6000
	TypeDir     = 0x4000
	TypeChar    = 0x2000
	TypeFIFO    = 0x1000
)

// Directory entry file types (with the filetype feature).
const (
	ftUnknown = 0
	ftRegular = 1
	ftDir     = 2
	ftChrdev  = 3
	ftBlkdev  = 4
	ftFifo    = 5
	ftSock    = 6
	ftSymlink = 7
)

// Extent tree layout.
const (
	extentMagic     = 0xF30A
	extentHdrSize   = 12
	extentEntrySize = 12
	extentMaxDepth  = 5     // the kernel's EXT4_MAX_EXTENT_DEPTH
	extentInitMax   = 32768 // ee_len above this marks an uninitialized extent
)

// Extended attribute layout.
const (
	xattrMagic       = 0xEA020000
	xattrBlockHdr    = 32
	xattrEntryHdr    = 16
	xattrIdxUser     = 1
	xattrIdxACLAcc   = 2
	xattrIdxACLDef   = 3
	xattrIdxTrusted  = 4
	xattrIdxSecurity = 6
	xattrIdxSystem   = 7
	xattrIdxRichACL  = 8
)

// POSIX ACL encodings: ext4 stores a compact form; getxattr returns the
// generic xattr form, which is what tar and manifests carry.
const (
	aclExt4Version  = 1
	aclXattrVersion = 2
	aclUserObj      = 0x01
	aclUser         = 0x02
	aclGroupObj     = 0x04
	aclGroup        = 0x08
	aclMask         = 0x10
	aclOther        = 0x20
	aclUndefinedID  = 0xFFFFFFFF
)

// Journal (jbd2) layout; all fields big-endian.
const (
	jbdMagic          = 0xC03B3998
	jbdDescriptor     = 1
	jbdCommit         = 2
	jbdSuperV1        = 3
	jbdSuperV2        = 4
	jbdRevoke         = 5
	jbdFeatRevoke     = 0x1
	jbdFeat64Bit      = 0x2
	jbdFeatAsync      = 0x4
	jbdFeatCsumV2     = 0x8
	jbdFeatCsumV3     = 0x10
	jbdTagEscape      = 0x1
	jbdTagSameUUID    = 0x2
	jbdTagLast        = 0x8
	jbdHeaderSize     = 12
	jbdMaxTransaction = 1 << 20
)
