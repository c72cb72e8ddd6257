package export

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/ctrlift/ctrlift/vfs"
)

// Files with large holes are written as GNU sparse entries (PAX format
// 1.0, what GNU tar --sparse writes), so a 1 TiB file holding 10 bytes,
// whether a real sparse file or a forged i_size, costs 10 bytes and a map,
// not a terabyte of zeros. Readers that know the format (GNU tar, bsdtar,
// Go's archive/tar, so docker/podman import and trivy, Python's tarfile,
// so plaso) restore the file with its holes. Small holes are written out
// as zeros, so that ordinary files stay plain entries for every reader.
const (
	// sparseMin is how many hole bytes a file needs to become sparse.
	sparseMin = 1 << 20
	// maxSparseMap bounds the encoded map: archive/tar and libarchive
	// refuse maps over 1 MiB. Past it, the smallest holes are written out.
	maxSparseMap = 512 << 10
	// maxZerosWritten bounds the holes an export writes out as zeros;
	// past it every file with a hole is sparse, so that many files with
	// holes just under sparseMin cannot make the tar grow without bound.
	maxZerosWritten = 256 << 20
	// Holes are hashed for real (a digest has no shortcut for zeros)
	// within a budget: per export, four times the size of the filesystem
	// they come from (at least minHoleBudget, about a second of hashing), and per file at most
	// maxFileHoles (about 30 s at 2 GB/s). Past it a file gets no digest.
	minHoleBudget = 2 << 30
	maxFileHoles  = 64 << 30
)

// budget holds what one export or listing has read and hashed, against
// the bounds above. A source that shares no blocks between files (ext4)
// bounds the data all its files together can map (vfs.FS.DataBound).
type budget struct {
	mapped      map[vfs.FS]int64 // file data read from each filesystem
	holesHashed int64
}

func newBudget() budget { return budget{mapped: map[vfs.FS]int64{}} }

// read counts n bytes of data mapped by inode ino of fsys.
func (b *budget) read(fsys vfs.FS, ino uint64, n int64) error {
	bound := fsys.DataBound()
	if b.mapped[fsys] += n; bound > 0 && b.mapped[fsys] > bound {
		return fmt.Errorf("inode %d: with it the files read so far map %d bytes, more than their filesystem holds (%d): blocks shared between inodes, a forged block map", ino, b.mapped[fsys], bound)
	}
	return nil
}

// holeBudget is how many bytes of holes one export hashes from fsys.
func holeBudget(fsys vfs.FS) int64 {
	if b := fsys.DataBound(); b > minHoleBudget/4 {
		return 4 * b
	}
	return minHoleBudget
}

// hashHoles reports whether n more bytes of holes of a file of fsys may
// be hashed, and if so counts them; if not, why.
func (b *budget) hashHoles(fsys vfs.FS, n int64) (bool, string) {
	if n > maxFileHoles {
		return false, fmt.Sprintf("holes past the hashing budget (%d GiB of zeros in one file, at most %d GiB)", n>>30, int64(maxFileHoles)>>30)
	}
	if limit := holeBudget(fsys); b.holesHashed+n > limit {
		return false, fmt.Sprintf("holes past the hashing budget (%d GiB of zeros for this filesystem)", limit>>30)
	}
	b.holesHashed += n
	return true, ""
}

// span is a stretch of file data, [off, off+n).
type span struct{ off, n int64 }

// dataSpans returns the data stretches of f (inode ino), with holes
// shorter than minHole counted as data. It fails when the file maps more
// data than bound, the whole filesystem (0: no bound): ext4 shares no
// blocks between or within files, so that is a forged block map (the same
// blocks listed again and again), and writing it out would be unbounded.
func dataSpans(f vfs.File, ino uint64, bound, minHole int64) (spans []span, mapSize int, mapped int64, err error) {
	mapSize = len(strconv.Itoa(0)) + 1
	for off := int64(0); off < f.Size(); {
		start, end, err := f.NextData(off)
		if err != nil {
			return nil, 0, 0, err
		}
		if start >= f.Size() {
			break
		}
		mapped += end - start
		if bound > 0 && mapped > bound {
			return nil, 0, 0, fmt.Errorf("inode %d maps more than %d bytes of data, the size of the whole filesystem: forged block map", ino, bound)
		}
		if k := len(spans) - 1; k >= 0 && start-(spans[k].off+spans[k].n) < minHole {
			mapSize -= len(strconv.FormatInt(spans[k].n, 10))
			spans[k].n = end - spans[k].off
			mapSize += len(strconv.FormatInt(spans[k].n, 10))
		} else {
			spans = append(spans, span{start, end - start})
			mapSize += len(strconv.FormatInt(start, 10)) + len(strconv.FormatInt(end-start, 10)) + 2
		}
		if mapSize > maxSparseMap {
			return nil, mapSize, mapped, nil // the caller retries with a larger minHole
		}
		off = end
	}
	return spans, mapSize, mapped, nil
}

// sparseLayout decides how a regular file is written: nil spans mean a
// plain entry. It also returns how many bytes of data the file maps.
// With anyHole, a file with any hole is sparse.
func sparseLayout(f vfs.File, ino uint64, bound int64, anyHole bool) ([]span, int64, error) {
	// First pass: one span (no hole is large enough to split it), to count
	// the mapped data.
	_, _, mapped, err := dataSpans(f, ino, bound, f.Size()+1)
	if err != nil || f.Size() == 0 {
		return nil, mapped, err
	}
	if holes := f.Size() - mapped; holes == 0 || holes < sparseMin && !anyHole {
		return nil, mapped, nil
	}
	for minHole := int64(1); ; minHole *= 2 {
		spans, mapSize, _, err := dataSpans(f, ino, bound, minHole)
		if err != nil {
			return nil, 0, err
		}
		if mapSize > maxSparseMap {
			continue // terminates: at minHole > size there is one span
		}
		if spans == nil {
			spans = []span{}
		}
		return spans, mapped, nil
	}
}

// sparsePrefix returns what a GNU sparse 1.0 entry for hdr's file starts
// with: its header blocks and its map. archive/tar can read such entries
// but not write them, so the header blocks are built here from the ones
// tar.Writer makes for the same header. It sets e.spans to the stretches
// the map lists and e.stored to the bytes of map and data.
func (w *writer) sparsePrefix(hdr *tar.Header, e *entry) ([]byte, error) {
	size := e.size
	// The map: entry count, then offset and length of each data stretch;
	// a file ending in a hole gets a last empty stretch at its end, as GNU
	// tar writes, so that readers that go by the map get the size right.
	list := e.spans
	if n := len(list); n == 0 || list[n-1].off+list[n-1].n < size {
		list = append(list[:n:n], span{size, 0})
	}
	var m []byte
	m = strconv.AppendInt(m, int64(len(list)), 10)
	m = append(m, '\n')
	var data int64
	for _, s := range list {
		m = strconv.AppendInt(m, s.off, 10)
		m = append(m, '\n')
		m = strconv.AppendInt(m, s.n, 10)
		m = append(m, '\n')
		data += s.n
	}
	m = append(m, make([]byte, pad(int64(len(m))))...)
	stored := int64(len(m)) + data

	blocks, err := sparseHeaders(hdr, size, stored)
	if err != nil {
		return nil, err
	}
	e.spans, e.stored = list, stored
	return append(blocks, m...), nil
}

// writeSparse writes the data stretches of a sparse entry, after its
// prefix, and the padding.
func (w *writer) writeSparse(e *entry) error {
	var fh io.Writer
	if e.hash {
		// The manifest's digest is of the whole contents, holes included.
		w.fileHash.Reset()
		fh = w.fileHash
	}
	var at int64
	for _, s := range e.spans {
		if e.hash {
			if err := writeZeros(w.fileHash, s.off-at); err != nil {
				return err
			}
		}
		n, err := w.bw.copyData(e.data, s.off, s.n, fh, false)
		if err != nil {
			return err
		}
		if n != s.n {
			return fmt.Errorf("read %d of %d bytes at %d", n, s.n, s.off)
		}
		at = s.off + s.n
	}
	_, err := w.bw.Write(zeros[:pad(e.stored)])
	return err
}

var zeros [64 << 10]byte

func writeZeros(w io.Writer, n int64) error {
	for n > 0 {
		k := min(n, int64(len(zeros)))
		if _, err := w.Write(zeros[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

func pad(n int64) int64 { return -n & 511 }

// sparseHeaders returns the PAX extended header and the ustar header of a
// sparse entry for hdr. tar.Writer formats hdr (its times, ids, xattrs,
// and its checks of them); the GNU.sparse records are added to its PAX
// records, which it would drop, and the name and size are changed.
func sparseHeaders(hdr *tar.Header, realSize, stored int64) ([]byte, error) {
	h := *hdr
	h.Size = 0
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&h); err != nil {
		return nil, err
	}
	if err := tw.Flush(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	recs := map[string]string{}
	if len(b) > 512 && b[156] == tar.TypeXHeader {
		n, err := strconv.ParseInt(strings.TrimRight(string(b[124:136]), "\x00 "), 8, 64)
		if err != nil || 512+n > int64(len(b)) {
			return nil, fmt.Errorf("sparse header: unexpected PAX header from archive/tar")
		}
		for r := string(b[512 : 512+n]); r != ""; {
			sp := strings.IndexByte(r, ' ')
			l, err := strconv.Atoi(r[:max(sp, 0)])
			if sp < 0 || err != nil || l <= sp || l > len(r) {
				return nil, fmt.Errorf("sparse header: unexpected PAX record from archive/tar")
			}
			kv := r[sp+1 : l-1]
			eq := strings.IndexByte(kv, '=')
			if eq < 0 {
				return nil, fmt.Errorf("sparse header: unexpected PAX record from archive/tar")
			}
			recs[kv[:eq]] = kv[eq+1:]
			r = r[l:]
		}
	}
	ustar := append([]byte{}, b[len(b)-512:]...)

	delete(recs, "path") // GNU.sparse.name has it
	for k, v := range map[string]string{
		"GNU.sparse.major":    "1",
		"GNU.sparse.minor":    "0",
		"GNU.sparse.name":     hdr.Name,
		"GNU.sparse.realsize": strconv.FormatInt(realSize, 10),
	} {
		recs[k] = v
	}
	const maxOctal11 = 1<<33 - 1
	if stored > maxOctal11 {
		recs["size"] = strconv.FormatInt(stored, 10)
	}
	var pax []byte
	for _, k := range slices.Sorted(maps.Keys(recs)) {
		pax = append(pax, paxRecord(k, recs[k])...)
	}

	dir, file := path.Split(hdr.Name)
	setName(ustar, dir+"GNUSparseFile.0/"+file)
	clear(ustar[345:500]) // prefix
	if stored <= maxOctal11 {
		putOctal(ustar[124:136], stored)
	} else {
		putOctal(ustar[124:136], 0)
	}
	checksum(ustar)

	x := make([]byte, 512)
	setName(x, dir+"PaxHeaders.0/"+file)
	for _, f := range [][2]int{{100, 108}, {108, 116}, {116, 124}, {136, 148}} {
		putOctal(x[f[0]:f[1]], 0)
	}
	putOctal(x[124:136], int64(len(pax)))
	x[156] = tar.TypeXHeader
	copy(x[257:265], "ustar\x0000")
	checksum(x)

	out := append(x, pax...)
	out = append(out, make([]byte, pad(int64(len(pax))))...)
	return append(out, ustar...), nil
}

// paxRecord formats "LEN key=value\n", where LEN counts itself.
func paxRecord(k, v string) string {
	body := " " + k + "=" + v + "\n"
	n := len(body) + 1
	for n != len(strconv.Itoa(n))+len(body) {
		n = len(strconv.Itoa(n)) + len(body)
	}
	return strconv.Itoa(n) + body
}

// setName fills the ustar name field: ASCII, cut to 100 bytes. Readers
// take the real name from GNU.sparse.name; this one is for readers that
// do not know sparse files, which extract the map and data under it.
func setName(blk []byte, name string) {
	b := []byte(name)
	for i, c := range b {
		if c < 0x20 || c >= 0x7f {
			b[i] = '_'
		}
	}
	clear(blk[0:100])
	copy(blk[0:100], b)
}

func putOctal(field []byte, v int64) {
	s := strconv.FormatInt(v, 8)
	for len(s) < len(field)-1 {
		s = "0" + s
	}
	copy(field, s)
	field[len(field)-1] = 0
}

// checksum sets the header checksum: the byte sum with the field as spaces.
func checksum(blk []byte) {
	copy(blk[148:156], "        ")
	var sum int64
	for _, c := range blk {
		sum += int64(c)
	}
	s := strconv.FormatInt(sum, 8)
	for len(s) < 6 {
		s = "0" + s
	}
	copy(blk[148:], s+"\x00 ")
}
