package vmdk

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/ctrlift/ctrlift/image/vdisk/vdisktest"
	"github.com/klauspost/compress/zlib"
)

// firstGTE returns the byte offset of the first grain table entry of a
// sparse fixture.
func firstGTE(b []byte) int64 {
	gd := int64(le.Uint64(b[hdrGDOffset:])) * sectorSize
	return int64(le.Uint32(b[gd:])) * sectorSize
}

// firstGrain returns the byte offset the first grain table entry points at.
func firstGrain(b []byte) int64 { return int64(le.Uint32(b[firstGTE(b):])) * sectorSize }

func readAll(im *Image) error {
	buf := make([]byte, 64<<10)
	for off := int64(0); off < im.Size() && off < 8<<20; off += int64(len(buf)) {
		if _, err := im.ReadAt(buf, off); err != nil && off+int64(len(buf)) < im.Size() {
			return err
		}
	}
	return nil
}

// zlibBomb is a zlib stream of 1 MiB of zeros, for a 64 KiB grain.
func zlibBomb() []byte {
	var buf bytes.Buffer
	w := zlib.NewWriter(&buf)
	w.Write(make([]byte, 1<<20))
	w.Close()
	return buf.Bytes()
}

// TestCorruptStructures damages one named structure of a real image and
// checks the error says what and where.
func TestCorruptStructures(t *testing.T) {
	fx := vdisktest.Fixtures(t, fixtures)
	set32 := func(off int64, v uint32) func([]byte) []byte {
		return func(b []byte) []byte { le.PutUint32(b[off:], v); return b }
	}
	set64 := func(off int64, v uint64) func([]byte) []byte {
		return func(b []byte) []byte { le.PutUint64(b[off:], v); return b }
	}
	tests := []struct {
		name    string
		fixture string
		mutate  func([]byte) []byte
		want    []string
		read    bool
		warning string
	}{
		{"bad magic", "sparse.vmdk", set32(hdrMagic, 0x12345678), []string{"sparse header at byte 0", "bad magic"}, false, ""},
		{"COWD", "sparse.vmdk", func(b []byte) []byte { copy(b, cowdMagic); return b }, []string{"unsupported", "ESX sparse extent (COWD"}, false, ""},
		{"version 4", "sparse.vmdk", set32(hdrVersion, 4), []string{"unsupported", "sparse extent version 4"}, false, ""},
		{"newline check", "sparse.vmdk", func(b []byte) []byte { b[hdrNewlineChecks+2] = '\n'; return b }, []string{"byte 73", "transferred in text mode"}, false, ""},
		{"compression 2", "stream.vmdk", func(b []byte) []byte { le.PutUint16(b[hdrCompressAlgorithm:], 2); return b }, []string{"unsupported", "compression algorithm 2"}, false, ""},
		{"capacity huge", "sparse.vmdk", set64(hdrCapacity, 1<<50), []string{"byte 12", "capacity of 1125899906842624 sectors too large"}, false, ""},
		{"capacity beyond the grain directory", "sparse.vmdk", set64(hdrCapacity, 1<<40), []string{"byte 56", "grain directory", "outside the file"}, false, ""},
		{"grain size 0", "sparse.vmdk", set64(hdrGrainSize, 0), []string{"byte 20", "grain of 0 sectors"}, false, ""},
		{"grain size huge", "sparse.vmdk", set64(hdrGrainSize, 1<<30), []string{"byte 20", "grain of 1073741824 sectors"}, false, ""},
		{"GTEs per GT 0", "sparse.vmdk", set32(hdrNumGTEsPerGT, 0), []string{"byte 44", "0 entries per grain table"}, false, ""},
		{"GTEs per GT 4096", "sparse.vmdk", set32(hdrNumGTEsPerGT, 4096), []string{"byte 44", "4096 entries per grain table"}, false, ""},
		{"grain directory past the end", "sparse.vmdk", set64(hdrGDOffset, 1<<40), []string{"byte 56", "outside the file"}, false, ""},
		{"grain directory at end without footer", "sparse.vmdk", set64(hdrGDOffset, gdAtEnd), []string{"footer marker", "missing"}, false, ""},
		{"footer bad magic", "footer.vmdk", func(b []byte) []byte { copy(b[len(b)-2*sectorSize:], "XXXX"); return b }, []string{"footer at byte", "bad magic"}, false, ""},
		{"footer without end-of-stream", "footer.vmdk", func(b []byte) []byte { b[len(b)-sectorSize+markerType] = 7; return b }, []string{"end-of-stream marker at byte", "missing"}, false, ""},
		{"footer says at end too", "footer.vmdk", func(b []byte) []byte {
			le.PutUint64(b[len(b)-2*sectorSize+hdrGDOffset:], gdAtEnd)
			return b
		}, []string{"footer at byte", "-1 in the footer too"}, false, ""},
		{"embedded descriptor with parent", "sparse.vmdk", func(b []byte) []byte {
			d := int64(le.Uint64(b[hdrDescriptorOffset:])) * sectorSize
			i := bytes.Index(b[d:], []byte("parentCID=ffffffff"))
			copy(b[d+int64(i):], "parentCID=0000abcd")
			return b
		}, []string{"unsupported", "delta disk with parentCID 0000abcd"}, false, ""},
		{"descriptor holder", "sparse.vmdk", set64(hdrCapacity, 0), []string{"embedded descriptor names its extent files"}, false, ""},
		{"grain table past the end", "sparse.vmdk", func(b []byte) []byte {
			le.PutUint32(b[le.Uint64(b[hdrGDOffset:])*sectorSize:], 1<<30)
			return b
		}, []string{"grain directory", "grain table at sector 1073741824 past the end"}, true, ""},
		{"grain past the end", "sparse.vmdk", func(b []byte) []byte { le.PutUint32(b[firstGTE(b):], 1<<30); return b }, []string{"data at byte 549755813888", "past the end of the file"}, true, ""},
		{"truncated in grains", "sparse.vmdk", func(b []byte) []byte { return b[:firstGrain(b)+1000] }, []string{"past the end of the file"}, true, ""},
		{"grain marker size huge", "stream.vmdk", func(b []byte) []byte { le.PutUint32(b[firstGrain(b)+markerSize:], 1<<30); return b }, []string{"grain marker at byte", "compressed size 1073741824 does not fit"}, true, ""},
		{"grain marker size 0", "stream.vmdk", func(b []byte) []byte { le.PutUint32(b[firstGrain(b)+markerSize:], 0); return b }, []string{"grain marker at byte", "compressed size 0"}, true, ""},
		{"compressed grain garbled", "stream.vmdk", func(b []byte) []byte {
			g := firstGrain(b) + 12
			for i := range int64(40) {
				b[g+i] = 0x55
			}
			return b
		}, []string{"compressed block at byte", "bad"}, true, ""},
		{"zlib bomb", "stream.vmdk", func(b []byte) []byte {
			bomb := zlibBomb()
			at := int64(len(b))
			b = append(b, make([]byte, 12)...)
			le.PutUint32(b[at+markerSize:], uint32(len(bomb)))
			b = append(b, bomb...)
			b = append(b, make([]byte, 1024)...)
			le.PutUint32(b[firstGTE(b):], uint32(at/sectorSize))
			return b
		}, []string{"compressed block at byte", "decompresses to more bytes than the block (65536)"}, true, ""},
		{"unclean shutdown", "sparse.vmdk", func(b []byte) []byte { b[hdrUncleanShutdown] = 1; return b }, nil, false, "unclean shutdown flag set"},
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
		})
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

// TestRandomCorruption flips bits in the real images, deterministically,
// and requires every variant to open-and-read or fail, quickly, without
// panicking.
func TestRandomCorruption(t *testing.T) {
	fx := vdisktest.Fixtures(t, fixtures)
	r := rand.New(rand.NewPCG(3, 3))
	n := 60
	if testing.Short() {
		n = 20
	}
	for name, img := range fx {
		for i := range n {
			data := bytes.Clone(img)
			for range 1 + r.IntN(8) {
				at := r.IntN(len(data))
				if r.IntN(2) == 0 {
					at = r.IntN(min(len(data), 16<<10))
				}
				data[at] ^= byte(1 << r.IntN(8))
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
