package export

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// testData is half random, half repetitive, like a filesystem.
func testData(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := 0; i < n; i += 8192 {
		end := min(i+8192, n)
		if (i/8192)%2 == 0 {
			for j := i; j < end; j++ {
				b[j] = byte(r.Uint32())
			}
		} else {
			copy(b[i:end], bytes.Repeat([]byte("ctrlift "), 1024))
		}
	}
	return b
}

func TestCompressRoundTripDeterministic(t *testing.T) {
	data := testData(8 << 20)
	for _, c := range []Compression{None, Gzip, Zstd} {
		t.Run(string(c), func(t *testing.T) {
			var outs [2][]byte
			for i := range outs {
				var buf bytes.Buffer
				w, err := Compress(&buf, c)
				if err != nil {
					t.Fatal(err)
				}
				// Odd write sizes exercise the encoders' buffering.
				for p := 0; p < len(data); p += 77777 {
					if _, err := w.Write(data[p:min(p+77777, len(data))]); err != nil {
						t.Fatal(err)
					}
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				outs[i] = buf.Bytes()
			}
			if !bytes.Equal(outs[0], outs[1]) {
				t.Fatal("two compressions of the same input differ")
			}
			var r io.Reader = bytes.NewReader(outs[0])
			switch c {
			case Gzip:
				zr, err := gzip.NewReader(r)
				if err != nil {
					t.Fatal(err)
				}
				r = zr
			case Zstd:
				zr, err := zstd.NewReader(r)
				if err != nil {
					t.Fatal(err)
				}
				defer zr.Close()
				r = zr
			}
			got, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatal("round trip changed the data")
			}
		})
	}
}

func TestCompressionFor(t *testing.T) {
	for name, want := range map[string]Compression{
		"out.tar": None, "out.tar.gz": Gzip, "x.tgz": Gzip, "OUT.TAR.ZST": Zstd, "-": None,
	} {
		if got := CompressionFor(name); got != want {
			t.Errorf("CompressionFor(%q) = %s, want %s", name, got, want)
		}
	}
}

// BenchmarkCompress reports MB/s of input for each compression; "none" is
// the reference to read ratios against.
func BenchmarkCompress(b *testing.B) {
	data := testData(64 << 20)
	for _, c := range []Compression{None, Gzip, Zstd} {
		b.Run(string(c), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				w, _ := Compress(io.Discard, c)
				w.Write(data)
				w.Close()
			}
		})
	}
}
