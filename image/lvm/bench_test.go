package lvm

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/ctrlift/ctrlift/internal/testutil"
)

// BenchmarkRead reads the example's STATE filesystem in 64 KiB pieces (an
// ext4 reader's typical request) straight from the plain image and
// through the linear and striped logical volumes holding the same bytes;
// compare the MB/s of the three in one run.
func BenchmarkRead(b *testing.B) {
	plain, err := os.Open(testutil.Unzstd(b, filepath.Join(testutil.RepoRoot(b), "testdata", "images", "example", "wordpress-node.raw.zst")))
	if err != nil {
		b.Fatal(err)
	}
	defer plain.Close()
	open := func(names ...string) io.ReaderAt {
		var pvs []*PV
		for _, n := range names {
			f, err := os.Open(testutil.Unzstd(b, filepath.Join(testutil.RepoRoot(b), "testdata", "images", "lvm", n+".raw.zst")))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { f.Close() })
			st, _ := f.Stat()
			var r io.ReaderAt = f
			size := st.Size()
			if n == "node-lvm-linear" {
				r, size = io.NewSectionReader(f, 1<<20, size-(1<<20)-34*512), size-(1<<20)-34*512
			}
			pv, err := ReadPV(r, size)
			if err != nil {
				b.Fatal(err)
			}
			pvs = append(pvs, pv)
		}
		for _, vg := range Assemble(pvs) {
			for _, lv := range vg.LVs {
				if lv.Size == stateLen && lv.Err == nil {
					r, _ := lv.Open()
					return r
				}
			}
		}
		b.Fatal("no LV")
		return nil
	}
	for _, c := range []struct {
		name string
		r    io.ReaderAt
	}{
		{"plain", io.NewSectionReader(plain, stateOff, stateLen)},
		{"linear", open("node-lvm-linear")},
		{"striped", open("node-lvm-striped-0", "node-lvm-striped-1")},
	} {
		b.Run(c.name, func(b *testing.B) {
			buf := make([]byte, 64<<10)
			b.SetBytes(stateLen)
			for i := 0; i < b.N; i++ {
				for off := int64(0); off < stateLen; off += int64(len(buf)) {
					if _, err := c.r.ReadAt(buf, off); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
