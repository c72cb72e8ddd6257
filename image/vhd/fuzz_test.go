package vhd

import (
	"testing"

	"github.com/ctrlift/ctrlift/image/vdisk/vdisktest"
)

// FuzzNewReader opens arbitrary bytes as a VHD (with a parent when it is
// a differencing disk) and reads a sample; seeds are the committed images
// made by qemu-img, and a differencing disk made from one.
func FuzzNewReader(f *testing.F) {
	fx := vdisktest.Fixtures(f, fixtures)
	for _, img := range fx {
		f.Add(img)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		im, err := open(data)
		if err != nil {
			return
		}
		exercise(im)
	})
}
