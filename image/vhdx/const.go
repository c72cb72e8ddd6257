package vhdx

// On-disk layout of Microsoft VHDX ([MS-VHDX] v20160714). Numbers are
// little-endian; GUIDs are stored in Microsoft's mixed-endian layout.

const (
	fileIdentifier = "vhdxfile"
	headerSig      = "head"
	regionSig      = "regi"
	metadataSig    = "metadata"

	kib = 1 << 10
	mib = 1 << 20
)

// The header section: file identifier, two headers, two region tables.
const (
	header1At      = 64 * kib
	header2At      = 128 * kib
	headerLen      = 4 * kib // checksummed length of a header
	regionTable1At = 192 * kib
	regionTable2At = 256 * kib
	regionTableLen = 64 * kib
	headerSection  = 1 * mib // nothing else may be placed before this
)

// Header fields: byte offsets.
const (
	hdSignature     = 0  // "head"
	hdChecksum      = 4  // uint32 CRC-32C of the 4 KiB header, this field zero
	hdSequence      = 8  // uint64: the valid header with the larger one is current
	hdFileWriteGUID = 16 // GUID
	hdDataWriteGUID = 32 // GUID
	hdLogGUID       = 48 // GUID: non-zero while the log holds entries to replay
	hdLogVersion    = 64 // uint16
	hdVersion       = 66 // uint16: 1
	hdLogLength     = 68 // uint32
	hdLogOffset     = 72 // uint64
	formatVersion   = 1
)

// Region table.
const (
	rtSignature     = 0  // "regi"
	rtChecksum      = 4  // uint32 CRC-32C of the 64 KiB table, this field zero
	rtEntryCount    = 8  // uint32
	rtEntries       = 16 // entries start
	rtEntryLen      = 32
	rtEntryGUID     = 0  // GUID
	rtEntryOffset   = 16 // uint64, 1 MiB aligned
	rtEntryLength   = 24 // uint32, multiple of 1 MiB
	rtEntryRequired = 28 // uint32, bit 0
	maxRegions      = 2047
)

// Metadata table at the start of the metadata region.
const (
	mtSignature   = 0  // "metadata"
	mtEntryCount  = 10 // uint16
	mtEntries     = 32
	mtEntryLen    = 32
	mtEntryID     = 0  // GUID
	mtEntryOffset = 16 // uint32, from the start of the region, at least 64 KiB
	mtEntryLength = 20 // uint32
	mtEntryFlags  = 24 // uint32
	mtTableLen    = 64 * kib
	maxMetadata   = 2047

	metaIsRequired = 1 << 2
)

// File parameters flags.
const (
	leaveBlocksAllocated = 1 << 0 // a fixed disk
	hasParent            = 1 << 1 // a differencing disk
)

// BAT entries: state in bits 0-2, file offset in MiB in bits 20-63.
const (
	batEntryLen    = 8
	batStateMask   = 7
	batOffsetShift = 20

	blockNotPresent       = 0
	blockUndefined        = 1
	blockZero             = 2
	blockUnmapped         = 3
	blockFullyPresent     = 6
	blockPartiallyPresent = 7
)

// Parent locator: header, then key/value entries; UTF-16LE strings.
const (
	plKeyValueCount = 18 // uint16
	plEntries       = 20
	plEntryLen      = 12 // key offset u32, value offset u32, key length u16, value length u16
)

// Limits ([MS-VHDX] 2.6.2).
const (
	minBlockSize          = 1 * mib
	maxBlockSize          = 256 * mib
	maxVirtualSize        = 64 << 40
	sectorsPerBitmapBlock = 1 << 23 // a 1 MiB sector bitmap block maps 2^23 sectors
)

// GUIDs of the regions and metadata items read here.
var (
	guidBATRegion       = mustGUID("2DC27766-F623-4200-9D64-115E9BFD4A08")
	guidMetadataRegion  = mustGUID("8B7CA206-4790-4B9A-B8FE-575F050F886E")
	guidFileParameters  = mustGUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
	guidVirtualDiskSize = mustGUID("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
	guidLogicalSector   = mustGUID("8141BF1D-A96F-4709-BA47-F233A8FAAB5F")
	guidPhysicalSector  = mustGUID("CDA348C7-445D-4471-9CC9-E9885251C556")
	guidVirtualDiskID   = mustGUID("BECA12AB-B2E6-4523-93EF-C309E000C746")
	guidParentLocator   = mustGUID("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C")
)
