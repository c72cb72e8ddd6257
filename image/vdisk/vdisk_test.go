package vdisk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

func vhdFooter(diskType uint32) []byte {
	b := make([]byte, vhdFooterLen)
	copy(b, magicVHD)
	binary.BigEndian.PutUint32(b[60:], diskType)
	binary.BigEndian.PutUint32(b[vhdChecksumOffset:], VHDChecksum(b))
	return b
}

func TestSniff(t *testing.T) {
	badSum := vhdFooter(3)
	badSum[100]++
	tests := []struct {
		name string
		head []byte
		want Kind
	}{
		{"qcow2", []byte("QFI\xfb\x00\x00\x00\x03"), QCOW2},
		{"qcow1 too", []byte("QFI\xfb\x00\x00\x00\x01"), QCOW2},
		{"vmdk sparse", []byte("KDMV\x01\x00\x00\x00"), VMDK},
		{"vmdk cowd", []byte("COWD\x01\x00\x00\x00"), VMDK},
		{"vmdk descriptor", []byte("# Disk DescriptorFile\nversion=1\n"), VMDK},
		{"vmdk descriptor with BOM", []byte("\xef\xbb\xbf# Disk DescriptorFile\r\n"), VMDK},
		{"vhdx", []byte("vhdxfileM\x00i\x00c\x00"), VHDX},
		{"vhd dynamic copy at 0", vhdFooter(3), VHD},
		{"vhd cookie, bad checksum", badSum, Unknown},
		{"vhd cookie, short", []byte("conectix"), Unknown},
		{"zeros", make([]byte, 512), Unknown},
		{"empty", nil, Unknown},
		{"text", []byte("# Disk Descriptor"), Unknown},
		{"mbr", append(make([]byte, 510), 0x55, 0xaa), Unknown},
	}
	for _, tc := range tests {
		if got := Sniff(tc.head); got != tc.want {
			t.Errorf("%s: Sniff = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestSniffAtFixedVHD(t *testing.T) {
	disk := append(bytes.Repeat([]byte{0xeb}, 4096), vhdFooter(2)...)
	if k, err := SniffAt(bytes.NewReader(disk), int64(len(disk))); k != VHD || err != nil {
		t.Fatalf("fixed VHD: %v, %v", k, err)
	}
	raw := bytes.Repeat([]byte{1}, 4096)
	if k, err := SniffAt(bytes.NewReader(raw), int64(len(raw))); k != Unknown || err != nil {
		t.Fatalf("raw: %v, %v", k, err)
	}
	if k, err := SniffAt(bytes.NewReader(nil), 0); k != Unknown || err != nil {
		t.Fatalf("empty: %v, %v", k, err)
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{Unknown: "unknown", QCOW2: "qcow2", VMDK: "vmdk", VHD: "vhd", VHDX: "vhdx", 42: "Kind(42)"} {
		if k.String() != want {
			t.Errorf("%d: %q", k, k.String())
		}
		if b, _ := k.MarshalText(); string(b) != want {
			t.Errorf("%d: MarshalText %q", k, b)
		}
	}
	for c, want := range map[Codec]string{CodecNone: "none", CodecDeflate: "deflate", CodecZlib: "zlib", CodecZstd: "zstd", 9: "Codec(9)"} {
		if c.String() != want {
			t.Errorf("codec %d: %q", c, c.String())
		}
	}
	for k, want := range map[ExtentKind]string{ExtentZero: "zero", ExtentBacking: "backing", ExtentStored: "stored", ExtentCompressed: "compressed", 9: "ExtentKind(9)"} {
		if k.String() != want {
			t.Errorf("extent kind %d: %q", k, k.String())
		}
	}
	if !errors.Is(ErrUnsupported, errors.ErrUnsupported) {
		t.Error("ErrUnsupported does not match errors.ErrUnsupported")
	}
}

func TestCache(t *testing.T) {
	c := NewCache(100)
	k := func(i int) CacheKey { return CacheKey{Off: int64(i)} }
	c.Put(k(1), make([]byte, 40))
	c.Put(k(2), make([]byte, 40))
	c.Get(k(1)) // 2 is now the least recent
	c.Put(k(3), make([]byte, 40))
	if _, ok := c.Get(k(2)); ok {
		t.Error("least recently used block kept")
	}
	if _, ok := c.Get(k(1)); !ok {
		t.Error("recently used block evicted")
	}
	c.Put(k(4), make([]byte, 101))
	if _, ok := c.Get(k(4)); ok {
		t.Error("block larger than the cache kept")
	}
	c.Put(k(1), make([]byte, 10))
	if n, used := c.Len(); n != 2 || used != 50 {
		t.Errorf("Len = %d, %d", n, used)
	}
	if _, ok := NewCache(0).Get(k(1)); ok {
		t.Error("empty cache hit")
	}
}

// countingReader counts ReadAt calls.
type countingReader struct {
	io.ReaderAt
	calls atomic.Int64
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	c.calls.Add(1)
	return c.ReaderAt.ReadAt(p, off)
}

// listMapper maps from a fixed list of extents laid end to end; Offset and
// Within are adjusted for asks in the middle of an extent.
type listMapper []Extent

func (l listMapper) Map(off int64) (Extent, error) {
	for _, e := range l {
		if off < e.Len {
			e.Len -= off
			switch e.Kind {
			case ExtentStored:
				e.Offset += off
			case ExtentCompressed:
				e.Within += off
			}
			return e, nil
		}
		off -= e.Len
	}
	return Extent{}, errors.New("beyond the list")
}

type sized struct{ *bytes.Reader }

func (s sized) Size() int64 { return s.Reader.Size() }

// TestReaderEngine reads a synthetic image of every extent kind and
// codec, in every split of reads, against the expected bytes.
func TestReaderEngine(t *testing.T) {
	block := func(seed byte) []byte {
		b := make([]byte, 4096)
		for i := range b {
			b[i] = seed + byte(i/100)
		}
		return b
	}
	var file bytes.Buffer
	file.Write(make([]byte, 512))
	stored := block(1)
	storedAt := int64(file.Len())
	file.Write(stored)
	file.Write(block(2)) // contiguous second stored block
	var exts listMapper
	var want []byte
	add := func(e Extent, content []byte) {
		exts = append(exts, e)
		want = append(want, content...)
	}
	add(Extent{Kind: ExtentStored, Len: 4096, Offset: storedAt}, stored)
	add(Extent{Kind: ExtentStored, Len: 4096, Offset: storedAt + 4096}, block(2))
	add(Extent{Kind: ExtentZero, Len: 1000}, make([]byte, 1000))
	// The backing extent covers virtual [9192, 12192); the parent ends at
	// 10000, and past its end the bytes are zeros.
	parent := bytes.Repeat([]byte{0xaa}, 10000)
	add(Extent{Kind: ExtentBacking, Len: 3000}, append(bytes.Repeat([]byte{0xaa}, 10000-9192), make([]byte, 3000-(10000-9192))...))
	for _, c := range []struct {
		codec Codec
		enc   func([]byte) []byte
	}{
		{CodecDeflate, func(b []byte) []byte {
			var buf bytes.Buffer
			w, _ := flate.NewWriter(&buf, 5)
			w.Write(b)
			w.Close()
			return append(buf.Bytes(), "trailing junk"...)
		}},
		{CodecZlib, func(b []byte) []byte {
			var buf bytes.Buffer
			w := zlib.NewWriter(&buf)
			w.Write(b)
			w.Close()
			return buf.Bytes()
		}},
		{CodecZstd, func(b []byte) []byte {
			e, _ := zstd.NewWriter(nil)
			return append(e.EncodeAll(b, nil), e.EncodeAll([]byte("next frame"), nil)...)
		}},
	} {
		content := block(byte(10 * c.codec))
		enc := c.enc(content)
		at := int64(file.Len())
		file.Write(enc)
		add(Extent{Kind: ExtentCompressed, Len: 4096, Offset: at, Codec: c.codec, StoredLen: int64(len(enc)), BlockLen: 4096}, content)
	}
	// A grain-marker framed zlib block shorter than its block.
	short := block(77)[:3000]
	var zb bytes.Buffer
	zw := zlib.NewWriter(&zb)
	zw.Write(short)
	zw.Close()
	marker := make([]byte, GrainMarkerLen)
	binary.LittleEndian.PutUint32(marker[8:], uint32(zb.Len()))
	at := int64(file.Len())
	file.Write(marker)
	file.Write(zb.Bytes())
	add(Extent{Kind: ExtentCompressed, Len: 4096, Offset: at, Codec: CodecZlib, Framing: FramingGrainMarker,
		StoredLen: 2*4096 + GrainMarkerLen, BlockLen: 4096, AllowShort: true}, append(short, make([]byte, 1096)...))

	src := &countingReader{ReaderAt: bytes.NewReader(file.Bytes())}
	r := NewReader(Config{Size: int64(len(want)), Mapper: exts, Sources: []Source{{R: src, Size: int64(file.Len())}},
		Parent: sized{bytes.NewReader(parent)}, CacheBytes: 8192})
	got := make([]byte, len(want))
	if n, err := r.ReadAt(got, 0); n != len(want) || err != nil || !bytes.Equal(got, want) {
		t.Fatalf("whole read: %d, %v, equal %v", n, err, bytes.Equal(got, want))
	}
	// The two contiguous stored blocks were one read; each compressed
	// block one more.
	if c := src.calls.Load(); c != 5 {
		t.Errorf("%d ReadAt calls on the file, want 5", c)
	}
	for _, step := range []int{1, 7, 512, 1000, 4095, 4096, 5000} {
		for off := 0; off < len(want); off += step {
			buf := make([]byte, step+3)
			n := min(len(buf), len(want)-off)
			m, err := r.ReadAt(buf, int64(off))
			if m != n || !bytes.Equal(buf[:m], want[off:off+n]) {
				t.Fatalf("ReadAt(%d, %d) = %d, %v: wrong bytes", off, step+3, m, err)
			}
			if off+len(buf) > len(want) && err != io.EOF {
				t.Fatalf("ReadAt(%d, %d) across the end: %v", off, len(buf), err)
			}
		}
	}
	if _, err := r.ReadAt(make([]byte, 1), -1); err == nil {
		t.Error("negative offset accepted")
	}
	// Concurrent readers share the cache and the decoders.
	var wg sync.WaitGroup
	var bad atomic.Int64
	for g := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 0))
			for range 200 {
				off := rng.IntN(len(want))
				n := 1 + rng.IntN(len(want)-off)
				buf := make([]byte, n)
				if m, err := r.ReadAt(buf, int64(off)); m != n || (err != nil && err != io.EOF) || !bytes.Equal(buf, want[off:off+n]) {
					bad.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if bad.Load() != 0 {
		t.Errorf("%d concurrent reads wrong", bad.Load())
	}
}

func TestReaderErrors(t *testing.T) {
	file := bytes.Repeat([]byte{1}, 1000)
	src := []Source{{R: bytes.NewReader(file), Size: int64(len(file))}}
	var bomb bytes.Buffer
	zw := zlib.NewWriter(&bomb)
	zw.Write(make([]byte, 1<<20))
	zw.Close()
	bombFile := bomb.Bytes()
	var sd bytes.Buffer
	fw, _ := flate.NewWriter(&sd, 5)
	fw.Write(make([]byte, 100))
	fw.Close()
	shortDeflate := sd.Bytes()
	tests := []struct {
		name string
		e    Extent
		srcs []Source
		want string
	}{
		{"stored past the end", Extent{Kind: ExtentStored, Len: 100, Offset: 950}, src, "run past the end of the file"},
		{"compressed past the end", Extent{Kind: ExtentCompressed, Len: 100, Offset: 5000, StoredLen: 10, BlockLen: 100, Codec: CodecZlib}, src, "past the end of the file"},
		{"compressed stored length absurd", Extent{Kind: ExtentCompressed, Len: 100, Offset: 0, StoredLen: 1 << 40, BlockLen: 100, Codec: CodecZlib}, src, "stored length"},
		{"block too large", Extent{Kind: ExtentCompressed, Len: 100, Offset: 0, StoredLen: 10, BlockLen: 1 << 40, Codec: CodecZlib}, src, "compressed block of"},
		{"garbage", Extent{Kind: ExtentCompressed, Len: 100, Offset: 0, StoredLen: 100, BlockLen: 100, Codec: CodecZstd}, src, "bad zstd data"},
		{"zlib bomb", Extent{Kind: ExtentCompressed, Len: 4096, Offset: 0, StoredLen: int64(len(bombFile)), BlockLen: 4096, Codec: CodecZlib},
			[]Source{{R: bytes.NewReader(bombFile), Size: int64(len(bombFile))}}, "decompresses to more bytes than the block (4096)"},
		{"deflate bomb", Extent{Kind: ExtentCompressed, Len: 4096, Offset: 0, StoredLen: int64(len(bombFile)) - 2, BlockLen: 4096, Codec: CodecDeflate},
			[]Source{{R: bytes.NewReader(bombFile[2:]), Size: int64(len(bombFile)) - 2}}, "decompresses to more bytes than the block (4096)"},
		{"deflate short", Extent{Kind: ExtentCompressed, Len: 4096, Offset: 0, StoredLen: int64(len(shortDeflate)), BlockLen: 4096, Codec: CodecDeflate},
			[]Source{{R: bytes.NewReader(shortDeflate), Size: int64(len(shortDeflate))}}, "decompresses to fewer bytes than the block (100 of 4096)"},
	}
	for _, tc := range tests {
		r := NewReader(Config{Size: 1 << 20, Mapper: listMapper{tc.e, {Kind: ExtentZero, Len: 1 << 20}}, Sources: tc.srcs})
		_, err := r.ReadAt(make([]byte, 4096), 0)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

type mapperFunc func(int64) (Extent, error)

func (f mapperFunc) Map(off int64) (Extent, error) { return f(off) }

func TestMapperMistakes(t *testing.T) {
	for _, tc := range []struct {
		e    Extent
		err  error
		want string
	}{
		{Extent{Kind: ExtentZero}, nil, "empty extent"},
		{Extent{Kind: 9, Len: 5}, nil, "extent kind"},
		{Extent{}, errors.New("mapper says no"), "mapper says no"},
		{Extent{Kind: ExtentStored, Len: 5, Source: 3}, nil, "source 3"},
	} {
		r := NewReader(Config{Size: 100, Mapper: mapperFunc(func(int64) (Extent, error) { return tc.e, tc.err })})
		if _, err := r.ReadAt(make([]byte, 10), 0); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.e, err, tc.want)
		}
	}
}

func TestZstdBombIsRefused(t *testing.T) {
	e, _ := zstd.NewWriter(nil)
	frame := e.EncodeAll(make([]byte, 16<<20), nil)
	out := make([]byte, 65536)
	if err := decompress(CodecZstd, frame, out, false); !errors.Is(err, errTooLong) {
		t.Fatalf("zstd frame declaring 16 MiB into 64 KiB: %v", err)
	}
	// Without a declared size, decoding stops when the block is full.
	var buf bytes.Buffer
	w, _ := zstd.NewWriter(&buf)
	w.Write(make([]byte, 16<<20))
	w.Close()
	if err := decompress(CodecZstd, buf.Bytes(), out, false); err != nil {
		t.Fatalf("zstd stream of 16 MiB into 64 KiB: %v", err)
	}
}
