package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/ctrlift/ctrlift/containerd"
	"github.com/ctrlift/ctrlift/export"
)

// VolumeMode says which of a container's mounts an export or a diff
// includes at their container paths.
type VolumeMode int

const (
	// VolumesDisk (the default) includes the mounts whose data is on this
	// disk and belongs to the pod: kubelet volumes (emptyDir, configMap,
	// downwardAPI), CRI image volumes, and the files the runtime binds
	// (/etc/hosts, /etc/hostname, /etc/resolv.conf, termination logs).
	VolumesDisk VolumeMode = iota
	// VolumesNone gives the root filesystem alone, as the layers hold it.
	VolumesNone
	// VolumesAll also descends hostPath mounts whose source is on this
	// disk (a hostPath "/" puts the node in the tar).
	VolumesAll
)

func (m VolumeMode) String() string {
	switch m {
	case VolumesDisk:
		return "disk"
	case VolumesNone:
		return "none"
	case VolumesAll:
		return "all"
	}
	return fmt.Sprintf("VolumeMode(%d)", int(m))
}

// ParseVolumeMode reads "disk", "none" or "all".
func ParseVolumeMode(s string) (VolumeMode, error) {
	for _, m := range []VolumeMode{VolumesDisk, VolumesNone, VolumesAll} {
		if s == m.String() {
			return m, nil
		}
	}
	return 0, fmt.Errorf("unknown volume mode %q (want disk, none or all)", s)
}

// Volume is one mount of a container and where its data is.
type Volume struct {
	ContainerPath string `json:"container_path"`
	HostPath      string `json:"host_path"`
	Kind          string `json:"kind"`           // emptyDir, configMap, secret, image volume, file, hostPath, ...
	Path          string `json:"path,omitempty"` // on the filesystem read, when on this disk
	OnDisk        bool   `json:"on_disk"`        // its data is on this disk
	Note          string `json:"note,omitempty"` // why not, or what to know
	Included      bool   `json:"included"`       // in exports and diffs under the mode asked
	Readonly      bool   `json:"readonly,omitempty"`
}

// kubeletPlugins name the kubelet volume plugins' directories and whether
// their data lives on the node's disk.
var kubeletPlugins = map[string]struct {
	kind   string
	onDisk bool
	note   string
}{
	"kubernetes.io~empty-dir":    {"emptyDir", true, ""},
	"kubernetes.io~configmap":    {"configMap", true, ""},
	"kubernetes.io~downward-api": {"downwardAPI", true, ""},
	"kubernetes.io~git-repo":     {"gitRepo", true, ""},
	"kubernetes.io~secret":       {"secret", false, "kept in memory (tmpfs), never on the disk"},
	"kubernetes.io~projected":    {"projected", false, "kept in memory (tmpfs), never on the disk"},
	"kubernetes.io~csi":          {"csi", false, "a persistent volume, not on this disk"},
	"kubernetes.io~nfs":          {"nfs", false, "a network volume, not on this disk"},
	"kubernetes.io~aws-ebs":      {"awsElasticBlockStore", false, "a persistent volume, not on this disk"},
	"kubernetes.io~gce-pd":       {"gcePersistentDisk", false, "a persistent volume, not on this disk"},
	"kubernetes.io~azure-disk":   {"azureDisk", false, "a persistent volume, not on this disk"},
	"kubernetes.io~local-volume": {"local", false, "a local persistent volume, on its own disk"},
}

// Volumes lists the container's bind mounts (from its OCI spec and its
// CRI metadata), each classified and, when its data is on this disk,
// mapped onto the filesystem that holds the runtime state.
//
// A host path maps onto that filesystem through where the runtime root
// is: containerd's root is /var/lib/containerd on the host, so a root
// found at var/lib/containerd means the filesystem is mounted at / (COS's
// STATE holds /var at var/, EKS's XFS root), one at lib/containerd that
// it is mounted at /var (Talos EPHEMERAL, Bottlerocket's /local/var).
func (n *Node) Volumes(c *containerd.Container, mode VolumeMode) ([]Volume, error) {
	st, err := n.State()
	if err != nil {
		return nil, err
	}
	if c.Engine == EngineDocker {
		return n.dockerVolumes(c, mode)
	}
	if isCStorageEngine(c.Engine) {
		return n.cstorageVolumes(c, mode)
	}
	mountedAt, known := hostMountPoint(st.Root)
	byPath := map[string]*Volume{}
	add := func(dst, src string, ro bool) {
		dst = path.Clean("/" + dst)
		if src == "" || !strings.HasPrefix(src, "/") {
			return
		}
		v := byPath[dst]
		if v == nil {
			v = &Volume{ContainerPath: dst}
			byPath[dst] = v
		}
		v.HostPath, v.Readonly = path.Clean(src), v.Readonly || ro
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
		for _, m := range spec.Mounts {
			if m.Type == "bind" || hasOption(m.Options, "bind") || hasOption(m.Options, "rbind") {
				add(m.Destination, m.Source, hasOption(m.Options, "ro"))
			}
		}
	}
	for _, m := range c.Mounts {
		add(m.ContainerPath, m.HostPath, m.Readonly)
	}
	var out []Volume
	for _, v := range byPath {
		n.classify(v, st, mountedAt, known)
		switch {
		case mode == VolumesNone || !v.OnDisk:
		case v.Kind == "hostPath":
			v.Included = mode == VolumesAll
			if !v.Included {
				v.Note = "a hostPath: listed, not descended (volumes all includes it)"
			}
		default:
			v.Included = true
		}
		out = append(out, *v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ContainerPath < out[j].ContainerPath })
	return out, nil
}

func hasOption(opts []string, o string) bool {
	for _, x := range opts {
		if x == o {
			return true
		}
	}
	return false
}

// hostMountPoint is where on the host the filesystem holding the runtime
// root at root is mounted, when containerd's root was the default
// /var/lib/containerd.
func hostMountPoint(root string) (string, bool) {
	const hostRoot = "var/lib/containerd"
	switch {
	case root == hostRoot:
		return "/", true
	case root == ".":
		return "/" + hostRoot, true
	case strings.HasSuffix(hostRoot, "/"+root):
		return "/" + strings.TrimSuffix(hostRoot, "/"+root), true
	}
	return "", false
}

// classify says what kind of mount v is and where its data is.
func (n *Node) classify(v *Volume, st *containerd.State, mountedAt string, known bool) {
	hp := v.HostPath
	parts := strings.Split(strings.TrimPrefix(hp, "/"), "/")
	switch {
	case strings.HasPrefix(hp, "/var/lib/kubelet/pods/") && len(parts) >= 7 && parts[5] == "volumes":
		p, ok := kubeletPlugins[parts[6]]
		if !ok {
			p.kind, p.note = strings.TrimPrefix(parts[6], "kubernetes.io~"), "a volume plugin whose data is elsewhere"
		}
		v.Kind, v.OnDisk, v.Note = p.kind, p.onDisk, p.note
	case strings.HasPrefix(hp, "/var/lib/kubelet/pods/"):
		v.Kind, v.OnDisk = "file", true // etc-hosts, termination logs
	case strings.HasPrefix(hp, "/var/lib/containerd/io.containerd.grpc.v1.cri/containers/") && strings.Contains(hp, "/volumes/"):
		v.Kind, v.OnDisk = "image volume", true
	case strings.HasPrefix(hp, "/var/lib/containerd/"):
		v.Kind, v.OnDisk = "file", true // the sandbox's hostname, resolv.conf
	case strings.HasPrefix(hp, "/run/") || strings.HasPrefix(hp, "/var/run/") || strings.HasPrefix(hp, "/dev/") ||
		strings.HasPrefix(hp, "/proc/") || strings.HasPrefix(hp, "/sys/") || hp == "/run" || hp == "/dev":
		v.Kind, v.Note = "runtime", "in memory (tmpfs or a kernel filesystem), never on the disk"
	default:
		v.Kind, v.OnDisk = "hostPath", true
	}
	if !v.OnDisk {
		return
	}
	if !known {
		v.OnDisk, v.Note = false, fmt.Sprintf("where the filesystem holding %s was mounted on the host is unknown", st.Root)
		return
	}
	rel, ok := underMount(hp, mountedAt)
	if !ok {
		v.OnDisk, v.Note = false, fmt.Sprintf("not on the filesystem read (it holds %s and below)", mountedAt)
		return
	}
	if _, err := n.runtime.tree.Lookup(rel); err != nil {
		why := err.Error()
		if errors.Is(err, fs.ErrNotExist) {
			why = "not found on the disk"
		}
		v.OnDisk, v.Note = false, why
		return
	}
	v.Path = rel
}

// underMount maps a host path onto a filesystem mounted at mountedAt.
func underMount(hp, mountedAt string) (string, bool) {
	if mountedAt == "/" {
		return strings.TrimPrefix(hp, "/"), true
	}
	rest, ok := strings.CutPrefix(hp, mountedAt)
	if !ok || (rest != "" && !strings.HasPrefix(rest, "/")) {
		return "", false
	}
	if rest = strings.TrimPrefix(rest, "/"); rest == "" {
		return ".", true
	}
	return rest, true
}

// mounts turns the included volumes into the export's mounts.
func (n *Node) mounts(vs []Volume) []export.Mount {
	var out []export.Mount
	for _, v := range vs {
		if v.Included {
			out = append(out, export.Mount{Path: v.ContainerPath, FS: n.runtime.tree, Source: v.Path, Name: "volume " + v.Kind + " " + v.HostPath})
		}
	}
	return out
}
