//go:build linux

package hostile

import (
	"bytes"
	"encoding/binary"
)

// sqliteLayout is where the structures of a SQLite database file are, as
// the pristine db.sql has them (the file format of sqlite.org/fileformat2):
// the 100-byte header, then pages of PageSize bytes, each a b-tree page
// (page 1's header after the file header) or an overflow or free page.
type sqliteLayout struct {
	PageSize int64
	Pages    []sqlitePage // b-tree pages
}

type sqlitePage struct {
	Num   int64
	Off   int64 // of the page in the file
	Hdr   int64 // of its b-tree header in the file
	Kind  byte  // 2, 5 (interior index, table), 10, 13 (leaf index, table)
	Cells []int64
}

// parseSQLite maps the b-tree pages of a SQLite file; nil when data is no
// SQLite database.
func parseSQLite(data []byte) *sqliteLayout {
	if len(data) < 512 || !bytes.HasPrefix(data, []byte("SQLite format 3\x00")) {
		return nil
	}
	ps := int64(binary.BigEndian.Uint16(data[16:]))
	if ps == 1 {
		ps = 65536
	}
	if ps < 512 || ps&(ps-1) != 0 {
		return nil
	}
	l := &sqliteLayout{PageSize: ps}
	for n := int64(1); n*ps <= int64(len(data)); n++ {
		off := (n - 1) * ps
		hdr := off
		if n == 1 {
			hdr = 100
		}
		kind := data[hdr]
		if kind != 2 && kind != 5 && kind != 10 && kind != 13 {
			continue
		}
		ncells := int64(binary.BigEndian.Uint16(data[hdr+3:]))
		ptrs := hdr + 8
		if kind == 2 || kind == 5 {
			ptrs += 4
		}
		p := sqlitePage{Num: n, Off: off, Hdr: hdr, Kind: kind}
		for i := int64(0); i < ncells && ptrs+2*i+2 <= off+ps; i++ {
			c := int64(binary.BigEndian.Uint16(data[ptrs+2*i:]))
			if c > 0 && c < ps {
				p.Cells = append(p.Cells, off+c)
			}
		}
		l.Pages = append(l.Pages, p)
	}
	if len(l.Pages) == 0 {
		return nil
	}
	return l
}

// sqliteHeaderFields are fields of the 100-byte file header (offset,
// width) and values that matter to a reader: page size, the WAL flags,
// reserved bytes, the page count, the freelist, the schema format and
// the text encoding.
var sqliteHeaderFields = []struct {
	name  string
	off   int64
	width int
	vals  []uint64
}{
	{"page size", 16, 2, []uint64{0, 1, 3, 511, 1024, 0x8000, 0xFFFF}},
	{"write version", 18, 1, []uint64{0, 2, 3, 255}},
	{"read version", 19, 1, []uint64{0, 2, 3, 255}},
	{"reserved bytes", 20, 1, []uint64{255, 200, 32}},
	{"page count", 28, 4, []uint64{0, 1, 0x7FFFFFFF, 0xFFFFFFFF}},
	{"freelist trunk", 32, 4, []uint64{1, 2, 0xFFFFFFFF}},
	{"freelist pages", 36, 4, []uint64{0xFFFFFFFF, 1000000}},
	{"schema format", 44, 4, []uint64{0, 5, 0xFFFFFFFF}},
	{"text encoding", 56, 4, []uint64{2, 3, 7}},
}

// schemaNames are the names in Podman's CREATE TABLE statements that a
// variant renames (same length) so the schema is not Podman's.
var schemaNames = []string{"ContainerConfig", "ContainerState", "PodConfig", "PodState", "VolumeConfig", "DBConfig", "JSON", "PodID", "ExitCode"}

// genPodmanSQLite damages Podman 5's db.sql: bytes flipped in b-tree
// pages, a b-tree page header or cell pointer made huge, a cell's payload
// size made huge (a row far larger than its page, read through overflow
// pages that are not there), a file header field changed, a table or
// column of the schema renamed, or the file cut short.
func genPodmanSQLite(v *Variant) {
	f := pick(v.R, v.Base.PodmanSQLite)
	l := parseSQLite(f.Data)
	if l == nil {
		v.Skip = true
		return
	}
	put := func(off int64, width int, val uint64) {
		b := make([]byte, 8)
		binary.BigEndian.PutUint64(b, val)
		v.filePut(f.Inode, off, b[8-width:])
	}
	switch k := v.R.IntN(7); k {
	case 0:
		p := pick(v.R, l.Pages)
		n := 1 + v.R.IntN(16)
		for i := 0; i < n; i++ {
			at := p.Off + v.R.Int64N(l.PageSize)
			c := v.fileGet(f.Inode, at, 1)
			c[0] ^= byte(1 + v.R.IntN(255))
			v.filePut(f.Inode, at, c)
		}
		v.say("%s: %d bytes changed in page %d", f.Path, n, p.Num)
	case 1:
		p := pick(v.R, l.Pages)
		fields := []struct {
			name  string
			off   int64
			width int
		}{{"page type", 0, 1}, {"first freeblock", 1, 2}, {"cell count", 3, 2}, {"content start", 5, 2}, {"fragmented bytes", 7, 1}}
		if p.Kind == 2 || p.Kind == 5 {
			fields = append(fields, struct {
				name  string
				off   int64
				width int
			}{"right child", 8, 4})
		}
		fd := pick(v.R, fields)
		val := v.hugeValue(fd.width)
		if fd.name == "page type" {
			val = uint64(pick(v.R, []byte{0, 1, 2, 5, 10, 13, 255}))
		}
		put(p.Hdr+fd.off, fd.width, val)
		v.say("%s: page %d %s = %d", f.Path, p.Num, fd.name, val)
	case 2:
		p := pick(v.R, l.Pages)
		ptrs := p.Hdr + 8
		if p.Kind == 2 || p.Kind == 5 {
			ptrs += 4
		}
		if len(p.Cells) == 0 {
			v.Skip = true
			return
		}
		i := v.R.IntN(len(p.Cells))
		val := uint64(pick(v.R, []int64{0, 1, 99, l.PageSize - 1, 0xFFFF, p.Cells[v.R.IntN(len(p.Cells))] - p.Off}))
		put(ptrs+2*int64(i), 2, val)
		v.say("%s: page %d cell pointer %d = %d", f.Path, p.Num, i, val)
	case 3:
		// A huge row: the payload-size varint of a table leaf cell made
		// its largest for its length (every continuation bit set).
		var cells []int64
		for _, p := range l.Pages {
			if p.Kind == 13 {
				cells = append(cells, p.Cells...)
			}
		}
		if len(cells) == 0 {
			v.Skip = true
			return
		}
		at := pick(v.R, cells)
		n := int64(0)
		for n < 9 && at+n < int64(len(f.Data)) && f.Data[at+n]&0x80 != 0 {
			n++
		}
		n++
		b := bytes.Repeat([]byte{0xFF}, int(n))
		b[n-1] = 0x7F
		v.filePut(f.Inode, at, b)
		v.say("%s: cell at %d claims a payload of %d-byte varint 0x%x", f.Path, at, n, b)
	case 4:
		fd := pick(v.R, sqliteHeaderFields)
		val := pick(v.R, fd.vals)
		put(fd.off, fd.width, val)
		v.say("%s: header %s = %d", f.Path, fd.name, val)
	case 5:
		name := pick(v.R, schemaNames)
		first := f.Data
		var hits []int
		for i := 0; ; {
			j := bytes.Index(first[i:], []byte(name))
			if j < 0 {
				break
			}
			hits = append(hits, i+j)
			i += j + 1
		}
		if len(hits) == 0 {
			v.Skip = true
			return
		}
		at := pick(v.R, hits)
		v.filePut(f.Inode, int64(at+len(name)-1), []byte{'X'})
		v.say("%s: %s at %d in the schema renamed", f.Path, name, at)
	default:
		var size int64
		if v.R.IntN(2) == 0 {
			size = l.PageSize * v.R.Int64N(int64(len(f.Data))/l.PageSize+1)
		} else {
			size = v.R.Int64N(int64(len(f.Data)) + 1)
		}
		v.filePutSize(f.Inode, size)
		v.say("%s: cut to %d of %d bytes", f.Path, size, len(f.Data))
	}
}
