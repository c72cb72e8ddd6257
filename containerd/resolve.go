package containerd

import (
	"fmt"
	"strings"
)

// AmbiguousError is returned by Resolve when a reference matches several
// containers.
type AmbiguousError struct {
	Ref        string
	Candidates []string // "<namespace>/<id> (<pod namespace>/<pod>/<container>)"
}

func (e *AmbiguousError) Error() string {
	return fmt.Sprintf("%q matches %d containers:\n  %s", e.Ref, len(e.Candidates), strings.Join(e.Candidates, "\n  "))
}

// NotFoundError is returned by Resolve when nothing matches.
type NotFoundError struct{ Ref string }

func (e *NotFoundError) Error() string { return fmt.Sprintf("no container matches %q", e.Ref) }

// Describe names a container for messages: namespace/id plus its pod.
func (c *Container) Describe() string {
	s := c.Namespace + "/" + c.ID
	switch {
	case c.PodName != "" && c.ContainerName != "":
		s += fmt.Sprintf(" (%s/%s/%s)", c.PodNamespace, c.PodName, c.ContainerName)
	case c.PodName != "":
		s += fmt.Sprintf(" (%s/%s %s)", c.PodNamespace, c.PodName, c.Kind)
	}
	return s
}

// Resolve finds one container by reference, in any namespace:
//   - a full container id, or containerd://<id> as kubectl describe prints it;
//   - a unique id prefix;
//   - POD/NAME or K8SNS/POD/NAME (Kubernetes pod and container names);
//   - a Kubernetes container name alone, when unique.
//
// Several matches give an *AmbiguousError listing them.
func (s *State) Resolve(ref string) (*Container, error) {
	return s.ResolveIn("", ref)
}

// ResolveIn is Resolve limited to containerd namespace ns ("" for all).
func (s *State) ResolveIn(ns, ref string) (*Container, error) {
	r := strings.TrimSpace(ref)
	for _, p := range []string{"containerd://", "docker://", "cri-o://"} {
		r = strings.TrimPrefix(r, p)
	}
	if r == "" {
		return nil, &NotFoundError{Ref: ref}
	}
	var cands []*Container
	for i := range s.Containers {
		if c := &s.Containers[i]; ns == "" || c.Namespace == ns {
			cands = append(cands, c)
		}
	}
	pick := func(match func(c *Container) bool) ([]*Container, bool) {
		var out []*Container
		for _, c := range cands {
			if match(c) {
				out = append(out, c)
			}
		}
		return out, len(out) > 0
	}
	var found []*Container
	var ok bool
	if strings.Contains(r, "/") {
		parts := strings.Split(r, "/")
		switch len(parts) {
		case 2:
			found, ok = pick(func(c *Container) bool { return c.PodName == parts[0] && c.ContainerName == parts[1] })
		case 3:
			found, ok = pick(func(c *Container) bool {
				return c.PodNamespace == parts[0] && c.PodName == parts[1] && c.ContainerName == parts[2]
			})
		}
		if !ok && len(parts) == 2 && ns == "" {
			// containerd namespace/id, as Describe prints it.
			found, ok = pick(func(c *Container) bool { return c.Namespace == parts[0] && c.ID == parts[1] })
		}
	} else if found, ok = pick(func(c *Container) bool { return c.ID == r }); !ok {
		if found, ok = pick(func(c *Container) bool { return strings.HasPrefix(c.ID, r) }); !ok {
			found, ok = pick(func(c *Container) bool { return c.ContainerName == r })
		}
	}
	switch len(found) {
	case 0:
		return nil, &NotFoundError{Ref: ref}
	case 1:
		return found[0], nil
	}
	e := &AmbiguousError{Ref: ref}
	for _, c := range found {
		e.Candidates = append(e.Candidates, c.Describe())
	}
	return nil, e
}
