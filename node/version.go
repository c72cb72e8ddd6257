package node

import (
	"fmt"
	"runtime/debug"
)

// ToolVersion identifies the build that wrote an output, from the build
// information the Go toolchain embeds: the module version and, for a build
// from a checkout, the VCS revision and whether the tree was modified.
type ToolVersion struct {
	Name     string `json:"name"`
	Version  string `json:"version"`
	Revision string `json:"revision,omitempty"`
	Time     string `json:"revision_time,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"go"`
}

// Version is the running build's ToolVersion.
func Version() ToolVersion {
	v := ToolVersion{Name: "ctrlift", Version: "(unknown)"}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	v.Go = bi.GoVersion
	if bi.Main.Version != "" {
		v.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

// String is the --version line, e.g.
// "ctrlift v0.0.0-…-0f06296 (revision 0f06296…, 2026-12-01T10:00:00Z, modified; go1.26.8)".
func (v ToolVersion) String() string {
	s := v.Name + " " + v.Version + " ("
	if v.Revision != "" {
		s += "revision " + v.Revision
		if v.Time != "" {
			s += ", " + v.Time
		}
		if v.Modified {
			s += ", modified"
		}
	} else {
		s += "no VCS revision: built outside a checkout or with go run"
	}
	return s + fmt.Sprintf("; %s)", v.Go)
}
