package qcow2

import (
	"bytes"
	"testing"

	"github.com/ctrlift/ctrlift/image/vdisk/vdisktest"
)

// FuzzNewReader opens arbitrary bytes as qcow2 and reads a sample; seeds
// are the committed images made by qemu-img.
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
