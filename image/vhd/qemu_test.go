package vhd

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctrlift/ctrlift/image/vdisk"
	"github.com/ctrlift/ctrlift/image/vdisk/vdisktest"
)

// rawSize is not a multiple of the 2 MiB block, nor of a CHS cylinder.
const rawSize = 5<<20 + 3*4096 + 512

// TestConvertedByQemu converts one raw disk with qemu-img to fixed and
// dynamic VHDs and checks that the reader returns the raw bytes exactly
// (qemu rounds the size up to the CHS geometry unless force_size is set:
// the rest reads as zeros).
func TestConvertedByQemu(t *testing.T) {
	vdisktest.QemuImg(t)
	dir := t.TempDir()
	rawPath, raw := vdisktest.RawFile(t, dir, "disk.raw", rawSize, 1)
	tests := []struct {
		name, opts, subformat string
		exact                 bool
	}{
		{"dynamic", "subformat=dynamic", "dynamic", false},
		{"fixed", "subformat=fixed", "fixed", false},
		{"dynamic force_size", "subformat=dynamic,force_size=on", "dynamic", true},
		{"fixed force_size", "subformat=fixed,force_size=on", "fixed", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".vhd")
			vdisktest.Convert(t, rawPath, p, "vpc", "-o", tc.opts)
			im, err := Open(p, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer im.Close()
			vdisktest.Verify(t, im, raw)
			info := im.Info()
			if info.Format != vdisk.VHD || info.Subformat != tc.subformat || (tc.exact && info.VirtualSize != rawSize) ||
				info.VirtualSize-rawSize > 1<<20 || len(info.Warnings) != 0 {
				t.Errorf("Info() = %+v", info)
			}
			f, _ := os.Open(p)
			defer f.Close()
			st, _ := f.Stat()
			if k, err := vdisk.SniffAt(f, st.Size()); k != vdisk.VHD || err != nil {
				t.Errorf("SniffAt = %v, %v", k, err)
			}
		})
	}
}

// sized is a parent disk held in memory.
type sized struct{ *bytes.Reader }

func (s sized) Size() int64 { return s.Reader.Size() }

// makeDifferencing turns a dynamic VHD made by qemu into a differencing
// disk (qemu cannot write one): disk type 4 in both footers, a parent
// name, and sectors handed to the parent by clearing bitmap bits and one
// BAT entry. It returns the disk and, given the child's and the parent's
// content, the content the differencing disk presents.
func makeDifferencing(t *testing.T, b []byte) ([]byte, func(child, parent []byte) []byte) {
	b = bytes.Clone(b)
	setType := func(at int64) {
		be.PutUint32(b[at+ftDiskType:], diskDifferencing)
		be.PutUint32(b[at+ftChecksum:], vdisk.VHDChecksumAt(b[at:at+footerLen], ftChecksum))
	}
	setType(0)
	setType(int64(len(b)) - footerLen)
	dh := int64(be.Uint64(b[ftDataOffset:]))
	name := utf16Encode("base disk.vhd")
	copy(b[dh+dhParentName:], name)
	be.PutUint32(b[dh+dhChecksum:], vdisk.VHDChecksumAt(b[dh:dh+dynamicHeaderLen], dhChecksum))
	batAt := int64(be.Uint64(b[dh+dhTableOffset:]))
	blockSize := int64(be.Uint32(b[dh+dhBlockSize:]))
	entries := int64(be.Uint32(b[dh+dhMaxTableEntries:]))
	type span struct{ from, to int64 } // sectors handed to the parent
	var parentSectors []span
	for blk := range entries {
		e := be.Uint32(b[batAt+blk*4:])
		if e == batUnused {
			continue
		}
		bm := b[int64(e)*sectorSize:]
		base := blk * blockSize / sectorSize
		switch blk % 3 {
		case 0: // clear sectors 8-23 and 100
			for s := int64(8); s < 24; s++ {
				bm[s/8] &^= 0x80 >> (s % 8)
			}
			bm[100/8] &^= 0x80 >> (100 % 8)
			parentSectors = append(parentSectors, span{base + 8, base + 24}, span{base + 100, base + 101})
		case 1: // the whole block from the parent
			be.PutUint32(b[batAt+blk*4:], batUnused)
			parentSectors = append(parentSectors, span{base, base + blockSize/sectorSize})
		}
	}
	return b, func(child, parent []byte) []byte {
		out := bytes.Clone(child)
		for _, s := range parentSectors {
			for sec := s.from; sec < s.to && sec*sectorSize < int64(len(out)); sec++ {
				copy(out[sec*sectorSize:(sec+1)*sectorSize], parent[sec*sectorSize:])
			}
		}
		return out
	}
}

func utf16Encode(s string) []byte {
	var b []byte
	for _, r := range s {
		b = append(b, byte(r>>8), byte(r))
	}
	return b
}

// TestDifferencing reads a differencing disk (made by mutating qemu's
// dynamic disk) over an explicit parent, and refuses it without one.
func TestDifferencing(t *testing.T) {
	vdisktest.QemuImg(t)
	dir := t.TempDir()
	rawPath, child := vdisktest.RawFile(t, dir, "disk.raw", rawSize, 1)
	p := filepath.Join(dir, "d.vhd")
	vdisktest.Convert(t, rawPath, p, "vpc", "-o", "subformat=dynamic")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	diff, expect := makeDifferencing(t, b)
	_, err = NewReader(bytes.NewReader(diff), int64(len(diff)), Options{})
	var pe *ParentError
	if !errors.As(err, &pe) || pe.Name != "base disk.vhd" || !errors.Is(err, ErrUnsupported) ||
		err.Error() != `vhd: differencing disk with parent "base disk.vhd"; give the parent explicitly (Options.Parent)` {
		t.Fatalf("without parent: %v", err)
	}
	// The parent is shorter than the child: past its end, zeros.
	parent := vdisktest.MixedContent(rawSize-(1<<20), 9)
	im, err := NewReader(bytes.NewReader(diff), int64(len(diff)), Options{Parent: sized{bytes.NewReader(parent)}})
	if err != nil {
		t.Fatal(err)
	}
	if info := im.Info(); info.Subformat != "differencing" || info.Backing != "base disk.vhd" {
		t.Errorf("Info() = %+v", info)
	}
	padded := append(bytes.Clone(parent), make([]byte, im.Size()-int64(len(parent)))...)
	vdisktest.Verify(t, im, expect(append(child, make([]byte, im.Size()-rawSize)...), padded))

	if _, err := NewReader(bytes.NewReader(b), int64(len(b)), Options{Parent: sized{bytes.NewReader(parent)}}); err == nil {
		t.Fatal("a parent for a dynamic disk was accepted")
	}
	var _ io.ReaderAt = im
}
