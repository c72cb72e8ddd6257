//go:build linux

package hostile

import (
	"bytes"
	"io"
	"strconv"
	"strings"
)

// TarHeader is one 512-byte header block of a tar archive.
type TarHeader struct {
	Off      int64 // of the header block
	DataOff  int64 // of the member's data
	Size     int64 // data bytes, from the size field
	Typeflag byte
	Name     string
}

// Header field offsets and widths of a ustar block (POSIX.1-1988).
const (
	tarName, tarNameLen         = 0, 100
	tarMode, tarModeLen         = 100, 8
	tarUID, tarUIDLen           = 108, 8
	tarSize, tarSizeLen         = 124, 12
	tarMtime, tarMtimeLen       = 136, 12
	tarChksum, tarChksumLen     = 148, 8
	tarTypeflag                 = 156
	tarLinkname, tarLinknameLen = 157, 100
	tarDevmajor, tarDevLen      = 329, 8
	tarDevminor                 = 337
)

// mapTar walks the headers of a pristine tar archive, as tar does: each
// header, then its data rounded up to 512 bytes. It stops at the end
// marker, at a block that is not a header, or after max headers.
func mapTar(r io.ReaderAt, size int64, max int) []TarHeader {
	var out []TarHeader
	blk := make([]byte, 512)
	for off := int64(0); off+512 <= size && len(out) < max; {
		if _, err := r.ReadAt(blk, off); err != nil {
			break
		}
		if bytes.Equal(blk, make([]byte, 512)) || !tarChecksumOK(blk) {
			break
		}
		n, ok := tarOctal(blk[tarSize : tarSize+tarSizeLen])
		if !ok || n < 0 || n > size {
			break
		}
		name := string(bytes.TrimRight(blk[tarName:tarName+tarNameLen], "\x00"))
		out = append(out, TarHeader{Off: off, DataOff: off + 512, Size: n, Typeflag: blk[tarTypeflag], Name: name})
		off += 512 + (n+511)/512*512
	}
	return out
}

func tarOctal(b []byte) (int64, bool) {
	s := strings.TrimRight(strings.TrimLeft(string(b), " "), " \x00")
	if s == "" {
		return 0, true
	}
	n, err := strconv.ParseInt(s, 8, 64)
	return n, err == nil
}

// tarChecksum is the header checksum: the byte sum with the checksum
// field read as spaces.
func tarChecksum(blk []byte) int64 {
	var sum int64
	for i, c := range blk {
		if i >= tarChksum && i < tarChksum+tarChksumLen {
			c = ' '
		}
		sum += int64(c)
	}
	return sum
}

func tarChecksumOK(blk []byte) bool {
	want, ok := tarOctal(blk[tarChksum : tarChksum+tarChksumLen])
	return ok && want == tarChecksum(blk)
}
