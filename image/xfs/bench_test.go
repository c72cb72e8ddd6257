package xfs_test

// Benchmarks on the committed fixtures, to compare with image/ext4:
//
//	go test ./image/xfs -run '^$' -bench . -benchtime 3x

import (
	"io"
	"io/fs"
	"testing"

	"github.com/ctrlift/ctrlift/image/xfs"
)

// BenchmarkReadAll opens a fixture, walks it, and reads every regular file
// through the vfs view, as an export does. It reports the file bytes read.
func BenchmarkReadAll(b *testing.B) {
	for _, name := range []string{"xfs-default", "xfs-1k", "xfs-bigdir"} {
		b.Run(name, func(b *testing.B) {
			dir := fixtureDir(b)
			img := fixtureImagePath(b, dir, name)
			var total int64
			b.ResetTimer()
			for b.Loop() {
				fsys, err := xfs.Open(img)
				if err != nil {
					b.Fatal(err)
				}
				total = readAll(b, fsys)
				fsys.Close()
			}
			b.SetBytes(total)
		})
	}
}

func readAll(b *testing.B, fsys *xfs.FS) int64 {
	var total int64
	seen := map[uint64]bool{}
	err := fs.WalkDir(fsys.IOFS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		in, err := fsys.Lookup(p)
		if err != nil {
			return err
		}
		if seen[in.Ino] || in.Size > 64<<20 {
			return nil
		}
		seen[in.Ino] = true
		f, err := fsys.Open(in)
		if err != nil {
			return err
		}
		n, err := io.Copy(io.Discard, f)
		total += n
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return total
}
