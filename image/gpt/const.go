// Package gpt reads GUID partition tables from a raw disk image, read-only.
//
// Header validation, sector-size probing and the choice between the primary
// and the backup table are done here; decoding of the entries is left to
// github.com/diskfs/go-diskfs/partition/gpt, which is only ever handed a
// read-only view whose headers have already been checked (it would hang on
// an entry size of 0 and allocate whatever an unchecked header asks for).
package gpt

// Layout of a GPT header (UEFI 2.10, section 5.3.2). Offsets are relative to
// the start of the header sector.
const (
	hdrSignature   = 0  // [8]byte "EFI PART"
	hdrRevision    = 8  // uint32
	hdrSize        = 12 // uint32, 92 in every known writer
	hdrCRC         = 16 // uint32, CRC32 of hdrSize bytes with this field zeroed
	hdrReserved    = 20 // uint32, must be zero
	hdrMyLBA       = 24 // uint64
	hdrAltLBA      = 32 // uint64
	hdrFirstUsable = 40 // uint64
	hdrLastUsable  = 48 // uint64
	hdrDiskGUID    = 56 // [16]byte, mixed-endian GUID
	hdrEntriesLBA  = 72 // uint64
	hdrNumEntries  = 80 // uint32
	hdrEntrySize   = 84 // uint32
	hdrEntriesCRC  = 88 // uint32, CRC32 of NumEntries*EntrySize bytes

	headerLen = 92

	// Signature starts every GPT header.
	Signature = "EFI PART"
	// Revision is the only header revision in use (1.0).
	Revision = 0x00010000
	// EntrySize is the only entry size go-diskfs decodes; the UEFI spec
	// allows 128*2^n but no known partitioning tool writes anything else.
	EntrySize = 128

	// maxEntryArray bounds the partition entry array we are willing to
	// read (the usual array is 128*128 = 16 KiB); it caps the allocation
	// that an on-disk entry count can cause.
	maxEntryArray = 4 << 20
)

// SectorSizes are the logical sector sizes probed, in order.
var SectorSizes = [...]int{512, 4096}

// Partition type GUIDs that ctrlift cares about by name.
const (
	TypeChromeOSKernel   = "FE3A2A5D-4F32-41A7-B725-ACCC3285A309"
	TypeChromeOSRootFS   = "3CB8E202-3B7E-47DD-8A3C-7FF2A13CFCEC"
	TypeChromeOSReserved = "2E0A753D-9E48-43B0-8337-B15192CB1B5E"
	TypeChromeOSFirmware = "CAB6E88E-ABF3-4102-A07A-D4BB9BE3C1D3"
	TypeLinuxFilesystem  = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
	TypeEFISystem        = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
	TypeBIOSBoot         = "21686148-6449-6E6F-744E-656564454649"
	TypeLinuxSwap        = "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F"
	TypeLinuxLVM         = "E6D6D379-F507-44C2-A23C-238F2A3DF928"
	TypeMicrosoftData    = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"
)

// typeNames maps upper-case type GUIDs to readable names (sgdisk's wording
// where it has one).
var typeNames = map[string]string{
	TypeChromeOSKernel:                     "ChromeOS kernel",
	TypeChromeOSRootFS:                     "ChromeOS rootfs",
	TypeChromeOSReserved:                   "ChromeOS reserved",
	TypeChromeOSFirmware:                   "ChromeOS firmware",
	"09845860-705F-4BB5-B16C-8A8A099CAF52": "ChromeOS miniOS",
	"3F0F8318-F146-4E6B-8222-C28C8F02E0D5": "ChromeOS hibernate",
	TypeLinuxFilesystem:                    "Linux filesystem",
	TypeEFISystem:                          "EFI system",
	TypeBIOSBoot:                           "BIOS boot",
	TypeLinuxSwap:                          "Linux swap",
	TypeLinuxLVM:                           "Linux LVM",
	TypeMicrosoftData:                      "Microsoft basic data",
	"E3C9E316-0B5C-4DB8-817D-F92DF00215AE": "Microsoft reserved",
	"DE94BBA4-06D1-4D40-A16A-BFD50179D6AC": "Windows recovery",
	"A19D880F-05FC-4D3B-A006-743F0F84911E": "Linux RAID",
	"933AC7E1-2EB4-4F13-B844-0E14E2AEF915": "Linux /home",
	"3B8F8425-20E0-4F3B-907F-1A25A76F98E8": "Linux /srv",
	"4D21B016-B534-45C2-A9FB-5C16E091FD2D": "Linux /var",
	"7EC6F557-3BC5-4ACA-B293-16EF5DF639D1": "Linux /var/tmp",
	"44479540-F297-41B2-9AF7-D131D5F0458A": "Linux root (x86)",
	"4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709": "Linux root (x86-64)",
	"69DAD710-2CE4-4E3C-B16C-21A1D49ABED3": "Linux root (ARM)",
	"B921B045-1DF0-41C3-AF44-4C6F280D3FAE": "Linux root (ARM64)",
	"8484680C-9521-48C6-9C11-B0720656F69E": "Linux /usr (x86-64)",
	"B0E01050-EE5F-4390-949A-9101B17104E9": "Linux /usr (ARM64)",
	"BC13C2FF-59E6-4262-A352-B275FD6F7172": "Linux extended boot",
	"7FFEC5C9-2D00-49B7-8941-3EA10A5586B7": "Linux dm-crypt",
	"CA7D7CCB-63ED-4C53-861C-1742536059CC": "Linux LUKS",
	"8DA63339-0007-60C0-C436-083AC8230908": "Linux reserved",
	"024DEE41-33E7-11D3-9D69-0008C781F39F": "MBR partition scheme",
	"516E7CB4-6ECF-11D6-8FF8-00022D09712B": "FreeBSD disklabel",
	"516E7CB6-6ECF-11D6-8FF8-00022D09712B": "FreeBSD UFS",
	"516E7CBA-6ECF-11D6-8FF8-00022D09712B": "FreeBSD ZFS",
	"48465300-0000-11AA-AA11-00306543ECAC": "Apple HFS/HFS+",
	"7C3457EF-0000-11AA-AA11-00306543ECAC": "Apple APFS",
	"6A898CC3-1DD2-11B2-99A6-080020736631": "Solaris /usr & Apple ZFS",
}

// TypeName returns a readable name for a partition type GUID, or "unknown".
func TypeName(guid string) string {
	if n, ok := typeNames[guid]; ok {
		return n
	}
	return "unknown"
}
