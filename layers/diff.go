package layers

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/ctrlift/ctrlift/vfs"
)

// WalkLayer visits one layer's own tree, as stored: whiteouts and opaque
// markers are reported as they are, nothing is merged. Entries come
// directories first, names in byte order; inodes keep all their xattrs, and
// Entry.Whiteout and Entry.Opaque tell the markers under opt's rules.
func WalkLayer(l Layer, opt Options, fn WalkFunc) error {
	r := opt.rules()
	root, err := l.FS.Lookup(l.Dir)
	if err != nil {
		return fmt.Errorf("layers: layer %s: directory %s: %w", l.Name, l.Dir, err)
	}
	if !root.IsDir() {
		return fmt.Errorf("layers: layer %s: %s is not a directory; refusing to follow it", l.Name, l.Dir)
	}
	if err := r.check(root, l.Name, "/"); err != nil {
		return err
	}
	return walkLayer(l, r, ".", &Entry{Inode: root, LayerName: l.Name, fs: l.FS, Opaque: r.opaque(root)}, fn, seenDirs{})
}

func walkLayer(l Layer, r rules, p string, e *Entry, fn WalkFunc, seen seenDirs) error {
	if err := fn(p, e); err != nil {
		if errors.Is(err, fs.SkipDir) && e.IsDir() {
			return nil
		}
		return err
	}
	if !e.IsDir() {
		return nil
	}
	if err := seen.enter(l.FS, e.Ino, p); err != nil {
		return err
	}
	ents, err := l.FS.ReadDir(e.Inode)
	if err != nil {
		return fmt.Errorf("layers: layer %s: %s: %w", l.Name, p, err)
	}
	slices.SortFunc(ents, func(a, b vfs.DirEntry) int { return strings.Compare(a.Name, b.Name) })
	parentX := r.xwhiteouts(e.Inode)
	for _, d := range ents {
		in, err := l.FS.LookupAt(e.Inode, d.Name)
		if err != nil {
			return fmt.Errorf("layers: layer %s: %s/%s: %w", l.Name, p, d.Name, err)
		}
		cp := join(p, d.Name)
		if err := r.check(in, l.Name, cp); err != nil {
			return err
		}
		ce := &Entry{Inode: in, LayerName: l.Name, fs: l.FS, Whiteout: r.whiteout(in, parentX), Opaque: r.opaque(in)}
		if err := walkLayer(l, r, cp, ce, fn, seen); err != nil {
			return err
		}
	}
	return nil
}

// ChangeKind says how a path differs from the image.
type ChangeKind string

// The kinds of change, as diff prints them.
const (
	Added    ChangeKind = "added"
	Modified ChangeKind = "modified"
	Deleted  ChangeKind = "deleted"
)

func (k ChangeKind) String() string { return string(k) }

// Change is one difference a container's writable layer makes to its image.
type Change struct {
	Path  string // absolute inside the container
	Kind  ChangeKind
	Entry *Entry // the entry as the container sees it; for deletions, the one below
	// ContentUnchecked: Compare found the metadata equal but did not read
	// the contents (past its reading budget), and reports it modified.
	ContentUnchecked bool
}

// Diff compares a writable layer with the merged view of the layers below
// it (lower may be nil for a container without an image). Deleted paths are
// the whited-out names and whatever an opaque directory hides below; a
// directory counts as modified only when its mode or owner changed.
func Diff(upper Layer, lower *Merged, opt Options) ([]Change, error) {
	var out []Change
	r := opt.rules()
	err := WalkLayer(upper, opt, func(p string, e *Entry) error {
		if p == "." {
			return nil // the kernel ignores an opaque mark on a layer's root
		}
		abs := "/" + p
		var below *Entry
		if lower != nil {
			b, err := lower.Lookup(p)
			if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, ErrNotDir) {
				return err
			}
			below = b
		}
		if e.Whiteout {
			if below != nil {
				out = append(out, Change{Path: abs, Kind: Deleted, Entry: below})
				if below.IsDir() {
					return deletedSubtree(lower, p, below, &out)
				}
			}
			return nil
		}
		vis := &Entry{Inode: r.visible(e.Inode), Layer: 0, LayerName: upper.Name, fs: upper.FS}
		switch {
		case below == nil:
			out = append(out, Change{Path: abs, Kind: Added, Entry: vis})
		case e.IsDir() && below.IsDir():
			if e.Mode != below.Mode || e.Uid != below.Uid || e.Gid != below.Gid {
				out = append(out, Change{Path: abs, Kind: Modified, Entry: vis})
			}
		default:
			out = append(out, Change{Path: abs, Kind: Modified, Entry: vis})
			if below.IsDir() && !e.IsDir() {
				if err := deletedSubtree(lower, p, below, &out); err != nil {
					return err
				}
			}
		}
		if e.IsDir() && below != nil && below.IsDir() && e.Opaque {
			return deletedBelow(lower, p, e, &out)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(out, func(a, b Change) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// deletedBelow reports the lower names an opaque upper directory hides and
// the upper directory does not itself contain.
func deletedBelow(lower *Merged, p string, upperDir *Entry, out *[]Change) error {
	below, err := lower.Lookup(p)
	if errors.Is(err, fs.ErrNotExist) || below == nil || !below.IsDir() {
		return nil
	}
	if err != nil {
		return err
	}
	mine := map[string]bool{}
	ents, err := upperDir.fs.ReadDir(upperDir.Inode)
	if err != nil {
		return err
	}
	for _, d := range ents {
		mine[d.Name] = true
	}
	lents, err := lower.readDir(below)
	if err != nil {
		return err
	}
	for _, c := range lents {
		if mine[c.Name] {
			continue
		}
		cp := join(p, c.Name)
		*out = append(*out, Change{Path: "/" + cp, Kind: Deleted, Entry: c.Entry})
		if c.Entry.IsDir() {
			if err := deletedSubtree(lower, cp, c.Entry, out); err != nil {
				return err
			}
		}
	}
	return nil
}

// deletedSubtree reports everything below a deleted lower directory.
func deletedSubtree(lower *Merged, p string, dir *Entry, out *[]Change) error {
	return lower.walk(p, dir, func(cp string, e *Entry) error {
		if cp != p {
			*out = append(*out, Change{Path: "/" + cp, Kind: Deleted, Entry: e})
		}
		return nil
	}, seenDirs{})
}

func join(dir, name string) string {
	if dir == "." {
		return name
	}
	return dir + "/" + name
}
