package containerd

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ctrlift/ctrlift/containerd/boltsafe"
)

// Extension names the CRI plugin stores in container records.
const (
	extContainerMetadata = "io.cri-containerd.container.metadata"
	extSandboxMetadata   = "io.cri-containerd.sandbox.metadata"

	labelKind          = "io.cri-containerd.kind"
	labelPodName       = "io.kubernetes.pod.name"
	labelPodNamespace  = "io.kubernetes.pod.namespace"
	labelPodUID        = "io.kubernetes.pod.uid"
	labelContainerName = "io.kubernetes.container.name"
)

// MetaDB is the decoded content of containerd's meta.db.
type MetaDB struct {
	Info       boltsafe.Info
	Schema     int64 // v1/version (3 in containerd 1.x and 2.x)
	Namespaces []Namespace
	Containers []Container
	Images     []Image
	Snapshots  []Snapshot // meta.db's side only: no id, kind or directory
	Content    []Blob     // Path and OnDisk not set
	Sandboxes  []SandboxRecord
	Warnings   []string
}

// ErrNoV1 is returned for a bbolt file without containerd's "v1" bucket.
var ErrNoV1 = errors.New("no v1 bucket: not a containerd metadata database")

// ReadMetaDB decodes meta.db from its bytes.
func ReadMetaDB(data []byte) (*MetaDB, error) {
	db, err := boltsafe.Read(data)
	if err != nil {
		return nil, err
	}
	return DecodeMetaDB(db)
}

// DecodeMetaDB decodes an already read meta.db. Fields that do not decode
// are left empty and reported in Warnings.
func DecodeMetaDB(db *boltsafe.DB) (*MetaDB, error) {
	v1 := db.Root.Bucket("v1")
	if v1 == nil {
		return nil, ErrNoV1
	}
	m := &MetaDB{Info: db.Info}
	d := decoder{warnings: &m.Warnings}
	m.Schema, _ = d.varint(v1, "version", "v1")
	for _, ns := range v1.Buckets() {
		nb := v1.Bucket(ns)
		m.Namespaces = append(m.Namespaces, Namespace{Name: ns, Labels: nb.Bucket("labels").Strings()})
		for _, id := range nb.Bucket("containers").Buckets() {
			m.Containers = append(m.Containers, d.container(ns, id, nb.Bucket("containers", id)))
		}
		for _, name := range nb.Bucket("images").Buckets() {
			m.Images = append(m.Images, d.image(ns, name, nb.Bucket("images", name)))
		}
		snaps := nb.Bucket("snapshots")
		for _, sn := range snaps.Buckets() {
			for _, key := range snaps.Bucket(sn).Buckets() {
				m.Snapshots = append(m.Snapshots, d.metaSnapshot(ns, sn, key, snaps.Bucket(sn, key)))
			}
		}
		blobs := nb.Bucket("content", "blob")
		for _, dg := range blobs.Buckets() {
			b := blobs.Bucket(dg)
			where := fmt.Sprintf("v1/%s/content/blob/%s", ns, dg)
			size, _ := d.varint(b, "size", where)
			m.Content = append(m.Content, Blob{
				Namespace: ns, Digest: dg, Size: size,
				CreatedAt: d.timeAt(b, "createdat", where), UpdatedAt: d.timeAt(b, "updatedat", where),
				Labels: b.Bucket("labels").Strings(),
			})
		}
	}
	m.Sandboxes = d.sandboxStores(db.Root)
	d.joinSandboxes(m, m.Sandboxes)
	return m, nil
}

func (d decoder) container(ns, id string, b *boltsafe.Bucket) Container {
	where := fmt.Sprintf("v1/%s/containers/%s", ns, id)
	c := Container{
		Namespace:   ns,
		ID:          id,
		Image:       string(b.Get("image")),
		Snapshotter: string(b.Get("snapshotter")),
		SnapshotKey: string(b.Get("snapshotKey")),
		SandboxID:   string(b.Get("sandboxid")),
		Runtime:     string(b.Bucket("runtime").Get("name")),
		CreatedAt:   d.timeAt(b, "createdat", where),
		UpdatedAt:   d.timeAt(b, "updatedat", where),
		Labels:      b.Bucket("labels").Strings(),
		Status:      "unknown",
	}
	c.RuntimeOptions = d.anyValue(b.Bucket("runtime").Get("options"), where+"/runtime/options")
	if spec := d.anyValue(b.Get("spec"), where+"/spec"); spec != nil {
		if spec.JSON != nil {
			c.Spec = spec.JSON
		} else {
			d.warn("%s/spec: type %q is not JSON", where, spec.TypeURL)
		}
	}
	c.Kind = c.Labels[labelKind]
	c.PodName = c.Labels[labelPodName]
	c.PodNamespace = c.Labels[labelPodNamespace]
	c.PodUID = c.Labels[labelPodUID]
	c.ContainerName = c.Labels[labelContainerName]

	ext := b.Bucket("extensions")
	for _, name := range ext.Keys() {
		a := d.anyValue(ext.Get(name), where+"/extensions/"+name)
		if c.Extensions == nil {
			c.Extensions = map[string]AnyValue{}
		}
		c.Extensions[name] = *a
		switch name {
		case extContainerMetadata:
			d.criContainer(&c, a, where)
		case extSandboxMetadata:
			d.criSandbox(&c, a, where)
		}
	}
	return c
}

// criVersioned is how the CRI plugin wraps its metadata.
type criVersioned struct {
	Version  string          `json:"Version"`
	Metadata json.RawMessage `json:"Metadata"`
}

type criContainerMeta struct {
	ID        string `json:"ID"`
	Name      string `json:"Name"`
	SandboxID string `json:"SandboxID"`
	Config    struct {
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
		Mounts  []Mount `json:"mounts"`
		LogPath string  `json:"log_path"`
	} `json:"Config"`
	ImageRef string `json:"ImageRef"`
	LogPath  string `json:"LogPath"`
}

type criSandboxMeta struct {
	ID     string `json:"ID"`
	Name   string `json:"Name"`
	Config struct {
		Metadata struct {
			Name      string `json:"name"`
			UID       string `json:"uid"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
		Hostname     string `json:"hostname"`
		LogDirectory string `json:"log_directory"`
	} `json:"Config"`
	NetNSPath      string          `json:"NetNSPath"`
	IP             string          `json:"IP"`
	AdditionalIPs  []string        `json:"AdditionalIPs"`
	RuntimeHandler string          `json:"RuntimeHandler"`
	CNIResult      json.RawMessage `json:"CNIResult"`
}

func (d decoder) criMetadata(a *AnyValue, where string, out any) (json.RawMessage, bool) {
	if a == nil || a.JSON == nil {
		d.warn("%s: CRI metadata is not JSON", where)
		return nil, false
	}
	var v criVersioned
	if err := json.Unmarshal(a.JSON, &v); err != nil || v.Metadata == nil {
		d.warn("%s: CRI metadata: %v", where, err)
		return nil, false
	}
	if err := json.Unmarshal(v.Metadata, out); err != nil {
		d.warn("%s: CRI metadata: %v", where, err)
		return v.Metadata, false
	}
	return v.Metadata, true
}

func (d decoder) criContainer(c *Container, a *AnyValue, where string) {
	var m criContainerMeta
	raw, ok := d.criMetadata(a, where+"/extensions/"+extContainerMetadata, &m)
	c.CRIMetadata = raw
	if !ok {
		return
	}
	if c.ContainerName == "" {
		c.ContainerName = m.Config.Metadata.Name
	}
	if c.SandboxID == "" {
		c.SandboxID = m.SandboxID
	}
	if c.Kind == "" {
		c.Kind = "container"
	}
	c.ImageRef = m.ImageRef
	c.LogPath = m.LogPath
	c.Mounts = m.Config.Mounts
}

func (d decoder) criSandbox(c *Container, a *AnyValue, where string) {
	var m criSandboxMeta
	raw, ok := d.criMetadata(a, where+"/extensions/"+extSandboxMetadata, &m)
	c.CRIMetadata = raw
	if ok {
		d.applySandboxMeta(c, &m)
	}
}

// applySandboxMeta fills a sandbox's pod fields from CRI sandbox metadata.
func (d decoder) applySandboxMeta(c *Container, m *criSandboxMeta) {
	if c.Kind == "" {
		c.Kind = "sandbox"
	}
	if c.PodName == "" {
		c.PodName = m.Config.Metadata.Name
	}
	if c.PodNamespace == "" {
		c.PodNamespace = m.Config.Metadata.Namespace
	}
	if c.PodUID == "" {
		c.PodUID = m.Config.Metadata.UID
	}
	c.PodIP = m.IP
	c.Sandbox = &SandboxInfo{
		Hostname:       m.Config.Hostname,
		LogDirectory:   m.Config.LogDirectory,
		NetNSPath:      m.NetNSPath,
		IP:             m.IP,
		AdditionalIPs:  m.AdditionalIPs,
		RuntimeHandler: m.RuntimeHandler,
	}
	if len(m.CNIResult) > 0 && string(m.CNIResult) != "null" {
		c.Sandbox.CNIResult = m.CNIResult
	}
}

func (d decoder) image(ns, name string, b *boltsafe.Bucket) Image {
	where := fmt.Sprintf("v1/%s/images/%s", ns, name)
	t := b.Bucket("target")
	size, _ := d.varint(t, "size", where+"/target")
	return Image{
		Namespace: ns,
		Name:      name,
		Target: Descriptor{
			MediaType: string(t.Get("mediatype")),
			Digest:    string(t.Get("digest")),
			Size:      size,
		},
		CreatedAt:   d.timeAt(b, "createdat", where),
		UpdatedAt:   d.timeAt(b, "updatedat", where),
		Labels:      b.Bucket("labels").Strings(),
		Annotations: b.Bucket("annotations").Strings(),
	}
}

func (d decoder) metaSnapshot(ns, snapshotter, key string, b *boltsafe.Bucket) Snapshot {
	where := fmt.Sprintf("v1/%s/snapshots/%s/%s", ns, snapshotter, key)
	return Snapshot{
		Namespace:   ns,
		Snapshotter: snapshotter,
		Key:         key,
		Name:        string(b.Get("name")),
		Parent:      string(b.Get("parent")),
		Kind:        "unknown",
		CreatedAt:   d.timeAt(b, "createdat", where),
		UpdatedAt:   d.timeAt(b, "updatedat", where),
		Labels:      b.Bucket("labels").Strings(),
		Children:    b.Bucket("children").Keys(),
	}
}
