//go:build linux

package hostile

import (
	"bytes"
	"fmt"
	"hash/adler32"
)

// EWF version 1 (E01) layout, as ewfacquire writes it: every segment file
// starts with a 13-byte header, then a chain of sections, each a 76-byte
// descriptor (type, next, size, Adler-32) and its data.

// EWFSection is one section of a segment file.
type EWFSection struct {
	File    int // index into Base.Set
	Off     int64
	Type    string
	Next    uint64
	Size    uint64
	DataOff int64
	DataLen int64
}

// EWFTable is a table (or table2) section: its header and entries.
type EWFTable struct {
	File    int
	Sec     int   // index into EWFMap.Sections
	Entries int64 // file offset of the entry array
	Count   int
	Base    int64
	Table2  bool
	Mirror  int   // for a table: index of its table2 in EWFMap.Tables, -1 if none
	DataEnd int64 // end of the chunk data of the sectors section before it
}

// EWFChunk is where one chunk is stored.
type EWFChunk struct {
	File       int
	Table      int // index into EWFMap.Tables
	Index      int // entry of that table
	Off, Size  int64
	Compressed bool
}

// EWFMap locates the structures of an E01 segment file set.
type EWFMap struct {
	Sections  []EWFSection
	Tables    []EWFTable
	Chunks    []EWFChunk
	Volume    int // index of the volume section in Sections
	ChunkSize int64
}

// EWF field layouts: the volume section's data, a table header.
var (
	ewfDescFields = []Field{{16, 8, "next", false}, {24, 8, "size", false}}
	ewfVolFields  = []Field{
		{4, 4, "chunk_count", false}, {8, 4, "sectors_per_chunk", false}, {12, 4, "bytes_per_sector", false},
		{16, 8, "sector_count", false}, {52, 1, "compression_level", false}, {56, 4, "error_granularity", false},
	}
	ewfTableFields = []Field{{0, 4, "entry_count", false}, {8, 8, "base_offset", false}}
)

func mapEWF(b *Base) (*EWFMap, error) {
	m := &EWFMap{Volume: -1}
	for fi, sf := range b.Set {
		r := sf.f
		hdr, err := readFull(r, 0, 13)
		if err != nil {
			return nil, err
		}
		if !bytes.HasPrefix(hdr, []byte("EVF\x09\x0d\x0a\xff\x00")) {
			return nil, fmt.Errorf("%s: not an E01 segment", sf.Name)
		}
		dataEnd := int64(-1)
		for off, n := int64(13), 0; ; n++ {
			if n > 100000 || off+76 > sf.Size {
				return nil, fmt.Errorf("%s: section chain runs off at %d", sf.Name, off)
			}
			d, err := readFull(r, off, 76)
			if err != nil {
				return nil, err
			}
			typ := string(bytes.TrimRight(d[:16], "\x00"))
			s := EWFSection{File: fi, Off: off, Type: typ, Next: le.Uint64(d[16:]), Size: le.Uint64(d[24:]), DataOff: off + 76}
			if typ == "done" || typ == "next" {
				m.Sections = append(m.Sections, s)
				break
			}
			if s.Next <= uint64(off) || s.Next > uint64(sf.Size) {
				return nil, fmt.Errorf("%s: section %q at %d: next %d", sf.Name, typ, off, s.Next)
			}
			s.DataLen = int64(s.Next) - s.DataOff
			m.Sections = append(m.Sections, s)
			si := len(m.Sections) - 1
			switch typ {
			case "volume", "disk":
				if m.Volume < 0 {
					m.Volume = si
					v, err := readFull(r, s.DataOff, 20)
					if err != nil {
						return nil, err
					}
					m.ChunkSize = int64(le.Uint32(v[8:])) * int64(le.Uint32(v[12:]))
				}
			case "sectors":
				dataEnd = int64(s.Next)
			case "table", "table2":
				h, err := readFull(r, s.DataOff, 24)
				if err != nil {
					return nil, err
				}
				t := EWFTable{File: fi, Sec: si, Entries: s.DataOff + 24, Count: int(le.Uint32(h)), Base: int64(le.Uint64(h[8:])),
					Table2: typ == "table2", Mirror: -1, DataEnd: dataEnd}
				if t.Count > 1<<20 || int64(t.Count)*4 > s.DataLen {
					return nil, fmt.Errorf("%s: table at %d: %d entries", sf.Name, off, t.Count)
				}
				m.Tables = append(m.Tables, t)
				ti := len(m.Tables) - 1
				if t.Table2 {
					if ti > 0 && !m.Tables[ti-1].Table2 && m.Tables[ti-1].File == fi {
						m.Tables[ti-1].Mirror = ti
					}
					break
				}
				ents, err := readFull(r, t.Entries, t.Count*4)
				if err != nil {
					return nil, err
				}
				for i := 0; i < t.Count; i++ {
					e := le.Uint32(ents[i*4:])
					start := t.Base + int64(e&0x7fffffff)
					end := dataEnd
					if i+1 < t.Count {
						end = t.Base + int64(le.Uint32(ents[(i+1)*4:])&0x7fffffff)
					}
					m.Chunks = append(m.Chunks, EWFChunk{File: fi, Table: ti, Index: i, Off: start, Size: end - start, Compressed: e&(1<<31) != 0})
				}
			}
			off = int64(s.Next)
		}
	}
	if m.Volume < 0 || len(m.Tables) == 0 || len(m.Chunks) == 0 {
		return nil, fmt.Errorf("E01: %d tables, %d chunks, volume %d", len(m.Tables), len(m.Chunks), m.Volume)
	}
	return m, nil
}

// hotChunk picks a chunk, most often one that ctrlift reads.
func (m *EWFMap) hotChunk(v *Variant) EWFChunk {
	if off, ok := v.hot(); ok {
		if i := off / m.ChunkSize; i < int64(len(m.Chunks)) {
			return m.Chunks[i]
		}
	}
	return pick(v.R, m.Chunks)
}

// sectionsOf returns the indexes of the sections whose type is one of types
// ("" matches every section but done and next).
func (m *EWFMap) sectionsOf(types ...string) []int {
	var out []int
	for i, s := range m.Sections {
		for _, t := range types {
			if s.Type == t || t == "" && s.Type != "done" && s.Type != "next" {
				out = append(out, i)
				break
			}
		}
	}
	return out
}

// ewfFixDesc recomputes the Adler-32 of the section descriptor at off of
// file f, as the variant has it.
func ewfFixDesc(v *Variant, f int, off int64) {
	d := v.getIn(f, off, 72)
	v.putUintIn(f, off+72, 4, uint64(adler32.Checksum(d)), false)
}

// ewfFixSum recomputes an Adler-32 over [off, off+n) of file f stored
// right after it.
func ewfFixSum(v *Variant, f int, off int64, n int) {
	v.putUintIn(f, off+int64(n), 4, uint64(adler32.Checksum(v.getIn(f, off, n))), false)
}
