// Package tarfs reads a tar archive of a directory tree (a runtime tree
// such as /var/lib/docker or /var/lib/containerd, packed by an analyst or
// by a test suite) as a vfs.FS, with owners, modes, device numbers,
// extended attributes, hardlinks and holes exactly as the archive records
// them: unpacking the archive as an unprivileged user would lose them.
//
// The archive is indexed in one sequential pass over its headers; file data
// is then read in place, by offset, so memory grows with the number of
// members and never with their data. Compressed archives (gzip, zstd, xz,
// recognised by their magic bytes) are first decompressed once into an
// unlinked temporary file (OpenFile).
package tarfs

import (
	"archive/tar"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ctrlift/ctrlift/vfs"
)

// Bounds on what one archive may make this package hold in memory.
const (
	MaxMembers     = 10_000_000 // headers (members) in one archive
	MaxSynthesized = 1_000_000  // parent directories with no member of their own
	MaxNameLen     = 64 << 10   // bytes of a member name or hardlink target
	MaxLinkLen     = 64 << 10   // bytes of a symlink target
	MaxXattrBytes  = 1 << 20    // bytes of names and values of one member's xattrs
	MaxFragments   = 16 << 20   // sparse-map fragments over the whole archive
	maxNotes       = 100        // notes kept; later ones are only counted
	blockSize      = 512
	maxSpecialSize = 1 << 20 // archive/tar's bound on PAX, GNU long names and sparse maps
	typeGNUDumpDir = 'D'     // a directory with a listing of its names as data
)

// RootIno is the inode number of the root directory.
const RootIno = 1

// FS is a tar archive indexed as a tree of inodes. It implements vfs.FS;
// IOFS returns an io/fs view of the same tree. It is safe for concurrent
// use once opened.
type FS struct {
	r      io.ReaderAt
	size   int64
	closer io.Closer
	nodes  []*node // inode n is nodes[n-1]
	notes  []string
	extra  int // notes not kept
	format string
}

var _ vfs.FS = (*FS)(nil)

// Member describes the archive member behind an inode; it is the Sys of
// every vfs.Inode this package returns, shared and read-only. Offsets are
// in the uncompressed archive.
type Member struct {
	Name         string // normalized path of the member that last defined the inode
	HeaderOffset int64  // its first header block (PAX or GNU long-name headers included)
	DataOffset   int64  // its stored data (after a GNU sparse map)
	StoredSize   int64  // bytes of data stored in the archive
	Typeflag     byte
	Sparse       string // GNU sparse format ("old", "0.0/0.1", "1.0"), "" if not sparse
	Synthesized  bool   // a parent directory with no member of its own
}

// MemberError is an archive member that cannot be indexed.
type MemberError struct {
	Name   string // as recorded in the archive
	Offset int64  // of the member's first header block in the uncompressed archive
	Err    error
}

func (e *MemberError) Error() string {
	return fmt.Sprintf("tarfs: member %q at offset %d: %v", e.Name, e.Offset, e.Err)
}

func (e *MemberError) Unwrap() error { return e.Err }

// frag is one stretch of stored data of a sparse file: logical bytes
// [off, off+n) are stored at phys bytes into the member's data.
type frag struct{ off, n, phys int64 }

type node struct {
	attr     vfs.Inode // Ino and Nlink are final once indexed; Sys is unset
	member   Member
	frags    []frag // nil: the data is stored contiguously
	link     string // symlink target
	children map[string]*node
	names    []string // sorted children, set once indexed
}

func (n *node) isDir() bool { return n.attr.Mode&vfs.TypeMask == vfs.TypeDir }

// Open indexes the uncompressed tar archive of size bytes read from r.
func Open(r io.ReaderAt, size int64) (*FS, error) {
	if size < 0 {
		return nil, errors.New("tarfs: negative archive size")
	}
	f := &FS{r: r, size: size, format: "tar"}
	if err := f.index(); err != nil {
		return nil, err
	}
	return f, nil
}

// Close releases the file OpenFile opened (and with it the temporary copy
// of a compressed archive). It does nothing for an FS made by Open.
func (f *FS) Close() error {
	if f.closer == nil {
		return nil
	}
	c := f.closer
	f.closer = nil
	return c.Close()
}

// Size is the size of the uncompressed archive.
func (f *FS) Size() int64 { return f.size }

// Format says how the archive was stored: "tar", or e.g. "gzip+tar".
func (f *FS) Format() string { return f.format }

// Notes are the oddities met while indexing that were not errors:
// duplicate members (the later wins, as with tar -x), global headers,
// volume labels, sparse members storing unreferenced data, a missing
// end-of-archive marker.
func (f *FS) Notes() []string {
	out := slices.Clone(f.notes)
	if f.extra > 0 {
		out = append(out, fmt.Sprintf("... and %d more notes", f.extra))
	}
	return out
}

func (f *FS) note(format string, args ...any) {
	if len(f.notes) >= maxNotes {
		f.extra++
		return
	}
	f.notes = append(f.notes, fmt.Sprintf(format, args...))
}

// indexer holds the state of the one pass over the headers.
type indexer struct {
	f           *FS
	pr          *posReader
	fragments   int
	synthesized int
	// The parent directory of the last member placed: members come in
	// directory order, so most share it. A cached directory stays valid:
	// it has a child, so it can only be redefined by a directory, in place.
	lastParent string
	lastDir    *node
}

func (f *FS) index() error {
	root := &node{attr: vfs.Inode{Ino: RootIno, Mode: vfs.TypeDir | 0o755}, member: Member{Typeflag: tar.TypeDir, Synthesized: true}}
	f.nodes = []*node{root}
	ix := &indexer{f: f, pr: newPosReader(f.r, f.size)}
	tr := tar.NewReader(ix.pr)
	next := int64(0) // offset of the next member's first header block
	members := 0
	for {
		hdr, err := tr.Next()
		if errors.Is(err, tar.ErrInsecurePath) && hdr != nil {
			err = nil // GODEBUG=tarinsecurepath=0: names are checked below
		}
		if err == io.EOF {
			if ix.pr.pos == next {
				f.note("the archive ends at offset %d without an end-of-archive marker", next)
			}
			break
		}
		if err != nil {
			return fmt.Errorf("tarfs: reading the header at offset %d: %w", next, err)
		}
		if members++; members > MaxMembers {
			return fmt.Errorf("tarfs: more than %d members", MaxMembers)
		}
		start := next
		stored, err := ix.member(hdr, start)
		if err != nil {
			var me *MemberError
			if !errors.As(err, &me) {
				err = &MemberError{Name: hdr.Name, Offset: start, Err: err}
			}
			return err
		}
		end := ix.pr.pos + stored
		next = (end + blockSize - 1) / blockSize * blockSize
	}
	f.finish()
	return nil
}

// member indexes one header and returns how many bytes of stored data
// follow the reader's position.
func (ix *indexer) member(hdr *tar.Header, start int64) (int64, error) {
	f := ix.f
	data := ix.pr.pos
	if len(hdr.Name) > MaxNameLen {
		return 0, fmt.Errorf("name of %d bytes, more than %d", len(hdr.Name), MaxNameLen)
	}
	var typ uint32
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeCont, tar.TypeGNUSparse:
		typ = vfs.TypeRegular
	case tar.TypeDir, typeGNUDumpDir:
		typ = vfs.TypeDir
	case tar.TypeSymlink:
		typ = vfs.TypeSymlink
	case tar.TypeChar:
		typ = vfs.TypeChar
	case tar.TypeBlock:
		typ = vfs.TypeBlock
	case tar.TypeFifo:
		typ = vfs.TypeFIFO
	case tar.TypeLink:
	case tar.TypeXGlobalHeader:
		f.note("global PAX header at offset %d ignored (%d records)", start, len(hdr.PAXRecords))
		return 0, nil
	case 'V':
		f.note("volume label %q at offset %d ignored", hdr.Name, start)
		return 0, nil
	default:
		return 0, fmt.Errorf("unsupported typeflag %q", hdr.Typeflag)
	}
	// Bytes stored after the header(s), as archive/tar counts them: none
	// for header-only types whatever the size field says.
	var stored int64
	if typ == vfs.TypeRegular || hdr.Typeflag == typeGNUDumpDir {
		stored = hdr.Size
	}
	var frags []frag
	sparse, err := sparseFormat(hdr)
	if err != nil {
		return 0, err
	}
	if sparse != "" {
		if typ != vfs.TypeRegular {
			return 0, fmt.Errorf("GNU sparse records on a member of typeflag %q", hdr.Typeflag)
		}
		frags, stored, err = ix.sparseMap(hdr, sparse, start, data)
		if err != nil {
			return 0, err
		}
	}
	if stored < 0 || stored > ix.f.size-data {
		return 0, fmt.Errorf("%d bytes of data at offset %d run past the end of the archive (%d bytes): truncated or forged size", stored, data, ix.f.size)
	}

	name, err := cleanName(hdr.Name)
	if err != nil {
		return 0, err
	}
	m := Member{Name: name, HeaderOffset: start, DataOffset: data, StoredSize: stored, Typeflag: hdr.Typeflag, Sparse: sparse}

	if hdr.Typeflag == tar.TypeLink {
		if len(hdr.Linkname) > MaxNameLen {
			return stored, fmt.Errorf("hardlink target of %d bytes, more than %d", len(hdr.Linkname), MaxNameLen)
		}
		target, err := cleanName(hdr.Linkname)
		if err != nil {
			return 0, fmt.Errorf("hardlink target: %w", err)
		}
		t, err := ix.find(target)
		if err != nil {
			return 0, fmt.Errorf("hardlink to %q: %w", hdr.Linkname, err)
		}
		if t.isDir() {
			return 0, fmt.Errorf("hardlink to %q, a directory", hdr.Linkname)
		}
		return stored, ix.place(name, t, start)
	}

	n := &node{member: m, frags: frags}
	a := &n.attr
	a.Mode = typ | uint32(hdr.Mode&0o7777)
	if a.Uid, err = id32("uid", int64(hdr.Uid)); err != nil {
		return 0, err
	}
	if a.Gid, err = id32("gid", int64(hdr.Gid)); err != nil {
		return 0, err
	}
	if typ == vfs.TypeChar || typ == vfs.TypeBlock {
		if a.RdevMajor, err = id32("device major", hdr.Devmajor); err != nil {
			return 0, err
		}
		if a.RdevMinor, err = id32("device minor", hdr.Devminor); err != nil {
			return 0, err
		}
	}
	a.Mtime, a.Atime, a.Ctime = utc(hdr.ModTime), utc(hdr.AccessTime), utc(hdr.ChangeTime)
	if v, ok := hdr.PAXRecords["LIBARCHIVE.creationtime"]; ok {
		if a.Crtime, err = parsePAXTime(v); err != nil {
			return 0, fmt.Errorf("LIBARCHIVE.creationtime %q: %w", v, err)
		}
		a.HasCrtime = true
	}
	if a.Xattrs, err = xattrs(hdr.PAXRecords); err != nil {
		return 0, err
	}
	switch typ {
	case vfs.TypeRegular:
		a.Size = hdr.Size
		a.Blocks = (stored + blockSize - 1) / blockSize
	case vfs.TypeSymlink:
		if len(hdr.Linkname) > MaxLinkLen {
			return 0, fmt.Errorf("symlink target of %d bytes, more than %d", len(hdr.Linkname), MaxLinkLen)
		}
		n.link = hdr.Linkname
		a.Size = int64(len(n.link))
	}
	return stored, ix.place(name, n, start)
}

// utc keeps the zero time zero (an absent atime or ctime).
func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}

func id32(what string, v int64) (uint32, error) {
	if v < 0 || v > math.MaxUint32 {
		return 0, fmt.Errorf("%s %d out of range", what, v)
	}
	return uint32(v), nil
}

// cleanName turns "./a//b/" into "a/b" and "./" into "" (the root). An
// absolute name or a ".." component is refused, never re-rooted.
func cleanName(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("absolute name %q", name)
	}
	var b strings.Builder
	for part := range strings.SplitSeq(name, "/") {
		switch part {
		case "", ".":
			continue
		case "..":
			return "", fmt.Errorf("name %q has a \"..\" component", name)
		}
		if b.Len() > 0 {
			b.WriteByte('/')
		}
		b.WriteString(part)
	}
	return b.String(), nil
}

// find returns the file already indexed at a clean path, without
// following symlinks.
func (ix *indexer) find(name string) (*node, error) {
	cur := ix.f.nodes[0]
	if name == "" {
		return cur, nil
	}
	for part := range strings.SplitSeq(name, "/") {
		if !cur.isDir() {
			return nil, fmt.Errorf("a component before %q is not a directory", part)
		}
		next := cur.children[part]
		if next == nil {
			return nil, fmt.Errorf("no earlier member of that name: %w", fs.ErrNotExist)
		}
		cur = next
	}
	return cur, nil
}

func (ix *indexer) newNode(n *node) error {
	if n.member.Synthesized {
		// Each member makes at most one node of its own; the parents it
		// implies are bounded apart, so that deep names cannot turn a
		// small archive into millions of directories.
		if ix.synthesized++; ix.synthesized > MaxSynthesized {
			return fmt.Errorf("more than %d parent directories without a member of their own", MaxSynthesized)
		}
	}
	ix.f.nodes = append(ix.f.nodes, n)
	n.attr.Ino = uint64(len(ix.f.nodes))
	return nil
}

// place links n at name, synthesizing missing parent directories. A
// later member of the same name wins, as with tar -x; a directory
// member over a directory only updates its attributes.
func (ix *indexer) place(name string, n *node, start int64) error {
	f := ix.f
	dir := f.nodes[0]
	base := ""
	if name != "" {
		parents, last, _ := cutLast(name)
		base = last
		if parents != "" && parents == ix.lastParent {
			dir = ix.lastDir
		} else if parents != "" {
			for part := range strings.SplitSeq(parents, "/") {
				next := dir.children[part]
				if next == nil {
					next = &node{attr: vfs.Inode{Mode: vfs.TypeDir | 0o755}, member: Member{Name: joinPath(dirName(dir), part), Typeflag: tar.TypeDir, Synthesized: true}}
					if err := ix.newNode(next); err != nil {
						return err
					}
					if dir.children == nil {
						dir.children = map[string]*node{}
					}
					dir.children[part] = next
					next.attr.Nlink++
				}
				if !next.isDir() {
					return fmt.Errorf("parent %q is not a directory (a symlink is not followed)", next.member.Name)
				}
				dir = next
			}
		}
	}
	var old *node
	if name == "" {
		old = f.nodes[0]
	} else {
		old = dir.children[base]
	}
	if old != nil && old.isDir() && n.isDir() {
		if !old.member.Synthesized {
			f.note("member %q at offset %d redefines the directory of member at offset %d", name, start, old.member.HeaderOffset)
		}
		ino, nlink := old.attr.Ino, old.attr.Nlink
		old.attr = n.attr
		old.attr.Ino, old.attr.Nlink = ino, nlink
		old.member = n.member
		return nil
	}
	if name == "" {
		return errors.New("a member for the root that is not a directory")
	}
	if old == n {
		f.note("hardlink %q at offset %d links to itself", name, start)
		return nil
	}
	if old != nil {
		if old.isDir() && len(old.children) > 0 {
			return fmt.Errorf("a non-directory over the non-empty directory defined at offset %d", old.member.HeaderOffset)
		}
		f.note("member %q at offset %d replaces the one at offset %d (the later wins)", name, start, old.member.HeaderOffset)
		old.attr.Nlink--
	}
	if n.attr.Ino == 0 {
		if err := ix.newNode(n); err != nil {
			return err
		}
	}
	if dir.children == nil {
		dir.children = map[string]*node{}
	}
	dir.children[base] = n
	n.attr.Nlink++
	if parents, _, ok := cutLast(name); ok {
		ix.lastParent, ix.lastDir = parents, dir
	}
	return nil
}

func dirName(n *node) string { return n.member.Name }

func joinPath(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

func cutLast(p string) (dir, base string, ok bool) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", p, false
	}
	return p[:i], p[i+1:], true
}

// finish sorts directories and sets their link counts as a filesystem
// would: 2 plus one per subdirectory.
func (f *FS) finish() {
	for _, n := range f.nodes {
		if !n.isDir() {
			continue
		}
		n.names = make([]string, 0, len(n.children))
		var sub uint32
		for name, c := range n.children {
			n.names = append(n.names, name)
			if c.isDir() {
				sub++
			}
		}
		slices.Sort(n.names)
		n.attr.Nlink = 2 + sub
	}
}

// xattrs collects the extended attributes of a member: SCHILY.xattr.*
// (GNU tar, Go, raw values) and LIBARCHIVE.xattr.* (bsdtar: url-escaped
// names, base64 values); SCHILY wins when both name one attribute.
func xattrs(recs map[string]string) ([]vfs.Xattr, error) {
	const schily, libarchive = "SCHILY.xattr.", "LIBARCHIVE.xattr."
	var out []vfs.Xattr
	seen := map[string]bool{}
	total := 0
	add := func(name string, value []byte) error {
		if total += len(name) + len(value); total > MaxXattrBytes {
			return fmt.Errorf("extended attributes of more than %d bytes", MaxXattrBytes)
		}
		seen[name] = true
		out = append(out, vfs.Xattr{Name: name, Value: value})
		return nil
	}
	for k, v := range recs {
		if name, ok := strings.CutPrefix(k, schily); ok {
			if err := add(name, []byte(v)); err != nil {
				return nil, err
			}
		}
	}
	for k, v := range recs {
		esc, ok := strings.CutPrefix(k, libarchive)
		if !ok {
			continue
		}
		name, err := unescape(esc)
		if err != nil {
			return nil, fmt.Errorf("PAX record %q: %w", k, err)
		}
		if seen[name] {
			continue
		}
		val, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(v, "="))
		if err != nil {
			return nil, fmt.Errorf("PAX record %q: bad base64: %w", k, err)
		}
		if err := add(name, val); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(out, func(a, b vfs.Xattr) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// unescape undoes libarchive's %XX escaping of xattr names.
func unescape(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b bytes.Buffer
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", errors.New("truncated %-escape")
		}
		v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", fmt.Errorf("bad %%-escape %q", s[i:i+3])
		}
		b.WriteByte(byte(v))
		i += 2
	}
	return b.String(), nil
}

// parsePAXTime parses "seconds[.fraction]" as archive/tar does.
func parsePAXTime(s string) (time.Time, error) {
	ss, sn, _ := strings.Cut(s, ".")
	secs, err := strconv.ParseInt(ss, 10, 64)
	if err != nil {
		return time.Time{}, errors.New("bad seconds")
	}
	digits := []byte("000000000")
	for i := range len(sn) {
		c := sn[i]
		if c < '0' || c > '9' {
			return time.Time{}, errors.New("bad fraction")
		}
		if i < len(digits) {
			digits[i] = c
		}
	}
	nsecs, _ := strconv.ParseInt(string(digits), 10, 64)
	if strings.HasPrefix(ss, "-") {
		nsecs = -nsecs
	}
	return time.Unix(secs, nsecs).UTC(), nil
}

// posReader reads the archive sequentially for archive/tar, knowing its
// position exactly (archive/tar reads no further than it needs), and
// seeks over member data instead of reading it.
type posReader struct {
	r      io.ReaderAt
	size   int64
	pos    int64
	buf    []byte
	bufOff int64
	bufLen int
}

func newPosReader(r io.ReaderAt, size int64) *posReader {
	return &posReader{r: r, size: size, buf: make([]byte, min(32<<10, max(size, blockSize)))}
}

func (p *posReader) Read(b []byte) (int, error) {
	if p.pos >= p.size {
		return 0, io.EOF
	}
	if len(b) == 0 {
		return 0, nil
	}
	if p.pos < p.bufOff || p.pos >= p.bufOff+int64(p.bufLen) {
		if len(b) >= len(p.buf) {
			want := min(int64(len(b)), p.size-p.pos)
			n, err := p.r.ReadAt(b[:want], p.pos)
			p.pos += int64(n)
			if n > 0 && err == io.EOF {
				err = nil
			}
			if n == 0 && err == nil {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		}
		want := min(int64(len(p.buf)), p.size-p.pos)
		n, err := p.r.ReadAt(p.buf[:want], p.pos)
		if n == 0 {
			p.bufLen = 0
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF // the reader is shorter than its stated size
			}
			return 0, err
		}
		p.bufOff, p.bufLen = p.pos, n
	}
	n := copy(b, p.buf[p.pos-p.bufOff:p.bufLen])
	p.pos += int64(n)
	return n, nil
}

func (p *posReader) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		if off > math.MaxInt64-p.pos {
			return 0, errors.New("tarfs: seek: position overflows")
		}
		off += p.pos
	default:
		return 0, errors.New("tarfs: seek: unsupported whence")
	}
	if off < 0 {
		return 0, errors.New("tarfs: seek: negative position")
	}
	p.pos = off
	return off, nil
}
