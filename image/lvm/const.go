// Package lvm reads LVM2 volume groups read-only from their physical
// volumes, without device-mapper: the PV label, the metadata areas and
// their text metadata (every copy on every PV; the newest valid one by
// sequence number wins), and the logical volumes LVM maps linearly or
// striped, each as an io.ReaderAt. Thin, snapshot, cache, mirror, RAID,
// VDO and integrity volumes are listed and refused by name.
//
// The on-disk format is LVM2's lib/format_text (label.c, layout.h,
// format-text.c) and the text metadata of lvm(8)'s vgcfgbackup files.
package lvm

// PV label (lib/label/label.h): in one of the first four 512-byte
// sectors of the device.
const (
	sectorSize     = 512
	labelScanSecs  = 4
	labelID        = "LABELONE"
	labelType      = "LVM2 001"
	lblID          = 0  // [8]byte "LABELONE"
	lblSector      = 8  // uint64, the sector the label is in
	lblCRC         = 16 // uint32, CRC of the rest of the sector from lblOffset
	lblOffset      = 20 // uint32, where the PV header starts in the sector
	lblType        = 24 // [8]byte "LVM2 001"
	labelHeaderLen = 32

	// PV header (lib/format_text/layout.h): the PV's UUID, its size, then
	// two lists of disk_locn {offset, size uint64} each ended by a zero
	// entry: data areas, then metadata areas.
	pvUUIDLen   = 32
	pvDevSize   = pvUUIDLen // uint64, bytes
	pvAreas     = pvUUIDLen + 8
	diskLocnLen = 16
)

// Metadata area header (mda_header): at the start of each metadata area.
const (
	mdaHeaderSize = 512
	mdaMagic      = " LVM2 x[5A%r0N*>"
	mdaVersion    = 1
	mdaCRC        = 0  // uint32, CRC of the rest of the header
	mdaMagicOff   = 4  // [16]byte
	mdaVersionOff = 20 // uint32
	mdaStart      = 24 // uint64, absolute offset of this area
	mdaSize       = 32 // uint64, size of this area
	mdaLocns      = 40 // raw_locn {offset, size uint64; checksum, flags uint32} list, zero-ended
	rawLocnLen    = 24

	rawLocnIgnored = 1 // the copy in this area is marked ignored (pvchange --metadataignore)

	// initialCRC seeds every LVM checksum (lib/misc/crc.h).
	initialCRC = 0xf597a6cf
)

// Limits on what a hostile PV can make the reader do.
const (
	maxMetadataText = 32 << 20 // bytes of one metadata text copy
	maxDepth        = 32       // nesting of sections and arrays
	maxValues       = 1 << 20  // values in one metadata text
	maxStripes      = 128      // LVM's own limit (MAX_STRIPES)
	maxSegments     = 1 << 16  // segments of one LV
	maxPVs          = 1 << 12  // PVs of one VG
)
