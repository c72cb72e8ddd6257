package ewf

// Sequential read throughput of E01 images made by ewfacquire, against
// the raw file they were acquired from (page-cached), same content:
//
//	go test ./image/ewf -run '^$' -bench SequentialRead -benchtime 3x
//
// mixed: 64 MiB of random runs (stored chunks), zeros and text; node: the
// example node disk (667 MiB, mostly zeros). Block sizes: 4 MiB (chunks
// decoded in parallel straight into the caller's buffer) and 32 KiB / 4 KiB
// (a filesystem reader's steps: the cache and readahead path).

import (
	"io"
	"os"
	"path/filepath"
	"testing"
)

func BenchmarkSequentialRead(b *testing.B) {
	needTool(b, "ewfacquire")
	mixed := rawFile(b, "bench-mixed.raw", mixedRaw(64<<20, 5))
	node := filepath.Join(fixtureDir, "wordpress-node.raw")
	if err := decompressZstd(filepath.Join("..", "..", "testdata", "images", "example", "wordpress-node.raw.zst"), node); err != nil {
		b.Logf("no example image: %v", err)
		node = ""
	}
	for _, src := range []struct {
		name string
		raw  string
	}{{"mixed", mixed}, {"node", node}} {
		if src.raw == "" {
			continue
		}
		images := []struct {
			name string
			path string
		}{
			{"raw", src.raw},
			{"ewf-fast", acquire(b, src.raw, "-c", "deflate:fast")},
			{"ewf-none", acquire(b, src.raw, "-c", "none")},
		}
		for _, im := range images {
			for _, block := range []struct {
				name string
				size int
			}{{"4MiB", 4 << 20}, {"32KiB", 32 << 10}, {"4KiB", 4 << 10}} {
				b.Run(src.name+"/"+im.name+"/"+block.name, func(b *testing.B) {
					r, size, closer := openForBench(b, im.name, im.path)
					defer closer()
					buf := make([]byte, block.size)
					b.SetBytes(size)
					b.ResetTimer()
					for range b.N {
						for off := int64(0); off < size; off += int64(len(buf)) {
							if _, err := r.ReadAt(buf, off); err != nil && err != io.EOF {
								b.Fatal(err)
							}
						}
					}
				})
			}
		}
	}
}

func openForBench(b *testing.B, kind, path string) (io.ReaderAt, int64, func()) {
	if kind == "raw" {
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		st, _ := f.Stat()
		return f, st.Size(), func() { f.Close() }
	}
	img, err := Open(path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	return img, img.Size(), func() { img.Close() }
}
