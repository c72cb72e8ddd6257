package vdisk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
)

// ExtentKind says where the bytes of an Extent come from.
type ExtentKind uint8

// Extent kinds.
const (
	ExtentZero       ExtentKind = iota // reads as zeros, whatever a parent holds
	ExtentBacking                      // not in this image: the parent's bytes, or zeros without a parent
	ExtentStored                       // stored as is at Offset in Sources[Source]
	ExtentCompressed                   // inside a compressed block stored at Offset
)

var extentKindNames = [...]string{ExtentZero: "zero", ExtentBacking: "backing", ExtentStored: "stored", ExtentCompressed: "compressed"}

func (k ExtentKind) String() string {
	if int(k) < len(extentKindNames) {
		return extentKindNames[k]
	}
	return fmt.Sprintf("ExtentKind(%d)", uint8(k))
}

// Framing is how a compressed block's stored bytes are laid out.
type Framing uint8

// Framings of compressed blocks.
const (
	FramingNone Framing = iota // the compressed stream starts at Offset
	// FramingGrainMarker: a 12-byte VMDK grain marker (uint64 LBA, uint32
	// length, little-endian) precedes the stream and gives its length.
	FramingGrainMarker
)

// GrainMarkerLen is the size of the header of FramingGrainMarker.
const GrainMarkerLen = 12

// Extent describes a run of virtual-disk bytes that are stored alike,
// starting at the offset that was asked of Mapper.Map.
type Extent struct {
	Kind ExtentKind
	Len  int64 // virtual bytes in the run, from the asked offset; > 0

	Source int   // ExtentStored, ExtentCompressed: index into the Reader's sources
	Offset int64 // ExtentStored: file offset of the asked byte; ExtentCompressed: of the block's stored form

	// ExtentCompressed only.
	Codec      Codec
	Framing    Framing
	StoredLen  int64 // bytes stored (for FramingGrainMarker: an upper bound); clipped at the end of the file
	BlockLen   int64 // decompressed size of the whole block
	Within     int64 // offset of the asked byte in the decompressed block
	AllowShort bool  // a stream ending before BlockLen is zero-filled rather than an error
}

// Mapper is a format's block map. It must be safe for concurrent use.
type Mapper interface {
	// Map describes the bytes at virtual offset off, 0 <= off < Size.
	Map(off int64) (Extent, error)
}

// Source is a file holding an image's data.
type Source struct {
	R    io.ReaderAt
	Size int64
}

// Parent is a backing image opened by the caller: an io.ReaderAt with a
// size (an *io.SectionReader, or another format's Image).
type Parent interface {
	io.ReaderAt
	Size() int64
}

// ErrorFunc builds a format's own error for a structure at a byte offset of
// source src.
type ErrorFunc func(src int, structure string, off int64, msg string) error

// Config sets up a Reader.
type Config struct {
	Size       int64 // virtual disk bytes
	Mapper     Mapper
	Sources    []Source
	Parent     Parent // nil: ExtentBacking reads zeros
	CacheBytes int64  // bound of the decompressed-block cache; 0 = DefaultCacheBytes, < 0 = none
	Workers    int    // blocks decompressed at once per ReadAt; 0 = GOMAXPROCS
	Errorf     ErrorFunc
}

// DefaultCacheBytes bounds the cache of decompressed blocks by default.
const DefaultCacheBytes = 8 << 20

// MaxBlockLen bounds the decompressed size of one block (qcow2 allows 2 MiB
// clusters, VMDK grains are smaller); a larger claim is refused rather
// than allocated.
const MaxBlockLen = 8 << 20

// maxStoredLen bounds how much compressed input is read for one block: a
// compressed block larger than twice its decompressed size is malformed.
func maxStoredLen(blockLen int64) int64 { return 2*blockLen + 4096 }

// Reader is an io.ReaderAt of a virtual disk, reading through a Mapper.
// It is safe for concurrent use.
type Reader struct {
	size    int64
	m       Mapper
	srcs    []Source
	parent  Parent
	cache   *Cache
	workers int
	errorf  ErrorFunc
	inBufs  sync.Pool // *[]byte compressed-input buffers
}

// NewReader returns a Reader for cfg.
func NewReader(cfg Config) *Reader {
	cacheBytes := cfg.CacheBytes
	if cacheBytes == 0 {
		cacheBytes = DefaultCacheBytes
	}
	workers := cfg.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	errorf := cfg.Errorf
	if errorf == nil {
		errorf = func(src int, structure string, off int64, msg string) error {
			return fmt.Errorf("%s at byte %d: %s", structure, off, msg)
		}
	}
	return &Reader{size: cfg.Size, m: cfg.Mapper, srcs: cfg.Sources, parent: cfg.Parent,
		cache: NewCache(cacheBytes), workers: workers, errorf: errorf}
}

// Size is the virtual disk size in bytes.
func (r *Reader) Size() int64 { return r.size }

// job is one compressed block to decompress into dst.
type job struct {
	e   Extent
	dst []byte
}

// ReadAt reads virtual-disk bytes. Runs stored contiguously in the file are
// read with one call; compressed blocks missing from the cache are
// decompressed in parallel.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	if off >= r.size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	var atEOF error
	if int64(len(p)) > r.size-off {
		p = p[:r.size-off]
		atEOF = io.EOF
	}
	var (
		jobs []job
		// pending is a stored run not yet read, grown while the next one
		// continues it in the same file.
		pending    Extent
		pendingDst []byte
	)
	flush := func() error {
		if pendingDst == nil {
			return nil
		}
		err := r.readStored(pending, pendingDst)
		pendingDst = nil
		return err
	}
	for pos := int64(0); pos < int64(len(p)); {
		at := off + pos
		e, err := r.m.Map(at)
		if err != nil {
			return 0, err
		}
		if e.Len <= 0 {
			return 0, fmt.Errorf("internal error: empty extent at virtual byte %d", at)
		}
		n := min(e.Len, int64(len(p))-pos)
		dst := p[pos : pos+n]
		// pendingDst, when set, ends at pos: extend it if this run follows
		// it in the same file.
		if e.Kind == ExtentStored && pendingDst != nil && e.Source == pending.Source &&
			e.Offset == pending.Offset+int64(len(pendingDst)) {
			pendingDst = p[pos-int64(len(pendingDst)) : pos+n]
			pos += n
			continue
		}
		if err := flush(); err != nil {
			return 0, err
		}
		switch e.Kind {
		case ExtentZero:
			clear(dst)
		case ExtentBacking:
			if err := r.readParent(dst, at); err != nil {
				return 0, err
			}
		case ExtentStored:
			pending, pendingDst = e, dst
		case ExtentCompressed:
			if err := r.checkCompressed(&e); err != nil {
				return 0, err
			}
			if n > e.BlockLen-e.Within {
				return 0, fmt.Errorf("internal error: extent at virtual byte %d runs past its block", at)
			}
			if b, ok := r.cache.Get(CacheKey{e.Source, e.Offset}); ok && int64(len(b)) == e.BlockLen {
				copy(dst, b[e.Within:])
			} else {
				jobs = append(jobs, job{e, dst})
			}
		default:
			return 0, fmt.Errorf("internal error: extent kind %v", e.Kind)
		}
		pos += n
	}
	if err := flush(); err != nil {
		return 0, err
	}
	if err := r.runJobs(jobs); err != nil {
		return 0, err
	}
	return len(p), atEOF
}

// readStored reads a stored run, which must lie within its file.
func (r *Reader) readStored(e Extent, dst []byte) error {
	if e.Source < 0 || e.Source >= len(r.srcs) {
		return fmt.Errorf("internal error: source %d", e.Source)
	}
	src := r.srcs[e.Source]
	if e.Offset < 0 || e.Offset > src.Size || int64(len(dst)) > src.Size-e.Offset {
		return r.errorf(e.Source, "data", e.Offset, fmt.Sprintf("%d bytes run past the end of the file (%d bytes)", len(dst), src.Size))
	}
	n, err := src.R.ReadAt(dst, e.Offset)
	if n == len(dst) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("reading data at byte %d: %w", e.Offset, err)
}

// readParent reads the parent at the same virtual offset; past the
// parent's end (or without one) the bytes are zeros.
func (r *Reader) readParent(dst []byte, at int64) error {
	var n int64
	if r.parent != nil {
		if ps := r.parent.Size(); at < ps {
			n = min(int64(len(dst)), ps-at)
			m, err := r.parent.ReadAt(dst[:n], at)
			if int64(m) != n {
				if err == nil || err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return fmt.Errorf("reading backing image at byte %d: %w", at, err)
			}
		}
	}
	clear(dst[n:])
	return nil
}

// checkCompressed validates a compressed extent and clips its stored
// length at the end of the file.
func (r *Reader) checkCompressed(e *Extent) error {
	if e.Source < 0 || e.Source >= len(r.srcs) {
		return fmt.Errorf("internal error: source %d", e.Source)
	}
	if e.BlockLen <= 0 || e.BlockLen > MaxBlockLen || e.Within < 0 || e.Within >= e.BlockLen {
		return fmt.Errorf("internal error: compressed block of %d bytes, offset %d", e.BlockLen, e.Within)
	}
	size := r.srcs[e.Source].Size
	if e.Offset < 0 || e.Offset >= size {
		return r.errorf(e.Source, "compressed block", e.Offset, fmt.Sprintf("past the end of the file (%d bytes)", size))
	}
	if e.StoredLen <= 0 || e.StoredLen > maxStoredLen(e.BlockLen) {
		return r.errorf(e.Source, "compressed block", e.Offset, fmt.Sprintf("stored length %d for a %d-byte block", e.StoredLen, e.BlockLen))
	}
	e.StoredLen = min(e.StoredLen, size-e.Offset)
	return nil
}

// runJobs decompresses the blocks on up to r.workers goroutines.
func (r *Reader) runJobs(jobs []job) error {
	workers := min(r.workers, len(jobs))
	if workers <= 1 {
		for _, j := range jobs {
			if err := r.runJob(j); err != nil {
				return err
			}
		}
		return nil
	}
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		firstErr error
		errOnce  sync.Once
		failed   atomic.Bool
	)
	for range workers {
		wg.Go(func() {
			for !failed.Load() {
				i := next.Add(1) - 1
				if i >= int64(len(jobs)) {
					return
				}
				if err := r.runJob(jobs[i]); err != nil {
					errOnce.Do(func() { firstErr = err })
					failed.Store(true)
					return
				}
			}
		})
	}
	wg.Wait()
	return firstErr
}

// runJob decompresses one block. A block read whole goes straight into the
// caller's buffer; a part of a block is served from a cached copy.
func (r *Reader) runJob(j job) error {
	e := j.e
	whole := e.Within == 0 && int64(len(j.dst)) == e.BlockLen
	var block []byte
	if whole {
		block = j.dst
	} else {
		block = make([]byte, e.BlockLen)
	}
	if err := r.decompressBlock(e, block); err != nil {
		return err
	}
	if !whole {
		r.cache.Put(CacheKey{e.Source, e.Offset}, block)
		copy(j.dst, block[e.Within:])
	}
	return nil
}

func (r *Reader) decompressBlock(e Extent, block []byte) error {
	bufp, _ := r.inBufs.Get().(*[]byte)
	if bufp == nil {
		bufp = new([]byte)
	}
	defer r.inBufs.Put(bufp)
	if int64(cap(*bufp)) < e.StoredLen {
		*bufp = make([]byte, e.StoredLen)
	}
	in := (*bufp)[:e.StoredLen]
	n, err := r.srcs[e.Source].R.ReadAt(in, e.Offset)
	if int64(n) != e.StoredLen {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("reading compressed block at byte %d: %w", e.Offset, err)
	}
	if e.Framing == FramingGrainMarker {
		if len(in) < GrainMarkerLen {
			return r.errorf(e.Source, "grain marker", e.Offset, "truncated")
		}
		size := int64(binary.LittleEndian.Uint32(in[8:12]))
		if size == 0 || size > int64(len(in))-GrainMarkerLen {
			return r.errorf(e.Source, "grain marker", e.Offset,
				fmt.Sprintf("compressed size %d does not fit (at most %d bytes available)", size, int64(len(in))-GrainMarkerLen))
		}
		in = in[GrainMarkerLen : GrainMarkerLen+size]
	}
	if err := decompress(e.Codec, in, block, e.AllowShort); err != nil {
		return r.errorf(e.Source, "compressed block", e.Offset, err.Error())
	}
	return nil
}
