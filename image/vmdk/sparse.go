package vmdk

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"strings"

	"github.com/ctrlift/ctrlift/image/vdisk"
)

var le = binary.LittleEndian

// sparseExtent is a hosted sparse extent file: header, grain directory,
// grain tables, grains (compressed, with markers, in stream-optimized
// files).
type sparseExtent struct {
	src         int
	file        io.ReaderAt
	fileSize    int64
	name        string
	version     uint32
	capacity    int64 // bytes
	grainSize   int64 // bytes
	gtes        int64 // entries per grain table
	gd          []uint32
	compressed  bool
	markers     bool
	zeroGrain   bool
	unclean     bool
	footer      bool   // the header came from the footer
	descriptor  string // embedded descriptor text, "" if none
	gtCache     *vdisk.Cache
	descAtBytes int64
}

// openSparse reads the header (or footer), the embedded descriptor and the
// grain directory of a sparse extent.
func openSparse(r io.ReaderAt, size int64, src int, name string, gtCache *vdisk.Cache) (*sparseExtent, error) {
	ferr := func(structure string, off int64, msg string) error {
		return &FormatError{File: name, Struct: structure, Offset: off, Msg: msg}
	}
	if size < headerLen {
		return nil, ferr("sparse header", 0, fmt.Sprintf("file of %d bytes is smaller than a header", size))
	}
	h := make([]byte, headerLen)
	if _, err := r.ReadAt(h, 0); err != nil && err != io.EOF {
		return nil, fmt.Errorf("vmdk: %sreading header: %w", prefix(name), err)
	}
	switch string(h[:4]) {
	case sparseMagic:
	case cowdMagic:
		return nil, fmt.Errorf("vmdk: %s%w: ESX sparse extent (COWD, VMFSSPARSE)", prefix(name), ErrUnsupported)
	default:
		return nil, ferr("sparse header", 0, fmt.Sprintf("bad magic %q", h[:4]))
	}
	s := &sparseExtent{src: src, file: r, fileSize: size, name: name, gtCache: gtCache}

	// Embedded descriptor (in the first header; the footer repeats it).
	descOff, descLen := le.Uint64(h[hdrDescriptorOffset:]), le.Uint64(h[hdrDescriptorSize:])
	if descOff != 0 && descLen != 0 {
		if descOff > uint64(size)/sectorSize || descLen > maxDescriptorLen/sectorSize {
			return nil, ferr("sparse header", hdrDescriptorOffset, fmt.Sprintf("embedded descriptor at sector %d (%d sectors) outside the file or too large", descOff, descLen))
		}
		s.descAtBytes = int64(descOff) * sectorSize
		b := make([]byte, min(int64(descLen)*sectorSize, size-s.descAtBytes))
		if _, err := r.ReadAt(b, s.descAtBytes); err != nil && err != io.EOF {
			return nil, fmt.Errorf("vmdk: %sreading embedded descriptor: %w", prefix(name), err)
		}
		if i := bytes.IndexByte(b, 0); i >= 0 {
			b = b[:i]
		}
		s.descriptor = string(b)
	}

	hdrAt := int64(0) // of the header read: the first sector, or the footer
	if le.Uint64(h[hdrGDOffset:]) == gdAtEnd {
		footer, err := readFooter(r, size, ferr)
		if err != nil {
			return nil, err
		}
		h, s.footer = footer, true
		hdrAt = size - footerFromEnd + sectorSize
	}

	s.version = le.Uint32(h[hdrVersion:])
	if s.version < 1 || s.version > 3 {
		return nil, fmt.Errorf("vmdk: %ssparse header at byte %d: %w: sparse extent version %d", prefix(name), hdrAt+hdrVersion, ErrUnsupported, s.version)
	}
	flags := le.Uint32(h[hdrFlags:])
	if flags&flagNewlineCheck != 0 && string(h[hdrNewlineChecks:hdrNewlineChecks+4]) != newlineChecks {
		return nil, ferr("sparse header", hdrNewlineChecks, "newline check bytes altered (was the file transferred in text mode?)")
	}
	switch alg := le.Uint16(h[hdrCompressAlgorithm:]); alg {
	case compressNone:
	case compressDeflate:
		s.compressed = true
	default:
		return nil, fmt.Errorf("vmdk: %ssparse header at byte %d: %w: compression algorithm %d", prefix(name), hdrAt+hdrCompressAlgorithm, ErrUnsupported, alg)
	}
	s.markers = flags&flagMarkers != 0
	s.zeroGrain = flags&flagZeroGrain != 0
	s.unclean = h[hdrUncleanShutdown] != 0

	capacity := le.Uint64(h[hdrCapacity:])
	if capacity > maxExtentSectors {
		return nil, ferr("sparse header", hdrCapacity, fmt.Sprintf("capacity of %d sectors too large", capacity))
	}
	s.capacity = int64(capacity) * sectorSize
	if capacity == 0 {
		return s, nil // a descriptor holder: its extents are other files
	}
	grain := le.Uint64(h[hdrGrainSize:])
	if grain == 0 || grain > maxGrainSectors {
		return nil, ferr("sparse header", hdrGrainSize, fmt.Sprintf("grain of %d sectors (1 to %d)", grain, maxGrainSectors))
	}
	s.grainSize = int64(grain) * sectorSize
	gtes := le.Uint32(h[hdrNumGTEsPerGT:])
	if gtes == 0 || gtes > maxGTEsPerGT {
		return nil, ferr("sparse header", hdrNumGTEsPerGT, fmt.Sprintf("%d entries per grain table (1 to %d)", gtes, maxGTEsPerGT))
	}
	s.gtes = int64(gtes)

	gdOff := le.Uint64(h[hdrGDOffset:])
	gdEntries := (s.capacity + s.grainSize*s.gtes - 1) / (s.grainSize * s.gtes)
	if gdOff == 0 || gdOff > uint64(size)/sectorSize || gdEntries*gteLen > size-int64(gdOff)*sectorSize {
		return nil, ferr("sparse header", hdrGDOffset, fmt.Sprintf("grain directory at sector %d (%d entries) outside the file (%d bytes)", gdOff, gdEntries, size))
	}
	b := make([]byte, gdEntries*gteLen)
	if _, err := r.ReadAt(b, int64(gdOff)*sectorSize); err != nil && err != io.EOF {
		return nil, fmt.Errorf("vmdk: %sreading grain directory: %w", prefix(name), err)
	}
	s.gd = make([]uint32, gdEntries)
	for i := range s.gd {
		s.gd[i] = le.Uint32(b[i*gteLen:])
	}
	return s, nil
}

// readFooter returns the footer copy of the header of a stream-optimized
// extent: the last three sectors are a footer marker, the footer, and an
// end-of-stream marker.
func readFooter(r io.ReaderAt, size int64, ferr func(string, int64, string) error) ([]byte, error) {
	at := size - footerFromEnd
	if at < headerLen {
		return nil, ferr("footer", max(at, 0), "grain directory is at the end but the file has no room for a footer")
	}
	b := make([]byte, footerFromEnd)
	if _, err := r.ReadAt(b, at); err != nil && err != io.EOF {
		return nil, fmt.Errorf("vmdk: reading footer: %w", err)
	}
	marker, footer, eos := b[:sectorSize], b[sectorSize:2*sectorSize], b[2*sectorSize:]
	switch {
	case le.Uint32(marker[markerSize:]) != 0 || le.Uint32(marker[markerType:]) != markerFooter:
		return nil, ferr("footer marker", at, "missing (the grain directory offset is -1 but no footer ends the file)")
	case string(footer[:4]) != sparseMagic:
		return nil, ferr("footer", at+sectorSize, fmt.Sprintf("bad magic %q", footer[:4]))
	case le.Uint64(eos[markerValue:]) != 0 || le.Uint32(eos[markerSize:]) != 0 || le.Uint32(eos[markerType:]) != markerEOS:
		return nil, ferr("end-of-stream marker", at+2*sectorSize, "missing after the footer")
	case le.Uint64(footer[hdrGDOffset:]) == gdAtEnd:
		return nil, ferr("footer", at+sectorSize, "grain directory offset is -1 in the footer too")
	}
	return footer, nil
}

// createType returns the createType of the embedded descriptor.
func (s *sparseExtent) embedded() (*descriptor, error) {
	if strings.TrimSpace(s.descriptor) == "" {
		return &descriptor{}, nil
	}
	d, err := parseDescriptor(s.descriptor)
	if err != nil {
		var fe *FormatError
		if asFormatError(err, &fe) {
			fe.File, fe.Struct, fe.Offset = s.name, "embedded "+fe.Struct, s.descAtBytes+fe.Offset
		}
		return nil, err
	}
	return d, nil
}

// mapAt maps rel, a byte offset within the extent (< capacity).
func (s *sparseExtent) mapAt(rel int64) (vdisk.Extent, error) {
	grain := rel / s.grainSize
	within := rel % s.grainSize
	gdi := grain / s.gtes
	gti := grain % s.gtes
	if gdi >= int64(len(s.gd)) {
		return vdisk.Extent{Kind: vdisk.ExtentBacking, Len: s.capacity - rel}, nil
	}
	gtSec := int64(s.gd[gdi])
	if gtSec == 0 {
		return vdisk.Extent{Kind: vdisk.ExtentBacking, Len: (gdi+1)*s.gtes*s.grainSize - rel}, nil
	}
	gt, err := s.grainTable(gtSec, gdi)
	if err != nil {
		return vdisk.Extent{}, err
	}
	gte := func(i int64) int64 { return int64(le.Uint32(gt[i*gteLen:])) }
	kind := func(v int64) vdisk.ExtentKind {
		switch {
		case v == 0:
			return vdisk.ExtentBacking
		case v == gteZeroed && s.zeroGrain:
			return vdisk.ExtentZero
		case s.compressed:
			return vdisk.ExtentCompressed
		}
		return vdisk.ExtentStored
	}
	v := gte(gti)
	k := kind(v)
	if k == vdisk.ExtentCompressed {
		e := vdisk.Extent{Kind: k, Len: s.grainSize - within, Source: s.src, Offset: v * sectorSize,
			Codec: vdisk.CodecZlib, StoredLen: 2 * s.grainSize, BlockLen: s.grainSize, Within: within, AllowShort: true}
		if s.markers {
			e.Framing = vdisk.FramingGrainMarker
			e.StoredLen += vdisk.GrainMarkerLen
		}
		return e, nil
	}
	// Extend over following entries alike: holes, and grains stored one
	// after the other in the file.
	n := int64(1)
	for ; gti+n < s.gtes; n++ {
		v2 := gte(gti + n)
		if kind(v2) != k || (k == vdisk.ExtentStored && v2 != v+n*s.grainSize/sectorSize) {
			break
		}
	}
	e := vdisk.Extent{Kind: k, Len: n*s.grainSize - within, Source: s.src}
	if k == vdisk.ExtentStored {
		e.Offset = v*sectorSize + within
	}
	return e, nil
}

func (s *sparseExtent) grainTable(sec, gdi int64) ([]byte, error) {
	key := vdisk.CacheKey{Src: s.src, Off: sec}
	if t, ok := s.gtCache.Get(key); ok {
		return t, nil
	}
	n := s.gtes * gteLen
	if sec > s.fileSize/sectorSize || sec*sectorSize > s.fileSize-n {
		return nil, &FormatError{File: s.name, Struct: "grain directory", Offset: -1,
			Msg: fmt.Sprintf("entry %d: grain table at sector %d past the end of the file (%d bytes)", gdi, sec, s.fileSize)}
	}
	t := make([]byte, n)
	if _, err := s.file.ReadAt(t, sec*sectorSize); err != nil && err != io.EOF {
		return nil, fmt.Errorf("vmdk: %sreading grain table at sector %d: %w", prefix(s.name), sec, err)
	}
	s.gtCache.Put(key, t)
	return t, nil
}
