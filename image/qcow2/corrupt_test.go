package qcow2

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/ctrlift/ctrlift/image/vdisk/vdisktest"
	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zstd"
)

var be = binary.BigEndian

// layout locates the structures of a fixture for mutation.
type layout struct {
	l1, l2 int64 // offsets of the L1 table and of the first L2 table
}

func locate(b []byte) layout {
	l1 := int64(be.Uint64(b[hdrL1TableOffset:]))
	return layout{l1: l1, l2: int64(be.Uint64(b[l1:]) & l1OffsetMask)}
}

// firstEntry returns the offset of the first L2 entry with a data cluster
// (not zero, not unallocated).
func firstEntry(t *testing.T, b []byte, lay layout, entryLen int64) int64 {
	for i := int64(0); i < 64; i++ {
		e := be.Uint64(b[lay.l2+i*entryLen:])
		if e&l2OffsetMask != 0 || e&l2Compressed != 0 {
			return lay.l2 + i*entryLen
		}
	}
	t.Fatal("no allocated cluster in fixture")
	return 0
}

// readAll reads the whole virtual disk (fixtures are small; a mutated size
// is bounded by exercise).
func readAll(im *Image) error {
	buf := make([]byte, 64<<10)
	for off := int64(0); off < im.Size() && off < 8<<20; off += int64(len(buf)) {
		if _, err := im.ReadAt(buf, off); err != nil && err != io.EOF {
			return err
		}
	}
	return nil
}

// TestCorruptStructures damages one named structure of a real image and
// checks the error says what and where.
func TestCorruptStructures(t *testing.T) {
	fx := vdisktest.Fixtures(t, fixtures)
	set32 := func(off int64, v uint32) func([]byte) []byte {
		return func(b []byte) []byte { be.PutUint32(b[off:], v); return b }
	}
	set64 := func(off int64, v uint64) func([]byte) []byte {
		return func(b []byte) []byte { be.PutUint64(b[off:], v); return b }
	}
	tests := []struct {
		name    string
		fixture string
		mutate  func(b []byte) []byte
		want    []string // substrings of the error of Open, or of reading when wantRead
		read    bool     // the error comes from reading, not opening
		warning string   // opens and reads fine, with this warning
	}{
		{"bad magic", "v3.qcow2", set32(hdrMagic, 0x51464900), []string{"header at byte 0", "bad magic"}, false, ""},
		{"qcow version 1", "v3.qcow2", set32(hdrVersion, 1), []string{"unsupported", "qcow version 1"}, false, ""},
		{"version 4", "v3.qcow2", set32(hdrVersion, 4), []string{"header at byte 4", "unknown version 4"}, false, ""},
		{"cluster_bits 8", "v3.qcow2", set32(hdrClusterBits, 8), []string{"byte 20", "cluster_bits 8 outside 9..21"}, false, ""},
		{"cluster_bits 63", "v3.qcow2", set32(hdrClusterBits, 63), []string{"cluster_bits 63"}, false, ""},
		{"virtual size 2^60", "v3.qcow2", set64(hdrSize, 1<<60), []string{"byte 24", "virtual size"}, false, ""},
		{"virtual size beyond L1", "v3.qcow2", set64(hdrSize, 1<<40), []string{"byte 36", "L1 table of 1 entries cannot map"}, false, ""},
		{"L1 size huge", "v3.qcow2", set32(hdrL1Size, 0xffffffff), []string{"byte 36", "exceeds"}, false, ""},
		{"L1 offset past the end", "v3.qcow2", set64(hdrL1TableOffset, 1<<40), []string{"byte 40", "past the end"}, false, ""},
		{"L1 offset unaligned", "v3.qcow2", func(b []byte) []byte {
			be.PutUint64(b[hdrL1TableOffset:], be.Uint64(b[hdrL1TableOffset:])+8)
			return b
		}, []string{"byte 40", "not a non-zero multiple"}, false, ""},
		{"L1 table truncated", "v3.qcow2", func(b []byte) []byte { return b[:locate(b).l1+4] }, []string{"L1 table at byte", "past the end"}, false, ""},
		{"crypt LUKS", "v3.qcow2", set32(hdrCryptMethod, cryptLUKS), []string{"encrypted image (LUKS)"}, false, ""},
		{"crypt AES", "v2.qcow2", set32(hdrCryptMethod, cryptAES), []string{"encrypted image (AES)"}, false, ""},
		{"crypt unknown", "v3.qcow2", set32(hdrCryptMethod, 9), []string{"byte 32", "unknown crypt_method 9"}, false, ""},
		{"external data file", "v3.qcow2", set64(hdrIncompatible, incompatExternalData), []string{"unsupported", "external data file"}, false, ""},
		{"unknown incompatible bit", "v3.qcow2", set64(hdrIncompatible, 1<<9), []string{"unknown incompatible features: bit 9"}, false, ""},
		{"zstd without feature bit", "v3.qcow2", func(b []byte) []byte { b[hdrCompressionType] = compressionZstd; return b }, []string{"byte 104", "without the compression type feature bit"}, false, ""},
		{"compression type 7", "zstd.qcow2", func(b []byte) []byte { b[hdrCompressionType] = 7; return b }, []string{"unsupported", "compression_type 7"}, false, ""},
		{"header_length 100", "v3.qcow2", set32(hdrHeaderLength, 100), []string{"byte 100", "header_length 100"}, false, ""},
		{"header_length huge", "v3.qcow2", set32(hdrHeaderLength, 1<<30), []string{"header_length"}, false, ""},
		{"extended L2 with small clusters", "v3.qcow2", set64(hdrIncompatible, incompatExtendedL2), []string{"extended L2 entries need clusters of at least 16384"}, false, ""},
		{"header extension overruns", "v3.qcow2", func(b []byte) []byte {
			hl := int64(be.Uint32(b[hdrHeaderLength:]))
			be.PutUint32(b[hl:], 0x12345678)
			be.PutUint32(b[hl+4:], 1<<20)
			return b
		}, []string{"header extension at byte", "overruns"}, false, ""},
		{"backing file named", "v3.qcow2", func(b []byte) []byte {
			copy(b[3000:], "parent.img")
			be.PutUint64(b[hdrBackingFileOffset:], 3000)
			be.PutUint32(b[hdrBackingFileSize:], 10)
			return b
		}, []string{`image has backing file "parent.img"; give it explicitly`}, false, ""},
		{"backing file name too long", "v3.qcow2", func(b []byte) []byte {
			be.PutUint64(b[hdrBackingFileOffset:], 3000)
			be.PutUint32(b[hdrBackingFileSize:], 5000)
			return b
		}, []string{"byte 16", "backing file name of 5000 bytes"}, false, ""},
		{"backing file name outside the cluster", "v3.qcow2", func(b []byte) []byte {
			be.PutUint64(b[hdrBackingFileOffset:], 4000)
			be.PutUint32(b[hdrBackingFileSize:], 1000)
			return b
		}, []string{"byte 8", "outside the first cluster"}, false, ""},
		{"L2 table past the end", "v3.qcow2", func(b []byte) []byte {
			be.PutUint64(b[locate(b).l1:], 1<<40|1<<63)
			return b
		}, []string{"L2 table at byte 1099511627776", "past the end"}, true, ""},
		{"L2 table unaligned", "v3.qcow2", func(b []byte) []byte {
			l := locate(b)
			be.PutUint64(b[l.l1:], uint64(l.l2+512))
			return b
		}, []string{"L1 entry", "not aligned"}, true, ""},
		{"data cluster past the end", "v3.qcow2", func(b []byte) []byte {
			be.PutUint64(b[firstEntry(t, b, locate(b), 8):], 1<<40|1<<63)
			return b
		}, []string{"data at byte 1099511627776", "past the end of the file"}, true, ""},
		{"data cluster unaligned", "v3.qcow2", func(b []byte) []byte {
			e := firstEntry(t, b, locate(b), 8)
			be.PutUint64(b[e:], be.Uint64(b[e:])+512)
			return b
		}, []string{"L2 entry at byte", "not aligned to the cluster size 4096"}, true, ""},
		{"truncated in data", "v3.qcow2", func(b []byte) []byte { return b[:len(b)-1000] }, []string{"past the end of the file"}, true, ""},
		{"compressed data garbled", "zlib.qcow2", func(b []byte) []byte {
			e := be.Uint64(b[firstEntry(t, b, locate(b), 8):])
			host := e & (1<<(62-(12-8)) - 1)
			for i := range 64 {
				b[host+uint64(i)] = 0xff
			}
			return b
		}, []string{"compressed block at byte", "bad compressed data"}, true, ""},
		{"compressed cluster past the end", "zlib.qcow2", func(b []byte) []byte {
			be.PutUint64(b[firstEntry(t, b, locate(b), 8):], l2Compressed|1<<40)
			return b
		}, []string{"L2 entry at byte", "outside the file"}, true, ""},
		{"compressed cluster too short", "zstd.qcow2", func(b []byte) []byte {
			// Keep only the first 100 bytes of the frame.
			off := firstEntry(t, b, locate(b), 8)
			host := be.Uint64(b[off:]) & (1<<(62-(12-8)) - 1)
			return plantCompressed(t, b, b[host:host+100])
		}, []string{"compressed block at byte"}, true, ""},
		{"zstd bomb", "zstd.qcow2", func(b []byte) []byte {
			return plantCompressed(t, b, zstdBomb(t))
		}, []string{"compressed block at byte", "decompresses to more bytes than the block"}, true, ""},
		{"subcluster allocated and zero", "l2ext.qcow2", func(b []byte) []byte {
			off := firstEntry(t, b, locate(b), 16)
			be.PutUint64(b[off+8:], 0x00000001_00000001)
			return b
		}, []string{"L2 entry at byte", "both allocated and zero"}, true, ""},
		{"subclusters without a cluster", "l2ext.qcow2", func(b []byte) []byte {
			off := firstEntry(t, b, locate(b), 16)
			be.PutUint64(b[off:], 0)
			be.PutUint64(b[off+8:], 1)
			return b
		}, []string{"L2 entry at byte", "allocated subclusters at invalid cluster offset 0"}, true, ""},
		{"dirty bit", "v3.qcow2", set64(hdrIncompatible, incompatDirty), nil, false, "dirty bit set"},
		{"corrupt bit", "v3.qcow2", set64(hdrIncompatible, incompatCorrupt), nil, false, "corrupt bit set"},
		{"snapshots", "v3.qcow2", set32(hdrNbSnapshots, 2), nil, false, "2 internal snapshots"},
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

// plantCompressed replaces the first compressed cluster's data with data,
// written at the end of the file.
func plantCompressed(t *testing.T, b []byte, data []byte) []byte {
	off := firstEntry(t, b, locate(b), 8)
	host := uint64(len(b))
	b = append(b, data...)
	b = append(b, make([]byte, 512)...)
	x := 62 - (12 - 8)
	sectors := uint64(len(data)+511) / 512
	be.PutUint64(b[off:], l2Compressed|sectors<<x|host)
	return b
}

// zstdBomb is a zstd frame declaring (and holding) 64 MiB of zeros.
func zstdBomb(t *testing.T) []byte {
	e, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	return e.EncodeAll(make([]byte, 64<<20), nil)
}

// TestDeflateBomb plants a deflate stream of 4 MiB in a 4 KiB cluster:
// the reader stops inflating after the cluster and says so, at once.
func TestDeflateBomb(t *testing.T) {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestCompression)
	w.Write(bytes.Repeat([]byte{'A'}, 4<<20))
	w.Close()
	if buf.Len() > 8190 {
		t.Fatalf("bomb of %d bytes does not fit the sector count", buf.Len())
	}
	b := plantCompressed(t, bytes.Clone(vdisktest.Fixtures(t, fixtures)["zlib.qcow2"]), buf.Bytes())
	im, err := NewReader(bytes.NewReader(b), int64(len(b)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = im.ReadAt(make([]byte, 4096), 0)
	if err == nil || !strings.Contains(err.Error(), "decompresses to more bytes than the block (4096)") || time.Since(start) > time.Second {
		t.Fatalf("bomb cluster: %v after %v", err, time.Since(start))
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
	r := rand.New(rand.NewPCG(2, 2))
	n := 60
	if testing.Short() {
		n = 20
	}
	for name, img := range fx {
		for i := range n {
			data := bytes.Clone(img)
			// Most damage lands in the metadata at the start.
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

func TestErrorsAreTyped(t *testing.T) {
	b := bytes.Clone(vdisktest.Fixtures(t, fixtures)["v3.qcow2"])
	be.PutUint32(b[hdrClusterBits:], 3)
	_, err := NewReader(bytes.NewReader(b), int64(len(b)), Options{})
	var fe *FormatError
	if !errors.As(err, &fe) || fe.Struct != "header" || fe.Offset != hdrClusterBits {
		t.Fatalf("%#v", err)
	}
}
