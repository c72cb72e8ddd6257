package tarfs

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// GNU sparse members. archive/tar expands them when read as a stream but
// does not expose their maps, and this package reads data by offset, so
// the map is decoded again here from the raw bytes (which archive/tar has
// already validated once) and checked against the offsets observed.

// Formats reported in Member.Sparse.
const (
	sparseOld = "old"     // typeflag 'S', map in the header and extension blocks
	sparse0x  = "0.0/0.1" // map in PAX records
	sparse1x0 = "1.0"     // map in the data, before the stored fragments
)

// sparseFormat says which GNU sparse format archive/tar applied to hdr,
// following its rules: "" when the member is not sparse.
func sparseFormat(hdr *tar.Header) (string, error) {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return sparseOld, nil
	}
	major, minor := hdr.PAXRecords["GNU.sparse.major"], hdr.PAXRecords["GNU.sparse.minor"]
	switch {
	case major == "0" && (minor == "0" || minor == "1"):
		return sparse0x, nil
	case major == "1" && minor == "0":
		return sparse1x0, nil
	case major != "" || minor != "":
		// archive/tar would return the packed data as the file.
		return "", fmt.Errorf("unsupported GNU sparse format %q.%q", major, minor)
	case hdr.PAXRecords["GNU.sparse.map"] != "":
		return sparse0x, nil
	}
	return "", nil
}

type sparseEntry struct{ off, n int64 }

// sparseMap decodes the map of a sparse member whose header chain starts
// at start and whose stored fragments start at data, and returns the
// fragments and how many bytes are stored from data on.
func (ix *indexer) sparseMap(hdr *tar.Header, format string, start, data int64) ([]frag, int64, error) {
	hoff, blk, err := ix.memberHeader(start, data)
	if err != nil {
		return nil, 0, err
	}
	// What archive/tar took as the stored size: the PAX size record, else
	// the header's size field.
	var raw int64
	if v := hdr.PAXRecords["size"]; v != "" {
		raw, err = strconv.ParseInt(v, 10, 64)
	} else {
		raw, err = parseNumeric(blk[124:136])
	}
	if err != nil || raw < 0 {
		return nil, 0, fmt.Errorf("bad stored size in the header at offset %d", hoff)
	}
	var ents []sparseEntry
	var end int64 // where the map ends and the fragments begin
	stored := raw
	switch format {
	case sparse0x:
		ents, err = map0x(hdr.PAXRecords)
		end = hoff + blockSize
	case sparse1x0:
		ents, end, err = ix.map1x0(hoff + blockSize)
		stored = raw - (end - hoff - blockSize)
	case sparseOld:
		ents, end, err = ix.mapOld(blk, hoff+blockSize)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("GNU sparse %s map: %w", format, err)
	}
	if end != data {
		return nil, 0, fmt.Errorf("GNU sparse %s map ends at offset %d but archive/tar read the data from %d", format, end, data)
	}
	if stored < 0 {
		return nil, 0, fmt.Errorf("GNU sparse %s map larger than the member's stored size %d", format, raw)
	}
	frags, total, err := fragments(ents, hdr.Size)
	if err != nil {
		return nil, 0, fmt.Errorf("GNU sparse %s map: %w", format, err)
	}
	if total > stored {
		return nil, 0, fmt.Errorf("GNU sparse %s map references %d bytes but %d are stored", format, total, stored)
	}
	if total < stored {
		ix.f.note("sparse member %q at offset %d stores %d bytes its map does not reference", hdr.Name, start, stored-total)
	}
	if ix.fragments += len(frags); ix.fragments > MaxFragments {
		return nil, 0, fmt.Errorf("more than %d sparse fragments in the archive", MaxFragments)
	}
	return frags, stored, nil
}

// fragments checks a map as archive/tar does (in order, not overlapping,
// within size) and turns it into fragments, dropping empty ones and
// merging adjacent ones.
func fragments(ents []sparseEntry, size int64) ([]frag, int64, error) {
	var out []frag
	var prevEnd, phys int64
	for _, e := range ents {
		if e.off < 0 || e.n < 0 || e.off > size-e.n {
			return nil, 0, fmt.Errorf("fragment of %d bytes at %d outside the file's %d bytes", e.n, e.off, size)
		}
		if e.off < prevEnd {
			return nil, 0, fmt.Errorf("fragment at %d overlaps or precedes the previous one", e.off)
		}
		prevEnd = e.off + e.n
		if e.n == 0 {
			continue
		}
		if k := len(out) - 1; k >= 0 && out[k].off+out[k].n == e.off {
			out[k].n += e.n
		} else {
			out = append(out, frag{off: e.off, n: e.n, phys: phys})
		}
		phys += e.n
	}
	if out == nil {
		out = []frag{} // sparse with no data at all: still not contiguous data
	}
	return out, phys, nil
}

// memberHeader walks the header chain from start (PAX and GNU long-name
// headers) to the member's own header block, which lies before data.
func (ix *indexer) memberHeader(start, data int64) (int64, *[blockSize]byte, error) {
	off := start
	for {
		if off+blockSize > data {
			return 0, nil, fmt.Errorf("no member header between offsets %d and %d", start, data)
		}
		blk, err := ix.block(off)
		if err != nil {
			return 0, nil, err
		}
		switch blk[156] {
		case tar.TypeXHeader, tar.TypeGNULongName, tar.TypeGNULongLink:
			n, err := parseNumeric(blk[124:136])
			if err != nil || n < 0 || n > maxSpecialSize {
				return 0, nil, fmt.Errorf("bad size in the extension header at offset %d", off)
			}
			off += blockSize + (n+blockSize-1)/blockSize*blockSize
			continue
		}
		return off, blk, nil
	}
}

func (ix *indexer) block(off int64) (*[blockSize]byte, error) {
	var b [blockSize]byte
	if off < 0 || off > ix.f.size-blockSize {
		return nil, fmt.Errorf("block at offset %d outside the archive", off)
	}
	if n, err := ix.f.r.ReadAt(b[:], off); n < blockSize {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("reading offset %d: %w", off, err)
	}
	return &b, nil
}

// map0x reads a 0.0 or 0.1 map: GNU.sparse.numblocks and GNU.sparse.map
// (archive/tar folds 0.0's repeated offset/numbytes records into it).
func map0x(recs map[string]string) ([]sparseEntry, error) {
	count, err := strconv.ParseInt(recs["GNU.sparse.numblocks"], 10, 64)
	if err != nil || count < 0 || count > maxSpecialSize {
		return nil, errors.New("bad GNU.sparse.numblocks")
	}
	m := recs["GNU.sparse.map"]
	var nums []string
	if m != "" {
		nums = strings.Split(m, ",")
	}
	if int64(len(nums)) != 2*count {
		return nil, fmt.Errorf("GNU.sparse.map has %d numbers for %d blocks", len(nums), count)
	}
	return pairs(nums)
}

func pairs(nums []string) ([]sparseEntry, error) {
	out := make([]sparseEntry, 0, len(nums)/2)
	for i := 0; i+1 < len(nums); i += 2 {
		off, err1 := strconv.ParseInt(nums[i], 10, 64)
		n, err2 := strconv.ParseInt(nums[i+1], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("bad numbers %q, %q", nums[i], nums[i+1])
		}
		out = append(out, sparseEntry{off, n})
	}
	return out, nil
}

// map1x0 reads a 1.0 map from offset at: decimal numbers, one a line (the
// count, then offset and length pairs), padded to whole blocks. It
// returns the entries and the offset after the map's last block.
func (ix *indexer) map1x0(at int64) ([]sparseEntry, int64, error) {
	var buf []byte
	newlines := 0
	pos := at
	feed := func(n int) error {
		for newlines < n {
			if len(buf)+blockSize > maxSpecialSize {
				return errors.New("map longer than 1 MiB")
			}
			blk, err := ix.block(pos)
			if err != nil {
				return err
			}
			pos += blockSize
			buf = append(buf, blk[:]...)
			newlines += bytes.Count(blk[:], []byte{'\n'})
		}
		return nil
	}
	if err := feed(1); err != nil {
		return nil, 0, err
	}
	first, _, _ := bytes.Cut(buf, []byte{'\n'})
	count, err := strconv.ParseInt(string(first), 10, 64)
	if err != nil || count < 0 || count > maxSpecialSize {
		return nil, 0, fmt.Errorf("bad entry count %q", first)
	}
	if err := feed(1 + 2*int(count)); err != nil {
		return nil, 0, err
	}
	rest := buf[len(first)+1:]
	nums := make([]string, 0, 2*count)
	for range 2 * count {
		tok, after, _ := bytes.Cut(rest, []byte{'\n'})
		nums = append(nums, string(tok))
		rest = after
	}
	ents, err := pairs(nums)
	return ents, pos, err
}

// mapOld reads the map of an old GNU 'S' member: four entries in the
// header, then 21 in each extension block while the extended flag is set.
func (ix *indexer) mapOld(hdr *[blockSize]byte, pos int64) ([]sparseEntry, int64, error) {
	s := hdr[386 : 386+4*24+1]
	var out []sparseEntry
	total := len(s)
	for {
		for i := 0; i+24 < len(s); i += 24 {
			if s[i] == 0 {
				break
			}
			off, err1 := parseNumeric(s[i : i+12])
			n, err2 := parseNumeric(s[i+12 : i+24])
			if err1 != nil || err2 != nil {
				return nil, 0, fmt.Errorf("bad entry in the block before offset %d", pos)
			}
			out = append(out, sparseEntry{off, n})
		}
		if s[len(s)-1] == 0 {
			return out, pos, nil
		}
		if total += 21*24 + 1; total > maxSpecialSize {
			return nil, 0, errors.New("map longer than 1 MiB")
		}
		blk, err := ix.block(pos)
		if err != nil {
			return nil, 0, err
		}
		pos += blockSize
		s = blk[:21*24+1]
	}
}

// parseNumeric reads a tar numeric field: octal text, or base-256 when
// the high bit of the first byte is set. Negative values are refused.
func parseNumeric(b []byte) (int64, error) {
	if len(b) > 0 && b[0]&0x80 != 0 {
		if b[0]&0x40 != 0 {
			return 0, errors.New("negative number")
		}
		var x uint64
		for i, c := range b {
			if i == 0 {
				c &= 0x7f
			}
			if x>>55 != 0 {
				return 0, errors.New("number overflows")
			}
			x = x<<8 | uint64(c)
		}
		return int64(x), nil
	}
	s := strings.Trim(string(b), " \x00")
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseUint(s, 8, 63)
	if err != nil {
		return 0, err
	}
	return int64(v), nil
}
