package image

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ctrlift/ctrlift/internal/testutil"
)

func newDisk(b []byte) (*Disk, error) { return NewDisk(bytes.NewReader(b), int64(len(b))) }

// A truncated GPT disk keeps what it has: partitions are clamped or
// emptied, with warnings, and the complete ones still work.
func TestTruncatedGPT(t *testing.T) {
	b := testutil.DiskBytes(t, "gpt512")[:40<<20] // 81920 sectors
	d, err := newDisk(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Partitions) != 8 {
		t.Fatalf("%d partitions", len(d.Partitions))
	}
	byNum := map[int]Partition{}
	for _, p := range d.Partitions {
		byNum[p.Number] = p
		if p.Start < 0 || p.Size < 0 || p.Start+p.Size > d.Size {
			t.Errorf("partition %d outside the image: start %d size %d", p.Number, p.Start, p.Size)
		}
	}
	if p := byNum[3]; p.Truncated || p.Size != 24576*512 || p.FS.Label != "datavol" {
		t.Errorf("complete partition 3: %+v", p)
	}
	if p := byNum[4]; !p.Truncated || p.Start != 75776*512 || p.Size != (81920-75776)*512 || p.FS.Label != "legacy" {
		t.Errorf("clamped partition 4: %+v", p)
	}
	if p := byNum[8]; !p.Truncated || p.Size != 0 || p.FS.Type != FSUnknown {
		t.Errorf("missing partition 8: %+v", p)
	}
	want := []string{
		"the image is truncated",
		"backup GPT at LBA 81919 is invalid",
		"partition 4: the table gives 8192 sectors but the image holds only 6144 of them: clamped",
		"partition 5 starts at LBA 83968, beyond the end of the image",
		"partition 6 starts at LBA 86016",
		"partition 8 starts at LBA 90112",
		"partition 9 starts at LBA 131072",
	}
	if len(d.Warnings) != len(want) {
		t.Fatalf("warnings %q", d.Warnings)
	}
	for i, w := range want {
		if !strings.Contains(d.Warnings[i], w) {
			t.Errorf("warning %d = %q; want %q", i, d.Warnings[i], w)
		}
	}
	if p, err := d.Select(""); err != nil || p.Number != 1 {
		t.Errorf(`Select("") = %v, %v`, p, err)
	}
}

// Entries pointing far beyond the disk (LBAs whose byte offset overflows
// int64) are emptied, not wrapped around.
func TestPartitionLBAOverflow(t *testing.T) {
	b := testutil.DiskBytes(t, "gpt512")
	ss := 512
	for _, hdr := range []int{ss, len(b) - ss} {
		e := int(binary.LittleEndian.Uint64(b[hdr+72:])) * ss
		binary.LittleEndian.PutUint64(b[e+32:], 1<<62)   // p1 first LBA
		binary.LittleEndian.PutUint64(b[e+40:], 1<<63+5) // p1 last LBA
		binary.LittleEndian.PutUint64(b[e+128+40:], ^uint64(0))
		n := int(binary.LittleEndian.Uint32(b[hdr+80:])) * 128
		binary.LittleEndian.PutUint32(b[hdr+88:], crc32.ChecksumIEEE(b[e:e+n]))
		clear(b[hdr+16 : hdr+20])
		binary.LittleEndian.PutUint32(b[hdr+16:], crc32.ChecksumIEEE(b[hdr:hdr+92]))
	}
	d, err := newDisk(b)
	if err != nil {
		t.Fatal(err)
	}
	p1, p2 := d.Partitions[0], d.Partitions[1]
	if p1.Size != 0 || p1.Start != d.Size || !p1.Truncated {
		t.Errorf("partition 1: %+v", p1)
	}
	if p2.Start != 34816*512 || p2.Size != d.Size-p2.Start || !p2.Truncated || p2.FS.Type != FSVFAT {
		t.Errorf("partition 2: %+v", p2)
	}
}

func TestNoTable(t *testing.T) {
	rnd := make([]byte, 1<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range rnd {
		rnd[i] = byte(r.Uint32())
	}
	for _, tt := range []struct {
		name string
		b    []byte
	}{
		{"random", rnd},
		{"zeros", make([]byte, 1<<20)},
		{"tiny", []byte("not a disk")},
		{"one byte", []byte{0}},
	} {
		d, err := newDisk(tt.b)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if d.Layout != LayoutNone || len(d.Partitions) != 1 || d.Partitions[0].Size != int64(len(tt.b)) ||
			d.Partitions[0].FS.Type != FSUnknown || len(d.Warnings) != 1 || !strings.Contains(d.Warnings[0], "no partition table and no known filesystem") {
			t.Errorf("%s: %+v", tt.name, d)
		}
	}
	if _, err := newDisk(nil); err == nil || !strings.Contains(err.Error(), "empty image") {
		t.Errorf("empty: %v", err)
	}
}

// Only the protective MBR of a GPT disk is left: a clear error, not an
// MBR disk with one partition of type 0xee.
func TestProtectiveMBRWithoutGPT(t *testing.T) {
	b := make([]byte, 1<<20)
	copy(b, testutil.DiskBytes(t, "gpt512")[:512])
	_, err := newDisk(b)
	if err == nil || !strings.Contains(err.Error(), "protective MBR (type 0xee) found but no GPT header") {
		t.Fatalf("err = %v", err)
	}
}

// mbrEBRs returns the byte offsets of the fixture's two EBRs.
func mbrEBRs(b []byte) (int, int) {
	const ext = 26624 * 512
	next := binary.LittleEndian.Uint32(b[ext+446+16+8:])
	return ext, ext + int(next)*512
}

func TestMBRBadChains(t *testing.T) {
	base := testutil.DiskBytes(t, "mbr")
	tests := []struct {
		name     string
		mutate   func(b []byte)
		logicals []int
		warning  string
	}{
		{"clean", func([]byte) {}, []int{5, 6}, ""},
		{"EBR chain loops", func(b []byte) {
			_, e2 := mbrEBRs(b)
			copy(b[e2+446+16:], b[26624*512+446+16:][:16]) // second EBR points to itself
		}, []int{5, 6}, "EBR chain loops back to LBA"},
		{"EBR beyond end", func(b []byte) {
			_, e2 := mbrEBRs(b)
			e := b[e2+446+16:]
			e[4] = 0x05
			binary.LittleEndian.PutUint32(e[8:], 0xFFFFFF00)
		}, []int{5, 6}, "beyond end of image"},
		{"EBR damaged", func(b []byte) {
			_, e2 := mbrEBRs(b)
			b[e2+510] = 0
		}, []int{5}, "extended partition: EBR at LBA"},
		{"logical beyond end", func(b []byte) {
			e1, _ := mbrEBRs(b)
			binary.LittleEndian.PutUint32(b[e1+446+8:], 0xFFFFFFF0)
		}, []int{5, 6}, "partition 5 starts at LBA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := bytes.Clone(base)
			tt.mutate(b)
			d, err := newDisk(b)
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			for _, p := range d.Partitions {
				if p.Logical {
					got = append(got, p.Number)
				}
				if p.Start+p.Size > d.Size {
					t.Errorf("partition %d beyond the image", p.Number)
				}
			}
			if len(got) != len(tt.logicals) {
				t.Errorf("logical partitions %v; want %v", got, tt.logicals)
			}
			switch {
			case tt.warning == "" && len(d.Warnings) != 0:
				t.Errorf("warnings %q", d.Warnings)
			case tt.warning != "" && (len(d.Warnings) == 0 || !strings.Contains(strings.Join(d.Warnings, "\n"), tt.warning)):
				t.Errorf("warnings %q; want %q", d.Warnings, tt.warning)
			}
		})
	}
}
