package qcow2

// On-disk layout of qcow2 (qemu docs/interop/qcow2.txt). All numbers are
// big-endian.

const magic = "QFI\xfb"

// Header fields: byte offsets.
const (
	hdrMagic             = 0  // uint32
	hdrVersion           = 4  // uint32: 2 or 3
	hdrBackingFileOffset = 8  // uint64
	hdrBackingFileSize   = 16 // uint32
	hdrClusterBits       = 20 // uint32
	hdrSize              = 24 // uint64: virtual size
	hdrCryptMethod       = 32 // uint32
	hdrL1Size            = 36 // uint32: entries
	hdrL1TableOffset     = 40 // uint64
	hdrRefcountOffset    = 48 // uint64
	hdrRefcountClusters  = 56 // uint32
	hdrNbSnapshots       = 60 // uint32
	hdrSnapshotsOffset   = 64 // uint64
	hdrIncompatible      = 72 // uint64, v3
	hdrCompatible        = 80 // uint64, v3
	hdrAutoclear         = 88 // uint64, v3
	hdrRefcountOrder     = 96 // uint32, v3
	hdrHeaderLength      = 100
	hdrCompressionType   = 104 // uint8, v3 when header_length > 104

	v2HeaderLen    = 72
	v3MinHeaderLen = 104
)

// Limits (qemu's, where the spec leaves them open).
const (
	minClusterBits         = 9  // 512-byte clusters
	maxClusterBits         = 21 // 2 MiB: qemu will not open larger
	minClusterBitsExtL2    = 14 // extended L2 entries need 16 KiB clusters
	maxBackingFileNameLen  = 1023
	maxL1Bytes             = 32 << 20 // qemu's limit on the L1 table
	maxVirtualSize         = 1 << 56  // L1/L2 entries address 56 bits
	subclustersPerCluster  = 32
	compressedSectorSize   = 512
	headerExtensionMinSize = 8
)

// Incompatible feature bits.
const (
	incompatDirty           = 1 << 0
	incompatCorrupt         = 1 << 1
	incompatExternalData    = 1 << 2
	incompatCompressionType = 1 << 3
	incompatExtendedL2      = 1 << 4
	incompatKnown           = incompatDirty | incompatCorrupt | incompatExternalData | incompatCompressionType | incompatExtendedL2
)

// compression_type values.
const (
	compressionZlib = 0
	compressionZstd = 1
)

// crypt_method values.
const (
	cryptNone = 0
	cryptAES  = 1
	cryptLUKS = 2
)

// Header extension types.
const (
	extEnd            = 0x00000000
	extBackingFormat  = 0xe2792aca
	extFeatureNames   = 0x6803f857
	extBitmaps        = 0x23852875
	extFullDiskCrypt  = 0x0537be77
	extExternalDataFN = 0x44415441
)

// Feature name table entries.
const (
	featureNameEntryLen = 48
	featureNameLen      = 46
	featureIncompatible = 0
)

// L1 and L2 entries.
const (
	l1OffsetMask        = 0x00fffffffffffe00 // bits 9-55: L2 table offset
	l2OffsetMask        = 0x00fffffffffffe00 // bits 9-55: host cluster offset
	l2Compressed        = 1 << 62
	l2ZeroFlag          = 1 << 0 // standard cluster reads as zeros (v3, without extended L2)
	l2EntryLen          = 8
	l2ExtendedEntryLen  = 16
	subclusterAllocMask = 0xffffffff // low half of the extended L2 bitmap: allocated subclusters
)
