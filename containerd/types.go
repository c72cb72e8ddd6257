// Package containerd reads containerd's on-disk state from a filesystem image:
// the metadata database (io.containerd.metadata.v1.bolt/meta.db), each
// snapshotter's metadata.db, the content store and the CRI plugin's status
// files. Nothing is executed or mounted; all bbolt access goes through
// package boltsafe.
//
// JSON field names of the exported records are snake_case and stable.
package containerd

import (
	"encoding/json"
	"io/fs"
	"time"
)

// State is everything read from one containerd root.
type State struct {
	Root         string            `json:"root"` // slash path relative to the filesystem root, e.g. var/lib/containerd
	MetaDB       DBInfo            `json:"meta_db"`
	Snapshotters []SnapshotterInfo `json:"snapshotters"`
	Namespaces   []Namespace       `json:"namespaces"`
	Containers   []Container       `json:"containers"`
	Images       []Image           `json:"images"`
	Snapshots    []Snapshot        `json:"snapshots"`
	Content      []Blob            `json:"content"`
	Warnings     []string          `json:"warnings,omitempty"`

	snapDBs  map[string]*SnapshotterDB // by snapshotter name
	metaSnap map[snapRef]*Snapshot     // meta.db snapshots by namespace/snapshotter/key
	chains   map[string]chainEntry     // image layer chain ids -> diff ids (gcfs)
	gcfsDir  string
	fsys     fs.FS
}

// DBInfo describes one bbolt file and how it was read.
type DBInfo struct {
	Path     string   `json:"path"`
	Size     int64    `json:"size"`
	PageSize int      `json:"page_size"`
	MetaPage int      `json:"meta_page"` // 0 or 1: the meta page whose tree was read
	TxID     uint64   `json:"txid"`      // its transaction id
	Schema   int64    `json:"schema_version,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
}

// SnapshotterInfo describes one snapshotter directory found under the root.
type SnapshotterInfo struct {
	Name      string  `json:"name"`            // overlayfs, native, gcfs, ...
	Dir       string  `json:"dir"`             // directory holding metadata.db
	DB        *DBInfo `json:"db,omitempty"`    // nil when metadata.db is absent or unreadable
	Error     string  `json:"error,omitempty"` // why it could not be read
	Snapshots int     `json:"snapshots"`
}

// Namespace is a containerd namespace.
type Namespace struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
}

// Container is one container record of meta.db, joined with what the CRI
// plugin left on disk.
type Container struct {
	Namespace      string            `json:"namespace"`
	ID             string            `json:"id"`
	Image          string            `json:"image"`
	Snapshotter    string            `json:"snapshotter"`
	SnapshotKey    string            `json:"snapshot_key"`
	Runtime        string            `json:"runtime"`
	RuntimeOptions *AnyValue         `json:"runtime_options,omitempty"`
	CreatedAt      time.Time         `json:"created_at,omitzero"`
	UpdatedAt      time.Time         `json:"updated_at,omitzero"`
	Labels         map[string]string `json:"labels"`

	// Kubernetes view, from CRI labels and metadata.
	Kind          string `json:"kind"` // container, sandbox, or "" when not created through CRI
	PodName       string `json:"pod_name"`
	PodNamespace  string `json:"pod_namespace"`
	PodUID        string `json:"pod_uid"`
	ContainerName string `json:"container_name"`
	SandboxID     string `json:"sandbox_id"`
	ImageRef      string `json:"image_ref,omitempty"` // image id (config digest) CRI resolved
	PodIP         string `json:"pod_ip,omitempty"`

	// Status from io.containerd.grpc.v1.cri/containers/<id>/status.
	Status     Status    `json:"status"` // created, running, exited, unknown
	PID        int       `json:"pid"`
	ExitCode   *int32    `json:"exit_code,omitempty"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	Reason     string    `json:"reason,omitempty"`
	Message    string    `json:"message,omitempty"`
	StatusFile string    `json:"status_file,omitempty"`
	// TaskDir is the runtime v2 bundle directory when it is still on disk:
	// the task had not been cleaned up (running, or the node stopped hard).
	TaskDir string `json:"task_dir,omitempty"`

	LogPath string  `json:"log_path,omitempty"`
	Mounts  []Mount `json:"mounts,omitempty"`

	Layers      []Layer `json:"layers"` // snapshot chain, top (writable) first
	LayersError string  `json:"layers_error,omitempty"`

	// Heavy fields, for `info container`.
	Spec        json.RawMessage     `json:"spec,omitempty"`
	CRIMetadata json.RawMessage     `json:"cri_metadata,omitempty"`
	Sandbox     *SandboxInfo        `json:"sandbox,omitempty"`
	Extensions  map[string]AnyValue `json:"extensions,omitempty"`
	// SandboxRecord is the sandbox store's record of this pod sandbox
	// (containerd 1.7's sandbox API, every 2.x node).
	SandboxRecord *SandboxRecord `json:"sandbox_record,omitempty"`

	// Docker Engine containers (read by package docker) take this shape
	// too: Engine is "docker" (empty for containerd's own), Namespace
	// "moby", Snapshotter the storage driver, SnapshotKey its mount id.
	Engine       string `json:"engine,omitempty"`
	DockerName   string `json:"docker_name,omitempty"` // the container's Docker name
	RestartCount int    `json:"restart_count,omitempty"`
	// Heavy: config.v2.json and hostconfig.json as on disk.
	DockerConfig     json.RawMessage `json:"docker_config,omitempty"`
	DockerHostConfig json.RawMessage `json:"docker_hostconfig,omitempty"`
	// containers/storage (Podman, CRI-O): a rootless store's user
	// namespace mapping, when known (owners are as stored on the disk).
	UserNamespace string `json:"user_namespace,omitempty"`
}

// Brief returns a copy without the spec, CRI metadata and extensions, for
// listings.
func (c Container) Brief() Container {
	c.Spec, c.CRIMetadata, c.Extensions, c.SandboxRecord = nil, nil, nil, nil
	c.DockerConfig, c.DockerHostConfig = nil, nil
	if c.Sandbox != nil {
		s := *c.Sandbox
		s.CNIResult = nil
		c.Sandbox = &s
	}
	return c
}

// Mount is a CRI mount request (host path into the container).
type Mount struct {
	ContainerPath  string `json:"container_path"`
	HostPath       string `json:"host_path"`
	Readonly       bool   `json:"readonly,omitempty"`
	Propagation    any    `json:"propagation,omitempty"`
	SelinuxRelabel bool   `json:"selinux_relabel,omitempty"`
}

// SandboxInfo holds what the CRI sandbox metadata says about a pod.
type SandboxInfo struct {
	Hostname       string          `json:"hostname,omitempty"`
	LogDirectory   string          `json:"log_directory,omitempty"`
	NetNSPath      string          `json:"netns_path,omitempty"`
	IP             string          `json:"ip,omitempty"`
	AdditionalIPs  []string        `json:"additional_ips,omitempty"`
	RuntimeHandler string          `json:"runtime_handler,omitempty"`
	CNIResult      json.RawMessage `json:"cni_result,omitempty"`
}

// Image is one image record of meta.db.
type Image struct {
	Namespace   string            `json:"namespace"`
	Name        string            `json:"name"`
	Target      Descriptor        `json:"target"`
	CreatedAt   time.Time         `json:"created_at,omitzero"`
	UpdatedAt   time.Time         `json:"updated_at,omitzero"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// From the manifest and config blobs, when they are in the content
	// store on disk.
	Config  string   `json:"config,omitempty"`   // config digest (the image id)
	Size    int64    `json:"size,omitempty"`     // manifest(s), config and compressed layers, as ctr images ls sums them
	DiffIDs []string `json:"diff_ids,omitempty"` // uncompressed layer digests, base first
	ChainID string   `json:"chain_id,omitempty"` // chain id of the top layer: the snapshot key of the image's rootfs
	// Engine is "docker" for Docker Engine's own image store (read by
	// package docker, Namespace "moby"), empty for containerd's.
	Engine string `json:"engine,omitempty"`
}

// Descriptor is an OCI content descriptor.
type Descriptor struct {
	MediaType string `json:"media_type"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

// Snapshot is one snapshot, from meta.db joined with its snapshotter's
// metadata.db (or from the snapshotter alone when meta.db does not name it).
type Snapshot struct {
	Namespace   string            `json:"namespace"`
	Snapshotter string            `json:"snapshotter"`
	Key         string            `json:"key"`              // key in meta.db: a chain id or a container id
	Name        string            `json:"name,omitempty"`   // key in the snapshotter's metadata.db: <ns>/<seq>/<key>
	Parent      string            `json:"parent,omitempty"` // parent key
	Kind        SnapshotKind      `json:"kind"`             // active, committed, view, unknown
	ID          uint64            `json:"id"`               // names the directory snapshots/<id>
	Path        string            `json:"path,omitempty"`   // that directory, relative to the filesystem root
	Size        int64             `json:"size"`             // bytes, recorded at commit (0 for active)
	Inodes      int64             `json:"inodes"`
	CreatedAt   time.Time         `json:"created_at,omitzero"`
	UpdatedAt   time.Time         `json:"updated_at,omitzero"`
	Labels      map[string]string `json:"labels,omitempty"`
	Children    []string          `json:"children,omitempty"`
	// Orphan: only in the snapshotter's metadata.db. Missing: named by
	// meta.db but absent from the snapshotter's metadata.db.
	Orphan  bool `json:"orphan,omitempty"`
	Missing bool `json:"missing,omitempty"`
}

// Blob is one content store record of meta.db.
type Blob struct {
	Namespace string            `json:"namespace"`
	Digest    string            `json:"digest"`
	Size      int64             `json:"size"`
	CreatedAt time.Time         `json:"created_at,omitzero"`
	UpdatedAt time.Time         `json:"updated_at,omitzero"`
	Labels    map[string]string `json:"labels,omitempty"`
	Path      string            `json:"path"`    // where the blob file belongs
	OnDisk    bool              `json:"on_disk"` // whether it is there
	DiskSize  int64             `json:"disk_size,omitempty"`
}

// Layer is one snapshot of a chain, as the layer merger needs it.
type Layer struct {
	SnapshotKey string       `json:"snapshot_key"`
	Name        string       `json:"name,omitempty"` // key in the snapshotter's metadata.db
	ID          uint64       `json:"id"`
	Kind        SnapshotKind `json:"kind"`
	// Path is the layer's directory relative to the filesystem root, e.g.
	// var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/10/fs.
	// Empty when the content is not on disk.
	Path        string `json:"path"`
	Snapshotter string `json:"snapshotter"`
	// gcfs: Streamed layers were served by image streaming and are not on
	// disk; Cached layers were found in the gcfs layer cache.
	Streamed bool   `json:"streamed,omitempty"`
	Cached   bool   `json:"cached,omitempty"`
	DiffID   string `json:"diff_id,omitempty"`
	Missing  bool   `json:"missing,omitempty"` // not in the snapshotter's metadata.db
	Note     string `json:"note,omitempty"`
	// UserXattr: the layer's overlay markers are user.overlay.* (a
	// rootless containers/storage store).
	UserXattr bool `json:"userxattr,omitempty"`
	// FuseOverlay: the layer was mounted by fuse-overlayfs (a
	// containers/storage store with a mount program), whose own markers
	// (.wh.NAME files, user.fuseoverlayfs.opaque) it may hold.
	FuseOverlay bool `json:"fuse_overlay,omitempty"`
	// Parent names the parent snapshot (in the snapshotter's metadata.db)
	// of a copying snapshotter's snapshot, the one it was copied from;
	// the chain holds the snapshot alone. See ParentLayer.
	Parent string `json:"parent,omitempty"`
}

// Snapshot kinds as stored by containerd's snapshotters (one byte).
const (
	kindUnknown   = 0
	kindView      = 1
	kindActive    = 2
	kindCommitted = 3
)

// SnapshotKind is a snapshot's kind.
type SnapshotKind string

// Snapshot kinds, as containerd names them.
const (
	SnapshotView      SnapshotKind = "view"
	SnapshotActive    SnapshotKind = "active"
	SnapshotCommitted SnapshotKind = "committed"
	SnapshotUnknown   SnapshotKind = "unknown"
)

func (k SnapshotKind) String() string { return string(k) }

func kindName(k uint64) SnapshotKind {
	switch k {
	case kindView:
		return SnapshotView
	case kindActive:
		return SnapshotActive
	case kindCommitted:
		return SnapshotCommitted
	}
	return SnapshotUnknown
}
