package boltsafe

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
)

// FormatError reports a structural problem found in a bbolt file.
type FormatError struct {
	Offset int64  // byte offset of the offending structure, -1 if none
	Page   uint64 // page id involved, when Offset is inside a page
	Bucket string // slash-separated path of the bucket being read, if any
	Msg    string
}

func (e *FormatError) Error() string {
	s := ""
	if e.Bucket != "" {
		s += "bucket " + e.Bucket + ": "
	}
	if e.Offset >= 0 {
		s += fmt.Sprintf("page %d (offset 0x%x): ", e.Page, e.Offset)
	}
	return s + e.Msg
}

func formatErr(page uint64, off int64, format string, args ...any) error {
	return &FormatError{Offset: off, Page: page, Msg: fmt.Sprintf(format, args...)}
}

// ErrBothMetasInvalid is wrapped by the error returned when neither meta page
// can be used.
var ErrBothMetasInvalid = errors.New("no usable meta page")

// Info describes what validation found and which meta page is in use.
type Info struct {
	Size      int64  // file size in bytes
	PageSize  int    // bytes per page
	Meta      int    // meta page whose tree is read: 0 or 1
	TxID      uint64 // transaction id of that meta page
	HighWater uint64 // first never-allocated page id of that meta page
	Freelist  uint64 // freelist page id; ^uint64(0) when not persisted
	Pages     int    // pages reachable from the root bucket
	Buckets   int    // buckets, including the root bucket
	Keys      int    // key/value pairs (not counting bucket entries)
	// OtherMeta says why the other meta page was not used ("older txid",
	// "checksum mismatch", "page tree invalid: ...").
	OtherMeta string
	Warnings  []string
}

func parseMeta(data []byte, off int) (meta, error) {
	if off < 0 || off+pageHeaderSize+metaSize > len(data) {
		return meta{}, fmt.Errorf("meta page at offset 0x%x is past the end of the %d-byte file", off, len(data))
	}
	b := data[off+pageHeaderSize:]
	m := meta{
		magic:    le.Uint32(b[0:]),
		version:  le.Uint32(b[4:]),
		pageSize: le.Uint32(b[8:]),
		flags:    le.Uint32(b[12:]),
		root:     le.Uint64(b[16:]),
		sequence: le.Uint64(b[24:]),
		freelist: le.Uint64(b[32:]),
		pgid:     le.Uint64(b[40:]),
		txid:     le.Uint64(b[48:]),
		checksum: le.Uint64(b[56:]),
	}
	h := fnv.New64a()
	h.Write(b[:metaChecksumOff])
	m.sum = h.Sum64()
	return m, nil
}

// check mirrors bbolt's Meta.Validate.
func (m meta) check() error {
	switch {
	case m.magic != magic:
		return fmt.Errorf("bad magic 0x%08x", m.magic)
	case m.version != version:
		return fmt.Errorf("unsupported version %d", m.version)
	case m.checksum != m.sum:
		return fmt.Errorf("checksum mismatch (stored 0x%016x, computed 0x%016x)", m.checksum, m.sum)
	}
	return nil
}

// bboltPageSize reproduces bbolt's page size detection (DB.getPageSize) so
// that we validate exactly the pages bbolt will later read.
func bboltPageSize(data []byte) (int, error) {
	const probe = 0x1000
	if len(data) >= probe {
		if m, err := parseMeta(data, 0); err == nil && m.check() == nil {
			return int(m.pageSize), nil
		}
	}
	size := int64(len(data))
	for i := 0; i <= 14; i++ {
		pos := int64(1024) << uint(i)
		if pos >= size-1024 {
			break
		}
		if m, err := parseMeta(data, int(pos)); err == nil && m.check() == nil {
			return int(m.pageSize), nil
		}
	}
	why := "too short"
	if m, err := parseMeta(data, 0); err == nil {
		if err := m.check(); err != nil {
			why = err.Error()
		} else {
			why = "too short for bbolt's 4096-byte probe"
		}
	}
	return 0, fmt.Errorf("%w: meta 0: %s; no valid meta page at any page size from 1 KiB to 16 MiB", ErrBothMetasInvalid, why)
}

// selectMeta reproduces bbolt's DB.meta(): the valid meta with the higher
// txid, else the other valid one.
func selectMeta(m [2]meta) int {
	a, b := 0, 1
	if m[1].txid > m[0].txid {
		a, b = 1, 0
	}
	if m[a].check() == nil {
		return a
	}
	if m[b].check() == nil {
		return b
	}
	return -1
}

type walker struct {
	data    []byte
	psize   uint64
	hwm     uint64
	visited []bool
	info    *Info
	visit   func(id uint64, h pageHeader) // test hook: called for each page
	path    []string                      // bucket names from the root, for errors
	// budget bounds the bytes of elements, keys and values examined. In a
	// sound file they do not overlap, so their total is below twice the
	// file size (inline bucket pages are counted again inside their value).
	// Entries sharing bytes, e.g. inline buckets whose elements all point at
	// the same nested value, would otherwise cost exponential time.
	budget int64
}

func (w *walker) fail(id uint64, off int64, format string, args ...any) error {
	e := &FormatError{Offset: off, Page: id, Msg: fmt.Sprintf(format, args...)}
	if len(w.path) > 0 {
		parts := make([]string, len(w.path))
		for i, p := range w.path {
			parts[i] = strconv.Quote(p)
			if p != "" && !strings.ContainsAny(p, "/\"") && strconv.Quote(p) == `"`+p+`"` {
				parts[i] = p
			}
		}
		e.Bucket = strings.Join(parts, "/")
	}
	return e
}

// Validate checks the structure of a bbolt file held in memory: both meta
// pages, and every page and element reachable from the root bucket of the
// meta page bbolt would use. It reads nothing outside data and visits every
// page at most once, so it terminates quickly on any input.
//
// When the preferred meta page's tree is damaged but the other meta page's
// tree is sound, Validate reports the other one (Info.Meta) and a warning;
// [Read] then makes bbolt use that one.
func Validate(data []byte) (Info, error) {
	info, err := validate(data)
	if err != nil {
		err = fmt.Errorf("bbolt: %w", err)
	}
	return info, err
}

func validate(data []byte) (Info, error) {
	info := Info{Size: int64(len(data)), Meta: -1}
	if len(data) < 2*minPageSize {
		return info, &FormatError{Offset: -1, Msg: fmt.Sprintf("file of %d bytes is too small to hold two meta pages", len(data))}
	}
	psize, err := bboltPageSize(data)
	if err != nil {
		return info, err
	}
	if psize < minPageSize || psize > maxPageSize || psize&(psize-1) != 0 {
		return info, formatErr(0, 0, "meta page size %d is not a power of two between %d and %d", psize, minPageSize, maxPageSize)
	}
	info.PageSize = psize
	if len(data) < 2*psize {
		return info, &FormatError{Offset: -1, Msg: fmt.Sprintf("file of %d bytes is smaller than two %d-byte pages", len(data), psize)}
	}
	if len(data)%psize != 0 {
		info.Warnings = append(info.Warnings, fmt.Sprintf("file size %d is not a multiple of the page size %d (truncated copy?)", len(data), psize))
	}

	var metas [2]meta
	var metaErr [2]error
	for i := range metas {
		metas[i], _ = parseMeta(data, i*psize)
		metaErr[i] = metas[i].check()
		if metaErr[i] == nil && int(metas[i].pageSize) != psize {
			metaErr[i] = fmt.Errorf("page size %d differs from the file's %d", metas[i].pageSize, psize)
		}
		if metaErr[i] == nil {
			if h := readPageHeader(data[i*psize:]); h.flags != flagMeta || h.id != uint64(i) {
				// bbolt does not check this, but a meta page that does not
				// say so is a sign of a misplaced or overwritten page.
				info.Warnings = append(info.Warnings, fmt.Sprintf("meta page %d header says page %d type %s", i, h.id, pageTypeName(h.flags)))
			}
		}
	}
	first := selectMeta(metas)
	if first < 0 {
		return info, fmt.Errorf("%w: meta 0: %v; meta 1: %v", ErrBothMetasInvalid, metaErr[0], metaErr[1])
	}
	order := []int{first}
	if other := 1 - first; metaErr[other] == nil {
		order = append(order, other)
	}

	var treeErr [2]error
	for n, i := range order {
		try := info
		try.Warnings = append([]string(nil), info.Warnings...)
		if err := walkMeta(data, uint64(psize), i*psize, metas[i], &try); err != nil {
			treeErr[i] = err
			continue
		}
		try.Meta = i
		try.TxID = metas[i].txid
		try.HighWater = metas[i].pgid
		try.Freelist = metas[i].freelist
		other := 1 - i
		switch {
		case metaErr[other] != nil:
			try.OtherMeta = metaErr[other].Error()
		case treeErr[other] != nil:
			try.OtherMeta = "page tree invalid: " + treeErr[other].Error()
		default:
			try.OtherMeta = fmt.Sprintf("older txid %d", metas[other].txid)
		}
		if n > 0 {
			try.Warnings = append(try.Warnings, fmt.Sprintf("newest meta page %d (txid %d) has a damaged page tree (%v); using meta page %d (txid %d), one transaction older",
				first, metas[first].txid, treeErr[first], i, metas[i].txid))
		}
		return try, nil
	}
	if len(order) == 1 {
		return info, fmt.Errorf("meta %d (txid %d): %w (meta %d unusable: %v)", first, metas[first].txid, treeErr[first], 1-first, metaErr[1-first])
	}
	if treeErr[0].Error() == treeErr[1].Error() {
		// Both trees share the damaged page, the usual case.
		return info, fmt.Errorf("meta 0 (txid %d) and meta 1 (txid %d): %w", metas[0].txid, metas[1].txid, treeErr[first])
	}
	return info, fmt.Errorf("meta 0 (txid %d): %v; meta 1 (txid %d): %w", metas[0].txid, treeErr[0], metas[1].txid, treeErr[1])
}

func walkMeta(data []byte, psize uint64, metaOff int, m meta, info *Info) error {
	return walkMetaVisit(data, psize, metaOff, m, info, nil)
}

func walkMetaVisit(data []byte, psize uint64, metaOff int, m meta, info *Info, visit func(uint64, pageHeader)) error {
	npages := uint64(len(data)) / psize
	if m.pgid < 2 {
		return formatErr(0, -1, "high-water page id %d is below 2", m.pgid)
	}
	if m.pgid > npages {
		// bbolt grows the file before it bumps the high-water mark, so a
		// smaller file means the copy is truncated.
		info.Warnings = append(info.Warnings, fmt.Sprintf("high-water page id %d is beyond the file's %d pages (truncated copy?)", m.pgid, npages))
	}
	if m.freelist != noFreelist && (m.freelist < 2 || m.freelist >= m.pgid) {
		info.Warnings = append(info.Warnings, fmt.Sprintf("freelist page id %d is outside [2, %d)", m.freelist, m.pgid))
	}
	w := &walker{data: data, psize: psize, hwm: m.pgid, visited: make([]bool, npages), info: info, visit: visit,
		budget: 2*int64(len(data)) + 4096}
	info.Pages, info.Buckets, info.Keys = 0, 1, 0
	if m.root == 0 {
		return formatErr(0, -1, "root bucket has no root page")
	}
	return w.page(m.root, uint64(metaOff)/psize, int64(metaOff)+pageHeaderSize+16, 0, 0, nil, nil)
}

// page validates the on-disk page id (and its overflow pages), depth levels
// below the root of a bucket nested bdepth buckets deep.
// ref is the file offset of the pointer to the page, for errors.
// parent is the page holding that pointer.
// Keys in the page must lie in [lo, hi) (nil: unbounded): bbolt's seek
// relies on it, so bucket lookups would miss entries otherwise.
func (w *walker) page(id, parent uint64, ref int64, depth, bdepth int, lo, hi []byte) error {
	if depth > maxPageDepth {
		return w.fail(parent, ref, "B+tree deeper than %d levels (cycle?)", maxPageDepth)
	}
	if id < 2 {
		return w.fail(parent, ref, "pointer to meta page %d", id)
	}
	if id >= w.hwm {
		return w.fail(parent, ref, "pointer to page %d, at or above the high-water mark %d", id, w.hwm)
	}
	npages := uint64(len(w.visited))
	if id >= npages {
		return w.fail(parent, ref, "pointer to page %d, beyond the end of the file (%d pages)", id, npages)
	}
	off := id * w.psize
	h := readPageHeader(w.data[off:])
	if h.id != id {
		return w.fail(id, int64(off), "page header says page %d", h.id)
	}
	if h.flags != flagBranch && h.flags != flagLeaf {
		return w.fail(id, int64(off), "expected a branch or leaf page, found %s page (flags 0x%x)", pageTypeName(h.flags), h.flags)
	}
	last := id + uint64(h.overflow)
	if last >= npages || last >= w.hwm {
		return w.fail(id, int64(off), "%d overflow pages run past the end of the file or the high-water mark", h.overflow)
	}
	for p := id; p <= last; p++ {
		if w.visited[p] {
			return w.fail(id, int64(off), "page %d is reached twice (cycle or shared page)", p)
		}
		w.visited[p] = true
	}
	w.info.Pages++
	if w.visit != nil {
		w.visit(id, h)
	}
	span := w.data[off : off+(last-id+1)*w.psize]
	return w.elements(span, h, id, int64(off), depth, bdepth, lo, hi)
}

// elements validates the element array of one page, which is either a page
// of the file (span is the page plus its overflow) or an inline bucket page
// (span is the rest of the bucket value).
func (w *walker) elements(span []byte, h pageHeader, id uint64, off int64, depth, bdepth int, lo, hi []byte) error {
	n := uint64(h.count)
	if pageHeaderSize+n*leafElemSize > uint64(len(span)) {
		return w.fail(id, off, "%d elements do not fit in %d bytes", n, len(span))
	}
	var prev []byte
	for i := uint64(0); i < n; i++ {
		eoff := pageHeaderSize + i*leafElemSize
		e := span[eoff:]
		var pos, ksize, vsize uint64
		var flags uint32
		var child uint64
		if h.flags == flagBranch {
			pos, ksize, child = uint64(le.Uint32(e[0:])), uint64(le.Uint32(e[4:])), le.Uint64(e[8:])
		} else {
			flags, pos, ksize, vsize = le.Uint32(e[0:]), uint64(le.Uint32(e[4:])), uint64(le.Uint32(e[8:])), uint64(le.Uint32(e[12:]))
		}
		kstart := eoff + pos
		vend := kstart + ksize + vsize // at most 2^34: no overflow
		if vend > uint64(len(span)) {
			return w.fail(id, off+int64(eoff), "element %d: key/value [%d, %d) outside the %d-byte page", i, kstart, vend, len(span))
		}
		if w.budget -= int64(leafElemSize + ksize + vsize); w.budget < 0 {
			return w.fail(id, off+int64(eoff), "element %d: elements, keys and values add up to more bytes than the file holds (overlapping entries)", i)
		}
		key := span[kstart : kstart+ksize]
		if i > 0 && bytes.Compare(prev, key) >= 0 {
			return w.fail(id, off+int64(eoff), "element %d: key %q is not above the previous key %q", i, clip(key), clip(prev))
		}
		// bbolt descends into child 0 for keys below the first separator,
		// so only later keys of a branch are bounded below.
		if lo != nil && (h.flags == flagLeaf || i > 0) && bytes.Compare(key, lo) < 0 {
			return w.fail(id, off+int64(eoff), "element %d: key %q is below the parent's separator %q", i, clip(key), clip(lo))
		}
		if hi != nil && bytes.Compare(key, hi) >= 0 {
			return w.fail(id, off+int64(eoff), "element %d: key %q is not below the parent's next separator %q", i, clip(key), clip(hi))
		}
		prev = key
		if h.flags == flagBranch {
			clo, chi := lo, hi
			if i > 0 {
				clo = key
			}
			if i+1 < n {
				ne := span[eoff+branchElemSize:]
				npos, nks := uint64(le.Uint32(ne[0:])), uint64(le.Uint32(ne[4:]))
				nstart := eoff + branchElemSize + npos
				if nstart+nks > uint64(len(span)) {
					return w.fail(id, off+int64(eoff+branchElemSize), "element %d: key [%d, %d) outside the %d-byte page", i+1, nstart, nstart+nks, len(span))
				}
				chi = span[nstart : nstart+nks]
			}
			if err := w.page(child, id, off+int64(eoff)+8, depth+1, bdepth, clo, chi); err != nil {
				return err
			}
			continue
		}
		if flags&^leafFlagBucket != 0 {
			return w.fail(id, off+int64(eoff), "element %d: unknown leaf flags 0x%x", i, flags)
		}
		if flags&leafFlagBucket == 0 {
			w.info.Keys++
			continue
		}
		w.info.Buckets++
		val := span[kstart+ksize : vend]
		w.path = append(w.path, string(clip(key)))
		err := w.bucket(val, id, off+int64(kstart+ksize), bdepth+1)
		w.path = w.path[:len(w.path)-1]
		if err != nil {
			return err
		}
	}
	if h.flags == flagBranch && n == 0 {
		return w.fail(id, off, "branch page without elements")
	}
	return nil
}

// bucket validates a bucket header value and the tree below it.
func (w *walker) bucket(val []byte, id uint64, off int64, bdepth int) error {
	if bdepth > maxBucketDepth {
		return w.fail(id, off, "buckets nested deeper than %d", maxBucketDepth)
	}
	if len(val) < bucketHeaderSize {
		return w.fail(id, off, "bucket value of %d bytes is shorter than a bucket header", len(val))
	}
	root := le.Uint64(val)
	if root != 0 {
		return w.page(root, id, off, 0, bdepth, nil, nil)
	}
	inline := val[bucketHeaderSize:]
	if len(inline) < pageHeaderSize {
		return w.fail(id, off, "inline bucket of %d bytes has no page header", len(inline))
	}
	h := readPageHeader(inline)
	if h.flags != flagLeaf {
		return w.fail(id, off, "inline bucket page is a %s page (flags 0x%x), not a leaf", pageTypeName(h.flags), h.flags)
	}
	return w.elements(inline, h, id, off+bucketHeaderSize, 0, bdepth, nil, nil)
}

func clip(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}
