package node

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/ctrlift/ctrlift/containerd"
	"github.com/ctrlift/ctrlift/export"
)

// ExportAllOptions tune ExportAll.
type ExportAllOptions struct {
	// ExportOptions apply to each container; Manifest is ignored (each
	// container gets its own manifest beside its tar).
	ExportOptions
	// List selects the containers as Containers does, when Refs is empty.
	List ListOptions
	// SupportName is recorded in the index as the source of List.Support
	// (e.g. the file it was read from); "" is the built-in list.
	SupportName string
	// Refs, when set, are the containers to export instead of the listing:
	// anything Resolve takes, and whole pods (pod:K8SNS/POD).
	Refs []string
	// HashInputs records each input file's sha256 in the index (reading
	// every input once more).
	HashInputs bool
	// Done, when set, is called after each container, exported or not.
	Done func(ExportedContainer)
}

// Index is index.json of ExportAll: what was read, by which tool, what
// was written and what was left out. It holds no clock time, so the same
// input gives the same index.
type Index struct {
	Tool        ToolVersion         `json:"tool"`
	Inputs      []InputInfo         `json:"inputs"`
	RuntimeRoot string              `json:"containerd_root"`
	Selection   Selection           `json:"selection"`
	Containers  []ExportedContainer `json:"containers"`
	Skipped     []SkippedContainer  `json:"skipped"`
	Failed      int                 `json:"failed"`
}

// Selection is how ExportAll chose the containers.
type Selection struct {
	Namespace         string   `json:"namespace,omitempty"`
	All               bool     `json:"all"`
	SupportContainers string   `json:"support_containers,omitempty"` // the list's source, when not the built-in one
	Refs              []string `json:"refs,omitempty"`
	Changes           bool     `json:"changes"`
}

// ContainerRef identifies a container in the index.
type ContainerRef struct {
	Namespace     string `json:"namespace"`
	ID            string `json:"id"`
	Kind          string `json:"kind,omitempty"`
	PodNamespace  string `json:"pod_namespace,omitempty"`
	PodName       string `json:"pod_name,omitempty"`
	ContainerName string `json:"container_name,omitempty"`
	Image         string `json:"image"`
}

func refOf(c *containerd.Container) ContainerRef {
	return ContainerRef{Namespace: c.Namespace, ID: c.ID, Kind: c.Kind, PodNamespace: c.PodNamespace, PodName: c.PodName, ContainerName: c.ContainerName, Image: c.Image}
}

// ExportedContainer is one container of ExportAll.
type ExportedContainer struct {
	File     string `json:"file,omitempty"` // relative to the directory
	Manifest string `json:"manifest,omitempty"`
	ContainerRef
	Status string    `json:"status"`
	Layers int       `json:"layers"`
	Tar    *Exported `json:"tar,omitempty"`
	Error  string    `json:"error,omitempty"`
	// Volumes are the container's mounts, included or not, and where
	// their data is.
	Volumes []Volume `json:"volumes,omitempty"`
}

// SkippedContainer is a container ExportAll left out, and why.
type SkippedContainer struct {
	ContainerRef
	Reason string `json:"reason"`
}

// InputInfo is the provenance of one input.
type InputInfo struct {
	Path        string         `json:"path"` // as given
	Kind        string         `json:"kind"` // "disk image", "directory", "tree archive", "database"
	Size        int64          `json:"size"` // bytes of the file given
	SHA256      string         `json:"sha256,omitempty"`
	Compression string         `json:"compression,omitempty"`
	RawSize     int64          `json:"raw_size,omitempty"` // bytes of the disk read
	Layout      string         `json:"layout,omitempty"`
	DiskGUID    string         `json:"disk_guid,omitempty"`
	Partition   *PartitionInfo `json:"partition,omitempty"` // the one holding the runtime state
}

// PartitionInfo names a partition and its filesystem.
type PartitionInfo struct {
	Number int    `json:"number"`
	Name   string `json:"name,omitempty"`
	GUID   string `json:"guid,omitempty"`
	Start  int64  `json:"start"`
	Size   int64  `json:"size"`
	FS     string `json:"fs"`
	Label  string `json:"label,omitempty"`
	UUID   string `json:"uuid,omitempty"`
}

// Inputs describes what was read: each input as given, its disk and the
// partition used; with hash, each input file's sha256.
func (n *Node) Inputs(hash bool) ([]InputInfo, error) {
	var out []InputInfo
	used := n.runtime
	if used == nil {
		used = n.tree
	}
	for _, in := range n.inputs {
		info := InputInfo{Path: in.path, Kind: in.kind.String()}
		fi, err := os.Stat(in.path)
		if err != nil {
			return nil, err
		}
		info.Size = fi.Size()
		if fi.IsDir() {
			info.Size = 0
			if hash {
				return nil, fmt.Errorf("%s is a directory: its files are hashed in the manifests, not as one input", in.path)
			}
			out = append(out, info)
			continue
		}
		if d := in.disk; d != nil {
			info.Compression, info.RawSize, info.Layout, info.DiskGUID = d.Compression, d.Size, d.Layout, d.DiskGUID
			if fi.Mode()&fs.ModeDevice != 0 {
				info.Size = d.Size
			}
		}
		if used.in == in && used.part != nil {
			p := used.part
			info.Partition = &PartitionInfo{Number: p.Number, Name: p.Name, GUID: p.GUID, Start: p.Start, Size: p.Size, FS: p.FS.Type, Label: p.FS.Label, UUID: p.FS.UUID}
		}
		if hash {
			if info.SHA256, err = hashFile(in.path); err != nil {
				return nil, err
			}
		}
		out = append(out, info)
	}
	return out, nil
}

func hashFile(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hashing %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ExportAll writes into dir one tar and one manifest per container that
// Containers lists with opt.List (or that opt.Refs name), plus index.json.
// The containers left out are named in the index with the reason. dir is
// created when missing; a directory that is not empty is written into
// only with Force. The index is written even when some containers fail;
// the error then says how many.
func (n *Node) ExportAll(dir string, opt ExportAllOptions) (*Index, error) {
	if err := opt.check(); err != nil {
		return nil, err
	}
	st, err := n.State()
	if err != nil {
		return nil, err
	}
	var shown []containerd.Container
	var hidden Hidden
	if len(opt.Refs) > 0 {
		seen := map[string]bool{}
		for _, ref := range opt.Refs {
			cs, err := n.ResolveAll(ref, opt.List)
			if err != nil {
				return nil, err
			}
			for _, c := range cs {
				if key := c.Namespace + "/" + c.ID; !seen[key] {
					seen[key] = true
					shown = append(shown, c.Brief())
				}
			}
		}
	} else {
		shown, hidden = selectContainers(st, n.opt.Namespace, opt.List)
	}
	g, err := n.guard(opt.Force)
	if err != nil {
		return nil, err
	}
	if err := g.ClaimDir(dir); err != nil {
		return nil, err
	}
	comp := opt.Compression
	if comp == "" {
		comp = export.None
	}
	ext := ".tar"
	switch comp {
	case export.Gzip:
		ext = ".tar.gz"
	case export.Zstd:
		ext = ".tar.zst"
	}
	idx := &Index{
		Tool:        Version(),
		RuntimeRoot: st.Root,
		Selection: Selection{Namespace: n.opt.Namespace, All: opt.List.All, SupportContainers: opt.SupportName,
			Refs: opt.Refs, Changes: opt.Changes},
		Containers: []ExportedContainer{},
		Skipped:    []SkippedContainer{},
	}
	if idx.Inputs, err = n.Inputs(opt.HashInputs); err != nil {
		return nil, err
	}
	for _, h := range hidden.Containers {
		idx.Skipped = append(idx.Skipped, SkippedContainer{ContainerRef: refOf(&h.Container), Reason: h.Reason})
	}
	indexPath := filepath.Join(dir, "index.json")
	if err := g.Claim(indexPath); err != nil {
		return nil, err
	}
	used := map[string]bool{"index": true}
	for i := range shown {
		c := &shown[i]
		e := ExportedContainer{ContainerRef: refOf(c), Status: c.Status.String(), Layers: len(c.Layers)}
		base := fileBase(c, used)
		sub := opt.ExportOptions
		sub.Compression = comp
		sub.Manifest = filepath.Join(dir, base+".manifest.jsonl")
		file := filepath.Join(dir, base+ext)
		err := g.Claim(file)
		if err == nil {
			err = g.Claim(sub.Manifest)
		}
		if err == nil {
			e.Volumes, _ = n.Volumes(c, sub.Volumes) // listed even when they are not written
			ls, lerr := n.containerLayers(c, &sub)
			if err = lerr; err == nil {
				e.Tar, err = n.write(g, ls, nil, file, sub)
			}
		}
		if err != nil {
			idx.Failed++
			e.Error = err.Error()
		} else {
			e.File, e.Manifest = base+ext, base+".manifest.jsonl"
		}
		idx.Containers = append(idx.Containers, e)
		if opt.Done != nil {
			opt.Done(e)
		}
	}
	err = g.WriteFile(indexPath, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		return enc.Encode(idx)
	})
	if err != nil {
		return nil, err
	}
	if idx.Failed > 0 {
		return idx, fmt.Errorf("%d of %d containers could not be exported (see index.json)", idx.Failed, len(shown))
	}
	return idx, nil
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// fileBase names a container's files: namespace, pod, name and short id,
// or the whole id when two short ids would collide.
func fileBase(c *containerd.Container, used map[string]bool) string {
	pod := c.PodName
	if c.PodNamespace != "" {
		pod = c.PodNamespace + "_" + c.PodName
	}
	name := c.ContainerName
	if name == "" {
		name = c.Kind
	}
	mk := func(id string) string {
		var parts []string
		for _, s := range []string{c.Namespace, pod, name, id} {
			if s != "" {
				parts = append(parts, s)
			}
		}
		return unsafeName.ReplaceAllString(strings.Join(parts, "_"), "-")
	}
	base := mk(ShortID(c.ID))
	if used[base] {
		base = mk(c.ID)
	}
	for i := 2; used[base]; i++ {
		base = mk(c.ID) + "-" + strconv.Itoa(i)
	}
	used[base] = true
	return base
}

// ShortID shortens a hex id to 12 characters, as docker and crictl
// print them; other ids (names given by hand) are kept whole.
func ShortID(id string) string {
	if len(id) <= 12 {
		return id
	}
	for _, r := range id {
		if !strings.ContainsRune("0123456789abcdef", r) {
			return id
		}
	}
	return id[:12]
}
