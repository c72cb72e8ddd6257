package qcow2

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctrlift/ctrlift/image/vdisk"
	"github.com/ctrlift/ctrlift/image/vdisk/vdisktest"
)

// rawSize is not a multiple of any cluster size, so the last cluster is
// partly beyond the disk.
const rawSize = 5<<20 + 3*4096 + 512

// TestConvertedByQemu converts one raw disk with qemu-img in every layout
// qemu writes and checks that the reader returns the raw bytes exactly.
func TestConvertedByQemu(t *testing.T) {
	vdisktest.QemuImg(t)
	dir := t.TempDir()
	rawPath, raw := vdisktest.RawFile(t, dir, "disk.raw", rawSize, 1)
	// qemu-img compresses 512-byte clusters slowly: give it a smaller disk.
	smallPath, small := vdisktest.RawFile(t, dir, "small.raw", 1<<20+512, 1)
	tests := []struct {
		name        string
		opts        []string
		subformat   string
		compression string
		cluster     int64
		small       bool
	}{
		{"v3", nil, "v3", "zlib", 65536, false},
		{"v2 compat=0.10", []string{"-o", "compat=0.10"}, "v2", "zlib", 65536, false},
		{"zlib compressed", []string{"-c"}, "v3", "zlib", 65536, false},
		{"zlib compressed v2", []string{"-c", "-o", "compat=0.10"}, "v2", "zlib", 65536, false},
		{"zstd compressed", []string{"-c", "-o", "compression_type=zstd"}, "v3", "zstd", 65536, false},
		{"extended_l2", []string{"-o", "extended_l2=on"}, "v3 extended_l2", "zlib", 65536, false},
		{"extended_l2 compressed", []string{"-c", "-o", "extended_l2=on,compression_type=zstd"}, "v3 extended_l2", "zstd", 65536, false},
		{"cluster 512", []string{"-o", "cluster_size=512"}, "v3", "zlib", 512, true},
		{"cluster 512 compressed", []string{"-c", "-o", "cluster_size=512"}, "v3", "zlib", 512, true},
		{"cluster 2M zstd", []string{"-c", "-o", "cluster_size=2M,compression_type=zstd"}, "v3", "zstd", 2 << 20, false},
		{"preallocation=metadata", []string{"-o", "preallocation=metadata"}, "v3", "zlib", 65536, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src, want := rawPath, raw
			if tc.small {
				src, want = smallPath, small
			}
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".qcow2")
			vdisktest.Convert(t, src, p, "qcow2", tc.opts...)
			im, err := Open(p, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer im.Close()
			vdisktest.Verify(t, im, want)
			info := im.Info()
			if info.Format != vdisk.QCOW2 || info.Subformat != tc.subformat || info.Compression != tc.compression ||
				info.ClusterSize != tc.cluster || info.VirtualSize != int64(len(want)) || len(info.Warnings) != 0 {
				t.Errorf("Info() = %+v", info)
			}
		})
	}
}

// qemuIO runs qemu-io commands on an image.
func qemuIO(t *testing.T, img string, cmds ...string) {
	t.Helper()
	args := []string{"-f", "qcow2"}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	vdisktest.Run(t, "qemu-io", append(args, img)...)
}

// flatten has qemu-img write the image's guest view as raw: the expected
// bytes for images qemu-io has written to.
func flatten(t *testing.T, img string) []byte {
	t.Helper()
	out := img + ".flat"
	vdisktest.Run(t, vdisktest.QemuImg(t), "convert", "-O", "raw", img, out)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBackingChain has qemu make a backing chain (base <- mid <- top) with
// writes, zero writes and discards at every level, and compares the top
// image, given its backing images explicitly, with qemu's flattened view.
func TestBackingChain(t *testing.T) {
	qemuImg := vdisktest.QemuImg(t)
	if _, err := os.Stat("/usr/bin/qemu-io"); err != nil {
		t.Skip("qemu-io not installed (apt-get install qemu-utils)")
	}
	for _, tc := range []struct {
		name string
		opts string
	}{
		{"standard L2", "cluster_size=65536"},
		{"extended L2", "cluster_size=65536,extended_l2=on"},
		{"v2", "compat=0.10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			rawPath, _ := vdisktest.RawFile(t, dir, "base.raw", 4<<20, 2)
			base := filepath.Join(dir, "base.qcow2")
			vdisktest.Convert(t, rawPath, base, "qcow2", "-o", tc.opts)
			mid := filepath.Join(dir, "mid.qcow2")
			top := filepath.Join(dir, "top.qcow2")
			// The overlays are larger than the base: reads past the base's end are zeros.
			vdisktest.Run(t, qemuImg, "create", "-f", "qcow2", "-o", tc.opts, "-b", "base.qcow2", "-F", "qcow2", mid, "5M")
			qemuIO(t, mid, "write -P 0xa1 0 4k", "write -P 0xa2 100k 8k", "write -z 1M 64k", "write -P 0xa3 4300k 100k")
			vdisktest.Run(t, qemuImg, "create", "-f", "qcow2", "-o", tc.opts, "-b", "mid.qcow2", "-F", "qcow2", top, "5M")
			zero := "write -z 2M 128k"
			if tc.name == "v2" {
				zero = "write -P 0 2M 128k" // v2 has no zero clusters
			}
			qemuIO(t, top, "write -P 0xb1 2k 1k", "write -P 0xb2 1032k 2k", zero, "write -P 0xb3 3M 200k", "discard 3M 64k")
			want := flatten(t, top)

			bim, err := Open(base, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer bim.Close()
			_, err = Open(mid, Options{})
			var be *BackingError
			if !errors.As(err, &be) || be.Name != "base.qcow2" || be.Format != "qcow2" ||
				!strings.Contains(err.Error(), `has backing file "base.qcow2"; give it explicitly`) {
				t.Fatalf("Open without backing: %v", err)
			}
			mim, err := Open(mid, Options{Backing: bim})
			if err != nil {
				t.Fatal(err)
			}
			defer mim.Close()
			tim, err := Open(top, Options{Backing: mim})
			if err != nil {
				t.Fatal(err)
			}
			defer tim.Close()
			if got := tim.Info().Backing; got != "mid.qcow2" {
				t.Errorf("Info().Backing = %q", got)
			}
			vdisktest.Verify(t, tim, want)
		})
	}
}

// TestRefusedByQemuImages checks the images qemu can make that this reader
// refuses, by name. (A LUKS image takes qemu-img seconds to make: LUKS is
// covered by a mutated header in TestCorruptStructures.)
func TestRefusedByQemuImages(t *testing.T) {
	qemuImg := vdisktest.QemuImg(t)
	dir := t.TempDir()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"aes", []string{"--object", "secret,id=sec0,data=pw", "-o", "encrypt.format=aes,encrypt.key-secret=sec0"}, "encrypted image (AES)"},
		{"data file", []string{"-o", "data_file=" + filepath.Join(dir, "data.raw")}, `external data file "` + filepath.Join(dir, "data.raw") + `"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name+".qcow2")
			args := append([]string{"create", "-f", "qcow2"}, tc.args...)
			cmdArgs := append(args, p, "1M")
			if out, err := runMaybe(qemuImg, cmdArgs...); err != nil {
				t.Skipf("this qemu-img cannot make it: %v: %s", err, out)
			}
			_, err := Open(p, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrUnsupported) {
				t.Fatalf("Open: %v; want %q", err, tc.want)
			}
		})
	}
}

func runMaybe(name string, args ...string) ([]byte, error) {
	return exec.Command(name, args...).CombinedOutput()
}
