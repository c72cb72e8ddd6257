package vmdk

import (
	"bytes"
	"testing"

	"github.com/ctrlift/ctrlift/image/vdisk/vdisktest"
)

// FuzzNewReader opens arbitrary bytes as a single-file VMDK and reads a
// sample; seeds are the committed images made by qemu-img.
func FuzzNewReader(f *testing.F) {
	for _, img := range vdisktest.Fixtures(f, fixtures) {
		f.Add(img)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		im, err := NewReader(bytes.NewReader(data), int64(len(data)), Options{})
		if err != nil {
			return
		}
		exercise(im)
	})
}

// FuzzDescriptor parses arbitrary descriptor text.
func FuzzDescriptor(f *testing.F) {
	f.Add(descriptorText(`RW 4096 FLAT "a.vmdk" 0`, "RW 10 ZERO", `RDONLY 5 SPARSE "b c.vmdk"`))
	f.Add("# Disk DescriptorFile\nparentFileNameHint=\"x\"\nRW 1 VMFS \"y\"\n")
	f.Fuzz(func(t *testing.T, text string) {
		d, err := parseDescriptor(text)
		if err != nil {
			return
		}
		for _, e := range d.extents {
			if e.sectors <= 0 || e.sectors > maxExtentSectors || e.offset < 0 {
				t.Fatalf("bad extent accepted: %+v", e)
			}
			unsafeName(e.file)
		}
	})
}
