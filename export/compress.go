package export

import (
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Compression names an output compression.
type Compression string

const (
	None Compression = "none"
	Gzip Compression = "gzip"
	Zstd Compression = "zstd"
)

// CompressionFor picks the compression a file name asks for.
func CompressionFor(name string) Compression {
	switch n := strings.ToLower(name); {
	case strings.HasSuffix(n, ".gz"), strings.HasSuffix(n, ".tgz"):
		return Gzip
	case strings.HasSuffix(n, ".zst"), strings.HasSuffix(n, ".zstd"):
		return Zstd
	}
	return None
}

// ParseCompression validates a --compress value.
func ParseCompression(s string) (Compression, error) {
	switch c := Compression(strings.ToLower(s)); c {
	case None, Gzip, Zstd:
		return c, nil
	}
	return "", fmt.Errorf("unknown compression %q (want gzip, zstd or none)", s)
}

// Compress wraps w so that what is written is compressed; Close flushes
// the compressed stream but does not close w. Output is deterministic: no
// timestamps or names are stored, and zstd's parallel encoder splits the
// stream at fixed points.
func Compress(w io.Writer, c Compression) (io.WriteCloser, error) {
	switch c {
	case None, "":
		return nopCloser{w}, nil
	case Gzip:
		return gzip.NewWriterLevel(w, gzip.DefaultCompression)
	case Zstd:
		return zstd.NewWriter(w,
			zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)),
			zstd.WithEncoderLevel(zstd.SpeedFastest))
	}
	return nil, fmt.Errorf("unknown compression %q", c)
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
