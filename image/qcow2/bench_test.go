package qcow2

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/ctrlift/ctrlift/image/vdisk/vdisktest"
)

// TestExampleDisk converts the bundled 667 MiB node disk (GPT, ext4) and
// compares every byte. Skipped with -short.
func TestExampleDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("converts and reads a 667 MiB disk")
	}
	vdisktest.QemuImg(t)
	dir := t.TempDir()
	raw := vdisktest.ExampleDisk(t, dir)
	for _, opts := range [][]string{{"-c", "-o", "compression_type=zstd"}} {
		p := filepath.Join(dir, "example.qcow2")
		vdisktest.Convert(t, raw, p, "qcow2", opts...)
		im, err := Open(p, Options{})
		if err != nil {
			t.Fatal(err)
		}
		vdisktest.VerifyFile(t, im, raw)
		im.Close()
	}
}

// BenchmarkSequentialRead reads the same 64 MiB disk raw and through each
// qcow2 layout qemu-img writes.
func BenchmarkSequentialRead(b *testing.B) {
	vdisktest.QemuImg(b)
	dir := b.TempDir()
	raw := vdisktest.BenchRaw(b, dir)
	variants := []struct {
		name string
		opts []string
	}{
		{"qcow2", nil},
		{"qcow2-zlib", []string{"-c"}},
		{"qcow2-zstd", []string{"-c", "-o", "compression_type=zstd"}},
	}
	images := map[string]*Image{}
	for _, v := range variants {
		p := filepath.Join(dir, v.name)
		vdisktest.Convert(b, raw, p, "qcow2", v.opts...)
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
