package node

import (
	"fmt"
	"strings"

	"github.com/ctrlift/ctrlift/containerd"
)

// Runtime names a container runtime, as the prefix of a runtime-qualified
// container id that kubectl describe prints ("containerd://ID").
type Runtime string

const (
	RuntimeContainerd Runtime = "containerd"
	RuntimeDocker     Runtime = "docker"
	RuntimeCRIO       Runtime = "cri-o"
)

func (r Runtime) String() string { return string(r) }

// PodPrefix starts a reference to a whole pod: "pod:K8SNS/POD" or
// "pod:POD" when the pod name is unique.
const PodPrefix = "pod:"

// AmbiguousError is returned when a reference matches several containers.
type AmbiguousError struct {
	Ref        string
	Candidates []string // as Describe names them
}

func (e *AmbiguousError) Error() string {
	return fmt.Sprintf("%q matches %d containers:\n  %s", e.Ref, len(e.Candidates), strings.Join(e.Candidates, "\n  "))
}

// NotFoundError is returned when nothing matches a reference.
type NotFoundError struct{ Ref string }

func (e *NotFoundError) Error() string { return fmt.Sprintf("no container matches %q", e.Ref) }

// Describe names a container for messages: namespace/id plus its pod,
// e.g. "k8s.io/4d9b23b2… (blog/wordpress-6d8f7b9c5-q2lzx/wordpress)".
func Describe(c *containerd.Container) string {
	s := c.Namespace + "/" + c.ID
	switch {
	case c.PodName != "" && c.ContainerName != "":
		s += fmt.Sprintf(" (%s/%s/%s)", c.PodNamespace, c.PodName, c.ContainerName)
	case c.PodName != "":
		s += fmt.Sprintf(" (%s/%s %s)", c.PodNamespace, c.PodName, c.Kind)
	}
	return s
}

// Resolve finds the one container a reference names, in the selected
// namespaces:
//   - a full container id, or a unique id prefix;
//   - a runtime-qualified id as kubectl describe prints it
//     (containerd://ID, docker://ID, cri-o://ID), which also selects
//     the runtime;
//   - POD/NAME or K8SNS/POD/NAME (Kubernetes pod and container names),
//     or NAME alone when unique;
//   - NAMESPACE/ID, containerd's namespace and id, as Describe prints it.
//
// Several matches give an *AmbiguousError listing them. A pod reference
// (pod:K8SNS/POD) names several containers: see ResolveAll.
func (n *Node) Resolve(ref string) (*containerd.Container, error) {
	if strings.HasPrefix(strings.TrimSpace(ref), PodPrefix) {
		cs, err := n.ResolveAll(ref, ListOptions{})
		if err != nil {
			return nil, err
		}
		if len(cs) != 1 {
			e := &AmbiguousError{Ref: ref}
			for i := range cs {
				e.Candidates = append(e.Candidates, Describe(&cs[i]))
			}
			return nil, e
		}
		return &cs[0], nil
	}
	st, err := n.State()
	if err != nil {
		return nil, err
	}
	if err := n.checkRuntime(ref); err != nil {
		return nil, err
	}
	return resolve(st, n.opt.Namespace, ref)
}

// ResolveAll is Resolve that also takes a whole pod, "pod:K8SNS/POD" or
// "pod:POD": its containers, without its sandbox unless opt.All (support
// container rules do not apply to what is named explicitly).
func (n *Node) ResolveAll(ref string, opt ListOptions) ([]containerd.Container, error) {
	r := strings.TrimSpace(ref)
	if !strings.HasPrefix(r, PodPrefix) {
		c, err := n.Resolve(ref)
		if err != nil {
			return nil, err
		}
		return []containerd.Container{*c}, nil
	}
	st, err := n.State()
	if err != nil {
		return nil, err
	}
	pod := strings.TrimPrefix(r, PodPrefix)
	podNS, podName, qualified := strings.Cut(pod, "/")
	if !qualified {
		podNS, podName = "", pod
	}
	if podName == "" || strings.Contains(podName, "/") {
		return nil, fmt.Errorf("pod reference %q: want pod:K8SNS/POD or pod:POD", ref)
	}
	var out []containerd.Container
	namespaces := map[string]bool{}
	for i := range st.Containers {
		c := &st.Containers[i]
		if !n.inNamespace(c.Namespace) || c.PodName != podName || (qualified && c.PodNamespace != podNS) {
			continue
		}
		namespaces[c.PodNamespace] = true
		if c.Kind == "sandbox" && !opt.All {
			continue
		}
		out = append(out, *c)
	}
	if len(namespaces) > 1 {
		return nil, fmt.Errorf("pod %q is in several Kubernetes namespaces: use pod:K8SNS/POD", podName)
	}
	if len(namespaces) == 0 {
		return nil, &NotFoundError{Ref: ref}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("pod %s has only its sandbox (include it to see it)", pod)
	}
	return out, nil
}

// checkRuntime refuses a reference qualified with a runtime whose state
// this node's input does not hold.
func (n *Node) checkRuntime(ref string) error {
	rt, _, ok := splitRuntime(ref)
	if !ok || rt == RuntimeContainerd || (rt == RuntimeDocker && n.docker != nil) || (rt == RuntimeCRIO && n.holdsCRIO()) {
		return nil
	}
	holds := n.stateHeld()
	return fmt.Errorf("%q names a %s container, but %s holds %s", ref, rt, n.RuntimeSource(), holds)
}

// splitRuntime splits "containerd://ID" into its runtime and id.
func splitRuntime(ref string) (Runtime, string, bool) {
	r := strings.TrimSpace(ref)
	for _, rt := range []Runtime{RuntimeContainerd, RuntimeDocker, RuntimeCRIO} {
		if id, ok := strings.CutPrefix(r, string(rt)+"://"); ok {
			return rt, id, true
		}
	}
	return "", r, false
}

func resolve(st *containerd.State, ns, ref string) (*containerd.Container, error) {
	rt, r, qualified := splitRuntime(ref)
	if r == "" {
		return nil, &NotFoundError{Ref: ref}
	}
	var cands []*containerd.Container
	for i := range st.Containers {
		c := &st.Containers[i]
		if qualified && !runtimeMatches(rt, c) {
			continue // the prefix selects the runtime
		}
		if ns == "" || c.Namespace == ns {
			cands = append(cands, c)
		}
	}
	pick := func(match func(c *containerd.Container) bool) ([]*containerd.Container, bool) {
		var out []*containerd.Container
		for _, c := range cands {
			if match(c) {
				out = append(out, c)
			}
		}
		return out, len(out) > 0
	}
	var found []*containerd.Container
	var ok bool
	if strings.Contains(r, "/") {
		parts := strings.Split(r, "/")
		switch len(parts) {
		case 2:
			found, ok = pick(func(c *containerd.Container) bool { return c.PodName == parts[0] && c.ContainerName == parts[1] })
		case 3:
			found, ok = pick(func(c *containerd.Container) bool {
				return c.PodNamespace == parts[0] && c.PodName == parts[1] && c.ContainerName == parts[2]
			})
		}
		if !ok && len(parts) == 2 && ns == "" {
			// containerd namespace/id, as Describe prints it.
			found, ok = pick(func(c *containerd.Container) bool { return c.Namespace == parts[0] && c.ID == parts[1] })
		}
	} else if found, ok = pick(func(c *containerd.Container) bool { return c.ID == r }); !ok {
		if found, ok = pick(func(c *containerd.Container) bool { return strings.HasPrefix(c.ID, r) }); !ok {
			found, _ = pick(func(c *containerd.Container) bool {
				return c.ContainerName == r || (c.DockerName != "" && c.DockerName == r)
			})
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
		e.Candidates = append(e.Candidates, Describe(c))
	}
	return nil, e
}
