package gpt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"sort"

	dgpt "github.com/diskfs/go-diskfs/partition/gpt"
)

// ErrNotGPT is returned by Read when no GPT signature is found at LBA 1 or
// at the last LBA for any of the probed sector sizes.
var ErrNotGPT = errors.New("gpt: no GPT signature at LBA 1 or at the last LBA")

// FormatError reports a malformed GPT structure: what was wrong, where
// (byte offset into the disk) and the offending value.
type FormatError struct {
	Offset int64  // byte offset of the structure or field
	Msg    string // what is wrong
	Val    any    // the offending value, if any
}

func (e *FormatError) Error() string {
	if e.Val == nil {
		return fmt.Sprintf("gpt: %s at offset %d", e.Msg, e.Offset)
	}
	return fmt.Sprintf("gpt: %s at offset %d: %v", e.Msg, e.Offset, e.Val)
}

// Header is a validated GPT header.
type Header struct {
	Revision       uint32 `json:"revision"`
	HeaderSize     uint32 `json:"header_size"`
	MyLBA          uint64 `json:"my_lba"`
	AlternateLBA   uint64 `json:"alternate_lba"`
	FirstUsableLBA uint64 `json:"first_usable_lba"`
	LastUsableLBA  uint64 `json:"last_usable_lba"`
	DiskGUID       string `json:"disk_guid"`
	EntriesLBA     uint64 `json:"entries_lba"`
	NumEntries     uint32 `json:"num_entries"`
	EntrySize      uint32 `json:"entry_size"`
	EntriesCRC     uint32 `json:"entries_crc"`
}

// Partition is one used entry of the table. LBAs are in logical sectors of
// Table.SectorSize and are exactly what the entry says: they are not checked
// against the size of the disk (the caller knows what to do about that).
type Partition struct {
	Number     int // 1-based entry slot, the number sgdisk, fdisk and Linux use
	TypeGUID   string
	GUID       string
	Name       string
	FirstLBA   uint64
	LastLBA    uint64
	Attributes uint64
}

// Table is a GUID partition table read from a disk.
type Table struct {
	SectorSize int
	Header     Header // the header whose entries are in Partitions
	FromBackup bool   // the primary GPT was unusable and the backup was used
	Partitions []Partition
	Warnings   []string
}

// Probe returns the logical sector size at which a GPT signature is present
// at LBA 1 or at the last LBA, or 0 if there is none. It does not validate.
func Probe(r io.ReaderAt, size int64) int {
	if ss := probe(r, size); len(ss) > 0 {
		return ss[0]
	}
	return 0
}

// probe returns the sector sizes with a signature, primary hits first.
func probe(r io.ReaderAt, size int64) []int {
	var primary, backup []int
	for _, ss := range SectorSizes {
		if size < int64(ss)*3 { // protective MBR, header, at least one more sector
			continue
		}
		if hasSignature(r, int64(ss)) {
			primary = append(primary, ss)
		} else if hasSignature(r, (size/int64(ss)-1)*int64(ss)) {
			backup = append(backup, ss)
		}
	}
	return append(primary, backup...)
}

func hasSignature(r io.ReaderAt, off int64) bool {
	var sig [8]byte
	n, _ := r.ReadAt(sig[:], off)
	return n == len(sig) && string(sig[:]) == Signature
}

// Read reads the GPT of a disk of the given size. It probes 512- and
// 4096-byte logical sectors, validates the primary header and entry array
// (signature, revision, size, CRCs, self LBA, bounds) and the backup, and
// falls back to the backup when the primary is unusable, saying so in
// Table.Warnings. It returns ErrNotGPT when there is no GPT signature at all.
func Read(r io.ReaderAt, size int64) (*Table, error) {
	sizes := probe(r, size)
	if len(sizes) == 0 {
		return nil, ErrNotGPT
	}
	var errs []error
	for _, ss := range sizes {
		t, err := readWith(r, size, ss)
		if err == nil {
			return t, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

func readWith(r io.ReaderAt, size int64, ss int) (*Table, error) {
	last := uint64(size/int64(ss)) - 1
	t := &Table{SectorSize: ss}

	p, pEntries, perr := readHeader(r, size, ss, 1)
	backupLBA := last
	if perr == nil && p.AlternateLBA != last {
		switch {
		case p.AlternateLBA > last:
			t.warnf("primary GPT header places the backup header at LBA %d but the image ends at LBA %d: the image is truncated", p.AlternateLBA, last)
		case p.AlternateLBA > 1:
			t.warnf("backup GPT header is at LBA %d, not at the last LBA %d: the image is larger than the disk the table was written for", p.AlternateLBA, last)
			backupLBA = p.AlternateLBA
		default:
			t.warnf("primary GPT header has an invalid backup LBA %d", p.AlternateLBA)
		}
	}
	b, bEntries, berr := readHeader(r, size, ss, backupLBA)

	var hdr *Header
	view := &maskedReader{r: r, size: size}
	switch {
	case perr == nil:
		hdr = p
		if berr != nil {
			t.warnf("backup GPT at LBA %d is invalid (%v); the primary GPT is used", backupLBA, berr)
		} else if !bytes.Equal(pEntries, bEntries) || p.NumEntries != b.NumEntries {
			t.warnf("primary and backup GPT partition entries differ; the primary GPT is used")
		}
	case berr == nil:
		hdr = b
		t.FromBackup = true
		t.warnf("primary GPT at LBA 1 is invalid (%v); partitions were read from the backup GPT at LBA %d", perr, backupLBA)
		// go-diskfs tries LBA 1 first and falls back to the last sector of
		// what it is given: hide LBA 1 and end the view at the backup.
		view.maskOff, view.maskLen = int64(ss), int64(ss)
		view.size = int64(backupLBA+1) * int64(ss)
	default:
		return nil, fmt.Errorf("gpt: %d-byte sectors: primary GPT at LBA 1 invalid: %w; backup GPT at LBA %d invalid: %v", ss, perr, backupLBA, berr)
	}
	t.Header = *hdr

	dt, err := decodeEntries(view, ss)
	if err != nil {
		return nil, fmt.Errorf("gpt: decoding entries at LBA %d: %w", hdr.EntriesLBA, err)
	}
	if dt.RecoveredFromBackup != t.FromBackup {
		// Our validation and go-diskfs's disagree about the primary; the
		// entries come from the table go-diskfs read, so say which one.
		t.warnf("go-diskfs read the %s GPT while validation chose the %s GPT", which(dt.RecoveredFromBackup), which(t.FromBackup))
	}
	if len(dt.Partitions) > int(hdr.NumEntries) {
		return nil, fmt.Errorf("gpt: go-diskfs returned %d partitions for %d entries", len(dt.Partitions), hdr.NumEntries)
	}
	for _, dp := range dt.Partitions {
		t.Partitions = append(t.Partitions, Partition{
			Number:     dp.Index,
			TypeGUID:   string(dp.Type),
			GUID:       dp.GUID,
			Name:       dp.Name,
			FirstLBA:   dp.Start,
			LastLBA:    dp.End,
			Attributes: dp.Attributes,
		})
	}
	t.checkPartitions()
	return t, nil
}

func which(backup bool) string {
	if backup {
		return "backup"
	}
	return "primary"
}

func (t *Table) warnf(format string, args ...any) {
	t.Warnings = append(t.Warnings, fmt.Sprintf(format, args...))
}

// checkPartitions warns about entries that a sane partitioner would not
// write. Nothing is dropped: the caller clamps to the disk size.
func (t *Table) checkPartitions() {
	h := t.Header
	type span struct {
		num         int
		first, last uint64
	}
	var spans []span
	for _, p := range t.Partitions {
		if p.FirstLBA > p.LastLBA {
			t.warnf("partition %d: first LBA %d is after last LBA %d", p.Number, p.FirstLBA, p.LastLBA)
			continue
		}
		if p.FirstLBA < h.FirstUsableLBA || p.LastLBA > h.LastUsableLBA {
			t.warnf("partition %d: LBAs %d-%d lie outside the usable area %d-%d", p.Number, p.FirstLBA, p.LastLBA, h.FirstUsableLBA, h.LastUsableLBA)
		}
		spans = append(spans, span{p.Number, p.FirstLBA, p.LastLBA})
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].first < spans[j].first })
	for i := 1; i < len(spans); i++ {
		if spans[i].first <= spans[i-1].last {
			t.warnf("partitions %d and %d overlap", spans[i-1].num, spans[i].num)
		}
	}
}

// readHeader reads and validates the header at lba and its entry array,
// which it returns too.
func readHeader(r io.ReaderAt, size int64, ss int, lba uint64) (*Header, []byte, error) {
	sectors := uint64(size / int64(ss))
	if lba >= sectors {
		return nil, nil, &FormatError{Offset: size, Msg: "header LBA beyond end of disk", Val: lba}
	}
	off := int64(lba) * int64(ss)
	buf, err := readFull(r, off, ss)
	if err != nil {
		return nil, nil, err
	}
	le := binary.LittleEndian
	if string(buf[hdrSignature:hdrSignature+8]) != Signature {
		return nil, nil, &FormatError{Offset: off, Msg: "bad header signature", Val: fmt.Sprintf("%q", buf[:8])}
	}
	h := &Header{
		Revision:       le.Uint32(buf[hdrRevision:]),
		HeaderSize:     le.Uint32(buf[hdrSize:]),
		MyLBA:          le.Uint64(buf[hdrMyLBA:]),
		AlternateLBA:   le.Uint64(buf[hdrAltLBA:]),
		FirstUsableLBA: le.Uint64(buf[hdrFirstUsable:]),
		LastUsableLBA:  le.Uint64(buf[hdrLastUsable:]),
		DiskGUID:       FormatGUID(buf[hdrDiskGUID : hdrDiskGUID+16]),
		EntriesLBA:     le.Uint64(buf[hdrEntriesLBA:]),
		NumEntries:     le.Uint32(buf[hdrNumEntries:]),
		EntrySize:      le.Uint32(buf[hdrEntrySize:]),
		EntriesCRC:     le.Uint32(buf[hdrEntriesCRC:]),
	}
	if h.Revision != Revision {
		return nil, nil, &FormatError{Offset: off + hdrRevision, Msg: "unsupported header revision", Val: fmt.Sprintf("%#x", h.Revision)}
	}
	if h.HeaderSize != headerLen {
		return nil, nil, &FormatError{Offset: off + hdrSize, Msg: "unsupported header size", Val: h.HeaderSize}
	}
	if v := le.Uint32(buf[hdrReserved:]); v != 0 {
		return nil, nil, &FormatError{Offset: off + hdrReserved, Msg: "reserved header field not zero", Val: v}
	}
	stored := le.Uint32(buf[hdrCRC:])
	var hb [headerLen]byte
	copy(hb[:], buf)
	clear(hb[hdrCRC : hdrCRC+4])
	if sum := crc32.ChecksumIEEE(hb[:]); sum != stored {
		return nil, nil, &FormatError{Offset: off + hdrCRC, Msg: "header CRC mismatch", Val: fmt.Sprintf("stored %#08x, computed %#08x", stored, sum)}
	}
	if h.MyLBA != lba {
		return nil, nil, &FormatError{Offset: off + hdrMyLBA, Msg: fmt.Sprintf("header found at LBA %d names another LBA", lba), Val: h.MyLBA}
	}
	if h.EntrySize != EntrySize {
		return nil, nil, &FormatError{Offset: off + hdrEntrySize, Msg: "unsupported partition entry size", Val: h.EntrySize}
	}
	if uint64(h.NumEntries)*EntrySize > maxEntryArray {
		return nil, nil, &FormatError{Offset: off + hdrNumEntries, Msg: fmt.Sprintf("partition entry count above %d", maxEntryArray/EntrySize), Val: h.NumEntries}
	}
	arrayLen := uint64(h.NumEntries) * EntrySize
	arraySectors := (arrayLen + uint64(ss) - 1) / uint64(ss)
	if h.EntriesLBA >= sectors || h.EntriesLBA+arraySectors > sectors {
		return nil, nil, &FormatError{Offset: off + hdrEntriesLBA, Msg: "partition entry array beyond end of disk", Val: h.EntriesLBA}
	}
	if h.EntriesLBA <= lba && lba < h.EntriesLBA+arraySectors || h.EntriesLBA == 0 {
		return nil, nil, &FormatError{Offset: off + hdrEntriesLBA, Msg: "partition entry array overlaps the header or the MBR", Val: h.EntriesLBA}
	}
	entries, err := readFull(r, int64(h.EntriesLBA)*int64(ss), int(arrayLen))
	if err != nil {
		return nil, nil, err
	}
	if sum := crc32.ChecksumIEEE(entries); sum != h.EntriesCRC {
		return nil, nil, &FormatError{Offset: int64(h.EntriesLBA) * int64(ss), Msg: "partition entry array CRC mismatch", Val: fmt.Sprintf("header says %#08x, computed %#08x", h.EntriesCRC, sum)}
	}
	return h, entries, nil
}

func readFull(r io.ReaderAt, off int64, n int) ([]byte, error) {
	b := make([]byte, n)
	m, err := r.ReadAt(b, off)
	if m == n {
		return b, nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return nil, fmt.Errorf("gpt: reading %d bytes at offset %d: %w", n, off, err)
}

// FormatGUID formats a GUID stored in the mixed-endian on-disk layout
// (first three fields little-endian) in upper case, as sgdisk prints it.
func FormatGUID(b []byte) string {
	if len(b) < 16 {
		return ""
	}
	le := binary.LittleEndian
	return fmt.Sprintf("%08X-%04X-%04X-%X-%X", le.Uint32(b[0:4]), le.Uint16(b[4:6]), le.Uint16(b[6:8]), b[8:10], b[10:16])
}

// decodeEntries lets go-diskfs decode the table behind view, turning any
// panic of it into an error.
func decodeEntries(view *maskedReader, ss int) (t *dgpt.Table, err error) {
	defer func() {
		if p := recover(); p != nil {
			t, err = nil, fmt.Errorf("go-diskfs panicked: %v", p)
		}
	}()
	return dgpt.Read(diskfsFile{io.NewSectionReader(view, 0, view.size)}, ss, ss)
}

// maskedReader reads r up to size and returns zeros for [maskOff,
// maskOff+maskLen).
type maskedReader struct {
	r                io.ReaderAt
	size             int64
	maskOff, maskLen int64
}

func (m *maskedReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= m.size {
		return 0, io.EOF
	}
	var eof error
	if int64(len(p)) > m.size-off {
		p, eof = p[:m.size-off], io.EOF
	}
	n, err := m.r.ReadAt(p, off)
	if m.maskLen > 0 {
		lo, hi := max(off, m.maskOff), min(off+int64(n), m.maskOff+m.maskLen)
		if lo < hi {
			clear(p[lo-off : hi-off])
		}
	}
	if err == nil {
		err = eof
	}
	return n, err
}

// diskfsFile adapts a read-only SectionReader to go-diskfs's backend.File.
// It has no WriteAt, so go-diskfs cannot write through it.
type diskfsFile struct{ *io.SectionReader }

func (diskfsFile) Stat() (fs.FileInfo, error) { return nil, errors.New("gpt: stat not supported") }
func (diskfsFile) Close() error               { return nil }
