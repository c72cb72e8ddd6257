package vhdx

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctrlift/ctrlift/image/vdisk"
	"github.com/ctrlift/ctrlift/image/vdisk/vdisktest"
)

// rawSize is not a multiple of any block size.
const rawSize = 5<<20 + 3*4096 + 512

// TestConvertedByQemu converts one raw disk with qemu-img to fixed and
// dynamic VHDX and checks that the reader returns the raw bytes exactly.
func TestConvertedByQemu(t *testing.T) {
	vdisktest.QemuImg(t)
	dir := t.TempDir()
	rawPath, raw := vdisktest.RawFile(t, dir, "disk.raw", rawSize, 1)
	tests := []struct {
		name, opts, subformat string
		block                 int64
	}{
		{"dynamic", "", "dynamic", 8 << 20},
		{"fixed", "subformat=fixed", "fixed", 8 << 20},
		{"dynamic 1M blocks", "block_size=1M,log_size=1M", "dynamic", 1 << 20},
		{"fixed 1M blocks", "subformat=fixed,block_size=1M", "fixed", 1 << 20},
		{"dynamic 256M blocks", "block_size=256M", "dynamic", 256 << 20},
		{"dynamic without zero blocks", "block_state_zero=off", "dynamic", 8 << 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".vhdx")
			var opts []string
			if tc.opts != "" {
				opts = []string{"-o", tc.opts}
			}
			vdisktest.Convert(t, rawPath, p, "vhdx", opts...)
			im, err := Open(p, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer im.Close()
			vdisktest.Verify(t, im, raw)
			info := im.Info()
			if info.Format != vdisk.VHDX || info.Subformat != tc.subformat || info.VirtualSize != rawSize ||
				info.ClusterSize != tc.block || len(info.Warnings) != 0 {
				t.Errorf("Info() = %+v", info)
			}
			f, _ := os.Open(p)
			defer f.Close()
			head := make([]byte, vdisk.SniffLen)
			f.ReadAt(head, 0)
			if k := vdisk.Sniff(head); k != vdisk.VHDX {
				t.Errorf("Sniff = %v", k)
			}
		})
	}
}
