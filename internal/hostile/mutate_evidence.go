//go:build linux

package hostile

import (
	"bytes"
	"fmt"
	"hash/adler32"
	"strings"
	"sync"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

// --- shared: bombs and checksums ---

// fixSums decides whether a variant recomputes the checksums it broke, so
// that the damage is believed: three times in four.
func (v *Variant) fixSums() bool {
	fix := v.R.IntN(4) != 0
	if fix {
		v.say("checksums recomputed")
	}
	return fix
}

// Bomb codecs.
const (
	bombZlib    = iota // RFC 1950 (E01 chunks, VMDK grains)
	bombDeflate        // raw deflate (qcow2 "zlib" clusters)
	bombZstd           // a zstd frame without a content size
	bombZstdFCS        // a zstd frame declaring its content size
)

var bombNames = [...]string{"zlib", "deflate", "zstd", "zstd (with content size)"}

type bombKey struct{ codec, room int }

var bombCache sync.Map // bombKey -> bomb

type bomb struct {
	data  []byte
	zeros int64
}

// zeroBomb returns a real stream of the given codec that decompresses to
// as many zeros as fit in room bytes of compressed data (at most 256 MiB
// of them), and their count. room is rounded down to a power of two so
// that the streams are few and cached.
func zeroBomb(codec, room int) ([]byte, int64) {
	r := 64
	for r*2 <= room {
		r *= 2
	}
	if room < 64 {
		r = room
	}
	k := bombKey{codec, r}
	if b, ok := bombCache.Load(k); ok {
		return b.(bomb).data, b.(bomb).zeros
	}
	n := int64(r) * 900 // deflate stores zeros at about 1000:1
	if codec >= bombZstd {
		n = int64(r) * 20000
	}
	n = min(n, 256<<20)
	var out []byte
	for i := 0; i < 8; i++ {
		out = compressZeros(codec, n)
		if len(out) <= r || n < 2 {
			break
		}
		n = n * int64(r) / int64(len(out)) * 9 / 10
	}
	bombCache.Store(k, bomb{out, n})
	return out, n
}

func compressZeros(codec int, n int64) []byte {
	var buf bytes.Buffer
	zeros := make([]byte, 1<<20)
	write := func(w interface{ Write([]byte) (int, error) }) {
		for left := n; left > 0; left -= int64(len(zeros)) {
			w.Write(zeros[:min(left, int64(len(zeros)))])
		}
	}
	switch codec {
	case bombZlib:
		w, _ := zlib.NewWriterLevel(&buf, zlib.BestCompression)
		write(w)
		w.Close()
	case bombDeflate:
		w, _ := flate.NewWriter(&buf, flate.BestCompression)
		write(w)
		w.Close()
	case bombZstd:
		w, _ := zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedBestCompression), zstd.WithEncoderConcurrency(1))
		write(w)
		w.Close()
	case bombZstdFCS:
		w, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression), zstd.WithEncoderConcurrency(1))
		out := w.EncodeAll(make([]byte, n), nil)
		w.Close()
		return out
	}
	return buf.Bytes()
}

// putBomb writes a zero bomb into [off, off+room) of file f and returns
// its length.
func (v *Variant) putBomb(f int, off, room int64, codec int, what string) int {
	b, n := zeroBomb(codec, int(min(room, 1<<20)))
	v.putIn(f, off, b)
	v.say("%s at %d%s replaced by a %d-byte %s stream of %d zeros", what, off, v.Base.fileLabel(f), len(b), bombNames[codec], n)
	return len(b)
}

// valuesOr picks a value from vals, or a boundary value of the width.
func (v *Variant) valuesOr(width int, vals ...uint64) uint64 {
	if len(vals) > 0 && v.R.IntN(3) != 0 {
		return pick(v.R, vals)
	}
	return v.hugeValue(width)
}

// --- E01 ---

func genE01Sections(v *Variant) {
	b := v.Base
	m := b.EWF
	all := m.sectionsOf("")
	s := m.Sections[pick(v.R, all)]
	size := b.Set[s.File].Size
	desc := fmt.Sprintf("%s section at %d of %s", s.Type, s.Off, b.Set[s.File].Name)
	fixDesc := func() {
		if v.fixSums() {
			ewfFixDesc(v, s.File, s.Off)
		}
	}
	switch op := v.R.IntN(10); op {
	case 0: // a loop: next points at the section itself or back
		to := uint64(s.Off)
		var back []int64
		for _, t := range m.Sections {
			if t.File == s.File && t.Off < s.Off {
				back = append(back, t.Off)
			}
		}
		if len(back) > 0 && v.R.IntN(2) == 0 {
			to = uint64(pick(v.R, back))
		}
		v.setFieldIn(s.File, s.Off, ewfDescFields[0], to, desc)
		if v.R.IntN(2) == 0 {
			v.setFieldIn(s.File, s.Off, ewfDescFields[1], to-uint64(s.Off), desc)
		}
		fixDesc()
	case 1: // next past the end, into the descriptor or the section's own data
		to := pick(v.R, []uint64{uint64(size), uint64(size) + 1, uint64(size) - 1, uint64(s.Off) + 1, uint64(s.Off) + 75,
			uint64(s.DataOff + s.DataLen/2), 0, 1 << 63, ^uint64(0), uint64(size) + 1<<32})
		v.setFieldIn(s.File, s.Off, ewfDescFields[0], to, desc)
		fixDesc()
	case 2: // skip the following section
		var next []EWFSection
		for _, t := range m.Sections {
			if t.File == s.File && t.Off > s.Off {
				next = append(next, t)
			}
		}
		if len(next) < 2 {
			v.hugeFieldIn(s.File, s.Off, ewfDescFields, desc)
		} else {
			to := next[1+v.R.IntN(len(next)-1)]
			v.setFieldIn(s.File, s.Off, ewfDescFields[0], uint64(to.Off), desc+" (skipping "+next[0].Type+")")
			if s.Size != 0 {
				v.setFieldIn(s.File, s.Off, ewfDescFields[1], uint64(to.Off-s.Off), desc)
			}
		}
		fixDesc()
	case 3: // size disagrees, or a boundary value in either field
		if v.R.IntN(2) == 0 {
			v.setFieldIn(s.File, s.Off, ewfDescFields[1], s.Next-uint64(s.Off)+pick(v.R, []uint64{1, ^uint64(0), 76, 1 << 32}), desc)
		} else {
			v.hugeFieldIn(s.File, s.Off, ewfDescFields, desc)
		}
		fixDesc()
	case 4: // another type
		names := []string{"done", "next", "table", "table2", "volume", "disk", "data", "sectors", "header", "header2", "xheader",
			"hash", "digest", "xhash", "error2", "session", "incomplete", "ltree", "", "\x01\x7f", "vol\x1b[2J", "\xff\xfe"}
		t := make([]byte, 16)
		name := pick(v.R, names)
		copy(t, name)
		v.putIn(s.File, s.Off, t)
		v.say("%s renamed %q", desc, name)
		fixDesc()
	case 5: // the file header
		f := v.R.IntN(len(b.Set))
		switch v.R.IntN(3) {
		case 0:
			v.setFieldIn(f, 0, Field{9, 2, "segment_number", false}, pick(v.R, []uint64{0, 1, 2, uint64(f), uint64(f + 2), uint64(len(b.Set) + 1), 99, 100, 0xffff}), "file header")
		case 1:
			v.flipIn(f, 0, 13)
		default:
			v.putIn(f, 0, []byte(pick(v.R, []string{"EVF2\x0d\x0a\x81\x00", "LVF\x09\x0d\x0a\xff\x00", "LEF2\x0d\x0a\x81\x00"})))
			v.say("signature of %s replaced", b.Set[f].Name)
		}
	case 6: // volume, disk or data section values, checksum recomputed
		vols := m.sectionsOf("volume", "disk", "data")
		vs := m.Sections[pick(v.R, vols)]
		what := fmt.Sprintf("%s section at %d", vs.Type, vs.Off)
		if v.R.IntN(2) == 0 {
			v.hugeFieldIn(vs.File, vs.DataOff, ewfVolFields, what)
		} else {
			f := pick(v.R, ewfVolFields[:4])
			old := v.getUintIn(vs.File, vs.DataOff+int64(f.Off), f.Width, false)
			v.setFieldIn(vs.File, vs.DataOff, f, old+pick(v.R, []uint64{1, ^uint64(0), old, 1 << 31}), what)
		}
		if vs.DataLen >= 1052 && v.fixSums() {
			ewfFixSum(v, vs.File, vs.DataOff, 1048)
		}
	case 7: // a segment cut at a section boundary, or anywhere
		f := v.R.IntN(len(b.Set))
		var cands []int64
		for _, t := range m.Sections {
			if t.File == f {
				cands = append(cands, t.Off, t.Off+76, t.DataOff+t.DataLen/2)
			}
		}
		if v.R.IntN(4) == 0 {
			v.Truncate = v.R.Int64N(b.Set[f].Size)
		} else {
			v.Truncate = max(0, min(pick(v.R, cands)+pick(v.R, []int64{0, 0, -1, 1, 12}), b.Set[f].Size-1))
		}
		v.TruncFile = f
		v.say("%s cut", b.Set[f].Name)
	case 8: // segment files missing, swapped, or leading out of the directory
		f := 1 + v.R.IntN(len(b.Set)-1)
		name := b.Set[f].Name
		switch v.R.IntN(8) {
		case 0:
			v.op(FileOp{Name: name, Kind: "remove"})
		case 1:
			v.op(FileOp{Name: name, Kind: "link", Link: OutsideDir + "/e01/" + name, Reason: "an identical copy outside the directory"})
		case 2:
			v.op(FileOp{Name: name, Kind: "link", Link: "../../outside/e01/" + name, Reason: "an identical copy outside the directory"})
		case 3:
			v.op(FileOp{Name: name, Kind: "link", Link: b.Set[pick(v.R, []int{0, f - 1, len(b.Set) - 1})].Name, Reason: "another segment"})
		case 4:
			v.op(FileOp{Name: name, Kind: "fifo"})
		case 5:
			v.op(FileOp{Name: name, Kind: "dir"})
		case 6:
			v.op(FileOp{Name: name, Kind: "link", Link: "/dev/zero"})
		default:
			v.op(FileOp{Name: name, Kind: "link", Link: "/proc/self/fd/0"})
		}
	default: // header and hash sections: a bomb, flipped bits
		hs := m.sectionsOf("header", "header2", "hash", "digest")
		t := m.Sections[pick(v.R, hs)]
		if (t.Type == "header" || t.Type == "header2") && v.R.IntN(2) == 0 {
			v.putBomb(t.File, t.DataOff, t.DataLen, bombZlib, t.Type+" section data")
		} else {
			v.flipIn(t.File, t.DataOff, t.DataLen)
			v.say("in the %s section at %d", t.Type, t.Off)
			if t.Type == "hash" || t.Type == "digest" {
				n := map[string]int{"hash": 32, "digest": 76}[t.Type]
				if v.fixSums() {
					ewfFixSum(v, t.File, t.DataOff, n)
				}
			}
		}
	}
}

func genE01Tables(v *Variant) {
	b := v.Base
	m := b.EWF
	hc := m.hotChunk(v)
	ti := hc.Table
	if m.Tables[ti].Mirror >= 0 && v.R.IntN(4) == 0 {
		ti = m.Tables[ti].Mirror // the table2 alone
	}
	t := m.Tables[ti]
	// The table alone (its table2 then stands in when its checksum fails),
	// or both copies alike.
	copies := []EWFTable{t}
	both := t.Mirror >= 0 && v.R.IntN(2) == 0
	if both {
		copies = append(copies, m.Tables[t.Mirror])
	}
	var said bool
	sayBoth := func() {
		if both && !said {
			v.say("table and its table2 alike")
			said = true
		}
	}
	name := func(c EWFTable) string {
		return fmt.Sprintf("%s at %d", m.Sections[c.Sec].Type, m.Sections[c.Sec].Off)
	}
	fixEntries := func() {
		if v.fixSums() {
			for _, c := range copies {
				ewfFixSum(v, c.File, c.Entries, c.Count*4)
			}
		}
	}
	entry := func(c EWFTable, i int) int64 { return c.Entries + int64(i)*4 }
	size := b.Set[t.File].Size
	switch op := v.R.IntN(9); op {
	case 0: // the header: entry count, base offset
		sayBoth()
		f := pick(v.R, ewfTableFields)
		var val uint64
		if f.Name == "entry_count" {
			val = v.valuesOr(4, 0, uint64(t.Count)-1, uint64(t.Count)+1, 1<<20, 1<<20+1, uint64(t.Count)*2)
		} else {
			val = v.valuesOr(8, uint64(size), uint64(size)-1, uint64(t.Base)+1, 1<<31, 1<<63)
		}
		for _, c := range copies {
			v.setFieldIn(c.File, m.Sections[c.Sec].DataOff, f, val, name(c))
		}
		if v.fixSums() {
			for _, c := range copies {
				ewfFixSum(v, c.File, m.Sections[c.Sec].DataOff, 20)
			}
		}
	case 1, 2: // an entry past the file, into metadata, onto another chunk
		sayBoth()
		i := hc.Index
		old := uint32(v.getUintIn(t.File, entry(t, i), 4, false))
		flag := old & (1 << 31)
		var targets []uint64
		for _, s := range m.Sections {
			if s.File == t.File {
				targets = append(targets, uint64(s.Off), uint64(s.DataOff))
			}
		}
		val := pick(v.R, []uint64{
			uint64(size), uint64(size) + 1, uint64(size) - 1, 0x7fffffff, 0, 13, // past the end, the file header
			pick(v.R, targets), // a section descriptor or data
			uint64(v.getUintIn(t.File, entry(t, (i+1)%t.Count), 4, false) & 0x7fffffff),                          // the next chunk's
			uint64(v.getUintIn(t.File, entry(t, max(i-1, 0)), 4, false) & 0x7fffffff),                            // the previous chunk's
			uint64(v.getUintIn(t.File, entry(t, v.R.IntN(t.Count)), 4, false)&0x7fffffff) + uint64(v.R.IntN(64)), // inside another
		})
		if val < 1<<31 && t.Base <= int64(val) {
			val -= uint64(t.Base)
		}
		for _, c := range copies {
			v.putUintIn(c.File, entry(c, i), 4, uint64(flag)|val&0x7fffffff, false)
		}
		v.say("%s entry %d: offset %d -> %d", name(t), i, old&0x7fffffff, val&0x7fffffff)
		fixEntries()
	case 3: // entries swapped, or in decreasing order
		sayBoth()
		i := v.R.IntN(max(t.Count-1, 1))
		j := min(i+1+v.R.IntN(4), t.Count-1)
		a, c2 := v.getIn(t.File, entry(t, i), 4), v.getIn(t.File, entry(t, j), 4)
		for _, c := range copies {
			v.putIn(c.File, entry(c, i), c2)
			v.putIn(c.File, entry(c, j), a)
		}
		v.say("%s entries %d and %d swapped", name(t), i, j)
		fixEntries()
	case 4: // the compressed flag toggled
		sayBoth()
		i := hc.Index
		for _, c := range copies {
			e := v.getUintIn(c.File, entry(c, i), 4, false)
			v.putUintIn(c.File, entry(c, i), 4, e^1<<31, false)
		}
		v.say("%s entry %d: compressed flag toggled", name(t), i)
		fixEntries()
	case 5: // flipped bits in entries, checksum maybe recomputed
		i := hc.Index
		v.flipIn(t.File, entry(t, i), int64(min(t.Count-i, 16))*4)
		v.say("in %s entries", name(t))
		fixEntries()
	case 6, 7: // a compressed chunk replaced by a bomb
		c := hc
		for i := 0; i < 8 && (!c.Compressed || c.Size < 64); i++ {
			c = m.hotChunk(v)
		}
		if v.R.IntN(4) == 0 {
			// A short stream: fewer bytes than the chunk holds.
			z, n := zeroBomb(bombZlib, int(c.Size))
			if n >= m.ChunkSize {
				var buf bytes.Buffer
				w := zlib.NewWriter(&buf)
				w.Write(make([]byte, m.ChunkSize/2))
				w.Close()
				z = buf.Bytes()
			}
			v.putIn(c.File, c.Off, z)
			v.say("chunk at %d: a stream of fewer zeros than the chunk", c.Off)
		} else {
			v.putBomb(c.File, c.Off, c.Size, bombZlib, fmt.Sprintf("chunk (%d bytes)", c.Size))
		}
	default: // flipped bits inside a chunk, or its checksum
		c := hc
		v.flipIn(c.File, c.Off, max(c.Size, 1))
		v.say("inside a chunk of %s", name(t))
		if !c.Compressed && c.Size > 4 && v.fixSums() {
			v.putUintIn(c.File, c.Off+c.Size-4, 4, uint64(adler32.Checksum(v.getIn(c.File, c.Off, int(c.Size-4)))), false)
		}
	}
}

// --- QCOW2 ---

func genQCOW2Header(v *Variant) {
	b := v.Base
	m := b.QCOW2
	switch v.R.IntN(7) {
	case 0:
		v.hugeField(0, qcow2HeaderFields, "qcow2 header")
	case 1: // boundary values of each field
		f := pick(v.R, qcow2HeaderFields)
		old := v.getUint(int64(f.Off), f.Width, true)
		vals := map[string][]uint64{
			"version":               {0, 1, 2, 4, 0xffffffff},
			"cluster_bits":          {0, 8, 9, 12, 21, 22, 31, 32, 63, 64},
			"size":                  {0, 1, 512, old - 1, old + 1, old * 2, 1 << 56, 1<<56 + 1, 1 << 63, 1 << 40},
			"l1_size":               {0, old - 1, old + 1, 1 << 22, 1 << 28, 0xffffffff},
			"l1_table_offset":       {0, 512, uint64(m.ClusterSize), uint64(m.RefTable), uint64(pick(v.R, m.L2Tables)), uint64(b.Size), uint64(b.Size+m.ClusterSize-1) &^ uint64(m.ClusterSize-1), 1 << 55},
			"header_length":         {0, 100, 104, 105, 120, uint64(m.ClusterSize), uint64(m.ClusterSize) + 8, 0xffffffff},
			"incompatible_features": {1, 2, 4, 8, 16, 32, 1 << 63, ^uint64(0)},
			"compression_type":      {1, 2, 255},
			"crypt_method":          {1, 2, 3},
			"nb_snapshots":          {1, 0xffffffff},
			"backing_file_size":     {1, 1023, 1024, 0xffffffff},
			"backing_file_offset":   {uint64(m.HeaderLen), uint64(m.ClusterSize) - 1, uint64(m.ClusterSize), uint64(b.Size), 1 << 63},
		}[f.Name]
		val := v.valuesOr(f.Width, vals...)
		v.setField(0, f, val, "qcow2 header")
		if f.Name == "compression_type" && v.R.IntN(2) == 0 {
			inc := v.getUint(72, 8, true)
			v.putUint(72, 8, inc|8, true)
			v.say("compression type feature bit set")
		}
	case 2: // a backing file, by a name that leads out of the directory
		name := pick(v.R, []string{"../../outside/escape-flat.raw", "/etc/shadow", "../x.qcow2", "node.qcow2", ".", "\x1b[2Jbacking\n", strings.Repeat("a/", 511) + "b"})
		at := int64(0x800)
		v.put(at, append([]byte(name), 0))
		v.putUint(8, 8, uint64(at), true)
		v.putUint(16, 4, uint64(len(name)), true)
		v.say("backing file %q at %d", name, at)
		if v.R.IntN(3) == 0 {
			v.setField(0, qcow2HeaderFields[2], v.hugeValue(4), "qcow2 header")
		}
	case 3: // header extensions
		if len(m.Exts) == 0 {
			v.hugeField(0, qcow2HeaderFields, "qcow2 header")
			return
		}
		e := pick(v.R, m.Exts)
		switch v.R.IntN(4) {
		case 0:
			v.setField(e.Off, Field{4, 4, "length", true}, v.valuesOr(4, 7, 9, uint64(m.ClusterSize), uint64(m.ClusterSize)-uint64(e.Off), 0xffffffff), "header extension")
		case 1:
			v.setField(e.Off, Field{0, 4, "type", true}, pick(v.R, []uint64{0, 0x44415441, 0xe2792aca, 0x6803f857, 0x23852875, 0x0537be77, 0x12345678}), "header extension")
		case 2: // an external data file named out of the directory
			name := "../../outside/escape-flat.raw"
			v.putUint(e.Off, 4, 0x44415441, true)
			v.putUint(e.Off+4, 4, uint64(len(name)), true)
			v.put(e.Off+8, []byte(name))
			v.put(e.Off+8+int64(len(name)+7)&^7, make([]byte, 8))
			inc := v.getUint(72, 8, true)
			v.putUint(72, 8, inc|4, true)
			v.say("external data file %q", name)
		default:
			v.flip(e.Off, 8+int64(e.Val&0xffffffff))
			v.say("in the header extension at %d", e.Off)
		}
	case 4: // truncated at a structure
		cands := []int64{0, 72, 104, m.HeaderLen, m.ClusterSize, m.L1Off, m.L1Off + 8, m.RefTable, b.Size - 1, b.Size - 512}
		cands = append(cands, pick(v.R, m.L2Tables), pick(v.R, m.L2Tables)+m.ClusterSize/2)
		c := pick(v.R, m.Compressed)
		cands = append(cands, c.Host, c.Host+c.Stored/2)
		v.Truncate = max(0, min(pick(v.R, cands), b.Size-1))
		v.say("cut at a qcow2 structure")
	default:
		v.flip(0, 112)
		v.say("in the qcow2 header")
	}
}

func genQCOW2Tables(v *Variant) {
	b := v.Base
	m := b.QCOW2
	cs := uint64(m.ClusterSize)
	meta := []uint64{uint64(m.L1Off), uint64(m.RefTable), uint64(pick(v.R, m.L2Tables)), cs}
	switch v.R.IntN(8) {
	case 0, 1: // an L1 entry
		e := pick(v.R, m.L1)
		val := pick(v.R, []uint64{
			0, uint64(b.Size), (uint64(b.Size) + cs) &^ (cs - 1), 1<<55 - cs, 512, // gone, past the end, unaligned
			uint64(pick(v.R, m.L1).Val),                      // two entries share an L2 table
			pick(v.R, meta),                                  // the L1 table itself, the refcount table, another L2 table
			uint64(pick(v.R, m.Compressed).Host) &^ (cs - 1), // compressed data read as a table
			e.Val | 1<<63, e.Val ^ 1<<62, ^uint64(0),
		})
		v.putUint(e.Off, 8, val, true)
		v.say("L1 entry at %d: %#x -> %#x", e.Off, e.Val, val)
	case 2: // an L2 entry made a standard one
		e := m.hotL2(v)
		host := pick(v.R, append(meta, uint64(b.Size), uint64(b.Size)+cs, 1<<55, cs+512, uint64(pick(v.R, m.Compressed).Host)&^(cs-1)))
		val := host | pick(v.R, []uint64{0, 1 << 63, 1}) // plain, copied flag, zero flag
		v.putUint(e.Off, 8, val, true)
		v.say("L2 entry at %d: %#x -> standard %#x", e.Off, e.Val, val)
	case 3: // a compressed cluster's descriptor
		c := m.hotCompressed(v)
		bits := 62 - (m.ClusterBits - 8)
		host := uint64(c.Host)
		sectors := (c.Entry.Val >> bits) & (1<<(m.ClusterBits-8) - 1)
		switch v.R.IntN(4) {
		case 0:
			host = pick(v.R, []uint64{0, 1, uint64(b.Size), uint64(b.Size) - 1, 1<<bits - 1, uint64(m.L1Off), 104})
		case 1:
			sectors = pick(v.R, []uint64{0, 1<<(m.ClusterBits-8) - 1, sectors + 1, sectors * 4})
		case 2:
			host = uint64(pick(v.R, m.Compressed).Host) // two clusters share one stream
		default:
			host += uint64(1 + v.R.IntN(64)) // into the middle of the stream
		}
		val := 1<<62 | sectors<<bits | host&(1<<bits-1)
		v.putUint(c.Entry.Off, 8, val, true)
		v.say("compressed L2 entry at %d: host %d, %d extra sectors (was %d, %d)", c.Entry.Off, host, sectors, c.Host, (c.Entry.Val>>bits)&(1<<(m.ClusterBits-8)-1))
	case 4, 5: // a compressed cluster replaced by a bomb
		c := m.hotCompressed(v)
		v.putBomb(0, c.Host, c.Stored, bombDeflate, "compressed cluster")
	case 6: // the image switched to zstd, with a zstd bomb in one cluster
		c := m.hotCompressed(v)
		if m.HeaderLen > 104 {
			v.putUint(104, 1, 1, true)
			inc := v.getUint(72, 8, true)
			v.putUint(72, 8, inc|8, true)
			v.say("compression_type zstd")
		}
		v.putBomb(0, c.Host, c.Stored, pick(v.R, []int{bombZstd, bombZstdFCS}), "compressed cluster")
	default: // flipped bits in an L2 table or a compressed stream
		if v.R.IntN(2) == 0 {
			e := m.hotL2(v)
			v.flip(e.Off, 8)
			v.say("in the L2 entry at %d", e.Off)
		} else {
			c := m.hotCompressed(v)
			v.flip(c.Host, max(c.Stored, 1))
			v.say("in the compressed cluster at %d", c.Host)
		}
	}
}

// --- VMDK ---

func genVMDKGrains(v *Variant) {
	b := v.Base
	m := b.VMDK
	f := m.File
	size := b.Set[f].Size
	sec := uint64(size / 512)
	gtSecs := make([]uint64, 0, len(m.GTs))
	for _, g := range m.GTs {
		gtSecs = append(gtSecs, uint64(g/512))
	}
	switch op := v.R.IntN(9); {
	case op == 0: // header or footer fields
		offs := []int64{0}
		if m.Footer >= 0 {
			offs = pick(v.R, [][]int64{{0}, {m.Footer}, {0, m.Footer}})
		}
		fld := pick(v.R, vmdkHeaderFields)
		val := v.hugeValue(fld.Width)
		for _, o := range offs {
			v.setFieldIn(f, o, fld, val, "sparse header")
		}
	case op == 1: // a grain directory entry
		e := pick(v.R, m.GD)
		val := pick(v.R, []uint64{0, 1, sec, sec + 1, 0xffffffff, uint64(m.GD[0].Off / 512), pick(v.R, gtSecs), uint64(pick(v.R, m.GT).Val)})
		v.putUintIn(f, e.Off, 4, val, false)
		v.say("grain directory entry at %d%s: %d -> %d", e.Off, b.fileLabel(f), e.Val, val)
	case op == 2 || op == 3: // a grain table entry
		e := m.hotGT(v)
		val := pick(v.R, []uint64{
			1, 2, sec, sec - 1, sec + 1, 0xffffffff, 0xfffffffe, // zeroed without the flag, the descriptor, past the end
			uint64(m.GD[0].Off / 512), pick(v.R, gtSecs), // the grain directory, a grain table
			uint64(pick(v.R, m.GT).Val), // two entries share a grain
			e.Val + 1,                   // into the middle of a grain
		})
		v.putUintIn(f, e.Off, 4, val, false)
		v.say("grain table entry at %d%s: %d -> %d", e.Off, b.fileLabel(f), e.Val, val)
	case op == 4 && m.Markers: // a grain marker
		g := m.hotGrain(v)
		if v.R.IntN(3) == 0 {
			v.setFieldIn(f, g.Off, Field{0, 8, "lba", false}, v.hugeValue(8), "grain marker")
		} else {
			v.setFieldIn(f, g.Off, Field{8, 4, "size", false}, v.valuesOr(4, 0, 1, uint64(g.Len)+1, uint64(g.Room), uint64(g.Room)+1, uint64(m.GrainSize)*2, 0xffffffff), "grain marker")
		}
	case (op == 5 || op == 6) && len(m.Grains) > 0: // a grain replaced by a bomb
		g := m.hotGrain(v)
		at, room := g.Off, g.Room
		if m.Markers {
			at, room = at+12, room-12
		}
		n := v.putBomb(f, at, room, bombZlib, "grain")
		if m.Markers {
			v.putUintIn(f, g.Off+8, 4, uint64(n), false)
		}
	case op == 7 && len(m.Grains) > 0: // flipped bits in a compressed grain
		g := m.hotGrain(v)
		v.flipIn(f, g.Off+12, max(g.Len, 1))
	default: // cut at a structure
		cands := []int64{512, m.GD[0].Off, m.GD[0].Off + 4, pick(v.R, m.GTs), size - 512, size - 1024, size - 1536}
		if len(m.Grains) > 0 {
			g := pick(v.R, m.Grains)
			cands = append(cands, g.Off, g.Off+12, g.Off+g.Room/2)
		}
		v.Truncate = max(0, min(pick(v.R, cands), size-1))
		v.TruncFile = f
		v.say("cut at a VMDK structure")
	}
}

// escapeExtents are extent names that lead out of the descriptor's
// directory, with the type that reads the escape target there.
var escapeExtents = []struct{ name, typ string }{
	{"../../outside/escape-sparse.vmdk", "SPARSE"},
	{"../../outside/escape-flat.raw", "FLAT"},
	{OutsideDir + "/escape-sparse.vmdk", "SPARSE"},
	{OutsideDir + "/escape-flat.raw", "FLAT"},
	{"./../../outside/escape-sparse.vmdk", "SPARSE"},
	{"sub/../../../outside/escape-flat.raw", "FLAT"},
	{`..\..\outside\escape-flat.raw`, "FLAT"},
	{"../x.vmdk", "SPARSE"},
	{"/etc/shadow", "FLAT"},
	{"/etc/passwd", "FLAT"},
	{"/dev/zero", "FLAT"},
	{"/proc/self/environ", "FLAT"},
	{`C:\outside\escape-flat.raw`, "FLAT"},
	{"//outside/escape-flat.raw", "FLAT"},
}

func genVMDKDescriptor(v *Variant) {
	b := v.Base
	m := b.VMDKDesc
	lines := strings.Split(m.Text, "\n")
	var ext VMDKExtentLine
	if m.Embedded {
		for i, l := range lines {
			if f := strings.Fields(l); len(f) >= 4 && f[0] == "RW" {
				ext = VMDKExtentLine{Line: i, Access: "RW", Type: f[2], Name: strings.Trim(f[3], `"`)}
				fmt.Sscan(f[1], &ext.Sectors)
			}
		}
	} else {
		ext = m.Extents[0]
	}
	line := func(access string, sectors any, typ, name string, rest ...string) string {
		s := fmt.Sprintf("%s %v %s %q", access, sectors, typ, name)
		if name == "" && typ == "ZERO" {
			s = fmt.Sprintf("%s %v %s", access, sectors, typ)
		}
		if len(rest) > 0 {
			s += " " + strings.Join(rest, " ")
		}
		return s
	}
	setLine := func(s string) { lines[ext.Line] = s }
	extentFile := ""
	if !m.Embedded {
		extentFile = b.Set[1].Name
	}
	escape := func() {
		e := pick(v.R, escapeExtents)
		if m.Embedded && strings.Contains(e.name, OutsideDir) {
			e = escapeExtents[v.R.IntN(2)] // a patch cannot hold the absolute path
		}
		setLine(line("RW", ext.Sectors, e.typ, e.name))
		v.say("extent %q (%s)", e.name, e.typ)
	}
	switch op := v.R.IntN(12); {
	case op <= 2: // an extent name leading out of the directory
		escape()
	case op == 3 && !m.Embedded: // the extent file leads out through a symlink
		switch v.R.IntN(6) {
		case 0:
			v.op(FileOp{Name: extentFile, Kind: "link", Link: OutsideDir + "/escape-sparse.vmdk", Reason: "out of the directory"})
		case 1:
			v.op(FileOp{Name: extentFile, Kind: "link", Link: "../../outside/escape-sparse.vmdk", Reason: "out of the directory"})
		case 2:
			v.op(FileOp{Name: "d", Kind: "link", Link: OutsideDir, Reason: "a directory out of it"})
			setLine(line("RW", ext.Sectors, "SPARSE", "d/escape-sparse.vmdk"))
			v.say("extent %q", "d/escape-sparse.vmdk")
		case 3:
			v.op(FileOp{Name: "d", Kind: "link", Link: "..", Reason: "the parent directory"})
			name := "d/" + b.Name + "/" + extentFile
			setLine(line("RW", ext.Sectors, "SPARSE", name))
			v.say("extent %q", name)
		case 4:
			v.op(FileOp{Name: "alias.vmdk", Kind: "link", Link: extentFile, Reason: "inside the directory: readable"})
			setLine(line("RW", ext.Sectors, "SPARSE", "alias.vmdk"))
			v.say("extent %q", "alias.vmdk")
		default:
			v.op(FileOp{Name: extentFile, Kind: "link", Link: "/proc/self/root" + OutsideDir + "/escape-sparse.vmdk", Reason: "through /proc"})
		}
	case op == 4 && !m.Embedded: // the extent file is not a file
		v.op(FileOp{Name: extentFile, Kind: pick(v.R, []string{"fifo", "dir", "remove"})})
	case op == 4 || op == 5: // sizes and offsets
		sz := pick(v.R, []string{"0", "-1", "1", "abc", "17592186044416", "17592186044417", "9223372036854775807", "99999999999999999999",
			fmt.Sprint(ext.Sectors - 1), fmt.Sprint(ext.Sectors + 1), fmt.Sprint(ext.Sectors * 2)})
		switch v.R.IntN(3) {
		case 0:
			setLine(line(ext.Access, sz, ext.Type, ext.Name))
		case 1:
			setLine(line(ext.Access, ext.Sectors, "FLAT", ext.Name, sz))
		default:
			setLine(line(ext.Access, sz, "FLAT", ext.Name, "0"))
		}
		v.say("extent line %q", lines[ext.Line])
	case op == 6: // types and access modes
		t := pick(v.R, []string{"FLAT", "ZERO", "VMFS", "VMFSSPARSE", "SESPARSE", "VMFSRDM", "VMFSRAW", "sparse", "UNKNOWN", ""})
		a := pick(v.R, []string{ext.Access, ext.Access, "RDONLY", "NOACCESS", "XX"})
		setLine(line(a, ext.Sectors, t, ext.Name))
		v.say("extent line %q", lines[ext.Line])
	case op == 7: // many extents
		n := pick(v.R, []int{2, 100, 4096, 4097, 10000})
		var ls []string
		for i := 0; i < n; i++ {
			if v.R.IntN(2) == 0 && i > 0 {
				ls = append(ls, line("RW", 17592186044416/2, "ZERO", ""))
			} else {
				ls = append(ls, line("RW", ext.Sectors, ext.Type, ext.Name))
			}
		}
		setLine(strings.Join(ls, "\n"))
		v.say("%d extent lines", n)
	case op == 8: // a parent, named out of the directory
		lines = append(lines[:1], append([]string{"parentCID=1234abcd", `parentFileNameHint="` + pick(v.R, []string{"../../outside/escape-sparse.vmdk", "/etc/shadow", "node.vmdk"}) + `"`}, lines[1:]...)...)
		v.say("a delta disk with a parent")
	case op == 9: // names with control characters, invalid UTF-8, very long
		name := pick(v.R, []string{"\x1b[2J\x1b[Hnode.vmdk", "node\rx.vmdk", "\xff\xfe.vmdk", "\u202egnp.vmdk", strings.Repeat("n", 5000), "a\x00b"})
		setLine(line(ext.Access, ext.Sectors, ext.Type, name))
		v.say("extent name %q", name)
	case op == 10 && m.Embedded: // the sparse file becomes a descriptor holder: its extents are other files
		for _, o := range []int64{0, b.VMDK.Footer} {
			if o >= 0 {
				v.putUintIn(b.VMDK.File, o+12, 8, 0, false)
			}
		}
		v.say("capacity 0: the embedded descriptor names the extents")
		if v.R.IntN(3) == 0 {
			setLine(line("RW", ext.Sectors, "SPARSE", b.Set[0].Name)) // itself
			v.say("the extent is the file itself")
		} else {
			escape()
		}
	default: // garbage in the descriptor
		text := []byte(strings.Join(lines, "\n"))
		p := v.R.IntN(len(text))
		for i := 0; i < 1+v.R.IntN(8); i++ {
			text[(p+i)%len(text)] = pick(v.R, []byte{0, '"', '\n', '=', 0xff, ' ', '\r'})
		}
		lines = strings.Split(string(text), "\n")
		v.say("bytes of the descriptor around %d replaced", p)
	}
	text := strings.Join(lines, "\n")
	if !m.Embedded {
		if v.R.IntN(16) == 0 {
			text += strings.Repeat("#", 1<<20) // larger than a descriptor may be
			v.say("padded past 1 MiB")
		}
		v.op(FileOp{Name: b.Set[0].Name, Kind: "replace", Data: []byte(text), Reason: "descriptor"})
		return
	}
	d := []byte(text)
	if int64(len(d)) > m.Room {
		d = d[:m.Room]
	}
	d = append(d, make([]byte, int(m.Room)-len(d))...)
	v.putIn(b.VMDK.File, m.Off, d)
	v.say("embedded descriptor rewritten")
}

// --- VHD ---

func genVHDBAT(v *Variant) {
	b := v.Base
	m := b.VHD
	sec := uint64(b.Size / 512)
	footers := func() []int64 {
		return pick(v.R, [][]int64{{m.Footer}, {0, m.Footer}, {0, m.Footer}, {0}})
	}
	fixFooters := func(fs []int64) {
		if v.fixSums() {
			for _, o := range fs {
				vhdFix(v, o, 512, 64)
			}
		}
	}
	switch v.R.IntN(8) {
	case 0, 1, 2: // BAT entries
		e := m.hotBAT(v)
		val := pick(v.R, []uint64{
			sec, sec - 1, sec + 1, 0xfffffffe, // past the end, the footer
			0, 1, uint64(m.Dyn / 512), uint64(m.BATOff / 512), // the footer copy, the header, the BAT
			pick(v.R, m.BAT).Val, e.Val + 1, e.Val - 1, // shared, shifted
		})
		v.putUint(e.Off, 4, val, true)
		v.say("BAT entry at %d: %d -> %d", e.Off, e.Val, val)
	case 3: // dynamic header fields
		f := pick(v.R, vhdDynFields)
		old := v.getUint(m.Dyn+int64(f.Off), f.Width, true)
		vals := map[string][]uint64{
			"block_size":        {0, 511, 512, 513, 1 << 20, 3 << 20, 1 << 28, 1 << 29, 0xffffffff},
			"max_table_entries": {0, old - 1, 0xffffffff, 1 << 30},
			"table_offset":      {0, 512, uint64(m.Dyn), uint64(b.Size), uint64(b.Size) - 512, 1 << 63},
		}[f.Name]
		v.setField(m.Dyn, f, v.valuesOr(f.Width, vals...), "dynamic header")
		if v.fixSums() {
			vhdFix(v, m.Dyn, 1024, 36)
		}
	case 4: // footer fields
		f := pick(v.R, vhdFooterFields)
		old := v.getUint(m.Footer+int64(f.Off), f.Width, true)
		vals := map[string][]uint64{
			"current_size": {0, 1, 511, old + 512, old * 2, uint64(m.BATLen)*uint64(m.BlockSize) + 1, 1 << 44, 1<<44 + 1, 1 << 63},
			"disk_type":    {0, 1, 2, 4, 5, 0xffffffff},
			"data_offset":  {0, 1, ^uint64(0), uint64(b.Size), uint64(b.Size) - 512, uint64(m.BATOff)},
		}[f.Name]
		val := v.valuesOr(f.Width, vals...)
		fs := footers()
		for _, o := range fs {
			v.setField(o, f, val, "footer")
		}
		fixFooters(fs)
	case 5: // a differencing disk whose parent is named out of the directory
		fs := []int64{0, m.Footer}
		for _, o := range fs {
			v.putUint(o+60, 4, 4, true)
		}
		name := pick(v.R, []string{"../../outside/escape-flat.raw", "/etc/shadow", "node.vhd", "\x1b[2J"})
		u := make([]byte, 512)
		for i, c := range name {
			if 2*i+1 < len(u) {
				u[2*i], u[2*i+1] = byte(c>>8), byte(c)
			}
		}
		v.put(m.Dyn+64, u)
		v.say("differencing disk, parent %q", name)
		vhdFix(v, m.Dyn, 1024, 36)
		for _, o := range fs {
			vhdFix(v, o, 512, 64)
		}
	case 6: // cut
		bat := pick(v.R, m.BAT)
		cands := []int64{512, m.Dyn + 512, m.BATOff, m.BATOff + int64(m.BATLen)*2, m.Footer, m.Footer + 1, int64(bat.Val) * 512, int64(bat.Val)*512 + m.BitmapLen + m.BlockSize/2}
		v.Truncate = max(0, min(pick(v.R, cands), b.Size-1))
		v.say("cut at a VHD structure")
	default: // flipped bits, checksums left
		o := pick(v.R, []int64{0, m.Footer, m.Dyn})
		v.flip(o, 512)
	}
}

// --- VHDX ---

func genVHDXRegions(v *Variant) {
	b := v.Base
	m := b.VHDX
	mib := uint64(1 << 20)
	switch v.R.IntN(9) {
	case 0: // headers
		hs := pick(v.R, [][]int64{{64 << 10}, {128 << 10}, {64 << 10, 128 << 10}})
		f := pick(v.R, vhdxHeaderFields)
		val := v.hugeValue(f.Width)
		for _, h := range hs {
			v.setField(h, f, val, "VHDX header")
		}
		if v.fixSums() {
			for _, h := range hs {
				vhdxFix(v, h, 4096)
			}
		}
	case 1, 2: // region table entries
		e := pick(v.R, m.Regions)
		tbl := e.Off &^ (64<<10 - 1)
		f := pick(v.R, vhdxRegionFields)
		vals := map[string][]uint64{
			"file_offset": {0, 4096, 64 << 10, mib - 1, uint64(m.BATOff), uint64(m.MetaOff), uint64(b.Size), uint64(b.Size) + mib, 1 << 63},
			"length":      {0, 1, mib, uint64(m.BATLen) + mib, uint64(b.Size), 0xffffffff},
			"required":    {0, 1, 0xffffffff},
		}[f.Name]
		v.setField(e.Off, f, v.valuesOr(f.Width, vals...), "region table entry")
		if v.R.IntN(3) == 0 {
			v.setField(tbl, Field{8, 4, "entry_count", false}, v.valuesOr(4, 0, 1, 3, 2047, 2048, 0xffffffff), "region table")
		}
		if v.fixSums() {
			vhdxFix(v, tbl, 64<<10)
		}
	case 3: // metadata table entries
		e := pick(v.R, m.Meta)
		f := pick(v.R, vhdxMetaFields)
		vals := map[string][]uint64{
			"offset": {0, 1, 64 << 10, uint64(m.MetaLen) - 1, uint64(m.MetaLen), 0xffffffff},
			"length": {0, 1, 4, 64 << 10, 64<<10 + 1, uint64(m.MetaLen), 0xffffffff},
			"flags":  {4, 0xffffffff},
		}[f.Name]
		v.setField(e.Off, f, v.valuesOr(f.Width, vals...), "metadata table entry")
		if v.R.IntN(4) == 0 {
			v.setField(m.MetaOff, Field{10, 2, "entry_count", false}, v.valuesOr(2, 0, 2047, 2048, 0xffff), "metadata table")
		}
	case 4, 5: // metadata item values
		names := sortedKeys(m.Items)
		name := pick(v.R, names)
		at := m.Items[name]
		switch name {
		case "file_parameters":
			if v.R.IntN(2) == 0 {
				v.setField(at, Field{0, 4, "block_size", false}, v.valuesOr(4, 0, 1<<19, 3<<20, 1<<28, 1<<29, 0xffffffff), name)
			} else {
				v.setField(at, Field{4, 4, "flags", false}, pick(v.R, []uint64{1, 2, 3, 0xffffffff}), name)
			}
		case "virtual_disk_size":
			old := v.getUint(at, 8, false)
			v.setField(at, Field{0, 8, "size", false}, v.valuesOr(8, 0, 1, 511, old+512, old*2, 64<<40, 64<<40+512, 1<<63), name)
		default:
			v.setField(at, Field{0, 4, "size", false}, v.valuesOr(4, 0, 513, 4096, 1<<31), name)
		}
	case 6, 7: // BAT entries
		e := m.hotBAT(v)
		state := e.Val & 7
		off := e.Val >> 20
		switch v.R.IntN(3) {
		case 0:
			state = uint64(v.R.IntN(8))
		case 1:
			off = pick(v.R, []uint64{0, 1, uint64(m.MetaOff) >> 20, uint64(m.BATOff) >> 20, uint64(b.Size) >> 20, uint64(b.Size)>>20 + 1, pick(v.R, m.BAT).Val >> 20, 1<<44 - 1})
		default:
			if len(m.Bitmaps) > 0 && v.R.IntN(2) == 0 {
				bm := pick(v.R, m.Bitmaps)
				v.putUint(bm, 8, 6|1<<20, false)
				v.say("sector bitmap entry at %d set", bm)
				return
			}
			v.flip(e.Off, 8)
			return
		}
		val := off<<20 | state
		v.putUint(e.Off, 8, val, false)
		v.say("BAT entry at %d: %#x -> %#x", e.Off, e.Val, val)
	default: // cut
		bat := pick(v.R, m.BAT)
		cands := []int64{64 << 10, 192 << 10, 1 << 20, m.MetaOff, m.BATOff, m.BATOff + 8*int64(len(m.BAT)), int64(bat.Val>>20) << 20, int64(bat.Val>>20)<<20 + m.BlockSize/2}
		v.Truncate = max(0, min(pick(v.R, cands), b.Size-1))
		v.say("cut at a VHDX structure")
	}
}

// --- for regression tests ---

// SetUint sets the width-byte integer at off of file f (0 for a one-file
// base) in the variant.
func (v *Variant) SetUint(f int, off int64, width int, val uint64, bigEndian bool) {
	v.putUintIn(f, off, width, val, bigEndian)
	v.say("%d-byte value at %d%s set to %d", width, off, v.Base.fileLabel(f), val)
}

// E01SetTableCount sets the entry count of table t of an E01 base and of
// its table2 mirror, header checksums recomputed.
func E01SetTableCount(v *Variant, t int, count uint32) {
	m := v.Base.EWF
	for _, i := range []int{t, m.Tables[t].Mirror} {
		if i < 0 {
			continue
		}
		x := m.Tables[i]
		at := m.Sections[x.Sec].DataOff
		v.setFieldIn(x.File, at, ewfTableFields[0], uint64(count), "table")
		ewfFixSum(v, x.File, at, 20)
	}
}

// VHDXFixCRC recomputes the CRC-32C of the n-byte VHDX structure at off
// (a 4 KiB header, a 64 KiB region table).
func VHDXFixCRC(v *Variant, off int64, n int) { vhdxFix(v, off, n) }
