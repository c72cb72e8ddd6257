package ewf

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"hash/adler32"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/klauspost/compress/zlib"
)

var le = binary.LittleEndian

// geometry is what a volume, disk or data section says.
type geometry struct {
	variant         Variant
	mediaType       uint8
	chunkCount      uint32
	sectorsPerChunk uint32
	bytesPerSector  uint32
	sectorCount     uint64
	mediaFlags      uint8
	compression     uint8
	errorGranule    uint32
	setID           [16]byte
}

// builder accumulates what the section walk of every segment finds.
type builder struct {
	img       *Image
	volume    *geometry
	volumeSeg int   // segment holding the volume section read
	volumeAt  int64 // its offset, for errors
	chunks    int64 // table entries so far

	header2, header, xheader map[string]string // parsed text values, nil until one copy decoded
	headerBroken             []string          // why copies could not be decoded
	md5, sha1                []byte
	hashSeen                 bool // the hash/digest came from a section with a good checksum
	warnings                 []string
}

func newBuilder(img *Image) *builder { return &builder{img: img} }

func (b *builder) warnf(format string, args ...any) {
	b.warnings = append(b.warnings, fmt.Sprintf(format, args...))
}

// sectionWalk is the state of one segment's walk.
type sectionWalk struct {
	seg      *segment
	idx      int
	dataFrom int64 // current sectors section's data range, -1 if none since the last table
	dataTo   int64
	last     int // index in Image.tables of the table just read, for a table2 that mirrors it; -1 if none
	pending  *pendingTable
}

// pendingTable is a table whose header checksum failed: usable only if its
// table2 mirror turns out sound.
type pendingTable struct {
	section int64
	err     error
}

func (b *builder) errAt(seg *segment, what string, off int64, format string, args ...any) *FormatError {
	return &FormatError{Struct: what, Segment: seg.name, Offset: off, Chunk: -1, Media: -1, Msg: fmt.Sprintf(format, args...)}
}

// readFull reads exactly len(p) bytes at off of seg.
func readFull(seg *segment, p []byte, off int64, what string) error {
	if off < 0 || off > seg.size || int64(len(p)) > seg.size-off {
		return &FormatError{Struct: what, Segment: seg.name, Offset: off, Chunk: -1, Media: -1,
			Msg: fmt.Sprintf("%d bytes lie past the end of the file (%d bytes): truncated segment?", len(p), seg.size)}
	}
	n, err := seg.r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return &FormatError{Struct: what, Segment: seg.name, Offset: off, Chunk: -1, Media: -1, Msg: "read failed", Err: err}
}

// walkSegment checks segment number n's file header and follows its
// section chain. last reports a done section (no further segments).
func (b *builder) walkSegment(idx, n int) (last bool, err error) {
	seg := &b.img.segs[idx]
	var fh [fileHeaderSize]byte
	if seg.size < fileHeaderSize {
		return false, b.errAt(seg, "file header", 0, "file of %d bytes is too small for an EWF segment", seg.size)
	}
	if err := readFull(seg, fh[:], 0, "file header"); err != nil {
		return false, err
	}
	if err := checkSignature(seg, fh[:]); err != nil {
		return false, err
	}
	if fh[fhFieldsStart] != fieldsStartValue {
		return false, b.errAt(seg, "file header", fhFieldsStart, "fields start marker 0x%02x, want 0x01", fh[fhFieldsStart])
	}
	if num := le.Uint16(fh[fhSegmentNumber:]); int(num) != n {
		hint := "misnamed, or from another image"
		if n == 1 {
			hint = "open the first segment file"
		}
		return false, b.errAt(seg, "file header", fhSegmentNumber, "segment number %d where %d was expected (%s)", num, n, hint)
	}

	w := &sectionWalk{seg: seg, idx: idx, dataFrom: -1, last: -1}
	var desc [sectionDescSize]byte
	for off := int64(fileHeaderSize); ; {
		if off > seg.size-sectionDescSize {
			return false, b.errAt(seg, "section descriptor", off, "lies past the end of the file (%d bytes): truncated segment, no done or next section", seg.size)
		}
		if err := readFull(seg, desc[:], off, "section descriptor"); err != nil {
			return false, err
		}
		if got, want := adler32.Checksum(desc[:sdChecksum]), le.Uint32(desc[sdChecksum:]); got != want {
			return false, b.errAt(seg, "section descriptor", off, "checksum 0x%08x, stored 0x%08x", got, want)
		}
		typ, ok := sectionType(desc[sdType : sdType+sdTypeLen])
		if !ok {
			return false, b.errAt(seg, "section descriptor", off, "type %q is not a section name", bytes.TrimRight(desc[:sdTypeLen], "\x00"))
		}
		next, size := le.Uint64(desc[sdNext:]), le.Uint64(desc[sdSize:])
		switch typ {
		case secDone, secNext:
			if err := b.endTables(w); err != nil {
				return false, err
			}
			return typ == secDone, nil
		}
		switch {
		case next == uint64(off):
			return false, b.errAt(seg, typ+" section", off, "next section offset points at itself: section chain loop")
		case next < uint64(off):
			return false, b.errAt(seg, typ+" section", off, "next section offset %d points back: section chain loop", next)
		case next > uint64(seg.size):
			return false, b.errAt(seg, typ+" section", off, "next section offset %d lies past the end of the file (%d bytes): truncated segment?", next, seg.size)
		case next-uint64(off) < sectionDescSize:
			return false, b.errAt(seg, typ+" section", off, "next section offset %d overlaps the descriptor", next)
		case size != 0 && size != next-uint64(off):
			// Readers that follow one and not the other would see different images.
			return false, b.errAt(seg, typ+" section", off, "size %d disagrees with the next section offset %d", size, next)
		}
		dataOff, dataLen := off+sectionDescSize, int64(next)-off-sectionDescSize
		if err := b.section(w, typ, off, dataOff, dataLen); err != nil {
			return false, err
		}
		off = int64(next)
	}
}

func checkSignature(seg *segment, fh []byte) error {
	switch {
	case bytes.HasPrefix(fh, evfSignature):
		return nil
	case bytes.HasPrefix(fh, evf2Signature):
		return unsupported(seg, "EWF2 (Ex01, EnCase 7 version 2 format)")
	case bytes.HasPrefix(fh, lef2Signature):
		return unsupported(seg, "EWF2 logical evidence file (Lx01)")
	case bytes.HasPrefix(fh, lvfSignature):
		return unsupported(seg, "logical evidence file (L01): it holds files, not a disk image")
	}
	return &FormatError{Struct: "file header", Segment: seg.name, Offset: 0, Chunk: -1, Media: -1,
		Msg: fmt.Sprintf("signature %x is not EWF", fh[:len(evfSignature)])}
}

func unsupported(seg *segment, what string) error {
	return &FormatError{Struct: "file header", Segment: seg.name, Offset: 0, Chunk: -1, Media: -1, Msg: what, Err: ErrUnsupported}
}

// sectionType returns the NUL-terminated name of a section.
func sectionType(b []byte) (string, bool) {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	if len(b) == 0 {
		return "", false
	}
	for _, c := range b {
		if c < 0x21 || c > 0x7e {
			return "", false
		}
	}
	return string(b), true
}

// section handles one section's data, [dataOff, dataOff+dataLen).
func (b *builder) section(w *sectionWalk, typ string, off, dataOff, dataLen int64) error {
	seg := w.seg
	if typ != secTable2 {
		if err := b.endTables(w); err != nil {
			return err
		}
	}
	switch typ {
	case secHeader, secHeader2, secXHeader:
		b.headerSection(w, typ, off, dataOff, dataLen)
	case secVolume, secDisk, secData:
		return b.volumeSection(w, typ, off, dataOff, dataLen)
	case secSectors:
		w.dataFrom, w.dataTo = dataOff, dataOff+dataLen
	case secTable:
		return b.tableSection(w, off, dataOff, dataLen)
	case secTable2:
		return b.table2Section(w, off, dataOff, dataLen)
	case secHash, secDigest:
		b.hashSection(seg, typ, off, dataOff, dataLen)
	case secXHash:
		if v := b.xmlSection(seg, typ, off, dataOff, dataLen); v != nil && !b.hashSeen {
			b.md5, _ = hex.DecodeString(v["MD5"])
			b.sha1, _ = hex.DecodeString(v["SHA1"])
		}
	case secError2:
		b.error2Section(seg, off, dataOff, dataLen)
	case secSession:
		b.sessionSection(seg, off, dataOff, dataLen)
	case secIncomplete:
		b.img.info.Incomplete = true
		b.warnf("%s: an incomplete section at byte %d: the acquisition may not have finished", seg.name, off)
	}
	// Other sections (ltree, ltypes, map of L01 files, unknown ones) hold
	// nothing a disk image needs.
	return nil
}

func (b *builder) volumeSection(w *sectionWalk, typ string, off, dataOff, dataLen int64) error {
	seg := w.seg
	var g geometry
	var buf [volumeSize]byte
	what := typ + " section"
	switch {
	case dataLen >= volumeSize:
		if err := readFull(seg, buf[:], dataOff, what); err != nil {
			return err
		}
		// Logicube writers leave the checksum 0.
		if got, want := adler32.Checksum(buf[:volChecksum]), le.Uint32(buf[volChecksum:]); want != 0 && got != want {
			return b.errAt(seg, what, off, "checksum 0x%08x, stored 0x%08x", got, want)
		}
		g = geometry{
			variant:         VariantE01,
			mediaType:       buf[volMediaType],
			chunkCount:      le.Uint32(buf[volChunkCount:]),
			sectorsPerChunk: le.Uint32(buf[volSectorsPerChunk:]),
			bytesPerSector:  le.Uint32(buf[volBytesPerSector:]),
			sectorCount:     le.Uint64(buf[volSectorCount:]),
			mediaFlags:      buf[volMediaFlags],
			compression:     buf[volCompression],
			errorGranule:    le.Uint32(buf[volErrorGranule:]),
		}
		copy(g.setID[:], buf[volSetIdentifier:])
	case dataLen >= volumeSizeSMART:
		p := buf[:volumeSizeSMART]
		if err := readFull(seg, p, dataOff, what); err != nil {
			return err
		}
		if got, want := adler32.Checksum(p[:volChecksumSMART]), le.Uint32(p[volChecksumSMART:]); got != want {
			return b.errAt(seg, what, off, "checksum 0x%08x, stored 0x%08x", got, want)
		}
		g = geometry{
			variant:         VariantSMART,
			mediaType:       uint8(MediaFixed),
			chunkCount:      le.Uint32(p[volChunkCount:]),
			sectorsPerChunk: le.Uint32(p[volSectorsPerChunk:]),
			bytesPerSector:  le.Uint32(p[volBytesPerSector:]),
			sectorCount:     uint64(le.Uint32(p[volSectorCountSMART:])),
			compression:     0xff, // not recorded
		}
	default:
		return b.errAt(seg, what, off, "%d bytes of data, too small for a volume section", dataLen)
	}
	if b.volume == nil {
		if typ == secData && w.idx > 0 {
			return b.errAt(seg, what, off, "segment %d has a data section but segment 1 had no volume section", w.idx+1)
		}
		b.volumeSeg, b.volumeAt = w.idx, off
		return b.setVolume(seg, what, off, &g)
	}
	// Later copies must describe the same media: a segment from another
	// acquisition otherwise goes unnoticed.
	v := b.volume
	if g.chunkCount != v.chunkCount || g.sectorsPerChunk != v.sectorsPerChunk || g.bytesPerSector != v.bytesPerSector ||
		g.sectorCount != v.sectorCount || g.setID != v.setID {
		return b.errAt(seg, what, off, "describes other media than segment 1's volume section (%d chunks of %d sectors of %d bytes, %d sectors, set %x; segment 1: %d, %d, %d, %d, set %x): segment from another image?",
			g.chunkCount, g.sectorsPerChunk, g.bytesPerSector, g.sectorCount, g.setID,
			v.chunkCount, v.sectorsPerChunk, v.bytesPerSector, v.sectorCount, v.setID)
	}
	return nil
}

func (b *builder) setVolume(seg *segment, what string, off int64, g *geometry) error {
	bad := func(format string, args ...any) error { return b.errAt(seg, what, off, format, args...) }
	if g.bytesPerSector == 0 || g.bytesPerSector > maxBytesPerSector {
		return bad("bytes per sector %d (want 1 to %d)", g.bytesPerSector, maxBytesPerSector)
	}
	if g.sectorsPerChunk == 0 || g.sectorsPerChunk > maxSectorsPerChunk {
		return bad("sectors per chunk %d (want 1 to %d)", g.sectorsPerChunk, maxSectorsPerChunk)
	}
	chunkSize := int64(g.sectorsPerChunk) * int64(g.bytesPerSector)
	if chunkSize > maxChunkSize {
		return bad("chunk size %d bytes (%d sectors of %d bytes) is more than the %d this reader accepts", chunkSize, g.sectorsPerChunk, g.bytesPerSector, maxChunkSize)
	}
	if g.sectorCount > (1<<63-1)/uint64(g.bytesPerSector) {
		return bad("sector count %d overflows", g.sectorCount)
	}
	size := int64(g.sectorCount) * int64(g.bytesPerSector)
	want := (size + chunkSize - 1) / chunkSize
	if int64(g.chunkCount) != want {
		return bad("chunk count %d, but %d sectors of %d bytes need %d chunks of %d bytes", g.chunkCount, g.sectorCount, g.bytesPerSector, want, chunkSize)
	}
	b.volume = g
	b.img.size, b.img.chunkSize, b.img.chunkCount = size, chunkSize, int64(g.chunkCount)
	return nil
}

// tableSection records a table. Its entries are read when a chunk needs
// them; only the header is checked now.
func (b *builder) tableSection(w *sectionWalk, off, dataOff, dataLen int64) error {
	t, err := b.readTableHeader(w, off, dataOff, dataLen)
	if err != nil {
		// Usable still if a sound table2 mirror follows.
		w.pending = &pendingTable{section: off, err: err}
		return nil
	}
	return b.addTable(w, t)
}

func (b *builder) table2Section(w *sectionWalk, off, dataOff, dataLen int64) error {
	t2, err := b.readTableHeader(w, off, dataOff, dataLen)
	switch {
	case w.pending != nil:
		if err != nil {
			return w.pending.err // neither copy is readable
		}
		w.pending = nil
		return b.addTable(w, t2)
	case w.last >= 0:
		t := &b.img.tables[w.last]
		if err == nil && t2.count == t.count && t2.base == t.base {
			t.mirror = t2.entries
		} else {
			b.warnf("%s: table2 section at byte %d does not mirror the table before it", w.seg.name, off)
		}
		w.last = -1
		return nil
	case err != nil:
		return err
	}
	// A table2 with no table before it: take it as the table.
	return b.addTable(w, t2)
}

// endTables settles a table whose table2 never came.
func (b *builder) endTables(w *sectionWalk) error {
	w.last = -1
	if w.pending != nil {
		err := w.pending.err
		w.pending = nil
		return err
	}
	return nil
}

func (b *builder) readTableHeader(w *sectionWalk, off, dataOff, dataLen int64) (table, error) {
	seg := w.seg
	if b.volume == nil {
		return table{}, b.errAt(seg, "table section", off, "comes before any volume section")
	}
	var h [tableHeaderSize]byte
	if dataLen < tableHeaderSize {
		return table{}, b.errAt(seg, "table section", off, "%d bytes of data, too small for a table header", dataLen)
	}
	if err := readFull(seg, h[:], dataOff, "table section"); err != nil {
		return table{}, err
	}
	if got, want := adler32.Checksum(h[:thChecksum]), le.Uint32(h[thChecksum:]); got != want {
		return table{}, b.errAt(seg, "table section", off, "header checksum 0x%08x, stored 0x%08x", got, want)
	}
	count := int64(le.Uint32(h[thEntryCount:]))
	footer := b.volume.variant == VariantE01
	room := dataLen - tableHeaderSize
	if footer {
		room -= tableFooterSize
	}
	if count > maxTableEntries || count*tableEntrySize > room {
		return table{}, b.errAt(seg, "table section", off, "%d entries do not fit in %d bytes of section data", count, dataLen)
	}
	base := le.Uint64(h[thBaseOffset:])
	if base >= uint64(seg.size) {
		return table{}, b.errAt(seg, "table section", off, "base offset %d lies past the end of the file (%d bytes)", base, seg.size)
	}
	t := table{
		seg:     w.idx,
		section: off,
		entries: dataOff + tableHeaderSize,
		mirror:  -1,
		count:   count,
		base:    int64(base),
		footer:  footer,
	}
	if w.dataFrom >= 0 {
		// EnCase 2 and later: the chunks are in the sectors section before.
		t.dataStart, t.dataEnd = w.dataFrom, w.dataTo
	} else {
		// EnCase 1 and SMART: the chunks follow the entries in this section.
		t.dataStart = t.entries + count*tableEntrySize
		if footer {
			t.dataStart += tableFooterSize
		}
		t.dataEnd = dataOff + dataLen
	}
	return t, nil
}

func (b *builder) addTable(w *sectionWalk, t table) error {
	w.dataFrom = -1 // the next table's chunks are in a new sectors section
	if t.count == 0 {
		return nil
	}
	if b.chunks+t.count > b.img.chunkCount {
		return b.errAt(w.seg, "table section", t.section, "tables hold more chunks (%d so far) than the volume section's %d", b.chunks+t.count, b.img.chunkCount)
	}
	t.first = b.chunks
	b.chunks += t.count
	b.img.tables = append(b.img.tables, t)
	w.last = len(b.img.tables) - 1
	return nil
}

// readSectionData reads a whole (small) section's data after bounding it.
func readSectionData(seg *segment, what string, off, dataOff, dataLen, max int64) ([]byte, error) {
	if dataLen > max {
		return nil, &FormatError{Struct: what, Segment: seg.name, Offset: off, Chunk: -1, Media: -1,
			Msg: fmt.Sprintf("%d bytes of data, more than the %d accepted", dataLen, max)}
	}
	p := make([]byte, dataLen)
	if err := readFull(seg, p, dataOff, what); err != nil {
		return nil, err
	}
	return p, nil
}

// inflateBounded decompresses a zlib stream of at most max bytes.
func inflateBounded(p []byte, max int64) ([]byte, error) {
	zr, err := zlib.NewReader(bytes.NewReader(p))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	out, err := io.ReadAll(io.LimitReader(zr, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(out)) > max {
		return nil, fmt.Errorf("decompresses to more than %d bytes", max)
	}
	return out, nil
}

// headerSection decodes a header, header2 or xheader section. The copies
// are redundant, so one that cannot be decoded is only noted.
func (b *builder) headerSection(w *sectionWalk, typ string, off, dataOff, dataLen int64) {
	dst := map[string]*map[string]string{secHeader: &b.header, secHeader2: &b.header2, secXHeader: &b.xheader}[typ]
	if *dst != nil {
		return // a later copy of one already read
	}
	var vals map[string]string
	if typ == secXHeader {
		vals = b.xmlSection(w.seg, typ, off, dataOff, dataLen)
		if vals == nil {
			return
		}
	} else {
		raw, err := readSectionData(w.seg, typ+" section", off, dataOff, dataLen, maxHeaderCompressed)
		if err == nil {
			raw, err = inflateBounded(raw, maxHeaderText)
		}
		if err == nil {
			var text string
			if typ == secHeader2 {
				text = decodeUTF16(raw)
			} else {
				text = decodeSingleByte(raw)
			}
			vals, err = parseHeaderText(text)
		}
		if err != nil {
			b.headerBroken = append(b.headerBroken, fmt.Sprintf("%s: %s section at byte %d: %v", w.seg.name, typ, off, err))
			return
		}
	}
	*dst = vals
}

// decodeUTF16 decodes header2 text: UTF-16 with a byte order mark
// (little-endian without one).
func decodeUTF16(p []byte) string {
	order := binary.ByteOrder(binary.LittleEndian)
	switch {
	case len(p) >= 2 && p[0] == 0xff && p[1] == 0xfe:
		p = p[2:]
	case len(p) >= 2 && p[0] == 0xfe && p[1] == 0xff:
		p, order = p[2:], binary.BigEndian
	}
	u := make([]uint16, len(p)/2)
	for i := range u {
		u[i] = order.Uint16(p[2*i:])
	}
	return string(utf16.Decode(u))
}

// decodeSingleByte decodes header text written in a code page: UTF-8 when
// it is valid as such, else each byte as Latin-1.
func decodeSingleByte(p []byte) string {
	if utf8.Valid(p) {
		return string(p)
	}
	r := make([]rune, len(p))
	for i, c := range p {
		r[i] = rune(c)
	}
	return string(r)
}

// parseHeaderText finds the "main" category and pairs its identifier line
// with its value line.
func parseHeaderText(text string) (map[string]string, error) {
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) != "main" || i+2 >= len(lines) {
			continue
		}
		ids := strings.Split(lines[i+1], "\t")
		vals := strings.Split(lines[i+2], "\t")
		m := make(map[string]string, len(ids))
		for j, id := range ids {
			if j < len(vals) {
				m[strings.TrimSpace(id)] = vals[j]
			}
		}
		return m, nil
	}
	return nil, fmt.Errorf("no main category in %d lines of text", len(lines))
}

// xmlSection decodes the flat XML of EWF-X xheader and xhash sections
// into element name → text.
func (b *builder) xmlSection(seg *segment, typ string, off, dataOff, dataLen int64) map[string]string {
	raw, err := readSectionData(seg, typ+" section", off, dataOff, dataLen, maxHeaderCompressed)
	if err == nil {
		raw, err = inflateBounded(raw, maxHeaderText)
	}
	m := map[string]string{}
	if err == nil {
		d := xml.NewDecoder(bytes.NewReader(bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf"))))
		var name string
		depth := 0
		for {
			tok, terr := d.Token()
			if terr == io.EOF {
				break
			}
			if terr != nil {
				err = terr
				break
			}
			switch t := tok.(type) {
			case xml.StartElement:
				depth++
				name = t.Name.Local
			case xml.EndElement:
				depth--
				name = ""
			case xml.CharData:
				if depth == 2 && name != "" {
					m[name] += string(t)
				}
			}
		}
	}
	if err != nil {
		b.headerBroken = append(b.headerBroken, fmt.Sprintf("%s: %s section at byte %d: %v", seg.name, typ, off, err))
		return nil
	}
	for k, v := range m {
		m[k] = strings.TrimSpace(v)
	}
	return m
}

func (b *builder) hashSection(seg *segment, typ string, off, dataOff, dataLen int64) {
	size, sum := int64(hashSize), hashChecksum
	if typ == secDigest {
		size, sum = digestSize, digestChecksum
	}
	if dataLen < size {
		b.warnf("%s: %s section at byte %d: %d bytes, too small: stored hash ignored", seg.name, typ, off, dataLen)
		return
	}
	p := make([]byte, size)
	if err := readFull(seg, p, dataOff, typ+" section"); err != nil {
		b.warnf("%v: stored hash ignored", err)
		return
	}
	if got, want := adler32.Checksum(p[:sum]), le.Uint32(p[sum:]); got != want {
		b.warnf("%s: %s section at byte %d: checksum 0x%08x, stored 0x%08x: stored hash ignored", seg.name, typ, off, got, want)
		return
	}
	b.hashSeen = true
	if md5 := p[hashMD5 : hashMD5+16]; !allZero(md5) {
		b.md5 = md5
	}
	if typ == secDigest {
		if sha1 := p[digestSHA1 : digestSHA1+20]; !allZero(sha1) {
			b.sha1 = sha1
		}
	}
}

func (b *builder) error2Section(seg *segment, off, dataOff, dataLen int64) {
	var h [error2HeaderSize]byte
	if dataLen < error2HeaderSize || readFull(seg, h[:], dataOff, "error2 section") != nil {
		b.warnf("%s: error2 section at byte %d is unreadable: the list of sectors unreadable at acquisition is lost", seg.name, off)
		return
	}
	if got, want := adler32.Checksum(h[:e2Checksum]), le.Uint32(h[e2Checksum:]); got != want {
		b.warnf("%s: error2 section at byte %d: header checksum 0x%08x, stored 0x%08x: list of acquisition errors ignored", seg.name, off, got, want)
		return
	}
	n := int64(le.Uint32(h[e2Count:]))
	p, ok := b.listEntries(seg, "error2", off, dataOff+error2HeaderSize, dataLen-error2HeaderSize, n, error2EntrySize)
	for i := int64(0); ok && i < n; i++ {
		e := p[i*error2EntrySize:]
		b.img.info.AcquisitionErrors = append(b.img.info.AcquisitionErrors, SectorRange{First: uint64(le.Uint32(e)), Count: uint64(le.Uint32(e[4:]))})
	}
}

func (b *builder) sessionSection(seg *segment, off, dataOff, dataLen int64) {
	var h [sessionHeaderSize]byte
	if dataLen < sessionHeaderSize || readFull(seg, h[:], dataOff, "session section") != nil {
		b.warnf("%s: session section at byte %d is unreadable", seg.name, off)
		return
	}
	if got, want := adler32.Checksum(h[:ssChecksum]), le.Uint32(h[ssChecksum:]); got != want {
		b.warnf("%s: session section at byte %d: header checksum 0x%08x, stored 0x%08x: sessions ignored", seg.name, off, got, want)
		return
	}
	n := int64(le.Uint32(h[ssCount:]))
	p, ok := b.listEntries(seg, "session", off, dataOff+sessionHeaderSize, dataLen-sessionHeaderSize, n, sessionEntrySize)
	for i := int64(0); ok && i < n; i++ {
		e := p[i*sessionEntrySize:]
		b.img.info.Sessions = append(b.img.info.Sessions, Session{FirstSector: uint64(le.Uint32(e[4:])), Audio: le.Uint32(e)&sessionFlagAudio != 0})
	}
}

// listEntries reads n entries of size bytes and the Adler-32 after them.
func (b *builder) listEntries(seg *segment, typ string, off, at, room, n, size int64) ([]byte, bool) {
	if n > maxListEntries || n*size+4 > room {
		b.warnf("%s: %s section at byte %d: %d entries do not fit: ignored", seg.name, typ, off, n)
		return nil, false
	}
	p := make([]byte, n*size+4)
	if err := readFull(seg, p, at, typ+" section"); err != nil {
		b.warnf("%v: ignored", err)
		return nil, false
	}
	if got, want := adler32.Checksum(p[:n*size]), le.Uint32(p[n*size:]); got != want {
		b.warnf("%s: %s section at byte %d: entries checksum 0x%08x, stored 0x%08x: ignored", seg.name, typ, off, got, want)
		return nil, false
	}
	return p, true
}

func allZero(p []byte) bool {
	for _, c := range p {
		if c != 0 {
			return false
		}
	}
	return true
}

// finish checks that the segments make a whole image and fills Info.
func (b *builder) finish() error {
	img := b.img
	first := &img.segs[0]
	if b.volume == nil {
		return b.errAt(first, "volume section", -1, "none found: not a disk image")
	}
	if b.chunks != img.chunkCount {
		return b.errAt(&img.segs[b.volumeSeg], "volume section", b.volumeAt,
			"chunk count %d, but the tables hold %d chunks: segments missing or truncated", img.chunkCount, b.chunks)
	}
	g := b.volume
	in := &img.info
	in.Variant = g.variant
	in.Segments = len(img.segs)
	in.MediaType = MediaType(g.mediaType)
	in.Physical = g.mediaFlags&mediaFlagPhysical != 0
	switch {
	case g.mediaFlags&mediaFlagFastbloc != 0:
		in.WriteBlocker = "fastbloc"
	case g.mediaFlags&mediaFlagTableau != 0:
		in.WriteBlocker = "tableau"
	}
	in.BytesPerSector = g.bytesPerSector
	in.SectorCount = g.sectorCount
	in.SectorsPerChunk = g.sectorsPerChunk
	in.ChunkSize = img.chunkSize
	in.ChunkCount = img.chunkCount
	in.ErrorGranularity = g.errorGranule
	if !allZero(g.setID[:]) {
		u := g.setID
		in.SetIdentifier = fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
	}
	if b.md5 != nil {
		in.MD5 = hex.EncodeToString(b.md5)
	}
	if b.sha1 != nil {
		in.SHA1 = hex.EncodeToString(b.sha1)
	}
	b.fillHeaderValues(g)
	in.Warnings = append(in.Warnings, b.warnings...)
	return nil
}

// fillHeaderValues merges header2, header and xheader values, in that
// order of preference.
func (b *builder) fillHeaderValues(g *geometry) {
	in := &b.img.info
	if b.header2 == nil && b.header == nil && b.xheader == nil {
		if len(b.headerBroken) > 0 {
			in.Warnings = append(in.Warnings, b.headerBroken...)
		}
		in.Warnings = append(in.Warnings, "no readable header section: acquisition metadata missing")
	}
	pick := func(key, xkey string) string {
		for _, m := range []map[string]string{b.header2, b.header} {
			if v := m[key]; v != "" {
				return v
			}
		}
		return b.xheader[xkey]
	}
	in.CaseNumber = pick("c", "case_number")
	in.EvidenceNumber = pick("n", "evidence_number")
	in.Examiner = pick("e", "examiner_name")
	in.Description = pick("a", "description")
	in.Notes = pick("t", "notes")
	in.Model = pick("md", "model")
	in.SerialNumber = pick("sn", "serial_number")
	in.DeviceLabel = pick("l", "device_label")
	in.AcquirySoftwareVersion = pick("av", "acquiry_software_version")
	in.AcquiryOS = pick("ov", "acquiry_operating_system")
	in.AcquirySoftware = b.xheader["acquiry_software"]
	if p := pick("p", "password"); p != "" && p != "0" {
		in.PasswordSet = true
	}
	in.AcquisitionDateText = pick("m", "acquiry_date")
	in.SystemDateText = pick("u", "system_date")
	in.AcquisitionDate = parseHeaderDate(in.AcquisitionDateText)
	in.SystemDate = parseHeaderDate(in.SystemDateText)

	// Older writers record the level only in the header ("r"), and leave
	// the volume's byte 0 whatever they used.
	switch pick("r", "compression_level") {
	case "n":
		in.Compression = CompressionNone
	case "f":
		in.Compression = CompressionFast
	case "b":
		in.Compression = CompressionBest
	default:
		if g.variant == VariantE01 {
			in.Compression = map[uint8]Compression{0: CompressionNone, 1: CompressionFast, 2: CompressionBest}[g.compression]
		}
	}
}

// parseHeaderDate reads a POSIX time ("1142163845", header2 and linen), an
// EnCase wall clock ("2002 3 4 10 19 59") or an EWF-X ctime with zone.
func parseHeaderDate(s string) time.Time {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n <= 0 {
			return time.Time{}
		}
		return time.Unix(n, 0).UTC()
	}
	if v, ok := sixNumbers(s); ok {
		if v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 {
			return time.Time{}
		}
		return time.Date(v[0], time.Month(v[1]), v[2], v[3], v[4], v[5], 0, time.Local)
	}
	for _, layout := range []string{"Mon Jan _2 15:04:05 2006 MST", time.UnixDate} {
		if t, err := time.Parse(layout, s); err == nil {
			return t
		}
	}
	return time.Time{}
}

func sixNumbers(s string) ([6]int, bool) {
	var v [6]int
	f := strings.Fields(s)
	if len(f) != 6 {
		return v, false
	}
	for i, x := range f {
		n, err := strconv.Atoi(x)
		if err != nil {
			return v, false
		}
		v[i] = n
	}
	return v, true
}
