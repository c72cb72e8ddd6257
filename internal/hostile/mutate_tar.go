//go:build linux

package hostile

import (
	"encoding/binary"
	"fmt"
)

// genTarHeader forges one field of one member header of a tree archive
// and recomputes the header checksum, so that the damage is believed:
// sizes past the archive, types changed under their data, names and link
// targets that climb out of the tree, huge owners and device numbers, and
// PAX records that lie about their length.
func genTarHeader(v *Variant) {
	b := v.Base
	h := pick(v.R, b.Tar)
	blk := v.get(h.Off, 512)
	octal := func(off, width int, val int64) {
		copy(blk[off:off+width], fmt.Sprintf("%0*o\x00", width-1, val))
	}
	base256 := func(off, width int, val uint64) {
		f := make([]byte, width)
		binary.BigEndian.PutUint64(f[width-8:], val)
		f[0] |= 0x80
		copy(blk[off:off+width], f)
	}
	what := ""
	switch v.R.IntN(8) {
	case 0:
		n := pick(v.R, []int64{0, 1, h.Size - 1, h.Size + 1, h.Size + 512, b.Size, 0o77777777777})
		n = max(n, 0)
		octal(tarSize, tarSizeLen, n)
		what = fmt.Sprintf("size %d -> %d", h.Size, n)
	case 1:
		n := pick(v.R, []uint64{1 << 40, 1 << 62, 1<<63 - 1})
		base256(tarSize, tarSizeLen, n)
		what = fmt.Sprintf("size %d -> base-256 %d", h.Size, n)
	case 2:
		t := pick(v.R, []byte{'0', '1', '2', '3', '4', '5', '6', '7', 'S', 'x', 'g', 'L', 'K', 'D', 'M', 'V', 0, 'Z'})
		blk[tarTypeflag] = t
		what = fmt.Sprintf("typeflag %q -> %q", h.Typeflag, t)
	case 3:
		name := pick(v.R, []string{"../../../../etc/evil", "/etc/evil", "a/../../b", "..", "./", "a\x00b", "var/lib/containerd/io.containerd.metadata.v1.bolt"})
		f := make([]byte, tarNameLen)
		copy(f, name)
		copy(blk[tarName:], f)
		what = fmt.Sprintf("name %q -> %q", h.Name, name)
	case 4:
		t := pick(v.R, []string{"../../../../etc/passwd", "/etc/shadow", "nonexistent", h.Name, ""})
		f := make([]byte, tarLinknameLen)
		copy(f, t)
		copy(blk[tarLinkname:], f)
		if v.R.IntN(2) == 0 {
			blk[tarTypeflag] = '1' // a hardlink
		}
		what = fmt.Sprintf("linkname -> %q (typeflag %q)", t, blk[tarTypeflag])
	case 5:
		base256(tarUID, tarUIDLen, pick(v.R, []uint64{1 << 32, 1<<63 - 1}))
		what = "uid -> base-256 huge"
	case 6:
		octal(tarDevmajor, tarDevLen, 0o7777777)
		octal(tarDevminor, tarDevLen, 0o7777777)
		blk[tarTypeflag] = pick(v.R, []byte{'3', '4'})
		what = "device numbers -> 0o7777777"
	case 7:
		// A PAX extended header's first record lies about its length.
		var pax []TarHeader
		for _, x := range b.Tar {
			if x.Typeflag == 'x' && x.Size > 0 {
				pax = append(pax, x)
			}
		}
		if len(pax) == 0 {
			v.Skip = true
			return
		}
		p := pick(v.R, pax)
		lie := pick(v.R, []string{"99999999 ", "0 ", "5 ", "18446744073709551616 ", "-3 "})
		v.put(p.DataOff, []byte(lie))
		v.say("PAX header at %d: first record length -> %q", p.Off, lie)
		return
	}
	copy(blk[tarChksum:tarChksum+tarChksumLen], fmt.Sprintf("%06o\x00 ", tarChecksum(blk)))
	v.put(h.Off, blk)
	v.say("member %q (header at %d): %s, checksum recomputed", h.Name, h.Off, what)
}
