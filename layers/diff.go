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
//
// A redirect or metacopy marker (below the layer's root) is refused with
// ErrUnsupported: what such an entry holds is in the layers below, which
// a walk of one layer does not see. Diff, which has them, follows them.
func WalkLayer(l Layer, opt Options, fn WalkFunc) error {
	return walkOne(l, opt, true, fn)
}

// walkOne is WalkLayer; with strict false it reports redirect and
// metacopy markers (Entry.Redirect, Entry.Metacopy) instead of refusing
// them, and refuses only malformed ones.
func walkOne(l Layer, opt Options, strict bool, fn WalkFunc) error {
	r := opt.with(l).rules()
	root, err := l.FS.Lookup(l.Dir)
	if err != nil {
		return fmt.Errorf("layers: layer %s: directory %s: %w", l.Name, l.Dir, err)
	}
	if !root.IsDir() {
		return fmt.Errorf("layers: layer %s: %s is not a directory; refusing to follow it", l.Name, l.Dir)
	}
	w := &layerWalk{l: l, r: r, strict: strict, fn: fn, seen: seenDirs{}}
	return w.walk(".", &Entry{Inode: root, LayerName: l.Name, fs: l.FS, src: l.FS, mpath: ".", Opaque: r.opaque(root)})
}

type layerWalk struct {
	l      Layer
	r      rules
	strict bool
	fn     WalkFunc
	seen   seenDirs
}

func (w *layerWalk) walk(p string, e *Entry) error {
	l, r, fn, seen := w.l, w.r, w.fn, w.seen
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
		ce := &Entry{Inode: in, LayerName: l.Name, fs: l.FS, src: l.FS, mpath: cp, Whiteout: r.whiteout(in, parentX), Opaque: r.opaque(in)}
		if err := w.markers(ce); err != nil {
			return err
		}
		if err := w.walk(cp, ce); err != nil {
			return err
		}
	}
	return nil
}

// markers refuses (strict) or reports redirect and metacopy markers.
func (w *layerWalk) markers(e *Entry) error {
	if w.strict {
		return w.r.checkLayer(e.Inode, w.l.Name, e.mpath)
	}
	fail := func(err error) error {
		return fmt.Errorf("layers: layer %s: %s: %w", w.l.Name, e.mpath, err)
	}
	mc, err := w.r.metacopy(e.Inode)
	if err != nil {
		return fail(err)
	}
	e.Metacopy = mc
	if e.IsDir() || mc {
		rd, err := w.r.redirect(e.Inode)
		if err != nil {
			return fail(err)
		}
		if rd != nil {
			e.Redirect = rd.raw
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
	// MetadataOnly (Diff, Modified): a metadata-only copy-up (overlay
	// metacopy) whose data is still the file below at the same path: the
	// mode, owner, times or xattrs changed, the contents did not.
	MetadataOnly bool
}

// Diff compares a writable layer with the merged view of the layers below
// it (lower may be nil for a container without an image). Deleted paths are
// the whited-out names and whatever an opaque directory hides below; a
// directory counts as modified only when its mode or owner changed.
//
// A metacopy file is reported with its merged entry (its data from below);
// when that data is the file below at the same path, the change is
// MetadataOnly. A redirected (renamed) directory is compared as merged:
// each name under it against the same path below, and what the path held
// below and no longer does is deleted.
func Diff(upper Layer, lower *Merged, opt Options) ([]Change, error) {
	var out []Change
	opt = opt.with(upper)
	if lower != nil {
		opt = opt.with(lower.layers...)
	}
	r := opt.rules()
	var full *Merged // upper over lower, made at the first marker that needs it
	merged := func(p string) (*Merged, *Entry, error) {
		if full == nil {
			f, err := stacked(upper, lower, opt)
			if err != nil {
				return nil, nil, err
			}
			full = f
		}
		e, err := full.Lookup(p)
		return full, e, err
	}
	err := walkOne(upper, opt, false, func(p string, e *Entry) error {
		if p == "." {
			return nil // the kernel ignores an opaque mark on a layer's root
		}
		abs := "/" + p
		below, err := lookupBelow(lower, p)
		if err != nil {
			return err
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
		vis := &Entry{Inode: r.visible(e.Inode), Layer: 0, LayerName: upper.Name, fs: upper.FS, src: upper.FS, mpath: p, Metacopy: e.Metacopy, Redirect: e.Redirect}
		redirected := e.IsDir() && !e.Opaque && e.Redirect != ""
		if e.Metacopy || redirected {
			f, fe, err := merged(p)
			if err != nil {
				return err
			}
			vis = fe
			if redirected {
				if err := changed(lower, p, vis, below, &out); err != nil {
					return err
				}
				return redirectedTree(f, lower, p, vis, &out)
			}
		}
		switch {
		case below == nil:
			out = append(out, Change{Path: abs, Kind: Added, Entry: vis})
		case e.IsDir() && below.IsDir():
			if e.Mode != below.Mode || e.Uid != below.Uid || e.Gid != below.Gid {
				out = append(out, Change{Path: abs, Kind: Modified, Entry: vis})
			}
		default:
			out = append(out, Change{Path: abs, Kind: Modified, Entry: vis, MetadataOnly: vis.Metacopy && vis.sameData(below)})
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

// lookupBelow looks p up in lower (nil: nothing below); a path that does
// not exist there, or runs through a non-directory, gives nil.
func lookupBelow(lower *Merged, p string) (*Entry, error) {
	if lower == nil {
		return nil, nil
	}
	b, err := lower.Lookup(p)
	if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, ErrNotDir) {
		return nil, err
	}
	return b, nil
}

// stacked merges upper over lower's layers (lower may be nil).
func stacked(upper Layer, lower *Merged, opt Options) (*Merged, error) {
	m, err := New([]Layer{upper}, opt)
	if err != nil || lower == nil {
		return m, err
	}
	for _, l := range lower.layers {
		m.layers = append(m.layers, l)
		if m.fsys[l.FS] == nil {
			m.fsys[l.FS] = &dataFS{FS: l.FS, data: map[uint64]dataRef{}}
		}
	}
	for _, s := range lower.roots {
		s.layer++
		m.roots = append(m.roots, s)
	}
	return m, nil
}

// changed reports how the merged entry e at p differs from below, the
// entry at p in the layers below (nil: none); a lower directory replaced
// by a non-directory is deleted with its contents.
func changed(lower *Merged, p string, e, below *Entry, out *[]Change) error {
	abs := "/" + p
	switch {
	case below == nil:
		*out = append(*out, Change{Path: abs, Kind: Added, Entry: e})
	case e.IsDir() && below.IsDir():
		if e.Mode != below.Mode || e.Uid != below.Uid || e.Gid != below.Gid {
			*out = append(*out, Change{Path: abs, Kind: Modified, Entry: e})
		}
	case e.src == below.src && e.Ino == below.Ino && (!e.IsRegular() || e.sameData(below)):
		// the same file, reached through a renamed directory
	default:
		*out = append(*out, Change{Path: abs, Kind: Modified, Entry: e, MetadataOnly: e.Metacopy && e.sameData(below)})
		if below.IsDir() && !e.IsDir() {
			return deletedSubtree(lower, p, below, out)
		}
	}
	return nil
}

// redirectedTree reports the changes under a redirected directory p of
// the writable layer, whose merged entry is dir in full: every merged name
// against the same path below, and the names below that it lacks.
func redirectedTree(full, lower *Merged, p string, dir *Entry, out *[]Change) error {
	err := full.walk(p, dir, func(cp string, e *Entry) error {
		below, err := lookupBelow(lower, cp)
		if err != nil {
			return err
		}
		if cp != p {
			if err := changed(lower, cp, e, below, out); err != nil {
				return err
			}
		}
		if !e.IsDir() || below == nil || !below.IsDir() {
			return nil
		}
		now, err := full.readDir(e)
		if err != nil {
			return err
		}
		has := map[string]bool{}
		for _, c := range now {
			has[c.Name] = true
		}
		was, err := lower.readDir(below)
		if err != nil {
			return err
		}
		for _, c := range was {
			if has[c.Name] {
				continue
			}
			dp := join(cp, c.Name)
			*out = append(*out, Change{Path: "/" + dp, Kind: Deleted, Entry: c.Entry})
			if c.Entry.IsDir() {
				if err := deletedSubtree(lower, dp, c.Entry, out); err != nil {
					return err
				}
			}
		}
		return nil
	}, seenDirs{})
	if err != nil {
		return err
	}
	return fs.SkipDir // the walk above covered the layer's own entries below p
}

// sameData reports whether e and o read the data of the same file.
func (e *Entry) sameData(o *Entry) bool {
	ef, ei, eok := e.dataKey()
	of, oi, ook := o.dataKey()
	return eok && ook && ef == of && ei == oi
}

// dataKey is the filesystem and inode whose data e reads.
func (e *Entry) dataKey() (vfs.FS, uint64, bool) {
	switch {
	case !e.IsRegular() || e.DataMissing:
		return nil, 0, false
	case e.data != nil:
		return e.data.fs, e.data.in.Ino, true
	}
	return e.src, e.Ino, true
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
