// Package boltsafe reads bbolt databases taken from evidence without trusting
// them.
//
// bbolt has no data checksums and trusts every page pointer: on a corrupt
// file it can panic, fault through its mmap, loop forever on a cycle in the
// page tree, or silently return garbage. boltsafe therefore walks the page
// tree itself first (meta checksums, page bounds, no page visited twice,
// bounded depth, element offsets inside their page) and only then lets
// go.etcd.io/bbolt read a private, sealed, read-only copy of the bytes in a
// goroutine that turns panics and memory faults into errors. The whole
// database is copied into an in-memory [Bucket] tree, so callers never touch
// bbolt or its mmap.
//
// The on-disk layout below is bbolt's (go.etcd.io/bbolt/internal/common),
// little-endian as written on amd64/arm64 hosts.
package boltsafe

import "encoding/binary"

const (
	magic   = 0xED0CDAED
	version = 2

	pageHeaderSize   = 16 // id u64, flags u16, count u16, overflow u32
	branchElemSize   = 16 // pos u32, ksize u32, pgid u64
	leafElemSize     = 16 // flags u32, pos u32, ksize u32, vsize u32
	bucketHeaderSize = 16 // root pgid u64, sequence u64
	metaSize         = 64 // fields up to and including the checksum
	metaChecksumOff  = 56 // FNV-1a 64 covers meta bytes [0, 56)

	flagBranch   = 0x01
	flagLeaf     = 0x02
	flagMeta     = 0x04
	flagFreelist = 0x10

	leafFlagBucket = 0x01

	noFreelist = ^uint64(0)

	// Limits that keep validation bounded on hostile input. Real containerd
	// databases nest buckets about 7 deep and their B+trees are 1-4 levels.
	maxPageDepth   = 64
	maxBucketDepth = 64
	minPageSize    = 512
	maxPageSize    = 1 << 16
)

var le = binary.LittleEndian

// pageHeader is the fixed header at the start of every page.
type pageHeader struct {
	id       uint64
	flags    uint16
	count    uint16
	overflow uint32
}

func readPageHeader(b []byte) pageHeader {
	return pageHeader{
		id:       le.Uint64(b[0:]),
		flags:    le.Uint16(b[8:]),
		count:    le.Uint16(b[10:]),
		overflow: le.Uint32(b[12:]),
	}
}

// meta is the decoded body of a meta page (pages 0 and 1).
type meta struct {
	magic    uint32
	version  uint32
	pageSize uint32
	flags    uint32
	root     uint64 // root bucket's root page
	sequence uint64
	freelist uint64
	pgid     uint64 // high-water mark: first page id never allocated
	txid     uint64
	checksum uint64
	sum      uint64 // checksum computed over the stored fields
}

func pageTypeName(flags uint16) string {
	switch flags {
	case flagBranch:
		return "branch"
	case flagLeaf:
		return "leaf"
	case flagMeta:
		return "meta"
	case flagFreelist:
		return "freelist"
	}
	return "unknown"
}
