package export

import (
	"crypto/sha256"
	"encoding/hex"
	"io"

	"github.com/ctrlift/ctrlift/vfs"
)

// Digester hashes whole files for listings (ctrlift diff) under the bounds
// an export keeps: the data read from one filesystem never exceeds its
// size (ext4 shares no blocks, so more is a forged block map), and at most
// maxHashedHoles of holes are hashed, so a forged i_size cannot make a
// listing hash terabytes of zeros. Not safe for concurrent use.
type Digester struct {
	budget budget
	buf    []byte
}

// NewDigester returns a Digester with fresh budgets.
func NewDigester() *Digester {
	return &Digester{budget: newBudget(), buf: make([]byte, 256<<10)}
}

// Sum returns the sha256 of in's contents, or an empty sum and the reason
// it was not computed.
func (d *Digester) Sum(fsys vfs.FS, in *vfs.Inode) (sum, omitted string, err error) {
	f, err := fsys.Open(in)
	if err != nil {
		return "", "", err
	}
	defer closeFile(f)
	_, _, mapped, err := dataSpans(f, in.Ino, fsys.DataBound(), f.Size()+1)
	if err != nil {
		return "", "", err
	}
	if err := d.budget.read(fsys, in.Ino, mapped); err != nil {
		return "", "", err
	}
	if !d.budget.hashHoles(f.Size() - mapped) {
		return "", omittedHoles, nil
	}
	h := sha256.New()
	var at int64
	for at < f.Size() {
		start, end, err := f.NextData(at)
		if err != nil {
			return "", "", err
		}
		if err := writeZeros(h, start-at); err != nil {
			return "", "", err
		}
		if _, err := io.CopyBuffer(h, io.NewSectionReader(f, start, end-start), d.buf); err != nil {
			return "", "", err
		}
		at = end
	}
	return hex.EncodeToString(h.Sum(nil)), "", nil
}

// closeFile releases a file of a source that holds a descriptor per open
// file (a host directory); image sources hold none.
func closeFile(f vfs.File) {
	if c, ok := f.(io.Closer); ok {
		c.Close()
	}
}
