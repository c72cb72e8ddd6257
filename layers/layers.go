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
//   - trusted.overlay.* xattrs are overlay internals and are dropped;
//   - a directory with trusted.overlay.redirect (renamed on a redirect_dir
//     mount) merges with the lower directories at the path the redirect
//     names, not at its own: an absolute redirect ("/a/b") is a path from
//     the root of the layers, a relative one a name in the same directory;
//   - a regular file with trusted.overlay.metacopy (a metadata-only copy-up
//     of a metacopy mount) has the metadata of its own inode and the data
//     of the first regular file below that is not metacopy itself, found
//     at the same path or where its redirect says.
//
// Lookups follow the kernel's ovl_lookup: each layer is consulted at most
// once per name, top to bottom, so redirects cannot loop, and a redirect
// is a path inside the layers (".." and "." are refused), never followed
// through a symlink.
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
	"sync"
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
	// UserXattr says the layer belongs to a userxattr (rootless) overlay
	// mount, as Options.UserXattr does: a layer of a rootless
	// containers/storage store carries its markers in user.overlay.*.
	UserXattr bool
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

// ErrUnsupported marks overlayfs features that cannot be read faithfully
// here: redirect and metacopy markers in a layer read alone (WalkLayer),
// or under userxattr rules (the kernel does not follow them there).
var ErrUnsupported error = vfs.Unsupported("unsupported overlayfs feature") // matches errors.ErrUnsupported

// ErrInvalidOverlay marks overlay markers that the kernel would refuse
// too: a malformed redirect or metacopy xattr. The error names the layer
// and the path in it.
var ErrInvalidOverlay = errors.New("invalid overlayfs marker")

// Merged is the union of layers, top first. It implements fs.FS,
// fs.ReadDirFS, fs.StatFS and fs.ReadLinkFS; Stat does not follow
// symlinks. FileInfo.Sys returns *Entry.
type Merged struct {
	rules  rules
	layers []Layer
	roots  []source
	fsys   map[vfs.FS]*dataFS // what Entry.FS returns, one per layer filesystem

	// Warnings are what the merge could not do faithfully. New adds the
	// layers it skipped; lookups and walks add the files whose data is
	// missing or inconsistent (metadata-only copy-ups), once each: read
	// it after a walk or an export.
	Warnings []string
	mu       sync.Mutex
	warned   map[string]bool
}

// source is an inode in one layer, and its path in the layer.
type source struct {
	layer int
	in    *vfs.Inode
	path  string
}

// Entry is a merged file: its inode with overlay internals removed, and
// the layer it comes from.
type Entry struct {
	*vfs.Inode
	Layer     int      // index into the layers given to New, 0 = top
	LayerName string   // Layer.Name
	fs        vfs.FS   // what FS returns
	src       vfs.FS   // the layer's filesystem, which holds Inode
	mpath     string   // merged path ("." for the root)
	dirs      []source // for directories: the contributing layer dirs, top first
	data      *dataRef // for a metacopy file: where its data is

	// Set by WalkLayer, which does not merge: the entry is a whiteout, or an
	// opaque directory.
	Whiteout, Opaque bool

	// Metacopy: the entry is a metadata-only copy-up (overlay metacopy):
	// Inode is the metacopy inode of layer Layer (mode, owner, times,
	// xattrs, size), and its data, which Open and FS().Open read, is the
	// file of layer DataLayer. Size and Blocks are the data file's (the
	// kernel's st_size is the metacopy inode's, which is the same unless
	// forged: then a warning says so).
	Metacopy      bool
	DataLayer     int    // with Metacopy and not DataMissing
	DataLayerName string // Layer.Name of DataLayer
	// DataMissing: a Metacopy entry whose data is in no lower layer (the
	// kernel fails its lookup with EIO). It is kept for its metadata with
	// Size 0 and no data, and Merged.Warnings names it with the size the
	// metacopy inode records.
	DataMissing bool
	// Redirect is the overlay redirect xattr the entry's own inode
	// carries, as stored (a renamed directory, a moved or hard-linked
	// metacopy file): the path, from the root of the layers ("/a/b"), or
	// the name in the same directory, of the lower contents it merges.
	Redirect string
}

// FS returns the filesystem holding the entry's data: Open(e.Inode) on
// it reads the entry's contents, for a metacopy entry the lower file's.
// Entries of one Merged on one layer filesystem share one FS, so
// (FS, Ino) still identifies hard links.
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
	opt = opt.with(layers...)
	m := &Merged{layers: layers, rules: opt.rules(), fsys: map[vfs.FS]*dataFS{}, warned: map[string]bool{}}
	for _, l := range layers {
		if m.fsys[l.FS] == nil {
			m.fsys[l.FS] = &dataFS{FS: l.FS, data: map[uint64]dataRef{}}
		}
	}
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
		// The kernel merges every layer's root, opaque or not, and never
		// looks at a root's redirect.
		m.roots = append(m.roots, source{layer: i, in: in, path: "."})
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
	return m.newEntry(top, ".", m.roots)
}

func (m *Merged) newEntry(top source, mpath string, dirs []source) *Entry {
	l := m.layers[top.layer]
	return &Entry{Inode: m.rules.visible(top.in), Layer: top.layer, LayerName: l.Name, fs: m.fsys[l.FS], src: l.FS, mpath: mpath, dirs: dirs}
}

// warn adds a warning once.
func (m *Merged) warn(msg string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.warned[msg] {
		m.warned[msg] = true
		m.Warnings = append(m.Warnings, msg)
	}
}

// lookupData is one name's lookup through the layers, as the kernel's
// struct ovl_lookup_data: what to look up in the next layer, and what the
// layers above decided.
type lookupData struct {
	// names is one name, looked up in the parent's directory of each
	// layer, or after an absolute redirect (abs) a path from the layers'
	// root.
	names    []string
	abs      bool
	stop     bool // the layers below are not consulted
	isDir    bool // a directory was found: only directories merge with it
	metacopy bool // the last file found is metacopy: its data is below
	// listed, when set, is the entry of the name in the directory probed
	// next, as its source listed it: its inode is read without a lookup.
	listed *vfs.DirEntry
}

// entryReader is a source that reads the inode of an entry its ReadDir
// listed, as LookupAt of the entry's name would find it, without looking
// the name up again (ext4). For such sources readDir knows from the
// listings which layers hold a name, and probes only those.
type entryReader interface {
	EntryInode(dir *vfs.Inode, e vfs.DirEntry) (*vfs.Inode, error)
}

// listedName is one name of one layer's directory listing.
type listedName struct {
	ent vfs.DirEntry
	pos int // index of the layer directory in the merged directory's dirs
}

// lookup finds name in the merged directory dir. It returns nil, nil when
// the name does not exist (or is whited out).
func (m *Merged) lookup(dir *Entry, name string) (*Entry, error) {
	return m.lookupListed(dir, name, nil)
}

// lookupListed is lookup with the listings of dir's layer directories
// that hold name (sorted by position, the last listing of a name in each):
// a layer whose source is an entryReader and whose listing lacks the name
// is not probed, since its lookup would not find it.
func (m *Merged) lookupListed(dir *Entry, name string, listed []listedName) (*Entry, error) {
	d := lookupData{names: []string{name}}
	stack, onRoots := dir.dirs, false
	bottom := m.roots[len(m.roots)-1].layer
	var found []source // the kernel's lower stack: top first, then data or merged dirs
	h := 0             // the next of listed
	for i := 0; !d.stop && i < len(stack); i++ {
		s := stack[i]
		var this *source
		var err error
		if listed != nil && !onRoots && !d.abs && len(d.names) == 1 && d.names[0] == name {
			if _, ok := m.layers[s.layer].FS.(entryReader); ok {
				for h < len(listed) && listed[h].pos < i {
					h++
				}
				if h == len(listed) || listed[h].pos != i {
					continue // not in this layer's directory
				}
				d.listed = &listed[h].ent
			}
		}
		if d.abs {
			this, err = m.lookupPath(s, &d, s.layer == bottom)
		} else {
			this, err = m.lookupOne(s, 0, &d, true, s.layer == bottom)
		}
		if err != nil {
			return nil, err
		}
		if this == nil {
			continue
		}
		// A metacopy file between the top one and the data is skipped.
		if !d.metacopy || len(found) == 0 {
			found = append(found, *this)
		}
		if d.stop {
			break
		}
		if d.abs && !onRoots {
			// An absolute redirect: the layers below are searched from
			// their roots, from the one below this.
			onRoots = true
			stack = m.roots
			i = slices.IndexFunc(m.roots, func(r source) bool { return r.layer == s.layer })
		}
	}
	if len(found) == 0 {
		return nil, nil
	}
	top := found[0]
	mpath := join(dir.mpath, name)
	if top.in.IsDir() {
		e := m.newEntry(top, mpath, found)
		if rd, _ := m.rules.redirect(top.in); rd != nil {
			e.Redirect = rd.raw
		}
		return e, nil
	}
	e := m.newEntry(top, mpath, nil)
	if d.metacopy || len(found) > 1 {
		if rd, _ := m.rules.redirect(top.in); rd != nil {
			e.Redirect = rd.raw
		}
		var data *source
		if !d.metacopy {
			data = &found[len(found)-1]
		}
		m.setData(e, top, data)
	}
	return e, nil
}

// lookupPath looks up the path d.names from the root of the layer of root,
// as the kernel's ovl_lookup_layer: a component that is missing ends the
// search in this layer only; a whiteout, or a non-directory on the way,
// ends it in all the layers below.
func (m *Merged) lookupPath(root source, d *lookupData, bottom bool) (*source, error) {
	base := root
	for k := 0; k < len(d.names); k++ {
		last := k == len(d.names)-1
		post := len(d.names) - k - 1 // a redirect may change what comes before
		this, err := m.lookupOne(base, k, d, last, bottom)
		if err != nil || this == nil {
			return nil, err
		}
		if last {
			return this, nil
		}
		k = len(d.names) - post - 1
		base = *this
	}
	return nil, nil
}

// lookupOne looks up d.names[k] in the directory base, as the kernel's
// ovl_lookup_single; last says it is the last component of the name.
func (m *Merged) lookupOne(base source, k int, d *lookupData, last, bottom bool) (*source, error) {
	name := d.names[k]
	if len(name) > maxName {
		return nil, nil // the kernel's lookup: ENAMETOOLONG, taken as absent
	}
	l := m.layers[base.layer]
	var in *vfs.Inode
	var err error
	if er, ok := l.FS.(entryReader); ok && d.listed != nil && d.listed.Name == name {
		in, err = er.EntryInode(base.in, *d.listed)
	} else {
		in, err = l.FS.LookupAt(base.in, name)
	}
	d.listed = nil
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	p := join(base.path, name)
	fail := func(err error) (*source, error) {
		return nil, fmt.Errorf("layers: layer %d (%s): %s: %w", base.layer, l.Name, p, err)
	}
	if err != nil {
		return fail(err)
	}
	if m.rules.whiteout(in, m.rules.xwhiteouts(base.in)) {
		d.stop = true
		return nil, nil
	}
	if last && d.metacopy && !in.IsRegular() {
		d.stop = true // a metacopy file's data must be a regular file
		return nil, nil
	}
	this := &source{layer: base.layer, in: in, path: p}
	if !in.IsDir() {
		if d.isDir || !last {
			d.stop = true
			return nil, nil
		}
		mc, err := m.rules.metacopy(in)
		if err != nil {
			return fail(err)
		}
		d.metacopy, d.stop = mc, !mc
		if !mc || bottom {
			return this, nil
		}
	} else {
		if last {
			d.isDir = true
		}
		if bottom {
			return this, nil
		}
		if m.rules.opaque(in) {
			d.stop = true
			return this, nil
		}
	}
	rd, err := m.rules.redirect(in)
	if err != nil {
		return fail(err)
	}
	if rd != nil {
		if rd.abs {
			// The absolute path replaces the name up to here; the
			// components after it (in a path lookup) stay.
			d.names = append(slices.Clone(rd.names), d.names[k+1:]...)
			d.abs = true
			d.stop = false // an opaque directory above does not hide it
		} else {
			d.names = slices.Clone(d.names)
			d.names[k] = rd.names[0]
		}
	}
	return this, nil
}

// setData makes e, a metacopy file found in top, read its data from data
// (nil: none was found).
func (m *Merged) setData(e *Entry, top source, data *source) {
	ref := dataRef{}
	if data != nil {
		ref = dataRef{layer: data.layer, fs: m.layers[data.layer].FS, in: data.in}
	}
	ref = m.fsys[e.src].set(top.in.Ino, ref, func(prev dataRef) {
		m.warn(fmt.Sprintf("%s: metacopy inode %d of layer %d (%s) is hard-linked to names whose data are in different files (%s); the data of the first name looked up is used", manifestPath(e.mpath), top.in.Ino, top.layer, e.LayerName, prev))
	})
	c := *e.Inode
	e.Inode, e.Metacopy, e.data = &c, true, &ref
	if ref.in == nil {
		e.DataMissing = true
		m.warn(fmt.Sprintf("%s: metadata-only copy-up (overlay metacopy) in layer %d (%s) at %s whose data is in no lower layer (the kernel fails its lookup); exported with its metadata and without its %d bytes of data", manifestPath(e.mpath), top.layer, e.LayerName, top.path, c.Size))
		c.Size, c.Blocks = 0, 0
		return
	}
	e.DataLayer, e.DataLayerName = ref.layer, m.layers[ref.layer].Name
	if c.Size != ref.in.Size {
		m.warn(fmt.Sprintf("%s: metadata-only copy-up (overlay metacopy) in layer %d (%s) records size %d, its data (layer %d, %s) has %d bytes; the data's size is used", manifestPath(e.mpath), top.layer, e.LayerName, c.Size, ref.layer, m.layers[ref.layer].Name, ref.in.Size))
	}
	c.Size, c.Blocks = ref.in.Size, ref.in.Blocks // the kernel's st_blocks is the data's too
}

func manifestPath(p string) string {
	if p == "." {
		return "/"
	}
	return "/" + p
}

// dataRef is where a metacopy file's data is; in is nil when it is
// nowhere.
type dataRef struct {
	layer int
	fs    vfs.FS
	in    *vfs.Inode
}

func (r dataRef) same(o dataRef) bool {
	if r.in == nil || o.in == nil {
		return r.in == o.in
	}
	return r.fs == o.fs && r.in.Ino == o.in.Ino
}

func (r dataRef) String() string {
	if r.in == nil {
		return "none"
	}
	return fmt.Sprintf("layer %d inode %d", r.layer, r.in.Ino)
}

// dataFS is a layer filesystem as a Merged's entries present it: Open of
// a metacopy inode reads the data its lookup found in a lower layer.
type dataFS struct {
	vfs.FS
	mu   sync.Mutex
	data map[uint64]dataRef // metacopy inode number -> its data
}

// set records ref as the data of metacopy inode ino, unless the inode has
// data already (another name of it, looked up before): that one is kept
// and returned, and conflict called when they differ.
func (f *dataFS) set(ino uint64, ref dataRef, conflict func(prev dataRef)) dataRef {
	f.mu.Lock()
	prev, ok := f.data[ino]
	if !ok {
		f.data[ino] = ref
	}
	f.mu.Unlock()
	if !ok {
		return ref
	}
	if !prev.same(ref) {
		conflict(prev)
	}
	return prev
}

// MaxFileSize is the layer filesystem's, 0 when it does not say.
func (f *dataFS) MaxFileSize() int64 {
	if m, ok := f.FS.(vfs.MaxFileSizer); ok {
		return m.MaxFileSize()
	}
	return 0
}

// Open opens in's data: a metacopy inode's from where its lookup found it.
func (f *dataFS) Open(in *vfs.Inode) (vfs.File, error) {
	f.mu.Lock()
	ref, ok := f.data[in.Ino]
	f.mu.Unlock()
	switch {
	case !ok:
		return f.FS.Open(in)
	case ref.in == nil:
		return noData{}, nil
	}
	return ref.fs.Open(ref.in)
}

// noData is the (empty) data of a metacopy file whose data is missing.
type noData struct{}

func (noData) ReadAt(p []byte, off int64) (int, error)          { return 0, io.EOF }
func (noData) Read(p []byte) (int, error)                       { return 0, io.EOF }
func (noData) Size() int64                                      { return 0 }
func (noData) NextData(off int64) (start, end int64, err error) { return 0, 0, nil }

// DirEntry is one name of a merged directory listing.
type DirEntry struct {
	Name  string
	Entry *Entry
}

// readDir lists the merged directory sorted by name (byte order). The
// layers' listings are read first and sorted together, so each name is
// looked up once, in the layers that hold it.
func (m *Merged) readDir(dir *Entry) ([]DirEntry, error) {
	var all []listedName
	for i, s := range dir.dirs {
		lfs := m.layers[s.layer].FS
		ents, err := lfs.ReadDir(s.in)
		if err != nil {
			return nil, fmt.Errorf("layers: layer %d (%s): %w", s.layer, m.layers[s.layer].Name, err)
		}
		for _, e := range ents {
			all = append(all, listedName{ent: e, pos: i})
		}
	}
	// Stable: of a name listed twice in one directory (corrupt), the last
	// one comes last, as the one a lookup by name finds.
	slices.SortStableFunc(all, func(a, b listedName) int {
		if c := strings.Compare(a.ent.Name, b.ent.Name); c != 0 {
			return c
		}
		return a.pos - b.pos
	})
	var out []DirEntry
	var group []listedName
	for i := 0; i < len(all); {
		name := all[i].ent.Name
		group = group[:0]
		for ; i < len(all) && all[i].ent.Name == name; i++ {
			if k := len(group) - 1; k >= 0 && group[k].pos == all[i].pos {
				group[k] = all[i]
				continue
			}
			group = append(group, all[i])
		}
		// Resolve through all layers so whiteouts, opaque dirs and
		// directory merging below this name are applied.
		ent, err := m.lookupListed(dir, name, group)
		if err != nil {
			return nil, err
		}
		if ent != nil {
			out = append(out, DirEntry{Name: name, Entry: ent})
		}
	}
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
		return fmt.Errorf("layers: %s: directory inode %d was already visited at %s: directory loop, hard-linked directory or two redirects to one directory (corrupt or forged layers)", p, ino, prev)
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
