package image

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"strings"
	"testing"

	"github.com/ctrlift/ctrlift/image/gpt"
	"github.com/ctrlift/ctrlift/internal/testutil"
)

type wantPart struct {
	num      int
	name     string
	typeGUID string // GPT
	mbrType  string // MBR
	typ      string
	start    int64 // sectors of the disk's sector size
	sectors  int64
	guid     string
	fs       FSInfo
}

type wantDisk struct {
	name       string // fixture
	layout     string
	sectorSize int
	diskGUID   string
	warnings   []string // substrings, in order; none expected if empty
	parts      []wantPart
	selected   int // Select("")
}

// The values make-disks.sh gave sgdisk, fdisk, sfdisk and the mkfs tools.
var fixtureDisks = []wantDisk{
	{
		name: "gpt512", layout: LayoutGPT, sectorSize: 512, diskGUID: "5A5A0001-0000-4000-8000-000000000512", selected: 1,
		parts: []wantPart{
			{1, "STATE", gpt.TypeLinuxFilesystem, "", "Linux filesystem", 2048, 32768, "5A5A0001-0000-4000-8000-000000000001", FSInfo{"ext4", "state-fs", "5a5a0001-0000-4000-8000-0000000000f1"}},
			{2, "EFI-SYSTEM", gpt.TypeEFISystem, "", "EFI system", 34816, 16384, "5A5A0001-0000-4000-8000-000000000002", FSInfo{"vfat", "EFI", "1234-ABCD"}},
			{3, "DATA", gpt.TypeLinuxFilesystem, "", "Linux filesystem", 51200, 24576, "5A5A0001-0000-4000-8000-000000000003", FSInfo{"ext3", "datavol", "5a5a0001-0000-4000-8000-0000000000f3"}},
			{4, "OLD", gpt.TypeLinuxFilesystem, "", "Linux filesystem", 75776, 8192, "5A5A0001-0000-4000-8000-000000000004", FSInfo{"ext2", "legacy", "5a5a0001-0000-4000-8000-0000000000f4"}},
			{5, "KERN-A", gpt.TypeChromeOSKernel, "", "ChromeOS kernel", 83968, 2048, "5A5A0001-0000-4000-8000-000000000005", FSInfo{"unknown", "", ""}},
			{6, "SWAP", gpt.TypeLinuxSwap, "", "Linux swap", 86016, 4096, "5A5A0001-0000-4000-8000-000000000006", FSInfo{"swap", "swappy", "5a5a0001-0000-4000-8000-0000000000f6"}},
			{8, "ROOT-A", gpt.TypeChromeOSRootFS, "", "ChromeOS rootfs", 90112, 40960, "5A5A0001-0000-4000-8000-000000000008", FSInfo{"ext4", "ROOT-A", "5a5a0001-0000-4000-8000-0000000000f8"}},
			{9, "reserved", gpt.TypeChromeOSReserved, "", "ChromeOS reserved", 131072, 1, "5A5A0001-0000-4000-8000-000000000009", FSInfo{"unknown", "", ""}},
		},
	},
	{
		name: "gpt4k", layout: LayoutGPT, sectorSize: 4096, diskGUID: "5A5A0002-0000-4000-8000-000000004096", selected: 1,
		parts: []wantPart{
			{1, "data", gpt.TypeLinuxFilesystem, "", "Linux filesystem", 256, 4096, "5A5A0002-0000-4000-8000-000000000001", FSInfo{"ext4", "STATE", "5a5a0002-0000-4000-8000-0000000000f1"}},
			{2, "ESP", gpt.TypeEFISystem, "", "EFI system", 4352, 2048, "5A5A0002-0000-4000-8000-000000000002", FSInfo{"vfat", "ESP4K", "4096-ABCD"}},
			{3, "big", gpt.TypeLinuxFilesystem, "", "Linux filesystem", 6400, 5120, "5A5A0002-0000-4000-8000-000000000003", FSInfo{"ext4", "bigger", "5a5a0002-0000-4000-8000-0000000000f3"}},
		},
	},
	{
		name: "gpt-badprimary", layout: LayoutGPT, sectorSize: 512, diskGUID: "5A5A0003-0000-4000-8000-000000000000", selected: 1,
		warnings: []string{"primary GPT at LBA 1 is invalid (gpt: partition entry array CRC mismatch at offset 1024"},
		parts: []wantPart{
			{1, "STATE", gpt.TypeLinuxFilesystem, "", "Linux filesystem", 2048, 16384, "5A5A0003-0000-4000-8000-000000000001", FSInfo{"ext4", "STATE", "5a5a0003-0000-4000-8000-0000000000f1"}},
			{2, "DATA", gpt.TypeLinuxFilesystem, "", "Linux filesystem", 18432, 8192, "5A5A0003-0000-4000-8000-000000000002", FSInfo{"unknown", "", ""}},
		},
	},
	{
		name: "mbr", layout: LayoutMBR, sectorSize: 512, diskGUID: "5eed1234", selected: 1,
		parts: []wantPart{
			{1, "", "", "0x83", "Linux", 2048, 16384, "5eed1234-01", FSInfo{"ext4", "mbrroot", "5a5a0004-0000-4000-8000-0000000000f1"}},
			{2, "", "", "0x0e", "W95 FAT16 (LBA)", 18432, 8192, "5eed1234-02", FSInfo{"vfat", "MBRFAT", "5EED-0002"}},
			{3, "", "", "0x05", "Extended", 26624, 71680, "5eed1234-03", FSInfo{"unknown", "", ""}},
			{5, "", "", "0x83", "Linux", 28672, 8192, "5eed1234-05", FSInfo{"ext2", "logical5", "5a5a0004-0000-4000-8000-0000000000f5"}},
			{6, "", "", "0x82", "Linux swap", 38912, 4096, "5eed1234-06", FSInfo{"swap", "swap6", "5a5a0004-0000-4000-8000-0000000000f6"}},
		},
	},
	{
		name: "bare-ext4", layout: LayoutNone, sectorSize: 512, selected: 0,
		parts: []wantPart{
			{0, "", "", "", "whole disk", 0, 16384, "", FSInfo{"ext4", "bare", "5a5a0005-0000-4000-8000-0000000000f0"}},
		},
	},
	{
		name: "bare-vfat", layout: LayoutNone, sectorSize: 512, selected: -1,
		parts: []wantPart{
			{0, "", "", "", "whole disk", 0, 8192, "", FSInfo{"vfat", "BAREFAT", "5EED-0005"}},
		},
	},
	{
		name: "fsmix", layout: LayoutGPT, sectorSize: 512, diskGUID: "5A5A0006-0000-4000-8000-000000000000", selected: 1, // the largest ext4 or XFS
		parts: []wantPart{
			{1, "xfs", gpt.TypeLinuxFilesystem, "", "Linux filesystem", 2048, 32768, "", FSInfo{"xfs", "xfslbl", "5a5a0006-0000-4000-8000-0000000000f1"}},
			{2, "btrfs", gpt.TypeLinuxFilesystem, "", "Linux filesystem", 34816, 225280, "", FSInfo{"btrfs", "btrlbl", "5a5a0006-0000-4000-8000-0000000000f2"}},
			{3, "squashfs", gpt.TypeLinuxFilesystem, "", "Linux filesystem", 260096, 2048, "", FSInfo{"squashfs", "", ""}},
			{4, "fat32", gpt.TypeMicrosoftData, "", "Microsoft basic data", 262144, 81920, "", FSInfo{"vfat", "FAT32LBL", "5EED-0006"}},
			{5, "ext4-nojournal", gpt.TypeLinuxFilesystem, "", "Linux filesystem", 344064, 16384, "", FSInfo{"ext4", "nojournal", "5a5a0006-0000-4000-8000-0000000000f5"}},
		},
	},
}

func TestFixtures(t *testing.T) {
	for _, w := range fixtureDisks {
		t.Run(w.name, func(t *testing.T) {
			path := testutil.DiskRaw(t, w.name)
			d, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			checkDisk(t, d, w)
		})
	}
}

func checkDisk(t *testing.T, d *Disk, w wantDisk) {
	t.Helper()
	if d.Layout != w.layout || d.SectorSize != w.sectorSize || d.DiskGUID != w.diskGUID {
		t.Errorf("layout %q, sector size %d, disk GUID %q; want %q, %d, %q", d.Layout, d.SectorSize, d.DiskGUID, w.layout, w.sectorSize, w.diskGUID)
	}
	if len(d.Warnings) != len(w.warnings) {
		t.Errorf("warnings %q; want %d matching %q", d.Warnings, len(w.warnings), w.warnings)
	} else {
		for i := range w.warnings {
			if !strings.Contains(d.Warnings[i], w.warnings[i]) {
				t.Errorf("warning %d = %q; want it to contain %q", i, d.Warnings[i], w.warnings[i])
			}
		}
	}
	if len(d.Partitions) != len(w.parts) {
		t.Fatalf("%d partitions; want %d: %+v", len(d.Partitions), len(w.parts), d.Partitions)
	}
	ss := int64(w.sectorSize)
	for i, wp := range w.parts {
		p := d.Partitions[i]
		got := wantPart{p.Number, p.Name, p.TypeGUID, p.MBRType, p.Type, p.Start / ss, p.Size / ss, p.GUID, p.FS}
		if wp.guid == "" && w.layout == LayoutGPT {
			got.guid = "" // random GUIDs: not fixed by the script
		}
		if got != wp || p.Start%ss != 0 || p.Size%ss != 0 || p.Truncated {
			t.Errorf("partition %d:\n got %+v (start %d, size %d, truncated %v)\nwant %+v", i, got, p.Start, p.Size, p.Truncated, wp)
		}
		r := p.Reader()
		if r.Size() != p.Size {
			t.Errorf("partition %d: reader size %d; want %d", p.Number, r.Size(), p.Size)
		}
	}
	if w.selected >= 0 {
		p, err := d.Select("")
		if err != nil {
			t.Errorf(`Select(""): %v`, err)
		} else if p.Number != w.selected {
			t.Errorf(`Select("") = partition %d; want %d`, p.Number, w.selected)
		}
	} else if p, err := d.Select(""); err == nil {
		t.Errorf(`Select("") = partition %d; want an error`, p.Number)
	}
}

// The partition reader must give exactly the bytes of the disk.
func TestPartitionReader(t *testing.T) {
	raw := testutil.DiskBytes(t, "gpt512")
	d, err := NewDisk(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	p, err := d.Select("STATE")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(p.Reader())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, raw[p.Start:p.Start+p.Size]) {
		t.Fatal("partition reader differs from the disk bytes")
	}
	if _, err := p.Reader().ReadAt(make([]byte, 1), p.Size); err != io.EOF {
		t.Fatalf("read past the partition: %v; want EOF", err)
	}
	var zero Partition
	if n, _ := zero.Reader().Read(make([]byte, 1)); n != 0 {
		t.Fatal("zero Partition reader returned data")
	}
}

func TestSelect(t *testing.T) {
	open := func(name string) *Disk {
		d, err := Open(testutil.DiskRaw(t, name), Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	}
	gpt512, mbr, bare := open("gpt512"), open("mbr"), open("bare-vfat")
	tests := []struct {
		d       *Disk
		spec    string
		want    int
		wantErr string
	}{
		{gpt512, "", 1, ""},
		{gpt512, "3", 3, ""},
		{gpt512, "DATA", 3, ""},     // GPT name
		{gpt512, "datavol", 3, ""},  // fs label
		{gpt512, "state-fs", 1, ""}, // fs label
		{gpt512, "state", 1, ""},    // name, any case
		{gpt512, "DATAVOL", 3, ""},  // label, any case
		{gpt512, "ROOT-A", 8, ""},   // name and label of the same partition
		{gpt512, "reserved", 9, ""}, // one partition with that name here
		{gpt512, "7", 0, "no partition number 7"},
		{gpt512, "nope", 0, `no partition with number, name or label "nope"; partitions: 1 "STATE" ext4 label "state-fs"; 2 "EFI-SYSTEM" vfat label "EFI"`},
		{mbr, "", 1, ""},
		{mbr, "5", 5, ""},
		{mbr, "logical5", 5, ""},
		{bare, "0", 0, ""},
		{bare, "", 0, "no ext2/3/4 or XFS filesystem; select one of: 0 vfat label \"BAREFAT\""},
	}
	for _, tt := range tests {
		p, err := tt.d.Select(tt.spec)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: Select(%q) = %v, %v; want error containing %q", tt.d.Path, tt.spec, p, err, tt.wantErr)
			}
			continue
		}
		if err != nil || p.Number != tt.want {
			t.Errorf("%s: Select(%q) = %+v, %v; want partition %d", tt.d.Path, tt.spec, p, err, tt.want)
		}
	}
}

// Two partitions with one name cannot be chosen by name.
func TestSelectAmbiguous(t *testing.T) {
	raw := testutil.DiskBytes(t, "gpt512")
	d, err := NewDisk(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	d.Partitions[3].Name = "DATA"
	if _, err := d.Select("DATA"); err == nil || !strings.Contains(err.Error(), `"DATA" matches partitions 3, 4`) {
		t.Fatalf("Select of a duplicate name: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	empty := dir + "/empty.raw"
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(empty, Options{}); err == nil || !strings.Contains(err.Error(), "empty image") {
		t.Errorf("empty image: %v", err)
	}
	if _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("directory: %v", err)
	}
	if _, err := Open(dir+"/missing", Options{}); err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}
