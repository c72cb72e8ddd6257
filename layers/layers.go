// Package layers merges a container's snapshot directories the way
// overlayfs does and presents the result as an io/fs.FS, without a mount.
//
// Rules, as the kernel applies them:
//   - a character device 0:0 in a layer (a whiteout) deletes the name from
//     the layers below;
//   - a directory with trusted.overlay.opaque=y hides everything below it
//     (user.overlay.* instead of trusted.overlay.* for rootless mounts);
//   - a zero-size file with trusted.overlay.whiteout in a directory marked
//     for it (Linux 6.7+ xattr whiteouts) is a whiteout too;
//   - the topmost copy of a directory gives its metadata; a non-directory
//     hides everything of the same name below;
//   - trusted.overlay.* xattrs are overlay internals and are dropped.
//
// Symlinks are data: no path is ever resolved through one, so a link to
// /etc/shadow or ../../.. cannot reach outside the layer or the image.
package layers

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/ctrlift/ctrlift/vfs"
)

// ErrNotDir is returned when a path runs through a non-directory (a
// symlink included: symlinks are never followed).
var ErrNotDir = vfs.ErrNotDir

// Layer is one snapshot directory on a filesystem.
type Layer struct {
	FS   vfs.FS
	Dir  string // layer root inside FS, slash-separated, e.g. var/lib/containerd/.../snapshots/10/fs
	Name string // how the layer is named in provenance (snapshot key or id)
}

// Options tune New.
type Options struct {
	// AllowMissing skips layers whose directory is absent (for example
	// GKE image streaming layers that never reached the disk) instead of
	// failing.
	AllowMissing bool
	// UserXattr reads the overlay markers from user.overlay.* instead of
	// trusted.overlay.*, as a rootless (userxattr) overlay mount does.
	UserXattr bool
}

// ErrUnsupported marks layers using overlayfs features that cannot be
// merged faithfully without the kernel (redirect_dir, metacopy).
var ErrUnsupported error = vfs.Unsupported("unsupported overlayfs feature") // matches errors.ErrUnsupported

// Merged is the union of layers, top first. It implements fs.FS,
// fs.ReadDirFS, fs.StatFS and fs.ReadLinkFS; Stat does not follow
// symlinks. FileInfo.Sys returns *Entry.
type Merged struct {
	rules    rules
	layers   []Layer
	roots    []source
	Warnings []string
}

// source is a directory inode in one layer.
type source struct {
	layer int
	in    *vfs.Inode
}

// Entry is a merged file: its inode with overlay internals removed, and
// the layer it comes from.
type Entry struct {
	*vfs.Inode
	Layer     int    // index into the layers given to New, 0 = top
	LayerName string // Layer.Name
	fs        vfs.FS
	dirs      []source // for directories: the contributing layer dirs, top first

	// Set by WalkLayer, which does not merge: the entry is a whiteout, or an
	// opaque directory.
	Whiteout, Opaque bool
}

// FS returns the filesystem holding the entry's data.
func (e *Entry) FS() vfs.FS { return e.fs }

// Open returns a reader over a regular file's contents.
func (e *Entry) Open() (vfs.File, error) { return e.fs.Open(e.Inode) }

// Readlink returns a symlink's target, byte-exact.
func (e *Entry) LinkTarget() (string, error) { return e.fs.LinkTarget(e.Inode) }

// New merges layers, given top first.
func New(layers []Layer, opt Options) (*Merged, error) {
	if len(layers) == 0 {
		return nil, errors.New("layers: no layers")
	}
	m := &Merged{layers: layers, rules: opt.rules()}
	for i, l := range layers {
		in, err := l.FS.Lookup(l.Dir)
		if err != nil {
			if opt.AllowMissing && errors.Is(err, fs.ErrNotExist) {
				m.Warnings = append(m.Warnings, fmt.Sprintf("layer %d (%s): directory %s is missing; skipped", i, l.Name, l.Dir))
				continue
			}
			return nil, fmt.Errorf("layers: layer %d (%s): directory %s: %w", i, l.Name, l.Dir, err)
		}
		if !in.IsDir() {
			return nil, fmt.Errorf("layers: layer %d (%s): %s is not a directory (mode %#o); refusing to follow it", i, l.Name, l.Dir, in.Mode)
		}
		if err := m.rules.check(in, l.Name, "/"); err != nil {
			return nil, err
		}
		// The kernel merges every layer's root, opaque or not.
		m.roots = append(m.roots, source{layer: i, in: in})
	}
	if len(m.roots) == 0 {
		return nil, errors.New("layers: no layer directory is present")
	}
	return m, nil
}

// Layers returns the layers given to New.
func (m *Merged) Layers() []Layer { return m.layers }

// IsWhiteout reports whether in is an overlay whiteout (char device 0:0).
func IsWhiteout(in *vfs.Inode) bool {
	return in.IsCharDev() && in.RdevMajor == 0 && in.RdevMinor == 0
}

func (m *Merged) rootEntry() *Entry {
	top := m.roots[0]
	return &Entry{Inode: m.rules.visible(top.in), Layer: top.layer, LayerName: m.layers[top.layer].Name, fs: m.layers[top.layer].FS, dirs: m.roots}
}

// lookup finds name in the merged directory dir. It returns nil, nil when
// the name does not exist (or is whited out).
func (m *Merged) lookup(dir *Entry, name string) (*Entry, error) {
	var found *Entry
	for _, s := range dir.dirs {
		l := m.layers[s.layer]
		in, err := l.FS.LookupAt(s.in, name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("layers: layer %d (%s): %w", s.layer, l.Name, err)
		}
		if err := m.rules.check(in, l.Name, name); err != nil {
			return nil, err
		}
		if m.rules.whiteout(in, m.rules.xwhiteouts(s.in)) {
			break
		}
		if found == nil {
			found = &Entry{Inode: m.rules.visible(in), Layer: s.layer, LayerName: l.Name, fs: l.FS}
			if !in.IsDir() {
				break
			}
		} else if !in.IsDir() {
			break // a lower non-directory is hidden by the directory above
		}
		found.dirs = append(found.dirs, source{layer: s.layer, in: in})
		if m.rules.opaque(in) {
			break
		}
	}
	return found, nil
}

// DirEntry is one name of a merged directory listing.
type DirEntry struct {
	Name  string
	Entry *Entry
}

// readDir lists the merged directory sorted by name (byte order).
func (m *Merged) readDir(dir *Entry) ([]DirEntry, error) {
	seen := map[string]bool{}
	var out []DirEntry
	for _, s := range dir.dirs {
		lfs := m.layers[s.layer].FS
		ents, err := lfs.ReadDir(s.in)
		if err != nil {
			return nil, fmt.Errorf("layers: layer %d (%s): %w", s.layer, m.layers[s.layer].Name, err)
		}
		for _, e := range ents {
			if seen[e.Name] {
				continue
			}
			seen[e.Name] = true
			// Resolve through all layers so whiteouts, opaque dirs and
			// directory merging below this name are applied.
			ent, err := m.lookup(dir, e.Name)
			if err != nil {
				return nil, err
			}
			if ent != nil {
				out = append(out, DirEntry{Name: e.Name, Entry: ent})
			}
		}
	}
	slices.SortFunc(out, func(a, b DirEntry) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// WalkFunc is called for each merged entry in depth-first, sorted order.
// p is slash-separated from the root ("." for the root itself).
type WalkFunc func(p string, e *Entry) error

// Walk visits every merged entry: directories before their contents, names
// in byte order. Returning fs.SkipDir from fn for a directory skips it.
// A directory reached twice (a loop or a hard-linked directory, both signs
// of a corrupt filesystem) is an error, so a walk always ends.
func (m *Merged) Walk(fn WalkFunc) error {
	return m.walk(".", m.rootEntry(), fn, seenDirs{})
}

// seenDirs records the directory inodes a walk has entered.
type seenDirs map[dirKey]string

type dirKey struct {
	fs  vfs.FS
	ino uint64
}

// enter records dir at path p, failing if it was entered before.
func (s seenDirs) enter(fsys vfs.FS, ino uint64, p string) error {
	k := dirKey{fsys, ino}
	if prev, ok := s[k]; ok {
		return fmt.Errorf("layers: %s: directory inode %d was already visited at %s: directory loop or hard-linked directory (corrupt filesystem)", p, ino, prev)
	}
	s[k] = p
	return nil
}

func (m *Merged) walk(p string, e *Entry, fn WalkFunc, seen seenDirs) error {
	if err := fn(p, e); err != nil {
		if errors.Is(err, fs.SkipDir) && e.IsDir() {
			return nil
		}
		return err
	}
	if !e.IsDir() {
		return nil
	}
	for _, s := range e.dirs {
		if err := seen.enter(m.layers[s.layer].FS, s.in.Ino, p); err != nil {
			return err
		}
	}
	ents, err := m.readDir(e)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	for _, c := range ents {
		cp := c.Name
		if p != "." {
			cp = p + "/" + c.Name
		}
		if err := m.walk(cp, c.Entry, fn, seen); err != nil {
			return err
		}
	}
	return nil
}

// Lookup resolves a path in the merged tree without following symlinks;
// a symlink in the middle of the path is an error.
func (m *Merged) Lookup(name string) (*Entry, error) {
	cur := m.rootEntry()
	name = strings.Trim(name, "/")
	if name == "" || name == "." {
		return cur, nil
	}
	for _, part := range strings.Split(name, "/") {
		switch part {
		case "", ".":
			continue
		case "..":
			return nil, fmt.Errorf("layers: %q: '..' is not resolved", name)
		}
		if !cur.IsDir() {
			if cur.IsSymlink() {
				return nil, fmt.Errorf("layers: %q: a component is a symlink, which is not followed: %w", name, ErrNotDir)
			}
			return nil, fmt.Errorf("layers: %q: %w", name, ErrNotDir)
		}
		next, err := m.lookup(cur, part)
		if err != nil {
			return nil, err
		}
		if next == nil {
			return nil, fs.ErrNotExist
		}
		cur = next
	}
	return cur, nil
}

// io/fs view.

var (
	_ fs.ReadDirFS  = (*Merged)(nil)
	_ fs.StatFS     = (*Merged)(nil)
	_ fs.ReadLinkFS = (*Merged)(nil)
)

// validPath is fs.ValidPath without its UTF-8 rule: names from evidence
// are kept byte-exact, whatever their encoding.
func validPath(name string) bool {
	if name == "." {
		return true
	}
	for _, elem := range strings.Split(name, "/") {
		if elem == "" || elem == "." || elem == ".." {
			return false
		}
	}
	return true
}

func (m *Merged) entry(op, name string) (*Entry, error) {
	if !validPath(name) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	e, err := m.Lookup(name)
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: err}
	}
	return e, nil
}

// Open opens a merged file; directories can be listed with ReadDir.
func (m *Merged) Open(name string) (fs.File, error) {
	e, err := m.entry("open", name)
	if err != nil {
		return nil, err
	}
	f := &file{m: m, name: name, e: e}
	if e.IsRegular() {
		r, err := e.Open()
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		f.r = r
	}
	return f, nil
}

// Stat describes the named entry; symlinks are not followed.
func (m *Merged) Stat(name string) (fs.FileInfo, error) { return m.Lstat(name) }

// Lstat describes the named entry.
func (m *Merged) Lstat(name string) (fs.FileInfo, error) {
	e, err := m.entry("lstat", name)
	if err != nil {
		return nil, err
	}
	return e.info(path.Base(name)), nil
}

// ReadLink returns a symlink's target.
func (m *Merged) ReadLink(name string) (string, error) {
	e, err := m.entry("readlink", name)
	if err != nil {
		return "", err
	}
	t, err := e.LinkTarget()
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: err}
	}
	return t, nil
}

// ReadDir lists a merged directory sorted by name.
func (m *Merged) ReadDir(name string) ([]fs.DirEntry, error) {
	e, err := m.entry("readdir", name)
	if err != nil {
		return nil, err
	}
	if !e.IsDir() {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	ents, err := m.readDir(e)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	out := make([]fs.DirEntry, len(ents))
	for i, c := range ents {
		out[i] = fs.FileInfoToDirEntry(c.Entry.info(c.Name))
	}
	return out, nil
}

type info struct {
	name string
	e    *Entry
}

func (e *Entry) info(name string) fs.FileInfo { return &info{name: name, e: e} }

func (i *info) Name() string       { return i.name }
func (i *info) Size() int64        { return i.e.Size }
func (i *info) Mode() fs.FileMode  { return i.e.FileMode() }
func (i *info) ModTime() time.Time { return i.e.Mtime }
func (i *info) IsDir() bool        { return i.e.Inode.IsDir() }
func (i *info) Sys() any           { return i.e }

type file struct {
	m    *Merged
	name string
	e    *Entry
	r    vfs.File
	dir  []fs.DirEntry
	read bool
}

func (f *file) Stat() (fs.FileInfo, error) { return f.e.info(path.Base(f.name)), nil }
func (f *file) Close() error               { return nil }

func (f *file) Read(p []byte) (int, error) {
	if f.r == nil {
		return 0, &fs.PathError{Op: "read", Path: f.name, Err: errors.New("not a regular file")}
	}
	return f.r.Read(p)
}

func (f *file) ReadDir(n int) ([]fs.DirEntry, error) {
	if !f.read {
		d, err := f.m.ReadDir(f.name)
		if err != nil {
			return nil, err
		}
		f.dir, f.read = d, true
	}
	if n <= 0 {
		d := f.dir
		f.dir = nil
		return d, nil
	}
	if len(f.dir) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(f.dir))
	d := f.dir[:n]
	f.dir = f.dir[n:]
	return d, nil
}
