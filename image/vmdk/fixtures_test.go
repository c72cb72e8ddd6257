package vmdk

import (
	"bytes"
	"os"
	"testing"

	"github.com/ctrlift/ctrlift/image/vdisk"
	"github.com/ctrlift/ctrlift/image/vdisk/vdisktest"
)

// fixtures are committed under testdata (see vdisktest.Fixtures).
var fixtures = []vdisktest.Fixture{
	{Name: "sparse.vmdk", Format: "vmdk", Opts: []string{"-o", "subformat=monolithicSparse"}},
	{Name: "stream.vmdk", Format: "vmdk", Opts: []string{"-o", "subformat=streamOptimized"}},
	{Name: "footer.vmdk", Make: func(t testing.TB, q, raw, out string) {
		vdisktest.Convert(t, raw, out, "vmdk", "-o", "subformat=streamOptimized")
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		vdisktest.WriteFile(t, out, withFooter(b))
	}},
	{Name: "zeroed.vmdk", Make: func(t testing.TB, q, raw, out string) {
		vdisktest.Convert(t, raw, out, "vmdk", "-o", "subformat=monolithicSparse,zeroed_grain=on")
		vdisktest.Run(t, "qemu-io", "-f", "vmdk", "-c", "write -z 64k 64k", out)
	}},
}

// wantKinds is an extent kind each fixture must contain.
var wantKinds = map[string]vdisk.ExtentKind{
	"sparse.vmdk": vdisk.ExtentStored,
	"stream.vmdk": vdisk.ExtentCompressed,
	"footer.vmdk": vdisk.ExtentCompressed,
	"zeroed.vmdk": vdisk.ExtentZero,
}

func expected(name string) []byte {
	b := vdisktest.FixtureRaw()
	if name == "zeroed.vmdk" {
		clear(b[64<<10 : 128<<10])
	}
	return b
}

// TestFixtures reads the committed images (made by qemu-img and qemu-io;
// no tools needed here).
func TestFixtures(t *testing.T) {
	for name, img := range vdisktest.Fixtures(t, fixtures) {
		t.Run(name, func(t *testing.T) {
			im, err := NewReader(bytes.NewReader(img), int64(len(img)), Options{})
			if err != nil {
				t.Fatal(err)
			}
			vdisktest.Verify(t, im, expected(name))
			kinds := map[vdisk.ExtentKind]bool{}
			for off := int64(0); off < im.Size(); {
				e, err := im.m.Map(off)
				if err != nil {
					t.Fatal(err)
				}
				kinds[e.Kind] = true
				off += e.Len
			}
			if want := wantKinds[name]; !kinds[want] {
				t.Errorf("no %v extent in %s: %v", want, name, kinds)
			}
		})
	}
}
