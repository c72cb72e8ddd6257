package vhd

import (
	"bytes"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ctrlift/ctrlift/image/vdisk"
	"github.com/ctrlift/ctrlift/image/vdisk/vdisktest"
)

// Helpers that change a field and fix the checksum, so that the field
// itself is what the reader sees as wrong.
func footerField(fromEnd bool, off int64, set func(b []byte)) func([]byte) []byte {
	return func(b []byte) []byte {
		at := int64(0)
		if fromEnd {
			at = int64(len(b)) - footerLen
		}
		set(b[at+off:])
		be.PutUint32(b[at+ftChecksum:], vdisk.VHDChecksumAt(b[at:at+footerLen], ftChecksum))
		return b
	}
}

func bothFooters(off int64, set func(b []byte)) func([]byte) []byte {
	return func(b []byte) []byte { return footerField(true, off, set)(footerField(false, off, set)(b)) }
}

func headerField(off int64, set func(b []byte)) func([]byte) []byte {
	return func(b []byte) []byte {
		dh := int64(be.Uint64(b[ftDataOffset:]))
		set(b[dh+off:])
		be.PutUint32(b[dh+dhChecksum:], vdisk.VHDChecksumAt(b[dh:dh+dynamicHeaderLen], dhChecksum))
		return b
	}
}

func u32(v uint32) func([]byte) { return func(b []byte) { be.PutUint32(b, v) } }
func u64(v uint64) func([]byte) { return func(b []byte) { be.PutUint64(b, v) } }

func batAt(b []byte) int64 {
	dh := int64(be.Uint64(b[ftDataOffset:]))
	return int64(be.Uint64(b[dh+dhTableOffset:]))
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
// checks the error says what and where.
func TestCorruptStructures(t *testing.T) {
	fx := vdisktest.Fixtures(t, fixtures)
	fixedFooter := int64(len(fx["fixed.vhd"])) - footerLen
	tests := []struct {
		name    string
		fixture string
		mutate  func([]byte) []byte
		want    []string
		read    bool
		warning string
	}{
		{"fixed: bad cookie", "fixed.vhd", func(b []byte) []byte { copy(b[len(b)-footerLen:], "CONECTIX"); return b }, []string{"footer at byte " + itoa(fixedFooter), "bad cookie"}, false, ""},
		{"fixed: bad checksum", "fixed.vhd", func(b []byte) []byte { b[len(b)-footerLen+ftOriginalSize]++; return b }, []string{"footer at byte " + itoa(fixedFooter+ftChecksum), "checksum"}, false, ""},
		{"fixed: too small for its size", "fixed.vhd", footerField(true, ftCurrentSize, u64(1<<30)), []string{"fixed disk of 1073741824 bytes, but the file holds"}, false, ""},
		{"fixed: truncated", "fixed.vhd", func(b []byte) []byte { return b[:len(b)-100] }, []string{"bad cookie"}, false, ""},
		{"tiny file", "fixed.vhd", func(b []byte) []byte { return b[:100] }, []string{"smaller than a footer"}, false, ""},
		{"disk type 5", "fixed.vhd", footerField(true, ftDiskType, u32(5)), []string{"unknown disk type 5"}, false, ""},
		{"size huge", "fixed.vhd", footerField(true, ftCurrentSize, u64(1<<60)), []string{"current size 1152921504606846976 too large"}, false, ""},
		{"saved state", "fixed.vhd", footerField(true, ftSavedState, func(b []byte) { b[0] = 1 }), nil, false, "saved-state flag set"},
		{"dynamic: end footer damaged", "dynamic.vhd", func(b []byte) []byte { b[len(b)-footerLen+ftOriginalSize]++; return b }, nil, false, "footer at the end of the file is damaged (checksum"},
		{"dynamic: both footers damaged", "dynamic.vhd", func(b []byte) []byte {
			b[len(b)-footerLen+ftOriginalSize]++
			b[ftOriginalSize]++
			return b
		}, []string{"footer at byte", "checksum"}, false, ""},
		{"dynamic: header offset past the end", "dynamic.vhd", bothFooters(ftDataOffset, u64(1<<40)), []string{"footer at byte", "dynamic header offset 1099511627776 outside the file"}, false, ""},
		{"dynamic: header cookie", "dynamic.vhd", func(b []byte) []byte { copy(b[be.Uint64(b[ftDataOffset:]):], "cxspars3"); return b }, []string{"dynamic header at byte 512", "bad cookie"}, false, ""},
		{"dynamic: header checksum", "dynamic.vhd", func(b []byte) []byte { b[be.Uint64(b[ftDataOffset:])+dhParentTimestamp]++; return b }, []string{"dynamic header at byte 548", "checksum"}, false, ""},
		{"dynamic: block size 3000", "dynamic.vhd", headerField(dhBlockSize, u32(3000)), []string{"dynamic header at byte 544", "block size 3000"}, false, ""},
		{"dynamic: block size 1 GiB", "dynamic.vhd", headerField(dhBlockSize, u32(1<<30)), []string{"block size 1073741824"}, false, ""},
		{"dynamic: BAT too small", "dynamic.vhd", bothFooters(ftCurrentSize, u64(1<<40)), []string{"dynamic header at byte 540", "BAT entries cannot map a 1099511627776-byte disk"}, false, ""},
		{"dynamic: BAT past the end", "dynamic.vhd", headerField(dhTableOffset, u64(1<<40)), []string{"dynamic header at byte 528", "BAT at 1099511627776"}, false, ""},
		{"dynamic: block past the end", "dynamic.vhd", func(b []byte) []byte { be.PutUint32(b[batAt(b):], 1<<30); return b }, []string{"data at byte 549755814400", "past the end of the file"}, true, ""},
		{"differencing: bitmap past the end", "dynamic.vhd", func(b []byte) []byte {
			d, _ := makeDifferencing(t, b)
			be.PutUint32(d[batAt(d):], 1<<30)
			return d
		}, []string{"BAT at byte", "block 0: sector bitmap at byte 549755813888 past the end"}, true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.mutate(bytes.Clone(fx[tc.fixture]))
			opt := Options{}
			if len(b) >= footerLen && be.Uint32(b[len(b)-footerLen+ftDiskType:]) == diskDifferencing {
				opt.Parent = sized{bytes.NewReader(make([]byte, 1<<20))}
			}
			im, err := NewReader(bytes.NewReader(b), int64(len(b)), opt)
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
		})
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

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

// open opens data with a parent when it claims to be a differencing disk.
func open(data []byte) (*Image, error) {
	im, err := NewReader(bytes.NewReader(data), int64(len(data)), Options{})
	if _, ok := err.(*ParentError); ok {
		im, err = NewReader(bytes.NewReader(data), int64(len(data)), Options{Parent: sized{bytes.NewReader(make([]byte, 64<<10))}})
	}
	return im, err
}

// TestRandomCorruption flips bits in the real images, deterministically,
// and requires every variant to open-and-read or fail, quickly, without
// panicking.
func TestRandomCorruption(t *testing.T) {
	fx := vdisktest.Fixtures(t, fixtures)
	diff, _ := makeDifferencing(t, fx["dynamic.vhd"])
	fx["differencing.vhd"] = diff
	r := rand.New(rand.NewPCG(4, 4))
	n := 60
	if testing.Short() {
		n = 20
	}
	for name, img := range fx {
		for i := range n {
			data := bytes.Clone(img)
			for range 1 + r.IntN(8) {
				at := r.IntN(len(data))
				switch r.IntN(3) {
				case 0:
					at = r.IntN(min(len(data), 4096))
				case 1:
					at = len(data) - 1 - r.IntN(min(len(data), 512))
				}
				data[at] ^= byte(1 << r.IntN(8))
			}
			done := make(chan any)
			go func() {
				defer func() { done <- recover() }()
				if im, err := open(data); err == nil {
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
