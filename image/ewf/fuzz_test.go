package ewf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/adler32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// FuzzOpen opens fuzzed single-segment images built from the committed
// fixture and reads them: every failure must be a FormatError, nothing may
// panic or allocate without bound.
func FuzzOpen(f *testing.F) {
	seed, err := os.ReadFile(filepath.Join("testdata", "small.E01"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add(seed[:len(seed)/2])
	damaged := bytes.Clone(seed)
	damaged[len(damaged)/3] ^= 0xff
	f.Add(damaged)
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzOne(t, data)
		// Checksums stop most mutations early; go deeper with them fixed.
		fixed := bytes.Clone(data)
		fixChecksums(t, fixed)
		fuzzOne(t, fixed)
	})
}

func fuzzOne(t *testing.T, data []byte) {
	img, err := openSegments(Options{Workers: 2, CacheBytes: 1 << 20}, func(n int) (segment, error) {
		if n != 1 {
			return segment{name: "fuzz.E02"}, fs.ErrNotExist
		}
		return segment{name: "fuzz.E01", r: bytes.NewReader(data), size: int64(len(data))}, nil
	})
	if err != nil {
		var fe *FormatError
		if !errors.As(err, &fe) {
			t.Fatalf("Open: %v is not a FormatError", err)
		}
		return
	}
	defer img.Close()
	_ = img.Info()
	// The media may claim terabytes: read its start, a chunk-crossing
	// range and its end.
	buf := make([]byte, 48<<10)
	for _, off := range []int64{0, img.Size() / 2, max(img.Size()-int64(len(buf))/2, 0)} {
		for i := int64(0); i < 4 && off+i*int64(len(buf)) < img.Size(); i++ {
			if _, err := img.ReadAt(buf, off+i*int64(len(buf))); err != nil && err != io.EOF {
				var fe *FormatError
				if !errors.As(err, &fe) {
					t.Fatalf("ReadAt: %v is not a FormatError", err)
				}
			}
		}
	}
}

// fixChecksums recomputes the checksums of the sections a mutation broke,
// as far as the data allows.
func fixChecksums(t *testing.T, b []byte) {
	fix := func(p []byte, at int) {
		if at+4 <= len(p) {
			binary.LittleEndian.PutUint32(p[at:], adler32.Checksum(p[:at]))
		}
	}
	for _, s := range listSections(t, b) {
		fixDescriptor(b, s.off)
		if s.dataOffset > int64(len(b)) || s.next > int64(len(b)) || s.next < s.dataOffset {
			continue
		}
		d := b[s.dataOffset:s.next]
		switch s.typ {
		case secVolume, secData, secDisk:
			if len(d) >= volumeSize {
				fix(d, volChecksum)
			} else {
				fix(d, volChecksumSMART)
			}
		case secTable, secTable2:
			fix(d, thChecksum)
			if len(d) >= tableHeaderSize {
				n := int(binary.LittleEndian.Uint32(d))
				if n < len(d)/4 {
					fix(d[tableHeaderSize:], n*tableEntrySize)
				}
			}
		case secHash:
			fix(d, hashChecksum)
		case secDigest:
			fix(d, digestChecksum)
		}
	}
}
