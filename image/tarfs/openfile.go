package tarfs

import (
	"archive/tar"
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/ctrlift/ctrlift/image/cache"
)

const (
	// zstd frames may ask for any window; allow what `zstd --long=31`
	// writes and refuse larger ones rather than allocate them.
	zstdMaxWindow = 1 << 31
)

// OpenFile opens the tar archive at path read-only. A gzip, zstd or xz
// archive (recognised by its magic bytes, never by its name) is first
// decompressed once into a temporary file in tmpDir (os.TempDir() when
// ""), unlinked as soon as it is created so that nothing is left behind
// even if the process is killed. Close releases the file.
func OpenFile(path string, tmpDir string) (*FS, error) {
	src, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tarfs: %w", err)
	}
	st, err := src.Stat()
	if err != nil {
		src.Close()
		return nil, fmt.Errorf("tarfs: %w", err)
	}
	if !st.Mode().IsRegular() {
		src.Close()
		return nil, fmt.Errorf("tarfs: %s: not a regular file", path)
	}
	head := make([]byte, cache.SniffLen)
	n, err := src.ReadAt(head, 0)
	if err != nil && err != io.EOF {
		src.Close()
		return nil, fmt.Errorf("tarfs: %s: %w", path, err)
	}
	format := cache.Sniff(head[:n])
	switch format {
	case cache.Tar, cache.None:
		// None: possibly a pre-POSIX tar without the ustar magic;
		// archive/tar decides.
		f, err := Open(src, st.Size())
		if err != nil {
			src.Close()
			if format == cache.None {
				return nil, fmt.Errorf("%w (%s is neither a ustar/PAX/GNU tar nor gzip, zstd or xz)", err, path)
			}
			return nil, err
		}
		f.closer = src
		return f, nil
	case cache.Bzip2:
		src.Close()
		return nil, fmt.Errorf("tarfs: %s: bzip2-compressed archives are not supported; decompress with bunzip2 first", path)
	}
	defer src.Close()
	if tmpDir == "" {
		tmpDir = os.TempDir()
	}
	tmp, err := os.CreateTemp(tmpDir, "ctrlift-tarfs-*")
	if err != nil {
		return nil, fmt.Errorf("tarfs: temporary copy: %w", err)
	}
	if err := os.Remove(tmp.Name()); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("tarfs: unlinking the temporary copy: %w", err)
	}
	size, err := decompress(tmp, io.NewSectionReader(src, 0, st.Size()), format)
	if err != nil {
		tmp.Close()
		return nil, fmt.Errorf("tarfs: %s: decompressing (%s) at output offset %d: %w", path, format, size, err)
	}
	f, err := Open(tmp, size)
	if err != nil {
		tmp.Close()
		return nil, err
	}
	f.closer, f.format = tmp, format+"+tar"
	return f, nil
}

// Probe reports whether the file at path is a tar archive, plain or gzip,
// zstd or xz compressed (by magic bytes: the ustar magic of the first
// block, after decompression), and names its first member, "" when that
// header does not read. It reads only the first blocks: enough to tell a
// tree's tar from a GCE image export, whose single member is disk.raw.
func Probe(path string) (isTar bool, first string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return false, "", err
	}
	defer f.Close()
	head := make([]byte, cache.SniffLen)
	n, err := f.ReadAt(head, 0)
	if err != nil && err != io.EOF {
		return false, "", err
	}
	var r io.Reader = io.NewSectionReader(f, 0, 1<<62)
	switch format := cache.Sniff(head[:n]); format {
	case cache.Tar:
	case cache.Gzip, cache.Zstd, cache.XZ:
		dr, done, err := stream(r, format)
		if err != nil {
			return false, "", nil // not a readable stream: not a tar to us
		}
		defer done()
		block := make([]byte, 512)
		m, _ := io.ReadFull(dr, block)
		if cache.Sniff(block[:m]) != cache.Tar {
			return false, "", nil // a compressed disk image
		}
		r = io.MultiReader(bytes.NewReader(block[:m]), dr)
	default:
		return false, "", nil
	}
	// A tar whose first header does not read is still a tar: the reader
	// says what is wrong with it, and where.
	hdr, err := tar.NewReader(r).Next()
	if err != nil {
		return true, "", nil
	}
	return true, hdr.Name, nil
}

// stream returns the decompressed stream of src and a function releasing
// the decompressor.
func stream(src io.Reader, format string) (io.Reader, func(), error) {
	br := bufio.NewReaderSize(src, 1<<20)
	switch format {
	case cache.Gzip:
		gr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, err
		}
		return gr, func() { gr.Close() }, nil
	case cache.Zstd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderMaxWindow(zstdMaxWindow), zstd.WithDecoderMaxMemory(1<<63))
		if err != nil {
			return nil, nil, err
		}
		return zr, zr.Close, nil
	case cache.XZ:
		xr, err := xz.NewReader(br)
		if err != nil {
			return nil, nil, err
		}
		return xr, func() {}, nil
	}
	return nil, nil, fmt.Errorf("unsupported format %q", format)
}

// decompress writes the decompressed stream of src into dst, leaving
// all-zero chunks as holes, and returns its size.
func decompress(dst *os.File, src io.Reader, format string) (int64, error) {
	r, done, err := stream(src, format)
	if err != nil {
		return 0, err
	}
	defer done()
	return cache.CopySparse(dst, r)
}
