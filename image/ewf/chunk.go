package ewf

import (
	"bytes"
	"container/list"
	"errors"
	"fmt"
	"hash/adler32"
	"io"
	"math"
	"os"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/zlib"
)

// lru maps keys to values, dropping the least recently used ones when the
// summed cost of the values passes max. The caller locks.
type lru[K comparable, V any] struct {
	max, used int64
	ll        list.List
	m         map[K]*list.Element
}

type lruEntry[K comparable, V any] struct {
	key  K
	val  V
	cost int64
}

func (c *lru[K, V]) init(max int64) {
	c.max = max
	c.m = make(map[K]*list.Element)
}

func (c *lru[K, V]) get(k K) (V, bool) {
	if e, ok := c.m[k]; ok {
		c.ll.MoveToFront(e)
		return e.Value.(*lruEntry[K, V]).val, true
	}
	var zero V
	return zero, false
}

func (c *lru[K, V]) add(k K, v V, cost int64) {
	if e, ok := c.m[k]; ok {
		c.ll.MoveToFront(e)
		return
	}
	c.m[k] = c.ll.PushFront(&lruEntry[K, V]{k, v, cost})
	c.used += cost
	for c.used > c.max && c.ll.Len() > 1 {
		e := c.ll.Back()
		ent := c.ll.Remove(e).(*lruEntry[K, V])
		delete(c.m, ent.key)
		c.used -= ent.cost
	}
}

// chunkCache keeps decoded chunks, and the decodes under way so that two
// readers of one chunk decode it once.
type chunkCache struct {
	mu       sync.Mutex
	lru      lru[int64, []byte]
	inflight map[int64]*pendingChunk
}

type pendingChunk struct {
	done chan struct{}
	data []byte
	err  error
}

// entryCache keeps the entries of recently used tables.
type entryCache struct {
	mu  sync.Mutex
	lru lru[int, []uint32]
}

const entryCacheBytes = 16 << 20

func (img *Image) setupCaches(cacheBytes int64) {
	if cacheBytes <= 0 {
		cacheBytes = defaultCacheBytes
	}
	cacheBytes = max(cacheBytes, 4*img.chunkSize)
	img.chunks.lru.init(cacheBytes)
	img.chunks.inflight = make(map[int64]*pendingChunk)
	img.entries.lru.init(entryCacheBytes)
	img.slots = make(chan struct{}, img.workers)
	img.readahead = min(int64(2*img.workers), cacheBytes/img.chunkSize/2)
	img.lastEnd.Store(-1)
}

// chunkLen is the number of media bytes chunk c holds.
func (img *Image) chunkLen(c int64) int64 {
	if c == img.chunkCount-1 {
		return img.size - c*img.chunkSize
	}
	return img.chunkSize
}

func (img *Image) chunkErr(c int64, seg *segment, off int64, err error, format string, args ...any) error {
	return &FormatError{Struct: "chunk", Segment: seg.name, Offset: off, Chunk: c, Media: c * img.chunkSize, Msg: fmt.Sprintf(format, args...), Err: err}
}

// chunkLoc is where a chunk is stored.
type chunkLoc struct {
	seg        *segment
	off, size  int64
	compressed bool
}

// locate finds chunk c through its table entry; the chunk ends where the
// next entry's chunk starts, or at the end of the table's chunk data.
func (img *Image) locate(c int64) (chunkLoc, error) {
	ti := sort.Search(len(img.tables), func(i int) bool { return img.tables[i].first+img.tables[i].count > c })
	t := &img.tables[ti] // the tables hold exactly chunkCount entries (checked by Open)
	seg := &img.segs[t.seg]
	ents, err := img.tableEntries(ti)
	if err != nil {
		return chunkLoc{}, err
	}
	i := c - t.first
	start := t.base + int64(ents[i]&entryOffsetMask)
	end := t.dataEnd
	if i+1 < t.count {
		end = t.base + int64(ents[i+1]&entryOffsetMask)
	}
	if start < t.dataStart || end > t.dataEnd || end <= start {
		return chunkLoc{}, img.chunkErr(c, seg, start, nil, "its table entry places it at bytes [%d, %d), outside the chunk data [%d, %d) of the table section at byte %d",
			start, end, t.dataStart, t.dataEnd, t.section)
	}
	return chunkLoc{seg: seg, off: start, size: end - start, compressed: ents[i]&entryCompressed != 0}, nil
}

// tableEntries returns table ti's entries, read and checked on first use.
// When their checksum fails the table2 mirror is used if it is sound.
func (img *Image) tableEntries(ti int) ([]uint32, error) {
	ec := &img.entries
	ec.mu.Lock()
	ents, ok := ec.lru.get(ti)
	ec.mu.Unlock()
	if ok {
		return ents, nil
	}
	t := &img.tables[ti]
	seg := &img.segs[t.seg]
	n := t.count * tableEntrySize
	// read returns the entries at at, or why they are not to be trusted.
	read := func(at int64) ([]byte, string, error) {
		p := make([]byte, n+tableFooterSize)
		if !t.footer {
			p = p[:n]
		}
		if err := readFull(seg, p, at, "table section"); err != nil {
			return nil, "", err
		}
		if t.footer {
			if got, want := adler32.Checksum(p[:n]), le.Uint32(p[n:]); got != want {
				return nil, fmt.Sprintf("checksum 0x%08x, stored 0x%08x", got, want), nil
			}
		}
		return p, "", nil
	}
	p, bad, err := read(t.entries)
	if err != nil {
		return nil, err
	}
	if bad != "" && t.mirror >= 0 {
		p2, bad2, err := read(t.mirror)
		switch {
		case err != nil:
			bad += fmt.Sprintf("; table2 copy: %v", err)
		case bad2 != "":
			bad += "; table2 copy: " + bad2
		default:
			p, bad = p2, ""
		}
	}
	if bad != "" {
		return nil, &FormatError{Struct: "table section", Segment: seg.name, Offset: t.section, Chunk: -1, Media: -1,
			Msg: fmt.Sprintf("entries of chunks %d to %d: %s", t.first, t.first+t.count-1, bad)}
	}
	ents = make([]uint32, t.count)
	for i := range ents {
		ents[i] = le.Uint32(p[i*tableEntrySize:])
	}
	ec.mu.Lock()
	ec.lru.add(ti, ents, n)
	ec.mu.Unlock()
	return ents, nil
}

// maxStoredChunk bounds the stored size of a compressed chunk: deflate
// adds a few bytes per block to incompressible data.
func maxStoredChunk(chunkSize int64) int64 { return chunkSize + chunkSize/16 + 1024 }

var (
	bufPool  sync.Pool // *[]byte holding stored chunks
	zlibPool sync.Pool // io.ReadCloser implementing zlib.Resetter
)

// decodeChunk decodes chunk c into dst, which is chunkLen(c) bytes long.
func (img *Image) decodeChunk(c int64, dst []byte) error {
	loc, err := img.storedChunk(c)
	if err != nil {
		return err
	}
	return img.decodeStored(c, loc, dst)
}

// storedChunk locates chunk c and checks its stored size, before anything
// is allocated for it.
func (img *Image) storedChunk(c int64) (chunkLoc, error) {
	loc, err := img.locate(c)
	if err != nil {
		return loc, err
	}
	want := img.chunkLen(c)
	if loc.compressed {
		if loc.size > maxStoredChunk(img.chunkSize) {
			return loc, img.chunkErr(c, loc.seg, loc.off, nil, "%d stored bytes are more than a compressed chunk of %d bytes can take", loc.size, img.chunkSize)
		}
	} else if n := loc.size - chunkChecksumSize; n < want || n > want+img.lastChunkSlack(c) {
		return loc, img.chunkErr(c, loc.seg, loc.off, nil, "uncompressed chunk of %d stored bytes, want %d (data and checksum)", loc.size, want+chunkChecksumSize)
	}
	return loc, nil
}

// lastChunkSlack is how many bytes past the media's end the last chunk
// may hold: EnCase may store it whole, and ewfacquire stores an input's
// partial last sector that the sector count leaves out. The surplus is
// checked and dropped.
func (img *Image) lastChunkSlack(c int64) int64 {
	if c == img.chunkCount-1 {
		return img.chunkSize - img.chunkLen(c)
	}
	return 0
}

// decodeStored reads and checks the stored chunk c at loc into dst.
func (img *Image) decodeStored(c int64, loc chunkLoc, dst []byte) error {
	bp, _ := bufPool.Get().(*[]byte)
	if bp == nil || int64(cap(*bp)) < loc.size {
		b := make([]byte, max(loc.size, img.chunkSize+chunkChecksumSize))
		bp = &b
	}
	defer bufPool.Put(bp)
	buf := (*bp)[:loc.size]
	if n, err := loc.seg.r.ReadAt(buf, loc.off); n < len(buf) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return img.chunkErr(c, loc.seg, loc.off, err, "reading %d stored bytes", loc.size)
	}

	if !loc.compressed {
		data := buf[:loc.size-chunkChecksumSize]
		if got, stored := adler32.Checksum(data), le.Uint32(buf[len(data):]); got != stored {
			return img.chunkErr(c, loc.seg, loc.off, nil, "checksum 0x%08x, stored 0x%08x", got, stored)
		}
		copy(dst, data)
		return nil
	}
	slack := img.lastChunkSlack(c)
	memo := slack == 0 && loc.size <= max(minZeroStream, img.chunkSize/512)
	var key string
	if memo {
		key = zeroKey(buf, len(dst))
		if img.zeros.has(key) {
			clear(dst)
			return nil
		}
	}
	if err := inflateChunk(buf, dst, slack); err != nil {
		return img.chunkErr(c, loc.seg, loc.off, err, "%d compressed bytes do not decompress to the chunk's %d bytes", loc.size, len(dst))
	}
	if memo && isZero(dst) {
		img.zeros.add(key)
	}
	return nil
}

// zeroStreams remembers compressed chunks known to decode to zeros: the
// empty chunks of a sparse disk all compress to the same few bytes, and
// clearing memory is much cheaper than inflating them again. Decoding is a
// pure function of the stream, so equal streams decode equally.
type zeroStreams struct {
	mu sync.RWMutex
	m  map[string]struct{}
}

const (
	// Deflate stores zeros at about 1000:1, so a stream longer than
	// chunkSize/512 (or this, for small chunks) is not a zero chunk.
	minZeroStream  = 1024
	maxZeroStreams = 64
)

func zeroKey(stream []byte, n int) string {
	return fmt.Sprintf("%d:%s", n, stream)
}

func (z *zeroStreams) has(key string) bool {
	z.mu.RLock()
	defer z.mu.RUnlock()
	_, ok := z.m[key]
	return ok
}

func (z *zeroStreams) add(key string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.m == nil {
		z.m = make(map[string]struct{})
	}
	if len(z.m) < maxZeroStreams {
		z.m[key] = struct{}{}
	}
}

var zeroBlock [64 << 10]byte

// isZero reports whether p holds only zero bytes (memequal is vectorised).
func isZero(p []byte) bool {
	for len(p) > 0 {
		n := min(len(p), len(zeroBlock))
		if !bytes.Equal(p[:n], zeroBlock[:n]) {
			return false
		}
		p = p[n:]
	}
	return true
}

// inflateChunk decompresses the zlib stream src into dst, which it must
// fill exactly (up to slack bytes more are read and dropped). Reading the
// stream to its end checks its Adler-32; nothing past dst is kept, so a
// decompression bomb costs time bounded by the chunk size, not memory.
func inflateChunk(src, dst []byte, slack int64) error {
	br := bytes.NewReader(src)
	zr, _ := zlibPool.Get().(io.ReadCloser)
	var err error
	if zr == nil {
		zr, err = zlib.NewReader(br)
	} else {
		err = zr.(zlib.Resetter).Reset(br, nil)
	}
	if err != nil {
		return err
	}
	defer zlibPool.Put(zr)
	n, err := io.ReadFull(zr, dst)
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || err == io.EOF {
			return fmt.Errorf("stream ends after %d bytes", n)
		}
		return err
	}
	var scratch [512]byte
	extra := int64(0)
	for {
		k, err := zr.Read(scratch[:])
		extra += int64(k)
		if extra > slack {
			return fmt.Errorf("stream holds more than %d bytes", int64(len(dst))+slack)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// cachedChunk returns chunk c decoded, from the cache or decoded (once,
// however many readers ask) into it. The slice must not be modified.
func (img *Image) cachedChunk(c int64) ([]byte, error) {
	cc := &img.chunks
	cc.mu.Lock()
	if d, ok := cc.lru.get(c); ok {
		cc.mu.Unlock()
		return d, nil
	}
	if p, ok := cc.inflight[c]; ok {
		cc.mu.Unlock()
		<-p.done
		return p.data, p.err
	}
	p := &pendingChunk{done: make(chan struct{})}
	cc.inflight[c] = p
	cc.mu.Unlock()

	var data []byte
	loc, err := img.storedChunk(c)
	if err == nil {
		data = make([]byte, img.chunkLen(c))
		if err = img.decodeStored(c, loc, data); err != nil {
			data = nil
		}
	}
	p.data, p.err = data, err
	cc.mu.Lock()
	delete(cc.inflight, c)
	if err == nil {
		cc.lru.add(c, data, int64(len(data)))
	}
	cc.mu.Unlock()
	close(p.done)
	return data, err
}

// lookupChunk returns chunk c if it is cached or being decoded, without
// starting a decode.
func (img *Image) lookupChunk(c int64) ([]byte, *pendingChunk) {
	cc := &img.chunks
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if d, ok := cc.lru.get(c); ok {
		return d, nil
	}
	return nil, cc.inflight[c]
}

// ReadAt reads media bytes. Chunks wholly inside p are decoded straight
// into it, several at once; chunks partly inside go through the cache.
// Sequential reads smaller than a few chunks make the next chunks decode
// ahead in the background.
func (img *Image) ReadAt(p []byte, off int64) (int, error) {
	img.mu.RLock()
	closed := img.closed
	img.mu.RUnlock()
	if closed {
		return 0, fmt.Errorf("ewf: read after Close: %w", os.ErrClosed)
	}
	if off < 0 {
		return 0, errors.New("ewf: negative offset")
	}
	if len(p) == 0 {
		return 0, nil
	}
	if off >= img.size {
		return 0, io.EOF
	}
	var eof error
	if int64(len(p)) > img.size-off {
		p, eof = p[:img.size-off], io.EOF
	}
	if n, err := img.fill(p, off); err != nil {
		return n, err
	}
	img.readAhead(off, off+int64(len(p)))
	return len(p), eof
}

// fill reads media bytes [off, off+len(p)), all within the media. On
// error it returns how many leading bytes of p are good.
func (img *Image) fill(p []byte, off int64) (int, error) {
	cs := img.chunkSize
	end := off + int64(len(p))
	first, last := off/cs, (end-1)/cs
	one := func(c int64) error {
		cStart, cLen := c*cs, img.chunkLen(c)
		from, to := max(cStart, off), min(cStart+cLen, end)
		dst := p[from-off : to-off]
		if from == cStart && to == cStart+cLen {
			d, pend := img.lookupChunk(c)
			if pend != nil {
				<-pend.done
				d = pend.data
			}
			if d != nil {
				copy(dst, d)
				return nil
			}
			return img.decodeChunk(c, dst)
		}
		d, err := img.cachedChunk(c)
		if err != nil {
			return err
		}
		copy(dst, d[from-cStart:to-cStart])
		return nil
	}
	good := func(c int64) int { return int(max(c*cs, off) - off) }

	count := last - first + 1
	if count == 1 || img.workers == 1 {
		for c := first; c <= last; c++ {
			if err := one(c); err != nil {
				return good(c), err
			}
		}
		return len(p), nil
	}
	errs := make([]error, count)
	var next, failed atomic.Int64
	next.Store(first)
	failed.Store(math.MaxInt64) // lowest failed chunk: chunks after it are not needed
	var wg sync.WaitGroup
	for range min(int64(img.workers), count) {
		wg.Go(func() {
			for {
				c := next.Add(1) - 1
				if c > last || c > failed.Load() {
					return
				}
				if err := one(c); err != nil {
					errs[c-first] = err
					for f := failed.Load(); c < f && !failed.CompareAndSwap(f, c); f = failed.Load() {
					}
				}
			}
		})
	}
	wg.Wait()
	if f := failed.Load(); f != math.MaxInt64 {
		return good(f), errs[f-first]
	}
	return len(p), nil
}

// readAhead starts decoding the chunks after [off, end) when that read
// followed the previous one.
func (img *Image) readAhead(off, end int64) {
	prev := img.lastEnd.Swap(end)
	if prev != off || img.readahead <= 0 || end-off > img.readahead*img.chunkSize {
		return
	}
	next := (end + img.chunkSize - 1) / img.chunkSize
	for c := next; c < next+img.readahead && c < img.chunkCount; c++ {
		if d, pend := img.lookupChunk(c); d != nil || pend != nil {
			continue
		}
		select {
		case img.slots <- struct{}{}:
		default:
			return // all decoders busy
		}
		img.mu.RLock()
		if img.closed {
			img.mu.RUnlock()
			<-img.slots
			return
		}
		img.prefetch.Add(1)
		img.mu.RUnlock()
		go func() {
			defer img.prefetch.Done()
			defer func() { <-img.slots }()
			img.cachedChunk(c) // an error is reported when the chunk is read
		}()
	}
}
