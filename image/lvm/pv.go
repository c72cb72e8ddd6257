package lvm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// ErrNotPV is returned by ReadPV when none of the first four sectors
// holds an LVM2 label.
var ErrNotPV = errors.New("lvm: no LVM2 label in the first four sectors")

// FormatError reports a malformed LVM structure: which one, where (byte
// offset into the PV, or into the metadata text for Struct "metadata
// text"; -1 when it has none) and what is wrong.
type FormatError struct {
	Struct string
	Offset int64
	Msg    string
}

func (e *FormatError) Error() string {
	if e.Offset < 0 {
		return fmt.Sprintf("lvm: %s: %s", e.Struct, e.Msg)
	}
	return fmt.Sprintf("lvm: %s at byte %d: %s", e.Struct, e.Offset, e.Msg)
}

// PV is one physical volume as its own label and metadata areas describe
// it.
type PV struct {
	UUID       string     // as lvm prints it, e.g. "HNJifz-ov90-..."
	DeviceSize int64      // bytes, as the PV header records it
	Size       int64      // bytes actually readable
	Copies     []Metadata // the current metadata of each metadata area
	Warnings   []string   // copies Assemble could not use
	r          io.ReaderAt
}

// Metadata is the current copy of a VG's text metadata in one metadata
// area of a PV.
type Metadata struct {
	Area   int64  // byte offset of the metadata area in the PV
	Offset int64  // byte offset of the text in the PV
	Size   int64  // bytes of text
	Text   []byte // nil when Err is set
	Err    error  // why this copy is unusable (bad checksum, ...)
}

// lvmCRC is LVM's checksum: CRC-32 (IEEE, reflected) seeded with
// initialCRC and without the final inversion.
func lvmCRC(seed uint32, b []byte) uint32 {
	return ^crc32.Update(^seed, crc32.IEEETable, b)
}

// ReadPV reads the label, PV header and metadata areas of the PV r of the
// given size. A metadata area whose header or text is damaged is kept in
// Copies with its error, so another copy can stand in.
func ReadPV(r io.ReaderAt, size int64) (*PV, error) {
	head := make([]byte, labelScanSecs*sectorSize)
	n, err := r.ReadAt(head, 0)
	if n < sectorSize {
		if err == nil || err == io.EOF {
			return nil, ErrNotPV
		}
		return nil, fmt.Errorf("lvm: reading the label: %w", err)
	}
	head = head[:n-n%sectorSize]
	for s := 0; s*sectorSize < len(head); s++ {
		sec := head[s*sectorSize : (s+1)*sectorSize]
		if string(sec[lblID:lblID+8]) != labelID || string(sec[lblType:lblType+8]) != labelType {
			continue
		}
		return parseLabel(r, size, sec, int64(s*sectorSize))
	}
	return nil, ErrNotPV
}

func parseLabel(r io.ReaderAt, size int64, sec []byte, at int64) (*PV, error) {
	le := binary.LittleEndian
	bad := func(format string, args ...any) error {
		return &FormatError{Struct: "PV label", Offset: at, Msg: fmt.Sprintf(format, args...)}
	}
	if got := le.Uint64(sec[lblSector:]); got != uint64(at/sectorSize) {
		return nil, bad("says it is in sector %d", got)
	}
	if want, got := le.Uint32(sec[lblCRC:]), lvmCRC(initialCRC, sec[lblOffset:]); want != got {
		return nil, bad("checksum %#08x, computed %#08x", want, got)
	}
	off := le.Uint32(sec[lblOffset:])
	if off < labelHeaderLen || uint64(off)+pvAreas > sectorSize {
		return nil, bad("PV header offset %d outside the label sector", off)
	}
	h := sec[off:]
	pv := &PV{UUID: formatUUID(h[:pvUUIDLen]), Size: size, r: r}
	devSize := le.Uint64(h[pvDevSize:])
	if devSize > 1<<62 {
		return nil, bad("device size %d", devSize)
	}
	pv.DeviceSize = int64(devSize)
	// Two zero-ended lists of disk_locn: data areas, then metadata areas.
	var mdas [][2]uint64
	p := pvAreas
	for list := 0; list < 2; list++ {
		for {
			if p+diskLocnLen > len(h) {
				return nil, bad("area list runs past the label sector")
			}
			o, n := le.Uint64(h[p:]), le.Uint64(h[p+8:])
			p += diskLocnLen
			if o == 0 {
				break
			}
			if list == 1 {
				mdas = append(mdas, [2]uint64{o, n})
			}
		}
	}
	for _, m := range mdas {
		pv.Copies = append(pv.Copies, readArea(r, size, m[0], m[1]))
	}
	return pv, nil
}

// readArea reads the current metadata text of the metadata area at off.
func readArea(r io.ReaderAt, size int64, off, areaSize uint64) Metadata {
	md := Metadata{Area: int64(min(off, 1<<62))}
	bad := func(at int64, format string, args ...any) Metadata {
		md.Err = &FormatError{Struct: "metadata area", Offset: at, Msg: fmt.Sprintf(format, args...)}
		return md
	}
	if off >= uint64(size) || areaSize < 2*mdaHeaderSize || areaSize > uint64(size)-off {
		return bad(md.Area, "%d bytes at byte %d do not fit in the %d-byte device", areaSize, off, size)
	}
	hdr := make([]byte, mdaHeaderSize)
	if _, err := r.ReadAt(hdr, md.Area); err != nil {
		return bad(md.Area, "reading the header: %v", err)
	}
	le := binary.LittleEndian
	if string(hdr[mdaMagicOff:mdaMagicOff+16]) != mdaMagic {
		return bad(md.Area, "no metadata area magic")
	}
	if want, got := le.Uint32(hdr[mdaCRC:]), lvmCRC(initialCRC, hdr[mdaMagicOff:]); want != got {
		return bad(md.Area, "header checksum %#08x, computed %#08x", want, got)
	}
	if v := le.Uint32(hdr[mdaVersionOff:]); v != mdaVersion {
		return bad(md.Area, "version %d (only %d is known)", v, mdaVersion)
	}
	if s := le.Uint64(hdr[mdaStart:]); s != off {
		return bad(md.Area, "header says the area starts at byte %d", s)
	}
	if s := le.Uint64(hdr[mdaSize:]); s != areaSize {
		return bad(md.Area, "header says the area has %d bytes, the PV header %d", s, areaSize)
	}
	loc := hdr[mdaLocns:]
	textOff, textSize := le.Uint64(loc), le.Uint64(loc[8:])
	sum, flags := le.Uint32(loc[16:]), le.Uint32(loc[20:])
	if textOff == 0 {
		return bad(md.Area, "no metadata in this area")
	}
	if flags&rawLocnIgnored != 0 {
		return bad(md.Area, "metadata copy marked ignored")
	}
	ring := areaSize - mdaHeaderSize // the text lives in a ring after the header
	if textOff < mdaHeaderSize || textOff >= areaSize || textSize == 0 || textSize > ring || textSize > maxMetadataText {
		return bad(md.Area+mdaLocns, "text of %d bytes at offset %d does not fit in the %d-byte area", textSize, textOff, areaSize)
	}
	md.Offset, md.Size = md.Area+int64(textOff), int64(textSize)
	text := make([]byte, textSize)
	first := min(textSize, areaSize-textOff)
	if _, err := r.ReadAt(text[:first], md.Offset); err != nil {
		return bad(md.Offset, "reading %d bytes of text: %v", first, err)
	}
	if first < textSize { // wrapped to the start of the ring
		if _, err := r.ReadAt(text[first:], md.Area+mdaHeaderSize); err != nil {
			return bad(md.Area+mdaHeaderSize, "reading the wrapped text: %v", err)
		}
	}
	if got := lvmCRC(initialCRC, text); got != sum {
		return bad(md.Offset, "text checksum %#08x, computed %#08x", sum, got)
	}
	md.Text = text
	return md
}

// formatUUID prints a 32-character LVM UUID in lvm's 6-4-4-4-4-4-6
// groups; anything else is returned as it is.
func formatUUID(b []byte) string {
	if len(b) != 32 {
		return string(b)
	}
	for _, c := range b {
		if !isIdent(c) || c == '.' || c == '+' {
			return fmt.Sprintf("%q", b)
		}
	}
	s := string(b)
	return s[0:6] + "-" + s[6:10] + "-" + s[10:14] + "-" + s[14:18] + "-" + s[18:22] + "-" + s[22:26] + "-" + s[26:32]
}
