package oci

import (
	"encoding/json"
	"fmt"
	"time"
)

// Config kinds, as Result.Config and the com.github.ctrlift.config
// annotation name them.
const (
	ConfigOriginal    = "original"
	ConfigSynthesized = "synthesized"
)

type rootFS struct {
	Type    string   `json:"type"`
	DiffIDs []string `json:"diff_ids"`
}

type runConfig struct {
	User       string   `json:"User,omitempty"`
	Env        []string `json:"Env,omitempty"`
	Entrypoint []string `json:"Entrypoint,omitempty"`
	Cmd        []string `json:"Cmd,omitempty"`
	WorkingDir string   `json:"WorkingDir,omitempty"`
}

type synthConfig struct {
	Created      string            `json:"created,omitempty"`
	Architecture string            `json:"architecture"`
	OS           string            `json:"os"`
	Variant      string            `json:"variant,omitempty"`
	Config       runConfig         `json:"config"`
	RootFS       rootFS            `json:"rootfs"`
	History      []json.RawMessage `json:"history,omitempty"`
}

type historyEntry struct {
	Created    string `json:"created,omitempty"`
	CreatedBy  string `json:"created_by,omitempty"`
	Comment    string `json:"comment,omitempty"`
	EmptyLayer bool   `json:"empty_layer,omitempty"`
}

// configInfo is what the index and annotations need of the config.
type configInfo struct {
	arch, os, variant string
	diffIDs           []string // the source config's
}

func timeString(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// buildConfig returns the image config for the layers written (base
// first): the source config with new rootfs.diff_ids and a history that
// counts the same layers, or one made from img.Config.
func buildConfig(img *Image, ls []LayerResult, writable bool) ([]byte, string, configInfo, []string) {
	var warnings []string
	diffIDs := make([]string, len(ls))
	for i, l := range ls {
		diffIDs[i] = l.DiffID
	}
	imageLayers := ls
	if writable {
		imageLayers = ls[:len(ls)-1]
	}
	var changes json.RawMessage
	if writable {
		by := img.ChangesBy
		if by == "" {
			by = "ctrlift export: the container's writable layer"
		}
		changes, _ = marshal(historyEntry{Created: timeString(img.Created), CreatedBy: by,
			Comment: "what the container changed at run time, from its writable snapshot " + ls[len(ls)-1].Source})
	}
	synthHistory := func() []json.RawMessage {
		var h []json.RawMessage
		for _, l := range imageLayers {
			e, _ := marshal(historyEntry{CreatedBy: "ctrlift export: rebuilt from snapshot " + l.Source})
			h = append(h, e)
		}
		return h
	}

	if src := img.Source.Config; src != nil {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(src, &m); err != nil || m == nil {
			warnings = append(warnings, fmt.Sprintf("the source image config is not a JSON object (%v): a config was made from the container's spec", err))
		} else {
			info := configInfo{}
			json.Unmarshal(m["architecture"], &info.arch)
			json.Unmarshal(m["os"], &info.os)
			json.Unmarshal(m["variant"], &info.variant)
			var rf rootFS
			json.Unmarshal(m["rootfs"], &rf)
			info.diffIDs = rf.DiffIDs
			if info.arch == "" {
				info.arch = orDefault(img.Config.Architecture, "amd64")
				m["architecture"], _ = marshal(info.arch)
				warnings = append(warnings, "the source image config names no architecture: "+info.arch+" recorded")
			}
			if info.os == "" {
				info.os = orDefault(img.Config.OS, "linux")
				m["os"], _ = marshal(info.os)
			}
			m["rootfs"], _ = marshal(rootFS{Type: "layers", DiffIDs: diffIDs})

			var hist []json.RawMessage
			_, had := m["history"]
			histErr := json.Unmarshal(m["history"], &hist)
			nonEmpty := 0
			for _, h := range hist {
				var e struct {
					EmptyLayer bool `json:"empty_layer"`
				}
				if json.Unmarshal(h, &e) == nil && !e.EmptyLayer {
					nonEmpty++
				}
			}
			switch {
			case had && histErr == nil && nonEmpty == len(imageLayers):
				// Kept: one entry per layer, as rebuilt.
			case !had && !writable:
				hist = nil
			default:
				if had {
					warnings = append(warnings, fmt.Sprintf("the source image config's history has %d layer entries for the %d image layers written: replaced by one entry per layer", nonEmpty, len(imageLayers)))
				}
				hist = synthHistory()
			}
			if writable {
				hist = append(hist, changes)
			}
			if hist != nil {
				m["history"], _ = marshal(hist)
			} else {
				delete(m, "history")
			}
			b, err := marshal(m)
			if err == nil {
				return b, ConfigOriginal, info, warnings
			}
			warnings = append(warnings, fmt.Sprintf("the source image config cannot be rewritten (%v): a config was made from the container's spec", err))
		}
	}

	c := img.Config
	sc := synthConfig{
		Created:      timeString(c.Created),
		Architecture: c.Architecture,
		OS:           orDefault(c.OS, "linux"),
		Variant:      c.Variant,
		Config:       runConfig{User: c.User, Env: c.Env, Entrypoint: c.Entrypoint, Cmd: c.Cmd, WorkingDir: c.WorkingDir},
		RootFS:       rootFS{Type: "layers", DiffIDs: diffIDs},
		History:      synthHistory(),
	}
	if sc.Architecture == "" {
		sc.Architecture = "amd64"
		warnings = append(warnings, "the image's architecture is unknown: amd64 recorded")
	}
	if writable {
		sc.History = append(sc.History, changes)
	}
	b, _ := marshal(sc)
	return b, ConfigSynthesized, configInfo{arch: sc.Architecture, os: sc.OS, variant: sc.Variant}, warnings
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
