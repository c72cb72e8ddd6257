//go:build linux

package hostile

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
)

// Patch replaces len(Data) bytes at Off of a base's file: its only file,
// or Set[File] of a multi-file base.
type Patch struct {
	File int
	Off  int64
	Data []byte
}

// OutsideDir stands, in a FileOp's Link or Data, for the absolute path of
// the worker's directory of escape targets (Base.Outside), which lies
// outside the variant's directory: ../../outside from it.
const OutsideDir = "@OUTSIDE@"

// FileOp changes the directory of a multi-file variant: Name (a file of
// the set, or a new name) becomes a symbolic link to Link, a FIFO, a
// directory, a file holding Data, or is removed.
type FileOp struct {
	Name   string
	Link   string // symlink target ("" for the other kinds)
	Data   []byte // new contents (Replace)
	Kind   string // "link", "fifo", "dir", "replace", "remove"
	Reason string
}

// Variant is a base image with patches applied and optionally truncated.
type Variant struct {
	Index     int
	Seed      uint64
	Class     string
	Base      *Base
	Desc      []string
	Patches   []Patch
	Truncate  int64    // new size, or -1 to keep the size
	TruncFile int      // which file of a multi-file base is truncated
	Ops       []FileOp // applied after the patches (multi-file bases)
	Skip      bool     // the class had nothing to aim at on this base
	R         *rand.Rand
}

// NewVariant starts variant index of a sweep with the given seed.
func NewVariant(seed uint64, index int, class string, b *Base) *Variant {
	return &Variant{Index: index, Seed: seed, Class: class, Base: b, Truncate: -1,
		R: rand.New(rand.NewPCG(seed, uint64(index)))}
}

// String describes the variant in one line.
func (v *Variant) String() string {
	s := fmt.Sprintf("#%d %s on %s: %s", v.Index, v.Class, v.Base.Name, strings.Join(v.Desc, "; "))
	if v.Truncate >= 0 {
		if v.Base.Set != nil {
			s += fmt.Sprintf(" [%s truncated to %d bytes]", v.Base.Set[v.TruncFile].Name, v.Truncate)
		} else {
			s += fmt.Sprintf(" [truncated to %d bytes]", v.Truncate)
		}
	}
	return s
}

func (v *Variant) say(format string, args ...any) {
	v.Desc = append(v.Desc, fmt.Sprintf(format, args...))
}

// put adds a patch; later patches win over earlier ones.
func (v *Variant) put(off int64, data []byte) { v.putIn(0, off, data) }

// putIn adds a patch to file f of the base (0 for a one-file base).
func (v *Variant) putIn(f int, off int64, data []byte) {
	size := v.Base.fileSize(f)
	if off < 0 || off >= size {
		return
	}
	if end := off + int64(len(data)); end > size {
		data = data[:size-off]
	}
	v.Patches = append(v.Patches, Patch{File: f, Off: off, Data: slices.Clone(data)})
}

func (v *Variant) putUintIn(f int, off int64, width int, val uint64, be bool) {
	b := make([]byte, 8)
	if be {
		binary.BigEndian.PutUint64(b, val<<(64-8*width))
	} else {
		binary.LittleEndian.PutUint64(b, val)
	}
	v.putIn(f, off, b[:width])
}

func (v *Variant) putUint(off int64, width int, val uint64, be bool) {
	v.putUintIn(0, off, width, val, be)
}

func (v *Variant) put32(off int64, val uint32) { v.putUint(off, 4, uint64(val), false) }

// get reads n bytes at off as the variant has them so far.
func (v *Variant) get(off int64, n int) []byte { return v.getIn(0, off, n) }

// getIn reads n bytes at off of file f as the variant has them so far.
func (v *Variant) getIn(f int, off int64, n int) []byte {
	b := make([]byte, n)
	v.viewOf(f).ReadAt(b, off)
	return b
}

func (v *Variant) getUint(off int64, width int, be bool) uint64 {
	return v.getUintIn(0, off, width, be)
}

func (v *Variant) getUintIn(f int, off int64, width int, be bool) uint64 {
	b := v.getIn(f, off, width)
	var x uint64
	for i := 0; i < width; i++ {
		if be {
			x = x<<8 | uint64(b[i])
		} else {
			x |= uint64(b[i]) << (8 * i)
		}
	}
	return x
}

// flip inverts 1 to 8 random bits in [off, off+n).
func (v *Variant) flip(off int64, n int64) { v.flipIn(0, off, n) }

func (v *Variant) flipIn(f int, off int64, n int64) {
	if n <= 0 {
		return
	}
	k := 1 + v.R.IntN(8)
	var where []string
	for i := 0; i < k; i++ {
		p := off + v.R.Int64N(n)
		b := v.getIn(f, p, 1)
		b[0] ^= 1 << v.R.IntN(8)
		v.putIn(f, p, b)
		where = append(where, fmt.Sprint(p))
	}
	v.say("flipped %d bits at %s%s", k, strings.Join(where, ","), v.Base.fileLabel(f))
}

// scribble overwrites a random run of [off, off+n) with random bytes.
func (v *Variant) scribble(off, n int64) {
	if n <= 0 {
		return
	}
	l := 1 + v.R.Int64N(min(n, 64))
	p := off + v.R.Int64N(n-l+1)
	b := make([]byte, l)
	for i := range b {
		b[i] = byte(v.R.UintN(256))
	}
	v.put(p, b)
	v.say("%d random bytes at %d", l, p)
}

func (v *Variant) zero(off, n int64) {
	v.put(off, make([]byte, n))
	v.say("zeroed %d bytes at %d", n, off)
}

// hugeValue returns a boundary value for a field of the given width.
func (v *Variant) hugeValue(width int) uint64 {
	max := uint64(1)<<(8*width) - 1
	if width == 8 {
		max = ^uint64(0)
	}
	switch v.R.IntN(10) {
	case 0, 1:
		return max
	case 2:
		return max - 1
	case 3:
		return max/2 + 1 // sign bit
	case 4:
		return max / 2
	case 5:
		return 0
	case 6:
		return max >> (4 * width) // half the bits
	case 7:
		return uint64(v.R.Uint32()) & max
	case 8:
		return 1
	}
	return v.R.Uint64() & max
}

// setField sets field f of the structure at off to val.
func (v *Variant) setField(off int64, f Field, val uint64, what string) {
	v.setFieldIn(0, off, f, val, what)
}

func (v *Variant) setFieldIn(file int, off int64, f Field, val uint64, what string) {
	old := v.getUintIn(file, off+int64(f.Off), f.Width, f.BE)
	v.putUintIn(file, off+int64(f.Off), f.Width, val, f.BE)
	v.say("%s %s at %d%s: %d -> %d (0x%x)", what, f.Name, off+int64(f.Off), v.Base.fileLabel(file), old, val, val)
}

// hugeField sets a random field of fields to a boundary value.
func (v *Variant) hugeField(off int64, fields []Field, what string) {
	v.hugeFieldIn(0, off, fields, what)
}

func (v *Variant) hugeFieldIn(file int, off int64, fields []Field, what string) {
	f := pick(v.R, fields)
	old := v.getUintIn(file, off+int64(f.Off), f.Width, f.BE)
	val := v.hugeValue(f.Width)
	for i := 0; i < 3 && val == old; i++ {
		val = v.hugeValue(f.Width)
	}
	if val == old {
		val ^= 1 // a variant must change something
	}
	v.setFieldIn(file, off, f, val, what)
}

// view is the pristine image with the patches so far applied.
func (v *Variant) view() io.ReaderAt { return overlay{v, 0} }

// viewOf is file f of the base with the patches so far applied.
func (v *Variant) viewOf(f int) io.ReaderAt { return overlay{v, f} }

type overlay struct {
	v    *Variant
	file int
}

func (o overlay) ReadAt(p []byte, off int64) (int, error) {
	n, err := o.v.Base.readIn(o.file, p, off)
	for _, pt := range o.v.Patches {
		if pt.File != o.file {
			continue
		}
		s := max(off, pt.Off)
		e := min(off+int64(len(p)), pt.Off+int64(len(pt.Data)))
		if s < e {
			copy(p[s-off:e-off], pt.Data[s-pt.Off:e-pt.Off])
		}
	}
	return n, err
}

// fileGet reads n bytes at pos of an inode's contents as the variant has
// them (holes read as zeros).
func (v *Variant) fileGet(in *InodeInfo, pos int64, n int) []byte {
	out := make([]byte, n)
	g := v.Base.FS
	for done := 0; done < n; {
		p := pos + int64(done)
		k := int(min(int64(n-done), g.BS-p%g.BS))
		if off := g.FileOff(in, p); off >= 0 {
			v.view().ReadAt(out[done:done+k], off)
		}
		done += k
	}
	return out
}

// filePut writes data at pos of an inode's contents.
func (v *Variant) filePut(in *InodeInfo, pos int64, data []byte) {
	for _, p := range v.Base.FS.PatchFile(in, pos, data) {
		v.put(p.Off, p.Data)
	}
}

func (v *Variant) filePutUint(in *InodeInfo, pos int64, width int, val uint64) {
	b := make([]byte, 8)
	binary.LittleEndian.PutUint64(b, val)
	v.filePut(in, pos, b[:width])
}

// WriteFile writes the variant image to path (sparse). A multi-file
// variant is written as the directory path, holding the set.
func (v *Variant) WriteFile(path string) error {
	if v.Base.Set != nil {
		_, err := v.WriteDir(path, "")
		return err
	}
	return v.writeOne(0, path)
}

// writeOne writes file f of the variant to path.
func (v *Variant) writeOne(file int, path string) error {
	size := v.Base.fileSize(file)
	if v.Truncate >= 0 && v.TruncFile == file {
		size = v.Truncate
	}
	if err := CopySparse(path, v.Base.file(file), 0, size); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	for _, pt := range v.Patches {
		if pt.File == file && pt.Off < size {
			if _, err := f.WriteAt(pt.Data[:min(int64(len(pt.Data)), size-pt.Off)], pt.Off); err != nil {
				f.Close()
				return err
			}
		}
	}
	return f.Close()
}
