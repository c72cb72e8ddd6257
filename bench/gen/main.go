// Command gen writes the source tree of the benchmark image: a containerd
// overlayfs snapshotter directory with a three-layer container (about
// 100k files and 2 GB of data by default), ready for mkfs.ext4 -d.
//
//	go run ./bench/gen -out DIR [-files 100000] [-bytes 2000000000]
//
// Content is pseudo-random from a fixed seed, so runs are comparable.
// Whiteouts (char 0:0) need mknod, so they are made only when run as root.
package main

import (
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

func main() {
	out := flag.String("out", "", "directory to create the tree in")
	files := flag.Int("files", 100_000, "number of files over all layers")
	total := flag.Int64("bytes", 2_000_000_000, "bytes of file data over all layers")
	flag.Parse()
	if *out == "" {
		log.Fatal("gen: -out is required")
	}
	snap := filepath.Join(*out, "var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots")
	rng := rand.New(rand.NewChaCha8([32]byte{'c', 't', 'r', 'l', 'i', 'f', 't'}))
	mtime := time.Unix(1700000000, 123456789)

	// Large files carry most of the bytes; small files most of the count.
	bigCount := 6
	bigSize := *total * 8 / 10 / int64(bigCount)
	smallBudget := *total - bigSize*int64(bigCount)
	smallAvg := smallBudget / int64(*files)
	// Layer sizes: base 60%, middle 30%, top 10% of the files.
	shares := []float64{0.6, 0.3, 0.1}
	buf := make([]byte, 1<<20)
	fill := func(b []byte) {
		for i := 0; i+8 <= len(b); i += 8 {
			v := rng.Uint64()
			for k := 0; k < 8; k++ {
				b[i+k] = byte(v >> (8 * k))
			}
		}
	}
	write := func(path string, size int64) {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			log.Fatal(err)
		}
		f, err := os.Create(path)
		if err != nil {
			log.Fatal(err)
		}
		for left := size; left > 0; {
			n := min(left, int64(len(buf)))
			fill(buf[:n])
			if _, err := f.Write(buf[:n]); err != nil {
				log.Fatal(err)
			}
			left -= n
		}
		if err := f.Close(); err != nil {
			log.Fatal(err)
		}
		os.Chtimes(path, mtime, mtime)
	}
	root := os.Geteuid() == 0
	for layer, share := range shares {
		fs := filepath.Join(snap, fmt.Sprint(layer+1), "fs")
		n := int(float64(*files) * share)
		for i := 0; i < n; i++ {
			// 100 files per directory, 100 directories per group.
			p := filepath.Join(fs, "usr", fmt.Sprintf("g%03d", i/10000), fmt.Sprintf("d%03d", (i/100)%100), fmt.Sprintf("f%07d.dat", layer*1_000_000+i))
			size := rng.Int64N(2*smallAvg + 1)
			write(p, size)
		}
		for i := 0; i < bigCount/len(shares); i++ {
			write(filepath.Join(fs, "opt", "blobs", fmt.Sprintf("big-%d-%d.bin", layer, i)), bigSize)
		}
		if layer > 0 && root {
			// Delete files of the layer below.
			for i := 0; i < 50; i++ {
				j := i * 100
				p := filepath.Join(fs, "usr", fmt.Sprintf("g%03d", j/10000), fmt.Sprintf("d%03d", (j/100)%100), fmt.Sprintf("f%07d.dat", (layer-1)*1_000_000+j))
				os.MkdirAll(filepath.Dir(p), 0o755)
				if err := syscall.Mknod(p, syscall.S_IFCHR, 0); err != nil {
					log.Fatal(err)
				}
			}
		}
	}
	fmt.Println(snap)
}
