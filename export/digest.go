package export

import (
	"io"

	"github.com/ctrlift/ctrlift/vfs"
)

// Digester hashes whole files for listings (ctrlift diff) under the bounds
// an export keeps: the data read from one filesystem never exceeds its
// size (ext4 shares no blocks, so more is a forged block map), and holes
// are hashed within the export's budget, so a forged i_size cannot make a
// listing hash terabytes of zeros. Not safe for concurrent use.
type Digester struct {
	budget budget
	buf    []byte
	hashes *fileHashes
}

// NewDigester returns a Digester with fresh budgets computing the given
// digests (sha256 alone when none).
func NewDigester(hashes ...Hash) *Digester {
	return &Digester{budget: newBudget(), buf: make([]byte, 256<<10), hashes: newFileHashes(hashes)}
}

// Sum returns the sha256 of in's contents, or an empty sum and the reason
// it was not computed.
func (d *Digester) Sum(fsys vfs.FS, in *vfs.Inode) (sum, omitted string, err error) {
	ds, omitted, err := d.Digests(fsys, in)
	return ds.SHA256, omitted, err
}

// Digests returns in's digests, or none and the reason they were not
// computed.
func (d *Digester) Digests(fsys vfs.FS, in *vfs.Inode) (Digests, string, error) {
	f, err := fsys.Open(in)
	if err != nil {
		return Digests{}, "", err
	}
	defer closeFile(f)
	_, _, mapped, err := dataSpans(f, in.Ino, fsys.DataBound(), f.Size()+1)
	if err != nil {
		return Digests{}, "", err
	}
	if err := d.budget.read(fsys, in.Ino, mapped); err != nil {
		return Digests{}, "", err
	}
	if ok, why := d.budget.hashHoles(fsys, f.Size()-mapped); !ok {
		return Digests{}, why, nil
	}
	h := d.hashes
	h.Reset()
	var at int64
	for at < f.Size() {
		start, end, err := f.NextData(at)
		if err != nil {
			return Digests{}, "", err
		}
		if err := writeZeros(h, start-at); err != nil {
			return Digests{}, "", err
		}
		if _, err := io.CopyBuffer(h, io.NewSectionReader(f, start, end-start), d.buf); err != nil {
			return Digests{}, "", err
		}
		at = end
	}
	return h.sums(), "", nil
}

// closeFile releases a file of a source that holds a descriptor per open
// file (a host directory); image sources hold none.
func closeFile(f vfs.File) {
	if c, ok := f.(io.Closer); ok {
		c.Close()
	}
}
