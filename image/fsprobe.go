package image

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Filesystem types reported in FSInfo.Type.
const (
	FSExt2     = "ext2"
	FSExt3     = "ext3"
	FSExt4     = "ext4"
	FSJBD      = "jbd" // external ext3/ext4 journal device
	FSXFS      = "xfs"
	FSVFAT     = "vfat"
	FSExFAT    = "exfat"
	FSNTFS     = "ntfs"
	FSSquashFS = "squashfs"
	FSBtrfs    = "btrfs"
	FSSwap     = "swap"
	FSLVM2     = "LVM2_member"
	// Encrypted volumes, by blkid's names: recognised so they can be
	// named, never read.
	FSLUKS      = "crypto_LUKS"
	FSBitLocker = "BitLocker"
	FSUnknown   = "unknown"
)

// IsExt reports whether t is one of the ext2/ext3/ext4 types.
func IsExt(t string) bool { return t == FSExt2 || t == FSExt3 || t == FSExt4 }

// ext2/3/4 superblock (at byte 1024 of the filesystem).
const (
	extSBOff          = 1024
	extMagicOff       = 0x38 // uint16 0xEF53
	extCompatOff      = 0x5C
	extIncompatOff    = 0x60
	extROCompatOff    = 0x64
	extUUIDOff        = 0x68
	extLabelOff       = 0x78 // [16]byte
	extMagic          = 0xEF53
	extCompatJournal  = 0x4
	extIncompatJDev   = 0x8
	ext2IncompatSupp  = 0x2 | 0x10       // filetype, meta_bg
	ext3IncompatSupp  = 0x2 | 0x4 | 0x10 // filetype, recover, meta_bg
	ext23ROCompatSupp = 0x1 | 0x2 | 0x4  // sparse_super, large_file, btree_dir
)

// headLen is how much of the start of a partition is read for detection:
// every signature but swap's and btrfs's lies in it.
const headLen = 4096

// detectFS identifies the filesystem on r (a partition of the given size) by
// its magic numbers, the way blkid does, without trusting any size field.
func detectFS(r io.ReaderAt, size int64) (FSInfo, error) {
	n := min(size, headLen)
	head := make([]byte, n)
	if m, err := r.ReadAt(head, 0); int64(m) < n {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return FSInfo{Type: FSUnknown}, fmt.Errorf("reading %d bytes for filesystem detection: %w", n, err)
	}
	if fi, ok := probeExt(head); ok {
		return fi, nil
	}
	if fi, ok := probeEncrypted(head); ok {
		return fi, nil
	}
	if len(head) >= 512 {
		switch {
		case string(head[0:4]) == "XFSB":
			return FSInfo{Type: FSXFS, Label: cString(head[108:120]), UUID: formatUUID(head[32:48])}, nil
		case string(head[0:4]) == "hsqs":
			return FSInfo{Type: FSSquashFS}, nil
		case string(head[3:11]) == "EXFAT   ":
			return FSInfo{Type: FSExFAT, UUID: fmt.Sprintf("%04X-%04X", binary.LittleEndian.Uint16(head[102:104]), binary.LittleEndian.Uint16(head[100:102]))}, nil
		case string(head[3:11]) == "NTFS    ":
			return FSInfo{Type: FSNTFS, UUID: fmt.Sprintf("%016X", binary.LittleEndian.Uint64(head[0x48:0x50]))}, nil
		}
		if fi, ok := probeFAT(head); ok {
			return fi, nil
		}
		if fi, ok := probeLVM(head); ok {
			return fi, nil
		}
	}
	if fi, ok := probeSwap(r, size, head); ok {
		return fi, nil
	}
	// btrfs keeps its superblock at 64 KiB.
	const btrfsOff = 64 << 10
	if size >= btrfsOff+0x12b+256 {
		sb := make([]byte, 0x12b+256)
		if m, _ := r.ReadAt(sb, btrfsOff); m == len(sb) && string(sb[0x40:0x48]) == "_BHRfS_M" {
			return FSInfo{Type: FSBtrfs, Label: cString(sb[0x12b:]), UUID: formatUUID(sb[0x20:0x30])}, nil
		}
	}
	return FSInfo{Type: FSUnknown}, nil
}

func probeExt(head []byte) (FSInfo, bool) {
	if len(head) < extSBOff+256 {
		return FSInfo{}, false
	}
	sb := head[extSBOff:]
	le := binary.LittleEndian
	if le.Uint16(sb[extMagicOff:]) != extMagic {
		return FSInfo{}, false
	}
	compat, incompat, rocompat := le.Uint32(sb[extCompatOff:]), le.Uint32(sb[extIncompatOff:]), le.Uint32(sb[extROCompatOff:])
	// Same decision as libblkid: ext4 is anything using a feature ext3 lacks.
	t := FSExt4
	switch {
	case incompat&extIncompatJDev != 0:
		t = FSJBD
	case incompat&^ext3IncompatSupp != 0 || rocompat&^ext23ROCompatSupp != 0:
		t = FSExt4
	case compat&extCompatJournal != 0:
		t = FSExt3
	case incompat&^ext2IncompatSupp == 0:
		t = FSExt2
	}
	return FSInfo{Type: t, Label: cString(sb[extLabelOff : extLabelOff+16]), UUID: formatUUID(sb[extUUIDOff : extUUIDOff+16])}, true
}

// probeFAT recognises FAT12/16/32 boot sectors by their BIOS parameter
// block, as blkid does, and reads the boot-sector label and serial.
func probeFAT(b []byte) (FSInfo, bool) {
	le := binary.LittleEndian
	if !(b[0] == 0xEB && b[2] == 0x90 || b[0] == 0xE9) {
		return FSInfo{}, false
	}
	bps := le.Uint16(b[11:13])
	spc := b[13]
	reserved := le.Uint16(b[14:16])
	fats := b[16]
	media := b[21]
	if bps < 512 || bps > 4096 || bps&(bps-1) != 0 || spc == 0 || spc&(spc-1) != 0 ||
		reserved == 0 || fats == 0 || fats > 4 || (media < 0xF8 && media != 0xF0) {
		return FSInfo{}, false
	}
	var serial, label []byte
	if le.Uint16(b[22:24]) == 0 { // sectors per FAT16 field is 0 on FAT32
		if string(b[82:87]) != "FAT32" && b[66] != 0x29 {
			return FSInfo{}, false
		}
		serial, label = b[67:71], b[71:82]
	} else {
		if string(b[54:57]) != "FAT" && b[38] != 0x29 {
			return FSInfo{}, false
		}
		serial, label = b[39:43], b[43:54]
	}
	fi := FSInfo{Type: FSVFAT, UUID: fmt.Sprintf("%04X-%04X", le.Uint16(serial[2:4]), le.Uint16(serial[0:2]))}
	if l := strings.TrimRight(cString(label), " "); l != "NO NAME" {
		fi.Label = l
	}
	return fi, true
}

// probeSwap looks for the Linux swap signature at the end of the first
// page, for the page sizes Linux uses; UUID and label follow the 1 KiB boot
// block.
func probeSwap(r io.ReaderAt, size int64, head []byte) (FSInfo, bool) {
	if len(head) < 1068 {
		return FSInfo{}, false
	}
	sig := make([]byte, 10)
	for _, page := range []int64{4096, 8192, 16384, 65536} {
		if size < page {
			break
		}
		if m, _ := r.ReadAt(sig, page-10); m != len(sig) {
			break
		}
		switch string(sig) {
		case "SWAPSPACE2":
			return FSInfo{Type: FSSwap, UUID: formatUUID(head[1036:1052]), Label: cString(head[1052:1068])}, true
		case "SWAP-SPACE":
			return FSInfo{Type: FSSwap}, true
		}
	}
	return FSInfo{}, false
}

// probeLVM finds an LVM2 physical volume label in one of the first four
// sectors.
func probeLVM(head []byte) (FSInfo, bool) {
	for s := 0; s < 4 && len(head) >= (s+1)*512; s++ {
		b := head[s*512:]
		if string(b[0:8]) == "LABELONE" && string(b[24:32]) == "LVM2 001" {
			id := string(b[32:64])
			if len(id) == 32 {
				id = id[0:6] + "-" + id[6:10] + "-" + id[10:14] + "-" + id[14:18] + "-" + id[18:22] + "-" + id[22:26] + "-" + id[26:32]
			}
			return FSInfo{Type: FSLVM2, UUID: id}, true
		}
	}
	return FSInfo{}, false
}

// LUKS header (cryptsetup's docs/on-disk-format*.pdf): magic, big-endian
// version, then at byte 168 the UUID as text; LUKS2 keeps a label at 24.
const (
	luksMagic    = "LUKS\xba\xbe"
	luksUUIDOff  = 168
	luksUUIDLen  = 40
	luks2Label   = 24
	luks2LabelSz = 48
	// BitLocker replaces the boot sector's OEM name with this.
	bitLockerSig = "-FVE-FS-"
)

// probeEncrypted recognises LUKS1, LUKS2 and BitLocker volumes by their
// signatures, as blkid does.
func probeEncrypted(head []byte) (FSInfo, bool) {
	if len(head) >= luksUUIDOff+luksUUIDLen && string(head[0:6]) == luksMagic {
		fi := FSInfo{Type: FSLUKS, UUID: cString(head[luksUUIDOff : luksUUIDOff+luksUUIDLen])}
		if binary.BigEndian.Uint16(head[6:8]) == 2 {
			fi.Label = cString(head[luks2Label : luks2Label+luks2LabelSz])
		}
		return fi, true
	}
	if len(head) >= 512 && string(head[3:11]) == bitLockerSig {
		return FSInfo{Type: FSBitLocker}, true
	}
	return FSInfo{}, false
}

// formatUUID formats a big-endian (RFC 4122 byte order) UUID in lower case
// as blkid prints filesystem UUIDs; all zeros gives "".
func formatUUID(b []byte) string {
	if len(b) < 16 || bytes.Equal(b[:16], make([]byte, 16)) {
		return ""
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// cString returns b up to its first NUL, with invalid UTF-8 replaced so
// labels print safely.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return strings.ToValidUTF8(string(b), string(utf8.RuneError))
}
