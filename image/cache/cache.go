// Package cache turns compressed disk images (zstd, gzip, xz, and tar
// archives holding disk.raw, i.e. GCE image exports, possibly compressed)
// into sparse raw files, cached so the work is done once per input.
//
// Cache files live in the user cache directory (never next to the
// evidence), are keyed by the input's absolute path, size and mtime, and are
// written under a temporary name and renamed when complete, so an
// interrupted run never leaves a file that a later run would trust.
package cache

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/ctrlift/ctrlift/internal/units"
)

// Formats returned by Sniff and reported in Result.Format ("gzip+tar" for
// a compressed tar).
const (
	None  = ""
	Zstd  = "zstd"
	Gzip  = "gzip"
	XZ    = "xz"
	Tar   = "tar"
	Bzip2 = "bzip2" // recognised to give a clear error; not supported
)

// SniffLen is how many leading bytes Sniff wants (a tar header).
const SniffLen = 512

// DiskName is the entry a GCE image export tarball must hold.
const DiskName = "disk.raw"

const (
	chunk = 64 << 10 // unit of sparse writing: all-zero chunks become holes
	// zstd frames may ask for any window; allow what `zstd --long=31`
	// writes and refuse larger ones rather than allocate them.
	zstdMaxWindow = 1 << 31
	// Leftovers of runs killed mid-way are removed after this long (a
	// concurrent run may still be writing a younger one).
	staleAfter = 24 * time.Hour
)

// Sniff recognises a compressed stream or a tar archive by its magic bytes.
func Sniff(head []byte) string {
	switch {
	case bytes.HasPrefix(head, []byte{0x28, 0xB5, 0x2F, 0xFD}):
		return Zstd
	case len(head) >= 4 && binary.LittleEndian.Uint32(head)&0xFFFFFFF0 == 0x184D2A50:
		return Zstd // a skippable frame first (pzstd, seekable zstd)
	case bytes.HasPrefix(head, []byte{0x1F, 0x8B}):
		return Gzip
	case bytes.HasPrefix(head, []byte{0xFD, '7', 'z', 'X', 'Z', 0x00}):
		return XZ
	case bytes.HasPrefix(head, []byte("BZh")) && len(head) >= 4 && head[3] >= '1' && head[3] <= '9':
		return Bzip2
	case isTar(head):
		return Tar
	}
	return None
}

// isTar checks the ustar magic and the header checksum, so that a disk
// whose boot code happens to contain "ustar" is not taken for a tar.
func isTar(h []byte) bool {
	if len(h) < 512 {
		return false
	}
	if string(h[257:263]) != "ustar\x00" && string(h[257:265]) != "ustar  \x00" {
		return false
	}
	field := strings.TrimRight(strings.TrimLeft(string(h[148:156]), " \x00"), " \x00")
	want, err := strconv.ParseUint(field, 8, 32)
	if err != nil {
		return false
	}
	var sum uint64
	for i, b := range h[:512] {
		if i >= 148 && i < 156 {
			b = ' '
		}
		sum += uint64(b)
	}
	return sum == want
}

// Options control Decompress.
type Options struct {
	Dir      string    // cache directory; default os.UserCacheDir()/ctrlift
	NoCache  bool      // decompress into an already-unlinked temporary file in Dir (default os.TempDir())
	Progress io.Writer // "\r"-updated progress line; nil = silent
}

// Result is a decompressed raw image.
type Result struct {
	File   *os.File // read it; closing it releases a NoCache copy
	Path   string   // the cache file; "" with NoCache
	Size   int64    // bytes of raw image
	Format string   // e.g. "zstd", "gzip+tar", "tar"
	Reused bool     // an existing cache file was used
	// Warning says why the default cache directory was not used.
	Warning string
}

// DefaultDir is the cache directory used when Options.Dir is empty.
func DefaultDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "ctrlift")
	}
	return filepath.Join(os.TempDir(), "ctrlift-cache")
}

// Decompress returns the raw image inside src, whose path is name.
func Decompress(src *os.File, name string, opt Options) (*Result, error) {
	fi, err := src.Stat()
	if err != nil {
		return nil, err
	}
	if opt.NoCache {
		dir := opt.Dir
		if dir == "" {
			dir = os.TempDir()
		}
		tmp, err := os.CreateTemp(dir, "ctrlift-*.raw")
		if err != nil {
			return nil, fmt.Errorf("cache: %w", err)
		}
		// Unlinked at once: the data goes away with the descriptor, even
		// if the process is killed.
		os.Remove(tmp.Name())
		size, format, err := decompressTo(tmp, src, fi.Size(), name, opt.Progress)
		if err != nil {
			tmp.Close()
			return nil, err
		}
		return &Result{File: tmp, Size: size, Format: format}, nil
	}

	dir := opt.Dir
	if dir == "" {
		dir = DefaultDir()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		if opt.Dir != "" {
			return nil, fmt.Errorf("cache: %w", err)
		}
		// A sandboxed user may have no usable home: work without a cache.
		opt.NoCache = true
		r, err2 := Decompress(src, name, opt)
		if r != nil {
			r.Warning = fmt.Sprintf("cache directory %s is not usable (%v): decompressed into a temporary file that is removed on exit", dir, err)
		}
		return r, err2
	}
	abs, err := filepath.Abs(name)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	key := Key(abs, fi.Size(), fi.ModTime())
	if r, err := lookup(dir, key); err != nil || r != nil {
		return r, err
	}
	removeStale(dir)

	tmp, err := os.CreateTemp(dir, key+".*.partial")
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	size, format, err := decompressTo(tmp, src, fi.Size(), name, opt.Progress)
	if err != nil {
		return nil, err
	}
	if err := tmp.Sync(); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	final := filepath.Join(dir, key+"."+strings.ReplaceAll(format, "+", "-")+".raw")
	if err := os.Rename(tmp.Name(), final); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	done = true
	f, err := os.OpenFile(final, os.O_RDONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	return &Result{File: f, Path: final, Size: size, Format: format}, nil
}

// Key names the cache entry of an input: it changes when the input is
// replaced, grows or is touched.
func Key(absPath string, size int64, mtime time.Time) string {
	h := sha256.Sum256([]byte(absPath + "\x00" + strconv.FormatInt(size, 10) + "\x00" + strconv.FormatInt(mtime.UnixNano(), 10)))
	return hex.EncodeToString(h[:16])
}

// lookup opens the complete cache file of key, if there is one.
func lookup(dir, key string) (*Result, error) {
	matches, _ := filepath.Glob(filepath.Join(dir, key+".*.raw"))
	for _, m := range matches {
		fi, err := os.Lstat(m)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		f, err := os.OpenFile(m, os.O_RDONLY, 0)
		if err != nil {
			return nil, fmt.Errorf("cache: %w", err)
		}
		format := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(m), key+"."), ".raw")
		return &Result{File: f, Path: m, Size: fi.Size(), Format: strings.ReplaceAll(format, "-", "+"), Reused: true}, nil
	}
	return nil, nil
}

func removeStale(dir string) {
	matches, _ := filepath.Glob(filepath.Join(dir, "*.partial"))
	for _, m := range matches {
		if fi, err := os.Lstat(m); err == nil && fi.Mode().IsRegular() && time.Since(fi.ModTime()) > staleAfter {
			os.Remove(m)
		}
	}
}

// decompressTo writes the raw image in src (of size srcSize) into dst,
// sparsely, and returns its size and format.
func decompressTo(dst *os.File, src *os.File, srcSize int64, name string, progress io.Writer) (int64, string, error) {
	var in io.Reader = io.NewSectionReader(src, 0, srcSize)
	var pr *progressReader
	if progress != nil {
		pr = &progressReader{r: in, w: progress, name: filepath.Base(name), total: srcSize}
		in = pr
	}
	raw, format, closeFn, err := openStream(in)
	if err != nil {
		return 0, "", fmt.Errorf("cache: %w", err)
	}
	defer closeFn()
	n, err := CopySparse(dst, raw)
	if pr != nil {
		pr.finish()
	}
	if err != nil {
		return 0, "", fmt.Errorf("cache: decompressing %s (%s) at output offset %d: %w", filepath.Base(name), format, n, err)
	}
	return n, format, nil
}

// openStream recognises the compression of r and, inside it, a tar
// archive; it returns a reader of the raw image.
func openStream(r io.Reader) (io.Reader, string, func(), error) {
	br := bufio.NewReaderSize(r, 1<<20)
	head, _ := br.Peek(SniffLen)
	format := Sniff(head)
	var dec io.Reader
	closeFn := func() {}
	switch format {
	case Zstd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderMaxWindow(zstdMaxWindow), zstd.WithDecoderMaxMemory(1<<63))
		if err != nil {
			return nil, "", nil, fmt.Errorf("zstd: %w", err)
		}
		dec, closeFn = zr, zr.Close
	case Gzip:
		gr, err := gzip.NewReader(br)
		if err != nil {
			return nil, "", nil, fmt.Errorf("gzip: %w", err)
		}
		dec, closeFn = gr, func() { gr.Close() }
	case XZ:
		xr, err := xz.NewReader(br)
		if err != nil {
			return nil, "", nil, fmt.Errorf("xz: %w", err)
		}
		dec = xr
	case Tar:
		dec = br
	case Bzip2:
		return nil, "", nil, errors.New("bzip2-compressed images are not supported; decompress with bunzip2 first")
	default:
		return nil, "", nil, errors.New("not a compressed image or tar archive")
	}
	if format != Tar {
		inner := bufio.NewReaderSize(dec, 1<<20)
		h, _ := inner.Peek(SniffLen)
		dec = inner
		if !isTar(h) {
			return dec, format, closeFn, nil
		}
		format += "+" + Tar
	}
	disk, err := findDisk(tar.NewReader(dec))
	if err != nil {
		closeFn()
		return nil, "", nil, err
	}
	return disk, format, closeFn, nil
}

// findDisk advances tr to the disk.raw entry of a GCE image export.
func findDisk(tr *tar.Reader) (io.Reader, error) {
	var seen []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, fmt.Errorf("tar: no %s entry (GCE image export) among %s", DiskName, strings.Join(seen, ", "))
		}
		if err != nil {
			return nil, fmt.Errorf("tar: %w", err)
		}
		if path.Clean(strings.TrimPrefix(h.Name, "/")) == DiskName && (h.Typeflag == tar.TypeReg || h.Typeflag == tar.TypeGNUSparse) {
			return tr, nil
		}
		if len(seen) < 10 {
			seen = append(seen, strconv.Quote(h.Name))
		} else if len(seen) == 10 {
			seen = append(seen, "...")
		}
	}
}

// CopySparse copies src to dst, seeking over all-zero chunks so that the
// copy takes only the space of the data, and returns the bytes copied.
func CopySparse(dst *os.File, src io.Reader) (int64, error) {
	buf := make([]byte, chunk)
	zero := make([]byte, chunk)
	var off int64
	for eof := false; !eof; {
		// Fill the chunk. Not io.ReadFull: its io.ErrUnexpectedEOF for a
		// short last chunk would hide the same error from a decompressor
		// whose input is truncated.
		n := 0
		for n < len(buf) {
			m, err := src.Read(buf[n:])
			n += m
			if err == io.EOF {
				eof = true
				break
			}
			if err != nil {
				return off + int64(n), err
			}
		}
		if !bytes.Equal(buf[:n], zero[:n]) {
			if _, err := dst.WriteAt(buf[:n], off); err != nil {
				return off, err
			}
		}
		off += int64(n)
	}
	// Trailing holes are not written: set the size explicitly.
	return off, dst.Truncate(off)
}

// progressReader reports how much of the compressed input was consumed.
type progressReader struct {
	r           io.Reader
	w           io.Writer
	name        string
	total, done int64
	last        time.Time
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.done += int64(n)
	if now := time.Now(); now.Sub(p.last) >= 200*time.Millisecond {
		p.last = now
		p.print()
	}
	return n, err
}

func (p *progressReader) print() {
	pct := 100.0
	if p.total > 0 {
		pct = float64(p.done) * 100 / float64(p.total)
	}
	fmt.Fprintf(p.w, "\rdecompressing %s: %s of %s (%.0f%%)", p.name, units.Bytes(p.done), units.Bytes(p.total), pct)
}

func (p *progressReader) finish() {
	p.print()
	fmt.Fprintln(p.w)
}
