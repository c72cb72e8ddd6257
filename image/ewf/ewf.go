// Package ewf reads Expert Witness Format evidence files (EWF-E01 as written
// by EnCase 1 to 7, linen, FTK Imager and libewf's ewfacquire, and the SMART
// EWF-S01 variant) as an io.ReaderAt of the acquired media.
//
// Nothing is decompressed up front: Open walks the section chain of every
// segment file (.E01, .E02, … .E99, .EAA, …), checks it and records where
// the chunk tables are; ReadAt decodes the chunks it needs, on all cores for
// large reads, and keeps a small LRU of decoded chunks. Every chunk is
// checked (its zlib Adler-32, or the checksum stored after an uncompressed
// chunk); a bad chunk is an error naming the chunk, never zeros.
//
// EWF2 (Ex01, Lx01) and logical evidence files (L01) are recognised and
// refused with an error wrapping errors.ErrUnsupported.
package ewf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ctrlift/ctrlift/vfs"
)

// FormatError reports a malformed or inconsistent structure: which one,
// in which segment file and where, and what was bad. Errors about a chunk
// also name the chunk and the media offset it holds.
type FormatError struct {
	Struct  string // "file header", "section descriptor", "volume section", "table section", "chunk", ...
	Segment string // segment file name, "" if not tied to one
	Offset  int64  // byte offset in the segment file, -1 if unknown
	Chunk   int64  // chunk number, -1 if the error is not about a chunk
	Media   int64  // media byte offset of the chunk's first byte, -1 if none
	Msg     string // what is wrong, with the bad value
	Err     error  // underlying cause, if any
}

func (e *FormatError) Error() string {
	var b strings.Builder
	b.WriteString("ewf: ")
	if e.Segment != "" {
		b.WriteString(e.Segment)
		b.WriteString(": ")
	}
	b.WriteString(e.Struct)
	if e.Chunk >= 0 {
		fmt.Fprintf(&b, " %d", e.Chunk)
		if e.Media >= 0 {
			fmt.Fprintf(&b, " (media byte %d)", e.Media)
		}
	}
	if e.Offset >= 0 {
		fmt.Fprintf(&b, " at byte %d", e.Offset)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *FormatError) Unwrap() error { return e.Err }

// ErrUnsupported is wrapped by errors about EWF variants this reader
// recognises but does not read (Ex01, L01, Lx01).
var ErrUnsupported error = vfs.Unsupported("unsupported") // matches errors.ErrUnsupported

// Sniff reports whether head starts with an EWF signature: EWF-E01/S01, or
// one of the variants Open refuses by name (Ex01, L01, Lx01), so that they
// get a clear error rather than "unknown format". It never looks at a file
// name.
func Sniff(head []byte) bool {
	for _, sig := range [][]byte{evfSignature, lvfSignature, evf2Signature, lef2Signature} {
		if bytes.HasPrefix(head, sig) {
			return true
		}
	}
	return false
}

// Options tune Open.
type Options struct {
	// CacheBytes bounds the decoded chunks kept for reuse (default 32 MiB;
	// at least four chunks are always kept).
	CacheBytes int64
	// Workers is how many chunks are decoded at once (default GOMAXPROCS).
	Workers int
}

const defaultCacheBytes = 32 << 20

// Variant is the flavour of EWF version 1 an image was written in.
type Variant int

const (
	VariantE01   Variant = iota // EnCase, linen, FTK Imager, ewfacquire: 1052-byte volume section
	VariantSMART                // SMART / original EWF (.s01): 94-byte volume section, no table checksums
)

func (v Variant) String() string {
	switch v {
	case VariantE01:
		return "EWF-E01"
	case VariantSMART:
		return "EWF-S01"
	}
	return fmt.Sprintf("Variant(%d)", int(v))
}

// MarshalText makes JSON show the name.
func (v Variant) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// MediaType is the kind of medium acquired, from the volume section.
type MediaType uint8

const (
	MediaRemovable MediaType = 0x00
	MediaFixed     MediaType = 0x01
	MediaOptical   MediaType = 0x03
	MediaLogical   MediaType = 0x0e // logical evidence file
	MediaMemory    MediaType = 0x10 // physical memory (RAM)
)

func (m MediaType) String() string {
	switch m {
	case MediaRemovable:
		return "removable"
	case MediaFixed:
		return "fixed"
	case MediaOptical:
		return "optical"
	case MediaLogical:
		return "logical"
	case MediaMemory:
		return "memory"
	}
	return fmt.Sprintf("unknown (0x%02x)", uint8(m))
}

// MarshalText makes JSON show the name.
func (m MediaType) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// Compression is the compression level recorded at acquisition.
type Compression int

const (
	CompressionUnknown Compression = iota // not recorded (SMART without header value)
	CompressionNone
	CompressionFast
	CompressionBest
)

func (c Compression) String() string {
	switch c {
	case CompressionNone:
		return "none"
	case CompressionFast:
		return "fast"
	case CompressionBest:
		return "best"
	}
	return "unknown"
}

// MarshalText makes JSON show the name.
func (c Compression) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// SectorRange is a run of sectors, e.g. one that could not be read during
// acquisition (the image holds zeros there).
type SectorRange struct {
	First uint64 `json:"first"`
	Count uint64 `json:"count"`
}

// Session is a session (track) of an optical disc.
type Session struct {
	FirstSector uint64 `json:"first_sector"` // as stored: 16 for a first session that starts at sector 0
	Audio       bool   `json:"audio"`
}

// Info is what the evidence files say about the acquisition. Text values
// come from the header2 section (UTF-16) when present, else from header,
// else from an EWF-X xheader.
type Info struct {
	Variant  Variant `json:"variant"`
	Segments int     `json:"segments"`

	CaseNumber     string `json:"case_number"`
	EvidenceNumber string `json:"evidence_number"`
	Examiner       string `json:"examiner"`
	Description    string `json:"description"`
	Notes          string `json:"notes"`
	Model          string `json:"model,omitempty"`         // of the acquired device
	SerialNumber   string `json:"serial_number,omitempty"` // of the acquired device
	DeviceLabel    string `json:"device_label,omitempty"`

	// Dates as recorded: header2 (and linen) store POSIX times, which are
	// returned in UTC; the header section of EnCase stores the acquiring
	// machine's wall clock without a zone, returned in time.Local. The
	// text as stored is kept beside. Zero when absent or unparsable.
	AcquisitionDate     time.Time `json:"acquisition_date"`
	SystemDate          time.Time `json:"system_date"`
	AcquisitionDateText string    `json:"acquisition_date_text"`
	SystemDateText      string    `json:"system_date_text"`

	AcquirySoftware        string `json:"acquiry_software,omitempty"` // only EWF-X records a name
	AcquirySoftwareVersion string `json:"acquiry_software_version"`
	AcquiryOS              string `json:"acquiry_os"`
	PasswordSet            bool   `json:"password_set"` // EnCase's password hash is set (the data is not encrypted)

	MediaType        MediaType   `json:"media_type"`
	Physical         bool        `json:"physical"` // a physical device rather than a logical volume
	WriteBlocker     string      `json:"write_blocker,omitempty"`
	BytesPerSector   uint32      `json:"bytes_per_sector"`
	SectorCount      uint64      `json:"sector_count"`
	SectorsPerChunk  uint32      `json:"sectors_per_chunk"`
	ChunkSize        int64       `json:"chunk_size"`
	ChunkCount       int64       `json:"chunk_count"`
	ErrorGranularity uint32      `json:"error_granularity,omitempty"` // sectors
	Compression      Compression `json:"compression"`
	SetIdentifier    string      `json:"set_identifier,omitempty"` // GUID of the segment file set

	// Stored hashes of the media (lower-case hex), "" when absent.
	MD5  string `json:"md5"`
	SHA1 string `json:"sha1"`

	AcquisitionErrors []SectorRange `json:"acquisition_errors,omitempty"` // sectors unreadable at acquisition
	Sessions          []Session     `json:"sessions,omitempty"`
	Incomplete        bool          `json:"incomplete,omitempty"` // an "incomplete" section was found
	Warnings          []string      `json:"warnings,omitempty"`   // problems that did not prevent reading
}

// segment is one opened segment file.
type segment struct {
	name   string
	r      io.ReaderAt
	size   int64
	closer io.Closer
}

// table records where one table section's entries and chunks are; its
// entries are read when first needed.
type table struct {
	seg       int   // index into Image.segs
	section   int64 // file offset of the table section descriptor
	entries   int64 // file offset of the entry array
	mirror    int64 // file offset of the table2 entry array, -1 if none
	count     int64 // entries
	first     int64 // chunk number of the first entry
	base      int64 // added to every entry offset
	footer    bool  // an Adler-32 of the entries follows them
	dataStart int64 // file range holding this table's chunks
	dataEnd   int64
}

// Image is an opened EWF image. It is safe for concurrent use.
type Image struct {
	dir        string // of the segment files
	segs       []segment
	tables     []table
	info       Info
	size       int64
	chunkSize  int64
	chunkCount int64
	workers    int

	chunks  chunkCache
	entries entryCache
	zeros   zeroStreams

	mu        sync.RWMutex // guards closed against starting prefetches
	closed    bool
	prefetch  sync.WaitGroup
	slots     chan struct{} // prefetch decodes under way
	lastEnd   atomic.Int64  // end of the last ReadAt, to spot sequential reading
	readahead int64         // chunks to prefetch on sequential reads
}

// Open opens the image whose first segment file is path (.E01, .e01, .s01):
// the following segments are found beside it by the naming scheme. Every
// segment is opened read-only from the first one's directory and may not
// lead out of it (a symlink to elsewhere is refused). When path itself is a
// symlink, its target's directory is used.
func Open(path string, opt Options) (*Image, error) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, err
	}
	dir, first := filepath.Split(real)
	if dir == "" {
		dir = "."
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close() // open files outlive it
	img, err := openSegments(opt, func(n int) (segment, error) {
		name, err := segmentName(first, n)
		if err != nil {
			return segment{}, err
		}
		// Stat first, and open without blocking: opening a FIFO (or a
		// device) put where a segment should be could block or have
		// effects.
		if st, err := root.Stat(name); err != nil {
			return segment{name: name}, err
		} else if !st.Mode().IsRegular() {
			return segment{name: name}, fmt.Errorf("%s: not a regular file", name)
		}
		f, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			return segment{name: name}, err
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return segment{name: name}, err
		}
		if !st.Mode().IsRegular() {
			f.Close()
			return segment{name: name}, fmt.Errorf("%s: not a regular file", name)
		}
		return segment{name: name, r: f, size: st.Size(), closer: f}, nil
	})
	if img != nil {
		img.dir = dir
	}
	return img, err
}

// Segments are the paths of the segment files read, first one first.
func (img *Image) Segments() []string {
	out := make([]string, len(img.segs))
	for i, s := range img.segs {
		out[i] = filepath.Join(img.dir, s.name)
	}
	return out
}

// openSegments builds an Image from the segments that open(1), open(2), …
// return, until one ends with a done section.
func openSegments(opt Options, open func(n int) (segment, error)) (*Image, error) {
	img := &Image{workers: opt.Workers}
	if img.workers <= 0 {
		img.workers = runtime.GOMAXPROCS(0)
	}
	b := newBuilder(img)
	for n := 1; ; n++ {
		seg, err := open(n)
		if err != nil {
			img.closeSegments()
			if n == 1 {
				return nil, err
			}
			msg := fmt.Sprintf("segment %d cannot be opened (segment %d ends with a next section)", n, n-1)
			if errors.Is(err, fs.ErrNotExist) {
				msg = fmt.Sprintf("segment %d is missing (segment %d ends with a next section)", n, n-1)
			}
			return nil, &FormatError{Struct: "segment file", Segment: seg.name, Offset: -1, Chunk: -1, Media: -1, Msg: msg, Err: err}
		}
		img.segs = append(img.segs, seg)
		last, err := b.walkSegment(len(img.segs)-1, n)
		if err != nil {
			img.closeSegments()
			return nil, err
		}
		if last {
			break
		}
		if n >= maxSegments {
			img.closeSegments()
			return nil, &FormatError{Struct: "segment file", Segment: seg.name, Offset: -1, Chunk: -1, Media: -1,
				Msg: fmt.Sprintf("more than %d segments", maxSegments)}
		}
	}
	if err := b.finish(); err != nil {
		img.closeSegments()
		return nil, err
	}
	img.setupCaches(opt.CacheBytes)
	return img, nil
}

// Size returns the size of the acquired media in bytes.
func (img *Image) Size() int64 { return img.size }

// Info returns the acquisition metadata.
func (img *Image) Info() Info {
	in := img.info
	in.AcquisitionErrors = append([]SectorRange(nil), in.AcquisitionErrors...)
	in.Sessions = append([]Session(nil), in.Sessions...)
	in.Warnings = append([]string(nil), in.Warnings...)
	return in
}

// Close closes the segment files. Reads under way may fail.
func (img *Image) Close() error {
	img.mu.Lock()
	if img.closed {
		img.mu.Unlock()
		return nil
	}
	img.closed = true
	img.mu.Unlock()
	img.prefetch.Wait()
	return img.closeSegments()
}

func (img *Image) closeSegments() error {
	var first error
	for _, s := range img.segs {
		if s.closer != nil {
			if err := s.closer.Close(); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}

// segmentName names segment n of the set whose first segment is first:
// x.E01 … x.E99, then x.EAA … x.EZZ, x.FAA … x.ZZZ (lower case, or .s01
// for SMART, likewise).
func segmentName(first string, n int) (string, error) {
	if n == 1 {
		return first, nil
	}
	ext := filepath.Ext(first)
	if len(ext) != 4 || ext[2:] != "01" || !isLetter(ext[1]) {
		return "", fmt.Errorf("ewf: cannot name segment %d: the first segment %q does not end in .E01 (or .e01, .s01)", n, first)
	}
	stem := first[:len(first)-3]
	lead := ext[1]
	if n <= 99 {
		return fmt.Sprintf("%s%c%02d", stem, lead, n), nil
	}
	k := n - 100
	upper := lead >= 'A' && lead <= 'Z'
	a := byte('a')
	if upper {
		a = 'A'
	}
	l := int(lead) + k/(26*26)
	if l > int(a)+25 {
		return "", fmt.Errorf("ewf: segment %d is past the last name the scheme allows", n)
	}
	return fmt.Sprintf("%s%c%c%c", stem, byte(l), a+byte(k/26%26), a+byte(k%26)), nil
}

func isLetter(c byte) bool { return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' }
