package ewf

// On-disk layout of EWF segment files (Expert Witness Compression Format,
// version 1: EnCase 1 to 7, linen, FTK Imager, ewfacquire; SMART .s01).
// All integers are little-endian. Offsets in section data are relative to
// the end of the section descriptor.

// File header: 13 bytes at the start of every segment file.
const (
	fileHeaderSize   = 13
	fhSignature      = 0 // 8 bytes
	fhFieldsStart    = 8 // 0x01
	fhSegmentNumber  = 9 // uint16, 1 for the first segment
	fhFieldsEnd      = 11
	fieldsStartValue = 0x01
)

// Signatures at the start of a file. Only evfSignature is read; the others
// are recognised to refuse them by name.
var (
	evfSignature  = []byte("EVF\x09\x0d\x0a\xff\x00") // EWF-E01 and EWF-S01 (SMART)
	lvfSignature  = []byte("LVF\x09\x0d\x0a\xff\x00") // EWF-L01: logical evidence (files, not a disk)
	evf2Signature = []byte("EVF2\x0d\x0a\x81\x00")    // EWF2-Ex01 (EnCase 7 version 2)
	lef2Signature = []byte("LEF2\x0d\x0a\x81\x00")    // EWF2-Lx01
)

// SniffLen is how many leading bytes Sniff needs.
const SniffLen = 8

// Section descriptor: 76 bytes in front of every section.
const (
	sectionDescSize = 76
	sdType          = 0  // 16 bytes, NUL-padded ASCII
	sdTypeLen       = 16 //
	sdNext          = 16 // uint64, file offset of the next section descriptor
	sdSize          = 24 // uint64, descriptor + data, 0 in next/done of EnCase
	sdChecksum      = 72 // Adler-32 of bytes [0, 72)
)

// Section type names.
const (
	secHeader     = "header"
	secHeader2    = "header2"
	secXHeader    = "xheader" // EWF-X (libewf's experimental variant)
	secVolume     = "volume"
	secDisk       = "disk" // FTK Imager's copy of volume
	secData       = "data" // copy of volume in later segments
	secSectors    = "sectors"
	secTable      = "table"
	secTable2     = "table2" // mirror of the preceding table
	secHash       = "hash"
	secDigest     = "digest"
	secXHash      = "xhash"
	secError2     = "error2"
	secSession    = "session"
	secIncomplete = "incomplete"
	secNext       = "next" // last section of a segment that is not the last one
	secDone       = "done" // last section of the last segment
)

// Volume (also disk and data) section, EnCase/FTK/linen form: 1052 bytes.
const (
	volumeSize         = 1052
	volMediaType       = 0  // uint8
	volChunkCount      = 4  // uint32
	volSectorsPerChunk = 8  // uint32
	volBytesPerSector  = 12 // uint32
	volSectorCount     = 16 // uint64
	volMediaFlags      = 36 // uint8
	volCompression     = 52 // uint8: 0 none, 1 fast, 2 best
	volErrorGranule    = 56 // uint32, sectors
	volSetIdentifier   = 64 // 16-byte GUID of the segment file set
	volChecksum        = 1048
)

// Volume section of the original EWF specification and SMART (EWF-S01):
// 94 bytes, a 32-bit sector count, no media type or compression level.
const (
	volumeSizeSMART     = 94
	volSectorCountSMART = 16 // uint32
	volChecksumSMART    = 90
)

// Media flags in the volume section.
const (
	mediaFlagImage    = 0x01
	mediaFlagPhysical = 0x02
	mediaFlagFastbloc = 0x04
	mediaFlagTableau  = 0x08
)

// Table (and table2) section: a 24-byte header, entries, and (EnCase
// forms) an Adler-32 of the entries.
const (
	tableHeaderSize = 24
	thEntryCount    = 0  // uint32
	thBaseOffset    = 8  // uint64 (EnCase 6+; zero padding before)
	thChecksum      = 20 // Adler-32 of bytes [0, 20)
	tableEntrySize  = 4
	tableFooterSize = 4
	// The high bit of an entry marks a zlib-compressed chunk; the rest is
	// the chunk's offset from the table's base offset.
	entryCompressed = 1 << 31
	entryOffsetMask = entryCompressed - 1
)

// Stored (uncompressed) chunks end with the Adler-32 of the chunk data.
const chunkChecksumSize = 4

// Hash section: MD5 of the media.
const (
	hashSize     = 36
	hashMD5      = 0  // 16 bytes
	hashChecksum = 32 // Adler-32 of bytes [0, 32)
)

// Digest section: MD5 and SHA-1 of the media.
const (
	digestSize     = 80
	digestMD5      = 0  // 16 bytes
	digestSHA1     = 16 // 20 bytes
	digestChecksum = 76 // Adler-32 of bytes [0, 76)
)

// Error2 section: sectors that could not be read during acquisition.
const (
	error2HeaderSize = 520
	e2Count          = 0   // uint32
	e2Checksum       = 516 // Adler-32 of bytes [0, 516)
	error2EntrySize  = 8   // uint32 first sector, uint32 sector count
)

// Session section: sessions of an optical disc.
const (
	sessionHeaderSize = 36
	ssCount           = 0  // uint32
	ssChecksum        = 32 // Adler-32 of bytes [0, 32)
	sessionEntrySize  = 32 // uint32 flags, uint32 first sector, padding
	sessionFlagAudio  = 0x01
)

// Limits that bound what a hostile image can make the reader allocate.
const (
	// Largest chunk accepted: libewf writes at most 32768 sectors per chunk;
	// 64 MiB allows that for 2048-byte sectors.
	maxChunkSize       = 64 << 20
	maxSectorsPerChunk = 1 << 15
	maxBytesPerSector  = 1 << 16
	// Header texts are a few hundred bytes; EnCase documents free-form
	// values of up to 1 MiB.
	maxHeaderCompressed = 8 << 20
	maxHeaderText       = 8 << 20
	// Segment numbers are 16-bit; the naming scheme ends at .ZZZ well below.
	maxSegments = 1<<16 - 1
	// Entries of one table: EnCase writes at most 65534, libewf 16375.
	maxTableEntries = 1 << 20
	// Entries of an error2 or session section.
	maxListEntries = 1 << 20
)
