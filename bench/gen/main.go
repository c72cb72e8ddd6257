// Command gen writes the source tree of the benchmark image: a containerd
// overlayfs snapshotter directory with a three-layer container (about
// 100k files and 2 GB of data by default), ready for mkfs.ext4 -d.
//
//	go run ./bench/gen -out DIR [-files 100000] [-bytes 2000000000]
//
// With -layers N (N > 3) it writes a many-layer container instead, as
// image builds make them: a base layer with most of the files and N-1
// thin layers that add, replace and delete files in the same directories,
// one big file and one 2 GiB sparse file:
//
//	go run ./bench/gen -out DIR -layers 71 -files 30000 -bytes 250000000
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
	nlayers := flag.Int("layers", 3, "number of layers (more than 3: the many-layer container)")
	flag.Parse()
	if *out == "" {
		log.Fatal("gen: -out is required")
	}
	snap := filepath.Join(*out, "var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots")
	rng := rand.New(rand.NewChaCha8([32]byte{'c', 't', 'r', 'l', 'i', 'f', 't'}))
	mtime := time.Unix(1700000000, 123456789)
	if *nlayers > 3 {
		manyLayers(snap, rng, mtime, *nlayers, *files, *total)
		fmt.Println(snap)
		return
	}

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

// manyLayers writes a container of n layers: the base layer holds 40% of
// the files, each upper layer an equal share of the rest, written mostly
// into directories that lower layers hold too (so directories merge
// through many layers), with whiteouts and opaque directories (as root),
// symlinks and hard links. One file takes a fifth of the bytes; one 2 GiB
// file is sparse with four 1 MiB stretches of data.
func manyLayers(snap string, rng *rand.Rand, mtime time.Time, n, files int, total int64) {
	root := os.Geteuid() == 0
	buf := make([]byte, 1<<20)
	fill := func(b []byte) {
		for i := 0; i+8 <= len(b); i += 8 {
			v := rng.Uint64()
			for k := 0; k < 8; k++ {
				b[i+k] = byte(v >> (8 * k))
			}
		}
	}
	check := func(err error) {
		if err != nil {
			log.Fatal(err)
		}
	}
	writeAt := func(f *os.File, off, size int64) {
		for left := size; left > 0; {
			k := min(left, int64(len(buf)))
			fill(buf[:k])
			_, err := f.WriteAt(buf[:k], off+size-left)
			check(err)
			left -= k
		}
	}
	write := func(path string, size int64) {
		check(os.MkdirAll(filepath.Dir(path), 0o755))
		f, err := os.Create(path)
		check(err)
		writeAt(f, 0, size)
		check(f.Close())
		os.Chtimes(path, mtime, mtime)
	}
	bigSize := total / 5
	smallAvg := (total - bigSize - 4<<20) / int64(files)
	const dirs = 600 // shared directories: usr/lib/pNN/dNN
	dirOf := func(i int) string { return fmt.Sprintf("usr/lib/p%02d/d%03d", i/30, i%30) }
	type placed struct {
		layer int
		rel   string
	}
	var below []placed // files of the layers written so far, for whiteouts
	base := files * 4 / 10
	per := (files - base) / (n - 1)
	for layer := 1; layer <= n; layer++ {
		fs := filepath.Join(snap, fmt.Sprint(layer), "fs")
		check(os.MkdirAll(fs, 0o755))
		count := per
		if layer == 1 {
			count = base
		}
		// An upper layer touches a few dozen of the shared directories.
		hot := rng.IntN(dirs)
		for i := 0; i < count; i++ {
			d := rng.IntN(dirs)
			if layer > 1 && rng.IntN(4) != 0 {
				d = (hot + rng.IntN(40)) % dirs
			}
			rel := filepath.Join(dirOf(d), fmt.Sprintf("l%03d-%05d.so", layer, i))
			if layer > 1 && i%10 == 0 && len(below) > 0 {
				// Replace a file of a lower layer.
				rel = below[rng.IntN(len(below))].rel
			}
			p := filepath.Join(fs, rel)
			switch {
			case i%23 == 7:
				check(os.MkdirAll(filepath.Dir(p), 0o755))
				os.Remove(p)
				check(os.Symlink(fmt.Sprintf("../../p%02d/d%03d/target-%d", rng.IntN(20), rng.IntN(30), i), p))
			case i%97 == 3 && i > 0:
				// A hard link to the file written just before, in the same layer.
				prev := filepath.Join(fs, below[len(below)-1].rel)
				if below[len(below)-1].layer == layer {
					if _, err := os.Lstat(prev); err == nil {
						check(os.MkdirAll(filepath.Dir(p), 0o755))
						os.Remove(p)
						check(os.Link(prev, p))
						break
					}
				}
				write(p, rng.Int64N(2*smallAvg+1))
			default:
				write(p, rng.Int64N(2*smallAvg+1))
			}
			below = append(below, placed{layer, rel})
		}
		// Layer-specific files: a package's own directory and metadata.
		write(filepath.Join(fs, "var/lib/dpkg/info", fmt.Sprintf("pkg%03d.list", layer)), 4096+rng.Int64N(8192))
		write(filepath.Join(fs, "etc", fmt.Sprintf("conf-%03d", layer)), rng.Int64N(2048))
		if layer == 2 {
			write(filepath.Join(fs, "opt/app/big.bin"), bigSize)
		}
		if layer == n/2 {
			p := filepath.Join(fs, "var/lib/app/sparse.img")
			check(os.MkdirAll(filepath.Dir(p), 0o755))
			f, err := os.Create(p)
			check(err)
			for k := int64(0); k < 4; k++ {
				writeAt(f, k*(512<<20)+(64<<20), 1<<20)
			}
			check(f.Truncate(2 << 30))
			check(f.Close())
			os.Chtimes(p, mtime, mtime)
		}
		if layer > 1 && root {
			// Delete files of the layers below, and make a directory opaque
			// now and then (trusted.overlay.opaque, as overlayfs writes it).
			for i := 0; i < 10 && len(below) > count; i++ {
				victim := below[rng.IntN(len(below)-count)]
				p := filepath.Join(fs, victim.rel)
				if _, err := os.Lstat(p); err == nil {
					continue
				}
				check(os.MkdirAll(filepath.Dir(p), 0o755))
				check(syscall.Mknod(p, syscall.S_IFCHR, 0))
			}
			if layer%10 == 0 {
				p := filepath.Join(fs, "usr/share/doc")
				check(os.MkdirAll(p, 0o755))
				write(filepath.Join(p, fmt.Sprintf("README-%03d", layer)), 1000)
				check(syscall.Setxattr(p, "trusted.overlay.opaque", []byte("y"), 0))
			} else {
				write(filepath.Join(fs, "usr/share/doc", fmt.Sprintf("pkg%03d/copyright", layer)), 1500)
			}
		}
	}
}
