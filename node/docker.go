package node

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/ctrlift/ctrlift/containerd"
	"github.com/ctrlift/ctrlift/cstorage"
	"github.com/ctrlift/ctrlift/docker"
	"github.com/ctrlift/ctrlift/vfs"
)

// Docker Engine containers are listed beside containerd's, in the shape
// of a containerd.Container: Engine "docker", Namespace DockerNamespace
// (the containerd namespace dockerd itself uses), Snapshotter the storage
// driver, SnapshotKey the driver's mount id, Runtime the OCI runtime.
const (
	EngineDocker    = "docker"
	DockerNamespace = "moby"
)

// dockerState is what was read from a Docker root.
type dockerState struct {
	st       *docker.State
	byID     map[string]*docker.Container
	hostRoot map[string]string // container id -> the Docker root's host path
	aufs     vfs.FS            // the aufs view of aufsOf, made when first needed
	aufsOf   vfs.FS
}

// findRoots looks for containerd's and Docker's roots on files; err (from
// containerd's search) only when neither is there. Options.RuntimeRoot
// names either.
func (n *Node) findRoots(files fs.FS) (croot, droot string, err error) {
	croot, err = containerd.FindRoot(files, n.opt.RuntimeRoot)
	if err == nil {
		if n.opt.RuntimeRoot == "" {
			droot, _ = docker.FindRoot(files, "")
			for _, other := range containerd.OtherRoots(files, croot) {
				n.warn(fmt.Sprintf("a second containerd root, %s, was not read (only %s was): its containers are not listed; name it as the runtime root to read them", other, croot))
			}
		}
		return croot, droot, nil
	}
	if d, derr := docker.FindRoot(files, n.opt.RuntimeRoot); derr == nil {
		return "", d, nil
	}
	if n.hasCStorage(files) {
		return "", "", nil // Podman or CRI-O alone: loadCStorage reads them
	}
	return "", "", err
}

// loadDocker reads the Docker root droot of src and appends its
// containers to st. A record of dockerd's own containerd namespace (moby)
// with the same id is replaced: the Docker record says more.
func (n *Node) loadDocker(st *containerd.State, src *source, droot string) error {
	ds, err := docker.Load(src.files, droot)
	if err != nil {
		return err
	}
	for _, w := range ds.Warnings {
		n.warn(w)
	}
	imgs, warns, err := docker.LoadImages(src.files, droot)
	if err != nil {
		n.warn(err.Error())
	}
	for _, w := range warns {
		n.warn(w)
	}
	markDockerImages(st) // Docker 29's containerd image store
	if len(ds.Containers) == 0 && len(imgs) == 0 {
		return nil // an empty root (a distribution's docker package, never used) changes nothing
	}
	st.Images = append(st.Images, dockerImages(imgs)...)
	d := &dockerState{st: ds, byID: map[string]*docker.Container{}, hostRoot: map[string]string{}}
	for i := range ds.Containers {
		d.byID[ds.Containers[i].ID] = &ds.Containers[i]
	}
	kept := st.Containers[:0:0]
	for _, c := range st.Containers {
		if c.Namespace == DockerNamespace && d.byID[c.ID] != nil {
			continue
		}
		kept = append(kept, c)
	}
	keys := dockerSnapshotKeys(st)
	for i := range ds.Containers {
		dc := &ds.Containers[i]
		d.hostRoot[dc.ID] = dockerHostRoot(dc)
		c := fromDocker(dc, d.hostRoot[dc.ID])
		dockerSnapshotChain(st, keys, &c, dc) // layers in containerd's snapshotter
		kept = append(kept, c)
	}
	st.Containers = kept
	n.docker = d
	return nil
}

// dockerImages gives Docker's images the shape of containerd's, one row
// per tag (per digest reference when untagged, the id when neither), as
// docker image ls: build steps (untagged parents) left out.
func dockerImages(imgs []docker.Image) []containerd.Image {
	var out []containerd.Image
	for _, img := range imgs {
		if img.Intermediate {
			continue
		}
		names := img.Tags
		if len(names) == 0 {
			names = img.Digests
		}
		if len(names) == 0 {
			names = []string{img.ID}
		}
		for _, name := range names {
			ci := containerd.Image{Namespace: DockerNamespace, Name: name, Engine: EngineDocker,
				Target:    containerd.Descriptor{MediaType: dockerImageConfigType, Digest: img.ID, Size: img.ConfigSize},
				CreatedAt: img.Created, Labels: img.Labels, Config: img.ID, DiffIDs: img.DiffIDs, ChainID: img.ChainID}
			if img.Size > 0 {
				ci.Size = img.Size
			}
			out = append(out, ci)
		}
	}
	return out
}

// dockerImageConfigType: Docker's image store is keyed by the config.
const dockerImageConfigType = "application/vnd.docker.container.image.v1+json"

// dockerHostRoot is where the Docker root was on the host, from the
// paths the daemon wrote into the container's config (its data-root),
// /var/lib/docker when none says.
func dockerHostRoot(c *docker.Container) string {
	for _, p := range []string{c.HostnamePath, c.HostsPath, c.ResolvConfPath, c.LogPath} {
		if i := strings.Index(p, "/containers/"+c.ID+"/"); i > 0 && strings.HasPrefix(p, "/") {
			return path.Clean(p[:i])
		}
	}
	return "/var/lib/docker"
}

// Kubernetes labels dockershim set on the containers it created.
const (
	k8sPodNamespace  = "io.kubernetes.pod.namespace"
	k8sPodName       = "io.kubernetes.pod.name"
	k8sPodUID        = "io.kubernetes.pod.uid"
	k8sContainerName = "io.kubernetes.container.name"
	k8sSandboxID     = "io.kubernetes.sandbox.id"
	k8sDockerType    = "io.kubernetes.docker.type"
)

// fromDocker gives a Docker container the shape of containerd's.
func fromDocker(d *docker.Container, hostRoot string) containerd.Container {
	c := containerd.Container{
		Namespace:        DockerNamespace,
		ID:               d.ID,
		Image:            d.Image,
		ImageRef:         d.ImageID,
		Snapshotter:      d.Driver,
		SnapshotKey:      d.MountID,
		Runtime:          d.Runtime,
		CreatedAt:        d.Created,
		Labels:           d.Labels,
		ContainerName:    d.Name,
		StartedAt:        d.StartedAt,
		FinishedAt:       d.FinishedAt,
		LogPath:          d.LogPath,
		Reason:           d.Error,
		Engine:           EngineDocker,
		DockerName:       d.Name,
		RestartCount:     d.RestartCount,
		DockerConfig:     d.Config,
		DockerHostConfig: d.HostConfig,
		LayersError:      d.LayersError,
	}
	if c.Labels == nil {
		c.Labels = map[string]string{}
	}
	if l := d.Labels; l[k8sPodName] != "" {
		c.PodNamespace, c.PodName, c.PodUID = l[k8sPodNamespace], l[k8sPodName], l[k8sPodUID]
		c.SandboxID = l[k8sSandboxID]
		switch l[k8sDockerType] {
		case "podsandbox":
			c.Kind = "sandbox"
			c.ContainerName = ""
			c.PodIP = d.IPAddress
		default:
			c.Kind = "container"
			if n := l[k8sContainerName]; n != "" {
				c.ContainerName = n
			}
		}
	}
	switch {
	case d.Running || d.Restarting:
		c.Status, c.PID = containerd.StatusRunning, d.PID
	case d.StartedAt.IsZero() && !d.StartedBefore && d.FinishedAt.IsZero():
		c.Status = containerd.StatusCreated
		if d.ExitCode != 0 { // it failed to start (e.g. 127: no such command)
			code := int32(d.ExitCode)
			c.ExitCode = &code
		}
	default:
		c.Status = containerd.StatusExited
		code := int32(d.ExitCode)
		c.ExitCode = &code
	}
	for _, m := range d.Mounts {
		hp := m.Source
		if m.Type == "volume" && m.Name != "" && (m.Driver == "" || m.Driver == "local") {
			hp = path.Join(hostRoot, "volumes", m.Name, "_data")
		}
		c.Mounts = append(c.Mounts, containerd.Mount{ContainerPath: m.Destination, HostPath: hp, Readonly: !m.RW, Propagation: propagation(m.Propagation)})
	}
	for i, l := range d.Layers {
		kind := containerd.SnapshotCommitted
		if i == 0 {
			kind = containerd.SnapshotActive
		}
		c.Layers = append(c.Layers, containerd.Layer{SnapshotKey: l.ID, Kind: kind, Path: l.Dir, Snapshotter: l.Driver, Note: l.Kind + " layer"})
	}
	if c.Layers == nil {
		c.Layers = []containerd.Layer{}
	}
	return c
}

func propagation(p string) any {
	if p == "" {
		return nil
	}
	return p
}

// layerName names a layer of a chain in messages and records:
// snapshotter/id for containerd's, driver/layer-id for Docker's.
func layerName(l containerd.Layer) string {
	if l.ID == 0 && l.SnapshotKey != "" && l.Note != "" && dockerDriver(l.Snapshotter) {
		return l.Snapshotter + "/" + l.SnapshotKey
	}
	return fmt.Sprintf("%s/%d", l.Snapshotter, l.ID)
}

func dockerDriver(s string) bool { return s == "overlay2" || s == "overlay" || s == "aufs" }

// layerFS is the filesystem a layer of a chain is read through: Docker's
// aufs layers through the aufs view (whiteouts as .wh. names),
// fuse-overlayfs's through its view, the others as they are.
func (n *Node) layerFS(src *source, l containerd.Layer) vfs.FS {
	if l.FuseOverlay {
		return cstorage.NewFuseOverlayFS(src.tree, l.UserXattr)
	}
	if n.docker == nil || l.Snapshotter != "aufs" || l.ID != 0 || l.Note == "" {
		return src.tree
	}
	if n.docker.aufs == nil || n.docker.aufsOf != src.tree {
		n.docker.aufs, n.docker.aufsOf = docker.NewAufsFS(src.tree), src.tree
	}
	return n.docker.aufs
}

// HasDocker says whether the runtime state read includes Docker
// containers.
func (n *Node) HasDocker() bool {
	if _, err := n.State(); err != nil {
		return false
	}
	return n.docker != nil
}

// DockerRoot is the Docker root read ("" when none).
func (n *Node) DockerRoot() string {
	if n.docker == nil {
		return ""
	}
	return n.docker.st.Root
}

// dockerVolumes lists a Docker container's mounts and the files the
// daemon binds into it, each mapped onto the filesystem read: named
// volumes of the local driver are <root>/volumes/NAME/_data, bind sources
// are host paths mapped through where the Docker root was on the host.
func (n *Node) dockerVolumes(c *containerd.Container, mode VolumeMode) ([]Volume, error) {
	d := n.docker
	dc := d.byID[c.ID]
	if dc == nil {
		return nil, fmt.Errorf("container %s: not a Docker container of this node", c.ID)
	}
	hostRoot := d.hostRoot[c.ID]
	mountedAt, known := dockerMountPoint(d.st.Root, hostRoot)
	var out []Volume
	seen := map[string]bool{}
	for _, m := range dc.Mounts {
		dst := path.Clean("/" + m.Destination)
		seen[dst] = true
		v := Volume{ContainerPath: dst, HostPath: m.Source, Readonly: !m.RW}
		switch m.Type {
		case "volume":
			v.Kind = "volume"
			if m.Driver != "" && m.Driver != "local" {
				v.Note = "a volume of driver " + m.Driver + ", not on this disk"
				break
			}
			if !validVolumeName(m.Name) {
				v.Note = fmt.Sprintf("volume name %q is not a name", m.Name)
				break
			}
			v.HostPath = path.Join(hostRoot, "volumes", m.Name, "_data")
			n.dockerOnDisk(&v, path.Join(d.st.Root, "volumes", m.Name, "_data"))
		case "bind":
			v.Kind = "bind"
			n.dockerHostPath(&v, mountedAt, known)
			if v.OnDisk {
				v.Note = "a bind mount of the host: listed, not descended (volumes all includes it)"
			}
		case "tmpfs":
			v.Kind, v.Note = "tmpfs", "in memory, never on the disk"
		default:
			v.Kind, v.Note = m.Type, "not read"
		}
		out = append(out, v)
	}
	for _, f := range []struct{ dst, src string }{
		{"/etc/hostname", dc.HostnamePath}, {"/etc/hosts", dc.HostsPath}, {"/etc/resolv.conf", dc.ResolvConfPath},
	} {
		if f.src == "" || seen[f.dst] {
			continue
		}
		v := Volume{ContainerPath: f.dst, HostPath: f.src, Kind: "file"}
		rel, ok := strings.CutPrefix(path.Clean(f.src), hostRoot+"/containers/"+c.ID+"/")
		if ok && !strings.Contains(rel, "/") && rel != ".." {
			n.dockerOnDisk(&v, path.Join(d.st.Root, "containers", c.ID, rel))
		} else {
			n.dockerHostPath(&v, mountedAt, known)
		}
		out = append(out, v)
	}
	for i := range out {
		v := &out[i]
		switch {
		case mode == VolumesNone || !v.OnDisk:
		case v.Kind == "bind":
			v.Included = mode == VolumesAll
			if v.Included {
				v.Note = ""
			}
		default:
			v.Included = true
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ContainerPath < out[j].ContainerPath })
	return out, nil
}

func validVolumeName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\\\x00")
}

// dockerOnDisk checks that rel is on the filesystem read.
func (n *Node) dockerOnDisk(v *Volume, rel string) {
	if _, err := n.runtime.tree.Lookup(rel); err != nil {
		v.Note = err.Error()
		if errors.Is(err, fs.ErrNotExist) {
			v.Note = "not found on the disk"
		}
		return
	}
	v.Path, v.OnDisk = rel, true
}

// dockerHostPath maps a host path onto the filesystem read.
func (n *Node) dockerHostPath(v *Volume, mountedAt string, known bool) {
	if !known {
		v.Note = "where the filesystem holding the Docker root was mounted on the host is unknown"
		return
	}
	rel, ok := underMount(path.Clean(v.HostPath), mountedAt)
	if !ok {
		v.Note = fmt.Sprintf("not on the filesystem read (it holds %s and below)", mountedAt)
		return
	}
	n.dockerOnDisk(v, rel)
}

// dockerMountPoint is where on the host the filesystem holding the
// Docker root at root was mounted, the root having been hostRoot there.
func dockerMountPoint(root, hostRoot string) (string, bool) {
	switch {
	case root == ".":
		return hostRoot, true
	case hostRoot == "/"+root:
		return "/", true
	case strings.HasSuffix(hostRoot, "/"+root):
		return strings.TrimSuffix(hostRoot, "/"+root), true
	}
	return "", false
}
