package vdisk

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

// Codec is how a compressed block is encoded.
type Codec uint8

// Codecs of compressed blocks.
const (
	CodecNone    Codec = iota
	CodecDeflate       // raw deflate, no header (qcow2 "zlib" clusters)
	CodecZlib          // zlib stream, RFC 1950 (VMDK compressed grains)
	CodecZstd          // zstd frame (qcow2 compression_type 1)
)

var codecNames = [...]string{CodecNone: "none", CodecDeflate: "deflate", CodecZlib: "zlib", CodecZstd: "zstd"}

func (c Codec) String() string {
	if int(c) < len(codecNames) {
		return codecNames[c]
	}
	return fmt.Sprintf("Codec(%d)", uint8(c))
}

// maxZstdWindow bounds what a zstd frame header may make the decoder
// allocate; compressed blocks are at most a few MiB.
const maxZstdWindow = 32 << 20

var flateReaders sync.Pool // of io.ReadCloser implementing flate.Resetter
var zlibReaders sync.Pool  // of io.ReadCloser implementing zlib.Resetter

// zstdDecoders are single-threaded streaming decoders, reused. A stream
// decoder stops when the block is full: qcow2 packs the next cluster's
// frame right after this one, and decoding on into it would be wasted.
var zstdDecoders sync.Pool // of *zstd.Decoder

// errTooShort and errTooLong are wrapped with the sizes by decompress.
var (
	errTooShort = errors.New("decompresses to fewer bytes than the block")
	errTooLong  = errors.New("decompresses to more bytes than the block")
)

// decompress fills out (one whole block) from the compressed bytes in,
// never producing more than len(out) bytes whatever the input claims: a
// stream that would go on past the block is an error.
// With allowShort a stream that ends early leaves the rest zero (a VMDK
// grain at the end of the disk); without it an early end is an error.
// Bytes after the end of the stream are ignored: qcow2 sizes compressed
// clusters only to the sector.
func decompress(codec Codec, in, out []byte, allowShort bool) error {
	var n int
	var err error
	switch codec {
	case CodecDeflate:
		n, err = inflate(in, out, false)
	case CodecZlib:
		n, err = inflate(in, out, true)
	case CodecZstd:
		n, err = unzstd(in, out)
	default:
		return fmt.Errorf("unknown compression %v", codec)
	}
	if err != nil {
		return err
	}
	if n < len(out) {
		if !allowShort {
			return fmt.Errorf("%w (%d of %d)", errTooShort, n, len(out))
		}
		clear(out[n:])
	}
	return nil
}

// inflate decodes a deflate or zlib stream into out. The stream must end
// within out (for zlib, that also checks its Adler-32).
func inflate(in, out []byte, zlibHeader bool) (int, error) {
	src := bytes.NewReader(in)
	var rc io.ReadCloser
	var err error
	if zlibHeader {
		if r, ok := zlibReaders.Get().(io.ReadCloser); ok {
			err = r.(zlib.Resetter).Reset(src, nil)
			rc = r
		} else {
			rc, err = zlib.NewReader(src)
		}
	} else {
		if r, ok := flateReaders.Get().(io.ReadCloser); ok {
			err = r.(flate.Resetter).Reset(src, nil)
			rc = r
		} else {
			rc = flate.NewReader(src)
		}
	}
	if err != nil {
		return 0, fmt.Errorf("bad zlib header: %w", err)
	}
	defer func() {
		if zlibHeader {
			zlibReaders.Put(rc)
		} else {
			flateReaders.Put(rc)
		}
	}()
	n := 0
	for n < len(out) {
		m, err := rc.Read(out[n:])
		n += m
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("bad compressed data: %w", err)
		}
	}
	// The block is full: a well-formed stream ends here. (qemu would stop
	// reading a deflate cluster at this point; a stream that goes on is a
	// bomb or garbage either way.)
	var probe [1]byte
	for range 4 { // a decoder may return (0, nil) before io.EOF
		m, err := rc.Read(probe[:])
		if m > 0 {
			return n, fmt.Errorf("%w (%d)", errTooLong, len(out))
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("bad compressed data: %w", err)
		}
	}
	return n, errors.New("bad compressed data: no end after the block")
}

// unzstd decodes the first zstd frame of in into out. What follows the
// frame (the start of the next compressed cluster, padding) is not read
// once the block is full.
func unzstd(in, out []byte) (int, error) {
	d, _ := zstdDecoders.Get().(*zstd.Decoder)
	if d == nil {
		var err error
		d, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxZstdWindow),
			zstd.WithDecoderMaxMemory(maxZstdWindow), zstd.WithDecoderLowmem(true))
		if err != nil {
			return 0, err
		}
	}
	defer zstdDecoders.Put(d)
	var h zstd.Header
	if err := h.Decode(in); err == nil && h.HasFCS && h.FrameContentSize > uint64(len(out)) {
		return 0, fmt.Errorf("%w (%d): the frame declares %d", errTooLong, len(out), h.FrameContentSize)
	}
	if err := d.Reset(bytes.NewReader(in)); err != nil {
		return 0, fmt.Errorf("bad zstd data: %w", err)
	}
	n := 0
	for n < len(out) {
		m, err := d.Read(out[n:])
		n += m
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) {
				return n, fmt.Errorf("%w (%d): %w", errTooLong, len(out), err)
			}
			return n, fmt.Errorf("bad zstd data: %w", err)
		}
	}
	return n, nil
}
