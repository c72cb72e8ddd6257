package cstorage

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"time"

	"github.com/ctrlift/ctrlift/internal/overlaystore"
)

// CRIO is what CRI-O wrote into a container's userdata/config.json (the
// OCI spec it generated) as annotations.
type CRIO struct {
	Kind          string            `json:"kind"` // "sandbox" or "container"
	PodName       string            `json:"pod_name,omitempty"`
	PodNamespace  string            `json:"pod_namespace,omitempty"`
	PodUID        string            `json:"pod_uid,omitempty"`
	ContainerName string            `json:"container_name,omitempty"`
	SandboxID     string            `json:"sandbox_id,omitempty"`
	SandboxName   string            `json:"sandbox_name,omitempty"`
	Name          string            `json:"name,omitempty"` // CRI-O's k8s_... name
	Image         string            `json:"image,omitempty"`
	ImageRef      string            `json:"image_ref,omitempty"`
	LogPath       string            `json:"log_path,omitempty"`
	Created       time.Time         `json:"created,omitzero"`
	Labels        map[string]string `json:"labels,omitempty"`
	Mounts        []CRIOMount       `json:"mounts,omitempty"`
	Spec          json.RawMessage   `json:"spec,omitempty"` // config.json as stored
}

// CRIOMount is one entry of the io.kubernetes.cri-o.Volumes annotation.
type CRIOMount struct {
	ContainerPath string `json:"container_path"`
	HostPath      string `json:"host_path"`
	Readonly      bool   `json:"readonly"`
}

// CRI-O's annotation keys (github.com/cri-o/cri-o/pkg/annotations and
// Kubernetes' well-known ones).
const (
	annoManager       = "io.container.manager"
	annoContainerType = "io.kubernetes.cri-o.ContainerType"
	annoSandboxID     = "io.kubernetes.cri-o.SandboxID"
	annoSandboxName   = "io.kubernetes.cri-o.SandboxName"
	annoName          = "io.kubernetes.cri-o.Name"
	annoLogPath       = "io.kubernetes.cri-o.LogPath"
	annoImageName     = "io.kubernetes.cri-o.ImageName"
	annoImageRef      = "io.kubernetes.cri-o.ImageRef"
	annoCreated       = "io.kubernetes.cri-o.Created"
	annoLabels        = "io.kubernetes.cri-o.Labels"
	annoVolumes       = "io.kubernetes.cri-o.Volumes"
	annoPodName       = "io.kubernetes.pod.name"
	annoPodNamespace  = "io.kubernetes.pod.namespace"
	annoPodUID        = "io.kubernetes.pod.uid"
	annoContainerName = "io.kubernetes.container.name"
)

// readCRIO reads userdata/config.json when CRI-O wrote it: nil for a
// container of another tool (Podman's spec has no CRI-O annotations).
func readCRIO(fsys fs.FS, userdata string) (*CRIO, string) {
	name := path.Join(userdata, "config.json")
	b, err := overlaystore.ReadFile(fsys, name, MaxConfigFile)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, ""
		}
		return nil, err.Error()
	}
	c, err := ParseCRIOConfig(b)
	if err != nil {
		return nil, fmt.Sprintf("%s: %v", name, err)
	}
	return c, ""
}

// ParseCRIOConfig reads CRI-O's annotations from an OCI spec: nil, nil
// when it has none.
func ParseCRIOConfig(b []byte) (*CRIO, error) {
	if len(b) > MaxConfigFile {
		return nil, fmt.Errorf("%d bytes exceeds the %d-byte limit", len(b), MaxConfigFile)
	}
	var spec struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(b, &spec); err != nil {
		return nil, fmt.Errorf("decoding: %w", err)
	}
	a := spec.Annotations
	// Podman sets some io.kubernetes.cri-o.* annotations too (on the
	// containers of a pod): the manager annotation tells them apart.
	typ, ok := a[annoContainerType]
	switch manager := a[annoManager]; {
	case !ok, manager == "libpod":
		return nil, nil
	case manager == "cri-o":
	case a[annoName] == "" || a[annoPodName] == "":
		return nil, nil // neither says CRI-O
	}
	c := &CRIO{Kind: typ, PodName: a[annoPodName], PodNamespace: a[annoPodNamespace], PodUID: a[annoPodUID],
		ContainerName: a[annoContainerName], SandboxID: a[annoSandboxID], SandboxName: a[annoSandboxName],
		Name: a[annoName], Image: a[annoImageName], ImageRef: a[annoImageRef], LogPath: a[annoLogPath], Spec: json.RawMessage(b)}
	if t, err := time.Parse(time.RFC3339Nano, a[annoCreated]); err == nil {
		c.Created = t
	}
	if l := a[annoLabels]; l != "" {
		_ = json.Unmarshal([]byte(l), &c.Labels)
	}
	if v := a[annoVolumes]; v != "" {
		_ = json.Unmarshal([]byte(v), &c.Mounts)
	}
	return c, nil
}
