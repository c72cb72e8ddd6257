package node

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ctrlift/ctrlift/containerd"
)

// RuntimeNotFoundError says where the runtime state was looked for.
type RuntimeNotFoundError struct {
	Err      error    // from the search of the selected filesystem
	Searched []string // the filesystems searched
	Others   []string // every partition of the disks, when the input is a disk
}

func (e *RuntimeNotFoundError) Error() string {
	s := e.Err.Error()
	if len(e.Searched) > 0 {
		s += "\n  partitions searched: " + strings.Join(e.Searched, "; ")
	}
	if len(e.Others) > 0 {
		s += "\n  partitions on the disk: " + strings.Join(e.Others, "; ")
	}
	return s
}

func (e *RuntimeNotFoundError) Unwrap() error { return e.Err }

// State reads the container runtime's state, once: containerd's root is
// looked for at Options.RuntimeRoot or the known places on the selected
// filesystem and, when no partition was selected explicitly, on the other
// readable filesystems of every disk.
func (n *Node) State() (*containerd.State, error) {
	if n.state != nil || n.stateErr != nil {
		return n.state, n.stateErr
	}
	n.state, n.stateErr = n.loadState()
	return n.state, n.stateErr
}

func (n *Node) loadState() (*containerd.State, error) {
	src := n.tree
	root, droot, err := n.findRoots(src.files)
	if err != nil && src.part == nil {
		return nil, fmt.Errorf("%s: %w", src.describe(), err)
	}
	if err != nil {
		searched := []string{src.describe()}
		var all []string
		found := false
		for _, in := range n.inputs {
			for _, p := range in.disk.PartitionsAndVolumes() {
				all = append(all, describePartition(p))
				if found || n.opt.Partition != "" || p == src.part || !readable(p.FS.Type) {
					continue
				}
				searched = append(searched, describePartition(p))
				other, oerr := n.openPartition(in, p)
				if oerr != nil {
					continue
				}
				if r, dr, ferr := n.findRoots(other.files); ferr == nil {
					root, droot, src, found = r, dr, other, true
				}
				n.others = append(n.others, other)
			}
		}
		if !found {
			return nil, &RuntimeNotFoundError{Err: err, Searched: searched, Others: all}
		}
	}
	st := &containerd.State{Root: droot, Containers: []containerd.Container{}}
	if root != "" {
		if st, err = containerd.Load(src.files, root); err != nil {
			return nil, err
		}
		for _, w := range st.Warnings {
			n.warn(w)
		}
	}
	if droot != "" {
		if err := n.loadDocker(st, src, droot); err != nil {
			if root == "" {
				return nil, err
			}
			n.warn(err.Error())
		}
	}
	if err := n.loadCStorage(st, src); err != nil {
		n.warn(err.Error())
	}
	n.runtime = src
	return st, nil
}

// RuntimeSource names the filesystem holding the runtime state, after
// State has loaded it.
func (n *Node) RuntimeSource() string {
	if n.runtime == nil {
		return ""
	}
	return n.runtime.describe()
}

// layerSource is the source the runtime's layers are read from.
func (n *Node) layerSource() (*source, error) {
	if _, err := n.State(); err != nil {
		return nil, err
	}
	s := n.runtime
	if s.tree == nil {
		return nil, fmt.Errorf("%s: a database alone holds no layers; give the disk image or directory it came from", s.describe())
	}
	if s.dir != nil && !s.dir.TrustedXattrsVisible() {
		return nil, errOverlayMarkers(s)
	}
	return s, nil
}

func errOverlayMarkers(s *source) error {
	return fmt.Errorf("directory %s: overlay layers keep their opaque and whiteout markers in trusted.overlay.* xattrs, which only root (CAP_SYS_ADMIN) can read; merging without them would be wrong: run as root, or read the disk image instead", s.dir.Root())
}

// inNamespace applies Options.Namespace.
func (n *Node) inNamespace(ns string) bool { return n.opt.Namespace == "" || n.opt.Namespace == ns }

// Namespaces are the containerd namespaces, with what each holds.
func (n *Node) Namespaces() ([]Namespace, error) {
	st, err := n.State()
	if err != nil {
		return nil, err
	}
	var out []Namespace
	for _, ns := range st.Namespaces {
		if !n.inNamespace(ns.Name) {
			continue
		}
		r := Namespace{Name: ns.Name, Labels: ns.Labels}
		for _, c := range st.Containers {
			r.Containers += b2i(c.Namespace == ns.Name)
		}
		for _, i := range st.Images {
			r.Images += b2i(i.Namespace == ns.Name)
		}
		for _, s := range st.Snapshots {
			r.Snapshots += b2i(s.Namespace == ns.Name)
		}
		for _, b := range st.Content {
			r.Content += b2i(b.Namespace == ns.Name)
		}
		out = append(out, r)
	}
	return out, nil
}

// Namespace is one containerd namespace and how many objects it holds.
type Namespace struct {
	Name       string            `json:"name"`
	Labels     map[string]string `json:"labels,omitempty"`
	Containers int               `json:"containers"`
	Images     int               `json:"images"`
	Snapshots  int               `json:"snapshots"`
	Content    int               `json:"content"`
}

// Images are the images of the selected namespaces.
func (n *Node) Images() ([]containerd.Image, error) {
	st, err := n.State()
	if err != nil {
		return nil, err
	}
	return filter(st.Images, func(i containerd.Image) bool { return n.inNamespace(i.Namespace) }), nil
}

// Snapshots are the snapshots of the selected namespaces.
func (n *Node) Snapshots() ([]containerd.Snapshot, error) {
	st, err := n.State()
	if err != nil {
		return nil, err
	}
	return filter(st.Snapshots, func(s containerd.Snapshot) bool { return n.inNamespace(s.Namespace) }), nil
}

// Content are the content store's blobs of the selected namespaces.
func (n *Node) Content() ([]containerd.Blob, error) {
	st, err := n.State()
	if err != nil {
		return nil, err
	}
	return filter(st.Content, func(b containerd.Blob) bool { return n.inNamespace(b.Namespace) }), nil
}

func filter[T any](all []T, keep func(T) bool) []T {
	var out []T
	for _, x := range all {
		if keep(x) {
			out = append(out, x)
		}
	}
	return out
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

var errNoLayers = errors.New("no layer of the chain is on the disk")
