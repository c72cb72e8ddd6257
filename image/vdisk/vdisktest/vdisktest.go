// Package vdisktest has test helpers shared by the virtual-disk readers:
// making raw disks with known content, converting them with qemu-img, and
// checking that a reader returns exactly the raw bytes.
package vdisktest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// QemuImg returns the path of qemu-img, skipping the test without it.
func QemuImg(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("qemu-img")
	if err != nil {
		t.Skip("qemu-img not installed (apt-get install qemu-utils)")
	}
	return p
}

// Run runs a command and returns its standard output, failing the test
// with its output when it fails.
func Run(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %q: %v\n%s%s", name, args, err, out, stderr.Bytes())
	}
	return out
}

// Convert runs qemu-img convert from the raw file src to dst in format,
// with extra options (e.g. "-c", "-o", "compat=0.10").
func Convert(t testing.TB, src, dst, format string, opts ...string) {
	t.Helper()
	// -t unsafe: no flushes; the files are read back at once and thrown away.
	args := append([]string{"convert", "-t", "unsafe", "-f", "raw", "-O", format}, opts...)
	Run(t, QemuImg(t), append(args, src, dst)...)
}

// MixedContent returns size bytes of disk content that exercises an image
// format: 64 KiB-aligned and unaligned runs of random bytes, text, a
// repeated byte, and holes of zeros, deterministic for seed.
func MixedContent(size int64, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, size)
	for off := int64(0); off < size; {
		n := min(size-off, int64(512*(1+r.IntN(384))))
		chunk := b[off : off+n]
		switch r.IntN(5) {
		case 0, 1: // hole
		case 2:
			for i := range chunk {
				chunk[i] = byte(r.Uint32())
			}
		case 3:
			for i := 0; i < len(chunk); {
				i += copy(chunk[i:], fmt.Sprintf("sector %d of seed %d; ", (off+int64(i))/512, seed))
			}
		case 4:
			for i := range chunk {
				chunk[i] = byte(off / 512)
			}
		}
		off += n
	}
	return b
}

// LabelledContent is like MixedContent but compresses well: each sector
// holding data is text naming its own number, so any mapping mistake
// shows, while committed images made from it stay small.
func LabelledContent(size int64, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, size)
	for sec := int64(0); sec*512 < size; sec++ {
		if r.IntN(4) == 0 {
			continue // hole
		}
		s := b[sec*512 : min(size, sec*512+512)]
		for i := 0; i < len(s); {
			i += copy(s[i:], fmt.Sprintf("[%d/%d]", sec, i))
		}
	}
	return b
}

// WriteFile writes b to path, failing the test on error.
func WriteFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// ReadZstd returns the decompressed content of a zstd file.
func ReadZstd(t testing.TB, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := zstd.NewReader(f, zstd.WithDecoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	b, err := io.ReadAll(d)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return b
}

// WriteZstd compresses b into path.
func WriteZstd(t testing.TB, path string, b []byte) {
	t.Helper()
	e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression))
	if err != nil {
		t.Fatal(err)
	}
	WriteFile(t, path, e.EncodeAll(b, nil))
}

// Sized is an io.ReaderAt of known size (every format's Image).
type Sized interface {
	io.ReaderAt
	Size() int64
}

// Verify checks that r holds want followed by zeros up to r.Size(): the
// SHA-256 of the whole disk read sequentially in 1 MiB reads, the whole
// disk in one read when small, and random reads of odd sizes and offsets,
// including reads across the end.
func Verify(t testing.TB, r Sized, want []byte) {
	t.Helper()
	size := r.Size()
	if size < int64(len(want)) {
		t.Fatalf("virtual size %d smaller than the raw disk (%d)", size, len(want))
	}
	wantAt := func(p []byte, off int64) {
		clear(p)
		if off < int64(len(want)) {
			copy(p, want[off:])
		}
	}
	// Whole disk, sequentially.
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(buf)) {
		n := min(int64(len(buf)), size-off)
		if _, err := r.ReadAt(buf[:n], off); err != nil && !(err == io.EOF && off+n == size) {
			t.Fatalf("ReadAt(%d, %d): %v", off, n, err)
		}
		h.Write(buf[:n])
	}
	wh := sha256.New()
	wh.Write(want)
	zeros := make([]byte, 1<<20)
	for rest := size - int64(len(want)); rest > 0; rest -= min(rest, int64(len(zeros))) {
		wh.Write(zeros[:min(rest, int64(len(zeros)))])
	}
	if got, exp := h.Sum(nil), wh.Sum(nil); !bytes.Equal(got, exp) {
		t.Fatalf("sha256 of the virtual disk %x, want %x (raw disk %d bytes, virtual %d)", got, exp, len(want), size)
	}
	// Whole disk in one read: the parallel path.
	if size <= 64<<20 {
		all := make([]byte, size)
		if n, err := r.ReadAt(all, 0); n != len(all) || (err != nil && err != io.EOF) {
			t.Fatalf("ReadAt(whole): %d, %v", n, err)
		}
		exp := make([]byte, size)
		wantAt(exp, 0)
		if i := firstDiff(all, exp); i >= 0 {
			t.Fatalf("one whole read differs at byte %d", i)
		}
	}
	// Random reads.
	rng := rand.New(rand.NewPCG(uint64(size), 1))
	for i := range 150 {
		n := int64(1 + rng.IntN(200<<10))
		if i%3 == 0 {
			n = int64(1 + rng.IntN(4096))
		}
		off := rng.Int64N(size)
		if i%50 == 0 {
			off = max(0, size-n/2) // across the end
		}
		got := make([]byte, n)
		m, err := r.ReadAt(got, off)
		expN := min(n, size-off)
		if int64(m) != expN {
			t.Fatalf("ReadAt(%d, %d) = %d, %v; want %d bytes", off, n, m, err, expN)
		}
		if expN < n && !errors.Is(err, io.EOF) {
			t.Fatalf("ReadAt(%d, %d) across the end: err %v, want io.EOF", off, n, err)
		}
		if expN == n && err != nil && err != io.EOF {
			t.Fatalf("ReadAt(%d, %d): %v", off, n, err)
		}
		exp := make([]byte, expN)
		wantAt(exp, off)
		if d := firstDiff(got[:expN], exp); d >= 0 {
			t.Fatalf("ReadAt(%d, %d) differs at virtual byte %d", off, n, off+int64(d))
		}
	}
	if n, err := r.ReadAt(make([]byte, 1), size); n != 0 || err != io.EOF {
		t.Fatalf("ReadAt at the end = %d, %v; want 0, io.EOF", n, err)
	}
}

// VerifyFile checks r against a raw file too large to hold in memory
// (zeros past its end), comparing every byte in 4 MiB chunks: as strong as
// comparing hashes, and cheaper than hashing twice.
func VerifyFile(t testing.TB, r Sized, rawPath string) {
	t.Helper()
	f, err := os.Open(rawPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	size := r.Size()
	if size < st.Size() {
		t.Fatalf("virtual size %d smaller than the raw disk (%d)", size, st.Size())
	}
	got := make([]byte, 4<<20)
	exp := make([]byte, 4<<20)
	for off := int64(0); off < size; off += int64(len(got)) {
		n := min(int64(len(got)), size-off)
		if _, err := r.ReadAt(got[:n], off); err != nil && err != io.EOF {
			t.Fatalf("ReadAt(%d, %d): %v", off, n, err)
		}
		clear(exp[:n])
		if _, err := f.ReadAt(exp[:n], off); err != nil && err != io.EOF {
			t.Fatal(err)
		}
		if d := firstDiff(got[:n], exp[:n]); d >= 0 {
			t.Fatalf("virtual disk differs from %s at byte %d", filepath.Base(rawPath), off+int64(d))
		}
	}
}

func firstDiff(a, b []byte) int {
	if bytes.Equal(a, b) {
		return -1
	}
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return len(a)
}

// RawFile writes MixedContent(size, seed) to name in dir and returns its
// path and content.
func RawFile(t testing.TB, dir, name string, size int64, seed uint64) (string, []byte) {
	t.Helper()
	b := MixedContent(size, seed)
	p := filepath.Join(dir, name)
	WriteFile(t, p, b)
	return p, b
}

// FixtureRawSize is the size of the raw disk the committed fixtures hold:
// LabelledContent(FixtureRawSize, 1).
const FixtureRawSize = 128 << 10

// FixtureRaw is the content of every committed fixture's virtual disk.
func FixtureRaw() []byte { return LabelledContent(FixtureRawSize, 1) }

var regenerate = flag.Bool("regenerate-fixtures", false, "rebuild testdata/*.zst fixtures with qemu-img")

// Fixture is a small image committed as testdata/Name.zst, made by qemu-img
// from FixtureRaw. Make, if set, builds it instead of a plain conversion
// (given qemu-img, the raw file and the output path).
type Fixture struct {
	Name   string
	Format string
	Opts   []string
	Make   func(t testing.TB, qemuImg, raw, out string)
}

// Fixtures returns the committed fixtures by name, decompressed. Run the
// package's tests with -regenerate-fixtures to rebuild them with qemu-img.
func Fixtures(t testing.TB, fixtures []Fixture) map[string][]byte {
	t.Helper()
	if *regenerate {
		qemuImg := QemuImg(t)
		dir := t.TempDir()
		raw := filepath.Join(dir, "fixture.raw")
		WriteFile(t, raw, FixtureRaw())
		for _, fx := range fixtures {
			out := filepath.Join(dir, fx.Name)
			if fx.Make != nil {
				fx.Make(t, qemuImg, raw, out)
			} else {
				Convert(t, raw, out, fx.Format, fx.Opts...)
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			WriteZstd(t, filepath.Join("testdata", fx.Name+".zst"), b)
		}
	}
	m := map[string][]byte{}
	for _, fx := range fixtures {
		m[fx.Name] = ReadZstd(t, filepath.Join("testdata", fx.Name+".zst"))
	}
	return m
}

// ExampleDiskZst is the bundled example node disk (667 MiB, GPT and ext4,
// mostly zeros), relative to the repository root.
const ExampleDiskZst = "testdata/images/example/wordpress-node.raw.zst"

// ExampleDisk decompresses the bundled example node disk into a sparse
// file in dir and returns its path, skipping the test if it is absent.
func ExampleDisk(t testing.TB, dir string) string {
	t.Helper()
	_, here, _, _ := runtime.Caller(0)
	src := filepath.Join(filepath.Dir(here), "..", "..", "..", ExampleDiskZst)
	f, err := os.Open(src)
	if err != nil {
		t.Skipf("example disk not available: %v", err)
	}
	defer f.Close()
	d, err := zstd.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	p := filepath.Join(dir, "example.raw")
	out, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	buf := make([]byte, 1<<20)
	var off int64
	for {
		n, err := io.ReadFull(d, buf)
		if n > 0 {
			// Leave holes for zeros, as the cache package does.
			if !allZero(buf[:n]) {
				if _, err := out.WriteAt(buf[:n], off); err != nil {
					t.Fatal(err)
				}
			}
			off += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := out.Truncate(off); err != nil {
		t.Fatal(err)
	}
	return p
}

var zeroMiB = make([]byte, 1<<20)

func allZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(zeroMiB))
		if !bytes.Equal(b[:n], zeroMiB[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}

// BenchmarkRead reads r whole, sequentially, in reads of bufSize bytes,
// b.N times, reporting throughput in bytes of virtual disk.
func BenchmarkRead(b *testing.B, r io.ReaderAt, size int64, bufSize int) {
	buf := make([]byte, bufSize)
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		for off := int64(0); off < size; off += int64(bufSize) {
			if _, err := r.ReadAt(buf, off); err != nil && err != io.EOF {
				b.Fatal(err)
			}
		}
	}
}

// BenchContentSize is the size of the raw disk the benchmarks read.
const BenchContentSize = 64 << 20

// BenchRaw writes the benchmarks' raw disk (MixedContent: two fifths
// holes, a fifth each random bytes, text and repeated bytes) into dir.
func BenchRaw(b *testing.B, dir string) string {
	p, _ := RawFile(b, dir, "bench.raw", BenchContentSize, 42)
	return p
}
