package export

// Benchmarks of the whole export path (layer merge, ext4 reads, tar,
// digest) on the many-layer container of bench/run.sh, made by bench/gen
// and mke2fs at benchmark time (random data does not belong in the
// repository):
//
//	go test ./export -run '^$' -bench Export -benchtime 3x -cpuprofile cpu.out
//
// CTRLIFT_BENCH_LAYERS=3 CTRLIFT_BENCH_FILES=100000 CTRLIFT_BENCH_BYTES=2000000000
// benchmarks the wide tree instead; CTRLIFT_BENCH_DIR keeps the image
// there between runs; CTRLIFT_BENCH_IMAGE names an image bench/run.sh made
// (its state-*.img) with that many layers.

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/ctrlift/ctrlift/image/ext4"
	"github.com/ctrlift/ctrlift/layers"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// benchImage returns the ext4 image of the benchmark container and its
// layer count, building it when it is not there yet.
func benchImage(b *testing.B) (string, int) {
	b.Helper()
	nl := envInt("CTRLIFT_BENCH_LAYERS", 71)
	files := envInt("CTRLIFT_BENCH_FILES", 30000)
	bytes := envInt("CTRLIFT_BENCH_BYTES", 250_000_000)
	if img := os.Getenv("CTRLIFT_BENCH_IMAGE"); img != "" {
		return img, nl
	}
	dir := os.Getenv("CTRLIFT_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	img := filepath.Join(dir, fmt.Sprintf("export-bench-%d-%d-%d.img", nl, files, bytes))
	if _, err := os.Stat(img); err == nil {
		return img, nl
	}
	for _, tool := range []string{"go", "mke2fs"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Skipf("%s not installed", tool)
		}
	}
	src := filepath.Join(dir, "src")
	os.RemoveAll(src)
	defer os.RemoveAll(src)
	gen := exec.Command("go", "run", "../bench/gen", "-out", src, "-layers", strconv.Itoa(nl), "-files", strconv.Itoa(files), "-bytes", strconv.Itoa(bytes))
	if out, err := gen.CombinedOutput(); err != nil {
		b.Fatalf("bench/gen: %v\n%s", err, out)
	}
	size := int64(bytes)*13/10 + int64(files)*16384 + 256<<20
	f, err := os.Create(img + ".tmp")
	if err != nil {
		b.Fatal(err)
	}
	f.Truncate(size / 4096 * 4096)
	f.Close()
	mk := exec.Command("mke2fs", "-t", "ext4", "-F", "-q", "-N", strconv.Itoa(files*2+10000), "-d", src, img+".tmp")
	if out, err := mk.CombinedOutput(); err != nil {
		b.Fatalf("mke2fs: %v\n%s", err, out)
	}
	if err := os.Rename(img+".tmp", img); err != nil {
		b.Fatal(err)
	}
	return img, nl
}

// BenchmarkExport writes the merged container as a tar to io.Discard,
// opening the filesystem afresh each time (the page cache stays warm).
func BenchmarkExport(b *testing.B) {
	img, nl := benchImage(b)
	snap := "var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots"
	run := func(b *testing.B, out func() io.WriteCloser) {
		var stats *Stats
		for b.Loop() {
			fsys, err := ext4.Open(img)
			if err != nil {
				b.Fatal(err)
			}
			var ls []layers.Layer
			for l := nl; l >= 1; l-- {
				ls = append(ls, layers.Layer{FS: fsys.Source(), Dir: fmt.Sprintf("%s/%d/fs", snap, l), Name: strconv.Itoa(l)})
			}
			m, err := layers.New(ls, layers.Options{})
			if err != nil {
				b.Fatal(err)
			}
			w := out()
			stats, err = Tar(w, m, Options{})
			if err != nil {
				b.Fatal(err)
			}
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
			fsys.Close()
		}
		b.SetBytes(stats.Bytes)
		b.ReportMetric(float64(stats.Files), "entries/op")
	}
	b.Run("Tar", func(b *testing.B) {
		run(b, func() io.WriteCloser { return nopCloser{io.Discard} })
	})
	b.Run("Zstd", func(b *testing.B) {
		run(b, func() io.WriteCloser {
			w, err := Compress(io.Discard, Zstd)
			if err != nil {
				b.Fatal(err)
			}
			return w
		})
	})
}
