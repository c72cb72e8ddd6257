package image

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ctrlift/ctrlift/image/gpt"
	"github.com/ctrlift/ctrlift/internal/testutil"
)

// listed is one partition as a partitioning tool listed it.
type listed struct {
	num         int
	first, last int64 // sectors
	typeGUID    string
	name        string
	hasName     bool
}

// sgdiskCodes maps the sgdisk type codes used by the fixtures to GUIDs.
var sgdiskCodes = map[string]string{
	"8300": gpt.TypeLinuxFilesystem,
	"EF00": gpt.TypeEFISystem,
	"EF02": gpt.TypeBIOSBoot,
	"8200": gpt.TypeLinuxSwap,
	"0700": gpt.TypeMicrosoftData,
	"7F00": gpt.TypeChromeOSKernel,
	"7F01": gpt.TypeChromeOSRootFS,
	"7F02": gpt.TypeChromeOSReserved,
}

// parseSgdisk reads `sgdisk -p` output: disk GUID, sector size, partitions.
func parseSgdisk(t *testing.T, path string) (guid string, ss int, parts []listed) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	inTable := false
	for sc := bufio.NewScanner(f); sc.Scan(); {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "Disk identifier (GUID): "):
			guid = strings.TrimPrefix(line, "Disk identifier (GUID): ")
		case strings.HasPrefix(line, "Sector size (logical): "):
			ss, _ = strconv.Atoi(strings.Fields(strings.TrimPrefix(line, "Sector size (logical): "))[0])
		case strings.HasPrefix(line, "Number  Start"):
			inTable = true
		case inTable && strings.TrimSpace(line) != "":
			// Number Start End SizeValue SizeUnit Code Name...
			fl := strings.Fields(line)
			if len(fl) < 6 {
				t.Fatalf("%s: bad line %q", path, line)
			}
			p := listed{num: atoi(t, fl[0]), first: int64(atoi(t, fl[1])), last: int64(atoi(t, fl[2])), hasName: true}
			p.typeGUID = sgdiskCodes[fl[5]]
			if p.typeGUID == "" {
				t.Fatalf("%s: unknown sgdisk code %s", path, fl[5])
			}
			p.name = strings.Join(fl[6:], " ")
			parts = append(parts, p)
		}
	}
	return guid, ss, parts
}

// parseFdisk reads `fdisk -l -o Device,Start,End,Sectors,Type-UUID,Name,UUID`.
func parseFdisk(t *testing.T, path string) (guid string, ss int, parts []listed) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	inTable := false
	for _, line := range strings.Split(string(b), "\n") {
		fl := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "Disk identifier: "):
			guid = fl[2]
		case strings.HasPrefix(line, "Sector size (logical/physical): "):
			ss = atoi(t, fl[3])
		case strings.HasPrefix(line, "Device "):
			inTable = true
		case inTable && len(fl) == 7:
			dev := fl[0]
			i := strings.LastIndexFunc(dev, func(r rune) bool { return r < '0' || r > '9' })
			parts = append(parts, listed{num: atoi(t, dev[i+1:]), first: int64(atoi(t, fl[1])), last: int64(atoi(t, fl[2])), typeGUID: fl[4], name: fl[5], hasName: true})
		}
	}
	return guid, ss, parts
}

// parseSfdiskDump reads `sfdisk -d` of a DOS label.
func parseSfdiskDump(t *testing.T, path string) (id string, parts []listed) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "label-id: 0x"); ok {
			id = v
			continue
		}
		dev, rest, ok := strings.Cut(line, " : ")
		if !ok {
			continue
		}
		i := strings.LastIndexFunc(dev, func(r rune) bool { return r < '0' || r > '9' })
		p := listed{num: atoi(t, dev[i+1:])}
		var size int64
		for _, kv := range strings.Split(rest, ",") {
			k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
			switch k {
			case "start":
				p.first = int64(atoi(t, strings.TrimSpace(v)))
			case "size":
				size = int64(atoi(t, strings.TrimSpace(v)))
			}
		}
		p.last = p.first + size - 1
		parts = append(parts, p)
	}
	return id, parts
}

// parseBlkid reads the NAME.blkid.txt written by make-disks.sh.
func parseBlkid(t *testing.T, path string) map[int]FSInfo {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]FSInfo{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		fl := strings.Fields(line)
		fi := FSInfo{Type: FSUnknown}
		for _, kv := range fl[1:] {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "TYPE":
				fi.Type = v
			case "LABEL":
				fi.Label = v
			case "UUID":
				fi.UUID = v
			}
		}
		out[atoi(t, fl[0])] = fi
	}
	return out
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("not a number: %q", s)
	}
	return n
}

// comparePartitions checks the disk against a tool's listing.
func comparePartitions(t *testing.T, d *Disk, ss int, parts []listed) {
	t.Helper()
	if d.SectorSize != ss {
		t.Errorf("sector size %d; tool says %d", d.SectorSize, ss)
	}
	if len(d.Partitions) != len(parts) {
		t.Fatalf("%d partitions; tool lists %d", len(d.Partitions), len(parts))
	}
	byNum := map[int]Partition{}
	for _, p := range d.Partitions {
		byNum[p.Number] = p
	}
	for _, l := range parts {
		p, ok := byNum[l.num]
		if !ok {
			t.Errorf("partition %d listed by the tool is missing", l.num)
			continue
		}
		if p.Start != l.first*int64(ss) || p.Size != (l.last-l.first+1)*int64(ss) {
			t.Errorf("partition %d: start %d size %d; tool: sectors %d-%d", l.num, p.Start, p.Size, l.first, l.last)
		}
		if l.typeGUID != "" && p.TypeGUID != l.typeGUID {
			t.Errorf("partition %d: type %s; tool: %s", l.num, p.TypeGUID, l.typeGUID)
		}
		if l.hasName && p.Name != l.name {
			t.Errorf("partition %d: name %q; tool: %q", l.num, p.Name, l.name)
		}
	}
}

// The partition tables as sgdisk, fdisk and sfdisk listed them when
// make-disks.sh built the fixtures, and the filesystems as blkid found them.
func TestFixturesMatchTools(t *testing.T) {
	dir := testutil.DiskDir(t)
	for _, name := range []string{"gpt512", "gpt4k", "gpt-badprimary", "mbr", "bare-ext4", "bare-vfat", "fsmix"} {
		t.Run(name, func(t *testing.T) {
			d, err := Open(testutil.DiskRaw(t, name), Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			switch {
			case name == "gpt4k":
				guid, ss, parts := parseFdisk(t, filepath.Join(dir, name+".fdisk.txt"))
				if d.DiskGUID != guid {
					t.Errorf("disk GUID %s; fdisk: %s", d.DiskGUID, guid)
				}
				comparePartitions(t, d, ss, parts)
			case name == "mbr":
				id, parts := parseSfdiskDump(t, filepath.Join(dir, name+".sfdisk.txt"))
				if d.DiskGUID != id {
					t.Errorf("disk id %s; sfdisk: %s", d.DiskGUID, id)
				}
				comparePartitions(t, d, 512, parts)
			case strings.HasPrefix(name, "bare"):
			default:
				guid, ss, parts := parseSgdisk(t, filepath.Join(dir, name+".sgdisk.txt"))
				if d.DiskGUID != guid {
					t.Errorf("disk GUID %s; sgdisk: %s", d.DiskGUID, guid)
				}
				comparePartitions(t, d, ss, parts)
			}
			fs := parseBlkid(t, filepath.Join(dir, name+".blkid.txt"))
			for _, p := range d.Partitions {
				want, ok := fs[p.Number]
				if !ok {
					continue // blkid was not asked (the MBR extended container)
				}
				if p.FS != want {
					t.Errorf("partition %d: fs %+v; blkid: %+v", p.Number, p.FS, want)
				}
			}
		})
	}
}

// The COS node fixture: 12 partitions as in expected/gpt.txt, STATE ext4
// above 4 GiB, read from the zstd file through the cache.
func TestCOSNode(t *testing.T) {
	shared := testutil.Shared(t)
	if testing.Short() {
		t.Skip("decompresses 5 GiB (sparse)")
	}
	dir := filepath.Join(shared, "fixtures", "cos-node")
	zst := filepath.Join(dir, "cos-node.raw.zst")
	if _, err := os.Stat(zst); err != nil {
		t.Skipf("COS fixture not available: %v", err)
	}
	cacheDir := t.TempDir()
	d, err := Open(zst, Options{CacheDir: cacheDir})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Compression != "zstd" || !strings.HasPrefix(d.RawPath, cacheDir) {
		t.Errorf("compression %q, raw path %q; want zstd in %s", d.Compression, d.RawPath, cacheDir)
	}
	guid, ss, parts := parseSgdisk(t, filepath.Join(dir, "expected", "gpt.txt"))
	if d.Layout != LayoutGPT || d.DiskGUID != guid || len(d.Warnings) != 0 {
		t.Errorf("layout %s, GUID %s, warnings %q; want gpt, %s, none", d.Layout, d.DiskGUID, d.Warnings, guid)
	}
	if len(parts) != 12 {
		t.Fatalf("gpt.txt lists %d partitions; want 12", len(parts))
	}
	comparePartitions(t, d, ss, parts)

	p, err := d.Select("")
	if err != nil {
		t.Fatal(err)
	}
	if p.Number != 1 || p.Name != "STATE" || p.Start != 4456448000 || p.FS.Type != FSExt4 || p.FS.Label != "STATE" {
		t.Errorf(`Select("") = %+v; want partition 1 STATE ext4 at 4456448000`, p)
	}
	want := map[int]string{2: "ChromeOS kernel", 3: "ChromeOS rootfs", 9: "ChromeOS reserved", 11: "BIOS boot", 12: "EFI system"}
	for _, p := range d.Partitions {
		if w, ok := want[p.Number]; ok && p.Type != w {
			t.Errorf("partition %d type %q; want %q", p.Number, p.Type, w)
		}
	}
	if p, err := d.Select("12"); err != nil || p.FS.Type != FSVFAT || p.FS.Label != "EFI-SYSTEM" {
		t.Errorf("partition 12: %+v, %v; want vfat EFI-SYSTEM", p, err)
	}
	if _, err := d.Select("reserved"); err == nil || !strings.Contains(err.Error(), "matches partitions 9, 10") {
		t.Errorf(`Select("reserved"): %v; want ambiguity between 9 and 10`, err)
	}
}

// The example node image of testdata/images/example (built by its
// generate.sh with real tools) against its own sgdisk listing.
func TestExampleNode(t *testing.T) {
	dir := filepath.Join(testutil.RepoRoot(t), "testdata", "images", "example")
	zst := filepath.Join(dir, "wordpress-node.raw.zst")
	if _, err := os.Stat(zst); err != nil {
		t.Skipf("example image not available: %v", err)
	}
	d, err := Open(zst, Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	guid, ss, parts := parseSgdisk(t, filepath.Join(dir, "expected", "gpt.txt"))
	if d.DiskGUID != guid || len(d.Warnings) != 0 {
		t.Errorf("GUID %s, warnings %q; want %s, none", d.DiskGUID, d.Warnings, guid)
	}
	comparePartitions(t, d, ss, parts)
	if p, err := d.Select(""); err != nil || p.Number != 1 || p.FS.Type != FSExt4 {
		t.Errorf(`Select("") = %+v, %v; want the ext4 STATE partition 1`, p, err)
	}
}
