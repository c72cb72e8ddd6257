package node

import (
	"fmt"
	"path"
	"strings"

	"github.com/ctrlift/ctrlift/containerd"
	"github.com/ctrlift/ctrlift/layers"
)

// LayerOptions say what to do with layers that are not on the disk.
type LayerOptions struct {
	// AllowMissing skips layers whose content is not on the disk (e.g.
	// GKE image streaming) instead of failing.
	AllowMissing bool
}

// Layers maps a container's snapshot chain onto the layer directories of
// the filesystem holding the runtime state, top (writable) layer first.
func (n *Node) Layers(c *containerd.Container, opt LayerOptions) ([]layers.Layer, error) {
	if c.LayersError != "" && len(c.Layers) == 0 {
		return nil, fmt.Errorf("container %s: snapshot chain: %s", c.ID, c.LayersError)
	}
	ls, err := n.chainLayers(c.Layers, opt)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", c.ID, err)
	}
	if top := c.Layers[0]; containerd.CopySnapshotter(top.Snapshotter) && len(ls) == 1 {
		st, err := n.State()
		if err != nil {
			return nil, err
		}
		n.noteCopyParent(st, top, ls[0])
	}
	return ls, nil
}

// SnapshotLayers is Layers for a snapshot chain named by its key (e.g. an
// image's rootfs chain id) in snapshotter ("" for the one that has it).
func (n *Node) SnapshotLayers(key, snapshotter string, opt LayerOptions) ([]layers.Layer, error) {
	st, err := n.State()
	if err != nil {
		return nil, err
	}
	var found []containerd.Snapshot
	for _, s := range st.Snapshots {
		if s.Key == key && n.inNamespace(s.Namespace) && (snapshotter == "" || s.Snapshotter == snapshotter) {
			found = append(found, s)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("no snapshot with key %q", key)
	case 1:
	default:
		// The same chain id in several namespaces names the same layers
		// only if it is the same snapshotter directory.
		var where []string
		for _, s := range found {
			where = append(where, s.Namespace+"/"+s.Snapshotter)
		}
		if found[0].Path == "" || !samePath(found) {
			return nil, fmt.Errorf("snapshot key %q is in several places (%s): select the namespace and snapshotter", key, strings.Join(where, ", "))
		}
	}
	s := found[0]
	chain, err := st.Chain(s.Namespace, s.Snapshotter, s.Key)
	if err != nil {
		return nil, err
	}
	return n.chainLayers(chain, opt)
}

func samePath(ss []containerd.Snapshot) bool {
	for _, s := range ss[1:] {
		if s.Path != ss[0].Path {
			return false
		}
	}
	return true
}

// DirLayers are layer directories of the filesystem read, given
// explicitly, top first: no runtime state needed.
func (n *Node) DirLayers(dirs []string) ([]layers.Layer, error) {
	s := n.tree
	if s.tree == nil {
		return nil, fmt.Errorf("%s: a database alone holds no layers", s.describe())
	}
	if s.dir != nil && !s.dir.TrustedXattrsVisible() {
		return nil, errOverlayMarkers(s)
	}
	var ls []layers.Layer
	for i, d := range dirs {
		ls = append(ls, layers.Layer{FS: s.tree, Dir: CleanPath(d), Name: fmt.Sprint(i)})
	}
	if len(ls) == 0 {
		return nil, fmt.Errorf("no layer directory given")
	}
	return ls, nil
}

// CleanPath turns a path as a user writes it ("/var/lib", "var/lib/",
// ".") into a path of the tree ("var/lib", ".").
func CleanPath(p string) string {
	p = strings.Trim(path.Clean("/"+p), "/")
	if p == "" {
		return "."
	}
	return p
}

func (n *Node) chainLayers(chain []containerd.Layer, opt LayerOptions) ([]layers.Layer, error) {
	src, err := n.layerSource()
	if err != nil {
		return nil, err
	}
	var ls []layers.Layer
	for i, l := range chain {
		if why, ok := unreadableSnapshotters[l.Snapshotter]; ok {
			return nil, fmt.Errorf("snapshotter %s is not supported: %s", l.Snapshotter, why)
		}
		name := layerName(l)
		if l.Path == "" || l.Missing {
			why := "its content is not on the disk"
			if l.Streamed {
				why = "it was served by GKE image streaming and never stored on the disk"
			} else if l.Missing {
				why = "it is missing from the snapshotter's metadata.db"
			}
			if opt.AllowMissing {
				continue
			}
			return nil, &MissingLayerError{Index: i, Snapshot: name, Key: l.SnapshotKey, Reason: why}
		}
		ls = append(ls, layers.Layer{FS: n.layerFS(src, l), Dir: l.Path, Name: name, UserXattr: l.UserXattr})
	}
	if len(ls) == 0 {
		return nil, errNoLayers
	}
	return ls, nil
}

// MissingLayerError is a layer of a chain whose content is not on the
// disk; LayerOptions.AllowMissing exports the rest.
type MissingLayerError struct {
	Index    int
	Snapshot string // snapshotter/id
	Key      string
	Reason   string
}

func (e *MissingLayerError) Error() string {
	return fmt.Sprintf("layer %d (snapshot %s, key %s): %s", e.Index, e.Snapshot, e.Key, e.Reason)
}
