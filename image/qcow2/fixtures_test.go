package qcow2

import (
	"bytes"
	"strconv"
	"testing"

	"github.com/ctrlift/ctrlift/image/vdisk"

	"github.com/ctrlift/ctrlift/image/vdisk/vdisktest"
)

// zeroWrites are the ranges qemu-io zeroes in the fixtures made with it.
var zeroWrites = [][2]int64{{20 << 10, 2 << 10}, {64 << 10, 16 << 10}}

func writeZeros(t testing.TB, qemuImg, raw, out string, opts ...string) {
	vdisktest.Convert(t, raw, out, "qcow2", opts...)
	args := []string{"-f", "qcow2"}
	for _, z := range zeroWrites {
		args = append(args, "-c", "write -z "+strconv.FormatInt(z[0], 10)+" "+strconv.FormatInt(z[1], 10))
	}
	vdisktest.Run(t, "qemu-io", append(args, out)...)
}

// fixtures are committed under testdata (see vdisktest.Fixtures).
var fixtures = []vdisktest.Fixture{
	{Name: "v3.qcow2", Format: "qcow2", Opts: []string{"-o", "cluster_size=4096"}},
	{Name: "v2.qcow2", Format: "qcow2", Opts: []string{"-o", "compat=0.10,cluster_size=4096"}},
	{Name: "zlib.qcow2", Format: "qcow2", Opts: []string{"-c", "-o", "cluster_size=4096"}},
	{Name: "zstd.qcow2", Format: "qcow2", Opts: []string{"-c", "-o", "cluster_size=4096,compression_type=zstd"}},
	{Name: "zero.qcow2", Make: func(t testing.TB, q, raw, out string) {
		writeZeros(t, q, raw, out, "-o", "cluster_size=4096")
	}},
	{Name: "l2ext.qcow2", Make: func(t testing.TB, q, raw, out string) {
		writeZeros(t, q, raw, out, "-o", "cluster_size=16384,extended_l2=on")
	}},
}

// wantKinds is an extent kind each fixture must contain.
var wantKinds = map[string]vdisk.ExtentKind{
	"v3.qcow2":    vdisk.ExtentStored,
	"v2.qcow2":    vdisk.ExtentStored,
	"zlib.qcow2":  vdisk.ExtentCompressed,
	"zstd.qcow2":  vdisk.ExtentCompressed,
	"zero.qcow2":  vdisk.ExtentZero,
	"l2ext.qcow2": vdisk.ExtentZero,
}

// expected is the guest content of a fixture.
func expected(name string) []byte {
	b := vdisktest.FixtureRaw()
	if name == "zero.qcow2" || name == "l2ext.qcow2" {
		for _, z := range zeroWrites {
			clear(b[z[0] : z[0]+z[1]])
		}
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
