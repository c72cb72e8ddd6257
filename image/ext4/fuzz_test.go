package ext4

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// smallImage returns testdata/small.img (made by testdata/mksmall.sh).
func smallImage(t testing.TB) []byte { return testImage(t, "small.img.zst") }

func testImage(t testing.TB, name string) []byte {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := zstd.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	b, err := io.ReadAll(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// exercise reads everything reachable, bounded so a fuzzed image cannot
// make one run take long: at most maxEntries names and 64 KiB of each file.
func exercise(fsys *FS) {
	const maxEntries = 2000
	n := 0
	fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if n++; n > maxEntries {
			return fs.SkipAll
		}
		if d.IsDir() && strings.Count(p, "/") > 16 {
			return fs.SkipDir // a directory loop in a corrupt image
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		in := info.Sys().(*Inode)
		switch {
		case in.IsSymlink():
			fsys.ReadLink(p)
		case in.IsRegular():
			if r, err := fsys.NewFileReader(in); err == nil {
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
		}
		return nil
	})
}

// FuzzImage mutates a whole (128 KiB) real image.
func FuzzImage(f *testing.F) {
	img := testImage(f, "tiny.img.zst")
	f.Add(img)
	f.Fuzz(func(t *testing.T, data []byte) {
		fsys, err := NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		exercise(fsys)
	})
}

// FuzzPatch overwrites bytes at a chosen offset of a real 1 MiB image: a
// cheap way to corrupt any one structure while keeping the rest valid.
func FuzzPatch(f *testing.F) {
	img := smallImage(f)
	for _, off := range []uint32{1024, 2048, 0x1000, 0x2000, 0x5000, 0x8000, 0x20000} {
		f.Add(off, img[off:off+64])
	}
	f.Fuzz(func(t *testing.T, off uint32, patch []byte) {
		data := append([]byte{}, img...)
		copy(data[int(off)%len(data):], patch)
		fsys, err := NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		exercise(fsys)
	})
}

func FuzzExtentNode(f *testing.F) {
	var root [60]byte
	binary.LittleEndian.PutUint16(root[0:], extentMagic)
	binary.LittleEndian.PutUint16(root[2:], 1)
	binary.LittleEndian.PutUint16(root[4:], 4)
	binary.LittleEndian.PutUint32(root[12:], 0)
	binary.LittleEndian.PutUint16(root[16:], 8)
	binary.LittleEndian.PutUint32(root[20:], 100)
	f.Add(root[:])
	fsys := &FS{blocksCount: 1 << 20, blockSize: 1024}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := fsys.parseExtentNode(5, b, 0, -1)
		if err != nil {
			return
		}
		for _, e := range n.ext {
			if e.pblk+e.len > fsys.blocksCount || e.len == 0 {
				t.Fatalf("extent %+v escapes the filesystem", e)
			}
		}
	})
}

func FuzzDirBlock(f *testing.F) {
	img := smallImage(f)
	fsys, err := NewReader(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		f.Fatal(err)
	}
	root, err := fsys.Inode(RootIno)
	if err != nil {
		f.Fatal(err)
	}
	r, _ := fsys.NewFileReader(root)
	blk := make([]byte, fsys.blockSize)
	r.ReadAt(blk, 0)
	f.Add(blk)
	f.Fuzz(func(t *testing.T, b []byte) {
		fsys.parseDirBlock(2, b, 0, func(e DirEntry) bool {
			if e.Ino == 0 || e.Ino > fsys.inodesCount || len(e.Name) == 0 || len(e.Name) > len(b) {
				t.Fatalf("bad entry %+v", e)
			}
			return true
		})
	})
}

// FuzzInode parses mutated on-disk inodes, xattrs included.
func FuzzInode(f *testing.F) {
	img := smallImage(f)
	fsys, err := NewReader(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range []string{"small.txt", "dir/big.txt", "link", "longlink", "null", "dir"} {
		in, err := fsys.Lookup(p)
		if err != nil {
			f.Fatal(err)
		}
		raw, off := fsys.rawInode(f, in.Num)
		_ = off
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if int64(len(raw)) != fsys.inodeSize {
			return
		}
		in, err := fsys.parseInode(13, raw, 0)
		if err != nil {
			return
		}
		if in.Size < 0 {
			t.Fatalf("negative size %d", in.Size)
		}
		if in.IsSymlink() {
			fsys.LinkTarget(in)
		}
		if r, err := fsys.NewFileReader(in); err == nil && !in.IsDir() {
			io.Copy(io.Discard, io.LimitReader(r, 64<<10))
		}
		if in.IsDir() {
			fsys.ReadDirInode(in)
		}
	})
}

func FuzzACL(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, 1, 0, 6, 0, 2, 0, 6, 0, 232, 3, 0, 0, 4, 0, 4, 0, 16, 0, 6, 0, 32, 0, 4, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := aclToXattr(b)
		if err == nil && (len(out)-4)%8 != 0 {
			t.Fatalf("xattr ACL of %d bytes", len(out))
		}
	})
}

// rawInode returns the on-disk bytes of inode num and their offset.
func (f *FS) rawInode(t testing.TB, num uint32) ([]byte, int64) {
	t.Helper()
	g := uint64(num-1) / uint64(f.inodesPerGroup)
	idx := int64(num-1) % int64(f.inodesPerGroup)
	off := int64(f.inodeTables[g])*f.blockSize + idx*f.inodeSize
	raw := make([]byte, f.inodeSize)
	if err := f.readAt(raw, off, "inode", num); err != nil {
		t.Fatal(err)
	}
	return raw, off
}
