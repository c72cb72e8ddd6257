package cstorage

import (
	"errors"
	"io/fs"
	"sort"
	"strings"

	"github.com/ctrlift/ctrlift/vfs"
)

// fuse-overlayfs's markers, as its main.c (1.x) writes and reads them.
// Writing, an unprivileged fuse-overlayfs that cannot mknod a 0:0
// character device deletes NAME with an empty file ".wh.NAME"; it makes a
// directory opaque with trusted.overlay.opaque=y, or, when that is not
// permitted, user.fuseoverlayfs.opaque=y, and always adds an empty
// ".wh..wh..opq" file. Reading, a 0:0 character device or a ".wh.NAME"
// file of the same layer deletes NAME (the marker wins over NAME itself),
// a directory is opaque when trusted.overlay.opaque, user.overlay.opaque
// or user.fuseoverlayfs.opaque is "y", or, without those, when it holds
// ".wh..wh..opq"; no name starting ".wh." is ever shown, nor any
// user.fuseoverlayfs.*, trusted.overlay.* or user.overlay.* xattr, and
// no other overlay marker (redirect, metacopy, xattr whiteouts) has a
// meaning.
const (
	fuseWhiteoutPrefix = ".wh."
	fuseOpaqueFile     = ".wh..wh..opq"
	fuseXattrPrefix    = "user.fuseoverlayfs."
)

var fuseOpaqueXattrs = []string{"trusted.overlay.opaque", "user.overlay.opaque", fuseXattrPrefix + "opaque"}

// FuseOverlayFS shows a layer directory that fuse-overlayfs mounted (a
// containers/storage store with overlay/.has-mount-program) as a kernel
// overlayfs layer, for the layer merge: ".wh.NAME" is a whiteout (a 0:0
// character device) named NAME with the marker's owner and times, an
// opaque directory carries the one opaque xattr the merge reads
// (user.overlay.opaque for a userxattr merge, else
// trusted.overlay.opaque), and fuse-overlayfs's hidden names and xattrs
// are dropped. The view is read-only as fsys is.
type FuseOverlayFS struct {
	vfs.FS
	opaqueXattr string
}

// NewFuseOverlayFS wraps fsys; userXattr says the layers are merged with
// user.overlay.* markers (a rootless store).
func NewFuseOverlayFS(fsys vfs.FS, userXattr bool) *FuseOverlayFS {
	x := "trusted.overlay.opaque"
	if userXattr {
		x = "user.overlay.opaque"
	}
	return &FuseOverlayFS{FS: fsys, opaqueXattr: x}
}

// Lookup resolves p in the fuse-overlayfs view.
func (f *FuseOverlayFS) Lookup(p string) (*vfs.Inode, error) {
	in, err := f.FS.Lookup(".")
	if err != nil {
		return nil, err
	}
	in = f.entry(in)
	if p == "." || p == "" {
		return in, nil
	}
	for _, name := range strings.Split(p, "/") {
		if !in.IsDir() {
			return nil, &fs.PathError{Op: "lookup", Path: p, Err: errors.New("not a directory")}
		}
		if in, err = f.LookupAt(in, name); err != nil {
			return nil, &fs.PathError{Op: "lookup", Path: p, Err: err}
		}
	}
	return in, nil
}

// LookupAt finds name in dir: its whiteout when the layer holds one, else
// the entry itself.
func (f *FuseOverlayFS) LookupAt(dir *vfs.Inode, name string) (*vfs.Inode, error) {
	if strings.HasPrefix(name, fuseWhiteoutPrefix) {
		return nil, fs.ErrNotExist // markers are not entries of the view
	}
	if len(fuseWhiteoutPrefix)+len(name) <= 255 {
		wh, err := f.FS.LookupAt(dir, fuseWhiteoutPrefix+name)
		if err == nil {
			return fuseWhiteout(wh), nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	in, err := f.FS.LookupAt(dir, name)
	if err != nil {
		return nil, err
	}
	return f.entry(in), nil
}

// ReadDir lists dir as fuse-overlayfs shows it to the merge: markers
// hidden, each ".wh.NAME" as NAME (once, when NAME is there too).
func (f *FuseOverlayFS) ReadDir(dir *vfs.Inode) ([]vfs.DirEntry, error) {
	ents, err := f.FS.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	whiteouts := map[string]uint64{}
	for _, e := range ents {
		if t, ok := fuseWhiteoutTarget(e.Name); ok {
			whiteouts[t] = e.Ino
		}
	}
	out := make([]vfs.DirEntry, 0, len(ents))
	seen := make(map[string]bool, len(ents))
	for _, e := range ents {
		if strings.HasPrefix(e.Name, fuseWhiteoutPrefix) {
			t, ok := fuseWhiteoutTarget(e.Name)
			if !ok {
				continue // a hidden name: the opaque marker, or a forged one
			}
			e.Name = t
		} else if ino, ok := whiteouts[e.Name]; ok {
			e.Ino = ino // the whiteout wins over the entry
		}
		if !seen[e.Name] {
			seen[e.Name] = true
			out = append(out, e)
		}
	}
	return out, nil
}

// entry translates one inode of the layer: fuse-overlayfs's xattrs and
// the kernel's overlay ones dropped, a directory's opaqueness restated as
// the merge's marker.
func (f *FuseOverlayFS) entry(in *vfs.Inode) *vfs.Inode {
	opaque := false
	if in.IsDir() {
		for _, x := range fuseOpaqueXattrs {
			if v, ok := in.Xattr(x); ok {
				opaque = len(v) > 0 && v[0] == 'y'
				break
			}
		}
		if !opaque {
			_, err := f.FS.LookupAt(in, fuseOpaqueFile)
			opaque = err == nil
		}
	}
	var xs []vfs.Xattr
	for _, x := range in.Xattrs {
		if !strings.HasPrefix(x.Name, fuseXattrPrefix) && !strings.HasPrefix(x.Name, "trusted.overlay.") && !strings.HasPrefix(x.Name, "user.overlay.") {
			xs = append(xs, x)
		}
	}
	if !opaque && len(xs) == len(in.Xattrs) {
		return in
	}
	if opaque {
		xs = append(xs, vfs.Xattr{Name: f.opaqueXattr, Value: []byte("y")})
		sort.Slice(xs, func(i, j int) bool { return xs[i].Name < xs[j].Name })
	}
	c := *in
	c.Xattrs = xs
	return &c
}

// fuseWhiteoutTarget is the name a ".wh.NAME" marker deletes.
func fuseWhiteoutTarget(name string) (string, bool) {
	t, ok := strings.CutPrefix(name, fuseWhiteoutPrefix)
	if !ok || t == "" || t == "." || t == ".." || strings.HasPrefix(t, fuseWhiteoutPrefix) {
		return "", false
	}
	return t, true
}

// fuseWhiteout is the whiteout a ".wh.NAME" marker stands for.
func fuseWhiteout(marker *vfs.Inode) *vfs.Inode {
	c := *marker
	c.Mode = vfs.TypeChar | marker.Mode&0o7777
	c.Size, c.Blocks, c.RdevMajor, c.RdevMinor, c.Xattrs = 0, 0, 0, 0, nil
	return &c
}
