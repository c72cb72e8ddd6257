package xfs

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// seedImage returns testdata/xfs-seed.img (16 MiB, made by
// testdata/images/xfs/make-xfs.py xfs-seed), decompressed once.
var seedImage = sync.OnceValues(func() ([]byte, error) {
	f, err := os.Open(filepath.Join("testdata", "xfs-seed.img.zst"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	d, err := zstd.NewReader(f)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return io.ReadAll(d)
})

func seed(t testing.TB) []byte {
	t.Helper()
	b, err := seedImage()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// patched is an image with some bytes overwritten, without copying it.
type patched struct {
	base  []byte
	off   int64
	patch []byte
}

func (p *patched) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("negative offset")
	}
	if off >= int64(len(p.base)) {
		return 0, io.EOF
	}
	n := copy(b, p.base[off:])
	// Overlay the part of the patch inside [off, off+n).
	lo, hi := max(off, p.off), min(off+int64(n), p.off+int64(len(p.patch)))
	if lo < hi {
		copy(b[lo-off:hi-off], p.patch[lo-p.off:hi-p.off])
	}
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

// exercise reads everything reachable, bounded so a fuzzed image cannot
// make one run take long: at most maxEntries names and 64 KiB of each file.
func exercise(fsys *FS) {
	const maxEntries = 2000
	n := 0
	fs.WalkDir(fsys.IOFS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if n++; n > maxEntries {
			return fs.SkipAll
		}
		if d.IsDir() && strings.Count(p, "/") > 16 {
			return fs.SkipDir // a directory loop in a corrupt image
		}
		in, err := fsys.LookupInode(p)
		if err != nil {
			return nil
		}
		switch {
		case in.IsSymlink():
			fsys.LinkTargetInode(in)
		case in.IsDir():
			fsys.DirForm(in)
		case in.IsRegular():
			r, err := fsys.OpenInode(in)
			if err != nil {
				return nil
			}
			io.Copy(io.Discard, io.LimitReader(r, 64<<10))
			r.ReadAt(make([]byte, 4096), in.Size/2)
			// Data stretches must move forward and stay inside the file.
			for off, i := int64(0), 0; off < in.Size && i < 1000; i++ {
				start, end, err := r.NextData(off)
				if err != nil || start >= in.Size {
					break
				}
				if start < off || end <= start || end > in.Size {
					panic(fmt.Sprintf("inode %d: NextData(%d) = %d, %d (size %d)", in.Num, off, start, end, in.Size))
				}
				off = end
			}
		}
		return nil
	})
	fsys.Warnings()
}

// structureOffsets finds the byte offsets of interesting structures in the
// clean seed image: the superblock and AG headers, inodes, and the first
// block of each directory, attribute fork, symlink and bmbt.
func structureOffsets(t testing.TB, img []byte) map[string]int64 {
	t.Helper()
	fsys, err := NewReader(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{"superblock": 0, "agf": fsys.sectSize, "agi": 2 * fsys.sectSize}
	start, _ := fsys.fsbToLinear(fsys.logStart, 1, "log", 0, 0)
	out["log"] = int64(start) * fsys.blockSize
	for _, p := range []string{".", "regular", "long", "sf", "block", "leaf", "x-sf", "x-leaf", "x-node", "x-remote", "x-acl", "frag/alternating", "chr"} {
		in, err := fsys.LookupInode(p)
		if err != nil {
			t.Fatalf("seed image: %s: %v", p, err)
		}
		out["inode "+p] = in.offset
		if in.Format == FormatExtents || in.Format == FormatBtree {
			m, err := fsys.newForkMap(in, dataFork)
			if err != nil {
				t.Fatal(err)
			}
			if in.Format == FormatBtree {
				ptrs, _ := m.parseNode(m.root, bmdrHeaderSize, int(be.Uint16(m.root[2:])), be.Uint16(m.root), -1)
				blk, _ := fsys.fsbToLinear(ptrs.ptrs[0], 1, "", 0, 0)
				out["bmbt "+p] = int64(blk) * fsys.blockSize
			}
			if mp, err := m.lookup(0); err == nil && !mp.hole {
				out["data "+p] = int64(mp.block) * fsys.blockSize
			}
			if in.IsDir() {
				if mp, err := m.lookup(dirSpaceSize >> fsys.blockLog); err == nil && !mp.hole {
					out["dirleaf "+p] = int64(mp.block) * fsys.blockSize
				}
			}
		}
		if in.HasAttrFork && in.AttrFormat != FormatLocal && in.ANExtents > 0 {
			m, err := fsys.newForkMap(in, attrFork)
			if err != nil {
				t.Fatal(err)
			}
			for _, lblk := range []uint64{0, 1} {
				if mp, err := m.lookup(lblk); err == nil && !mp.hole {
					out[fmt.Sprintf("attr%d %s", lblk, p)] = int64(mp.block) * fsys.blockSize
				}
			}
		}
	}
	return out
}

// FuzzXFS overwrites bytes at a chosen offset of the real seed image: a
// cheap way to corrupt any one structure while keeping the rest valid.
// The seeds aim at every structure of the image.
func FuzzXFS(f *testing.F) {
	img := seed(f)
	for _, off := range structureOffsets(f, img) {
		f.Add(uint32(off), bytes.Clone(img[off:off+64]))
		f.Add(uint32(off+64), bytes.Clone(img[off+64:off+128]))
	}
	f.Fuzz(func(t *testing.T, off uint32, patch []byte) {
		if len(patch) > 4096 {
			patch = patch[:4096]
		}
		r := &patched{base: img, off: int64(off) % int64(len(img)), patch: patch}
		fsys, err := NewReader(r, int64(len(img)))
		if err != nil {
			return
		}
		exercise(fsys)
	})
}

// FuzzInode parses mutated on-disk inodes and reads what they describe.
func FuzzInode(f *testing.F) {
	img := seed(f)
	fsys, err := NewReader(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		f.Fatal(err)
	}
	for name, off := range structureOffsets(f, img) {
		if strings.HasPrefix(name, "inode ") {
			f.Add(bytes.Clone(img[off : off+fsys.inodeSize]))
		}
	}
	root, _ := fsys.LookupInode(".")
	f.Fuzz(func(t *testing.T, raw []byte) {
		if int64(len(raw)) != fsys.inodeSize {
			return
		}
		// Keep the self-describing fields so mutations reach the forks.
		binary.BigEndian.PutUint64(raw[diOffIno:], root.Num)
		in, err := fsys.parseInode(root.Num, raw, root.offset)
		if err != nil {
			return
		}
		if err := fsys.readXattrs(in); err != nil {
			return
		}
		if in.Size < 0 {
			t.Fatalf("negative size %d", in.Size)
		}
		switch {
		case in.IsSymlink():
			fsys.LinkTargetInode(in)
		case in.IsDir():
			fsys.Entries(in)
			fsys.DirForm(in)
		case in.IsRegular():
			if r, err := fsys.OpenInode(in); err == nil {
				io.Copy(io.Discard, io.LimitReader(r, 64<<10))
				r.NextData(0)
			}
		}
	})
}

func FuzzACL(f *testing.F) {
	f.Add([]byte{0, 0, 0, 2, 0, 0, 0, 1, 255, 255, 255, 255, 0, 6, 0, 0, 0, 0, 0, 2, 0, 0, 3, 232, 0, 6, 0, 0}, true)
	f.Fuzz(func(t *testing.T, b []byte, v5 bool) {
		out, err := aclToXattr(b, v5)
		if err == nil && (len(out)-4)%8 != 0 {
			t.Fatalf("xattr ACL of %d bytes", len(out))
		}
	})
}
