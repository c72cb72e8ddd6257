package vhd

import (
	"bytes"
	"testing"

	"github.com/ctrlift/ctrlift/image/vdisk"
	"github.com/ctrlift/ctrlift/image/vdisk/vdisktest"
)

// fixtures are committed under testdata (see vdisktest.Fixtures).
var fixtures = []vdisktest.Fixture{
	{Name: "fixed.vhd", Format: "vpc", Opts: []string{"-o", "subformat=fixed"}},
	{Name: "dynamic.vhd", Format: "vpc", Opts: []string{"-o", "subformat=dynamic"}},
}

// TestFixtures reads the committed images, and a differencing disk made
// from the dynamic one (no tools needed here).
func TestFixtures(t *testing.T) {
	fx := vdisktest.Fixtures(t, fixtures)
	raw := vdisktest.FixtureRaw()
	for name, img := range fx {
		t.Run(name, func(t *testing.T) {
			im, err := NewReader(bytes.NewReader(img), int64(len(img)), Options{})
			if err != nil {
				t.Fatal(err)
			}
			vdisktest.Verify(t, im, raw)
			if k, _ := vdisk.SniffAt(bytes.NewReader(img), int64(len(img))); k != vdisk.VHD {
				t.Errorf("SniffAt = %v", k)
			}
		})
	}
	t.Run("differencing", func(t *testing.T) {
		diff, expect := makeDifferencing(t, fx["dynamic.vhd"])
		im0, _ := NewReader(bytes.NewReader(fx["dynamic.vhd"]), int64(len(fx["dynamic.vhd"])), Options{})
		parent := vdisktest.MixedContent(im0.Size(), 11)
		im, err := NewReader(bytes.NewReader(diff), int64(len(diff)), Options{Parent: sized{bytes.NewReader(parent)}})
		if err != nil {
			t.Fatal(err)
		}
		child := append(bytes.Clone(raw), make([]byte, im.Size()-int64(len(raw)))...)
		vdisktest.Verify(t, im, expect(child, parent))
	})
}
