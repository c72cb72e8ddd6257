package containerd

import (
	"fmt"
	"time"

	"github.com/ctrlift/ctrlift/containerd/boltsafe"
)

// SandboxRecord is one record of containerd's sandbox store (the sandbox
// API of containerd 1.7 and the store of every 2.x node). It has no status:
// a sandbox's status comes from its pause container's records.
type SandboxRecord struct {
	Namespace      string              `json:"namespace"`
	ID             string              `json:"id"`
	Bucket         string              `json:"bucket"` // where it was read: v1/<ns>/sandboxes (2.x) or <ns>/sandboxes (1.7, 2.0 pre-releases)
	Sandboxer      string              `json:"sandboxer,omitempty"`
	Runtime        string              `json:"runtime,omitempty"`
	RuntimeOptions *AnyValue           `json:"runtime_options,omitempty"`
	CreatedAt      time.Time           `json:"created_at,omitzero"`
	UpdatedAt      time.Time           `json:"updated_at,omitzero"`
	Labels         map[string]string   `json:"labels,omitempty"`
	Spec           *AnyValue           `json:"spec,omitempty"`
	Extensions     map[string]AnyValue `json:"extensions,omitempty"`
}

// criSandboxExtension is the extension the CRI plugin of containerd 2.x
// stores its sandbox metadata under (the same JSON as the pause
// container's io.cri-containerd.sandbox.metadata).
const criSandboxExtension = "metadata"

// sandboxStores reads both places containerd has kept sandboxes: the
// bolt root's <ns>/sandboxes, where containerd 1.7 wrote them, and
// v1/<ns>/sandboxes, where schema version 4 (containerd 2.0) moved them.
func (d decoder) sandboxStores(root *boltsafe.Bucket) []SandboxRecord {
	var out []SandboxRecord
	if v1 := root.Bucket("v1"); v1 != nil {
		for _, ns := range v1.Buckets() {
			out = append(out, d.sandboxes(ns, "v1/"+ns+"/sandboxes", v1.Bucket(ns, "sandboxes"))...)
		}
	}
	for _, ns := range root.Buckets() {
		if ns == "v1" {
			continue
		}
		out = append(out, d.sandboxes(ns, ns+"/sandboxes", root.Bucket(ns, "sandboxes"))...)
	}
	return out
}

func (d decoder) sandboxes(ns, where string, b *boltsafe.Bucket) []SandboxRecord {
	var out []SandboxRecord
	for _, id := range b.Buckets() {
		sb := b.Bucket(id)
		at := where + "/" + id
		r := SandboxRecord{
			Namespace: ns, ID: id, Bucket: where,
			Sandboxer: string(sb.Get("sandboxer")),
			Runtime:   string(sb.Bucket("runtime").Get("name")),
			CreatedAt: d.timeAt(sb, "createdat", at),
			UpdatedAt: d.timeAt(sb, "updatedat", at),
			Labels:    sb.Bucket("labels").Strings(),
		}
		r.RuntimeOptions = d.anyValue(sb.Bucket("runtime").Get("options"), at+"/runtime/options")
		r.Spec = d.anyValue(sb.Get("spec"), at+"/spec")
		ext := sb.Bucket("extensions")
		for _, name := range ext.Keys() {
			if r.Extensions == nil {
				r.Extensions = map[string]AnyValue{}
			}
			r.Extensions[name] = *d.anyValue(ext.Get(name), at+"/extensions/"+name)
		}
		out = append(out, r)
	}
	return out
}

// joinSandboxes attaches each sandbox record to its pause container (same
// namespace and id). A record without one (a sandboxer that runs no pause
// container, or a pause container already removed) becomes a container of
// kind sandbox of its own, with its pod from the CRI metadata extension.
func (d decoder) joinSandboxes(m *MetaDB, recs []SandboxRecord) {
	byID := map[string]int{}
	for i, c := range m.Containers {
		byID[c.Namespace+"\x00"+c.ID] = i
	}
	known := map[string]bool{}
	for _, n := range m.Namespaces {
		known[n.Name] = true
	}
	for i := range recs {
		r := &recs[i]
		if !known[r.Namespace] {
			known[r.Namespace] = true
			m.Namespaces = append(m.Namespaces, Namespace{Name: r.Namespace})
		}
		if j, ok := byID[r.Namespace+"\x00"+r.ID]; ok {
			c := &m.Containers[j]
			if c.SandboxRecord != nil {
				d.warn("%s/%s: sandbox %s is also in %s; the first is shown", r.Bucket, r.ID, r.ID, c.SandboxRecord.Bucket)
				continue
			}
			c.SandboxRecord = r
			if c.Kind == "" {
				c.Kind = "sandbox"
			}
			d.sandboxPod(c, r)
			continue
		}
		c := Container{
			Namespace: r.Namespace, ID: r.ID, Kind: "sandbox",
			Runtime: r.Runtime, RuntimeOptions: r.RuntimeOptions,
			CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
			Labels: r.Labels, Status: StatusUnknown, SandboxRecord: r,
		}
		d.sandboxPod(&c, r)
		byID[r.Namespace+"\x00"+r.ID] = len(m.Containers)
		m.Containers = append(m.Containers, c)
	}
}

// sandboxPod fills the pod fields the pause container lacks from the
// record's CRI metadata extension.
func (d decoder) sandboxPod(c *Container, r *SandboxRecord) {
	a, ok := r.Extensions[criSandboxExtension]
	if !ok || c.CRIMetadata != nil {
		return
	}
	where := fmt.Sprintf("%s/%s/extensions/%s", r.Bucket, r.ID, criSandboxExtension)
	var m criSandboxMeta
	raw, ok := d.criMetadata(&a, where, &m)
	c.CRIMetadata = raw
	if ok {
		d.applySandboxMeta(c, &m)
	}
}
