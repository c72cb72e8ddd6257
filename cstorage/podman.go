package cstorage

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"time"

	"github.com/ctrlift/ctrlift/containerd/boltsafe"
	"github.com/ctrlift/ctrlift/internal/overlaystore"
)

// PodmanState is what Podman's state database says about a store's
// containers: libpod/bolt_state.db (Podman up to 4) read through boltsafe.
// or Podman 5's SQLite db.sql read from a private copy (podmansqlite.go).
type PodmanState struct {
	DB         string                      `json:"db"` // relative to the filesystem root
	Backend    string                      `json:"backend"`
	Containers map[string]*PodmanContainer `json:"containers"`
	Pods       map[string]*PodmanPod       `json:"pods"`
	Volumes    map[string]*PodmanVolume    `json:"volumes"`
	// RuntimeConfig is the runtime-config bucket: graph-root, run-root,
	// static-dir, volume-path as Podman was configured.
	RuntimeConfig map[string]string `json:"runtime_config,omitempty"`
	Warnings      []string          `json:"warnings,omitempty"`
}

// ContainerStatus is libpod's define.ContainerStatus, stored as a number.
type ContainerStatus int

const (
	StatusUnknown ContainerStatus = iota
	StatusConfigured
	StatusCreated
	StatusRunning
	StatusStopped
	StatusPaused
	StatusExited
	StatusRemoving
	StatusStopping
)

// String is podman's own name: a configured container (created in the
// state database, not yet in the OCI runtime) shows as created too.
func (s ContainerStatus) String() string {
	names := []string{"unknown", "created", "created", "running", "stopped", "paused", "exited", "removing", "stopping"}
	if s >= 0 && int(s) < len(names) {
		return names[s]
	}
	return "status(" + strconv.Itoa(int(s)) + ")"
}

// MarshalText makes ContainerStatus a string in JSON.
func (s ContainerStatus) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// PodmanContainer is one container of the ctr bucket: its config and
// state documents.
type PodmanContainer struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	PodID      string            `json:"pod_id,omitempty"`
	Infra      bool              `json:"infra,omitempty"` // the pod's infra container
	ImageID    string            `json:"image_id,omitempty"`
	ImageName  string            `json:"image_name,omitempty"`
	Command    []string          `json:"command,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	Created    time.Time         `json:"created,omitzero"`
	LogPath    string            `json:"log_path,omitempty"`
	LogDriver  string            `json:"log_driver,omitempty"` // k8s-file, journald, none, passthrough
	Runtime    string            `json:"runtime,omitempty"`
	Privileged bool              `json:"privileged,omitempty"`
	Volumes    []NamedVolume     `json:"named_volumes,omitempty"`
	Status     ContainerStatus   `json:"status"`
	Started    time.Time         `json:"started,omitzero"`
	Finished   time.Time         `json:"finished,omitzero"`
	ExitCode   *int32            `json:"exit_code,omitempty"`
	Exited     bool              `json:"exited"`
	OOMKilled  bool              `json:"oom_killed,omitempty"`
	PID        int               `json:"pid,omitempty"`
	// BindMounts are the files Podman binds (/etc/hosts, /etc/hostname,
	// /dev/shm, ...), container path -> host path.
	BindMounts map[string]string `json:"bind_mounts,omitempty"`
	// Spec is the OCI runtime spec Podman generated, as stored.
	Spec   json.RawMessage `json:"spec,omitempty"`
	Config json.RawMessage `json:"config,omitempty"` // the config document as stored
	State  json.RawMessage `json:"state,omitempty"`  // the state document as stored
}

// NamedVolume is a Podman named volume mounted into a container.
type NamedVolume struct {
	Name    string   `json:"name"`
	Dest    string   `json:"dest"`
	Options []string `json:"options,omitempty"`
}

// PodmanPod is one pod of the pod bucket.
type PodmanPod struct {
	ID      string            `json:"id"`
	Name    string            `json:"name"`
	Labels  map[string]string `json:"labels,omitempty"`
	Created time.Time         `json:"created,omitzero"`
	InfraID string            `json:"infra_id,omitempty"`
}

// PodmanVolume is one volume of the vol bucket.
type PodmanVolume struct {
	Name       string `json:"name"`
	Driver     string `json:"driver,omitempty"`
	MountPoint string `json:"mount_point,omitempty"` // host path of its _data
}

const maxPodmanDoc = 16 << 20

// loadPodman reads libpod's state beside the store at root: nil, nil when
// there is none.
func loadPodman(fsys fs.FS, root string) (*PodmanState, error) {
	dbPath := path.Join(root, "libpod", "bolt_state.db")
	f, err := fsys.Open(dbPath)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return loadPodmanSQLite(fsys, root)
		}
		return nil, err
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s: not a regular file", dbPath)
	}
	db, err := boltsafe.ReadFrom(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dbPath, err)
	}
	return decodePodman(dbPath, db.Root), nil
}

// DecodePodman decodes the buckets of a bolt_state.db read by boltsafe.
func decodePodman(dbPath string, root *boltsafe.Bucket) *PodmanState {
	ps := &PodmanState{DB: dbPath, Backend: "boltdb", Containers: map[string]*PodmanContainer{},
		Pods: map[string]*PodmanPod{}, Volumes: map[string]*PodmanVolume{}}
	warn := func(format string, a ...any) {
		ps.Warnings = append(ps.Warnings, dbPath+": "+fmt.Sprintf(format, a...))
	}
	if rc := root.Bucket("runtime-config"); rc != nil {
		ps.RuntimeConfig = rc.Strings()
	}
	exitCodes := root.Bucket("exit-code")
	if ctrs := root.Bucket("ctr"); ctrs != nil {
		for _, id := range ctrs.Buckets() {
			if !ValidID(id) {
				warn("container bucket %q is not an id, skipped", overlaystore.Truncate(id))
				continue
			}
			c, err := decodePodmanContainer(id, ctrs.Bucket(id))
			if err != nil {
				warn("container %s: %v", id, err)
				continue
			}
			if c.ExitCode == nil && exitCodes != nil {
				if v := exitCodes.Get(id); v != nil {
					if n, err := strconv.ParseInt(string(v), 10, 32); err == nil {
						code := int32(n)
						c.ExitCode = &code
					}
				}
			}
			ps.Containers[id] = c
		}
	}
	if pods := root.Bucket("pod"); pods != nil {
		for _, id := range pods.Buckets() {
			if !ValidID(id) {
				warn("pod bucket %q is not an id, skipped", overlaystore.Truncate(id))
				continue
			}
			b := pods.Bucket(id)
			var cfg struct {
				Name    string            `json:"name"`
				Labels  map[string]string `json:"labels"`
				Created time.Time         `json:"created"`
			}
			var state struct {
				Infra string `json:"InfraContainerID"`
			}
			if err := decodeDoc(b.Get("config"), &cfg); err != nil {
				warn("pod %s: config: %v", id, err)
				continue
			}
			if v := b.Get("state"); v != nil {
				if err := decodeDoc(v, &state); err != nil {
					warn("pod %s: state: %v", id, err)
				}
			}
			ps.Pods[id] = &PodmanPod{ID: id, Name: cfg.Name, Labels: cfg.Labels, Created: cfg.Created, InfraID: state.Infra}
		}
	}
	if vols := root.Bucket("vol"); vols != nil {
		for _, name := range vols.Buckets() {
			var cfg struct {
				Driver     string `json:"volumeDriver"`
				MountPoint string `json:"mountPoint"`
			}
			if err := decodeDoc(vols.Bucket(name).Get("config"), &cfg); err != nil {
				warn("volume %q: config: %v", overlaystore.Truncate(name), err)
				continue
			}
			ps.Volumes[name] = &PodmanVolume{Name: name, Driver: cfg.Driver, MountPoint: cfg.MountPoint}
		}
	}
	return ps
}

func decodeDoc(b []byte, v any) error {
	if b == nil {
		return errors.New("missing")
	}
	if len(b) > maxPodmanDoc {
		return fmt.Errorf("%d bytes exceeds the %d-byte limit", len(b), maxPodmanDoc)
	}
	return json.Unmarshal(b, v)
}

// podmanConfig is the part of libpod's ContainerConfig read.
type podmanConfig struct {
	ID           string            `json:"id"`
	Name         string            `json:"name"`
	Pod          string            `json:"pod"`
	IsInfra      bool              `json:"pause"`
	RootfsImage  string            `json:"rootfsImageID"`
	RootfsName   string            `json:"rootfsImageName"`
	RawImageName string            `json:"RawImageName"`
	Command      []string          `json:"command"`
	Labels       map[string]string `json:"labels"`
	Created      time.Time         `json:"createdTime"`
	LogPath      string            `json:"logPath"`
	LogDriver    string            `json:"logDriver"`
	Runtime      string            `json:"runtime"`
	Privileged   bool              `json:"privileged"`
	NamedVolumes []struct {
		Name    string   `json:"volumeName"`
		Dest    string   `json:"dest"`
		Options []string `json:"options"`
	} `json:"namedVolumes"`
	Spec json.RawMessage `json:"spec"`
}

// podmanState is the part of libpod's ContainerState read.
type podmanState struct {
	State      ContainerStatus   `json:"state"`
	Started    time.Time         `json:"startedTime"`
	Finished   time.Time         `json:"finishedTime"`
	ExitCode   int32             `json:"exitCode"`
	Exited     bool              `json:"exited"`
	OOMKilled  bool              `json:"oomKilled"`
	PID        int               `json:"pid"`
	BindMounts map[string]string `json:"bindMounts"`
}

func decodePodmanContainer(id string, b *boltsafe.Bucket) (*PodmanContainer, error) {
	return decodePodmanDocs(id, b.Get("config"), b.Get("state"), b.Get("pod-id"))
}

// decodePodmanDocs decodes a container's config and state documents, the
// same JSON in bolt_state.db's buckets and db.sql's JSON columns; podID is
// the pod named beside them (bolt's pod-id key, db.sql's PodID column).
func decodePodmanDocs(id string, cfgDoc, stateDoc, podID []byte) (*PodmanContainer, error) {
	var cfg podmanConfig
	if err := decodeDoc(cfgDoc, &cfg); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if cfg.ID != id {
		return nil, fmt.Errorf("config names container %q", overlaystore.Truncate(cfg.ID))
	}
	c := &PodmanContainer{ID: id, Name: cfg.Name, PodID: cfg.Pod, Infra: cfg.IsInfra, ImageID: cfg.RootfsImage,
		ImageName: cfg.RootfsName, Command: cfg.Command, Labels: cfg.Labels, Created: cfg.Created, LogPath: cfg.LogPath,
		LogDriver: cfg.LogDriver, Runtime: cfg.Runtime, Privileged: cfg.Privileged, Spec: cfg.Spec, Config: json.RawMessage(cfgDoc)}
	if c.ImageName == "" {
		c.ImageName = cfg.RawImageName
	}
	if c.PodID == "" && podID != nil {
		c.PodID = string(podID)
	}
	for _, v := range cfg.NamedVolumes {
		c.Volumes = append(c.Volumes, NamedVolume{Name: v.Name, Dest: v.Dest, Options: v.Options})
	}
	sort.Slice(c.Volumes, func(i, j int) bool { return c.Volumes[i].Dest < c.Volumes[j].Dest })
	if doc := stateDoc; doc != nil {
		var st podmanState
		if err := decodeDoc(doc, &st); err != nil {
			return nil, fmt.Errorf("state: %w", err)
		}
		c.State = json.RawMessage(doc)
		c.Status, c.Started, c.Finished, c.Exited, c.OOMKilled, c.PID, c.BindMounts =
			st.State, zeroTime(st.Started), zeroTime(st.Finished), st.Exited, st.OOMKilled, st.PID, st.BindMounts
		if st.Exited || st.State == StatusExited || st.State == StatusStopped {
			code := st.ExitCode
			c.ExitCode = &code
		}
	}
	return c, nil
}

func zeroTime(t time.Time) time.Time {
	if t.Year() <= 1 {
		return time.Time{}
	}
	return t
}
