package oci

import (
	"fmt"
	"io"

	"github.com/ctrlift/ctrlift/vfs"
)

// The image spec advises against sparse files in layers ("they lack
// consistent support across tar implementations"), and export writes
// files with large holes as GNU sparse entries. A layer's files are
// therefore read through denseFS, whose files report no holes: export
// writes every file as a plain entry, its holes as zeros.
//
// The bounds export keeps on sparse data are kept here instead: the data a
// filesystem's files map together never exceeds its DataBound (more is a
// forged block map), and the holes written out as zeros are bounded by
// holeBudget.max, so a forged i_size cannot make an archive of terabytes.

// holeBudget is shared by the layers of one archive.
type holeBudget struct {
	max, zeros int64
	mapped     map[vfs.FS]int64 // data mapped, by underlying filesystem
}

// denseFS is a layer's filesystem whose files have no holes.
type denseFS struct {
	vfs.FS
	budget *holeBudget
}

// DataBound is 0: the bound is kept by denseFile against the underlying
// one.
func (d *denseFS) DataBound() int64 { return 0 }

func (d *denseFS) Open(in *vfs.Inode) (vfs.File, error) {
	f, err := d.FS.Open(in)
	if err != nil {
		return nil, err
	}
	return &denseFile{File: f, fs: d, ino: in.Ino}, nil
}

// denseFile is a file whose holes read as data (zeros). Its data and
// holes are counted against the budget when it is first read in sequence,
// as export writes a file; reads at an offset (layers.Compare's) are not
// counted.
type denseFile struct {
	vfs.File
	fs      *denseFS
	ino     uint64
	counted bool
}

func (f *denseFile) NextData(off int64) (int64, int64, error) {
	if size := f.Size(); off >= size {
		return size, size, nil
	}
	return max(off, 0), f.Size(), nil
}

func (f *denseFile) Read(p []byte) (int, error) {
	if !f.counted {
		if err := f.count(); err != nil {
			return 0, err
		}
		f.counted = true
	}
	return f.File.Read(p)
}

// count walks the file's real data map, as export would for a sparse
// entry, and charges the budget with its data and holes.
func (f *denseFile) count() error {
	b, raw := f.fs.budget, f.fs.FS
	size, bound := f.Size(), raw.DataBound()
	var mapped int64
	for off := int64(0); off < size; {
		start, end, err := f.File.NextData(off)
		if err != nil {
			return err
		}
		if start >= size {
			break
		}
		if start < off || end <= start {
			return fmt.Errorf("inode %d: data map out of order at offset %d", f.ino, off)
		}
		end = min(end, size)
		mapped += end - start
		if bound > 0 && b.mapped[raw]+mapped > bound {
			return fmt.Errorf("inode %d: with it the files read so far map more than their filesystem holds (%d bytes): blocks shared between inodes, a forged block map", f.ino, bound)
		}
		off = end
	}
	b.mapped[raw] += mapped
	if holes := size - mapped; holes > 0 {
		if b.zeros+holes > b.max {
			return fmt.Errorf("%d bytes of holes: OCI layers hold no sparse entries, and writing them out as zeros would pass the bound of %d bytes of holes per archive (export -o tar writes sparse entries)", holes, b.max)
		}
		b.zeros += holes
	}
	return nil
}

func (f *denseFile) Close() error { return closeFile(f.File) }

// closeFile releases a file of a source that holds a descriptor per open
// file (a host directory).
func closeFile(f vfs.File) error {
	if c, ok := f.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
