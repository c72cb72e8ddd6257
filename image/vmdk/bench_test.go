package vmdk

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/ctrlift/ctrlift/image/vdisk/vdisktest"
)

// TestExampleDisk converts the bundled 667 MiB node disk (GPT, ext4) with
// qemu-img and compares every byte. Skipped with -short.
func TestExampleDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("converts and reads a 667 MiB disk")
	}
	vdisktest.QemuImg(t)
	dir := t.TempDir()
	raw := vdisktest.ExampleDisk(t, dir)
	p := filepath.Join(dir, "example.vmdk")
	vdisktest.Convert(t, raw, p, "vmdk", "-o", "subformat=streamOptimized")
	im, err := Open(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	vdisktest.VerifyFile(t, im, raw)
}

// BenchmarkSequentialRead reads the same 64 MiB disk raw and through each
// layout qemu-img writes.
func BenchmarkSequentialRead(b *testing.B) {
	vdisktest.QemuImg(b)
	dir := b.TempDir()
	raw := vdisktest.BenchRaw(b, dir)
	variants := []struct {
		name string
		opts []string
	}{
		{"monolithicSparse", []string{"-o", "subformat=monolithicSparse"}},
		{"streamOptimized", []string{"-o", "subformat=streamOptimized"}},
		{"monolithicFlat", []string{"-o", "subformat=monolithicFlat"}},
	}
	images := map[string]*Image{}
	for _, v := range variants {
		p := filepath.Join(dir, v.name+".vmdk")
		vdisktest.Convert(b, raw, p, "vmdk", v.opts...)
		im, err := Open(p, Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer im.Close()
		images[v.name] = im
	}
	f, err := os.Open(raw)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	for _, bufSize := range []int{64 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("raw/%dKiB", bufSize>>10), func(b *testing.B) {
			vdisktest.BenchmarkRead(b, f, vdisktest.BenchContentSize, bufSize)
		})
		for _, v := range variants {
			b.Run(fmt.Sprintf("%s/%dKiB", v.name, bufSize>>10), func(b *testing.B) {
				vdisktest.BenchmarkRead(b, images[v.name], vdisktest.BenchContentSize, bufSize)
			})
		}
	}
}
