package ext4

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"

	"github.com/ctrlift/ctrlift/vfs"
)

// DirEntry is one raw directory entry. Name holds the on-disk bytes, which
// need not be UTF-8.
type DirEntry struct {
	Name string
	Ino  uint32
	Type uint8 // ft* value from the entry; 0 when the filesystem lacks filetype
}

// maxDirSize bounds how much of a directory is read: the kernel caps
// directories at 2 GiB (4 GiB with largedir).
const maxDirSize = 4 << 30

// ReadDirInode returns the entries of directory dir except "." and "..",
// in on-disk order. Hash-tree (htree) index blocks are read as the empty
// entries they look like to a linear reader, so every name is found.
func (f *FS) ReadDirInode(dir *Inode) ([]DirEntry, error) {
	var out []DirEntry
	err := f.walkDir(dir, func(e DirEntry) bool {
		out = append(out, e)
		return true
	})
	return out, err
}

// walkDir calls fn for each entry until fn returns false.
func (f *FS) walkDir(dir *Inode, fn func(DirEntry) bool) error {
	if !dir.IsDir() {
		return fmt.Errorf("ext4: inode %d: not a directory", dir.Num)
	}
	if dir.Flags&FlagEncrypt != 0 {
		return fmt.Errorf("ext4: inode %d: encrypted directory: %w", dir.Num, ErrUnsupported)
	}
	if dir.Flags&FlagInlineData != 0 {
		return f.walkInlineDir(dir, fn)
	}
	if dir.Size > maxDirSize {
		return &FormatError{Struct: "directory", Ino: dir.Num, Offset: -1, Msg: fmt.Sprintf("absurd size %d", dir.Size)}
	}
	r, err := f.NewFileReader(dir)
	if err != nil {
		return err
	}
	bs := f.blockSize
	buf := f.dirBufs.Get().(*[]byte)
	defer f.dirBufs.Put(buf)
	if int64(len(*buf)) != bs {
		*buf = make([]byte, bs)
	}
	// A block mapped twice is corruption, and a forged extent tree that
	// maps one block of entries thousands of times would otherwise cost
	// time and memory in proportion (found by internal/hostile).
	var seen map[uint64]uint64 // physical block -> logical block, once a second block is read
	var firstP, firstL uint64  // the first block read
	blocks := 0
	for off := int64(0); off < dir.Size; off += bs {
		lblk := uint64(off / bs)
		m, err := r.mapBlock(lblk)
		if err != nil {
			return err
		}
		if m.hole {
			// Holes in directories are skipped, as the kernel does for htree dirs.
			off += int64(m.count-1) * bs
			continue
		}
		if blocks == 0 {
			firstP, firstL = m.pblk, lblk
		} else {
			if seen == nil {
				seen = map[uint64]uint64{firstP: firstL}
			}
			if prev, dup := seen[m.pblk]; dup {
				return &FormatError{Struct: "directory", Ino: dir.Num, Offset: int64(m.pblk) * bs, Msg: fmt.Sprintf("logical block %d maps physical block %d, already read as logical block %d", lblk, m.pblk, prev)}
			}
			seen[m.pblk] = lblk
		}
		blocks++
		n, err := r.ReadAt(*buf, off)
		if err != nil && !(errors.Is(err, io.EOF) && n > 0) {
			return err
		}
		more, err := f.parseDirBlock(dir.Num, (*buf)[:n], int64(m.pblk)*bs, fn)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// parseDirBlock parses linear entries in b. at is b's byte offset on disk.
func (f *FS) parseDirBlock(ino uint32, b []byte, at int64, fn func(DirEntry) bool) (bool, error) {
	le := binary.LittleEndian
	for p := 0; p+8 <= len(b); {
		child := le.Uint32(b[p:])
		recLen := int(le.Uint16(b[p+4:]))
		if f.blockSize >= 65536 {
			// 64 KiB blocks encode rec_len with two extra high bits.
			if recLen == 65535 || recLen == 0 {
				recLen = int(f.blockSize)
			} else {
				recLen = recLen&65532 | (recLen&3)<<16
			}
		}
		nameLen := int(b[p+6])
		typ := b[p+7]
		if f.incompat&incompatFiletype == 0 {
			nameLen |= int(typ) << 8
			typ = ftUnknown
		}
		if recLen < 8 || recLen%4 != 0 || p+recLen > len(b) {
			return false, &FormatError{Struct: "directory entry", Ino: ino, Offset: at + int64(p), Msg: fmt.Sprintf("bad rec_len %d (%d bytes left in block)", recLen, len(b)-p)}
		}
		if child != 0 {
			if 8+nameLen > recLen {
				return false, &FormatError{Struct: "directory entry", Ino: ino, Offset: at + int64(p), Msg: fmt.Sprintf("name_len %d does not fit rec_len %d", nameLen, recLen)}
			}
			if child > f.inodesCount {
				return false, &FormatError{Struct: "directory entry", Ino: ino, Offset: at + int64(p), Msg: fmt.Sprintf("inode %d out of range 1..%d", child, f.inodesCount)}
			}
			name := b[p+8 : p+8+nameLen]
			// A name is one path element: with a slash or a NUL it would
			// become "/../etc/x" in a tar (found by internal/hostile).
			if bytes.ContainsAny(name, "/\x00") {
				return false, &FormatError{Struct: "directory entry", Ino: ino, Offset: at + int64(p), Msg: fmt.Sprintf("name %q contains a slash or NUL", name)}
			}
			if !(nameLen == 1 && name[0] == '.') && !(nameLen == 2 && name[0] == '.' && name[1] == '.') && nameLen > 0 {
				if !fn(DirEntry{Name: string(name), Ino: child, Type: typ}) {
					return false, nil
				}
			}
		}
		p += recLen
	}
	return true, nil
}

// walkInlineDir parses a directory kept inside the inode: the parent's
// inode number, then entries in the rest of i_block and in system.data.
func (f *FS) walkInlineDir(dir *Inode, fn func(DirEntry) bool) error {
	more, err := f.parseDirBlock(dir.Num, dir.iblock[4:], -1, fn)
	if err != nil || !more || len(dir.inlineEA) == 0 {
		return err
	}
	_, err = f.parseDirBlock(dir.Num, dir.inlineEA, -1, fn)
	return err
}

// LookupAt finds name in directory dir. Directories are indexed once and
// kept in a bounded cache, so resolving every path of a big tree does not
// rescan its directories.
func (f *FS) LookupAt(dir *Inode, name string) (*Inode, error) {
	var found uint32
	if dir.Flags&FlagInlineData != 0 {
		err := f.walkDir(dir, func(e DirEntry) bool {
			if e.Name == name {
				found = e.Ino
				return false
			}
			return true
		})
		if err != nil {
			return nil, err
		}
	} else {
		idx, err := f.dirIndex(dir)
		if err != nil {
			return nil, err
		}
		found = idx[name]
	}
	if found == 0 {
		return nil, fs.ErrNotExist
	}
	return f.Inode(found)
}

// dirCache holds name indexes of recently used large directories.
type dirCache struct {
	mu      sync.Mutex
	byIno   map[uint32]map[string]uint32
	order   []uint32
	entries int
}

// dirCacheMaxEntries bounds the names held across all cached directories.
const dirCacheMaxEntries = 1 << 20

func (f *FS) dirIndex(dir *Inode) (map[string]uint32, error) {
	c := &f.dirs
	c.mu.Lock()
	idx, ok := c.byIno[dir.Num]
	c.mu.Unlock()
	if ok {
		return idx, nil
	}
	idx = map[string]uint32{}
	err := f.walkDir(dir, func(e DirEntry) bool {
		idx[e.Name] = e.Ino
		return true
	})
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byIno == nil {
		c.byIno = map[uint32]map[string]uint32{}
	}
	for c.entries+len(idx) > dirCacheMaxEntries && len(c.order) > 0 {
		old := c.order[0]
		c.order = c.order[1:]
		c.entries -= len(c.byIno[old])
		delete(c.byIno, old)
	}
	if _, dup := c.byIno[dir.Num]; !dup && len(idx) <= dirCacheMaxEntries {
		c.byIno[dir.Num] = idx
		c.order = append(c.order, dir.Num)
		c.entries += len(idx)
	}
	return idx, nil
}

// Lookup resolves a slash-separated path from the root without following
// any symlink: a symlink in the middle of the path is an error, and a
// final symlink is returned as itself.
func (f *FS) Lookup(name string) (*Inode, error) {
	name = strings.Trim(name, "/")
	cur, err := f.Inode(RootIno)
	if err != nil {
		return nil, err
	}
	if name == "" || name == "." {
		return cur, nil
	}
	for _, part := range strings.Split(name, "/") {
		if part == "" || part == "." {
			continue
		}
		if !cur.IsDir() {
			if cur.IsSymlink() {
				return nil, fmt.Errorf("ext4: lookup %q: component before %q is a symlink (not followed)", name, part)
			}
			return nil, fmt.Errorf("ext4: lookup %q: %w", name, errNotDir)
		}
		next, err := f.LookupAt(cur, part)
		if err != nil {
			return nil, err
		}
		cur = next
	}
	return cur, nil
}

var errNotDir = vfs.ErrNotDir

// maxSymlink bounds a symlink target (PATH_MAX is 4096; the block size caps
// what ext4 can store).
const maxSymlink = 64 << 10

// Readlink returns the target of symlink in, byte-exact.
func (f *FS) LinkTarget(in *Inode) (string, error) {
	if !in.IsSymlink() {
		return "", fmt.Errorf("ext4: inode %d: not a symlink", in.Num)
	}
	if in.Size > maxSymlink {
		return "", &FormatError{Struct: "symlink", Ino: in.Num, Offset: -1, Msg: fmt.Sprintf("absurd target length %d", in.Size)}
	}
	// Fast symlinks keep the target in i_block itself.
	// (no data blocks allocated besides an xattr block).
	if in.Flags&FlagInlineData == 0 && in.Size <= iBlockSize && in.Blocks-f.eaBlocks(in) == 0 {
		return string(in.iblock[:in.Size]), nil
	}
	r, err := f.NewFileReader(in)
	if err != nil {
		return "", err
	}
	buf := make([]byte, in.Size)
	if _, err := r.ReadAt(buf, 0); err != nil && len(buf) > 0 {
		return "", fmt.Errorf("ext4: inode %d: reading symlink: %w", in.Num, err)
	}
	return string(buf), nil
}

// eaBlocks is what an external xattr block adds to i_blocks (512-byte units).
func (f *FS) eaBlocks(in *Inode) int64 {
	if in.fileACL != 0 {
		return f.blockSize / 512
	}
	return 0
}
