package node

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/ctrlift/ctrlift/containerd"
	"github.com/ctrlift/ctrlift/cstorage"
)

// containers/storage containers (Podman's and CRI-O's) are listed beside
// containerd's and Docker's in the shape of a containerd.Container: Engine
// says whose they are, Namespace "podman" (rootful), "podman@USER"
// (a rootless store) or "cri-o", Snapshotter the graph driver (overlay),
// SnapshotKey the container's layer id.
const (
	EnginePodman   = "podman"
	EngineCRIO     = "cri-o"
	EngineCStorage = "containers-storage" // in a store, known to neither Podman nor CRI-O (Buildah's working containers)

	PodmanNamespace = "podman"
	CRIONamespace   = "cri-o"
)

// cstorageState is what was read from the containers/storage stores.
type cstorageState struct {
	stores []*cstorage.Store
	byID   map[string]cstorageRef // by containerd.Container key (namespace/id)
}

type cstorageRef struct {
	store *cstorage.Store
	c     *cstorage.Container
	pc    *cstorage.PodmanContainer // nil for CRI-O's and others
}

// hasCStorage says whether files holds a containers/storage store (at
// Options.RuntimeRoot when set).
func (n *Node) hasCStorage(files fs.FS) bool {
	refs, err := cstorage.FindStores(files, n.opt.RuntimeRoot)
	return err == nil && len(refs) > 0
}

// loadCStorage reads every containers/storage store on src (only the one
// at Options.RuntimeRoot when that is a store) and appends their
// containers to st.
func (n *Node) loadCStorage(st *containerd.State, src *source) error {
	override := n.opt.RuntimeRoot
	if override != "" && !cstorage.IsStore(src.files, CleanPath(override)) {
		return nil // the root given is containerd's or Docker's
	}
	refs, err := cstorage.FindStores(src.files, override)
	if err != nil || len(refs) == 0 {
		return err
	}
	cs := &cstorageState{byID: map[string]cstorageRef{}}
	for _, ref := range refs {
		s, err := cstorage.Load(src.files, ref)
		if err != nil {
			n.warn(err.Error())
			continue
		}
		for _, w := range s.Warnings {
			n.warn(w)
		}
		cs.stores = append(cs.stores, s)
		st.Images = append(st.Images, cstorageImages(s)...)
		for i := range s.Containers {
			c := &s.Containers[i]
			r := cstorageRef{store: s, c: c}
			if s.Podman != nil {
				r.pc = s.Podman.Containers[c.ID]
			}
			cc := fromCStorage(r)
			cs.byID[cc.Namespace+"/"+cc.ID] = r
			st.Containers = append(st.Containers, cc)
		}
	}
	if len(cs.stores) > 0 {
		n.cstorage = cs
	}
	return nil
}

// storeNamespace is the namespace of a store's Podman containers.
func storeNamespace(s *cstorage.Store) string {
	if s.Kind == cstorage.KindRootless && s.User != "" {
		return PodmanNamespace + "@" + s.User
	}
	return PodmanNamespace
}

// fromCStorage gives a containers/storage container the shape of
// containerd's.
func fromCStorage(r cstorageRef) containerd.Container {
	s, d := r.store, r.c
	c := containerd.Container{
		Namespace:   storeNamespace(s),
		ID:          d.ID,
		Image:       d.ImageName,
		ImageRef:    d.ImageID,
		Snapshotter: s.Driver,
		SnapshotKey: d.LayerID,
		CreatedAt:   d.Created,
		Labels:      map[string]string{},
		Engine:      EngineCStorage,
		LayersError: d.ChainError,
		Status:      containerd.StatusUnknown,
	}
	if len(d.Names) > 0 {
		c.ContainerName = d.Names[0]
	}
	if s.IDMap != nil {
		c.UserNamespace = s.IDMap.String()
	}
	switch {
	case r.pc != nil:
		p := r.pc
		c.Engine, c.Kind, c.ContainerName, c.Runtime, c.LogPath = EnginePodman, "container", p.Name, p.Runtime, p.LogPath
		if p.ImageName != "" {
			c.Image = p.ImageName
		}
		if !p.Created.IsZero() {
			c.CreatedAt = p.Created
		}
		for k, v := range p.Labels {
			c.Labels[k] = v
		}
		if pod := s.Podman.Pods[p.PodID]; pod != nil {
			c.PodName, c.SandboxID = pod.Name, pod.InfraID
		} else if p.PodID != "" {
			c.PodName = p.PodID
		}
		if p.Infra {
			c.Kind = "sandbox" // the pod's infra container, hidden like a pod sandbox
		}
		c.StartedAt, c.FinishedAt, c.ExitCode, c.Spec = p.Started, p.Finished, p.ExitCode, p.Spec
		switch p.Status {
		case cstorage.StatusConfigured, cstorage.StatusCreated:
			c.Status, c.ExitCode = containerd.StatusCreated, nil
		case cstorage.StatusRunning, cstorage.StatusPaused, cstorage.StatusStopping:
			c.Status, c.PID = containerd.StatusRunning, p.PID
		case cstorage.StatusExited, cstorage.StatusStopped:
			c.Status = containerd.StatusExited
		}
		for _, v := range p.Volumes {
			c.Mounts = append(c.Mounts, containerd.Mount{ContainerPath: v.Dest, HostPath: podmanVolumePath(s, v.Name)})
		}
	case d.CRIO != nil:
		o := d.CRIO
		c.Engine, c.Namespace, c.Kind = EngineCRIO, CRIONamespace, o.Kind
		if c.Kind == "infra" {
			c.Kind = "sandbox"
		}
		c.PodName, c.PodNamespace, c.PodUID, c.SandboxID, c.LogPath = o.PodName, o.PodNamespace, o.PodUID, o.SandboxID, o.LogPath
		c.ContainerName = o.ContainerName
		if c.Kind == "sandbox" {
			c.ContainerName = ""
		}
		if o.Image != "" {
			c.Image = o.Image
		}
		if !o.Created.IsZero() {
			c.CreatedAt = o.Created
		}
		for k, v := range o.Labels {
			c.Labels[k] = v
		}
		c.Spec = o.Spec
		for _, m := range o.Mounts {
			c.Mounts = append(c.Mounts, containerd.Mount{ContainerPath: m.ContainerPath, HostPath: m.HostPath, Readonly: m.Readonly})
		}
	}
	for i, l := range d.Chain {
		kind := containerd.SnapshotCommitted
		if i == 0 {
			kind = containerd.SnapshotActive
		}
		c.Layers = append(c.Layers, containerd.Layer{SnapshotKey: l.ID, Kind: kind, Path: l.Dir, Snapshotter: s.Driver,
			Note: l.Kind + " layer", UserXattr: s.Kind == cstorage.KindRootless, FuseOverlay: s.MountProgram})
	}
	if c.Layers == nil {
		c.Layers = []containerd.Layer{}
	}
	return c
}

// podmanVolumePath is the host path of a named volume's data: what the
// volume's record says, else the store's volumes/NAME/_data.
func podmanVolumePath(s *cstorage.Store, name string) string {
	if v := s.Podman.Volumes[name]; v != nil && v.MountPoint != "" {
		return v.MountPoint
	}
	return path.Join(storeHostRoot(s), "volumes", name, "_data")
}

// storeHostRoot is where the store was on its host: Podman's record of
// its graph root, else the store's own path from the filesystem root.
func storeHostRoot(s *cstorage.Store) string {
	if s.Podman != nil {
		if g := s.Podman.RuntimeConfig["graph-root"]; strings.HasPrefix(g, "/") {
			return path.Clean(g)
		}
	}
	if strings.HasPrefix(s.Root, "ostree/deploy/") {
		return "/var/lib/containers/storage"
	}
	return path.Clean("/" + s.Root)
}

// isCStorageEngine says whether a container came from a
// containers/storage store.
func isCStorageEngine(engine string) bool {
	return engine == EnginePodman || engine == EngineCRIO || engine == EngineCStorage
}

// HasCStorage says whether the runtime state read includes
// containers/storage stores (Podman, CRI-O).
func (n *Node) HasCStorage() bool {
	if _, err := n.State(); err != nil {
		return false
	}
	return n.cstorage != nil
}

// CStorageStores are the containers/storage stores read.
func (n *Node) CStorageStores() []*cstorage.Store {
	if _, err := n.State(); err != nil || n.cstorage == nil {
		return nil
	}
	return n.cstorage.stores
}

// RuntimeOf names the runtime of a container as the RUNTIME column and
// runtime-qualified references do: containerd, docker, podman, cri-o.
func RuntimeOf(c *containerd.Container) string {
	if c.Engine == "" {
		return RuntimeContainerd.String()
	}
	return c.Engine
}

// PodLabel names a container's pod in listings: K8SNS/POD, or POD alone
// for a Podman pod (they have no namespace); "" outside pods.
func PodLabel(c *containerd.Container) string {
	switch {
	case c.PodName == "":
		return ""
	case c.PodNamespace == "" && c.Engine == EnginePodman:
		return c.PodName
	}
	return c.PodNamespace + "/" + c.PodName
}

// runtimeMatches says whether a runtime-qualified reference's runtime
// selects c.
func runtimeMatches(rt Runtime, c *containerd.Container) bool {
	switch rt {
	case RuntimeDocker:
		return c.Engine == EngineDocker
	case RuntimeCRIO:
		return c.Engine == EngineCRIO
	}
	return c.Engine == ""
}

// holdsCRIO says whether the state read has CRI-O containers.
func (n *Node) holdsCRIO() bool {
	if n.state == nil {
		return false
	}
	for i := range n.state.Containers {
		if n.state.Containers[i].Engine == EngineCRIO {
			return true
		}
	}
	return false
}

// stateHeld says whose state the node's input holds, for messages:
// "containerd state only", "Docker and Podman state only", ...
func (n *Node) stateHeld() string {
	var held []string
	if n.state == nil || n.state.MetaDB.Path != "" {
		held = append(held, "containerd")
	}
	if n.docker != nil {
		held = append(held, "Docker")
	}
	if n.cstorage != nil {
		seen := map[string]bool{}
		for _, c := range n.state.Containers {
			if isCStorageEngine(c.Engine) && !seen[c.Engine] {
				seen[c.Engine] = true
				held = append(held, map[string]string{EnginePodman: "Podman", EngineCRIO: "CRI-O", EngineCStorage: "containers/storage"}[c.Engine])
			}
		}
	}
	switch len(held) {
	case 0:
		return "no container state"
	case 1:
		return held[0] + " state only"
	}
	return strings.Join(held[:len(held)-1], ", ") + " and " + held[len(held)-1] + " state only"
}

// cstorageVolumes lists a Podman or CRI-O container's mounts, each mapped
// onto the filesystem read: Podman's named volumes are the store's
// volumes/NAME/_data, bind sources are host paths mapped through where the
// store was on the host.
func (n *Node) cstorageVolumes(c *containerd.Container, mode VolumeMode) ([]Volume, error) {
	var r cstorageRef
	if n.cstorage != nil {
		r = n.cstorage.byID[c.Namespace+"/"+c.ID]
	}
	if r.c == nil {
		return nil, fmt.Errorf("container %s: not a containers/storage container of this node", c.ID)
	}
	s := r.store
	m := storeHostMap(s)
	byDst := map[string]*Volume{}
	var order []string
	add := func(v Volume) *Volume {
		v.ContainerPath = path.Clean("/" + v.ContainerPath)
		if old := byDst[v.ContainerPath]; old != nil {
			return old
		}
		byDst[v.ContainerPath] = &v
		order = append(order, v.ContainerPath)
		return byDst[v.ContainerPath]
	}
	own := map[string]bool{} // host paths Podman bound itself
	if r.pc != nil {
		for _, v := range r.pc.Volumes {
			vol := Volume{ContainerPath: v.Dest, Kind: "volume", HostPath: podmanVolumePath(s, v.Name), Readonly: hasOption(v.Options, "ro")}
			if !validVolumeName(v.Name) {
				vol.Note = fmt.Sprintf("volume name %q is not a name", v.Name)
			} else if vr := s.Podman.Volumes[v.Name]; vr != nil && vr.Driver != "" && vr.Driver != "local" {
				vol.Note = "a volume of driver " + vr.Driver + ", not on this disk"
			} else {
				n.dockerOnDisk(&vol, path.Join(s.Root, "volumes", v.Name, "_data"))
			}
			add(vol)
		}
		for dst, src := range r.pc.BindMounts {
			own[path.Clean(src)] = true
			v := Volume{ContainerPath: dst, HostPath: src, Kind: "file"}
			switch {
			case dst == "/dev/shm":
				v.Kind, v.Note = "tmpfs", "in memory, never on the disk"
			default:
				n.mapHostPath(&v, m)
			}
			add(v)
		}
	}
	if r.c.CRIO != nil {
		for _, cm := range r.c.CRIO.Mounts {
			v := add(Volume{ContainerPath: cm.ContainerPath, HostPath: path.Clean(cm.HostPath), Readonly: cm.Readonly})
			n.classifyCStorage(v, m)
		}
	}
	var spec struct {
		Mounts []struct {
			Destination string   `json:"destination"`
			Type        string   `json:"type"`
			Source      string   `json:"source"`
			Options     []string `json:"options"`
		} `json:"mounts"`
	}
	if len(c.Spec) > 0 && json.Unmarshal(c.Spec, &spec) == nil {
		for _, sm := range spec.Mounts {
			if !(sm.Type == "bind" || hasOption(sm.Options, "bind") || hasOption(sm.Options, "rbind")) || !strings.HasPrefix(sm.Source, "/") {
				continue
			}
			if own[path.Clean(sm.Source)] || byDst[path.Clean("/"+sm.Destination)] != nil {
				continue
			}
			v := add(Volume{ContainerPath: sm.Destination, HostPath: path.Clean(sm.Source), Readonly: hasOption(sm.Options, "ro")})
			n.classifyCStorage(v, m)
		}
	}
	var out []Volume
	for _, dst := range order {
		v := byDst[dst]
		switch {
		case mode == VolumesNone || !v.OnDisk:
		case v.Kind == "bind" || v.Kind == "hostPath":
			v.Included = mode == VolumesAll
			if !v.Included {
				v.Note = "a bind mount of the host: listed, not descended (volumes all includes it)"
			}
		default:
			v.Included = true
		}
		out = append(out, *v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ContainerPath < out[j].ContainerPath })
	return out, nil
}

// hostMap maps host paths onto the filesystem read: HostPrefix on the
// host is DiskPrefix on the disk.
type hostMap struct {
	HostPrefix, DiskPrefix string
	Known                  bool
}

// storeHostMap is how a store's host paths map onto the filesystem read:
// through where the store was on its host, or, for an ostree deployment's
// store (RHCOS), the deployment's var/ as the host's /var.
func storeHostMap(s *cstorage.Store) hostMap {
	if rest, ok := strings.CutPrefix(s.Root, "ostree/deploy/"); ok {
		if osName, tail, _ := strings.Cut(rest, "/"); strings.HasPrefix(tail, "var/") {
			return hostMap{HostPrefix: "/var", DiskPrefix: path.Join("ostree/deploy", osName, "var"), Known: true}
		}
	}
	mountedAt, known := dockerMountPoint(s.Root, storeHostRoot(s))
	return hostMap{HostPrefix: mountedAt, DiskPrefix: ".", Known: known}
}

// mapHostPath finds a host path on the filesystem read.
func (n *Node) mapHostPath(v *Volume, m hostMap) {
	if !m.Known {
		v.Note = "where the filesystem holding the store was mounted on the host is unknown"
		return
	}
	rel, ok := underMount(path.Clean(v.HostPath), m.HostPrefix)
	if !ok {
		v.Note = fmt.Sprintf("not on the filesystem read (it holds %s and below)", m.HostPrefix)
		return
	}
	n.dockerOnDisk(v, path.Join(m.DiskPrefix, rel))
}

// classifyCStorage classifies a bind mount of a Podman or CRI-O container:
// kubelet's volumes as for containerd (CRI-O), in-memory filesystems, and
// any other host path as a bind.
func (n *Node) classifyCStorage(v *Volume, m hostMap) {
	hp := v.HostPath
	switch {
	case strings.HasPrefix(hp, "/var/lib/kubelet/pods/"):
		// The kind as for containerd's; where it is, through the store's map.
		n.classify(v, &containerd.State{Root: "the store"}, "", false)
		if strings.HasPrefix(v.Note, "where the filesystem holding") {
			v.Note = ""
			n.mapHostPath(v, m)
		}
		return
	case strings.HasPrefix(hp, "/run/") || strings.HasPrefix(hp, "/var/run/") || strings.HasPrefix(hp, "/dev/") ||
		strings.HasPrefix(hp, "/proc/") || strings.HasPrefix(hp, "/sys/") || hp == "/run" || hp == "/dev":
		v.Kind, v.Note = "runtime", "in memory (tmpfs or a kernel filesystem), never on the disk"
		return
	}
	v.Kind = "bind"
	n.mapHostPath(v, m)
}
