//go:build linux

package hostile

import (
	"errors"
	"fmt"
	"hash/fnv"
)

// This file locates the pages, page pointers, elements and key/values of
// a sound bbolt file (go.etcd.io/bbolt's layout: 16-byte page headers,
// 16-byte elements, 64-byte meta body with an FNV-1a checksum).

const (
	boltBranch = 0x01
	boltLeaf   = 0x02
)

var (
	boltMetaFields = []Field{
		{16 + 0, 4, "meta magic", false}, {16 + 4, 4, "meta version", false}, {16 + 8, 4, "meta page_size", false},
		{16 + 16, 8, "meta root", false}, {16 + 32, 8, "meta freelist", false}, {16 + 40, 8, "meta pgid (high water)", false},
		{16 + 48, 8, "meta txid", false},
	}
	boltPageFields   = []Field{{0, 8, "page id", false}, {8, 2, "page flags", false}, {10, 2, "page count", false}, {12, 4, "page overflow", false}}
	boltLeafFields   = []Field{{0, 4, "leaf flags", false}, {4, 4, "leaf pos", false}, {8, 4, "leaf ksize", false}, {12, 4, "leaf vsize", false}}
	boltBranchFields = []Field{{0, 4, "branch pos", false}, {4, 4, "branch ksize", false}, {8, 8, "branch pgid", false}}
)

// BoltPage is one page reachable from the meta page in use.
type BoltPage struct {
	ID       uint64
	Off      int64 // offset in the database file
	Flags    uint16
	Count    uint16
	Overflow uint32
}

// BoltPtr is a pointer to a page: a branch element's pgid, a bucket
// header's root, or the meta page's root.
type BoltPtr struct {
	Off       int64 // offset in the database file of the 8-byte page id
	Target    uint64
	Ancestors []uint64 // pages on the way from the meta page to the pointer, nearest last
	Kind      string
}

// BoltElem is an element header.
type BoltElem struct {
	Off    int64
	Page   uint64
	Branch bool
}

// BoltKV is a key/value pair (or a bucket entry) and where its value is.
type BoltKV struct {
	Bucket   []string
	Key      string
	ValOff   int64
	ValLen   int
	IsBucket bool
}

// BoltMap is what the harness knows about one bbolt file.
type BoltMap struct {
	PageSize int
	Meta     int // meta page in use
	Size     int
	Pages    []BoltPage
	Ptrs     []BoltPtr
	Elems    []BoltElem
	KVs      []BoltKV
}

func boltMetaSum(b []byte) uint64 {
	h := fnv.New64a()
	h.Write(b[16 : 16+56])
	return h.Sum64()
}

// mapBolt walks a sound bbolt file held in data.
func mapBolt(data []byte) (*BoltMap, error) {
	if len(data) < 2*1024 {
		return nil, errors.New("bbolt: too small")
	}
	psize := int(le.Uint32(data[16+8:]))
	if psize < 512 || psize > 1<<16 || len(data) < 2*psize {
		return nil, fmt.Errorf("bbolt: page size %d", psize)
	}
	m := &BoltMap{PageSize: psize, Size: len(data)}
	best, bestTx := -1, uint64(0)
	for i := 0; i < 2; i++ {
		b := data[i*psize:]
		if le.Uint32(b[16:]) != 0xED0CDAED || le.Uint64(b[16+56:]) != boltMetaSum(b) {
			continue
		}
		if tx := le.Uint64(b[16+48:]); best < 0 || tx > bestTx {
			best, bestTx = i, tx
		}
	}
	if best < 0 {
		return nil, errors.New("bbolt: no valid meta page")
	}
	m.Meta = best
	metaOff := int64(best * psize)
	root := le.Uint64(data[metaOff+16+16:])
	w := &boltWalker{m: m, data: data, seen: map[uint64]bool{}}
	m.Ptrs = append(m.Ptrs, BoltPtr{Off: metaOff + 32, Target: root, Kind: "meta root"})
	if err := w.page(root, nil, nil); err != nil {
		return nil, err
	}
	return m, nil
}

type boltWalker struct {
	m    *BoltMap
	data []byte
	seen map[uint64]bool
}

func (w *boltWalker) page(id uint64, anc []uint64, bucket []string) error {
	off := int64(id) * int64(w.m.PageSize)
	if w.seen[id] || off+16 > int64(len(w.data)) || len(anc) > 64 {
		return fmt.Errorf("bbolt: bad page %d", id)
	}
	w.seen[id] = true
	h := w.data[off:]
	p := BoltPage{ID: id, Off: off, Flags: le.Uint16(h[8:]), Count: le.Uint16(h[10:]), Overflow: le.Uint32(h[12:])}
	w.m.Pages = append(w.m.Pages, p)
	end := off + int64(p.Overflow+1)*int64(w.m.PageSize)
	if end > int64(len(w.data)) {
		return fmt.Errorf("bbolt: page %d runs past the end", id)
	}
	return w.elements(w.data[off:end], off, id, p.Flags, int(p.Count), append(anc[:len(anc):len(anc)], id), bucket)
}

// elements walks the elements of a page (or inline bucket page) span that
// starts at file offset base.
func (w *boltWalker) elements(span []byte, base int64, id uint64, flags uint16, n int, anc []uint64, bucket []string) error {
	for i := 0; i < n; i++ {
		eo := 16 + i*16
		if eo+16 > len(span) {
			return fmt.Errorf("bbolt: page %d element %d out of bounds", id, i)
		}
		e := span[eo:]
		branch := flags&boltBranch != 0
		w.m.Elems = append(w.m.Elems, BoltElem{Off: base + int64(eo), Page: id, Branch: branch})
		if branch {
			child := le.Uint64(e[8:])
			w.m.Ptrs = append(w.m.Ptrs, BoltPtr{Off: base + int64(eo) + 8, Target: child, Ancestors: anc, Kind: "branch element"})
			if err := w.page(child, anc, bucket); err != nil {
				return err
			}
			continue
		}
		fl, pos, ks, vs := le.Uint32(e[0:]), int(le.Uint32(e[4:])), int(le.Uint32(e[8:])), int(le.Uint32(e[12:]))
		ks0 := eo + pos
		if ks0+ks+vs > len(span) {
			return fmt.Errorf("bbolt: page %d element %d key/value out of bounds", id, i)
		}
		key := string(span[ks0 : ks0+ks])
		vo := base + int64(ks0+ks)
		kv := BoltKV{Bucket: bucket, Key: key, ValOff: vo, ValLen: vs, IsBucket: fl&1 != 0}
		w.m.KVs = append(w.m.KVs, kv)
		if !kv.IsBucket {
			continue
		}
		val := span[ks0+ks : ks0+ks+vs]
		sub := append(bucket[:len(bucket):len(bucket)], key)
		if root := le.Uint64(val); root != 0 {
			w.m.Ptrs = append(w.m.Ptrs, BoltPtr{Off: vo, Target: root, Ancestors: anc, Kind: "bucket root"})
			if err := w.page(root, anc, sub); err != nil {
				return err
			}
			continue
		}
		inl := val[16:]
		if len(inl) < 16 {
			return fmt.Errorf("bbolt: short inline bucket")
		}
		if err := w.elements(inl, vo+16, id, le.Uint16(inl[8:]), int(le.Uint16(inl[10:])), anc, sub); err != nil {
			return err
		}
	}
	return nil
}

// BucketKV returns the value location of key in the bucket at path.
func (m *BoltMap) BucketKV(key string, path ...string) (BoltKV, bool) {
	for _, kv := range m.KVs {
		if kv.Key == key && equalPath(kv.Bucket, path) {
			return kv, true
		}
	}
	return BoltKV{}, false
}

func equalPath(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
