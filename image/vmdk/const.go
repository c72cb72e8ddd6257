package vmdk

// On-disk layout of VMware VMDK hosted sparse extents and descriptors
// (VMware Virtual Disk Format 5.0). Numbers are little-endian.

const (
	sectorSize      = 512
	sparseMagic     = "KDMV" // hosted sparse extent
	cowdMagic       = "COWD" // ESX sparse extent (VMFSSPARSE): not supported
	descriptorMagic = "# Disk DescriptorFile"
)

// Sparse extent header fields: byte offsets. Sizes and offsets are in
// sectors.
const (
	hdrMagic             = 0  // uint32
	hdrVersion           = 4  // uint32: 1, 2 or 3
	hdrFlags             = 8  // uint32
	hdrCapacity          = 12 // uint64: sectors of guest data in this extent
	hdrGrainSize         = 20 // uint64: sectors per grain
	hdrDescriptorOffset  = 28 // uint64
	hdrDescriptorSize    = 36 // uint64
	hdrNumGTEsPerGT      = 44 // uint32
	hdrRGDOffset         = 48 // uint64: redundant grain directory
	hdrGDOffset          = 56 // uint64: grain directory (gdAtEnd: see the footer)
	hdrOverhead          = 64 // uint64
	hdrUncleanShutdown   = 72 // uint8
	hdrNewlineChecks     = 73 // 4 bytes: '\n', ' ', '\r', '\n'
	hdrCompressAlgorithm = 77 // uint16
	headerLen            = 512
)

// The newline-detection bytes: a file that went through a text-mode
// transfer has them changed.
const newlineChecks = "\n \r\n"

// Header flags.
const (
	flagNewlineCheck = 1 << 0
	flagRedundantGD  = 1 << 1
	flagZeroGrain    = 1 << 2 // a grain table entry of 1 means a zeroed grain
	flagCompressed   = 1 << 16
	flagMarkers      = 1 << 17
)

// compressAlgorithm values.
const (
	compressNone    = 0
	compressDeflate = 1 // zlib streams (RFC 1950)
)

// gdAtEnd in the header's gdOffset: the grain directory is found through
// the footer (stream-optimized files written front to back).
const gdAtEnd = 0xffffffffffffffff

// Markers of stream-optimized extents: one sector each, except grain
// markers, whose size field is the compressed length.
const (
	markerValue   = 0  // uint64: LBA for grains, sectors of metadata otherwise
	markerSize    = 8  // uint32: compressed bytes for a grain, 0 for metadata markers
	markerType    = 12 // uint32, when size is 0
	markerEOS     = 0
	markerGT      = 1
	markerGD      = 2
	markerFooter  = 3
	footerFromEnd = 3 * sectorSize // footer marker, footer header, end-of-stream marker
)

// Grain table entries.
const (
	gteLen    = 4
	gteZeroed = 1 // with flagZeroGrain
)

// Limits. Beyond them an image is refused rather than allocated for.
const (
	maxGTEsPerGT     = 512     // the specification's fixed value; qemu refuses more
	maxGrainSectors  = 16384   // 8 MiB grains (VMware uses 128 sectors)
	maxDescriptorLen = 1 << 20 // a descriptor file, or one embedded in a sparse extent
	maxExtents       = 4096    // 8 TiB in 2 GiB extents
	maxExtentSectors = 1 << 44 // 8 PiB per extent
	maxDiskBytes     = 1 << 56 // all extents together
	parentCIDNone    = "ffffffff"
)
