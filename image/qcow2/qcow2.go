// Package qcow2 reads QEMU qcow2 images (versions 2 and 3) as the raw disk
// they hold: an io.ReaderAt that maps each read through the L1/L2 tables,
// decompressing zlib or zstd clusters on demand into a small cache.
//
// Supported: compressed clusters, zero clusters, extended L2 entries
// (subclusters), and a backing image when the caller opens it and passes it
// in Options. Refused by name: encryption, external data files, a backing
// file that was not given, unknown incompatible features. Internal
// snapshots are ignored (the active state is read); refcounts are not
// needed for reading and are not checked.
package qcow2

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ctrlift/ctrlift/image/vdisk"
)

// Options control NewReader and Open.
type Options struct {
	// Backing is the opened backing image, for an image that names one.
	// The package never opens files by the names an image contains: an
	// image with a backing file and no Backing is refused (BackingError).
	Backing vdisk.Parent
	// CacheBytes bounds the cache of decompressed clusters (0: the
	// default, vdisk.DefaultCacheBytes; negative: no cache).
	CacheBytes int64
}

// FormatError reports a malformed on-disk structure: which one, where it
// is (byte offset in the image file, -1 if unknown) and what is wrong.
type FormatError struct {
	Struct string // "header", "L1 table", "L2 entry", ...
	Offset int64
	Msg    string
}

func (e *FormatError) Error() string {
	var b strings.Builder
	b.WriteString("qcow2: ")
	b.WriteString(e.Struct)
	if e.Offset >= 0 {
		fmt.Fprintf(&b, " at byte %d", e.Offset)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// ErrUnsupported is wrapped by errors about images this reader refuses:
// encryption, external data files, unknown features.
var ErrUnsupported = vdisk.ErrUnsupported

// BackingError is returned for an image that names a backing file when
// Options.Backing was not given.
type BackingError struct {
	Name   string // backing file name as stored in the image
	Format string // backing format from the header extension, "" if absent
}

func (e *BackingError) Error() string {
	return fmt.Sprintf("qcow2: image has backing file %q; give it explicitly (Options.Backing)", e.Name)
}

// Is makes a BackingError match ErrUnsupported and errors.ErrUnsupported.
func (e *BackingError) Is(target error) bool {
	return target == ErrUnsupported || target == errors.ErrUnsupported
}

// Image is an opened qcow2 image. It is safe for concurrent use.
type Image struct {
	r      *vdisk.Reader
	m      *mapper
	info   vdisk.Info
	closer io.Closer
}

// Open opens the qcow2 image at path read-only.
func Open(path string, opt Options) (*Image, error) {
	f, err := os.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	im, err := NewReader(f, st.Size(), opt)
	if err != nil {
		f.Close()
		return nil, err
	}
	im.closer = f
	return im, nil
}

// NewReader reads the qcow2 image r of size bytes. r must stay open while
// the Image is used; Close does not close it.
func NewReader(r io.ReaderAt, size int64, opt Options) (*Image, error) {
	h, err := readHeader(r, size)
	if err != nil {
		return nil, err
	}
	if h.backingName != "" && opt.Backing == nil {
		return nil, &BackingError{Name: h.backingName, Format: h.backingFormat}
	}
	if h.backingName == "" && opt.Backing != nil {
		return nil, errors.New("qcow2: Options.Backing given but the image names no backing file")
	}
	l1, err := readL1(r, size, h)
	if err != nil {
		return nil, err
	}
	m := &mapper{
		file:        r,
		fileSize:    size,
		clusterBits: h.clusterBits,
		clusterSize: int64(1) << h.clusterBits,
		extendedL2:  h.incompatible&incompatExtendedL2 != 0,
		l1:          l1,
		l2Cache:     vdisk.NewCache(l2CacheBytes),
		codec:       vdisk.CodecDeflate,
	}
	if h.compressionType == compressionZstd {
		m.codec = vdisk.CodecZstd
	}
	m.entryLen = l2EntryLen
	if m.extendedL2 {
		m.entryLen = l2ExtendedEntryLen
	}
	m.l2Bits = h.clusterBits - log2(m.entryLen)
	var parent vdisk.Parent
	if h.backingName != "" {
		parent = opt.Backing
	}
	im := &Image{
		m: m,
		r: vdisk.NewReader(vdisk.Config{
			Size:       h.virtualSize,
			Mapper:     m,
			Sources:    []vdisk.Source{{R: r, Size: size}},
			Parent:     parent,
			CacheBytes: opt.CacheBytes,
			Errorf: func(_ int, structure string, off int64, msg string) error {
				return &FormatError{Struct: structure, Offset: off, Msg: msg}
			},
		}),
		info: vdisk.Info{
			Format:      vdisk.QCOW2,
			Subformat:   h.subformat(),
			VirtualSize: h.virtualSize,
			ClusterSize: m.clusterSize,
			Compression: [...]string{compressionZlib: "zlib", compressionZstd: "zstd"}[h.compressionType],
			Backing:     h.backingName,
			Files:       []string{},
			Warnings:    h.warnings,
		},
	}
	return im, nil
}

// l2CacheBytes bounds the cache of L2 tables: with 64 KiB clusters, 4 MiB
// of tables map 32 GiB of disk.
const l2CacheBytes = 4 << 20

// ReadAt reads guest disk bytes.
func (im *Image) ReadAt(p []byte, off int64) (int, error) { return im.r.ReadAt(p, off) }

// Size is the virtual disk size in bytes.
func (im *Image) Size() int64 { return im.r.Size() }

// Info describes the image.
func (im *Image) Info() vdisk.Info {
	i := im.info
	i.Files = append([]string{}, im.info.Files...)
	i.Warnings = append([]string{}, im.info.Warnings...)
	return i
}

// Close closes the file if the Image was made by Open.
func (im *Image) Close() error {
	if im.closer == nil {
		return nil
	}
	err := im.closer.Close()
	im.closer = nil
	return err
}

// header is what NewReader needs from the qcow2 header and extensions.
type header struct {
	version         uint32
	clusterBits     uint
	virtualSize     int64
	l1Size          uint32
	l1Offset        int64
	incompatible    uint64
	compressionType uint8
	backingName     string
	backingFormat   string
	snapshots       uint32
	warnings        []string
}

func (h *header) subformat() string {
	s := fmt.Sprintf("v%d", h.version)
	if h.incompatible&incompatExtendedL2 != 0 {
		s += " extended_l2"
	}
	return s
}

func readHeader(r io.ReaderAt, size int64) (*header, error) {
	if size < v2HeaderLen {
		return nil, &FormatError{"header", 0, fmt.Sprintf("file of %d bytes is smaller than a header", size)}
	}
	b := make([]byte, min(size, v3MinHeaderLen))
	if _, err := r.ReadAt(b, 0); err != nil && err != io.EOF {
		return nil, fmt.Errorf("qcow2: reading header: %w", err)
	}
	be := binary.BigEndian
	if string(b[hdrMagic:hdrMagic+4]) != magic {
		return nil, &FormatError{"header", 0, fmt.Sprintf("bad magic %q", b[:4])}
	}
	h := &header{version: be.Uint32(b[hdrVersion:]), warnings: []string{}}
	switch h.version {
	case 2, 3:
	case 1:
		return nil, fmt.Errorf("qcow2: header at byte %d: %w: qcow version 1 image (convert it with qemu-img)", hdrVersion, ErrUnsupported)
	default:
		return nil, &FormatError{"header", hdrVersion, fmt.Sprintf("unknown version %d", h.version)}
	}
	cb := be.Uint32(b[hdrClusterBits:])
	if cb < minClusterBits || cb > maxClusterBits {
		return nil, &FormatError{"header", hdrClusterBits, fmt.Sprintf("cluster_bits %d outside %d..%d", cb, minClusterBits, maxClusterBits)}
	}
	h.clusterBits = uint(cb)
	clusterSize := int64(1) << cb
	vsize := be.Uint64(b[hdrSize:])
	if vsize > maxVirtualSize {
		return nil, &FormatError{"header", hdrSize, fmt.Sprintf("virtual size %d too large", vsize)}
	}
	h.virtualSize = int64(vsize)
	switch crypt := be.Uint32(b[hdrCryptMethod:]); crypt {
	case cryptNone:
	case cryptAES:
		return nil, fmt.Errorf("qcow2: header at byte %d: %w: encrypted image (AES); this reader does not decrypt", hdrCryptMethod, ErrUnsupported)
	case cryptLUKS:
		return nil, fmt.Errorf("qcow2: header at byte %d: %w: encrypted image (LUKS); this reader does not decrypt", hdrCryptMethod, ErrUnsupported)
	default:
		return nil, &FormatError{"header", hdrCryptMethod, fmt.Sprintf("unknown crypt_method %d", crypt)}
	}
	h.l1Size = be.Uint32(b[hdrL1Size:])
	l1Off := be.Uint64(b[hdrL1TableOffset:])
	if l1Off > uint64(size) {
		return nil, &FormatError{"header", hdrL1TableOffset, fmt.Sprintf("L1 table offset %d past the end of the file (%d bytes)", l1Off, size)}
	}
	h.l1Offset = int64(l1Off)
	h.snapshots = be.Uint32(b[hdrNbSnapshots:])

	headerLen := int64(v2HeaderLen)
	if h.version >= 3 {
		if len(b) < v3MinHeaderLen {
			return nil, &FormatError{"header", 0, fmt.Sprintf("file of %d bytes is smaller than a version 3 header", size)}
		}
		headerLen = int64(be.Uint32(b[hdrHeaderLength:]))
		if headerLen < v3MinHeaderLen || headerLen%8 != 0 || headerLen > clusterSize {
			return nil, &FormatError{"header", hdrHeaderLength, fmt.Sprintf("header_length %d (must be a multiple of 8 from %d to the cluster size)", headerLen, v3MinHeaderLen)}
		}
		h.incompatible = be.Uint64(b[hdrIncompatible:])
	}

	// The header, its extensions and the backing file name all lie in the
	// first cluster.
	first := make([]byte, min(size, clusterSize))
	if _, err := r.ReadAt(first, 0); err != nil && err != io.EOF {
		return nil, fmt.Errorf("qcow2: reading header: %w", err)
	}
	if headerLen > int64(len(first)) {
		return nil, &FormatError{"header", 0, fmt.Sprintf("header_length %d past the end of the file (%d bytes)", headerLen, size)}
	}
	if headerLen > v3MinHeaderLen {
		h.compressionType = first[hdrCompressionType]
	}

	backingOff := be.Uint64(b[hdrBackingFileOffset:])
	extEnd := int64(len(first))
	if backingOff != 0 {
		n := uint64(be.Uint32(b[hdrBackingFileSize:]))
		if n > maxBackingFileNameLen {
			return nil, &FormatError{"header", hdrBackingFileSize, fmt.Sprintf("backing file name of %d bytes (at most %d)", n, maxBackingFileNameLen)}
		}
		if backingOff < uint64(headerLen) || backingOff+n > uint64(len(first)) {
			return nil, &FormatError{"header", hdrBackingFileOffset, fmt.Sprintf("backing file name at %d (+%d) outside the first cluster", backingOff, n)}
		}
		h.backingName = string(first[backingOff : backingOff+n])
		if h.backingName == "" {
			return nil, &FormatError{"header", hdrBackingFileSize, "empty backing file name"}
		}
		extEnd = int64(backingOff)
	}

	features, dataFile, err := h.readExtensions(first[:extEnd], headerLen)
	if err != nil {
		return nil, err
	}

	if unknown := h.incompatible &^ incompatKnown; unknown != 0 {
		var names []string
		for bit := range 64 {
			if unknown&(1<<bit) != 0 {
				n := fmt.Sprintf("bit %d", bit)
				if name := features[bit]; name != "" {
					n += " (" + name + ")"
				}
				names = append(names, n)
			}
		}
		return nil, fmt.Errorf("qcow2: header at byte %d: %w: unknown incompatible features: %s", hdrIncompatible, ErrUnsupported, strings.Join(names, ", "))
	}
	if h.incompatible&incompatExternalData != 0 {
		name := ""
		if dataFile != "" {
			name = fmt.Sprintf(" %q", dataFile)
		}
		return nil, fmt.Errorf("qcow2: header at byte %d: %w: guest data is in an external data file%s", hdrIncompatible, ErrUnsupported, name)
	}
	switch {
	case h.incompatible&incompatCompressionType != 0 && h.compressionType == compressionZlib:
		return nil, &FormatError{"header", hdrCompressionType, "compression type bit set but compression_type is zlib"}
	case h.compressionType != compressionZlib && h.compressionType != compressionZstd:
		return nil, fmt.Errorf("qcow2: header at byte %d: %w: compression_type %d", hdrCompressionType, ErrUnsupported, h.compressionType)
	case h.compressionType != compressionZlib && h.incompatible&incompatCompressionType == 0:
		return nil, &FormatError{"header", hdrCompressionType, fmt.Sprintf("compression_type %d without the compression type feature bit", h.compressionType)}
	}
	if h.incompatible&incompatExtendedL2 != 0 && h.clusterBits < minClusterBitsExtL2 {
		return nil, &FormatError{"header", hdrClusterBits, fmt.Sprintf("extended L2 entries need clusters of at least %d bytes, not %d", 1<<minClusterBitsExtL2, clusterSize)}
	}
	if h.incompatible&incompatDirty != 0 {
		h.warnings = append(h.warnings, "dirty bit set: the image was not closed cleanly; refcounts may be stale (not needed for reading)")
	}
	if h.incompatible&incompatCorrupt != 0 {
		h.warnings = append(h.warnings, "corrupt bit set: qemu found inconsistent metadata; some reads may fail or be wrong")
	}
	if h.snapshots > 0 {
		h.warnings = append(h.warnings, fmt.Sprintf("%d internal snapshots present; the active state is read", h.snapshots))
	}
	return h, nil
}

// readExtensions walks the header extensions in area (the first cluster up
// to the backing file name), returning the feature name table by
// incompatible bit and the external data file name.
func (h *header) readExtensions(area []byte, start int64) (features map[int]string, dataFile string, err error) {
	features = map[int]string{}
	be := binary.BigEndian
	// Each extension is at least 8 bytes, so the walk ends.
	for off := start; off+headerExtensionMinSize <= int64(len(area)); {
		typ := be.Uint32(area[off:])
		n := int64(be.Uint32(area[off+4:]))
		data := off + headerExtensionMinSize
		if typ == extEnd {
			break
		}
		if n > int64(len(area))-data {
			return nil, "", &FormatError{"header extension", off, fmt.Sprintf("type %#x of %d bytes overruns the header area (%d bytes)", typ, n, len(area))}
		}
		body := area[data : data+n]
		switch typ {
		case extBackingFormat:
			h.backingFormat = string(body)
		case extExternalDataFN:
			dataFile = string(body)
		case extFeatureNames:
			for i := 0; i+featureNameEntryLen <= len(body); i += featureNameEntryLen {
				e := body[i : i+featureNameEntryLen]
				if e[0] == featureIncompatible && e[1] < 64 {
					features[int(e[1])] = strings.TrimRight(string(e[2:2+featureNameLen]), "\x00")
				}
			}
		}
		off = data + (n+7)&^7
	}
	return features, dataFile, nil
}

// readL1 loads the L1 entries that cover the virtual size.
func readL1(r io.ReaderAt, size int64, h *header) ([]uint64, error) {
	clusterSize := int64(1) << h.clusterBits
	entryLen := int64(l2EntryLen)
	if h.incompatible&incompatExtendedL2 != 0 {
		entryLen = l2ExtendedEntryLen
	}
	perL2 := clusterSize / entryLen
	bytesPerL1Entry := perL2 * clusterSize
	need := (h.virtualSize + bytesPerL1Entry - 1) / bytesPerL1Entry
	if int64(h.l1Size) < need {
		return nil, &FormatError{"header", hdrL1Size, fmt.Sprintf("L1 table of %d entries cannot map a %d-byte disk (needs %d)", h.l1Size, h.virtualSize, need)}
	}
	if int64(h.l1Size)*8 > maxL1Bytes {
		return nil, &FormatError{"header", hdrL1Size, fmt.Sprintf("L1 table of %d entries exceeds %d bytes", h.l1Size, maxL1Bytes)}
	}
	if need == 0 {
		return nil, nil
	}
	if h.l1Offset%clusterSize != 0 || h.l1Offset == 0 {
		return nil, &FormatError{"header", hdrL1TableOffset, fmt.Sprintf("L1 table offset %d not a non-zero multiple of the cluster size", h.l1Offset)}
	}
	if need*8 > size-h.l1Offset {
		return nil, &FormatError{"L1 table", h.l1Offset, fmt.Sprintf("%d entries run past the end of the file (%d bytes)", need, size)}
	}
	b := make([]byte, need*8)
	if _, err := r.ReadAt(b, h.l1Offset); err != nil && err != io.EOF {
		return nil, fmt.Errorf("qcow2: reading L1 table: %w", err)
	}
	l1 := make([]uint64, need)
	for i := range l1 {
		l1[i] = binary.BigEndian.Uint64(b[i*8:])
	}
	return l1, nil
}

func log2(n int64) uint {
	var b uint
	for n > 1 {
		n >>= 1
		b++
	}
	return b
}
