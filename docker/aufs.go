package docker

import (
	"errors"
	"io/fs"
	"strings"

	"github.com/ctrlift/ctrlift/vfs"
)

// aufs keeps deletions and opaque directories as names in the layer:
// ".wh.<name>" deletes <name> from the layers below, ".wh..wh..opq" makes
// its directory opaque, and ".wh..wh.<x>" names are aufs' own (plnk:
// pseudo-links, aufs: the xino, orph: orphans) that a mount never shows.
// The same rules are OCI's for layer tars.
const (
	aufsWhiteout = ".wh."
	aufsMeta     = ".wh..wh."
	aufsOpaque   = ".wh..wh..opq"
)

// overlay's markers, which the layer merge understands.
const overlayOpaqueXattr = "trusted.overlay.opaque"

// AufsFS shows aufs layer directories of fsys as overlayfs layers, for
// the layer merge: a ".wh.<name>" file is a whiteout (a 0:0 character
// device) named <name>, with the marker's owner and times; a directory
// holding ".wh..wh..opq" carries trusted.overlay.opaque=y; ".wh..wh.*"
// names are hidden. A real trusted.overlay.* xattr in an aufs layer is
// dropped: aufs never gave it a meaning. Nothing else changes; the view is
// read-only as fsys is.
type AufsFS struct{ vfs.FS }

// NewAufsFS wraps fsys.
func NewAufsFS(fsys vfs.FS) *AufsFS { return &AufsFS{FS: fsys} }

// Lookup resolves p in the aufs view.
func (a *AufsFS) Lookup(p string) (*vfs.Inode, error) {
	in, err := a.FS.Lookup(".")
	if err != nil {
		return nil, err
	}
	in = a.dir(in)
	if p == "." || p == "" {
		return in, nil
	}
	for _, name := range strings.Split(p, "/") {
		if !in.IsDir() {
			return nil, &fs.PathError{Op: "lookup", Path: p, Err: errors.New("not a directory")}
		}
		if in, err = a.LookupAt(in, name); err != nil {
			return nil, &fs.PathError{Op: "lookup", Path: p, Err: err}
		}
	}
	return in, nil
}

// LookupAt finds name in dir: the entry itself, or its whiteout.
func (a *AufsFS) LookupAt(dir *vfs.Inode, name string) (*vfs.Inode, error) {
	if strings.HasPrefix(name, aufsWhiteout) {
		return nil, fs.ErrNotExist // markers are not entries of the view
	}
	in, err := a.FS.LookupAt(dir, name)
	if err == nil {
		return a.entry(in), nil
	}
	if !errors.Is(err, fs.ErrNotExist) || len(aufsWhiteout)+len(name) > 255 {
		return nil, err
	}
	wh, werr := a.FS.LookupAt(dir, aufsWhiteout+name)
	if werr != nil {
		return nil, err
	}
	return whiteoutOf(wh), nil
}

// ReadDir lists dir as aufs shows it to the merge: markers hidden, each
// whiteout under the name it deletes.
func (a *AufsFS) ReadDir(dir *vfs.Inode) ([]vfs.DirEntry, error) {
	ents, err := a.FS.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make(map[string]bool, len(ents))
	for _, e := range ents {
		names[e.Name] = true
	}
	out := ents[:0:0]
	for _, e := range ents {
		switch {
		case strings.HasPrefix(e.Name, aufsMeta):
		case strings.HasPrefix(e.Name, aufsWhiteout):
			target := e.Name[len(aufsWhiteout):]
			if target != "" && target != "." && target != ".." && !names[target] {
				out = append(out, vfs.DirEntry{Name: target, Ino: e.Ino})
			}
		default:
			out = append(out, e)
		}
	}
	return out, nil
}

// entry translates one inode of an aufs layer.
func (a *AufsFS) entry(in *vfs.Inode) *vfs.Inode {
	if in.IsDir() {
		return a.dir(in)
	}
	return dropOverlayXattrs(in)
}

func (a *AufsFS) dir(in *vfs.Inode) *vfs.Inode {
	c := dropOverlayXattrs(in)
	if _, err := a.FS.LookupAt(in, aufsOpaque); err == nil {
		if c == in {
			cp := *in
			c = &cp
		}
		xs := make([]vfs.Xattr, 0, len(c.Xattrs)+1)
		xs = append(xs, c.Xattrs...)
		xs = append(xs, vfs.Xattr{Name: overlayOpaqueXattr, Value: []byte("y")})
		sortXattrs(xs)
		c.Xattrs = xs
	}
	return c
}

// whiteoutOf is the whiteout a ".wh.<name>" marker stands for.
func whiteoutOf(marker *vfs.Inode) *vfs.Inode {
	c := *marker
	c.Mode = vfs.TypeChar | marker.Mode&0o7777
	c.Size, c.Blocks, c.RdevMajor, c.RdevMinor, c.Xattrs = 0, 0, 0, 0, nil
	return &c
}

func dropOverlayXattrs(in *vfs.Inode) *vfs.Inode {
	keep := 0
	for _, x := range in.Xattrs {
		if !strings.HasPrefix(x.Name, "trusted.overlay.") {
			keep++
		}
	}
	if keep == len(in.Xattrs) {
		return in
	}
	c := *in
	c.Xattrs = make([]vfs.Xattr, 0, keep)
	for _, x := range in.Xattrs {
		if !strings.HasPrefix(x.Name, "trusted.overlay.") {
			c.Xattrs = append(c.Xattrs, x)
		}
	}
	return &c
}

func sortXattrs(xs []vfs.Xattr) {
	for i := 1; i < len(xs); i++ {
		for j := i; j > 0 && xs[j].Name < xs[j-1].Name; j-- {
			xs[j], xs[j-1] = xs[j-1], xs[j]
		}
	}
}
