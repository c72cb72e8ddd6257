package export

import (
	"archive/tar"
	"path"
	"slices"
	"strconv"
	"strings"
)

// The header blocks of an entry are what archive/tar's Writer writes for
// it. Its WriteHeader formats two error messages with fmt for every
// header with an atime (the reasons USTAR and GNU cannot hold it), which
// made it a fifth of an export's time; appendPAXHeader writes the same
// bytes for the headers an export makes, and the rest go to tar.Writer.
// TestHeaderMatchesArchiveTar holds the two to the same output.

// fastHeaderOK reports whether appendPAXHeader writes hdr exactly as
// tar.Writer would: a PAX-format header with all three times set, whose
// numbers fit the fields tar.Writer needs them in, and whose records
// tar.Writer accepts.
func fastHeaderOK(hdr *tar.Header) bool {
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		if strings.HasSuffix(hdr.Name, "/") {
			return false // refused by tar.Writer
		}
	case tar.TypeDir, tar.TypeLink, tar.TypeSymlink:
	default:
		return false
	}
	if hdr.Format != tar.FormatPAX || hdr.Uname != "" || hdr.Gname != "" || len(hdr.Xattrs) > 0 || //nolint:staticcheck // Xattrs must be unset
		hdr.ModTime.IsZero() || hdr.AccessTime.IsZero() || hdr.ChangeTime.IsZero() ||
		hdr.Size < 0 || !fitsOctal(8, hdr.Mode) || !fitsOctal(8, hdr.Devmajor) || !fitsOctal(8, hdr.Devminor) ||
		strings.IndexByte(hdr.Name, 0) >= 0 || strings.IndexByte(hdr.Linkname, 0) >= 0 {
		return false
	}
	total := len(hdr.Name) + len(hdr.Linkname)
	for k, v := range hdr.PAXRecords {
		if !strings.HasPrefix(k, "SCHILY.xattr.") || strings.ContainsAny(k, "=\x00") {
			return false
		}
		total += len(k) + len(v) + 32
	}
	return total < 512<<10 // tar.Writer refuses extended headers over 1 MiB
}

func fitsOctal(n int, x int64) bool {
	return x >= 0 && (n >= 22 || x < 1<<(uint(n-1)*3))
}

// isASCII and toASCII are archive/tar's: a byte that is not part of a
// valid UTF-8 sequence counts as a rune of its own.
func isASCII(s string) bool {
	for _, c := range s {
		if c >= 0x80 || c == 0x00 {
			return false
		}
	}
	return true
}

func toASCII(s string) string {
	if isASCII(s) {
		return s
	}
	b := make([]byte, 0, len(s))
	for _, c := range s {
		if c < 0x80 && c != 0x00 {
			b = append(b, byte(c))
		}
	}
	return string(b)
}

// paxTime is archive/tar's formatPAXTime.
func paxTime(secs int64, nsecs int) string {
	if nsecs == 0 {
		return strconv.FormatInt(secs, 10)
	}
	var b []byte
	if secs < 0 {
		b = append(b, '-')
		secs = -(secs + 1)
		nsecs = -(nsecs - 1e9)
	}
	b = strconv.AppendInt(b, secs, 10)
	b = append(b, '.')
	frac := strconv.Itoa(nsecs)
	for i := len(frac); i < 9; i++ {
		b = append(b, '0')
	}
	b = append(b, frac...)
	return strings.TrimRight(string(b), "0")
}

// appendPAXHeader appends the header blocks of hdr, which fastHeaderOK
// accepted, as tar.Writer writes them: a PAX extended header (its
// records sorted by key) and the ustar block.
func appendPAXHeader(out []byte, hdr *tar.Header) []byte {
	type rec struct{ k, v string }
	recs := make([]rec, 0, 4+len(hdr.PAXRecords))
	if !isASCII(hdr.Name) || len(hdr.Name) > 100 {
		recs = append(recs, rec{"path", hdr.Name})
	}
	if !isASCII(hdr.Linkname) || len(hdr.Linkname) > 100 {
		recs = append(recs, rec{"linkpath", hdr.Linkname})
	}
	if !fitsOctal(8, int64(hdr.Uid)) {
		recs = append(recs, rec{"uid", strconv.FormatInt(int64(hdr.Uid), 10)})
	}
	if !fitsOctal(8, int64(hdr.Gid)) {
		recs = append(recs, rec{"gid", strconv.FormatInt(int64(hdr.Gid), 10)})
	}
	size := hdr.Size
	if !fitsOctal(12, size) {
		recs = append(recs, rec{"size", strconv.FormatInt(size, 10)})
	}
	mtime := hdr.ModTime.Unix()
	if !fitsOctal(12, mtime) || hdr.ModTime.Nanosecond() != 0 {
		recs = append(recs, rec{"mtime", paxTime(mtime, hdr.ModTime.Nanosecond())})
	}
	recs = append(recs, rec{"atime", paxTime(hdr.AccessTime.Unix(), hdr.AccessTime.Nanosecond())})
	recs = append(recs, rec{"ctime", paxTime(hdr.ChangeTime.Unix(), hdr.ChangeTime.Nanosecond())})
	for k, v := range hdr.PAXRecords {
		recs = append(recs, rec{k, v})
	}
	slices.SortFunc(recs, func(a, b rec) int { return strings.Compare(a.k, b.k) })

	// The extended header: a block naming dir/PaxHeaders.0/file, the
	// records, padding.
	start := len(out)
	out = append(out, make([]byte, 512)...)
	blk := out[start : start+512]
	for _, r := range recs {
		size := len(r.k) + len(r.v) + 3
		size += len(strconv.Itoa(size))
		if n := len(strconv.Itoa(size)) + len(r.k) + len(r.v) + 3; n != size {
			size = n
		}
		out = strconv.AppendInt(out, int64(size), 10)
		out = append(out, ' ')
		out = append(out, r.k...)
		out = append(out, '=')
		out = append(out, r.v...)
		out = append(out, '\n')
	}
	data := len(out) - start - 512
	out = append(out, zeros[:pad(int64(data))]...)
	blk = out[start : start+512]
	dir, file := path.Split(hdr.Name)
	name := toASCII(path.Join(dir, "PaxHeaders.0", file))
	if len(name) > 100 {
		name = name[:100]
	}
	name = strings.TrimRight(name, "/")
	blk[156] = tar.TypeXHeader
	tarString(blk[0:100], name)
	tarOctal(blk[100:108], 0)
	tarOctal(blk[108:116], 0)
	tarOctal(blk[116:124], 0)
	tarOctal(blk[124:136], int64(data))
	tarOctal(blk[136:148], 0)
	setUSTAR(blk)

	// The ustar block.
	start = len(out)
	out = append(out, make([]byte, 512)...)
	blk = out[start : start+512]
	blk[156] = hdr.Typeflag
	tarString(blk[0:100], toASCII(hdr.Name))
	tarString(blk[157:257], toASCII(hdr.Linkname))
	tarOctal(blk[100:108], hdr.Mode)
	tarOctal(blk[108:116], int64(hdr.Uid))
	tarOctal(blk[116:124], int64(hdr.Gid))
	tarOctal(blk[124:136], size)
	tarOctal(blk[136:148], mtime)
	tarOctal(blk[329:337], hdr.Devmajor)
	tarOctal(blk[337:345], hdr.Devminor)
	setUSTAR(blk)
	return out
}

// tarString is archive/tar's formatter.formatString.
func tarString(b []byte, s string) {
	copy(b, s)
	if len(s) < len(b) {
		b[len(s)] = 0
	}
	if len(s) > len(b) && b[len(b)-1] == '/' {
		n := len(strings.TrimRight(s[:len(b)-1], "/"))
		b[n] = 0
	}
}

// tarOctal is archive/tar's formatter.formatOctal: a number that does
// not fit is written as zero (a PAX record holds it).
func tarOctal(b []byte, x int64) {
	if !fitsOctal(len(b), x) {
		x = 0
	}
	var digits [24]byte
	s := strconv.AppendInt(digits[:0], x, 8)
	n := 0
	for ; n < len(b)-len(s)-1; n++ {
		b[n] = '0'
	}
	tarString(b[n:], string(s))
}

// setUSTAR sets the magic and version of a PAX (ustar) block and its
// checksum.
func setUSTAR(blk []byte) {
	copy(blk[257:263], "ustar\x00")
	copy(blk[263:265], "00")
	var sum int64
	for i, c := range blk {
		if 148 <= i && i < 156 {
			c = ' '
		}
		sum += int64(c)
	}
	tarOctal(blk[148:155], sum)
	blk[155] = ' '
}
