package xfs

import (
	"errors"
	"fmt"
	"io"
)

// File reads the contents of one regular file. Holes and unwritten
// extents read as zeros; shared (reflinked) extents read as data. It
// implements io.ReaderAt (safe for concurrent use), io.Reader, io.Seeker
// and io.WriterTo.
type File struct {
	fs   *FS
	in   *Inode
	m    *forkMap
	size int64
	pos  int64
}

// OpenInode returns a reader over the contents of regular file in.
func (f *FS) OpenInode(in *Inode) (*File, error) {
	if !in.IsRegular() {
		return nil, fmt.Errorf("xfs: inode %d: mode %#o is not a regular file", in.Num, in.Mode)
	}
	if in.Realtime() {
		return nil, fmt.Errorf("xfs: inode %d: realtime file, its data lives on the realtime device: %w", in.Num, ErrUnsupported)
	}
	m, err := f.newForkMap(in, dataFork)
	if err != nil {
		return nil, err
	}
	return &File{fs: f, in: in, m: m, size: in.Size}, nil
}

// Size returns the logical size of the file.
func (r *File) Size() int64 { return r.size }

// Inode returns the inode being read.
func (r *File) Inode() *Inode { return r.in }

func (r *File) Read(p []byte) (int, error) {
	n, err := r.ReadAt(p, r.pos)
	r.pos += int64(n)
	return n, err
}

// WriteTo copies the rest of the file to w in large reads.
func (r *File) WriteTo(w io.Writer) (int64, error) {
	buf := make([]byte, min(1<<20, max(r.size-r.pos, 1)))
	var total int64
	for r.pos < r.size {
		n, err := r.ReadAt(buf, r.pos)
		if n > 0 {
			m, werr := w.Write(buf[:n])
			total += int64(m)
			r.pos += int64(m)
			if werr != nil {
				return total, werr
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func (r *File) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.pos
	case io.SeekEnd:
		offset += r.size
	default:
		return 0, errors.New("xfs: seek: invalid whence")
	}
	if offset < 0 {
		return 0, errors.New("xfs: seek: negative position")
	}
	r.pos = offset
	return offset, nil
}

// ReadAt reads len(p) bytes at off, one read of the image per run of
// contiguous blocks.
func (r *File) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("xfs: read: negative offset")
	}
	if off >= r.size {
		return 0, io.EOF
	}
	want := len(p)
	if rem := r.size - off; int64(want) > rem {
		want = int(rem)
	}
	bs := r.fs.blockSize
	done := 0
	for done < want {
		pos := off + int64(done)
		within := pos & (bs - 1)
		mp, err := r.m.lookup(uint64(pos >> r.fs.blockLog))
		if err != nil {
			return done, err
		}
		n := int64(want - done)
		if avail := int64(min(mp.count, maxRunBlocks))*bs - within; n > avail {
			n = avail
		}
		dst := p[done : done+int(n)]
		if mp.hole {
			clear(dst)
		} else if err := r.fs.readAt(dst, int64(mp.block)*bs+within, "file data", r.in.Num); err != nil {
			return done, err
		}
		done += int(n)
	}
	if done < len(p) {
		return done, io.EOF
	}
	return done, nil
}

// maxRunBlocks bounds a run so that its byte length fits an int64.
const maxRunBlocks = 1 << 40

// NextData returns the first stretch of stored data at or after off, as
// the byte range [start, end), in the manner of lseek's SEEK_DATA and
// SEEK_HOLE: holes and unwritten extents are not data, and adjacent
// mapped blocks form one stretch even when they lie apart on disk. When
// only holes follow off, start and end are both Size().
func (r *File) NextData(off int64) (start, end int64, err error) {
	if off < 0 {
		return 0, 0, errors.New("xfs: next data: negative offset")
	}
	if off >= r.size {
		return r.size, r.size, nil
	}
	bs := r.fs.blockSize
	start = -1
	for pos := off; pos < r.size; {
		mp, err := r.m.lookup(uint64(pos >> r.fs.blockLog))
		if err != nil {
			return 0, 0, err
		}
		next := (pos>>r.fs.blockLog + int64(min(mp.count, maxRunBlocks))) * bs
		if next <= pos || next > r.size {
			next = r.size
		}
		switch {
		case !mp.hole && start < 0:
			start = pos
		case mp.hole && start >= 0:
			return start, pos, nil
		}
		pos = next
	}
	if start < 0 {
		return r.size, r.size, nil
	}
	return start, r.size, nil
}
