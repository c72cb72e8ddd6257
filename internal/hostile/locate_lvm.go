//go:build linux

package hostile

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/ctrlift/ctrlift/containerd"
	"github.com/ctrlift/ctrlift/image"
	"github.com/ctrlift/ctrlift/image/ext4"
)

// LVMMap locates an LVM2 physical volume's structures in a base image:
// the label sector, the PV header's metadata area list, and for each
// metadata area its header and the current text (its raw_locn).
type LVMMap struct {
	PVOff    int64 // where the PV (its partition) starts in the file
	LabelOff int64 // the label sector
	PVHdrOff int64 // the PV header (in the label sector)
	Areas    []LVMArea
}

// LVMArea is one metadata area of the PV.
type LVMArea struct {
	Off, Size int64  // absolute in the file
	TextOff   int64  // absolute offset of the current text
	TextLen   int64  // its size as raw_locn records it
	Text      []byte // the pristine text
}

// Offsets in the LVM structures (LVM2's lib/format_text/layout.h), kept
// here so the locator does not share the reader's code.
const (
	lvmLabelCRCOff = 16
	lvmLabelCRCTo  = 20 // the label CRC covers the sector from here
	lvmPVHdrAreas  = 40 // disk_locn lists after the UUID and device size
	lvmMdaHdrSize  = 512
	lvmRawLocnOff  = 40
	lvmInitialCRC  = 0xf597a6cf
)

var lvmLabelFields = []Field{
	{8, 8, "sector_xl", false}, {20, 4, "offset_xl", false},
}

var lvmPVHeaderFields = []Field{
	{32, 8, "device_size", false},
	{lvmPVHdrAreas, 8, "data area offset", false}, {lvmPVHdrAreas + 8, 8, "data area size", false},
	{lvmPVHdrAreas + 16, 8, "list end", false},
	{lvmPVHdrAreas + 24, 8, "metadata area offset", false}, {lvmPVHdrAreas + 32, 8, "metadata area size", false},
}

var lvmMdaFields = []Field{
	{20, 4, "version", false}, {24, 8, "start", false}, {32, 8, "size", false},
	{lvmRawLocnOff, 8, "raw_locn offset", false}, {lvmRawLocnOff + 8, 8, "raw_locn size", false},
	{lvmRawLocnOff + 20, 4, "raw_locn flags", false},
}

func lvmCRC(b []byte) uint32 { return ^crc32.Update(^uint32(lvmInitialCRC), crc32.IEEETable, b) }

// mapLVM finds the PV in [off, off+size) of r; nil when there is none.
func mapLVM(r io.ReaderAt, off, size int64) *LVMMap {
	le := binary.LittleEndian
	sec := make([]byte, 512)
	for s := int64(0); s < 4; s++ {
		if _, err := r.ReadAt(sec, off+s*512); err != nil {
			return nil
		}
		if string(sec[:8]) != "LABELONE" || string(sec[24:32]) != "LVM2 001" {
			continue
		}
		m := &LVMMap{PVOff: off, LabelOff: off + s*512}
		hdr := int(le.Uint32(sec[20:]))
		if hdr < 32 || hdr+lvmPVHdrAreas > 512 {
			return nil
		}
		m.PVHdrOff = m.LabelOff + int64(hdr)
		p := hdr + lvmPVHdrAreas
		for list := 0; list < 2; list++ {
			for ; p+16 <= 512; p += 16 {
				o, n := int64(le.Uint64(sec[p:])), int64(le.Uint64(sec[p+8:]))
				if o == 0 {
					p += 16
					break
				}
				if list == 1 && o < size && n <= size-o {
					m.Areas = append(m.Areas, mapLVMArea(r, off+o, n))
				}
			}
		}
		return m
	}
	return nil
}

func mapLVMArea(r io.ReaderAt, off, size int64) LVMArea {
	a := LVMArea{Off: off, Size: size}
	h := make([]byte, lvmMdaHdrSize)
	if _, err := r.ReadAt(h, off); err != nil {
		return a
	}
	le := binary.LittleEndian
	o, n := int64(le.Uint64(h[lvmRawLocnOff:])), int64(le.Uint64(h[lvmRawLocnOff+8:]))
	if o < lvmMdaHdrSize || n <= 0 || o+n > size {
		return a // empty or wrapped: the text classes aim at other areas
	}
	a.TextOff, a.TextLen = off+o, n
	a.Text = make([]byte, n)
	r.ReadAt(a.Text, a.TextOff)
	return a
}

// locateLVM maps the PV of a base whose filesystem is on a logical
// volume, and lists the containers on it. The ext4 classes do not aim at
// it (no FS geometry: the LV's blocks are scattered over extents).
func (b *Base) locateLVM(d *image.Disk, lv *image.Partition) error {
	for _, p := range d.Partitions {
		if p.FS.Type == image.FSLVM2 && b.LVM == nil {
			b.LVM = mapLVM(b.f, p.Start, p.Size)
		}
	}
	if b.LVM == nil {
		return fmt.Errorf("%s: no LVM2 label found", lv.Name)
	}
	b.Boundaries = append(b.Boundaries, b.LVM.LabelOff, b.LVM.LabelOff+512)
	for _, a := range b.LVM.Areas {
		b.Boundaries = append(b.Boundaries, a.Off, a.Off+lvmMdaHdrSize, a.TextOff, a.TextOff+a.TextLen)
	}
	b.addBoundaries()
	fsys, err := ext4.NewReader(lv.Reader(), lv.Size)
	if err != nil {
		return err
	}
	root, err := containerd.FindRoot(fsys, "")
	if err != nil {
		return err
	}
	st, err := containerd.Load(fsys, root)
	if err != nil {
		return err
	}
	for _, c := range st.Containers {
		b.Containers = append(b.Containers, Container{c.Namespace, c.ID})
	}
	return nil
}
