package vhd

// On-disk layout of Microsoft VHD (Virtual Hard Disk Image Format
// Specification). Numbers are big-endian.

const (
	sectorSize       = 512
	footerLen        = 512
	footerCookie     = "conectix"
	dynamicCookie    = "cxsparse"
	dynamicHeaderLen = 1024
)

// Footer fields: byte offsets.
const (
	ftCookie         = 0  // 8 bytes
	ftFeatures       = 8  // uint32
	ftVersion        = 12 // uint32
	ftDataOffset     = 16 // uint64: dynamic header, all ones for fixed disks
	ftTimestamp      = 24 // uint32: seconds since 2000-01-01 UTC
	ftCreatorApp     = 28 // 4 bytes
	ftCreatorVersion = 32 // uint32
	ftCreatorHostOS  = 36 // uint32
	ftOriginalSize   = 40 // uint64
	ftCurrentSize    = 48 // uint64: virtual size in bytes
	ftGeometry       = 56 // uint16 cylinders, uint8 heads, uint8 sectors per track
	ftDiskType       = 60 // uint32
	ftChecksum       = 64 // uint32
	ftUniqueID       = 68 // 16 bytes
	ftSavedState     = 84 // uint8
)

// Disk types.
const (
	diskFixed        = 2
	diskDynamic      = 3
	diskDifferencing = 4
)

// Dynamic disk header fields: byte offsets.
const (
	dhCookie          = 0  // 8 bytes
	dhDataOffset      = 8  // uint64, unused (all ones)
	dhTableOffset     = 16 // uint64: block allocation table
	dhHeaderVersion   = 24 // uint32
	dhMaxTableEntries = 28 // uint32
	dhBlockSize       = 32 // uint32: bytes of data per block
	dhChecksum        = 36 // uint32
	dhParentUniqueID  = 40 // 16 bytes
	dhParentTimestamp = 56 // uint32
	dhParentName      = 64 // 512 bytes, UTF-16 big-endian, NUL-terminated
	dhParentNameLen   = 512
	dhParentLocators  = 576 // 8 entries of 24 bytes
)

// BAT entries: the sector of a block's bitmap, or unused.
const (
	batEntryLen = 4
	batUnused   = 0xffffffff
)

// Limits.
const (
	minBlockSize   = sectorSize
	maxBlockSize   = 256 << 20
	maxVirtualSize = 1 << 44 // 16 TiB; the format itself stops at 2040 GiB
	bitmapCacheLen = 1 << 20
)
