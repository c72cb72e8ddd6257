// Package vmdk reads VMware VMDK disks as the raw disk they hold: an
// io.ReaderAt that maps each read through the extents, grain directories
// and grain tables, inflating compressed grains on demand into a small
// cache.
//
// Supported: monolithicSparse and streamOptimized files (hosted sparse
// extents, "KDMV", with compressed grains, markers, and the footer when the
// grain directory comes last), and text descriptors with FLAT, VMFS,
// SPARSE and ZERO extents (monolithicFlat, twoGbMaxExtentSparse,
// twoGbMaxExtentFlat, vmfs). Extent files must lie in the descriptor's own
// directory: absolute names, "..", and symbolic links leading out of it are
// refused. Refused by name: delta disks (a parent), ESX sparse (COWD,
// VMFSSPARSE), SESPARSE and raw device mappings.
package vmdk

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/ctrlift/ctrlift/image/vdisk"
)

// Options control NewReader and Open.
type Options struct {
	// CacheBytes bounds the cache of inflated grains (0: the default,
	// vdisk.DefaultCacheBytes; negative: no cache).
	CacheBytes int64
}

// FormatError reports a malformed on-disk structure: in which file, which
// structure, where (byte offset in that file, -1 if unknown) and what is
// wrong.
type FormatError struct {
	File   string // file name as the descriptor gives it (or the base name of the opened file)
	Struct string // "sparse header", "grain directory", "descriptor extent line", ...
	Offset int64
	Msg    string
}

func (e *FormatError) Error() string {
	var b strings.Builder
	b.WriteString("vmdk: ")
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(": ")
	}
	b.WriteString(e.Struct)
	if e.Offset >= 0 {
		fmt.Fprintf(&b, " at byte %d", e.Offset)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

func asFormatError(err error, fe **FormatError) bool { return errors.As(err, fe) }

// ErrUnsupported is wrapped by errors about disks this reader refuses.
var ErrUnsupported = vdisk.ErrUnsupported

// ErrUnsafeExtentName is wrapped by errors about a descriptor naming an
// extent file outside its own directory.
var ErrUnsafeExtentName = errors.New("extent file outside the descriptor's directory")

// Image is an opened VMDK disk. It is safe for concurrent use.
type Image struct {
	r       *vdisk.Reader
	m       *mapper
	info    vdisk.Info
	closers []io.Closer
}

// extentKind is how an extent of the disk is stored.
type extentKind uint8

const (
	extentFlat extentKind = iota
	extentSparse
	extentZero
)

// extent is one extent of the disk, at virtual bytes [start, start+length).
type extent struct {
	kind    extentKind
	start   int64
	length  int64
	src     int   // flat: source index
	flatOff int64 // flat: byte offset of the extent's data in its file
	sparse  *sparseExtent
	line    int64 // byte offset of its line in the descriptor, -1 if none
}

// mapper maps virtual offsets through the extents.
type mapper struct {
	extents []extent // sorted by start, contiguous from 0
}

// Map implements vdisk.Mapper.
func (m *mapper) Map(off int64) (vdisk.Extent, error) {
	i := sort.Search(len(m.extents), func(i int) bool { return m.extents[i].start+m.extents[i].length > off })
	if i == len(m.extents) {
		return vdisk.Extent{}, fmt.Errorf("vmdk: internal error: offset %d beyond the extents", off)
	}
	x := &m.extents[i]
	rel := off - x.start
	left := x.length - rel
	switch x.kind {
	case extentZero:
		return vdisk.Extent{Kind: vdisk.ExtentZero, Len: left}, nil
	case extentFlat:
		return vdisk.Extent{Kind: vdisk.ExtentStored, Len: left, Source: x.src, Offset: x.flatOff + rel}, nil
	}
	if rel >= x.sparse.capacity {
		// The descriptor gives the extent more sectors than its header.
		return vdisk.Extent{Kind: vdisk.ExtentZero, Len: left}, nil
	}
	e, err := x.sparse.mapAt(rel)
	if err != nil {
		return e, err
	}
	if e.Len > left {
		e.Len = left
	}
	return e, nil
}

// Open opens the VMDK disk at path read-only: a sparse extent file
// (monolithicSparse, streamOptimized) or a text descriptor, whose extent
// files are opened from the descriptor's directory only.
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
	head := make([]byte, min(st.Size(), int64(len(descriptorMagic)+3)))
	if _, err := f.ReadAt(head, 0); err != nil && err != io.EOF {
		f.Close()
		return nil, err
	}
	name := filepath.Base(path)
	if vdisk.Sniff(head) != vdisk.VMDK {
		f.Close()
		return nil, &FormatError{File: name, Struct: "file", Offset: 0, Msg: "neither a sparse extent (KDMV) nor a descriptor (# Disk DescriptorFile)"}
	}
	if string(head[:4]) == sparseMagic || string(head[:4]) == cowdMagic {
		im, err := newImage(f, st.Size(), name, filepath.Dir(path), opt)
		if err != nil {
			f.Close()
			return nil, err
		}
		im.closers = append(im.closers, f)
		return im, nil
	}
	// A text descriptor: read it whole, then close it.
	defer f.Close()
	if st.Size() > maxDescriptorLen {
		return nil, &FormatError{File: name, Struct: "descriptor", Offset: 0, Msg: fmt.Sprintf("%d bytes; a descriptor is at most %d", st.Size(), maxDescriptorLen)}
	}
	text := make([]byte, st.Size())
	if _, err := f.ReadAt(text, 0); err != nil && err != io.EOF {
		return nil, err
	}
	d, err := parseDescriptor(string(text))
	if err != nil {
		setFile(err, name)
		return nil, err
	}
	b := &builder{opt: opt, dir: filepath.Dir(path), descName: name}
	return b.fromDescriptor(d)
}

// NewReader reads a single-file VMDK (monolithicSparse or streamOptimized)
// from r. A descriptor names other files: open it with Open. r must stay
// open while the Image is used; Close does not close it.
func NewReader(r io.ReaderAt, size int64, opt Options) (*Image, error) {
	return newImage(r, size, "", "", opt)
}

// newImage opens a sparse extent file; dir, if not "", is where the
// extents of an embedded descriptor that names other files are found.
func newImage(r io.ReaderAt, size int64, name, dir string, opt Options) (*Image, error) {
	head := make([]byte, min(size, int64(len(descriptorMagic)+3)))
	if _, err := r.ReadAt(head, 0); err != nil && err != io.EOF {
		return nil, err
	}
	if vdisk.Sniff(head) == vdisk.VMDK && string(head[:min(4, len(head))]) != sparseMagic && string(head[:min(4, len(head))]) != cowdMagic {
		return nil, errors.New("vmdk: a descriptor names its extent files: open it by path (Open)")
	}
	gtCache := vdisk.NewCache(gtCacheBytes)
	s, err := openSparse(r, size, 0, name, gtCache)
	if err != nil {
		return nil, err
	}
	d, err := s.embedded()
	if err != nil {
		return nil, err
	}
	if s.capacity == 0 {
		if len(d.extents) == 0 {
			return nil, &FormatError{File: name, Struct: "sparse header", Offset: hdrCapacity, Msg: "capacity 0 and no descriptor naming extents"}
		}
		if dir == "" {
			return nil, errors.New("vmdk: the embedded descriptor names its extent files: open it by path (Open)")
		}
		for i := range d.extents {
			d.extents[i].at += s.descAtBytes // lines are named by their offset in the file
		}
		b := &builder{opt: opt, dir: dir, descName: name}
		return b.fromDescriptor(d)
	}
	if err := refuseParent(d, name); err != nil {
		return nil, err
	}
	subformat := d.createType
	if subformat == "" {
		subformat = "monolithicSparse"
		if s.compressed {
			subformat = "streamOptimized"
		}
	}
	b := &builder{opt: opt, gtCache: gtCache}
	b.srcs = []vdisk.Source{{R: r, Size: size}}
	b.names = []string{name}
	b.extents = []extent{{kind: extentSparse, length: s.capacity, sparse: s, line: -1}}
	b.noteSparse(s)
	return b.image(subformat)
}

// gtCacheBytes bounds the cache of grain tables (2 KiB each, mapping 32 MiB
// of disk with 64 KiB grains).
const gtCacheBytes = 2 << 20

func refuseParent(d *descriptor, name string) error {
	if d.parentHint == "" && (d.parentCID == "" || strings.EqualFold(d.parentCID, parentCIDNone)) {
		return nil
	}
	what := fmt.Sprintf("parentCID %s", d.parentCID)
	if d.parentHint != "" {
		what = fmt.Sprintf("parent %q", d.parentHint)
	}
	if name != "" {
		name += ": "
	}
	return fmt.Errorf("vmdk: %s%w: delta disk with %s (parents are not supported)", name, ErrUnsupported, what)
}

// builder collects the extents and files of an image being opened.
type builder struct {
	opt      Options
	dir      string // descriptor's directory
	descName string
	srcs     []vdisk.Source
	names    []string // of srcs, for errors
	extents  []extent
	closers  []io.Closer
	files    []string
	warnings []string
	gtCache  *vdisk.Cache
	grain    int64
	deflate  bool
}

func (b *builder) noteSparse(s *sparseExtent) {
	if b.grain == 0 {
		b.grain = s.grainSize
	}
	if s.compressed {
		b.deflate = true
	}
	if s.unclean {
		b.warnings = append(b.warnings, fmt.Sprintf("%sunclean shutdown flag set", prefix(s.name)))
	}
}

func prefix(name string) string {
	if name == "" {
		return ""
	}
	return name + ": "
}

func (b *builder) image(subformat string) (*Image, error) {
	var size int64
	for i := range b.extents {
		b.extents[i].start = size
		size += b.extents[i].length
		if size > maxDiskBytes {
			b.close()
			return nil, &FormatError{File: b.descName, Struct: "descriptor extent line", Offset: b.extents[i].line,
				Msg: fmt.Sprintf("extents add up to more than %d bytes", int64(maxDiskBytes))}
		}
	}
	m := &mapper{extents: b.extents}
	compression := ""
	if b.deflate {
		compression = "deflate"
	}
	return &Image{
		m: m,
		r: vdisk.NewReader(vdisk.Config{
			Size:       size,
			Mapper:     m,
			Sources:    b.srcs,
			CacheBytes: b.opt.CacheBytes,
			Errorf: func(src int, structure string, off int64, msg string) error {
				return &FormatError{File: b.fileName(src), Struct: structure, Offset: off, Msg: msg}
			},
		}),
		info: vdisk.Info{
			Format:      vdisk.VMDK,
			Subformat:   subformat,
			VirtualSize: size,
			ClusterSize: b.grain,
			Compression: compression,
			Files:       append([]string{}, b.files...),
			Warnings:    append([]string{}, b.warnings...),
		},
		closers: b.closers,
	}, nil
}

// fileName names source src in errors.
func (b *builder) fileName(src int) string {
	if src < len(b.names) {
		return b.names[src]
	}
	return ""
}

func (b *builder) close() {
	for _, c := range b.closers {
		c.Close()
	}
	b.closers = nil
}

// fromDescriptor opens the extent files a descriptor names.
func (b *builder) fromDescriptor(d *descriptor) (*Image, error) {
	if err := refuseParent(d, b.descName); err != nil {
		return nil, err
	}
	if len(d.extents) == 0 {
		return nil, &FormatError{File: b.descName, Struct: "descriptor", Offset: -1, Msg: "no extents"}
	}
	b.gtCache = vdisk.NewCache(gtCacheBytes)
	root, err := os.OpenRoot(b.dir)
	if err != nil {
		return nil, fmt.Errorf("vmdk: %w", err)
	}
	defer root.Close()
	for _, x := range d.extents {
		if err := b.addExtent(root, x); err != nil {
			b.close()
			return nil, err
		}
	}
	return b.image(d.createType)
}

func (b *builder) addExtent(root *os.Root, x extentLine) error {
	length := x.sectors * sectorSize
	if x.access == "NOACCESS" {
		b.warnings = append(b.warnings, fmt.Sprintf("extent at descriptor byte %d is NOACCESS; read as zeros", x.at))
		b.extents = append(b.extents, extent{kind: extentZero, length: length, line: x.at})
		return nil
	}
	switch x.typ {
	case "ZERO":
		b.extents = append(b.extents, extent{kind: extentZero, length: length, line: x.at})
		return nil
	case "FLAT", "VMFS", "SPARSE":
	case "VMFSSPARSE", "SESPARSE", "VMFSRDM", "VMFSRAW":
		return fmt.Errorf("vmdk: %s: descriptor extent line at byte %d: %w: %s extent %q", b.descName, x.at, ErrUnsupported, x.typ, x.file)
	default:
		return fmt.Errorf("vmdk: %s: descriptor extent line at byte %d: %w: unknown extent type %q", b.descName, x.at, ErrUnsupported, x.typ)
	}
	f, size, err := b.openExtentFile(root, x.file)
	if err != nil {
		return err
	}
	src := len(b.srcs)
	b.srcs = append(b.srcs, vdisk.Source{R: f, Size: size})
	b.closers = append(b.closers, f)
	b.files = append(b.files, x.file)
	b.names = append(b.names, x.file)
	if x.typ == "SPARSE" {
		s, err := openSparse(f, size, src, x.file, b.gtCache)
		if err != nil {
			return err
		}
		if s.capacity == 0 {
			return &FormatError{File: x.file, Struct: "sparse header", Offset: hdrCapacity, Msg: "capacity 0 (a descriptor holder, not an extent)"}
		}
		if s.capacity != length {
			b.warnings = append(b.warnings, fmt.Sprintf("%s: header capacity %d bytes, descriptor says %d", x.file, s.capacity, length))
		}
		b.noteSparse(s)
		b.extents = append(b.extents, extent{kind: extentSparse, length: length, sparse: s, line: x.at})
		return nil
	}
	off := x.offset * sectorSize
	if off > size || length > size-off {
		return &FormatError{File: x.file, Struct: "flat extent", Offset: off,
			Msg: fmt.Sprintf("file of %d bytes cannot hold the %d bytes the descriptor gives it", size, length)}
	}
	b.extents = append(b.extents, extent{kind: extentFlat, length: length, src: src, flatOff: off, line: x.at})
	return nil
}

// openExtentFile opens an extent file by the name the descriptor gives,
// only inside the descriptor's directory. os.Root refuses names (and
// symbolic links) that resolve outside it; names that plainly try to leave
// it are refused first with a clearer message.
func (b *builder) openExtentFile(root *os.Root, name string) (*os.File, int64, error) {
	if msg := unsafeName(name); msg != "" {
		return nil, 0, fmt.Errorf("vmdk: %s: extent %q: %w: %s", b.descName, name, ErrUnsafeExtentName, msg)
	}
	openErr := func(err error) error {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("vmdk: %s: extent file %q not found next to the descriptor", b.descName, name)
		}
		if strings.Contains(err.Error(), "escapes") {
			return fmt.Errorf("vmdk: %s: extent %q: %w: it resolves outside the directory", b.descName, name, ErrUnsafeExtentName)
		}
		return fmt.Errorf("vmdk: %s: extent %q: %w", b.descName, name, err)
	}
	// Stat first: opening a FIFO or a device could block or have effects.
	if st, err := root.Stat(name); err != nil {
		return nil, 0, openErr(err)
	} else if !st.Mode().IsRegular() {
		return nil, 0, fmt.Errorf("vmdk: %s: extent %q is not a regular file", b.descName, name)
	}
	// Without blocking, should the file have become a FIFO since.
	f, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, 0, openErr(err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("vmdk: %s: extent %q is not a regular file", b.descName, name)
	}
	return f, st.Size(), nil
}

// unsafeName says why an extent file name may not be opened, or "".
func unsafeName(name string) string {
	switch {
	case name == "":
		return "empty name"
	case strings.ContainsRune(name, 0):
		return "NUL in name"
	case filepath.IsAbs(name) || strings.HasPrefix(name, "/") || strings.HasPrefix(name, `\`):
		return "absolute path"
	case len(name) >= 2 && name[1] == ':':
		return "drive letter"
	}
	for _, part := range strings.FieldsFunc(name, func(r rune) bool { return r == '/' || r == '\\' }) {
		if part == ".." {
			return `".." in path`
		}
	}
	return ""
}

func setFile(err error, name string) {
	var fe *FormatError
	if errors.As(err, &fe) && fe.File == "" {
		fe.File = name
	}
}

// ReadAt reads guest disk bytes.
func (im *Image) ReadAt(p []byte, off int64) (int, error) { return im.r.ReadAt(p, off) }

// Size is the virtual disk size in bytes.
func (im *Image) Size() int64 { return im.r.Size() }

// Info describes the disk.
func (im *Image) Info() vdisk.Info {
	i := im.info
	i.Files = append([]string{}, im.info.Files...)
	i.Warnings = append([]string{}, im.info.Warnings...)
	return i
}

// Close closes the files Open opened.
func (im *Image) Close() error {
	var first error
	for _, c := range im.closers {
		if err := c.Close(); err != nil && first == nil {
			first = err
		}
	}
	im.closers = nil
	return first
}
