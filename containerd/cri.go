package containerd

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"time"
)

// Status is a container's state.
type Status string

// Container states derived from the CRI status file, as the CRI plugin
// derives them (pkg/store/container Status.State).
const (
	StatusCreated Status = "created"
	StatusRunning Status = "running"
	StatusExited  Status = "exited"
	StatusUnknown Status = "unknown"
)

func (s Status) String() string { return string(s) }

// CRIStatus is the CRI plugin's io.containerd.grpc.v1.cri/containers/<id>/status
// file. Times are Unix nanoseconds.
type CRIStatus struct {
	Version    string `json:"Version"`
	Pid        uint32 `json:"Pid"`
	CreatedAt  int64  `json:"CreatedAt"`
	StartedAt  int64  `json:"StartedAt"`
	FinishedAt int64  `json:"FinishedAt"`
	ExitCode   int32  `json:"ExitCode"`
	Reason     string `json:"Reason"`
	Message    string `json:"Message"`
}

// ParseCRIStatus decodes a CRI status file.
func ParseCRIStatus(data []byte) (*CRIStatus, error) {
	var st CRIStatus
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, err
	}
	if st.Version != "" && st.Version != "v1" {
		return &st, fmt.Errorf("unknown status version %q", st.Version)
	}
	return &st, nil
}

// State returns created, running, exited or unknown.
func (st *CRIStatus) State() Status {
	switch {
	case st.FinishedAt != 0:
		return StatusExited
	case st.StartedAt != 0:
		return StatusRunning
	case st.CreatedAt != 0:
		return StatusCreated
	}
	return StatusUnknown
}

func unixNano(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// loadCRI joins the CRI plugin's per-container status files, sandbox
// directories and runtime task bundles with the container records.
func (s *State) loadCRI() {
	known := map[string]bool{}
	sandboxIP := map[string]string{}
	for i := range s.Containers {
		c := &s.Containers[i]
		known[c.ID] = true
		if c.Kind == "sandbox" && c.PodIP != "" {
			sandboxIP[c.Namespace+"/"+c.ID] = c.PodIP
		}
	}
	for i := range s.Containers {
		c := &s.Containers[i]
		if !validName(c.ID) || !validName(c.Namespace) {
			s.Warnings = append(s.Warnings, fmt.Sprintf("container %q in namespace %q: not a valid identifier; CRI files not read", c.ID, c.Namespace))
			continue
		}
		s.criStatus(c)
		if c.Kind == "sandbox" {
			s.criSandboxDir(c)
		}
		if c.PodIP == "" && c.SandboxID != "" {
			c.PodIP = sandboxIP[c.Namespace+"/"+c.SandboxID]
		}
		for _, rt := range []string{taskDir, "io.containerd.runtime.v1.linux"} {
			p := path.Join(s.Root, rt, c.Namespace, c.ID)
			if st, err := fs.Stat(s.fsys, p); err == nil && st.IsDir() {
				c.TaskDir = p
				break
			}
		}
		if c.Status == StatusUnknown && c.TaskDir != "" {
			c.Status = StatusRunning // the bundle is removed when the task is deleted
		}
	}
	// Status files of containers meta.db no longer knows.
	for _, sub := range []string{"containers", "sandboxes"} {
		entries, _ := fs.ReadDir(s.fsys, path.Join(s.Root, criDir, sub))
		for _, e := range entries {
			if !known[e.Name()] {
				s.Warnings = append(s.Warnings, fmt.Sprintf("%s/%s/%s: no container record in meta.db (removed container?)", criDir, sub, e.Name()))
			}
		}
	}
}

func (s *State) criStatus(c *Container) {
	p := path.Join(s.Root, criDir, "containers", c.ID, "status")
	data, err := readFile(s.fsys, p, 1<<20)
	if err != nil {
		if c.Kind == "container" && !strings.Contains(err.Error(), "not exist") {
			s.Warnings = append(s.Warnings, fmt.Sprintf("container %s/%s: %v", c.Namespace, c.ID, err))
		}
		return
	}
	st, err := ParseCRIStatus(data)
	if err != nil {
		s.Warnings = append(s.Warnings, fmt.Sprintf("%s: %v", p, err))
		if st == nil {
			return
		}
	}
	c.StatusFile = p
	c.Status = st.State()
	c.PID = int(st.Pid)
	c.StartedAt = unixNano(st.StartedAt)
	c.FinishedAt = unixNano(st.FinishedAt)
	c.Reason = st.Reason
	c.Message = st.Message
	if c.Status == StatusExited {
		code := st.ExitCode
		c.ExitCode = &code
		if c.Reason == "" {
			// What the CRI plugin reports for an empty reason.
			c.Reason = "Error"
			if code == 0 {
				c.Reason = "Completed"
			}
		}
	}
}

// criSandboxDir fills the hostname from io.containerd.grpc.v1.cri/sandboxes/<id>/hostname
// when the metadata lacks it.
func (s *State) criSandboxDir(c *Container) {
	dir := path.Join(s.Root, criDir, "sandboxes", c.ID)
	if c.Sandbox == nil {
		c.Sandbox = &SandboxInfo{}
	}
	if c.Sandbox.Hostname == "" {
		if b, err := readFile(s.fsys, path.Join(dir, "hostname"), 4096); err == nil {
			c.Sandbox.Hostname = strings.TrimSpace(string(b))
		}
	}
}
