package node

import (
	"fmt"
	"slices"
	"strings"

	"github.com/ctrlift/ctrlift/containerd"
	"github.com/ctrlift/ctrlift/export"
)

// TreeRef names the tree a path is in: a container (namespace, id, pod,
// name, image) or, with ChainID, an image's root filesystem.
type TreeRef struct {
	Namespace     string `json:"namespace"`
	ContainerID   string `json:"container_id,omitempty"`
	Pod           string `json:"pod,omitempty"` // K8SNS/POD
	ContainerName string `json:"container_name,omitempty"`
	Image         string `json:"image,omitempty"`
	ChainID       string `json:"chain_id,omitempty"` // an image's: the snapshot key of its root filesystem
}

func containerTree(c *containerd.Container) TreeRef {
	t := TreeRef{Namespace: c.Namespace, ContainerID: c.ID, ContainerName: c.ContainerName, Image: c.Image}
	t.Pod = PodLabel(c)
	return t
}

// PathInfo is what a path of the partition is to the runtime: the snapshot
// whose layer directory holds it, and the containers and images whose
// snapshot chains have that layer, each with what the layer does to the
// path there.
type PathInfo struct {
	Path        string `json:"path"` // on the partition
	Snapshotter string `json:"snapshotter"`
	SnapshotID  uint64 `json:"snapshot_id"`
	SnapshotKey string `json:"snapshot_key"`
	Kind        string `json:"snapshot_kind"`
	LayerDir    string `json:"layer_dir"`
	// InLayer is the path in the layer, and so in every container and
	// image that has it.
	InLayer    string        `json:"path_in_layer"`
	Record     export.Record `json:"record"` // the entry, at InLayer
	Containers []PathUser    `json:"containers"`
	Images     []PathUser    `json:"images"`
}

// PathUser is a container or image whose chain has the layer of a
// PathInfo.
type PathUser struct {
	TreeRef
	LayerIndex int    `json:"layer_index"` // in its chain, 0 = top
	What       string `json:"what"`        // as in History: holds, hidden-below, whiteout
}

// LocatePath names, for a path of the partition inside a snapshot's layer
// directory (e.g. var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/
// snapshots/10/fs/tmp/x), the snapshot, the path inside it and every
// container (sandboxes and support containers too) and image of the
// selected namespaces whose chain has the layer, with what the layer does
// to the path there: a file that holds is what the container sees.
func (n *Node) LocatePath(p string) (*PathInfo, error) {
	st, err := n.State()
	if err != nil {
		return nil, err
	}
	src, err := n.layerSource()
	if err != nil {
		return nil, err
	}
	p = CleanPath(p)
	info := &PathInfo{Path: p}
	// The layer directory: the longest snapshot or chain directory the
	// path is in (a gcfs layer may be in its layer cache).
	found := false
	consider := func(dir string, describe func()) {
		if dir == "" || len(dir) <= len(info.LayerDir) || (p != dir && !strings.HasPrefix(p, dir+"/")) {
			return
		}
		info.LayerDir, found = dir, true
		describe()
	}
	for _, s := range st.Snapshots {
		if n.inNamespace(s.Namespace) {
			consider(s.Path, func() {
				info.Snapshotter, info.SnapshotID, info.SnapshotKey, info.Kind = s.Snapshotter, s.ID, s.Key, string(s.Kind)
			})
		}
	}
	for _, c := range st.Containers {
		if !n.inNamespace(c.Namespace) {
			continue
		}
		for _, l := range c.Layers {
			consider(l.Path, func() {
				info.Snapshotter, info.SnapshotID, info.SnapshotKey, info.Kind = l.Snapshotter, l.ID, l.SnapshotKey, string(l.Kind)
			})
		}
	}
	if !found {
		return nil, fmt.Errorf("%s is not inside the layer directory of a snapshot of %s", p, st.Root)
	}
	names := splitPath(strings.TrimPrefix(p, info.LayerDir))
	info.InLayer = joinPath(names)
	in, err := src.tree.Lookup(p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if info.Record, err = export.NewRecord(info.InLayer, in, src.tree); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	info.Record.Layer = fmt.Sprintf("%s/%d", info.Snapshotter, info.SnapshotID)
	if in.IsRegular() {
		if info.Record.SHA256, info.Record.SHA256Omitted, err = export.NewDigester().Sum(src.tree, in); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
	}

	info.Containers, info.Images = []PathUser{}, []PathUser{}
	use := func(t TreeRef, ch *chain) error {
		for i, l := range ch.layers {
			if l.Dir != info.LayerDir {
				continue
			}
			what, err := whatAt(ch, i, names)
			if err != nil {
				return err
			}
			info.Record.Layer = l.Name // as the chains name it
			u := PathUser{TreeRef: t, LayerIndex: i, What: what}
			if t.ChainID != "" {
				info.Images = append(info.Images, u)
			} else {
				info.Containers = append(info.Containers, u)
			}
			return nil
		}
		return nil
	}
	for i := range st.Containers {
		c := &st.Containers[i]
		if !n.inNamespace(c.Namespace) || !slices.ContainsFunc(c.Layers, func(l containerd.Layer) bool { return l.Path == info.LayerDir }) {
			continue
		}
		ch, err := n.containerChain(c, LayerOptions{AllowMissing: true})
		if err != nil {
			return nil, err
		}
		if err := use(containerTree(c), ch); err != nil {
			return nil, err
		}
	}
	images, err := n.imageTrees()
	if err != nil {
		return nil, err
	}
	for _, it := range images {
		if !slices.ContainsFunc(it.snaps, func(l containerd.Layer) bool { return l.Path == info.LayerDir }) {
			continue
		}
		ch, err := n.imageChain(it, LayerOptions{AllowMissing: true})
		if err != nil {
			return nil, err
		}
		if err := use(it.ref, ch); err != nil {
			return nil, err
		}
	}
	return info, nil
}

// whatAt is what layer i of ch does to the path names, as History says.
func whatAt(ch *chain, i int, names []string) (string, error) {
	looks, err := lookChain(ch, names)
	if err != nil {
		return "", err
	}
	for _, h := range classify(looks, ch.copies) {
		if h.LayerIndex == i {
			return h.What, nil
		}
	}
	return "", nil
}

// imageTree is an image's root filesystem: one snapshot chain, and every
// image record (tag, digest reference, id) unpacked to it.
type imageTree struct {
	ref   TreeRef // Image: a name, not a digest, when one has it
	names []string
	image imageRef
	snaps []containerd.Layer // the chain, top first
	err   error              // why the chain cannot be read
}

// imageTrees are the root filesystems of the images of the selected
// namespaces, each once however many names it has, in namespace and name
// order. An image whose config is not in the content store has no known
// chain and is left out.
func (n *Node) imageTrees() ([]imageTree, error) {
	st, err := n.State()
	if err != nil {
		return nil, err
	}
	var out []imageTree
	at := map[string]int{}
	for _, im := range st.Images {
		if !n.inNamespace(im.Namespace) || im.ChainID == "" {
			continue
		}
		for _, s := range st.Snapshots {
			if s.Namespace != im.Namespace || s.Key != im.ChainID {
				continue
			}
			key := s.Namespace + "\x00" + s.Snapshotter + "\x00" + s.Key
			if k, ok := at[key]; ok {
				out[k].names = append(out[k].names, im.Name)
				continue
			}
			at[key] = len(out)
			t := imageTree{ref: TreeRef{Namespace: im.Namespace, ChainID: im.ChainID}, names: []string{im.Name}, image: imageRef{im.Namespace, im.Name, im.Config}}
			t.snaps, t.err = st.Chain(s.Namespace, s.Snapshotter, s.Key)
			out = append(out, t)
		}
	}
	for i := range out {
		t := &out[i]
		slices.Sort(t.names)
		// A name rather than the image id, as CRI lists it.
		t.ref.Image = t.names[0]
		for _, name := range t.names {
			if !strings.HasPrefix(name, "sha256:") {
				t.ref.Image = name
				break
			}
		}
		t.image.name = t.ref.Image
	}
	slices.SortStableFunc(out, func(a, b imageTree) int {
		return strings.Compare(a.ref.Namespace+"\x00"+a.ref.Image, b.ref.Namespace+"\x00"+b.ref.Image)
	})
	return out, nil
}

// imageChain is an image's chain, its layers on the disk.
func (n *Node) imageChain(it imageTree, opt LayerOptions) (*chain, error) {
	if it.err != nil && len(it.snaps) == 0 {
		return nil, fmt.Errorf("image %s: snapshot chain: %w", it.ref.Image, it.err)
	}
	if len(it.snaps) == 0 {
		return nil, fmt.Errorf("image %s: %w", it.ref.Image, errNoLayers)
	}
	ls, err := n.chainLayers(it.snaps, opt)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", it.ref.Image, err)
	}
	ch := &chain{layers: ls, image: it.image}
	if containerd.CopySnapshotter(it.snaps[0].Snapshotter) && len(ls) == 1 {
		st, err := n.State()
		if err != nil {
			return nil, err
		}
		ch.layers, ch.snaps, _ = copyChain(st, it.snaps[0], ls[0])
		ch.copies = true
		return ch, nil
	}
	for _, l := range ls {
		for _, s := range it.snaps {
			if s.Path == l.Dir {
				ch.snaps = append(ch.snaps, s)
				break
			}
		}
	}
	return ch, nil
}
