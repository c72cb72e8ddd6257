package image

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"
)

// FuzzDetect feeds arbitrary bytes to NewDisk: it must never panic or hang
// and whatever it returns must stay within the image. Each input is also
// tried with its GPT CRCs recomputed, so that mutations of header and entry
// fields get past the checksums and reach the deeper checks.
// Seeds: testdata/fuzz/FuzzDetect, tiny disks made by make-disks.sh.
func FuzzDetect(f *testing.F) {
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDetect(t, data)
		if fixed := fixGPTCRCs(data); fixed != nil {
			checkDetect(t, fixed)
		}
	})
}

func checkDetect(t *testing.T, data []byte) {
	size := int64(len(data))
	d, err := NewDisk(bytes.NewReader(data), size)
	if err != nil {
		if err.Error() == "" {
			t.Fatal("empty error message")
		}
		return
	}
	switch d.Layout {
	case LayoutGPT, LayoutMBR, LayoutNone:
	default:
		t.Fatalf("layout %q", d.Layout)
	}
	if d.Layout == LayoutNone && len(d.Partitions) != 1 {
		t.Fatalf("%d partitions without a table", len(d.Partitions))
	}
	for _, p := range d.Partitions {
		if p.Start < 0 || p.Size < 0 || p.Start > size || p.Size > size-p.Start {
			t.Fatalf("partition %d outside the image: start %d size %d of %d", p.Number, p.Start, p.Size, size)
		}
		if p.Reader().Size() != p.Size || p.FS.Type == "" || p.Type == "" {
			t.Fatalf("partition %+v", p)
		}
	}
	d.Select("")
	d.Select("1")
	d.Select("STATE")
}

// fixGPTCRCs returns a copy of data with the entry-array and header CRCs of
// every GPT header found (LBA 1 and last LBA, 512 and 4096-byte sectors)
// recomputed, or nil if there is none.
func fixGPTCRCs(data []byte) []byte {
	var out []byte
	le := binary.LittleEndian
	for _, ss := range []int{512, 4096} {
		if len(data) < 2*ss {
			continue
		}
		for _, off := range []int{ss, (len(data)/ss - 1) * ss} {
			if string(data[off:off+8]) != "EFI PART" || off+92 > len(data) {
				continue
			}
			if out == nil {
				out = bytes.Clone(data)
			}
			h := out[off:]
			start := le.Uint64(h[72:]) * uint64(ss)
			n := uint64(le.Uint32(h[80:])) * uint64(le.Uint32(h[84:]))
			if start < uint64(len(out)) && n <= uint64(len(out))-start {
				le.PutUint32(h[88:], crc32.ChecksumIEEE(out[start:start+n]))
			}
			clear(h[16:20])
			le.PutUint32(h[16:], crc32.ChecksumIEEE(h[:92]))
		}
	}
	return out
}
