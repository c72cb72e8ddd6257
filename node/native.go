package node

import (
	"encoding/json"
	"fmt"
	"path"

	"github.com/ctrlift/ctrlift/containerd"
	"github.com/ctrlift/ctrlift/layers"
	"github.com/ctrlift/ctrlift/vfs"
)

// unreadableSnapshotters keep snapshots where no directory tree on this
// filesystem holds them: btrfs subvolumes, zfs datasets and devmapper
// thin devices.
var unreadableSnapshotters = map[string]string{
	"btrfs":     "its snapshots are btrfs subvolumes",
	"zfs":       "its snapshots are zfs datasets",
	"devmapper": "its snapshots are device-mapper thin volumes",
}

// copyParent is the parent snapshot a copying snapshotter's snapshot was
// copied from: what its changes are measured against.
type copyParent struct {
	layer layers.Layer // the parent's directory; FS nil when not on disk
	why   string       // why there is no parent to compare with
}

// noteCopyParent remembers, for a native snapshot l, its parent snapshot
// on the disk, so that Diff and a changes export compare the two.
func (n *Node) noteCopyParent(st *containerd.State, top containerd.Layer, l layers.Layer) {
	if n.parents == nil {
		n.parents = map[string]copyParent{}
	}
	cp := copyParent{}
	switch p, err := st.ParentLayer(top); {
	case top.Parent == "":
		cp.why = "it has no parent snapshot: every entry is its own"
	case err != nil:
		cp.why = err.Error()
	case p.Path == "" || p.Note != "":
		cp.why = fmt.Sprintf("its parent snapshot %s is not on the disk", p.Name)
	default:
		cp.layer = layers.Layer{FS: l.FS, Dir: p.Path, Name: fmt.Sprintf("%s/%d", p.Snapshotter, p.ID)}
	}
	n.parents[l.Dir] = cp
}

// compareWithParent streams the changes of a copying snapshotter's
// snapshot against its parent, when ls is such a snapshot; ok is false
// for overlay chains.
func (n *Node) compareWithParent(ls []layers.Layer, fn func(layers.Change) error) (ok bool, err error) {
	cp, found := n.parents[ls[0].Dir]
	if !found || len(ls) != 1 {
		return false, nil
	}
	if cp.layer.FS == nil {
		n.warn(fmt.Sprintf("snapshot %s: %s; every entry is listed as added", ls[0].Name, cp.why))
		return true, layers.WalkLayer(ls[0], layers.Options{}, func(p string, e *layers.Entry) error {
			if p == "." {
				return nil
			}
			return fn(layers.Change{Path: "/" + p, Kind: layers.Added, Entry: e})
		})
	}
	return true, layers.Compare(ls[0], cp.layer, fn)
}

// mountPoints are the container paths the runtime mounts something on,
// from the OCI spec and the CRI mounts.
func mountPoints(c *containerd.Container) map[string]bool {
	mp := map[string]bool{}
	for _, m := range c.Mounts {
		mp[path.Clean("/"+m.ContainerPath)] = true
	}
	var spec struct {
		Mounts []struct {
			Destination string `json:"destination"`
		} `json:"mounts"`
	}
	if len(c.Spec) > 0 && json.Unmarshal(c.Spec, &spec) == nil {
		for _, m := range spec.Mounts {
			mp[path.Clean("/"+m.Destination)] = true
		}
	}
	return mp
}

// isStub reports an empty directory or empty file: what a runtime creates
// to mount on.
func isStub(fsys vfs.FS, in *vfs.Inode) bool {
	switch {
	case in.IsRegular():
		return in.Size == 0
	case in.IsDir():
		// Whiteouts are not content: fuse-overlayfs leaves a 0:0
		// device (.wh..opq) in each opaque directory it makes.
		ents, err := fsys.ReadDir(in)
		if err != nil || len(ents) > 64 {
			return false
		}
		for _, e := range ents {
			c, err := fsys.LookupAt(in, e.Name)
			if err != nil || !layers.IsWhiteout(c) {
				return false
			}
		}
		return true
	}
	return false
}
