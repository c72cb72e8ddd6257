package qcow2

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/ctrlift/ctrlift/image/vdisk"
)

// mapper resolves guest offsets through the L1 and L2 tables.
type mapper struct {
	file        io.ReaderAt
	fileSize    int64
	clusterBits uint
	clusterSize int64
	extendedL2  bool
	entryLen    int64 // bytes per L2 entry
	l2Bits      uint  // log2 of entries per L2 table
	l1          []uint64
	l2Cache     *vdisk.Cache
	codec       vdisk.Codec
}

// Map implements vdisk.Mapper.
func (m *mapper) Map(off int64) (vdisk.Extent, error) {
	cluster := off >> m.clusterBits
	within := off & (m.clusterSize - 1)
	l1i := cluster >> m.l2Bits
	l2i := cluster & (1<<m.l2Bits - 1)
	restOfL1Entry := (l1i+1)<<(m.l2Bits+m.clusterBits) - off
	if l1i >= int64(len(m.l1)) {
		return vdisk.Extent{Kind: vdisk.ExtentBacking, Len: restOfL1Entry}, nil
	}
	l2Off := int64(m.l1[l1i] & l1OffsetMask)
	if l2Off == 0 {
		return vdisk.Extent{Kind: vdisk.ExtentBacking, Len: restOfL1Entry}, nil
	}
	table, err := m.l2Table(l2Off, l1i)
	if err != nil {
		return vdisk.Extent{}, err
	}
	entries := int64(1) << m.l2Bits
	entryAt := func(i int64) uint64 { return binary.BigEndian.Uint64(table[i*m.entryLen:]) }
	entryOff := l2Off + l2i*m.entryLen
	e := entryAt(l2i)

	if e&l2Compressed != 0 {
		x := 62 - (m.clusterBits - 8)
		host := int64(e & (1<<x - 1))
		extraSectors := int64(e>>x) & (1<<(m.clusterBits-8) - 1)
		stored := (extraSectors+1)*compressedSectorSize - host%compressedSectorSize
		if host == 0 || host >= m.fileSize {
			return vdisk.Extent{}, &FormatError{"L2 entry", entryOff, fmt.Sprintf("compressed cluster at byte %d outside the file (%d bytes)", host, m.fileSize)}
		}
		return vdisk.Extent{Kind: vdisk.ExtentCompressed, Len: m.clusterSize - within, Offset: host,
			Codec: m.codec, StoredLen: stored, BlockLen: m.clusterSize, Within: within}, nil
	}

	if m.extendedL2 {
		return m.mapSubclusters(e, binary.BigEndian.Uint64(table[l2i*m.entryLen+8:]), entryOff, within)
	}

	// Standard entries: extend the run over following entries of the same
	// kind, so long holes and contiguous data are one extent.
	kind, host, err := m.classify(e, entryOff)
	if err != nil {
		return vdisk.Extent{}, err
	}
	n := int64(1)
	for ; l2i+n < entries; n++ {
		k2, h2, err := m.classify(entryAt(l2i+n), l2Off+(l2i+n)*m.entryLen)
		if err != nil || k2 != kind || (kind == vdisk.ExtentStored && h2 != host+n*m.clusterSize) {
			break
		}
	}
	ext := vdisk.Extent{Kind: kind, Len: n*m.clusterSize - within}
	if kind == vdisk.ExtentStored {
		ext.Offset = host + within
	}
	return ext, nil
}

// classify reads a standard (not compressed, not extended) L2 entry.
func (m *mapper) classify(e uint64, entryOff int64) (vdisk.ExtentKind, int64, error) {
	if e&l2Compressed != 0 {
		return vdisk.ExtentCompressed, 0, nil
	}
	if e&l2ZeroFlag != 0 {
		return vdisk.ExtentZero, 0, nil
	}
	host := int64(e & l2OffsetMask)
	if host == 0 {
		return vdisk.ExtentBacking, 0, nil
	}
	if host%m.clusterSize != 0 {
		return 0, 0, &FormatError{"L2 entry", entryOff, fmt.Sprintf("cluster offset %d not aligned to the cluster size %d", host, m.clusterSize)}
	}
	return vdisk.ExtentStored, host, nil
}

// mapSubclusters reads an extended L2 entry: 32 subclusters, each
// allocated, zero, or left to the backing image.
func (m *mapper) mapSubclusters(e, bitmap uint64, entryOff, within int64) (vdisk.Extent, error) {
	host := int64(e & l2OffsetMask)
	alloc := uint32(bitmap & subclusterAllocMask)
	zero := uint32(bitmap >> 32)
	if alloc&zero != 0 {
		return vdisk.Extent{}, &FormatError{"L2 entry", entryOff, fmt.Sprintf("subclusters %#x both allocated and zero", alloc&zero)}
	}
	if alloc != 0 && (host == 0 || host%m.clusterSize != 0) {
		return vdisk.Extent{}, &FormatError{"L2 entry", entryOff, fmt.Sprintf("allocated subclusters at invalid cluster offset %d", host)}
	}
	subSize := m.clusterSize / subclustersPerCluster
	state := func(i int64) vdisk.ExtentKind {
		switch {
		case alloc&(1<<i) != 0:
			return vdisk.ExtentStored
		case zero&(1<<i) != 0:
			return vdisk.ExtentZero
		}
		return vdisk.ExtentBacking
	}
	first := within / subSize
	kind := state(first)
	end := first + 1
	for end < subclustersPerCluster && state(end) == kind {
		end++
	}
	ext := vdisk.Extent{Kind: kind, Len: end*subSize - within}
	if kind == vdisk.ExtentStored {
		ext.Offset = host + within
	}
	return ext, nil
}

// l2Table returns the L2 table at off, from the cache or the file.
func (m *mapper) l2Table(off, l1i int64) ([]byte, error) {
	key := vdisk.CacheKey{Off: off}
	if t, ok := m.l2Cache.Get(key); ok {
		return t, nil
	}
	if off%m.clusterSize != 0 {
		return nil, &FormatError{"L1 entry", -1, fmt.Sprintf("entry %d: L2 table offset %d not aligned to the cluster size", l1i, off)}
	}
	if off > m.fileSize-m.clusterSize {
		return nil, &FormatError{"L2 table", off, fmt.Sprintf("past the end of the file (%d bytes)", m.fileSize)}
	}
	t := make([]byte, m.clusterSize)
	if _, err := m.file.ReadAt(t, off); err != nil && err != io.EOF {
		return nil, fmt.Errorf("qcow2: reading L2 table at byte %d: %w", off, err)
	}
	m.l2Cache.Put(key, t)
	return t, nil
}
