package vhdx

import (
	"bytes"
	"testing"

	"github.com/ctrlift/ctrlift/image/vdisk/vdisktest"
)

// fixtures are committed under testdata (see vdisktest.Fixtures); 1 MiB
// blocks and log keep them small.
var fixtures = []vdisktest.Fixture{
	{Name: "dynamic.vhdx", Format: "vhdx", Opts: []string{"-o", "block_size=1M,log_size=1M"}},
	{Name: "fixed.vhdx", Format: "vhdx", Opts: []string{"-o", "subformat=fixed,block_size=1M,log_size=1M"}},
}

// TestFixtures reads the committed images (no tools needed here).
func TestFixtures(t *testing.T) {
	raw := vdisktest.FixtureRaw()
	for name, img := range vdisktest.Fixtures(t, fixtures) {
		t.Run(name, func(t *testing.T) {
			im, err := NewReader(bytes.NewReader(img), int64(len(img)), Options{})
			if err != nil {
				t.Fatal(err)
			}
			vdisktest.Verify(t, im, raw)
		})
	}
}
