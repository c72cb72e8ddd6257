package node

import (
	_ "embed"
	"errors"
	"fmt"
	"io"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/ctrlift/ctrlift/containerd"
)

//go:embed supportcontainer.yaml
var defaultSupportYAML []byte

// SupportFilter recognises support containers (system pods and the like), in
// google/container-explorer's supportcontainer.yaml format.
type SupportFilter struct {
	Names  []string `yaml:"names"`  // substrings of pod name, container name or id
	Images []string `yaml:"images"` // substrings of the image reference
	Labels []string `yaml:"labels"` // key=value, compared case-insensitively
}

// DefaultSupportFilter returns the embedded default list: Kubernetes and
// GKE system namespaces.
func DefaultSupportFilter() *SupportFilter {
	f, err := ParseSupportFilter(strings.NewReader(string(defaultSupportYAML)))
	if err != nil {
		panic("node: embedded supportcontainer.yaml: " + err.Error())
	}
	return f
}

// ParseSupportFilter reads a supportcontainer.yaml document.
func ParseSupportFilter(r io.Reader) (*SupportFilter, error) {
	var f SupportFilter
	dec := yaml.NewDecoder(io.LimitReader(r, 1<<20))
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("supportcontainer.yaml: %w", err)
	}
	for _, l := range f.Labels {
		if !strings.Contains(l, "=") {
			return nil, fmt.Errorf("supportcontainer.yaml: label %q is not key=value", l)
		}
	}
	return &f, nil
}

// Match reports whether c is a support container, and which rule matched.
func (f *SupportFilter) Match(c *containerd.Container) (bool, string) {
	if f == nil {
		return false, ""
	}
	lower := strings.ToLower
	for _, img := range f.Images {
		if img != "" && strings.Contains(lower(c.Image), lower(img)) {
			return true, "image " + img
		}
	}
	for _, n := range f.Names {
		if n == "" {
			continue
		}
		for _, v := range []string{c.PodName, c.ContainerName, c.ID} {
			if v != "" && strings.Contains(lower(v), lower(n)) {
				return true, "name " + n
			}
		}
	}
	for _, l := range f.Labels {
		k, v, _ := strings.Cut(l, "=")
		for ck, cv := range c.Labels {
			if strings.EqualFold(ck, k) && strings.EqualFold(cv, v) {
				return true, "label " + l
			}
		}
	}
	return false, ""
}
