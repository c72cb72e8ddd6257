package node

import (
	"bufio"
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"
	"unsafe"
)

// rowSorter sorts timeline rows by time in bounded memory: up to max
// rows are sorted in memory; past that, each full buffer is sorted and
// written as a run to a temporary directory, and the runs are merged
// (ties keep the order rows were added in, so the result does not depend
// on max). The rows of one file's times share one TimelineRow: an item
// is its time, kind and order, and a pointer to it.
type rowSorter struct {
	max     int
	tempDir string
	dir     string // the spill directory, made on the first spill
	items   []rowItem
	bytes   int // of the rows items point to
	runs    []string
	nruns   int
	seq     uint64
	sources []*TimelineSource
}

type rowItem struct {
	time time.Time
	seq  uint64
	kind uint8 // index into timeKinds
	row  *TimelineRow
}

// maxFanIn is how many runs are merged at once; more are merged in steps.
const maxFanIn = 64

// maxSortBytes bounds the rows held in memory, whatever their count: a
// row's fields and strings (long paths, log lines) count.
const maxSortBytes = 32 << 20

var rowSize = int(unsafe.Sizeof(TimelineRow{}))

// rowBytes is about what r holds in memory.
func rowBytes(r *TimelineRow) int {
	return rowSize + len(r.Path) + len(r.Target) + len(r.Text) + len(r.SHA256) + len(r.MD5) + len(r.SHA1) +
		len(r.HashOmitted) + len(r.Reason) + len(r.Image) + len(r.LogFile) + len(r.Change) + len(r.Stream)
}

func newRowSorter(opt TimelineOptions) *rowSorter {
	m := opt.MemoryRows
	if m <= 0 {
		m = DefaultTimelineRows
	}
	return &rowSorter{max: m, tempDir: opt.TempDir}
}

func (s *rowSorter) source(src *TimelineSource) *TimelineSource {
	src.idx = len(s.sources)
	s.sources = append(s.sources, src)
	return src
}

func kindIndex(k TimeKind) uint8 {
	for i, x := range timeKinds {
		if x == k {
			return uint8(i)
		}
	}
	panic("timeline: unknown kind " + string(k))
}

// add adds r at its Time and Kind; r is kept, not copied: the caller
// must not change it afterwards.
func (s *rowSorter) add(r *TimelineRow) error { return s.addAt(r, r.Kind, r.Time) }

// addAt adds r as a row of kind k at time t. Several calls may share r.
func (s *rowSorter) addAt(r *TimelineRow, k TimeKind, t time.Time) error {
	if len(s.items) == cap(s.items) && cap(s.items) < s.max {
		grown := make([]rowItem, len(s.items), min(s.max, max(1024, 2*cap(s.items))))
		copy(grown, s.items)
		s.items = grown
	}
	if n := len(s.items); n == 0 || s.items[n-1].row != r {
		s.bytes += rowBytes(r)
	}
	s.items = append(s.items, rowItem{time: t, seq: s.seq, kind: kindIndex(k), row: r})
	s.seq++
	if len(s.items) >= s.max || s.bytes >= maxSortBytes {
		return s.spill()
	}
	return nil
}

func itemCompare(a, b *rowItem) int {
	if c := a.time.Compare(b.time); c != 0 {
		return c
	}
	if a.seq < b.seq {
		return -1
	}
	return 1 // seq is unique: never equal
}

func rowLess(a, b *TimelineRow) bool {
	if c := a.Time.Compare(b.Time); c != 0 {
		return c < 0
	}
	return a.seq < b.seq
}

func (s *rowSorter) sort() {
	slices.SortFunc(s.items, func(a, b rowItem) int { return itemCompare(&a, &b) })
}

// expand is the row an item stands for.
func (it *rowItem) expand(out *TimelineRow) {
	*out = *it.row
	out.Time, out.Kind, out.seq = it.time, timeKinds[it.kind], it.seq
}

func (s *rowSorter) spill() error {
	if s.dir == "" {
		d, err := os.MkdirTemp(s.tempDir, "ctrlift-timeline-")
		if err != nil {
			return &spillError{err}
		}
		s.dir = d
	}
	name, w, err := s.newRun()
	if err != nil {
		return err
	}
	enc := rowEncoder{w: bufio.NewWriterSize(w, 256<<10)}
	s.sort()
	var r TimelineRow
	for i := range s.items {
		s.items[i].expand(&r)
		if err := enc.encode(&r); err != nil {
			w.Close()
			return &spillError{err}
		}
	}
	if err := enc.w.Flush(); err != nil {
		w.Close()
		return &spillError{err}
	}
	if err := w.Close(); err != nil {
		return &spillError{err}
	}
	s.runs = append(s.runs, name)
	clear(s.items) // drop the rows
	s.items, s.bytes = s.items[:0], 0
	return nil
}

func (s *rowSorter) newRun() (string, *os.File, error) {
	name := filepath.Join(s.dir, fmt.Sprintf("run-%06d", s.nruns))
	s.nruns++
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", nil, &spillError{err}
	}
	return name, f, nil
}

// close removes the spill directory.
func (s *rowSorter) close() {
	if s.dir != "" {
		os.RemoveAll(s.dir)
		s.dir = ""
	}
}

// emit calls fn with every row in order.
func (s *rowSorter) emit(fn func(*TimelineRow) error) error {
	if len(s.runs) == 0 {
		s.sort()
		var r TimelineRow
		for i := range s.items {
			s.items[i].expand(&r)
			if err := fn(&r); err != nil {
				return err
			}
		}
		return nil
	}
	if len(s.items) > 0 {
		if err := s.spill(); err != nil {
			return err
		}
	}
	// Merge in steps until one merge can take every run.
	for len(s.runs) > maxFanIn {
		name, w, err := s.newRun()
		if err != nil {
			return err
		}
		enc := rowEncoder{w: bufio.NewWriterSize(w, 256<<10)}
		err = s.merge(s.runs[:maxFanIn], func(r *TimelineRow) error { return enc.encode(r) })
		if err == nil {
			err = enc.w.Flush()
		}
		if cerr := w.Close(); err == nil && cerr != nil {
			err = cerr
		}
		if err != nil {
			return &spillError{err}
		}
		for _, r := range s.runs[:maxFanIn] {
			os.Remove(r)
		}
		s.runs = append(s.runs[maxFanIn:], name)
	}
	return s.merge(s.runs, fn)
}

// merge reads runs and calls fn with their rows in order.
func (s *rowSorter) merge(runs []string, fn func(*TimelineRow) error) error {
	h := &runHeap{}
	defer func() {
		for _, r := range h.runs {
			r.f.Close()
		}
	}()
	for _, name := range runs {
		f, err := os.Open(name)
		if err != nil {
			return &spillError{err}
		}
		r := &run{f: f, dec: rowDecoder{r: bufio.NewReaderSize(f, 64<<10), sources: s.sources}}
		ok, err := r.next()
		if err != nil {
			f.Close()
			return &spillError{fmt.Errorf("%s: %w", name, err)}
		}
		if !ok {
			f.Close()
			continue
		}
		h.runs = append(h.runs, r)
	}
	heap.Init(h)
	for h.Len() > 0 {
		r := h.runs[0]
		if err := fn(&r.row); err != nil {
			return err
		}
		ok, err := r.next()
		if err != nil {
			return &spillError{err}
		}
		if ok {
			heap.Fix(h, 0)
		} else {
			r.f.Close()
			heap.Pop(h)
		}
	}
	return nil
}

type run struct {
	f   *os.File
	dec rowDecoder
	row TimelineRow
}

func (r *run) next() (bool, error) {
	err := r.dec.decode(&r.row)
	if err == io.EOF {
		return false, nil
	}
	return err == nil, err
}

type runHeap struct{ runs []*run }

func (h *runHeap) Len() int           { return len(h.runs) }
func (h *runHeap) Less(i, j int) bool { return rowLess(&h.runs[i].row, &h.runs[j].row) }
func (h *runHeap) Swap(i, j int)      { h.runs[i], h.runs[j] = h.runs[j], h.runs[i] }
func (h *runHeap) Push(x any)         { h.runs = append(h.runs, x.(*run)) }
func (h *runHeap) Pop() any {
	r := h.runs[len(h.runs)-1]
	h.runs = h.runs[:len(h.runs)-1]
	return r
}

// Row flags in a run.
const (
	rowWhiteout = 1 << iota
	rowOpaque
	rowHasCrtime
	rowPartial
	rowExitCode
)

// rowEncoder writes rows to a run: each a uvarint length and the fields.
type rowEncoder struct {
	w   *bufio.Writer
	buf []byte
}

func (e *rowEncoder) encode(r *TimelineRow) error {
	b := e.buf[:0]
	b = binary.AppendUvarint(b, r.seq)
	b = appendTime(b, r.Time)
	b = append(b, kindIndex(r.Kind))
	b = binary.AppendUvarint(b, uint64(r.Source.idx))
	b = binary.AppendVarint(b, int64(r.Layer))
	for _, s := range [...]string{r.Path, r.Change, r.Target, r.SHA256, r.MD5, r.SHA1, r.HashOmitted, r.Reason, r.Image, r.Stream, r.Text, r.LogFile} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	for _, v := range [...]uint64{uint64(r.Mode), r.Inode, uint64(r.UID), uint64(r.GID)} {
		b = binary.AppendUvarint(b, v)
	}
	b = binary.AppendVarint(b, r.Size)
	b = binary.AppendVarint(b, int64(r.Restart))
	for _, t := range [...]time.Time{r.Mtime, r.Atime, r.Ctime, r.Crtime} {
		b = appendTime(b, t)
	}
	var flags byte
	set := func(bit byte, on bool) {
		if on {
			flags |= bit
		}
	}
	set(rowWhiteout, r.Whiteout)
	set(rowOpaque, r.Opaque)
	set(rowHasCrtime, r.HasCrtime)
	set(rowPartial, r.Partial)
	set(rowExitCode, r.ExitCode != nil)
	b = append(b, flags)
	if r.ExitCode != nil {
		b = binary.AppendVarint(b, int64(*r.ExitCode))
	}
	e.buf = b
	var n [binary.MaxVarintLen64]byte
	if _, err := e.w.Write(n[:binary.PutUvarint(n[:], uint64(len(b)))]); err != nil {
		return err
	}
	_, err := e.w.Write(b)
	return err
}

func appendTime(b []byte, t time.Time) []byte {
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

// rowDecoder reads what rowEncoder wrote.
type rowDecoder struct {
	r       *bufio.Reader
	buf     []byte
	sources []*TimelineSource
}

var errBadRun = errors.New("corrupt run")

func (d *rowDecoder) decode(r *TimelineRow) error {
	size, err := binary.ReadUvarint(d.r)
	if err != nil {
		return err // io.EOF at the end
	}
	if size > 1<<30 {
		return errBadRun
	}
	if cap(d.buf) < int(size) {
		d.buf = make([]byte, size)
	}
	b := d.buf[:size]
	if _, err := io.ReadFull(d.r, b); err != nil {
		return err
	}
	c := cursor{b: b}
	*r = TimelineRow{}
	r.seq = c.uvarint()
	r.Time = c.time()
	if k := int(c.byte()); k < len(timeKinds) {
		r.Kind = timeKinds[k]
	}
	if i := c.uvarint(); i < uint64(len(d.sources)) {
		r.Source = d.sources[i]
	}
	r.Layer = int(c.varint())
	for _, s := range [...]*string{&r.Path, &r.Change, &r.Target, &r.SHA256, &r.MD5, &r.SHA1, &r.HashOmitted, &r.Reason, &r.Image, &r.Stream, &r.Text, &r.LogFile} {
		*s = c.string()
	}
	r.Mode, r.Inode, r.UID, r.GID = uint32(c.uvarint()), c.uvarint(), uint32(c.uvarint()), uint32(c.uvarint())
	r.Size = c.varint()
	r.Restart = int(c.varint())
	for _, t := range [...]*time.Time{&r.Mtime, &r.Atime, &r.Ctime, &r.Crtime} {
		*t = c.time()
	}
	flags := c.byte()
	r.Whiteout, r.Opaque, r.HasCrtime, r.Partial = flags&rowWhiteout != 0, flags&rowOpaque != 0, flags&rowHasCrtime != 0, flags&rowPartial != 0
	if flags&rowExitCode != 0 {
		code := int32(c.varint())
		r.ExitCode = &code
	}
	if c.bad || r.Source == nil || r.Kind == "" {
		return errBadRun
	}
	return nil
}

// cursor reads the fields of one encoded row.
type cursor struct {
	b   []byte
	bad bool
}

func (c *cursor) uvarint() uint64 {
	v, n := binary.Uvarint(c.b)
	if n <= 0 {
		c.bad = true
		return 0
	}
	c.b = c.b[n:]
	return v
}

func (c *cursor) varint() int64 {
	v, n := binary.Varint(c.b)
	if n <= 0 {
		c.bad = true
		return 0
	}
	c.b = c.b[n:]
	return v
}

func (c *cursor) byte() byte {
	if len(c.b) == 0 {
		c.bad = true
		return 0
	}
	v := c.b[0]
	c.b = c.b[1:]
	return v
}

func (c *cursor) string() string {
	n := c.uvarint()
	if n > uint64(len(c.b)) {
		c.bad = true
		return ""
	}
	s := string(c.b[:n])
	c.b = c.b[n:]
	return s
}

func (c *cursor) time() time.Time {
	sec := c.varint()
	nsec := c.uvarint()
	return time.Unix(sec, int64(nsec)).UTC()
}
