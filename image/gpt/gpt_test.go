package gpt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"strings"
	"testing"

	"github.com/ctrlift/ctrlift/internal/testutil"
)

var le = binary.LittleEndian

// fixHeader recomputes the CRC of the header at byte offset off.
func fixHeader(b []byte, off int) {
	h := b[off : off+headerLen]
	clear(h[hdrCRC : hdrCRC+4])
	le.PutUint32(h[hdrCRC:], crc32.ChecksumIEEE(h))
}

// fixEntries recomputes the entry array CRC named by the header at off, then
// the header CRC. Entry counts that do not fit are left alone.
func fixEntries(b []byte, off, ss int) {
	h := b[off:]
	start := int(le.Uint64(h[hdrEntriesLBA:])) * ss
	n := int(le.Uint32(h[hdrNumEntries:])) * int(le.Uint32(h[hdrEntrySize:]))
	if start >= 0 && n >= 0 && start+n <= len(b) {
		le.PutUint32(h[hdrEntriesCRC:], crc32.ChecksumIEEE(b[start:start+n]))
	}
	fixHeader(b, off)
}

func TestRead(t *testing.T) {
	base := testutil.DiskBytes(t, "gpt512")
	const ss = 512
	last := len(base)/ss - 1
	prim, back := ss, last*ss // header offsets
	entries := func(b []byte, hdr int) int { return int(le.Uint64(b[hdr+hdrEntriesLBA:])) * ss }
	entry := func(b []byte, hdr, i int) []byte { return b[entries(b, hdr)+i*EntrySize:][:EntrySize] }
	bothHeaders := func(f func(b []byte, hdr int)) func([]byte) {
		return func(b []byte) { f(b, prim); f(b, back) }
	}

	tests := []struct {
		name       string
		mutate     func([]byte)
		size       int // 0: len(base)
		wantErr    string
		fromBackup bool
		warnings   []string
		parts      int
	}{
		{name: "clean", mutate: func([]byte) {}, parts: 8},
		{
			name:   "primary signature wiped",
			mutate: func(b []byte) { clear(b[prim : prim+8]) }, fromBackup: true, parts: 8,
			warnings: []string{"primary GPT at LBA 1 is invalid (gpt: bad header signature at offset 512"},
		},
		{
			name:   "primary header CRC wrong",
			mutate: func(b []byte) { b[prim+hdrCRC]++ }, fromBackup: true, parts: 8,
			warnings: []string{"header CRC mismatch at offset 528"},
		},
		{
			name:   "primary header field changed",
			mutate: func(b []byte) { b[prim+hdrFirstUsable]++ }, fromBackup: true, parts: 8,
			warnings: []string{"header CRC mismatch"},
		},
		{
			name:   "primary entries damaged",
			mutate: func(b []byte) { entry(b, prim, 0)[60] ^= 0xFF }, fromBackup: true, parts: 8,
			warnings: []string{"partition entry array CRC mismatch at offset 1024"},
		},
		{
			name:   "backup header damaged",
			mutate: func(b []byte) { b[back+hdrCRC]++ }, parts: 8,
			warnings: []string{"backup GPT at LBA 147455 is invalid (gpt: header CRC mismatch"},
		},
		{
			name:   "backup entries differ",
			mutate: func(b []byte) { entry(b, back, 0)[56] = 'X'; fixEntries(b, back, ss) }, parts: 8,
			warnings: []string{"primary and backup GPT partition entries differ"},
		},
		{
			name:    "both damaged",
			mutate:  func(b []byte) { b[prim+hdrCRC]++; entry(b, back, 1)[0]++ },
			wantErr: "primary GPT at LBA 1 invalid: gpt: header CRC mismatch at offset 528: stored",
		},
		{
			name:    "both damaged message names backup",
			mutate:  func(b []byte) { b[prim+hdrCRC]++; entry(b, back, 1)[0]++ },
			wantErr: "backup GPT at LBA 147455 invalid: gpt: partition entry array CRC mismatch",
		},
		{
			name:   "absurd entry count in primary",
			mutate: func(b []byte) { le.PutUint32(b[prim+hdrNumEntries:], 0xFFFFFFFF); fixHeader(b, prim) }, fromBackup: true, parts: 8,
			warnings: []string{"partition entry count above 32768 at offset 592: 4294967295"},
		},
		{
			name:    "absurd entry count in both",
			mutate:  bothHeaders(func(b []byte, h int) { le.PutUint32(b[h+hdrNumEntries:], 1<<24); fixHeader(b, h) }),
			wantErr: "partition entry count above 32768",
		},
		{
			name:    "entry size 0 in both (go-diskfs would loop forever)",
			mutate:  bothHeaders(func(b []byte, h int) { le.PutUint32(b[h+hdrEntrySize:], 0); fixEntries(b, h, ss) }),
			wantErr: "unsupported partition entry size at offset",
		},
		{
			name:    "entry size 256",
			mutate:  bothHeaders(func(b []byte, h int) { le.PutUint32(b[h+hdrEntrySize:], 256); fixEntries(b, h, ss) }),
			wantErr: "unsupported partition entry size",
		},
		{
			name:    "entries beyond end of disk",
			mutate:  bothHeaders(func(b []byte, h int) { le.PutUint64(b[h+hdrEntriesLBA:], 1<<62); fixHeader(b, h) }),
			wantErr: "partition entry array beyond end of disk",
		},
		{
			name:    "entries overlapping the header",
			mutate:  bothHeaders(func(b []byte, h int) { le.PutUint64(b[h+hdrEntriesLBA:], uint64(h/ss)); fixEntries(b, h, ss) }),
			wantErr: "partition entry array overlaps the header",
		},
		{
			name:   "primary names a wrong LBA",
			mutate: func(b []byte) { le.PutUint64(b[prim+hdrMyLBA:], 7); fixHeader(b, prim) }, fromBackup: true, parts: 8,
			warnings: []string{"header found at LBA 1 names another LBA at offset 536: 7"},
		},
		{
			name:    "header size 512",
			mutate:  bothHeaders(func(b []byte, h int) { le.PutUint32(b[h+hdrSize:], 512); fixHeader(b, h) }),
			wantErr: "unsupported header size",
		},
		{
			name:    "revision 2",
			mutate:  bothHeaders(func(b []byte, h int) { le.PutUint32(b[h+hdrRevision:], 0x00020000); fixHeader(b, h) }),
			wantErr: "unsupported header revision",
		},
		{
			name: "partition beyond end, first after last, overlap",
			mutate: bothHeaders(func(b []byte, h int) {
				le.PutUint64(entry(b, h, 0)[40:], 1<<40) // p1 last LBA far away (overlaps all)
				le.PutUint64(entry(b, h, 1)[32:], 60000) // p2 first after its last
				fixEntries(b, h, ss)
			}),
			parts: 8,
			warnings: []string{
				"partition 1: LBAs 2048-1099511627776 lie outside the usable area 34-147422",
				"partition 2: first LBA 60000 is after last LBA 51199",
				"partitions 1 and 3 overlap",
			},
		},
		{
			name: "truncated image", mutate: func([]byte) {}, size: 40 << 20, parts: 8,
			warnings: []string{
				"primary GPT header places the backup header at LBA 147455 but the image ends at LBA 81919: the image is truncated",
				"backup GPT at LBA 81919 is invalid (gpt: bad header signature",
			},
		},
		{
			name: "primary only (first 64 KiB)", mutate: func([]byte) {}, size: 64 << 10, parts: 8,
			warnings: []string{"the image is truncated", "backup GPT at LBA 127 is invalid"},
		},
		{
			name: "primary damaged and image truncated", mutate: func(b []byte) { b[prim+hdrCRC]++ }, size: 40 << 20,
			wantErr: "backup GPT at LBA 81919 invalid",
		},
		{name: "no GPT", mutate: func(b []byte) { clear(b[prim : prim+8]); clear(b[back : back+8]) }, wantErr: ErrNotGPT.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := bytes.Clone(base)
			tt.mutate(b)
			if tt.size != 0 {
				b = b[:tt.size]
			}
			tab, err := Read(bytes.NewReader(b), int64(len(b)))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v; want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tab.FromBackup != tt.fromBackup || len(tab.Partitions) != tt.parts {
				t.Errorf("from backup %v, %d partitions; want %v, %d", tab.FromBackup, len(tab.Partitions), tt.fromBackup, tt.parts)
			}
			if len(tab.Warnings) != len(tt.warnings) {
				t.Fatalf("warnings %q; want %d like %q", tab.Warnings, len(tt.warnings), tt.warnings)
			}
			for i, w := range tt.warnings {
				if !strings.Contains(tab.Warnings[i], w) {
					t.Errorf("warning %d = %q; want it to contain %q", i, tab.Warnings[i], w)
				}
			}
			if tt.parts > 0 {
				p := tab.Partitions[0]
				if p.Number != 1 || p.Name != "STATE" || p.TypeGUID != TypeLinuxFilesystem || p.FirstLBA != 2048 || p.GUID != "5A5A0001-0000-4000-8000-000000000001" {
					t.Errorf("partition 1 = %+v", p)
				}
			}
			if tab.Header.DiskGUID != "5A5A0001-0000-4000-8000-000000000512" {
				t.Errorf("disk GUID %s", tab.Header.DiskGUID)
			}
		})
	}
}

// 4096-byte sectors, including the fallback to the backup.
func TestRead4K(t *testing.T) {
	b := testutil.DiskBytes(t, "gpt4k")
	for _, damage := range []bool{false, true} {
		if damage {
			b[4096+hdrCRC]++
		}
		if got := Probe(bytes.NewReader(b), int64(len(b))); got != 4096 {
			t.Errorf("Probe = %d; want 4096", got)
		}
		tab, err := Read(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		if tab.SectorSize != 4096 || tab.FromBackup != damage || len(tab.Partitions) != 3 {
			t.Errorf("damage %v: sector size %d, from backup %v, %d partitions", damage, tab.SectorSize, tab.FromBackup, len(tab.Partitions))
		}
		if p := tab.Partitions[2]; p.Number != 3 || p.Name != "big" || p.FirstLBA != 6400 || p.LastLBA != 11519 {
			t.Errorf("partition 3 = %+v", p)
		}
		if damage && (len(tab.Warnings) != 1 || !strings.Contains(tab.Warnings[0], "partitions were read from the backup GPT at LBA 12287")) {
			t.Errorf("warnings %q", tab.Warnings)
		}
	}
}

func TestReadNotGPT(t *testing.T) {
	mbr := testutil.DiskBytes(t, "mbr")
	for _, b := range [][]byte{nil, make([]byte, 100), make([]byte, 1024), make([]byte, 1<<20), mbr, []byte(Signature)} {
		if _, err := Read(bytes.NewReader(b), int64(len(b))); !errors.Is(err, ErrNotGPT) {
			t.Errorf("%d bytes: err = %v; want ErrNotGPT", len(b), err)
		}
	}
}

// A header that claims more bytes than the reader has must not be read
// past the end of what the caller said the size is.
func TestReadSizeSmallerThanReader(t *testing.T) {
	b := testutil.DiskBytes(t, "gpt512")
	tab, err := Read(bytes.NewReader(b), 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	if len(tab.Warnings) == 0 || !strings.Contains(tab.Warnings[0], "the image ends at LBA 127") {
		t.Errorf("warnings %q", tab.Warnings)
	}
}

func TestMaskedReader(t *testing.T) {
	src := bytes.Repeat([]byte{1}, 100)
	m := &maskedReader{r: bytes.NewReader(src), size: 50, maskOff: 10, maskLen: 5}
	p := make([]byte, 60)
	n, err := m.ReadAt(p, 0)
	if n != 50 || err == nil {
		t.Fatalf("n=%d err=%v; want 50, EOF", n, err)
	}
	for i := range 50 {
		want := byte(1)
		if i >= 10 && i < 15 {
			want = 0
		}
		if p[i] != want {
			t.Fatalf("byte %d = %d; want %d", i, p[i], want)
		}
	}
	if n, err := m.ReadAt(p, 50); n != 0 || err == nil {
		t.Fatalf("read at end: %d, %v", n, err)
	}
}

func TestFormatGUID(t *testing.T) {
	// The disk GUID bytes of the COS fixture as stored on disk.
	b := []byte{0x3d, 0x2b, 0x1a, 0x4c, 0x00, 0x00, 0x00, 0x40, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0x5f}
	if got := FormatGUID(b); got != "4C1A2B3D-0000-4000-8000-00000000C05F" {
		t.Errorf("FormatGUID = %s", got)
	}
	if FormatGUID(b[:3]) != "" {
		t.Error("short GUID not rejected")
	}
	if TypeName(TypeChromeOSReserved) != "ChromeOS reserved" || TypeName("X") != "unknown" {
		t.Error("TypeName")
	}
}
