// Package docker reads Docker Engine's on-disk state from a filesystem
// image: each container's containers/<id>/config.v2.json and
// hostconfig.json (config.json before Docker 1.10), and its layer chain
// under the overlay2, legacy overlay or aufs storage driver. Nothing is executed or mounted; every file is
// read with a size limit and no symlink on the disk is ever followed (the
// overlay2 l/ links are read as data).
//
// JSON field names of the exported records are snake_case and stable.
package docker

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ctrlift/ctrlift/internal/overlaystore"
)

// Limits on what is read from the disk.
const (
	// MaxConfigSize bounds config.v2.json and hostconfig.json.
	MaxConfigSize = 4 << 20
	// maxSmallFile bounds mount-id, lower-id, init-id and link files.
	maxSmallFile = 4 << 10
	// maxLowerFile bounds an overlay2 lower file (a colon-separated list
	// of l/<short> names: overlay2 allows 128 layers of 29 bytes).
	maxLowerFile = 64 << 10
	// maxLayers bounds a chain.
	maxLayers = 1024
	// maxContainers bounds the containers read.
	maxContainers = 100000
)

// rootCandidates are the Docker roots FindRoot tries, relative to the
// root of the filesystem searched, most common first.
var rootCandidates = []string{
	"var/lib/docker",
	"lib/docker",
	"docker",
	"var/snap/docker/common/var-lib-docker",
	".", // a copy of /var/lib/docker itself
}

// RootNotFoundError lists the paths FindRoot searched.
type RootNotFoundError struct {
	Searched []string
	Override bool
	Reason   string
}

func (e *RootNotFoundError) Error() string {
	if e.Override {
		return fmt.Sprintf("docker root %s: %s", e.Searched[0], e.Reason)
	}
	return fmt.Sprintf("no docker root found (no containers/ with an image/ or, before Docker 1.10, a graph/ beside it under any of: %s)", strings.Join(e.Searched, ", "))
}

// FindRoot returns the Docker root on fsys: override when set (it must
// hold containers/), else the first candidate that holds containers/ and
// image/ (Docker 1.10 and later) or graph/ (before 1.10) directories.
func FindRoot(fsys fs.FS, override string) (string, error) {
	if override != "" {
		p := path.Clean(strings.TrimLeft(override, "/"))
		if p == "" {
			p = "."
		}
		if !fs.ValidPath(p) {
			return "", &RootNotFoundError{Searched: []string{override}, Override: true, Reason: "the path leaves the filesystem root"}
		}
		if !overlaystore.IsDir(fsys, path.Join(p, "containers")) {
			return "", &RootNotFoundError{Searched: []string{p}, Override: true, Reason: "no containers directory"}
		}
		return p, nil
	}
	for _, c := range rootCandidates {
		if overlaystore.IsDir(fsys, path.Join(c, "containers")) &&
			(overlaystore.IsDir(fsys, path.Join(c, "image")) || overlaystore.IsDir(fsys, path.Join(c, "graph"))) {
			return c, nil
		}
	}
	return "", &RootNotFoundError{Searched: slices.Clone(rootCandidates)}
}

// State is everything read from one Docker root.
type State struct {
	Root       string      `json:"root"` // slash path relative to the filesystem root, e.g. var/lib/docker
	Containers []Container `json:"containers"`
	Warnings   []string    `json:"warnings,omitempty"`
}

// Container is one Docker container, from config.v2.json and
// hostconfig.json, with its layer chain.
type Container struct {
	ID            string            `json:"id"`
	Name          string            `json:"name"`     // without Docker's leading "/"
	Image         string            `json:"image"`    // as given to docker run (Config.Image)
	ImageID       string            `json:"image_id"` // sha256:... of the image config
	Driver        string            `json:"driver"`   // storage driver: overlay2, overlay, aufs, ...
	Created       time.Time         `json:"created,omitzero"`
	StartedAt     time.Time         `json:"started_at,omitzero"`
	FinishedAt    time.Time         `json:"finished_at,omitzero"`
	Running       bool              `json:"running"`
	Paused        bool              `json:"paused,omitempty"`
	Restarting    bool              `json:"restarting,omitempty"`
	Dead          bool              `json:"dead,omitempty"`
	OOMKilled     bool              `json:"oom_killed,omitempty"`
	PID           int               `json:"pid"`
	ExitCode      int               `json:"exit_code"`
	Error         string            `json:"error,omitempty"`
	RestartCount  int               `json:"restart_count"`
	StartedBefore bool              `json:"has_been_started_before"`
	Path          string            `json:"path,omitempty"`
	Args          []string          `json:"args,omitempty"`
	Labels        map[string]string `json:"labels,omitempty"`
	LogPath       string            `json:"log_path,omitempty"`
	Runtime       string            `json:"runtime,omitempty"`    // OCI runtime (hostconfig Runtime): runc, ...
	LogDriver     string            `json:"log_driver,omitempty"` // hostconfig LogConfig.Type: json-file, local, journald, ...
	Privileged    bool              `json:"privileged,omitempty"`
	NetworkMode   string            `json:"network_mode,omitempty"`
	IPAddress     string            `json:"ip_address,omitempty"`
	Mounts        []Mount           `json:"mounts,omitempty"`
	// Files the daemon binds into the container (/etc/hostname,
	// /etc/hosts, /etc/resolv.conf), host paths.
	HostnamePath   string `json:"hostname_path,omitempty"`
	HostsPath      string `json:"hosts_path,omitempty"`
	ResolvConfPath string `json:"resolv_conf_path,omitempty"`

	MountID     string  `json:"mount_id,omitempty"` // the storage driver's id of the writable layer
	Layers      []Layer `json:"layers"`             // top (writable) first
	LayersError string  `json:"layers_error,omitempty"`

	// Legacy: the layout before Docker 1.10 (containers/<id>/config.json,
	// images in graph/, the writable layer named by the container id).
	Legacy bool `json:"legacy_layout,omitempty"`

	Config     json.RawMessage `json:"config,omitempty"`     // config.v2.json (config.json) as on disk
	HostConfig json.RawMessage `json:"hostconfig,omitempty"` // hostconfig.json as on disk
}

// Mount is one of a container's MountPoints.
type Mount struct {
	Destination string `json:"destination"`
	Type        string `json:"type"`             // volume, bind, tmpfs, npipe
	Source      string `json:"source,omitempty"` // host path of a bind
	Name        string `json:"name,omitempty"`   // volume name
	Driver      string `json:"driver,omitempty"` // volume driver: local, ...
	RW          bool   `json:"rw"`
	Propagation string `json:"propagation,omitempty"`
}

// Layer is one directory of a container's layer chain.
type Layer struct {
	ID     string `json:"id"`     // the storage driver's layer id (a directory name)
	Dir    string `json:"dir"`    // its directory, relative to the filesystem root
	Driver string `json:"driver"` // overlay2, overlay
	Kind   string `json:"kind"`   // "container" (writable), "init" or "image"
}

// Load reads every container under the Docker root at root. A container
// that cannot be read is skipped with a warning; an unreadable layer chain
// is kept in the container's LayersError.
func Load(fsys fs.FS, root string) (*State, error) {
	st := &State{Root: root, Containers: []Container{}}
	dir := path.Join(root, "containers")
	ents, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("docker root %s: %w", root, err)
	}
	for _, e := range ents {
		if len(st.Containers) >= maxContainers {
			st.Warnings = append(st.Warnings, fmt.Sprintf("%s: more than %d containers: the rest are not read", dir, maxContainers))
			break
		}
		if !e.IsDir() {
			continue
		}
		if !ValidID(e.Name()) {
			st.Warnings = append(st.Warnings, fmt.Sprintf("%s/%s: not a container id, skipped", dir, e.Name()))
			continue
		}
		c, err := readContainer(fsys, root, e.Name(), func(w string) { st.Warnings = append(st.Warnings, w) })
		if err != nil {
			st.Warnings = append(st.Warnings, err.Error())
			continue
		}
		st.Containers = append(st.Containers, *c)
	}
	sort.Slice(st.Containers, func(i, j int) bool { return st.Containers[i].ID < st.Containers[j].ID })
	return st, nil
}

// ValidID says whether s is a Docker object id: 64 lowercase hex digits.
func ValidID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, r := range s {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return false
		}
	}
	return true
}

func readContainer(fsys fs.FS, root, id string, warn func(string)) (*Container, error) {
	dir := path.Join(root, "containers", id)
	cfgPath := path.Join(dir, "config.v2.json")
	b, err := overlaystore.ReadFile(fsys, cfgPath, MaxConfigSize)
	legacy := false
	if errors.Is(err, fs.ErrNotExist) {
		// Before Docker 1.10 the same record, in the same shape for the
		// fields read, was config.json.
		v1 := path.Join(dir, "config.json")
		if b1, err1 := overlaystore.ReadFile(fsys, v1, MaxConfigSize); !errors.Is(err1, fs.ErrNotExist) {
			cfgPath, b, err, legacy = v1, b1, err1, true
		}
	}
	if err != nil {
		return nil, err
	}
	c, err := ParseConfig(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfgPath, err)
	}
	if c.ID != id {
		return nil, fmt.Errorf("%s: names container %q, not its directory's %s", cfgPath, c.ID, id)
	}
	c.Legacy = legacy
	hcPath := path.Join(dir, "hostconfig.json")
	if hb, err := overlaystore.ReadFile(fsys, hcPath, MaxConfigSize); err == nil {
		if err := c.parseHostConfig(hb); err != nil {
			warn(hcPath + ": " + err.Error())
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		warn(err.Error())
	}
	c.Layers, c.MountID, err = chain(fsys, root, c.Driver, id, legacy)
	if err != nil {
		c.LayersError = err.Error()
	}
	if c.Layers == nil {
		c.Layers = []Layer{}
	}
	return c, nil
}

// config is the part of config.v2.json read.
type config struct {
	ID      string `json:"ID"`
	Created string `json:"Created"`
	Path    string `json:"Path"`
	Args    []string
	State   struct {
		Running    bool   `json:"Running"`
		Paused     bool   `json:"Paused"`
		Restarting bool   `json:"Restarting"`
		OOMKilled  bool   `json:"OOMKilled"`
		Dead       bool   `json:"Dead"`
		Pid        int    `json:"Pid"`
		ExitCode   int    `json:"ExitCode"`
		Error      string `json:"Error"`
		StartedAt  string `json:"StartedAt"`
		FinishedAt string `json:"FinishedAt"`
	} `json:"State"`
	Config struct {
		Image  string            `json:"Image"`
		Labels map[string]string `json:"Labels"`
	} `json:"Config"`
	Image           string `json:"Image"`
	Name            string `json:"Name"`
	Driver          string `json:"Driver"`
	RestartCount    int    `json:"RestartCount"`
	HasBeenStarted  bool   `json:"HasBeenStartedBefore"`
	LogPath         string `json:"LogPath"`
	HostnamePath    string `json:"HostnamePath"`
	HostsPath       string `json:"HostsPath"`
	ResolvConfPath  string `json:"ResolvConfPath"`
	NetworkSettings struct {
		Networks map[string]struct {
			IPAddress string `json:"IPAddress"`
		} `json:"Networks"`
	} `json:"NetworkSettings"`
	MountPoints map[string]struct {
		Source      string `json:"Source"`
		Destination string `json:"Destination"`
		RW          bool   `json:"RW"`
		Name        string `json:"Name"`
		Driver      string `json:"Driver"`
		Type        string `json:"Type"`
		Propagation string `json:"Propagation"`
	} `json:"MountPoints"`
}

// ParseConfig decodes a config.v2.json. Times that do not parse are left
// zero; the id must be a Docker id.
func ParseConfig(b []byte) (*Container, error) {
	if len(b) > MaxConfigSize {
		return nil, fmt.Errorf("%d bytes exceeds the %d-byte limit", len(b), MaxConfigSize)
	}
	var cfg config
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("decoding: %w", err)
	}
	if !ValidID(cfg.ID) {
		return nil, fmt.Errorf("container id %q is not 64 hex digits", overlaystore.Truncate(cfg.ID))
	}
	c := &Container{
		ID:             cfg.ID,
		Name:           strings.TrimPrefix(cfg.Name, "/"),
		Image:          cfg.Config.Image,
		ImageID:        cfg.Image,
		Driver:         cfg.Driver,
		Created:        parseTime(cfg.Created),
		StartedAt:      parseTime(cfg.State.StartedAt),
		FinishedAt:     parseTime(cfg.State.FinishedAt),
		Running:        cfg.State.Running,
		Paused:         cfg.State.Paused,
		Restarting:     cfg.State.Restarting,
		Dead:           cfg.State.Dead,
		OOMKilled:      cfg.State.OOMKilled,
		PID:            cfg.State.Pid,
		ExitCode:       cfg.State.ExitCode,
		Error:          cfg.State.Error,
		RestartCount:   cfg.RestartCount,
		StartedBefore:  cfg.HasBeenStarted,
		Path:           cfg.Path,
		Args:           cfg.Args,
		Labels:         cfg.Config.Labels,
		LogPath:        cfg.LogPath,
		HostnamePath:   cfg.HostnamePath,
		HostsPath:      cfg.HostsPath,
		ResolvConfPath: cfg.ResolvConfPath,
		Config:         json.RawMessage(b),
	}
	nets := make([]string, 0, len(cfg.NetworkSettings.Networks))
	for n := range cfg.NetworkSettings.Networks {
		nets = append(nets, n)
	}
	sort.Strings(nets)
	for _, n := range nets {
		if ip := cfg.NetworkSettings.Networks[n].IPAddress; ip != "" {
			c.IPAddress = ip
			break
		}
	}
	for _, m := range cfg.MountPoints {
		typ := m.Type
		if typ == "" { // before Docker 1.13
			switch {
			case m.Name != "":
				typ = "volume"
			case m.Source != "":
				typ = "bind"
			}
		}
		c.Mounts = append(c.Mounts, Mount{Destination: m.Destination, Type: typ, Source: m.Source, Name: m.Name,
			Driver: m.Driver, RW: m.RW, Propagation: m.Propagation})
	}
	sort.Slice(c.Mounts, func(i, j int) bool { return c.Mounts[i].Destination < c.Mounts[j].Destination })
	return c, nil
}

// hostConfig is the part of hostconfig.json read.
type hostConfig struct {
	Runtime     string `json:"Runtime"`
	Privileged  bool   `json:"Privileged"`
	NetworkMode string `json:"NetworkMode"`
	LogConfig   struct {
		Type string `json:"Type"`
	} `json:"LogConfig"`
}

func (c *Container) parseHostConfig(b []byte) error {
	var hc hostConfig
	if err := json.Unmarshal(b, &hc); err != nil {
		return fmt.Errorf("decoding: %w", err)
	}
	c.HostConfig = json.RawMessage(b) // kept only when it decodes: the JSON outputs embed it
	c.Runtime, c.Privileged, c.NetworkMode = hc.Runtime, hc.Privileged, hc.NetworkMode
	c.LogDriver = hc.LogConfig.Type
	return nil
}

func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() <= 1 {
		return time.Time{}
	}
	return t
}
