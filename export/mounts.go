package export

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/ctrlift/ctrlift/layers"
	"github.com/ctrlift/ctrlift/vfs"
)

// Mount is a tree a container saw at one of its paths, as a bind mount
// shows it: a volume's directory, or a file mounted over another
// (/etc/hosts). The mounted tree replaces what the layers hold there.
type Mount struct {
	Path   string // in the container, slash-separated, without the leading "/": "scratch", "etc/hosts"
	FS     vfs.FS
	Source string // the mounted directory or file in FS
	Name   string // the entries' source in the manifest, e.g. "volume emptyDir scratch"
}

// mountTable finds the mounts by container path.
type mountTable map[string]Mount

func newMountTable(ms []Mount) (mountTable, error) {
	t := mountTable{}
	for _, m := range ms {
		p := strings.Trim(m.Path, "/")
		if p == "" || !fs.ValidPath(p) {
			return nil, fmt.Errorf("export: mount at %q: not a path inside the container", m.Path)
		}
		m.Path = p
		t[p] = m
	}
	return t, nil
}

// addMount writes the tree mounted at container path p in place of what
// the layers hold there.
func (w *writer) addMount(p string, m Mount, mounts mountTable, depth int) error {
	if w.mountsSeen == nil {
		w.mountsSeen = map[string]bool{}
	}
	w.mountsSeen[p] = true
	if depth > 64 {
		return fmt.Errorf("export: mount at /%s: mounts nested deeper than 64", p)
	}
	in, err := m.FS.Lookup(m.Source)
	if err != nil {
		// What the container saw is unknown: say so, keep the layers'.
		w.stats.Skipped = append(w.stats.Skipped, fmt.Sprintf("/%s: %s (%s): %v", p, m.Name, m.Source, err))
		return errMountMissing
	}
	if !in.IsDir() {
		return w.add(p, in, m.FS, m.Name)
	}
	l := layers.Layer{FS: m.FS, Dir: m.Source, Name: m.Name}
	return layers.WalkLayer(l, layers.Options{}, func(rel string, e *layers.Entry) error {
		cp := p
		if rel != "." {
			cp = p + "/" + rel
			if inner, ok := mounts[cp]; ok {
				err := w.addMount(cp, inner, mounts, depth+1)
				if errors.Is(err, errMountMissing) {
					err = w.add(cp, e.Inode, e.FS(), m.Name)
				}
				if err == nil && e.IsDir() {
					return fs.SkipDir
				}
				return err
			}
		}
		return w.add(cp, e.Inode, e.FS(), m.Name)
	})
}

// errMountMissing: the mount's source is not on the disk; the layers'
// entry is written instead and the mount named in Stats.Skipped.
var errMountMissing = errors.New("mount source missing")

// WalkMount visits the tree of mount m as the container saw it: its
// root at m.Path, then what is below, directories first, names in byte
// order; p is the absolute container path.
func WalkMount(m Mount, fn func(p string, in *vfs.Inode, fsys vfs.FS) error) error {
	root := "/" + strings.Trim(m.Path, "/")
	in, err := m.FS.Lookup(m.Source)
	if err != nil {
		return nil // not on the disk: Volumes says so
	}
	if !in.IsDir() {
		return fn(root, in, m.FS)
	}
	l := layers.Layer{FS: m.FS, Dir: m.Source, Name: m.Name}
	return layers.WalkLayer(l, layers.Options{}, func(rel string, e *layers.Entry) error {
		p := root
		if rel != "." {
			p = root + "/" + rel
		}
		return fn(p, e.Inode, e.FS())
	})
}
