package vmdk

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ctrlift/ctrlift/image/vdisk"
	"github.com/ctrlift/ctrlift/image/vdisk/vdisktest"
)

// rawSize is not a multiple of the 64 KiB grain: the last grain is short.
const rawSize = 5<<20 + 3*4096 + 512

// TestConvertedByQemu converts one raw disk with qemu-img to each VMDK
// subformat and checks that the reader returns the raw bytes exactly.
func TestConvertedByQemu(t *testing.T) {
	vdisktest.QemuImg(t)
	dir := t.TempDir()
	rawPath, raw := vdisktest.RawFile(t, dir, "disk.raw", rawSize, 1)
	tests := []struct {
		subformat   string
		opts        string
		files       int
		grain       int64
		compression string
	}{
		{"monolithicSparse", "", 0, 65536, ""},
		{"streamOptimized", "", 0, 65536, "deflate"},
		{"monolithicFlat", "", 1, 0, ""},
		{"twoGbMaxExtentSparse", "", 1, 65536, ""},
		{"twoGbMaxExtentFlat", "", 1, 0, ""},
		{"monolithicSparse", "zeroed_grain=on,compat6=on", 0, 65536, ""},
	}
	for _, tc := range tests {
		name := tc.subformat + strings.ReplaceAll(","+tc.opts, ",", "_")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sub := filepath.Join(dir, name)
			if err := os.Mkdir(sub, 0o755); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(sub, "disk.vmdk")
			opts := "subformat=" + tc.subformat
			if tc.opts != "" {
				opts += "," + tc.opts
			}
			vdisktest.Convert(t, rawPath, p, "vmdk", "-o", opts)
			im, err := Open(p, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer im.Close()
			vdisktest.Verify(t, im, raw)
			info := im.Info()
			if info.Format != vdisk.VMDK || info.Subformat != tc.subformat || info.VirtualSize != rawSize ||
				len(info.Files) != tc.files || info.ClusterSize != tc.grain || info.Compression != tc.compression || len(info.Warnings) != 0 {
				t.Errorf("Info() = %+v", info)
			}
			if tc.files == 0 {
				// A single file reads the same through NewReader.
				f, err := os.Open(p)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				st, _ := f.Stat()
				im2, err := NewReader(f, st.Size(), Options{})
				if err != nil {
					t.Fatal(err)
				}
				vdisktest.Verify(t, im2, raw)
			} else if _, err := NewReader(bytes.NewReader([]byte("# Disk DescriptorFile\n")), 22, Options{}); err == nil || !strings.Contains(err.Error(), "open it by path") {
				t.Errorf("NewReader(descriptor): %v", err)
			}
		})
	}
}

// TestMultipleExtents has qemu-img split a 2 GiB + 1 MiB disk into 2 GiB
// extent files, with data on both sides of the boundary and at the end.
func TestMultipleExtents(t *testing.T) {
	vdisktest.QemuImg(t)
	dir := t.TempDir()
	const size = 2<<30 + 1<<20
	rawPath := filepath.Join(dir, "big.raw")
	f, err := os.Create(rawPath)
	if err != nil {
		t.Fatal(err)
	}
	regions := []int64{0, 2<<30 - 96<<10, size - 300<<10}
	content := vdisktest.MixedContent(192<<10, 3)
	for _, at := range regions {
		if _, err := f.WriteAt(content, at); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, sub := range []string{"twoGbMaxExtentSparse", "twoGbMaxExtentFlat"} {
		t.Run(sub, func(t *testing.T) {
			p := filepath.Join(dir, sub+".vmdk")
			vdisktest.Convert(t, rawPath, p, "vmdk", "-o", "subformat="+sub)
			im, err := Open(p, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer im.Close()
			if im.Size() != size || len(im.Info().Files) != 2 {
				t.Fatalf("size %d, files %v", im.Size(), im.Info().Files)
			}
			raw, err := os.Open(rawPath)
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			// Compare windows around the data and the extent boundary.
			for _, at := range append(regions, 1<<30, 2<<30-1, size-1) {
				for _, n := range []int64{512<<10 + 3} {
					start := max(0, min(at-n/3, size-n))
					got, want := make([]byte, n), make([]byte, n)
					if _, err := im.ReadAt(got, start); err != nil && err != io.EOF {
						t.Fatal(err)
					}
					if _, err := raw.ReadAt(want, start); err != nil && err != io.EOF {
						t.Fatal(err)
					}
					if !bytes.Equal(got, want) {
						t.Fatalf("bytes at %d+%d differ", start, n)
					}
				}
			}
		})
	}
}

// withFooter turns qemu's streamOptimized file (grain directory found from
// the header) into the VMware layout: gdOffset -1 in the header, and a
// footer marker, footer and end-of-stream marker at the end. qemu cannot
// write this layout; VMware does.
func withFooter(b []byte) []byte {
	footer := bytes.Clone(b[:headerLen])
	le.PutUint64(b[hdrGDOffset:], gdAtEnd)
	for len(b)%sectorSize != 0 {
		b = append(b, 0)
	}
	marker := make([]byte, sectorSize)
	le.PutUint64(marker[markerValue:], 1)
	le.PutUint32(marker[markerType:], markerFooter)
	b = append(b, marker...)
	b = append(b, footer...)
	return append(b, make([]byte, sectorSize)...) // end-of-stream marker
}

// TestStreamOptimizedFooter reads a stream-optimized file whose grain
// directory is given by the footer (made by mutating qemu's file).
func TestStreamOptimizedFooter(t *testing.T) {
	vdisktest.QemuImg(t)
	dir := t.TempDir()
	rawPath, raw := vdisktest.RawFile(t, dir, "disk.raw", rawSize, 4)
	p := filepath.Join(dir, "s.vmdk")
	vdisktest.Convert(t, rawPath, p, "vmdk", "-o", "subformat=streamOptimized")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b = withFooter(b)
	im, err := NewReader(bytes.NewReader(b), int64(len(b)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !im.m.extents[0].sparse.footer {
		t.Fatal("footer not used")
	}
	vdisktest.Verify(t, im, raw)
}

// flatDisk converts a raw disk to monolithicFlat in dir and returns the
// raw content and the flat extent's name.
func flatDisk(t *testing.T, dir string) ([]byte, string) {
	rawPath, raw := vdisktest.RawFile(t, dir, "disk.raw", 2<<20, 5)
	vdisktest.Convert(t, rawPath, filepath.Join(dir, "flat.vmdk"), "vmdk", "-o", "subformat=monolithicFlat")
	return raw, "flat-flat.vmdk"
}

func descriptorText(extents ...string) string {
	return "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType=\"custom\"\n\n# Extent description\n" +
		strings.Join(extents, "\n") + "\n\n#DDB\nddb.adapterType = \"ide\"\n"
}

// TestDescriptorExtents writes descriptors by hand over qemu's flat
// extent: FLAT with offsets, ZERO, VMFS, NOACCESS.
func TestDescriptorExtents(t *testing.T) {
	vdisktest.QemuImg(t)
	dir := t.TempDir()
	raw, flat := flatDisk(t, dir)
	half := int64(len(raw)) / 2
	var want []byte
	want = append(want, raw[half:]...)
	want = append(want, make([]byte, 4096*512)...)
	want = append(want, raw[:half]...)
	want = append(want, raw...)
	want = append(want, make([]byte, 8*512)...)
	d := descriptorText(
		fmt.Sprintf(`RW %d FLAT "%s" %d`, half/512, flat, half/512),
		"RW 4096 ZERO",
		fmt.Sprintf(`RDONLY %d FLAT "%s" 0`, half/512, flat),
		fmt.Sprintf(`RW %d VMFS "%s"`, len(raw)/512, flat),
		fmt.Sprintf(`NOACCESS 8 FLAT "%s" 0`, flat))
	p := filepath.Join(dir, "custom.vmdk")
	vdisktest.WriteFile(t, p, []byte(d))
	im, err := Open(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if im.Size() != int64(len(want)) || im.Info().Subformat != "custom" || len(im.Info().Warnings) != 1 {
		t.Fatalf("size %d, info %+v", im.Size(), im.Info())
	}
	vdisktest.Verify(t, im, want)
}

// TestExtentNamesConfined checks that a descriptor cannot make the reader
// open files outside its directory.
func TestExtentNamesConfined(t *testing.T) {
	vdisktest.QemuImg(t)
	top := t.TempDir()
	dir := filepath.Join(top, "evidence")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	raw, flat := flatDisk(t, dir)
	outside := filepath.Join(top, "outside.raw")
	vdisktest.WriteFile(t, outside, raw)
	if err := os.Symlink(outside, filepath.Join(dir, "escape.raw")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../outside.raw", filepath.Join(dir, "escape-rel.raw")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(flat, filepath.Join(dir, "inside.raw")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..", filepath.Join(dir, "sub", "up")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	sectors := len(raw) / 512
	tests := []struct {
		name string
		file string
		want string // "" = opens
	}{
		{"plain", flat, ""},
		{"symlink inside", "inside.raw", ""},
		{"symlink to a link inside a subdirectory", "sub/up/" + flat, ""},
		{"dot dot", "../outside.raw", `".." in path`},
		{"dot dot inside", "sub/../" + flat, `".." in path`},
		{"backslash dot dot", `..\outside.raw`, `".." in path`},
		{"absolute", outside, "absolute path"},
		{"absolute windows", `\evidence\x.raw`, "absolute path"},
		{"drive letter", `C:x.raw`, "drive letter"},
		{"absolute symlink out", "escape.raw", "resolves outside"},
		{"relative symlink out", "escape-rel.raw", "resolves outside"},
		{"symlinked dir out", "sub/up/../outside.raw", `".." in path`},
		{"missing", "nothere.raw", "not found next to the descriptor"},
		{"fifo", "fifo", "not a regular file"},
		{"directory", "sub", "not a regular file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, "d.vmdk")
			vdisktest.WriteFile(t, p, []byte(descriptorText(fmt.Sprintf(`RW %d FLAT "%s" 0`, sectors, tc.file))))
			im, err := Open(p, Options{})
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				vdisktest.Verify(t, im, raw)
				im.Close()
				return
			}
			if err == nil {
				im.Close()
				t.Fatalf("opened %q", tc.file)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q; want %q", err, tc.want)
			}
			if !strings.Contains(tc.want, "not") && !errors.Is(err, ErrUnsafeExtentName) {
				t.Fatalf("error %q does not wrap ErrUnsafeExtentName", err)
			}
		})
	}
}

// TestRefusedByName checks delta disks and extent types this reader does
// not read.
func TestRefusedByName(t *testing.T) {
	vdisktest.QemuImg(t)
	dir := t.TempDir()
	raw, flat := flatDisk(t, dir)
	n := len(raw) / 512
	tests := []struct {
		name, text, want string
	}{
		{"parent hint", strings.Replace(descriptorText(fmt.Sprintf(`RW %d FLAT "%s" 0`, n, flat)), "parentCID=ffffffff", "parentCID=abcdef01\nparentFileNameHint=\"base.vmdk\"", 1), `delta disk with parent "base.vmdk"`},
		{"parent CID", strings.Replace(descriptorText(fmt.Sprintf(`RW %d FLAT "%s" 0`, n, flat)), "parentCID=ffffffff", "parentCID=abcdef01", 1), "delta disk with parentCID abcdef01"},
		{"VMFSSPARSE", descriptorText(fmt.Sprintf(`RW %d VMFSSPARSE "%s"`, n, flat)), `VMFSSPARSE extent "` + flat + `"`},
		{"SESPARSE", descriptorText(fmt.Sprintf(`RW %d SESPARSE "%s"`, n, flat)), "SESPARSE extent"},
		{"VMFSRDM", descriptorText(fmt.Sprintf(`RW %d VMFSRDM "%s"`, n, flat)), "VMFSRDM extent"},
		{"unknown type", descriptorText(fmt.Sprintf(`RW %d WEIRD "%s"`, n, flat)), `unknown extent type "WEIRD"`},
		{"no extents", descriptorText(), "no extents"},
		{"bad size", descriptorText(fmt.Sprintf(`RW -5 FLAT "%s" 0`, flat)), "bad size in sectors"},
		{"huge size", descriptorText(fmt.Sprintf(`RW 99999999999999999 FLAT "%s" 0`, flat)), "bad size in sectors"},
		{"flat file too short", descriptorText(fmt.Sprintf(`RW %d FLAT "%s" 1`, n, flat)), "cannot hold"},
		{"unterminated name", descriptorText(fmt.Sprintf(`RW %d FLAT "%s 0`, n, flat)), "unterminated file name"},
		{"sparse extent is flat data", descriptorText(fmt.Sprintf(`RW %d SPARSE "%s"`, n, flat)), "bad magic"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, "d.vmdk")
			vdisktest.WriteFile(t, p, []byte(tc.text))
			im, err := Open(p, Options{})
			if err == nil {
				im.Close()
				t.Fatal("opened")
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q; want %q", err, tc.want)
			}
		})
	}
	big := filepath.Join(dir, "big.vmdk")
	vdisktest.WriteFile(t, big, append([]byte(descriptorText()), make([]byte, maxDescriptorLen)...))
	if _, err := Open(big, Options{}); err == nil || !strings.Contains(err.Error(), "a descriptor is at most") {
		t.Fatalf("huge descriptor: %v", err)
	}
}
