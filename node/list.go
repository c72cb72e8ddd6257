package node

import (
	"github.com/ctrlift/ctrlift/containerd"
)

// ListOptions select the containers listed, and exported by ExportAll.
type ListOptions struct {
	// All includes what is hidden by default: pod sandboxes and support
	// containers (system pods).
	All bool
	// Support recognises support containers; nil is DefaultSupportFilter.
	Support *SupportFilter
}

// Listing is the containers selected and those left out.
type Listing struct {
	Shown  []containerd.Container // without the heavy fields (see containerd.Container.Brief)
	Hidden Hidden
}

// Hidden counts containers left out of a listing, by reason, and names
// each with its reason.
type Hidden struct {
	Sandboxes  int
	Support    int
	Namespaces map[string]int // containerd namespaces other than Options.Namespace
	Containers []HiddenContainer
}

// HiddenContainer is one container left out of a listing.
type HiddenContainer struct {
	Container containerd.Container
	Reason    string // "pod sandbox", "support container (name kube-proxy)", "namespace default not selected"
}

// Total is the number of hidden containers.
func (h Hidden) Total() int { return len(h.Containers) }

// Containers lists the containers of every containerd namespace (or of
// Options.Namespace), without pod sandboxes and support containers
// unless opt.All is set. A container started with ctr or nerdctl on a
// Kubernetes node is listed: it is what an intruder leaves behind.
func (n *Node) Containers(opt ListOptions) (*Listing, error) {
	st, err := n.State()
	if err != nil {
		return nil, err
	}
	shown, hidden := selectContainers(st, n.opt.Namespace, opt)
	return &Listing{Shown: shown, Hidden: hidden}, nil
}

func selectContainers(st *containerd.State, ns string, o ListOptions) ([]containerd.Container, Hidden) {
	h := Hidden{Namespaces: map[string]int{}}
	support := o.Support
	if support == nil {
		support = DefaultSupportFilter()
	}
	var out []containerd.Container
	hide := func(c *containerd.Container, why string) {
		h.Containers = append(h.Containers, HiddenContainer{Container: c.Brief(), Reason: why})
	}
	for i := range st.Containers {
		c := &st.Containers[i]
		if ns != "" && c.Namespace != ns {
			h.Namespaces[c.Namespace]++
			hide(c, "namespace "+c.Namespace+" not selected")
			continue
		}
		if !o.All {
			if c.Kind == "sandbox" {
				h.Sandboxes++
				hide(c, "pod sandbox")
				continue
			}
			if ok, rule := support.Match(c); ok {
				h.Support++
				hide(c, "support container ("+rule+")")
				continue
			}
		}
		out = append(out, c.Brief())
	}
	return out, h
}
