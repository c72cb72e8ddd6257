//go:build linux

package hostile

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"strconv"
	"strings"
)

var be = binary.BigEndian

// TableEntry is one entry of a block map (an L1 or L2 entry, a grain
// directory or table entry, a BAT entry): where it is and what it holds.
type TableEntry struct {
	Off int64
	Val uint64
}

// --- QCOW2 (qemu docs/interop/qcow2.txt; big-endian) ---

// QCOW2Map locates the structures of a qcow2 image.
type QCOW2Map struct {
	ClusterBits uint
	ClusterSize int64
	HeaderLen   int64
	Exts        []TableEntry // header extensions: file offset, type<<32 | length
	L1Off       int64
	L1          []TableEntry // non-zero entries
	L2Tables    []int64
	L2          []TableEntry // non-zero entries of every L2 table
	Compressed  []QCOW2Cluster
	RefTable    int64

	l2Of  map[int64]int64 // L1 index -> L2 table offset
	l2Idx map[int64]int   // L2 entry offset -> index in L2
	cIdx  map[int64]int   // L2 entry offset -> index in Compressed
}

// l2At returns the L2 entry mapping guest offset off, if allocated.
func (m *QCOW2Map) l2At(off int64) (TableEntry, bool) {
	cluster := off >> m.ClusterBits
	per := m.ClusterSize / 8
	l2, ok := m.l2Of[cluster/per]
	if !ok {
		return TableEntry{}, false
	}
	i, ok := m.l2Idx[l2+cluster%per*8]
	if !ok {
		return TableEntry{}, false
	}
	return m.L2[i], true
}

// hotL2 picks an L2 entry, most often one mapping a guest offset that
// ctrlift reads.
func (m *QCOW2Map) hotL2(v *Variant) TableEntry {
	if off, ok := v.hot(); ok {
		if e, ok := m.l2At(off); ok {
			return e
		}
	}
	return pick(v.R, m.L2)
}

// hotCompressed picks a compressed cluster, most often one that ctrlift
// reads.
func (m *QCOW2Map) hotCompressed(v *Variant) QCOW2Cluster {
	if off, ok := v.hot(); ok {
		if e, ok := m.l2At(off); ok {
			if i, ok := m.cIdx[e.Off]; ok {
				return m.Compressed[i]
			}
		}
	}
	return pick(v.R, m.Compressed)
}

// QCOW2Cluster is a compressed cluster: its L2 entry, where its bytes are
// and how many may be stored.
type QCOW2Cluster struct {
	Entry  TableEntry
	Host   int64
	Stored int64
}

var qcow2HeaderFields = []Field{
	{4, 4, "version", true}, {8, 8, "backing_file_offset", true}, {16, 4, "backing_file_size", true},
	{20, 4, "cluster_bits", true}, {24, 8, "size", true}, {32, 4, "crypt_method", true},
	{36, 4, "l1_size", true}, {40, 8, "l1_table_offset", true}, {48, 8, "refcount_table_offset", true},
	{56, 4, "refcount_table_clusters", true}, {60, 4, "nb_snapshots", true}, {64, 8, "snapshots_offset", true},
	{72, 8, "incompatible_features", true}, {80, 8, "compatible_features", true}, {88, 8, "autoclear_features", true},
	{96, 4, "refcount_order", true}, {100, 4, "header_length", true}, {104, 1, "compression_type", true},
}

func mapQCOW2(r io.ReaderAt, size int64) (*QCOW2Map, error) {
	h, err := readFull(r, 0, 112)
	if err != nil {
		return nil, err
	}
	if string(h[:4]) != "QFI\xfb" || be.Uint32(h[4:]) != 3 {
		return nil, fmt.Errorf("qcow2: not a version 3 image")
	}
	m := &QCOW2Map{ClusterBits: uint(be.Uint32(h[20:])), HeaderLen: int64(be.Uint32(h[100:])),
		l2Of: map[int64]int64{}, l2Idx: map[int64]int{}, cIdx: map[int64]int{}}
	m.ClusterSize = 1 << m.ClusterBits
	m.L1Off = int64(be.Uint64(h[40:]))
	m.RefTable = int64(be.Uint64(h[48:]))
	l1n := int(be.Uint32(h[36:]))
	if l1n > 1<<20 {
		return nil, fmt.Errorf("qcow2: %d L1 entries", l1n)
	}
	first, err := readFull(r, 0, int(min(m.ClusterSize, size)))
	if err != nil {
		return nil, err
	}
	for off := m.HeaderLen; off+8 <= int64(len(first)); {
		typ, n := be.Uint32(first[off:]), be.Uint32(first[off+4:])
		m.Exts = append(m.Exts, TableEntry{off, uint64(typ)<<32 | uint64(n)})
		if typ == 0 {
			break
		}
		off += 8 + (int64(n)+7)&^7
	}
	l1, err := readFull(r, m.L1Off, l1n*8)
	if err != nil {
		return nil, err
	}
	const mask = 0x00fffffffffffe00
	for i := 0; i < l1n; i++ {
		e := be.Uint64(l1[i*8:])
		if e == 0 {
			continue
		}
		m.L1 = append(m.L1, TableEntry{m.L1Off + int64(i)*8, e})
		l2Off := int64(e & mask)
		m.l2Of[int64(i)] = l2Off
		m.L2Tables = append(m.L2Tables, l2Off)
		t, err := readFull(r, l2Off, int(m.ClusterSize))
		if err != nil {
			return nil, err
		}
		for j := int64(0); j < m.ClusterSize/8; j++ {
			x := be.Uint64(t[j*8:])
			if x == 0 {
				continue
			}
			te := TableEntry{l2Off + j*8, x}
			m.l2Idx[te.Off] = len(m.L2)
			m.L2 = append(m.L2, te)
			if x&(1<<62) != 0 {
				m.cIdx[te.Off] = len(m.Compressed)
				bits := 62 - (m.ClusterBits - 8)
				host := int64(x & (1<<bits - 1))
				sectors := int64(x>>bits) & (1<<(m.ClusterBits-8) - 1)
				m.Compressed = append(m.Compressed, QCOW2Cluster{te, host, (sectors+1)*512 - host%512})
			}
		}
	}
	if len(m.L2) == 0 || len(m.Compressed) == 0 {
		return nil, fmt.Errorf("qcow2: %d L2 entries, %d compressed", len(m.L2), len(m.Compressed))
	}
	return m, nil
}

// --- VMDK hosted sparse extents (VMware Virtual Disk Format 5.0; little-endian) ---

// VMDKMap locates the structures of a VMDK sparse extent.
type VMDKMap struct {
	File      int   // index into Base.Set
	Footer    int64 // file offset of the footer's copy of the header, -1 if none
	GrainSize int64 // bytes
	GTEs      int
	GD        []TableEntry // non-zero grain directory entries
	GTs       []int64      // grain table file offsets
	GT        []TableEntry // non-zero grain table entries
	Markers   bool         // stream-optimized: grains have a 12-byte marker
	Grains    []VMDKGrain  // compressed grains
	Desc      string       // embedded descriptor text
	DescOff   int64
	DescRoom  int64 // bytes the embedded descriptor area holds
	Size      int64

	gtOf     map[int64]int64 // grain directory index -> grain table offset
	gtIdx    map[int64]int   // grain table entry offset -> index in GT
	grainIdx map[int64]int   // grain table entry offset -> index in Grains
}

// gtAt returns the grain table entry mapping guest offset off (of the
// extent), if allocated.
func (m *VMDKMap) gtAt(off int64) (TableEntry, bool) {
	g := off / m.GrainSize
	gt, ok := m.gtOf[g/int64(m.GTEs)]
	if !ok {
		return TableEntry{}, false
	}
	i, ok := m.gtIdx[gt+g%int64(m.GTEs)*4]
	if !ok {
		return TableEntry{}, false
	}
	return m.GT[i], true
}

func (m *VMDKMap) hotGT(v *Variant) TableEntry {
	if off, ok := v.hot(); ok {
		if e, ok := m.gtAt(off); ok {
			return e
		}
	}
	return pick(v.R, m.GT)
}

func (m *VMDKMap) hotGrain(v *Variant) VMDKGrain {
	if off, ok := v.hot(); ok {
		if e, ok := m.gtAt(off); ok {
			if i, ok := m.grainIdx[e.Off]; ok {
				return m.Grains[i]
			}
		}
	}
	return pick(v.R, m.Grains)
}

// VMDKGrain is a compressed grain: its marker and the room up to the next
// structure.
type VMDKGrain struct {
	Entry TableEntry // its grain table entry
	Off   int64      // marker (or stream) file offset
	Room  int64      // bytes up to the next sector-aligned structure
	Len   int64      // compressed length from the marker
}

var vmdkHeaderFields = []Field{
	{4, 4, "version", false}, {8, 4, "flags", false}, {12, 8, "capacity", false}, {20, 8, "grainSize", false},
	{28, 8, "descriptorOffset", false}, {36, 8, "descriptorSize", false}, {44, 4, "numGTEsPerGT", false},
	{48, 8, "rgdOffset", false}, {56, 8, "gdOffset", false}, {64, 8, "overHead", false}, {77, 2, "compressAlgorithm", false},
}

func mapVMDKSparse(b *Base, file int) (*VMDKMap, error) {
	sf := b.Set[file]
	r := sf.f
	h, err := readFull(r, 0, 512)
	if err != nil {
		return nil, err
	}
	if string(h[:4]) != "KDMV" {
		return nil, fmt.Errorf("vmdk: %s is not a sparse extent", sf.Name)
	}
	m := &VMDKMap{File: file, Footer: -1, Size: sf.Size, gtOf: map[int64]int64{}, gtIdx: map[int64]int{}, grainIdx: map[int64]int{}}
	m.DescOff, m.DescRoom = int64(le.Uint64(h[28:]))*512, int64(le.Uint64(h[36:]))*512
	if m.DescOff > 0 {
		d, err := readFull(r, m.DescOff, int(m.DescRoom))
		if err != nil {
			return nil, err
		}
		m.Desc, _, _ = strings.Cut(string(d), "\x00")
	}
	if le.Uint64(h[56:]) == ^uint64(0) {
		m.Footer = sf.Size - 1024
		if h, err = readFull(r, m.Footer, 512); err != nil {
			return nil, err
		}
	}
	flags := le.Uint32(h[8:])
	m.Markers = flags&(1<<17) != 0
	compressed := le.Uint16(h[77:]) == 1
	capacity := int64(le.Uint64(h[12:])) * 512
	m.GrainSize = int64(le.Uint64(h[20:])) * 512
	m.GTEs = int(le.Uint32(h[44:]))
	gdOff := int64(le.Uint64(h[56:])) * 512
	if m.GrainSize <= 0 || m.GTEs <= 0 || m.GTEs > 4096 {
		return nil, fmt.Errorf("vmdk: grain %d, %d GTEs", m.GrainSize, m.GTEs)
	}
	gdn := int((capacity + m.GrainSize*int64(m.GTEs) - 1) / (m.GrainSize * int64(m.GTEs)))
	gd, err := readFull(r, gdOff, gdn*4)
	if err != nil {
		return nil, err
	}
	var starts []int64 // of every structure, to size the grains' room
	for i := 0; i < gdn; i++ {
		e := le.Uint32(gd[i*4:])
		if e == 0 {
			continue
		}
		m.GD = append(m.GD, TableEntry{gdOff + int64(i)*4, uint64(e)})
		gtOff := int64(e) * 512
		m.gtOf[int64(i)] = gtOff
		m.GTs = append(m.GTs, gtOff)
		starts = append(starts, gtOff)
		gt, err := readFull(r, gtOff, m.GTEs*4)
		if err != nil {
			return nil, err
		}
		for j := 0; j < m.GTEs; j++ {
			x := le.Uint32(gt[j*4:])
			if x == 0 || x == 1 && flags&(1<<2) != 0 {
				continue
			}
			te := TableEntry{gtOff + int64(j)*4, uint64(x)}
			m.gtIdx[te.Off] = len(m.GT)
			m.GT = append(m.GT, te)
			starts = append(starts, int64(x)*512)
			if compressed {
				g := VMDKGrain{Entry: te, Off: int64(x) * 512}
				if m.Markers {
					mk, err := readFull(r, g.Off, 12)
					if err != nil {
						return nil, err
					}
					g.Len = int64(le.Uint32(mk[8:]))
				}
				m.grainIdx[te.Off] = len(m.Grains)
				m.Grains = append(m.Grains, g)
			}
		}
	}
	starts = append(starts, gdOff, sf.Size)
	if m.Footer >= 0 {
		starts = append(starts, m.Footer-512)
	}
	for i := range m.Grains {
		g := &m.Grains[i]
		next := sf.Size
		for _, s := range starts {
			if s > g.Off && s < next {
				next = s
			}
		}
		g.Room = next - g.Off
	}
	if len(m.GT) == 0 {
		return nil, fmt.Errorf("vmdk: no grains")
	}
	return m, nil
}

// VMDKDescMap is a VMDK descriptor: a file of its own (Set[0]) or the
// text embedded in a sparse extent (Off, Room).
type VMDKDescMap struct {
	Embedded bool
	Text     string
	Off      int64 // embedded: file offset of the text
	Room     int64 // embedded: bytes available
	Extents  []VMDKExtentLine
}

// VMDKExtentLine is an extent line of a descriptor.
type VMDKExtentLine struct {
	Line    int // index in the text's lines
	Access  string
	Sectors int64
	Type    string
	Name    string
}

func mapVMDKDesc(b *Base) (*VMDKDescMap, error) {
	d, err := readFull(b.Set[0].f, 0, int(b.Set[0].Size))
	if err != nil {
		return nil, err
	}
	m := &VMDKDescMap{Text: string(d)}
	m.Extents = parseVMDKExtents(m.Text)
	if len(m.Extents) != 1 || m.Extents[0].Name != b.Set[1].Name {
		return nil, fmt.Errorf("vmdk: descriptor extents %+v", m.Extents)
	}
	return m, nil
}

func parseVMDKExtents(text string) []VMDKExtentLine {
	var out []VMDKExtentLine
	for i, l := range strings.Split(text, "\n") {
		f := strings.Fields(l)
		if len(f) < 4 || f[0] != "RW" && f[0] != "RDONLY" {
			continue
		}
		n, _ := strconv.ParseInt(f[1], 10, 64)
		out = append(out, VMDKExtentLine{Line: i, Access: f[0], Sectors: n, Type: f[2], Name: strings.Trim(f[3], `"`)})
	}
	return out
}

// --- VHD (Virtual Hard Disk Image Format Specification; big-endian) ---

// VHDMap locates the structures of a dynamic VHD.
type VHDMap struct {
	Footer    int64 // at the end; the copy is at 0
	Dyn       int64 // dynamic header
	BATOff    int64
	BATLen    int
	BlockSize int64
	BitmapLen int64
	BAT       []TableEntry // allocated entries
	batIdx    map[int64]int
}

func (m *VHDMap) hotBAT(v *Variant) TableEntry {
	if off, ok := v.hot(); ok {
		if i, ok := m.batIdx[m.BATOff+off/m.BlockSize*4]; ok {
			return m.BAT[i]
		}
	}
	return pick(v.R, m.BAT)
}

var (
	vhdFooterFields = []Field{
		{8, 4, "features", true}, {12, 4, "version", true}, {16, 8, "data_offset", true},
		{40, 8, "original_size", true}, {48, 8, "current_size", true}, {60, 4, "disk_type", true},
	}
	vhdDynFields = []Field{
		{8, 8, "data_offset", true}, {16, 8, "table_offset", true}, {24, 4, "header_version", true},
		{28, 4, "max_table_entries", true}, {32, 4, "block_size", true},
	}
)

func mapVHD(r io.ReaderAt, size int64) (*VHDMap, error) {
	m := &VHDMap{Footer: size - 512, batIdx: map[int64]int{}}
	ft, err := readFull(r, m.Footer, 512)
	if err != nil {
		return nil, err
	}
	if string(ft[:8]) != "conectix" || be.Uint32(ft[60:]) != 3 {
		return nil, fmt.Errorf("vhd: not a dynamic disk")
	}
	m.Dyn = int64(be.Uint64(ft[16:]))
	dh, err := readFull(r, m.Dyn, 1024)
	if err != nil {
		return nil, err
	}
	m.BATOff = int64(be.Uint64(dh[16:]))
	m.BATLen = int(be.Uint32(dh[28:]))
	m.BlockSize = int64(be.Uint32(dh[32:]))
	m.BitmapLen = (m.BlockSize/512/8 + 511) / 512 * 512
	if m.BATLen > 1<<22 {
		return nil, fmt.Errorf("vhd: %d BAT entries", m.BATLen)
	}
	bat, err := readFull(r, m.BATOff, m.BATLen*4)
	if err != nil {
		return nil, err
	}
	for i := 0; i < m.BATLen; i++ {
		if e := be.Uint32(bat[i*4:]); e != 0xffffffff {
			m.batIdx[m.BATOff+int64(i)*4] = len(m.BAT)
			m.BAT = append(m.BAT, TableEntry{m.BATOff + int64(i)*4, uint64(e)})
		}
	}
	if len(m.BAT) == 0 {
		return nil, fmt.Errorf("vhd: no allocated block")
	}
	return m, nil
}

// vhdSum is the VHD checksum: the ones' complement of the byte sum, the
// field at at counted as zero.
func vhdSum(b []byte, at int) uint32 {
	var s uint32
	for i, c := range b {
		if i < at || i >= at+4 {
			s += uint32(c)
		}
	}
	return ^s
}

// vhdFix recomputes the checksum of the n-byte structure at off whose
// checksum field is at at.
func vhdFix(v *Variant, off int64, n, at int) {
	v.putUint(off+int64(at), 4, uint64(vhdSum(v.get(off, n), at)), true)
}

// --- VHDX ([MS-VHDX]; little-endian, CRC-32C) ---

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// VHDXMap locates the structures of a VHDX.
type VHDXMap struct {
	Regions   []TableEntry // region table entries (file offsets) of both tables
	BATOff    int64
	BATLen    int64
	MetaOff   int64
	MetaLen   int64
	Meta      []TableEntry // metadata table entries (file offsets)
	Items     map[string]int64
	BlockSize int64
	Chunk     int64        // entries per chunk: chunk ratio + 1 (the sector bitmap entry)
	BAT       []TableEntry // non-zero payload entries
	Bitmaps   []int64      // file offsets of sector bitmap entries
	batIdx    map[int64]int
}

func (m *VHDXMap) hotBAT(v *Variant) TableEntry {
	if off, ok := v.hot(); ok {
		blk := off / m.BlockSize
		if i, ok := m.batIdx[m.BATOff+(blk+blk/(m.Chunk-1))*8]; ok {
			return m.BAT[i]
		}
	}
	return pick(v.R, m.BAT)
}

var (
	vhdxHeaderFields = []Field{{8, 8, "sequence", false}, {48, 8, "log_guid", false}, {64, 2, "log_version", false},
		{66, 2, "version", false}, {68, 4, "log_length", false}, {72, 8, "log_offset", false}}
	vhdxRegionFields = []Field{{16, 8, "file_offset", false}, {24, 4, "length", false}, {28, 4, "required", false}, {0, 8, "guid", false}}
	vhdxMetaFields   = []Field{{16, 4, "offset", false}, {20, 4, "length", false}, {24, 4, "flags", false}, {0, 8, "item_id", false}}
)

// VHDX GUIDs as stored (mixed-endian).
var (
	vhdxBATGUID  = guidBytes("2DC27766-F623-4200-9D64-115E9BFD4A08")
	vhdxMetaGUID = guidBytes("8B7CA206-4790-4B9A-B8FE-575F050F886E")
	vhdxItems    = map[string]string{
		"file_parameters":     "CAA16737-FA36-4D43-B3B6-33F0AA44E76B",
		"virtual_disk_size":   "2FA54224-CD1B-4876-B211-5DBED83BF4B8",
		"logical_sector_size": "8141BF1D-A96F-4709-BA47-F233A8FAAB5F",
	}
)

func guidBytes(s string) string {
	h := strings.ReplaceAll(s, "-", "")
	var b [16]byte
	for i := range b {
		x, _ := strconv.ParseUint(h[2*i:2*i+2], 16, 8)
		b[i] = byte(x)
	}
	// Data1, Data2, Data3 little-endian.
	b[0], b[1], b[2], b[3] = b[3], b[2], b[1], b[0]
	b[4], b[5] = b[5], b[4]
	b[6], b[7] = b[7], b[6]
	return string(b[:])
}

func mapVHDX(r io.ReaderAt, size int64) (*VHDXMap, error) {
	m := &VHDXMap{Items: map[string]int64{}, batIdx: map[int64]int{}}
	for _, rt := range []int64{192 << 10, 256 << 10} {
		t, err := readFull(r, rt, 64<<10)
		if err != nil {
			return nil, err
		}
		n := int(le.Uint32(t[8:]))
		if string(t[:4]) != "regi" || n > 2047 {
			return nil, fmt.Errorf("vhdx: region table at %d", rt)
		}
		for i := 0; i < n; i++ {
			e := t[16+i*32:]
			m.Regions = append(m.Regions, TableEntry{rt + 16 + int64(i)*32, 0})
			off, l := int64(le.Uint64(e[16:])), int64(le.Uint32(e[24:]))
			switch string(e[:16]) {
			case vhdxBATGUID:
				m.BATOff, m.BATLen = off, l
			case vhdxMetaGUID:
				m.MetaOff, m.MetaLen = off, l
			}
		}
	}
	t, err := readFull(r, m.MetaOff, 64<<10)
	if err != nil {
		return nil, err
	}
	n := int(le.Uint16(t[10:]))
	if string(t[:8]) != "metadata" || n > 2047 {
		return nil, fmt.Errorf("vhdx: metadata table")
	}
	var logical int64
	for i := 0; i < n; i++ {
		e := t[32+i*32:]
		m.Meta = append(m.Meta, TableEntry{m.MetaOff + 32 + int64(i)*32, 0})
		item := m.MetaOff + int64(le.Uint32(e[16:]))
		for name, g := range vhdxItems {
			if string(e[:16]) == guidBytes(g) {
				m.Items[name] = item
				x, err := readFull(r, item, 8)
				if err != nil {
					return nil, err
				}
				switch name {
				case "file_parameters":
					m.BlockSize = int64(le.Uint32(x))
				case "logical_sector_size":
					logical = int64(le.Uint32(x))
				}
			}
		}
	}
	if m.BlockSize == 0 || logical == 0 || len(m.Items) != len(vhdxItems) {
		return nil, fmt.Errorf("vhdx: metadata items %v", m.Items)
	}
	m.Chunk = (1<<23)*logical/m.BlockSize + 1
	bat, err := readFull(r, m.BATOff, int(m.BATLen))
	if err != nil {
		return nil, err
	}
	for i := int64(0); i < m.BATLen/8; i++ {
		off := m.BATOff + i*8
		if (i+1)%m.Chunk == 0 {
			m.Bitmaps = append(m.Bitmaps, off)
			continue
		}
		if e := le.Uint64(bat[i*8:]); e != 0 {
			m.batIdx[off] = len(m.BAT)
			m.BAT = append(m.BAT, TableEntry{off, e})
		}
	}
	if len(m.BAT) == 0 {
		return nil, fmt.Errorf("vhdx: empty BAT")
	}
	return m, nil
}

// vhdxFix recomputes the CRC-32C (at +4) of the n-byte structure at off.
func vhdxFix(v *Variant, off int64, n int) {
	b := v.get(off, n)
	clear(b[4:8])
	v.putUint(off+4, 4, uint64(crc32.Checksum(b, castagnoli)), false)
}
