package ext4_test

// Benchmarks on images made by mke2fs at benchmark time (random data does not
// belong in the repository) and on the committed htree-20k fixture.
//
//	go test ./image/ext4 -run '^$' -bench . -benchtime 3x
//
// BenchmarkLargeFile reports MB/s for the same 200 MiB read three ways: through
// the ext4 reader (ReadAt and io.Copy) and as raw ReadAt of the file's extents
// straight from the image, so the reader's overhead is the ratio of the two.

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/ctrlift/ctrlift/image/ext4"
)

// mkfsFromTree runs mke2fs -d src into a new image of size bytes.
func mkfsFromTree(b *testing.B, src, img string, size int64, extra ...string) {
	b.Helper()
	f, err := os.Create(img)
	if err != nil {
		b.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		b.Fatal(err)
	}
	f.Close()
	args := append([]string{"-t", "ext4", "-F", "-q", "-b", "4096", "-d", src}, extra...)
	args = append(args, img)
	cmd := exec.Command("mke2fs", args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("mke2fs: %v\n%s", err, out)
	}
	// Flush now so that writeback does not run during the first timed reads.
	f, err = os.Open(img)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
}

// extentRun is one physical run of a file, from debugfs.
type extentRun struct{ logical, physical, blocks int64 }

// debugfsExtents parses the leaf lines of `debugfs -R "ex FILE"`.
func debugfsExtents(b *testing.B, img, file string) []extentRun {
	b.Helper()
	out, err := exec.Command("debugfs", "-R", "ex "+file, img).Output()
	if err != nil {
		b.Fatalf("debugfs ex: %v", err)
	}
	// " 1/ 1   1/ 31     0 -     1  1549 -  1550      2 [Uninit]": only leaves have a physical range.
	re := regexp.MustCompile(`(?m)^\s*\d+/\s*\d+\s+\d+/\s*\d+\s+(\d+)\s+-\s+\d+\s+(\d+)\s+-\s+\d+\s+(\d+)`)
	var runs []extentRun
	for _, m := range re.FindAllStringSubmatch(string(out), -1) {
		l, _ := strconv.ParseInt(m[1], 10, 64)
		p, _ := strconv.ParseInt(m[2], 10, 64)
		n, _ := strconv.ParseInt(m[3], 10, 64)
		runs = append(runs, extentRun{l, p, n})
	}
	if len(runs) == 0 {
		b.Fatalf("no extents in debugfs output:\n%s", out)
	}
	return runs
}

func BenchmarkLargeFile(b *testing.B) {
	needTools(b, "mke2fs", "debugfs")
	const size = 200 << 20
	const bs = 4096
	dir := b.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		b.Fatal(err)
	}
	data := make([]byte, size)
	rand.NewChaCha8([32]byte{'c', 't', 'r', 'l', 'i', 'f', 't'}).Read(data)
	if err := os.WriteFile(filepath.Join(src, "big"), data, 0o644); err != nil {
		b.Fatal(err)
	}
	img := filepath.Join(dir, "large.img")
	mkfsFromTree(b, src, img, 320<<20)
	runs := debugfsExtents(b, img, "big")
	wantSum := sha256.Sum256(data)
	data = nil

	fsys, err := ext4.Open(img)
	if err != nil {
		b.Fatal(err)
	}
	defer fsys.Close()
	in, err := fsys.Lookup("big")
	if err != nil {
		b.Fatal(err)
	}
	raw, err := os.Open(img)
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()

	buf := make([]byte, 1<<20)
	readExt4 := func() ([32]byte, error) {
		r, err := fsys.NewFileReader(in)
		if err != nil {
			return [32]byte{}, err
		}
		h := sha256.New()
		for off := int64(0); off < size; off += int64(len(buf)) {
			n, err := r.ReadAt(buf, off)
			if err != nil && err != io.EOF {
				return [32]byte{}, err
			}
			h.Write(buf[:n])
		}
		return [32]byte(h.Sum(nil)), nil
	}
	readRaw := func(h io.Writer) error {
		for _, e := range runs {
			left := min(e.blocks*bs, size-e.logical*bs)
			for off := int64(0); off < left; off += int64(len(buf)) {
				n := min(int64(len(buf)), left-off)
				if _, err := raw.ReadAt(buf[:n], e.physical*bs+off); err != nil {
					return err
				}
				if h != nil {
					h.Write(buf[:n])
				}
			}
		}
		return nil
	}
	// Both paths must read the same bytes before their speeds mean anything.
	if got, err := readExt4(); err != nil || got != wantSum {
		b.Fatalf("ext4 read: %v, sha256 mismatch %v", err, got != wantSum)
	}
	h := sha256.New()
	if err := readRaw(h); err != nil || !bytes.Equal(h.Sum(nil), wantSum[:]) {
		b.Fatalf("raw read of the debugfs extents: %v (extents %v)", err, runs)
	}

	b.Run("ext4-ReadAt", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			r, err := fsys.NewFileReader(in)
			if err != nil {
				b.Fatal(err)
			}
			for off := int64(0); off < size; off += int64(len(buf)) {
				if _, err := r.ReadAt(buf, off); err != nil && err != io.EOF {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("ext4-Copy", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			f, err := fsys.Open("big")
			if err != nil {
				b.Fatal(err)
			}
			if n, err := io.Copy(io.Discard, f); err != nil || n != size {
				b.Fatal(n, err)
			}
			f.Close()
		}
	})
	b.Run("raw-ReadAt", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			if err := readRaw(nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkTree walks a 20,000-file tree and reads every file, opening the
// filesystem afresh each time (the page cache stays warm).
func BenchmarkTree(b *testing.B) {
	needTools(b, "mke2fs")
	dir := b.TempDir()
	src := filepath.Join(dir, "src")
	rng := rand.NewChaCha8([32]byte{'t', 'r', 'e', 'e'})
	var total int64
	const files = 20000
	for i := range files {
		d := filepath.Join(src, fmt.Sprintf("d%03d", i/100), fmt.Sprintf("s%d", i%3))
		if err := os.MkdirAll(d, 0o755); err != nil {
			b.Fatal(err)
		}
		n := (i * 7919) % 9000
		if i%500 == 0 {
			n = 300 << 10
		}
		data := make([]byte, n)
		rng.Read(data)
		if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("f%05d", i)), data, 0o644); err != nil {
			b.Fatal(err)
		}
		total += int64(n)
	}
	img := filepath.Join(dir, "tree.img")
	mkfsFromTree(b, src, img, 512<<20, "-N", "32768")

	b.Run("WalkRead", func(b *testing.B) {
		b.SetBytes(total)
		for b.Loop() {
			fsys, err := ext4.Open(img)
			if err != nil {
				b.Fatal(err)
			}
			count := 0
			var read int64
			err = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
				if err != nil || !d.Type().IsRegular() {
					return err
				}
				f, err := fsys.Open(p)
				if err != nil {
					return err
				}
				n, err := io.Copy(io.Discard, f)
				f.Close()
				count++
				read += n
				return err
			})
			fsys.Close()
			if err != nil || count != files || read != total {
				b.Fatalf("walk: %v; %d files, %d bytes; want %d, %d", err, count, read, files, total)
			}
		}
		b.ReportMetric(float64(files), "files/op")
	})
}

// BenchmarkDir20k lists the 20,000-entry htree directory of the committed
// htree-20k fixture (target: well under 50 ms per listing).
func BenchmarkDir20k(b *testing.B) {
	img := filepath.Join(b.TempDir(), "htree-20k.img")
	decompressZstd(b, filepath.Join(ext4FixtureDir(b), "htree-20k.img.zst"), img)
	const want = 20000
	fsys, err := ext4.Open(img)
	if err != nil {
		b.Fatal(err)
	}
	defer fsys.Close()

	b.Run("ReadDir", func(b *testing.B) {
		for b.Loop() {
			if ents, err := fs.ReadDir(fsys, "big"); err != nil || len(ents) != want {
				b.Fatal(len(ents), err)
			}
		}
	})
	b.Run("OpenAndReadDir", func(b *testing.B) {
		for b.Loop() {
			f, err := ext4.Open(img)
			if err != nil {
				b.Fatal(err)
			}
			if ents, err := fs.ReadDir(f, "big"); err != nil || len(ents) != want {
				b.Fatal(len(ents), err)
			}
			f.Close()
		}
	})
	b.Run("LstatEach", func(b *testing.B) {
		ents, err := fs.ReadDir(fsys, "big")
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			for _, d := range ents {
				if _, err := fs.Lstat(fsys, "big/"+d.Name()); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(len(ents)), "lookups/op")
	})
}
