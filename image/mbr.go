package image

import (
	"errors"
	"fmt"
	"io"
	"io/fs"

	dmbr "github.com/diskfs/go-diskfs/partition/mbr"
)

const (
	mbrSectorSize = 512 // MBR LBAs are in 512-byte units on every disk we read
	// maxLogical bounds the walk of the extended partition's EBR chain
	// (Linux stops at 256 partitions per disk).
	maxLogical = 256
)

// mbrEntry is one MBR (or EBR) partition table entry, in absolute LBAs.
type mbrEntry struct {
	number   int
	typ      byte
	bootable bool
	start    uint64 // LBA
	sectors  uint64
	logical  bool
}

func isExtended(t byte) bool { return t == 0x05 || t == 0x0F || t == 0x85 }

// readMBR reads the MBR and any logical partitions. ok is false when sector
// 0 is not an MBR with at least one used entry.
func readMBR(r io.ReaderAt, size int64) (entries []mbrEntry, diskID string, warnings []string, ok bool) {
	t, err := decodeMBR(r, 0, size)
	if err != nil {
		return nil, "", nil, false
	}
	for _, p := range t.Partitions {
		if p.Type == dmbr.Empty {
			continue
		}
		if p.Size == 0 {
			warnings = append(warnings, fmt.Sprintf("MBR partition %d (type %#02x) has zero size; ignored", p.Index, byte(p.Type)))
			continue
		}
		entries = append(entries, mbrEntry{number: p.Index, typ: byte(p.Type), bootable: p.Bootable, start: uint64(p.Start), sectors: uint64(p.Size)})
	}
	if len(entries) == 0 {
		return nil, "", warnings, false
	}
	// Logical partitions live in a chain of EBRs inside the (first)
	// extended partition: entry 1 is relative to its EBR, entry 2 points
	// to the next EBR relative to the extended partition's start.
	for _, e := range entries {
		if !isExtended(e.typ) {
			continue
		}
		logical, w := readEBRChain(r, size, e.start)
		entries = append(entries, logical...)
		warnings = append(warnings, w...)
		break
	}
	return entries, t.UUID(), warnings, true
}

func readEBRChain(r io.ReaderAt, size int64, extStart uint64) (entries []mbrEntry, warnings []string) {
	seen := map[uint64]bool{}
	ebr := extStart
	num := 5
	for i := 0; ; i++ {
		if i >= maxLogical {
			warnings = append(warnings, fmt.Sprintf("extended partition: more than %d logical partitions; rest ignored", maxLogical))
			return
		}
		if seen[ebr] {
			warnings = append(warnings, fmt.Sprintf("extended partition: EBR chain loops back to LBA %d", ebr))
			return
		}
		seen[ebr] = true
		if ebr > uint64(size)/mbrSectorSize {
			warnings = append(warnings, fmt.Sprintf("extended partition: EBR at LBA %d beyond end of image", ebr))
			return
		}
		t, err := decodeMBR(r, int64(ebr)*mbrSectorSize, size)
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("extended partition: EBR at LBA %d: %v", ebr, err))
			return
		}
		l, next := t.Partitions[0], t.Partitions[1]
		if l.Type != dmbr.Empty && l.Size > 0 {
			entries = append(entries, mbrEntry{number: num, typ: byte(l.Type), bootable: l.Bootable, start: ebr + uint64(l.Start), sectors: uint64(l.Size), logical: true})
			num++
		}
		if next.Type == dmbr.Empty || next.Start == 0 {
			return
		}
		ebr = extStart + uint64(next.Start)
	}
}

// decodeMBR lets go-diskfs decode the 512-byte table at off, read-only,
// turning any panic of it into an error.
func decodeMBR(r io.ReaderAt, off, size int64) (t *dmbr.Table, err error) {
	if size-off < mbrSectorSize {
		return nil, errors.New("no room for a partition table")
	}
	defer func() {
		if p := recover(); p != nil {
			t, err = nil, fmt.Errorf("go-diskfs panicked: %v", p)
		}
	}()
	t, err = dmbr.Read(roFile{io.NewSectionReader(r, off, mbrSectorSize)}, mbrSectorSize, mbrSectorSize)
	if err == nil && len(t.Partitions) < 4 {
		err = fmt.Errorf("go-diskfs returned %d MBR entries", len(t.Partitions))
	}
	return t, err
}

// roFile adapts a SectionReader to go-diskfs's backend.File. It has no
// WriteAt, so go-diskfs cannot write through it.
type roFile struct{ *io.SectionReader }

func (roFile) Stat() (fs.FileInfo, error) { return nil, errors.New("stat not supported") }
func (roFile) Close() error               { return nil }

// mbrTypeNames names the MBR partition type bytes seen on Linux systems
// (fdisk's wording).
var mbrTypeNames = map[byte]string{
	0x01: "FAT12",
	0x04: "FAT16 <32M",
	0x05: "Extended",
	0x06: "FAT16",
	0x07: "HPFS/NTFS/exFAT",
	0x0b: "W95 FAT32",
	0x0c: "W95 FAT32 (LBA)",
	0x0e: "W95 FAT16 (LBA)",
	0x0f: "W95 Extended (LBA)",
	0x82: "Linux swap",
	0x83: "Linux",
	0x85: "Linux extended",
	0x8e: "Linux LVM",
	0xa5: "FreeBSD",
	0xee: "GPT protective",
	0xef: "EFI (FAT-12/16/32)",
	0xfd: "Linux raid autodetect",
}

func mbrTypeName(t byte) string {
	if n, ok := mbrTypeNames[t]; ok {
		return n
	}
	return "unknown"
}
