package layers

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/ctrlift/ctrlift/vfs"
)

// maxCompared bounds the file data one Compare reads to tell whether two
// files of the same size differ: beyond it, such files are reported
// modified without a look (ContentUnchecked), so a forged size cannot
// make a comparison read without end.
const maxCompared = 64 << 30

// Compare streams the differences between two complete trees: a snapshot
// of a copying snapshotter (containerd's native: each snapshot is a full
// copy of its parent) and its parent snapshot. Nothing is merged and no
// overlay marker means anything. Changes come directories first, names in
// byte order (each directory's subtree before the next name).
//
// A file is modified when its type, mode, owner, device number, xattrs,
// size or mtime differ, or, sizes being equal, its content differs (a
// back-dated edit is still seen). A directory is modified only when its
// type, mode, owner or xattrs differ: its size and mtime change with its
// entries, which are reported themselves.
func Compare(upper, lower Layer, fn func(Change) error) error {
	c := &comparer{upper: upper, lower: lower, fn: fn, seenU: seenDirs{}, seenL: seenDirs{}, buf: make([]byte, 1<<20), buf2: make([]byte, 1<<20)}
	u, err := upper.FS.Lookup(upper.Dir)
	if err != nil {
		return fmt.Errorf("layers: layer %s: directory %s: %w", upper.Name, upper.Dir, err)
	}
	l, err := lower.FS.Lookup(lower.Dir)
	if err != nil {
		return fmt.Errorf("layers: layer %s: directory %s: %w", lower.Name, lower.Dir, err)
	}
	if !u.IsDir() || !l.IsDir() {
		return fmt.Errorf("layers: %s or %s is not a directory; refusing to follow it", upper.Dir, lower.Dir)
	}
	return c.dir(".", u, l)
}

type comparer struct {
	upper, lower Layer
	fn           func(Change) error
	seenU, seenL seenDirs
	compared     int64
	buf, buf2    []byte
}

func (c *comparer) entry(l Layer, idx int, in *vfs.Inode) *Entry {
	return &Entry{Inode: in, Layer: idx, LayerName: l.Name, fs: l.FS}
}

func (c *comparer) emit(p string, k ChangeKind, e *Entry) error {
	return c.fn(Change{Path: "/" + p, Kind: k, Entry: e})
}

// sortedDir lists dir in byte order of names.
func sortedDir(l Layer, dir *vfs.Inode, p string) ([]vfs.DirEntry, error) {
	ents, err := l.FS.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("layers: layer %s: %s: %w", l.Name, p, err)
	}
	slices.SortFunc(ents, func(a, b vfs.DirEntry) int { return strings.Compare(a.Name, b.Name) })
	return ents, nil
}

func (c *comparer) dir(p string, u, l *vfs.Inode) error {
	if err := c.seenU.enter(c.upper.FS, u.Ino, p); err != nil {
		return err
	}
	if err := c.seenL.enter(c.lower.FS, l.Ino, p); err != nil {
		return err
	}
	ue, err := sortedDir(c.upper, u, p)
	if err != nil {
		return err
	}
	le, err := sortedDir(c.lower, l, p)
	if err != nil {
		return err
	}
	i, j := 0, 0
	for i < len(ue) || j < len(le) {
		var name string
		var inU, inL bool
		switch {
		case j >= len(le) || (i < len(ue) && ue[i].Name < le[j].Name):
			name, inU = ue[i].Name, true
			i++
		case i >= len(ue) || le[j].Name < ue[i].Name:
			name, inL = le[j].Name, true
			j++
		default:
			name, inU, inL = ue[i].Name, true, true
			i++
			j++
		}
		cp := join(p, name)
		var un, ln *vfs.Inode
		if inU {
			if un, err = c.upper.FS.LookupAt(u, name); err != nil {
				return fmt.Errorf("layers: layer %s: %s: %w", c.upper.Name, cp, err)
			}
		}
		if inL {
			if ln, err = c.lower.FS.LookupAt(l, name); err != nil {
				return fmt.Errorf("layers: layer %s: %s: %w", c.lower.Name, cp, err)
			}
		}
		if err := c.pair(cp, un, ln); err != nil {
			return err
		}
	}
	return nil
}

// pair compares one name present in upper (un), lower (ln) or both.
func (c *comparer) pair(p string, un, ln *vfs.Inode) error {
	switch {
	case ln == nil:
		return c.subtree(c.upper, 0, p, un, Added, c.seenU)
	case un == nil:
		return c.subtree(c.lower, 1, p, ln, Deleted, c.seenL)
	}
	sameType := un.Mode&vfs.TypeMask == ln.Mode&vfs.TypeMask
	if sameType && un.IsDir() {
		if un.Mode != ln.Mode || un.Uid != ln.Uid || un.Gid != ln.Gid || !sameXattrs(un, ln) {
			if err := c.emit(p, Modified, c.entry(c.upper, 0, un)); err != nil {
				return err
			}
		}
		return c.dir(p, un, ln)
	}
	if !sameType {
		// A directory replaced by a file (or the reverse): what was below
		// is gone, what is below now is new.
		if err := c.emit(p, Modified, c.entry(c.upper, 0, un)); err != nil {
			return err
		}
		if ln.IsDir() {
			if err := c.below(c.lower, 1, p, ln, Deleted, c.seenL); err != nil {
				return err
			}
		}
		if un.IsDir() {
			return c.below(c.upper, 0, p, un, Added, c.seenU)
		}
		return nil
	}
	changed, unchecked, err := c.fileChanged(p, un, ln)
	if err != nil {
		return err
	}
	if changed {
		e := c.entry(c.upper, 0, un)
		return c.fn(Change{Path: "/" + p, Kind: Modified, Entry: e, ContentUnchecked: unchecked})
	}
	return nil
}

// subtree reports an entry and everything below it as kind.
func (c *comparer) subtree(l Layer, idx int, p string, in *vfs.Inode, kind ChangeKind, seen seenDirs) error {
	if err := c.emit(p, kind, c.entry(l, idx, in)); err != nil {
		return err
	}
	if !in.IsDir() {
		return nil
	}
	return c.below(l, idx, p, in, kind, seen)
}

// below reports what is below directory in as kind.
func (c *comparer) below(l Layer, idx int, p string, in *vfs.Inode, kind ChangeKind, seen seenDirs) error {
	if err := seen.enter(l.FS, in.Ino, p); err != nil {
		return err
	}
	ents, err := sortedDir(l, in, p)
	if err != nil {
		return err
	}
	for _, d := range ents {
		child, err := l.FS.LookupAt(in, d.Name)
		if err != nil {
			return fmt.Errorf("layers: layer %s: %s/%s: %w", l.Name, p, d.Name, err)
		}
		if err := c.subtree(l, idx, join(p, d.Name), child, kind, seen); err != nil {
			return err
		}
	}
	return nil
}

func sameXattrs(a, b *vfs.Inode) bool {
	if len(a.Xattrs) != len(b.Xattrs) {
		return false
	}
	for i := range a.Xattrs {
		if a.Xattrs[i].Name != b.Xattrs[i].Name || !bytes.Equal(a.Xattrs[i].Value, b.Xattrs[i].Value) {
			return false
		}
	}
	return true
}

// fileChanged compares two non-directories of the same type: metadata
// always, content when the sizes match.
func (c *comparer) fileChanged(p string, u, l *vfs.Inode) (changed, unchecked bool, err error) {
	if u.Mode != l.Mode || u.Uid != l.Uid || u.Gid != l.Gid || u.RdevMajor != l.RdevMajor || u.RdevMinor != l.RdevMinor ||
		u.Size != l.Size || !u.Mtime.Equal(l.Mtime) || !sameXattrs(u, l) {
		return true, false, nil
	}
	switch {
	case u.IsSymlink():
		ut, err := c.upper.FS.LinkTarget(u)
		if err != nil {
			return false, false, fmt.Errorf("layers: layer %s: %s: %w", c.upper.Name, p, err)
		}
		lt, err := c.lower.FS.LinkTarget(l)
		if err != nil {
			return false, false, fmt.Errorf("layers: layer %s: %s: %w", c.lower.Name, p, err)
		}
		return ut != lt, false, nil
	case !u.IsRegular() || u.Size == 0:
		return false, false, nil
	}
	if c.compared+2*u.Size > maxCompared {
		return true, true, nil
	}
	c.compared += 2 * u.Size
	same, err := c.sameContent(u, l)
	if err != nil {
		return false, false, fmt.Errorf("layers: %s: %w", p, err)
	}
	return !same, false, nil
}

// sameContent reads both files in step, skipping stretches that are holes
// in both.
func (c *comparer) sameContent(u, l *vfs.Inode) (bool, error) {
	uf, err := c.upper.FS.Open(u)
	if err != nil {
		return false, err
	}
	defer closeFile(uf)
	lf, err := c.lower.FS.Open(l)
	if err != nil {
		return false, err
	}
	defer closeFile(lf)
	size := u.Size
	for off := int64(0); off < size; {
		us, _, err := uf.NextData(off)
		if err != nil {
			return false, err
		}
		ls, _, err := lf.NextData(off)
		if err != nil {
			return false, err
		}
		if next := min(us, ls); next > off {
			off = min(next, size) // a hole in both
			continue
		}
		n := min(int64(len(c.buf)), size-off)
		if _, err := uf.ReadAt(c.buf[:n], off); err != nil && err != io.EOF {
			return false, err
		}
		if _, err := lf.ReadAt(c.buf2[:n], off); err != nil && err != io.EOF {
			return false, err
		}
		if !bytes.Equal(c.buf[:n], c.buf2[:n]) {
			return false, nil
		}
		off += n
	}
	return true, nil
}

func closeFile(f vfs.File) {
	if cl, ok := f.(io.Closer); ok {
		cl.Close()
	}
}
