package vhdx

import (
	"bytes"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/ctrlift/ctrlift/image/vdisk/vdisktest"
)

// resign recomputes the CRC-32C of a header (4 KiB) or region table
// (64 KiB) at off, so that a mutated field is what the reader objects to.
func resign(b []byte, off, n int64) {
	le.PutUint32(b[off+4:], 0)
	le.PutUint32(b[off+4:], crc32.Checksum(b[off:off+n], castagnoli))
}

// inHeaders changes a field in both headers.
func inHeaders(field int64, set func([]byte)) func([]byte) []byte {
	return func(b []byte) []byte {
		for _, at := range []int64{header1At, header2At} {
			set(b[at+field:])
			resign(b, at, headerLen)
		}
		return b
	}
}

// inRegionTables changes bytes of both region tables.
func inRegionTables(field int64, set func([]byte)) func([]byte) []byte {
	return func(b []byte) []byte {
		for _, at := range []int64{regionTable1At, regionTable2At} {
			set(b[at+field:])
			resign(b, at, regionTableLen)
		}
		return b
	}
}

// regionEntry returns the offset, within a region table, of the entry for id.
func regionEntry(b []byte, id guid) int64 {
	t := b[regionTable1At:]
	for i := range int64(le.Uint32(t[rtEntryCount:])) {
		at := rtEntries + i*rtEntryLen
		if guidAt(t[at:]) == id {
			return at
		}
	}
	panic("no region " + id.String())
}

func regionOffset(b []byte, id guid) int64 {
	return int64(le.Uint64(b[regionTable1At+regionEntry(b, id)+rtEntryOffset:]))
}

// metaItem returns the file offsets of the metadata table entry for id and
// of its data.
func metaItem(b []byte, id guid) (entry, data int64) {
	reg := regionOffset(b, guidMetadataRegion)
	for i := range int64(le.Uint16(b[reg+mtEntryCount:])) {
		at := reg + mtEntries + i*mtEntryLen
		if guidAt(b[at:]) == id {
			return at, reg + int64(le.Uint32(b[at+mtEntryOffset:]))
		}
	}
	panic("no metadata item " + id.String())
}

func inItem(id guid, off int64, set func([]byte)) func([]byte) []byte {
	return func(b []byte) []byte {
		_, data := metaItem(b, id)
		set(b[data+off:])
		return b
	}
}

func u16(v uint16) func([]byte) { return func(b []byte) { le.PutUint16(b, v) } }
func u32(v uint32) func([]byte) { return func(b []byte) { le.PutUint32(b, v) } }
func u64(v uint64) func([]byte) { return func(b []byte) { le.PutUint64(b, v) } }

func setBAT(i int64, v uint64) func([]byte) []byte {
	return func(b []byte) []byte {
		le.PutUint64(b[regionOffset(b, guidBATRegion)+i*batEntryLen:], v)
		return b
	}
}

func readAll(im *Image) error {
	buf := make([]byte, 64<<10)
	for off := int64(0); off < im.Size() && off < 8<<20; off += int64(len(buf)) {
		if _, err := im.ReadAt(buf, off); err != nil && off+int64(len(buf)) < im.Size() {
			return err
		}
	}
	return nil
}

// TestCorruptStructures damages one named structure of a real image and
// checks the error says what and where. Log replay and differencing are
// states qemu-img cannot be made to leave behind: they are made by
// mutation here.
func TestCorruptStructures(t *testing.T) {
	fx := vdisktest.Fixtures(t, fixtures)
	newGUID := mustGUID("01234567-89AB-CDEF-0123-456789ABCDEF")
	tests := []struct {
		name    string
		fixture string
		mutate  func([]byte) []byte
		want    []string
		read    bool
		warning string
	}{
		{"file identifier", "dynamic.vhdx", func(b []byte) []byte { copy(b, "vhdxfilf"); return b }, []string{"file identifier at byte 0", "bad signature"}, false, ""},
		{"truncated", "dynamic.vhdx", func(b []byte) []byte { return b[:500<<10] }, []string{"smaller than the 1048576-byte header section"}, false, ""},
		{"both headers damaged", "dynamic.vhdx", func(b []byte) []byte { b[header1At+100]++; b[header2At+100]++; return b }, []string{"header at byte 65540", "CRC-32C"}, false, ""},
		{"header signature", "dynamic.vhdx", func(b []byte) []byte { copy(b[header1At:], "HEAD"); copy(b[header2At:], "HEAD"); return b }, []string{"header at byte 65536", "bad signature"}, false, ""},
		{"one header damaged", "dynamic.vhdx", func(b []byte) []byte { b[header1At+100]++; return b }, nil, false, "one header is damaged (header at byte 65540: CRC-32C"},
		{"log needs replay", "dynamic.vhdx", inHeaders(hdLogGUID, func(b []byte) { copy(b, newGUID[:]) }), []string{"unsupported", "log needs replay", "log GUID 01234567-89AB-CDEF-0123-456789ABCDEF", "replay it on a copy"}, false, ""},
		{"header version 2", "dynamic.vhdx", inHeaders(hdVersion, u16(2)), []string{"unsupported", "header version 2"}, false, ""},
		{"region tables damaged", "dynamic.vhdx", func(b []byte) []byte { b[regionTable1At+20]++; b[regionTable2At+20]++; return b }, []string{"region table at byte 196612", "CRC-32C"}, false, ""},
		{"first region table damaged", "dynamic.vhdx", func(b []byte) []byte { b[regionTable1At+20]++; return b }, nil, false, "first region table is damaged"},
		{"region count huge", "dynamic.vhdx", inRegionTables(rtEntryCount, u32(5000)), []string{"region table at byte 196616", "5000 entries"}, false, ""},
		{"unknown required region", "dynamic.vhdx", func(b []byte) []byte {
			for _, at := range []int64{regionTable1At, regionTable2At} {
				n := int64(le.Uint32(b[at+rtEntryCount:]))
				e := b[at+rtEntries+n*rtEntryLen:]
				copy(e, newGUID[:])
				le.PutUint64(e[rtEntryOffset:], 1<<20)
				le.PutUint32(e[rtEntryLength:], 1<<20)
				le.PutUint32(e[rtEntryRequired:], 1)
				le.PutUint32(b[at+rtEntryCount:], uint32(n+1))
				resign(b, at, regionTableLen)
			}
			return b
		}, []string{"unsupported", "required region 01234567-89AB-CDEF-0123-456789ABCDEF"}, false, ""},
		{"BAT region past the end", "dynamic.vhdx", func(b []byte) []byte {
			return inRegionTables(regionEntry(b, guidBATRegion)+rtEntryOffset, u64(1<<40))(b)
		}, []string{"region table entry at byte", "outside the file"}, false, ""},
		{"BAT region in the header section", "dynamic.vhdx", func(b []byte) []byte {
			return inRegionTables(regionEntry(b, guidBATRegion)+rtEntryOffset, u64(64<<10))(b)
		}, []string{"region table entry at byte", "not 1 MiB aligned"}, false, ""},
		{"BAT region too small", "dynamic.vhdx", func(b []byte) []byte {
			b = inItem(guidVirtualDiskSize, 0, u64(1<<40))(b)
			return b
		}, []string{"BAT region of 1048576 bytes cannot hold the 1048831 entries"}, false, ""},
		{"metadata signature", "dynamic.vhdx", func(b []byte) []byte { copy(b[regionOffset(b, guidMetadataRegion):], "METADATA"); return b }, []string{"metadata table at byte", "bad signature"}, false, ""},
		{"unknown required metadata", "dynamic.vhdx", func(b []byte) []byte {
			e, _ := metaItem(b, guidVirtualDiskID)
			copy(b[e:], newGUID[:])
			le.PutUint32(b[e+mtEntryFlags:], metaIsRequired)
			return b
		}, []string{"unsupported", "required metadata item 01234567-89AB-CDEF-0123-456789ABCDEF"}, false, ""},
		{"metadata item outside", "dynamic.vhdx", func(b []byte) []byte {
			e, _ := metaItem(b, guidFileParameters)
			le.PutUint32(b[e+mtEntryOffset:], 1<<30)
			return b
		}, []string{"metadata table entry at byte", "outside the 1048576-byte metadata region"}, false, ""},
		{"no file parameters", "dynamic.vhdx", func(b []byte) []byte {
			e, _ := metaItem(b, guidFileParameters)
			copy(b[e:], newGUID[:])
			le.PutUint32(b[e+mtEntryFlags:], 0)
			return b
		}, []string{"metadata table at byte", "no file parameters item"}, false, ""},
		{"block size 3 MiB", "dynamic.vhdx", inItem(guidFileParameters, 0, u32(3<<20)), []string{"file parameters at byte 3211264", "block size 3145728"}, false, ""},
		{"block size 0", "dynamic.vhdx", inItem(guidFileParameters, 0, u32(0)), []string{"block size 0"}, false, ""},
		{"logical sector 1000", "dynamic.vhdx", inItem(guidLogicalSector, 0, u32(1000)), []string{"logical sector size", "1000 (512 or 4096)"}, false, ""},
		{"virtual size too large", "dynamic.vhdx", inItem(guidVirtualDiskSize, 0, u64(1<<50)), []string{"virtual disk size", "1125899906842624"}, false, ""},
		{"virtual size not in sectors", "dynamic.vhdx", inItem(guidVirtualDiskSize, 0, u64(1000)), []string{"virtual disk size", "1000 (a multiple of the 512-byte sector"}, false, ""},
		{"differencing", "dynamic.vhdx", inItem(guidFileParameters, 4, u32(hasParent)), []string{"unsupported", "differencing disk (no parent locator)"}, false, ""},
		{"block partially present", "dynamic.vhdx", setBAT(0, 7|4<<20), []string{"BAT entry at byte", "block 0 partially present in a disk without a parent"}, true, ""},
		{"block in reserved state", "dynamic.vhdx", setBAT(0, 5|4<<20), []string{"BAT entry at byte", "block 0 in reserved state 5"}, true, ""},
		{"block in the header section", "dynamic.vhdx", setBAT(0, blockFullyPresent), []string{"BAT entry at byte", "block 0 at file offset 0, inside the header section"}, true, ""},
		{"block past the end", "dynamic.vhdx", setBAT(0, blockFullyPresent|1<<40), []string{"data at byte 1099511627776", "past the end of the file"}, true, ""},
		{"fixed truncated in data", "fixed.vhdx", func(b []byte) []byte {
			off := int64(le.Uint64(b[regionOffset(b, guidBATRegion):]) >> batOffsetShift << batOffsetShift)
			return b[:off+1000]
		}, []string{"data at byte", "past the end of the file"}, true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.mutate(bytes.Clone(fx[tc.fixture]))
			im, err := NewReader(bytes.NewReader(b), int64(len(b)), Options{})
			if err == nil && tc.read {
				err = readAll(im)
			}
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if err := readAll(im); err != nil {
					t.Fatal(err)
				}
				if w := strings.Join(im.Info().Warnings, "\n"); !strings.Contains(w, tc.warning) {
					t.Fatalf("warnings %q, want %q", w, tc.warning)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error; want %q", tc.want)
			}
			t.Log(err)
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if tc.name == "log needs replay" && !errors.Is(err, ErrLogReplay) {
				t.Errorf("%v does not wrap ErrLogReplay", err)
			}
		})
	}
}

// TestZeroStates checks that blocks in the zero-ish states read as zeros.
func TestZeroStates(t *testing.T) {
	for _, state := range []uint64{blockNotPresent, blockUndefined, blockZero, blockUnmapped} {
		b := setBAT(0, state|4<<20)(bytes.Clone(vdisktest.Fixtures(t, fixtures)["dynamic.vhdx"]))
		im, err := NewReader(bytes.NewReader(b), int64(len(b)), Options{})
		if err != nil {
			t.Fatal(err)
		}
		vdisktest.Verify(t, im, nil)
	}
}

// exercise reads a bounded sample of a (possibly hostile) image.
func exercise(im *Image) {
	buf := make([]byte, 96<<10)
	size := im.Size()
	for _, off := range []int64{0, 100 << 10, size / 2, size - 1000, size - int64(len(buf))} {
		if off >= 0 && off < size {
			im.ReadAt(buf, off)
		}
	}
	im.ReadAt(buf[:7], 4093)
	im.Info()
}

// TestRandomCorruption flips bits in the structures of the real images,
// deterministically, re-signing the headers and region tables half of the
// time so that the damage gets past the checksums, and requires every
// variant to open-and-read or fail, quickly, without panicking.
func TestRandomCorruption(t *testing.T) {
	fx := vdisktest.Fixtures(t, fixtures)
	r := rand.New(rand.NewPCG(5, 5))
	n := 60
	if testing.Short() {
		n = 20
	}
	for name, img := range fx {
		bat, meta := regionOffset(img, guidBATRegion), regionOffset(img, guidMetadataRegion)
		for i := range n {
			data := bytes.Clone(img)
			for range 1 + r.IntN(6) {
				var at int64
				switch r.IntN(4) {
				case 0:
					at = header1At + r.Int64N(128)
				case 1:
					at = regionTable1At + r.Int64N(128)
				case 2:
					at = meta + r.Int64N(512)
				case 3:
					at = bat + r.Int64N(64)
				}
				data[at] ^= byte(1 << r.IntN(8))
			}
			if r.IntN(2) == 0 {
				resign(data, header1At, headerLen)
				resign(data, regionTable1At, regionTableLen)
			}
			done := make(chan any)
			go func() {
				defer func() { done <- recover() }()
				if im, err := NewReader(bytes.NewReader(data), int64(len(data)), Options{}); err == nil {
					exercise(im)
				} else if strings.Contains(err.Error(), "\n") {
					panic("multi-line error: " + err.Error())
				}
			}()
			select {
			case p := <-done:
				if p != nil {
					t.Fatalf("%s variant %d: panic: %v", name, i, p)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("%s variant %d: no result after 5s", name, i)
			}
		}
	}
}

// TestParentName reads the name a parent locator gives.
func TestParentName(t *testing.T) {
	utf16le := func(s string) []byte {
		var b []byte
		for _, r := range s {
			b = append(b, byte(r), byte(r>>8))
		}
		return b
	}
	locator := func(kv ...string) []byte {
		b := make([]byte, plEntries+len(kv)/2*plEntryLen)
		le.PutUint16(b[plKeyValueCount:], uint16(len(kv)/2))
		for i := 0; i < len(kv); i += 2 {
			e := b[plEntries+i/2*plEntryLen:]
			k, v := utf16le(kv[i]), utf16le(kv[i+1])
			le.PutUint32(e, uint32(len(b)))
			le.PutUint16(e[8:], uint16(len(k)))
			b = append(b, k...)
			e = b[plEntries+i/2*plEntryLen:]
			le.PutUint32(e[4:], uint32(len(b)))
			le.PutUint16(e[10:], uint16(len(v)))
			b = append(b, v...)
		}
		return b
	}
	for _, tc := range []struct {
		b    []byte
		want string
	}{
		{locator("parent_linkage", "{guid}", "relative_path", `..\base.vhdx`, "absolute_win32_path", `C:\vms\base.vhdx`), `..\base.vhdx`},
		{locator("parent_linkage", "{guid}", "absolute_win32_path", `C:\vms\base.vhdx`), `C:\vms\base.vhdx`},
		{locator("parent_linkage", "{guid}"), "{guid}"},
		{locator(), ""},
		{[]byte{1, 2, 3}, ""},
		{func() []byte { b := locator("relative_path", "x.vhdx"); le.PutUint32(b[plEntries+4:], 1<<30); return b }(), ""},
	} {
		if got := parentName(tc.b); got != tc.want {
			t.Errorf("parentName = %q, want %q", got, tc.want)
		}
	}
}
