// Package vhdx reads Microsoft Hyper-V VHDX disks as the raw disk they
// hold: an io.ReaderAt mapping each read through the block allocation
// table.
//
// Supported: fixed and dynamic disks, 512- and 4096-byte logical sectors,
// 1-256 MiB blocks; headers and region tables are checked by their
// CRC-32C, the newer valid header is used. Refused by name: a log that
// still needs replaying (non-zero log GUID: the disk was not closed
// cleanly and its latest writes are only in the log), differencing disks
// (a parent), unknown required regions or metadata items.
package vhdx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"strings"
	"unicode/utf16"

	"github.com/ctrlift/ctrlift/image/vdisk"
)

// Options control NewReader and Open. There are none yet: differencing
// disks are refused, the reader keeps no cache of data blocks.
type Options struct{}

// FormatError reports a malformed on-disk structure: which one, where it
// is (byte offset in the file, -1 if unknown) and what is wrong.
type FormatError struct {
	Struct string // "header", "region table", "metadata table", "BAT", ...
	Offset int64
	Msg    string
}

func (e *FormatError) Error() string {
	var b strings.Builder
	b.WriteString("vhdx: ")
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

// ErrLogReplay is wrapped by the error for a disk whose log must be
// replayed before its data is consistent.
var ErrLogReplay = errors.New("log needs replay")

var le = binary.LittleEndian

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Image is an opened VHDX. It is safe for concurrent use.
type Image struct {
	r      *vdisk.Reader
	m      *mapper
	info   vdisk.Info
	closer io.Closer
}

// Open opens the VHDX at path read-only.
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

// NewReader reads the VHDX r of size bytes. r must stay open while the
// Image is used; Close does not close it.
func NewReader(r io.ReaderAt, size int64, opt Options) (*Image, error) {
	if size < headerSection {
		return nil, &FormatError{"file", 0, fmt.Sprintf("%d bytes, smaller than the %d-byte header section", size, headerSection)}
	}
	id := make([]byte, len(fileIdentifier))
	if _, err := r.ReadAt(id, 0); err != nil {
		return nil, fmt.Errorf("vhdx: reading file identifier: %w", err)
	}
	if string(id) != fileIdentifier {
		return nil, &FormatError{"file identifier", 0, fmt.Sprintf("bad signature %q", id)}
	}
	var warnings []string
	hdr, hdrAt, w, err := currentHeader(r)
	if err != nil {
		return nil, err
	}
	warnings = append(warnings, w...)
	if log := guidAt(hdr[hdLogGUID:]); !log.isZero() {
		return nil, fmt.Errorf("vhdx: %w: %w: header at byte %d has log GUID %v (%d-byte log at byte %d): the disk was not closed cleanly and its latest writes are only in the log; replay it on a copy (qemu-img check -r all copy.vhdx)",
			ErrUnsupported, ErrLogReplay, hdrAt, log, le.Uint32(hdr[hdLogLength:]), le.Uint64(hdr[hdLogOffset:]))
	}
	if v := le.Uint16(hdr[hdVersion:]); v != formatVersion {
		return nil, fmt.Errorf("vhdx: header at byte %d: %w: header version %d", hdrAt+hdVersion, ErrUnsupported, v)
	}
	regions, w, err := readRegionTable(r, size)
	if err != nil {
		return nil, err
	}
	warnings = append(warnings, w...)
	meta, err := readMetadata(r, regions[guidMetadataRegion])
	if err != nil {
		return nil, err
	}
	if meta.parent {
		parent := "no parent locator"
		if meta.parentName != "" {
			parent = fmt.Sprintf("parent %q", meta.parentName)
		}
		return nil, fmt.Errorf("vhdx: %w: differencing disk (%s); parents are not supported", ErrUnsupported, parent)
	}
	m := &mapper{size: meta.virtualSize, blockSize: meta.blockSize, fileSize: size}
	m.chunkRatio = sectorsPerBitmapBlock * meta.logicalSector / meta.blockSize
	if err := m.readBAT(r, regions[guidBATRegion]); err != nil {
		return nil, err
	}
	subformat := "dynamic"
	if meta.fixed {
		subformat = "fixed"
	}
	return &Image{
		m: m,
		r: vdisk.NewReader(vdisk.Config{
			Size:    m.size,
			Mapper:  m,
			Sources: []vdisk.Source{{R: r, Size: size}},
			Errorf: func(_ int, structure string, off int64, msg string) error {
				return &FormatError{structure, off, msg}
			},
		}),
		info: vdisk.Info{
			Format:      vdisk.VHDX,
			Subformat:   subformat,
			VirtualSize: m.size,
			ClusterSize: m.blockSize,
			Files:       []string{},
			Warnings:    append([]string{}, warnings...),
		},
	}, nil
}

// currentHeader returns the valid header with the larger sequence number.
func currentHeader(r io.ReaderAt) (hdr []byte, at int64, warnings []string, err error) {
	var best []byte
	var bestAt int64
	var bad []error
	for _, off := range []int64{header1At, header2At} {
		h := make([]byte, headerLen)
		if _, err := r.ReadAt(h, off); err != nil {
			return nil, 0, nil, fmt.Errorf("vhdx: reading header at byte %d: %w", off, err)
		}
		if err := checkSigned(h, headerSig, hdChecksum, "header", off); err != nil {
			bad = append(bad, err)
			continue
		}
		if best == nil || le.Uint64(h[hdSequence:]) > le.Uint64(best[hdSequence:]) {
			best, bestAt = h, off
		}
	}
	switch {
	case best == nil:
		return nil, 0, nil, bad[0]
	case len(bad) > 0:
		warnings = append(warnings, fmt.Sprintf("one header is damaged (%v); using the header at byte %d", strings.TrimPrefix(bad[0].Error(), "vhdx: "), bestAt))
	}
	return best, bestAt, warnings, nil
}

// checkSigned checks a structure's signature and CRC-32C (computed with
// its checksum field zero).
func checkSigned(b []byte, sig string, sumAt int, what string, off int64) error {
	if string(b[:len(sig)]) != sig {
		return &FormatError{what, off, fmt.Sprintf("bad signature %q", b[:len(sig)])}
	}
	stored := le.Uint32(b[sumAt:])
	h := crc32.New(castagnoli)
	h.Write(b[:sumAt])
	h.Write([]byte{0, 0, 0, 0})
	h.Write(b[sumAt+4:])
	if sum := h.Sum32(); sum != stored {
		return &FormatError{what, off + int64(sumAt), fmt.Sprintf("CRC-32C %#08x, computed %#08x", stored, sum)}
	}
	return nil
}

// region is where a region lies in the file.
type region struct {
	off, length int64
	entryAt     int64 // of its region table entry, for errors
}

// readRegionTable returns the regions of the first valid region table.
func readRegionTable(r io.ReaderAt, size int64) (map[guid]region, []string, error) {
	var warnings []string
	var firstErr error
	for _, off := range []int64{regionTable1At, regionTable2At} {
		t := make([]byte, regionTableLen)
		if _, err := r.ReadAt(t, off); err != nil {
			return nil, nil, fmt.Errorf("vhdx: reading region table at byte %d: %w", off, err)
		}
		if err := checkSigned(t, regionSig, rtChecksum, "region table", off); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if firstErr != nil {
			warnings = append(warnings, fmt.Sprintf("first region table is damaged (%v); using the second", strings.TrimPrefix(firstErr.Error(), "vhdx: ")))
		}
		n := le.Uint32(t[rtEntryCount:])
		if n > maxRegions {
			return nil, nil, &FormatError{"region table", off + rtEntryCount, fmt.Sprintf("%d entries (at most %d)", n, maxRegions)}
		}
		regions := map[guid]region{}
		for i := range int64(n) {
			at := rtEntries + i*rtEntryLen
			e := t[at : at+rtEntryLen]
			id := guidAt(e[rtEntryGUID:])
			reg := region{off: int64(le.Uint64(e[rtEntryOffset:])), length: int64(le.Uint32(e[rtEntryLength:])), entryAt: off + at}
			known := id == guidBATRegion || id == guidMetadataRegion
			if !known {
				if le.Uint32(e[rtEntryRequired:])&1 != 0 {
					return nil, nil, fmt.Errorf("vhdx: region table entry at byte %d: %w: required region %v", off+at, ErrUnsupported, id)
				}
				continue
			}
			if reg.off < headerSection || reg.off%mib != 0 || reg.length == 0 || reg.off > size || reg.length > size-reg.off {
				return nil, nil, &FormatError{"region table entry", off + at, fmt.Sprintf("region %v at %d (%d bytes): not 1 MiB aligned after the header section, or outside the file (%d bytes)", id, reg.off, reg.length, size)}
			}
			if _, dup := regions[id]; dup {
				return nil, nil, &FormatError{"region table entry", off + at, fmt.Sprintf("region %v listed twice", id)}
			}
			regions[id] = reg
		}
		for _, id := range []guid{guidBATRegion, guidMetadataRegion} {
			if _, ok := regions[id]; !ok {
				return nil, nil, &FormatError{"region table", off, fmt.Sprintf("no region %v", id)}
			}
		}
		return regions, warnings, nil
	}
	return nil, nil, firstErr
}

// metadata is what the metadata region says.
type metadata struct {
	blockSize     int64
	fixed         bool
	parent        bool
	parentName    string
	virtualSize   int64
	logicalSector int64
}

func readMetadata(r io.ReaderAt, reg region) (*metadata, error) {
	if reg.length < mtTableLen {
		return nil, &FormatError{"region table entry", reg.entryAt, fmt.Sprintf("metadata region of %d bytes is smaller than its table", reg.length)}
	}
	t := make([]byte, mtTableLen)
	if _, err := r.ReadAt(t, reg.off); err != nil {
		return nil, fmt.Errorf("vhdx: reading metadata table: %w", err)
	}
	if string(t[:len(metadataSig)]) != metadataSig {
		return nil, &FormatError{"metadata table", reg.off, fmt.Sprintf("bad signature %q", t[:len(metadataSig)])}
	}
	n := int64(le.Uint16(t[mtEntryCount:]))
	if n > maxMetadata {
		return nil, &FormatError{"metadata table", reg.off + mtEntryCount, fmt.Sprintf("%d entries (at most %d)", n, maxMetadata)}
	}
	items := map[guid][]byte{}
	itemAt := map[guid]int64{} // table entry
	dataAt := map[guid]int64{} // item data
	for i := range n {
		at := mtEntries + i*mtEntryLen
		e := t[at : at+mtEntryLen]
		id := guidAt(e[mtEntryID:])
		off, length := int64(le.Uint32(e[mtEntryOffset:])), int64(le.Uint32(e[mtEntryLength:]))
		switch id {
		case guidFileParameters, guidVirtualDiskSize, guidLogicalSector, guidPhysicalSector, guidVirtualDiskID, guidParentLocator:
		default:
			if le.Uint32(e[mtEntryFlags:])&metaIsRequired != 0 {
				return nil, fmt.Errorf("vhdx: metadata table entry at byte %d: %w: required metadata item %v", reg.off+at, ErrUnsupported, id)
			}
			continue
		}
		if length == 0 {
			continue // an item may be present with no data
		}
		if off < mtTableLen || off > reg.length || length > reg.length-off || length > 64*kib {
			return nil, &FormatError{"metadata table entry", reg.off + at, fmt.Sprintf("item %v at %d (%d bytes) outside the %d-byte metadata region", id, off, length, reg.length)}
		}
		b := make([]byte, length)
		if _, err := r.ReadAt(b, reg.off+off); err != nil {
			return nil, fmt.Errorf("vhdx: reading metadata item %v: %w", id, err)
		}
		items[id], itemAt[id], dataAt[id] = b, reg.off+at, reg.off+off
	}
	need := func(id guid, name string, n int) ([]byte, error) {
		b, ok := items[id]
		if !ok {
			return nil, &FormatError{"metadata table", reg.off, "no " + name + " item"}
		}
		if len(b) < n {
			return nil, &FormatError{"metadata table entry", itemAt[id], fmt.Sprintf("%s item of %d bytes", name, len(b))}
		}
		return b, nil
	}
	m := &metadata{}
	fp, err := need(guidFileParameters, "file parameters", 8)
	if err != nil {
		return nil, err
	}
	m.blockSize = int64(le.Uint32(fp))
	flags := le.Uint32(fp[4:])
	m.fixed, m.parent = flags&leaveBlocksAllocated != 0, flags&hasParent != 0
	if m.blockSize < minBlockSize || m.blockSize > maxBlockSize || m.blockSize&(m.blockSize-1) != 0 {
		return nil, &FormatError{"file parameters", dataAt[guidFileParameters], fmt.Sprintf("block size %d (a power of two from 1 MiB to 256 MiB)", m.blockSize)}
	}
	vs, err := need(guidVirtualDiskSize, "virtual disk size", 8)
	if err != nil {
		return nil, err
	}
	ls, err := need(guidLogicalSector, "logical sector size", 4)
	if err != nil {
		return nil, err
	}
	m.logicalSector = int64(le.Uint32(ls))
	if m.logicalSector != 512 && m.logicalSector != 4096 {
		return nil, &FormatError{"logical sector size", dataAt[guidLogicalSector], fmt.Sprintf("%d (512 or 4096)", m.logicalSector)}
	}
	size := le.Uint64(vs)
	if size > maxVirtualSize || size%uint64(m.logicalSector) != 0 {
		return nil, &FormatError{"virtual disk size", dataAt[guidVirtualDiskSize], fmt.Sprintf("%d (a multiple of the %d-byte sector, at most 64 TiB)", size, m.logicalSector)}
	}
	m.virtualSize = int64(size)
	if m.parent {
		m.parentName = parentName(items[guidParentLocator])
	}
	return m, nil
}

// parentName returns the best name a parent locator gives, "" if none.
func parentName(b []byte) string {
	if len(b) < plEntries {
		return ""
	}
	vals := map[string]string{}
	n := int(le.Uint16(b[plKeyValueCount:]))
	str := func(off uint32, n uint16) string {
		if int64(off)+int64(n) > int64(len(b)) || n%2 != 0 {
			return ""
		}
		u := make([]uint16, n/2)
		for i := range u {
			u[i] = le.Uint16(b[int(off)+2*i:])
		}
		return string(utf16.Decode(u))
	}
	for i := 0; i < n && plEntries+(i+1)*plEntryLen <= len(b); i++ {
		e := b[plEntries+i*plEntryLen:]
		vals[str(le.Uint32(e), le.Uint16(e[8:]))] = str(le.Uint32(e[4:]), le.Uint16(e[10:]))
	}
	for _, k := range []string{"relative_path", "absolute_win32_path", "volume_path", "parent_linkage"} {
		if v := vals[k]; v != "" {
			return v
		}
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

// mapper maps guest offsets through the BAT.
type mapper struct {
	size       int64
	blockSize  int64
	chunkRatio int64
	fileSize   int64
	bat        []uint64 // payload and sector bitmap entries, interleaved
	batAt      int64
}

func (m *mapper) readBAT(r io.ReaderAt, reg region) error {
	blocks := (m.size + m.blockSize - 1) / m.blockSize
	entries := int64(0)
	if blocks > 0 {
		entries = blocks + (blocks-1)/m.chunkRatio
	}
	if entries*batEntryLen > reg.length {
		return &FormatError{"region table entry", reg.entryAt, fmt.Sprintf("BAT region of %d bytes cannot hold the %d entries a %d-byte disk needs", reg.length, entries, m.size)}
	}
	b := make([]byte, entries*batEntryLen)
	if _, err := r.ReadAt(b, reg.off); err != nil {
		return fmt.Errorf("vhdx: reading BAT: %w", err)
	}
	m.bat = make([]uint64, entries)
	for i := range m.bat {
		m.bat[i] = le.Uint64(b[i*batEntryLen:])
	}
	m.batAt = reg.off
	return nil
}

// payload returns the state and file offset of payload block blk, and
// the byte offset of its BAT entry.
func (m *mapper) payload(blk int64) (state uint64, off, entryAt int64) {
	i := blk + blk/m.chunkRatio
	e := m.bat[i]
	return e & batStateMask, int64(e >> batOffsetShift << batOffsetShift), m.batAt + i*batEntryLen
}

// maxRun bounds how many following blocks one extent may cover.
const maxRun = 64

// Map implements vdisk.Mapper.
func (m *mapper) Map(off int64) (vdisk.Extent, error) {
	blk := off / m.blockSize
	within := off % m.blockSize
	state, fileOff, entryAt := m.payload(blk)
	kind := vdisk.ExtentZero
	switch state {
	case blockNotPresent, blockUndefined, blockZero, blockUnmapped:
	case blockFullyPresent:
		if fileOff < headerSection {
			return vdisk.Extent{}, &FormatError{"BAT entry", entryAt, fmt.Sprintf("block %d at file offset %d, inside the header section", blk, fileOff)}
		}
		kind = vdisk.ExtentStored
	case blockPartiallyPresent:
		return vdisk.Extent{}, &FormatError{"BAT entry", entryAt, fmt.Sprintf("block %d partially present in a disk without a parent", blk)}
	default:
		return vdisk.Extent{}, &FormatError{"BAT entry", entryAt, fmt.Sprintf("block %d in reserved state %d", blk, state)}
	}
	// Extend over following blocks alike: zeros, or blocks stored one
	// after the other (a fixed disk).
	n := int64(1)
	for blocks := (m.size + m.blockSize - 1) / m.blockSize; n < maxRun && blk+n < blocks; n++ {
		s2, o2, _ := m.payload(blk + n)
		if kind == vdisk.ExtentZero && (s2 == blockFullyPresent || s2 == blockPartiallyPresent || s2 > blockUnmapped) {
			break
		}
		if kind == vdisk.ExtentStored && (s2 != blockFullyPresent || o2 != fileOff+n*m.blockSize) {
			break
		}
	}
	e := vdisk.Extent{Kind: kind, Len: n*m.blockSize - within}
	if kind == vdisk.ExtentStored {
		e.Offset = fileOff + within
	}
	return e, nil
}
