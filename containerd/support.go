package containerd

import (
	_ "embed"
	"errors"
	"fmt"
	"io"
	"strings"

	"gopkg.in/yaml.v3"
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
		panic("containerd: embedded supportcontainer.yaml: " + err.Error())
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
func (f *SupportFilter) Match(c *Container) (bool, string) {
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

// ListOptions selects the containers `list containers` shows.
type ListOptions struct {
	All       bool           // show everything
	Namespace string         // only this containerd namespace; "" for every namespace
	Support   *SupportFilter // nil: DefaultSupportFilter
}

// Hidden counts containers left out of a listing, by reason, and names
// each with its reason.
type Hidden struct {
	Sandboxes  int
	Support    int
	Namespaces map[string]int // other containerd namespaces than ListOptions.Namespace
	Containers []HiddenContainer
}

// HiddenContainer is one container left out of a listing.
type HiddenContainer struct {
	Container Container
	Reason    string // "pod sandbox", "support container (name kube-proxy)", "namespace default not selected"
}

// Total is the number of hidden containers.
func (h Hidden) Total() int { return len(h.Containers) }

// SelectContainers applies the listing policy: the containers of every
// namespace (or of o.Namespace), without pod sandboxes and support
// containers unless All is set. A container started with ctr or nerdctl
// on a Kubernetes node is shown: it is what an intruder leaves behind.
func (s *State) SelectContainers(o ListOptions) ([]Container, Hidden) {
	h := Hidden{Namespaces: map[string]int{}}
	support := o.Support
	if support == nil {
		support = DefaultSupportFilter()
	}
	var out []Container
	hide := func(c *Container, why string) {
		h.Containers = append(h.Containers, HiddenContainer{Container: c.Brief(), Reason: why})
	}
	for i := range s.Containers {
		c := &s.Containers[i]
		if o.Namespace != "" && c.Namespace != o.Namespace {
			h.Namespaces[c.Namespace]++
			hide(c, "namespace "+c.Namespace+" not selected")
			continue
		}
		if !o.All {
			if c.Kind == "sandbox" {
				h.Sandboxes++
				hide(c, "pod sandbox")
				continue
			}
			if ok, rule := support.Match(c); ok {
				h.Support++
				hide(c, "support container ("+rule+")")
				continue
			}
		}
		out = append(out, *c)
	}
	return out, h
}
