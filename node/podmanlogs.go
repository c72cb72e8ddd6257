package node

import (
	"fmt"
	"path"
	"strings"

	"github.com/ctrlift/ctrlift/containerd"
	"github.com/ctrlift/ctrlift/internal/overlaystore"
)

// podmanLogSet is the log of a Podman container: with the k8s-file
// driver (Podman's default without journald), conmon writes CRI-format
// records to the file the container's config names (logPath), by default
// userdata/ctr.log of its directory in the store. Drivers that keep
// nothing in the store are refused by name.
func (n *Node) podmanLogSet(c *containerd.Container) (*LogSet, error) {
	if n.cstorage == nil || n.runtime == nil || n.runtime.tree == nil {
		return nil, fmt.Errorf("%s: no Podman state read", Describe(c))
	}
	r, ok := n.cstorage.byID[c.Namespace+"/"+c.ID]
	if !ok || r.pc == nil {
		return nil, fmt.Errorf("%s: not a Podman container of this node", Describe(c))
	}
	if c.Kind == "sandbox" {
		return nil, fmt.Errorf("%s is a pod's infra container: it has no log of its own", Describe(c))
	}
	switch d := r.pc.LogDriver; d {
	case "", "k8s-file":
	case "journald":
		return nil, fmt.Errorf("%s: its log driver is journald: the log is in the host's journal (var/log/journal; journalctl --file), not in the store", Describe(c))
	default:
		return nil, fmt.Errorf("%s: its log driver %q keeps no log on the disk", Describe(c), overlaystore.Truncate(d))
	}
	set := &LogSet{PodName: c.PodName, Container: c.ContainerName, Containers: []containerd.Container{*c}}
	var tried []string
	for _, p := range podmanLogCandidates(r) {
		in, err := n.runtime.tree.Lookup(p)
		if err != nil {
			tried = append(tried, p)
			continue
		}
		if !in.IsRegular() {
			return nil, fmt.Errorf("%s: not a regular file (mode %#o)", p, in.Mode)
		}
		set.Dir = path.Dir(p)
		set.Files = []LogFile{{Path: p, ContainerID: c.ID, Size: in.Size}}
		return set, nil
	}
	if c.Status == containerd.StatusCreated {
		set.Dir = path.Dir(tried[len(tried)-1])
		// Never started: conmon never ran, the log is empty as podman
		// logs prints it.
		set.Files = []LogFile{}
		return set, nil
	}
	return nil, fmt.Errorf("%s: no log file on %s (looked for %s)", Describe(c), n.runtime.describe(), strings.Join(tried, ", "))
}

// podmanLogCandidates: the config's log path found on the filesystem
// read, then the default place in the store.
func podmanLogCandidates(r cstorageRef) []string {
	var out []string
	if lp := r.pc.LogPath; strings.HasPrefix(lp, "/") {
		m := storeHostMap(r.store)
		if rel, ok := underMount(path.Clean(lp), m.HostPrefix); ok && m.Known {
			out = append(out, path.Join(m.DiskPrefix, rel))
		}
	}
	def := path.Join(r.store.Root, "overlay-containers", r.c.ID, "userdata", "ctr.log")
	if len(out) == 0 || out[0] != def {
		out = append(out, def)
	}
	return out
}
