// Package vhd reads Microsoft VHD disks (Virtual PC, Hyper-V, Azure) as
// the raw disk they hold: an io.ReaderAt over a fixed disk's data, or
// mapping each read through a dynamic disk's block allocation table.
//
// Supported: fixed and dynamic disks, and differencing disks when the
// caller opens the parent and passes it in Options (sectors whose bitmap
// bit is clear are read from the parent). Refused by name: a differencing
// disk whose parent was not given. An allocated block of a dynamic disk
// is read whole, as qemu does: its sector bitmap matters only in a
// differencing disk, where a clear bit sends the sector to the parent.
// The virtual size is the footer's
// current size (Virtual PC and old qemu use the CHS geometry instead,
// which may be smaller: a warning says so, and no data is hidden).
package vhd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf16"

	"github.com/ctrlift/ctrlift/image/vdisk"
)

// Options control NewReader and Open.
type Options struct {
	// Parent is the opened parent of a differencing disk. The package
	// never opens files by the names a disk contains: a differencing disk
	// without Parent is refused (ParentError).
	Parent vdisk.Parent
}

// FormatError reports a malformed on-disk structure: which one, where it
// is (byte offset in the file, -1 if unknown) and what is wrong.
type FormatError struct {
	Struct string // "footer", "dynamic header", "BAT", "sector bitmap", ...
	Offset int64
	Msg    string
}

func (e *FormatError) Error() string {
	var b strings.Builder
	b.WriteString("vhd: ")
	b.WriteString(e.Struct)
	if e.Offset >= 0 {
		fmt.Fprintf(&b, " at byte %d", e.Offset)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// ErrUnsupported is wrapped by errors about disks this reader refuses.
var ErrUnsupported = vdisk.ErrUnsupported

// ParentError is returned for a differencing disk when Options.Parent was
// not given.
type ParentError struct {
	Name string // parent's name as stored in the dynamic header
}

func (e *ParentError) Error() string {
	return fmt.Sprintf("vhd: differencing disk with parent %q; give the parent explicitly (Options.Parent)", e.Name)
}

// Is makes a ParentError match ErrUnsupported and errors.ErrUnsupported.
func (e *ParentError) Is(target error) bool {
	return target == ErrUnsupported || target == errors.ErrUnsupported
}

// Image is an opened VHD. It is safe for concurrent use.
type Image struct {
	r      *vdisk.Reader
	m      *mapper
	info   vdisk.Info
	closer io.Closer
}

// Open opens the VHD at path read-only.
func Open(path string, opt Options) (*Image, error) {
	f, err := os.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	im, err := NewReader(f, st.Size(), opt)
	if err != nil {
		f.Close()
		return nil, err
	}
	im.closer = f
	return im, nil
}

var be = binary.BigEndian

// NewReader reads the VHD r of size bytes. r must stay open while the
// Image is used; Close does not close it.
func NewReader(r io.ReaderAt, size int64, opt Options) (*Image, error) {
	ft, ftAt, warnings, err := readFooter(r, size)
	if err != nil {
		return nil, err
	}
	vsize := be.Uint64(ft[ftCurrentSize:])
	if vsize > maxVirtualSize {
		return nil, &FormatError{"footer", ftAt + ftCurrentSize, fmt.Sprintf("current size %d too large", vsize)}
	}
	m := &mapper{file: r, fileSize: size, size: int64(vsize), bitmaps: vdisk.NewCache(bitmapCacheLen)}
	info := vdisk.Info{Format: vdisk.VHD, VirtualSize: m.size, Files: []string{}}
	if w := geometryWarning(ft); w != "" {
		warnings = append(warnings, w)
	}
	if ft[ftSavedState] != 0 {
		warnings = append(warnings, "saved-state flag set: the disk was in use by a saved virtual machine")
	}
	switch typ := be.Uint32(ft[ftDiskType:]); typ {
	case diskFixed:
		if ftAt != size-footerLen {
			return nil, &FormatError{"footer", size - footerLen, "fixed disk without a valid footer at the end"}
		}
		if m.size > ftAt {
			return nil, &FormatError{"footer", ftAt + ftCurrentSize, fmt.Sprintf("fixed disk of %d bytes, but the file holds %d bytes of data", m.size, ftAt)}
		}
		m.fixed = true
		info.Subformat = "fixed"
	case diskDynamic, diskDifferencing:
		m.differencing = typ == diskDifferencing
		if err := m.readDynamic(be.Uint64(ft[ftDataOffset:]), ftAt); err != nil {
			return nil, err
		}
		info.Subformat = "dynamic"
		info.ClusterSize = m.blockSize
		if m.differencing {
			info.Subformat = "differencing"
			info.Backing = m.parentName
		}
	default:
		return nil, &FormatError{"footer", ftAt + ftDiskType, fmt.Sprintf("unknown disk type %d", typ)}
	}
	var parent vdisk.Parent
	switch {
	case m.differencing && opt.Parent == nil:
		return nil, &ParentError{Name: m.parentName}
	case m.differencing:
		parent = opt.Parent
	case opt.Parent != nil:
		return nil, errors.New("vhd: Options.Parent given but the disk is not a differencing disk")
	}
	info.Warnings = append([]string{}, warnings...)
	return &Image{
		m:    m,
		info: info,
		r: vdisk.NewReader(vdisk.Config{
			Size:    m.size,
			Mapper:  m,
			Sources: []vdisk.Source{{R: r, Size: size}},
			Parent:  parent,
			Errorf: func(_ int, structure string, off int64, msg string) error {
				return &FormatError{structure, off, msg}
			},
		}),
	}, nil
}

// readFooter returns the footer at the end of the file, or else the copy
// at the start that dynamic disks keep, and where it was found.
func readFooter(r io.ReaderAt, size int64) (ft []byte, at int64, warnings []string, err error) {
	if size < footerLen {
		return nil, 0, nil, &FormatError{"footer", 0, fmt.Sprintf("file of %d bytes is smaller than a footer", size)}
	}
	end := make([]byte, footerLen)
	if _, err := r.ReadAt(end, size-footerLen); err != nil && err != io.EOF {
		return nil, 0, nil, fmt.Errorf("vhd: reading footer: %w", err)
	}
	endErr := checkFooter(end, size-footerLen)
	if endErr == nil {
		return end, size - footerLen, nil, nil
	}
	if size >= 2*footerLen {
		start := make([]byte, footerLen)
		if _, err := r.ReadAt(start, 0); err != nil && err != io.EOF {
			return nil, 0, nil, fmt.Errorf("vhd: reading footer copy: %w", err)
		}
		if checkFooter(start, 0) == nil {
			return start, 0, []string{"footer at the end of the file is damaged (" + endErr.(*FormatError).Msg + "); using the copy at the start"}, nil
		}
	}
	return nil, 0, nil, endErr
}

func checkFooter(b []byte, at int64) error {
	if string(b[ftCookie:ftCookie+8]) != footerCookie {
		return &FormatError{"footer", at, fmt.Sprintf("bad cookie %q", b[:8])}
	}
	if sum, stored := vdisk.VHDChecksumAt(b, ftChecksum), be.Uint32(b[ftChecksum:]); sum != stored {
		return &FormatError{"footer", at + ftChecksum, fmt.Sprintf("checksum %#08x, computed %#08x", stored, sum)}
	}
	return nil
}

// geometryWarning notes when Virtual PC (and qemu before 2.6 with its own
// images) would see a smaller disk through the CHS geometry.
func geometryWarning(ft []byte) string {
	creator := string(ft[ftCreatorApp : ftCreatorApp+4])
	if creator != "vpc " && creator != "qemu" {
		return ""
	}
	chs := int64(be.Uint16(ft[ftGeometry:])) * int64(ft[ftGeometry+2]) * int64(ft[ftGeometry+3]) * sectorSize
	if cur := int64(be.Uint64(ft[ftCurrentSize:])); chs < cur {
		return fmt.Sprintf("creator %q: Virtual PC sees %d bytes (CHS geometry); all %d bytes of the current size are read", strings.TrimSpace(creator), chs, cur)
	}
	return ""
}

// ReadAt reads guest disk bytes.
func (im *Image) ReadAt(p []byte, off int64) (int, error) { return im.r.ReadAt(p, off) }

// Size is the virtual disk size in bytes.
func (im *Image) Size() int64 { return im.r.Size() }

// Info describes the disk.
func (im *Image) Info() vdisk.Info {
	i := im.info
	i.Files = append([]string{}, im.info.Files...)
	i.Warnings = append([]string{}, im.info.Warnings...)
	return i
}

// Close closes the file if the Image was made by Open.
func (im *Image) Close() error {
	if im.closer == nil {
		return nil
	}
	err := im.closer.Close()
	im.closer = nil
	return err
}

// mapper maps guest offsets of a fixed or dynamic disk.
type mapper struct {
	file         io.ReaderAt
	fileSize     int64
	size         int64
	fixed        bool
	differencing bool
	blockSize    int64
	bitmapLen    int64 // bytes of sector bitmap before each block, a multiple of the sector
	bat          []uint32
	batAt        int64
	parentName   string
	bitmaps      *vdisk.Cache
}

// readDynamic reads the dynamic disk header at off and the BAT.
func (m *mapper) readDynamic(off uint64, footerAt int64) error {
	if off > uint64(m.fileSize) || int64(off) > m.fileSize-dynamicHeaderLen {
		return &FormatError{"footer", footerAt + ftDataOffset, fmt.Sprintf("dynamic header offset %d outside the file (%d bytes)", off, m.fileSize)}
	}
	at := int64(off)
	h := make([]byte, dynamicHeaderLen)
	if _, err := m.file.ReadAt(h, at); err != nil && err != io.EOF {
		return fmt.Errorf("vhd: reading dynamic header: %w", err)
	}
	if string(h[dhCookie:dhCookie+8]) != dynamicCookie {
		return &FormatError{"dynamic header", at, fmt.Sprintf("bad cookie %q", h[:8])}
	}
	if sum, stored := vdisk.VHDChecksumAt(h, dhChecksum), be.Uint32(h[dhChecksum:]); sum != stored {
		return &FormatError{"dynamic header", at + dhChecksum, fmt.Sprintf("checksum %#08x, computed %#08x", stored, sum)}
	}
	bs := int64(be.Uint32(h[dhBlockSize:]))
	if bs < minBlockSize || bs > maxBlockSize || bs&(bs-1) != 0 {
		return &FormatError{"dynamic header", at + dhBlockSize, fmt.Sprintf("block size %d (a power of two from %d to %d)", bs, minBlockSize, maxBlockSize)}
	}
	m.blockSize = bs
	bitmapBits := bs / sectorSize
	m.bitmapLen = ((bitmapBits+7)/8 + sectorSize - 1) / sectorSize * sectorSize
	need := (m.size + bs - 1) / bs
	entries := int64(be.Uint32(h[dhMaxTableEntries:]))
	if entries < need {
		return &FormatError{"dynamic header", at + dhMaxTableEntries, fmt.Sprintf("%d BAT entries cannot map a %d-byte disk in %d-byte blocks (needs %d)", entries, m.size, bs, need)}
	}
	batOff := be.Uint64(h[dhTableOffset:])
	if batOff > uint64(m.fileSize) || need*batEntryLen > m.fileSize-int64(batOff) {
		return &FormatError{"dynamic header", at + dhTableOffset, fmt.Sprintf("BAT at %d (%d entries) outside the file (%d bytes)", batOff, need, m.fileSize)}
	}
	m.batAt = int64(batOff)
	b := make([]byte, need*batEntryLen)
	if _, err := m.file.ReadAt(b, m.batAt); err != nil && err != io.EOF {
		return fmt.Errorf("vhd: reading BAT: %w", err)
	}
	m.bat = make([]uint32, need)
	for i := range m.bat {
		m.bat[i] = be.Uint32(b[i*batEntryLen:])
	}
	if m.differencing {
		m.parentName = utf16BE(h[dhParentName : dhParentName+dhParentNameLen])
	}
	return nil
}

// utf16BE decodes a NUL-terminated UTF-16 big-endian string.
func utf16BE(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := be.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}

// Map implements vdisk.Mapper.
func (m *mapper) Map(off int64) (vdisk.Extent, error) {
	if m.fixed {
		return vdisk.Extent{Kind: vdisk.ExtentStored, Len: m.size - off, Offset: off}, nil
	}
	blk := off / m.blockSize
	within := off % m.blockSize
	rest := m.blockSize - within
	entry := m.bat[blk]
	if entry == batUnused {
		// Unallocated: the parent's sectors, or zeros.
		return vdisk.Extent{Kind: vdisk.ExtentBacking, Len: rest}, nil
	}
	bitmapAt := int64(entry) * sectorSize
	dataAt := bitmapAt + m.bitmapLen
	if !m.differencing {
		// Like qemu, a dynamic disk's allocated block is read whole: its
		// bitmap only matters for what a parent supplies.
		return vdisk.Extent{Kind: vdisk.ExtentStored, Len: rest, Offset: dataAt + within}, nil
	}
	bitmap, err := m.bitmap(bitmapAt, blk)
	if err != nil {
		return vdisk.Extent{}, err
	}
	present := func(sec int64) bool { return bitmap[sec/8]&(0x80>>(sec%8)) != 0 }
	sec := within / sectorSize
	here := present(sec)
	end := sec + 1
	for end < m.blockSize/sectorSize && present(end) == here {
		end++
	}
	n := end*sectorSize - within
	if here {
		return vdisk.Extent{Kind: vdisk.ExtentStored, Len: n, Offset: dataAt + within}, nil
	}
	return vdisk.Extent{Kind: vdisk.ExtentBacking, Len: n}, nil
}

func (m *mapper) bitmap(at, blk int64) ([]byte, error) {
	key := vdisk.CacheKey{Off: at}
	if b, ok := m.bitmaps.Get(key); ok {
		return b, nil
	}
	if at > m.fileSize-m.bitmapLen {
		return nil, &FormatError{"BAT", m.batAt + blk*batEntryLen, fmt.Sprintf("block %d: sector bitmap at byte %d past the end of the file (%d bytes)", blk, at, m.fileSize)}
	}
	b := make([]byte, m.bitmapLen)
	if _, err := m.file.ReadAt(b, at); err != nil && err != io.EOF {
		return nil, fmt.Errorf("vhd: reading sector bitmap at byte %d: %w", at, err)
	}
	m.bitmaps.Put(key, b)
	return b, nil
}
