//go:build linux

package hostile

import (
	"hash/crc32"
	"io"
)

// GPT header fields (UEFI 2.10 §5.3.2) and partition entry fields (§5.3.3).
var (
	gptHeaderFields = []Field{
		{8, 4, "revision", false}, {12, 4, "header_size", false}, {16, 4, "header_crc32", false},
		{24, 8, "my_lba", false}, {32, 8, "alternate_lba", false}, {40, 8, "first_usable_lba", false},
		{48, 8, "last_usable_lba", false}, {72, 8, "partition_entry_lba", false},
		{80, 4, "num_partition_entries", false}, {84, 4, "sizeof_partition_entry", false},
		{88, 4, "partition_entry_array_crc32", false},
	}
	gptEntryFields = []Field{{32, 8, "starting_lba", false}, {40, 8, "ending_lba", false}, {48, 8, "attributes", false}}
	mbrEntryFields = []Field{{4, 1, "type", false}, {8, 4, "start_lba", false}, {12, 4, "num_sectors", false}, {0, 1, "status", false}}
)

// GPTCopy is one of the two copies of a GPT: header and entry array.
type GPTCopy struct {
	HeaderOff  int64
	EntriesOff int64
	NumEntries int
	EntrySize  int
	Used       []int // indexes of used entries
}

// GPTMap locates both copies of a disk's GPT.
type GPTMap struct {
	SectorSize int
	Primary    GPTCopy
	Backup     GPTCopy
	HaveBackup bool
}

func readGPTCopy(r io.ReaderAt, off int64, ss int) (GPTCopy, bool) {
	h, err := readFull(r, off, 92)
	if err != nil || string(h[:8]) != "EFI PART" {
		return GPTCopy{}, false
	}
	c := GPTCopy{HeaderOff: off, EntriesOff: int64(le.Uint64(h[72:])) * int64(ss), NumEntries: int(le.Uint32(h[80:])), EntrySize: int(le.Uint32(h[84:]))}
	if c.NumEntries > 1024 || c.EntrySize < 128 || c.EntrySize > 4096 {
		return GPTCopy{}, false
	}
	ents, err := readFull(r, c.EntriesOff, c.NumEntries*c.EntrySize)
	if err != nil {
		return GPTCopy{}, false
	}
	for i := 0; i < c.NumEntries; i++ {
		e := ents[i*c.EntrySize:]
		for _, b := range e[:16] {
			if b != 0 {
				c.Used = append(c.Used, i)
				break
			}
		}
	}
	return c, true
}

// mapGPT finds the GPT of a disk of the given size, or nil.
func mapGPT(r io.ReaderAt, size int64) *GPTMap {
	for _, ss := range []int{512, 4096} {
		p, ok := readGPTCopy(r, int64(ss), ss)
		if !ok {
			continue
		}
		m := &GPTMap{SectorSize: ss, Primary: p}
		h, _ := readFull(r, int64(ss), 92)
		alt := int64(le.Uint64(h[32:])) * int64(ss)
		if alt+int64(ss) <= size {
			m.Backup, m.HaveBackup = readGPTCopy(r, alt, ss)
		}
		return m
	}
	return nil
}

// gptFixCRCs returns patches that make the CRCs of copy c right again
// after the patches already in v (entry array CRC first, then header CRC).
func gptFixCRCs(v *Variant, c GPTCopy) {
	img := v.view()
	h, err := readFull(img, c.HeaderOff, 92)
	if err != nil {
		return
	}
	n, es := int(le.Uint32(h[80:])), int(le.Uint32(h[84:]))
	eoff := int64(le.Uint64(h[72:])) * int64(v.Base.GPT.SectorSize)
	if n > 0 && es > 0 && n*es <= 1<<20 {
		if ents, err := readFull(img, eoff, n*es); err == nil {
			v.put32(c.HeaderOff+88, crc32.ChecksumIEEE(ents))
		}
	}
	hs := int(le.Uint32(h[12:]))
	if hs < 92 || hs > v.Base.GPT.SectorSize {
		hs = 92
	}
	hdr, err := readFull(v.view(), c.HeaderOff, hs)
	if err != nil {
		return
	}
	clear(hdr[16:20])
	v.put32(c.HeaderOff+16, crc32.ChecksumIEEE(hdr))
}

// MBRMap locates the MBR and the EBRs of its extended partition chain.
type MBRMap struct {
	Entries []int64 // file offsets of the 16-byte entries of the MBR
	EBRs    []int64 // file offsets of each EBR's sector
}

func mapMBR(r io.ReaderAt, size int64) *MBRMap {
	b, err := readFull(r, 0, 512)
	if err != nil || b[510] != 0x55 || b[511] != 0xAA {
		return nil
	}
	m := &MBRMap{}
	var ext uint64
	for i := 0; i < 4; i++ {
		e := b[446+i*16:]
		m.Entries = append(m.Entries, int64(446+i*16))
		if t := e[4]; t == 0x05 || t == 0x0F || t == 0x85 {
			ext = uint64(le.Uint32(e[8:]))
		}
		if e[4] == 0xEE {
			return nil // protective MBR: the disk is GPT
		}
	}
	for ebr, i := ext, 0; ebr != 0 && i < 64; i++ {
		off := int64(ebr) * 512
		if off+512 > size {
			break
		}
		m.EBRs = append(m.EBRs, off)
		s, err := readFull(r, off, 512)
		if err != nil {
			break
		}
		next := uint64(le.Uint32(s[446+16+8:]))
		if next == 0 {
			break
		}
		ebr = ext + next
	}
	return m
}
