package node

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ctrlift/ctrlift/containerd"
	"github.com/ctrlift/ctrlift/export"
	"github.com/ctrlift/ctrlift/export/oci"
	"github.com/ctrlift/ctrlift/internal/safeout"
	"github.com/ctrlift/ctrlift/layers"
)

// FormatOCI writes the layers as an image (package export/oci): each
// snapshot of the chain as its own layer, bottom to top, the container's
// writable layer on top unless NoChanges (a copying snapshotter's chain,
// such as native's, is followed through the parents of its one snapshot,
// each layer what differs from its parent); the config is the image's own
// from the content store, rewritten for the rebuilt layers, or one made
// from the container's OCI spec when the content store no longer holds
// it. The image is named ctrlift/K8SNS/POD/NAME:SHORTID (":SHORTID-image"
// with NoChanges), or ctrlift/NAMESPACE:ID for a container not created
// through CRI.

var errNoChanges = errors.New("--no-changes applies to -o oci (the image without the container's changes)")

func (o ExportOptions) checkOCI() error {
	if o.Changes {
		return errors.New("-o oci writes the container as an image; --changes writes only its writable layer as a tar (for the image without the changes, use --no-changes)")
	}
	if o.Manifest != "" {
		return errors.New("-o oci writes no manifest of entries (nor -d DIR, which writes one per container): export each container to a FILE")
	}
	return nil
}

// maxBlob bounds a manifest, index or config blob read from the content
// store.
const maxBlob = 16 << 20

// writeOCI is write for FormatOCI.
func (n *Node) writeOCI(g *safeout.Guard, ls []layers.Layer, w io.Writer, path string, opt ExportOptions) (*Exported, error) {
	if path != "" && export.CompressionFor(path) != export.None {
		return nil, fmt.Errorf("%s: -o oci writes an uncompressed tar (its layers are compressed as --compress says): name it .tar", path)
	}
	var warnings []string
	var kept []layers.Layer
	for i, l := range ls {
		in, err := l.FS.Lookup(l.Dir)
		switch {
		case err != nil && opt.Layers.AllowMissing && errors.Is(err, fs.ErrNotExist):
			warnings = append(warnings, fmt.Sprintf("layer %d (%s): directory %s is missing; skipped", i, l.Name, l.Dir))
			continue
		case err != nil:
			return nil, fmt.Errorf("layer %d (%s): directory %s: %w", i, l.Name, l.Dir, err)
		case !in.IsDir():
			return nil, fmt.Errorf("layer %d (%s): %s is not a directory (mode %#o); refusing to follow it", i, l.Name, l.Dir, in.Mode)
		}
		kept = append(kept, l)
	}
	if len(kept) == 0 {
		return nil, errors.New("layers: no layer directory is present")
	}
	img, iw := n.ociImage(kept, opt.NoChanges)
	warnings = append(warnings, iw...)

	oopt := oci.Options{Compression: opt.Compression}
	if path != "" {
		if fi, err := os.Stat(path); err != nil || fi.Mode().IsRegular() {
			oopt.TempDir = filepath.Dir(path) // where the archive goes: room for it
		}
	}
	if opt.Progress != nil {
		var p ExportProgress
		todo := img.Layers
		if img.Writable && img.NoChanges {
			todo = todo[1:]
		}
		for _, l := range todo {
			layers.WalkLayer(l, layers.Options{}, func(_ string, e *layers.Entry) error {
				p.TotalFiles++
				if e.IsRegular() {
					p.TotalBytes += e.Size
				}
				return nil
			})
		}
		oopt.Progress = func(files, bytes int64) {
			p.Files, p.Bytes = files, bytes
			opt.Progress(p)
		}
	}

	var file *safeout.File
	if path != "" {
		var err error
		if file, err = g.Create(path); err != nil {
			return nil, err
		}
		w = file
	}
	sum := sha256.New()
	var size countWriter
	r, err := oci.Write(io.MultiWriter(w, sum, &size), img, oopt)
	if err == nil && file != nil {
		err = file.Commit()
	}
	if err != nil {
		if file != nil {
			file.Abort()
		}
		return nil, err
	}
	warnings = append(warnings, r.Warnings...)
	for _, msg := range warnings {
		n.warn(msg)
	}
	digest := hex.EncodeToString(sum.Sum(nil))
	return &Exported{Entries: r.Entries, Bytes: r.Bytes, Size: size.n, SHA256: digest, TarSHA256: digest,
		Compression: string(export.None), Skipped: r.Skipped, Warnings: warnings, OCI: r}, nil
}

// ociImage describes the image of layers ls (top first): the container
// whose writable layer ls[0] is, or the image whose rootfs chain they are,
// and that image's blobs from the content store.
func (n *Node) ociImage(ls []layers.Layer, noChanges bool) (*oci.Image, []string) {
	img := &oci.Image{Layers: ls, NoChanges: noChanges, Name: oci.Reference([]string{"ctrlift", "layers"}, "latest")}
	st, err := n.State()
	if err != nil || n.runtime == nil || n.runtime.tree != ls[0].FS {
		return img, []string{"the layers are not a container's or an image's of the runtime state: a minimal image config was made"}
	}
	top := ls[0].Dir
	for i := range st.Containers {
		c := &st.Containers[i]
		if len(c.Layers) == 0 || c.Layers[0].Path != top {
			continue
		}
		img.Writable, img.Created = true, c.CreatedAt
		img.Name = ociName(c, noChanges)
		img.ChangesBy = fmt.Sprintf("ctrlift export: the writable layer of container %s/%s", c.Namespace, c.ID)
		img.Annotations = map[string]string{oci.AnnotationPrefix + "container": c.Namespace + "/" + c.ID}
		if c.PodName != "" {
			img.Annotations[oci.AnnotationPrefix+"pod"] = c.PodNamespace + "/" + c.PodName
		}
		if c.ContainerName != "" {
			img.Annotations[oci.AnnotationPrefix+"container.name"] = c.ContainerName
		}
		parent := ""
		if len(c.Layers) > 1 {
			parent = c.Layers[1].SnapshotKey
		}
		var warnings, ws []string
		if len(ls) == 1 && containerd.CopySnapshotter(c.Layers[0].Snapshotter) {
			var chain []containerd.Layer
			img.Layers, chain, warnings = copyChain(st, c.Layers[0], ls[0])
			img.Copies = true
			if len(chain) > 1 {
				parent = chain[1].SnapshotKey
			}
		}
		img.Source, img.Config, ws = n.imageSource(st, c.Namespace, c.Image, c.ImageRef, parent)
		warnings = append(warnings, ws...)
		if img.Source.Config == nil {
			sc := specConfig(c.Spec)
			sc.Architecture, sc.OS, sc.Variant = img.Config.Architecture, img.Config.OS, img.Config.Variant
			sc.Created = c.CreatedAt
			img.Config = sc
		}
		return img, warnings
	}
	// No container's: a chain named by snapshot key or by directories; its
	// top snapshot's key is the chain id of the image whose rootfs it is.
	for _, s := range st.Snapshots {
		if s.Path != top || s.Path == "" {
			continue
		}
		_, hexKey, _ := strings.Cut(s.Key, ":")
		img.Name = oci.Reference([]string{"ctrlift", "snapshot"}, ShortID(hexKey))
		var name, config string
		for _, im := range st.Images {
			if im.Namespace == s.Namespace && im.ChainID == s.Key && im.ChainID != "" {
				name, config = im.Name, im.Config
				break
			}
		}
		var warnings, ws []string
		if len(ls) == 1 && containerd.CopySnapshotter(s.Snapshotter) {
			if chain, err := st.Chain(s.Namespace, s.Snapshotter, s.Key); err == nil && len(chain) == 1 {
				img.Layers, _, warnings = copyChain(st, chain[0], ls[0])
				img.Copies = true
			}
		}
		img.Source, img.Config, ws = n.imageSource(st, s.Namespace, name, config, s.Key)
		return img, append(warnings, ws...)
	}
	img.Config = n.nodePlatform(st)
	return img, []string{"the layers are not a container's or an image's of the runtime state: a minimal image config was made"}
}

// maxCopyChain bounds the snapshots a copy chain is followed through.
const maxCopyChain = 1000

// copyChain is the chain of a copying snapshotter's snapshot top (on disk
// as l): each snapshot a complete tree copied from its parent, top first,
// down to the first without a parent on the disk.
func copyChain(st *containerd.State, top containerd.Layer, l layers.Layer) ([]layers.Layer, []containerd.Layer, []string) {
	ls, chain := []layers.Layer{l}, []containerd.Layer{top}
	seen := map[string]bool{top.Name: true}
	for cur := top; cur.Parent != ""; {
		p, err := st.ParentLayer(cur)
		var why string
		switch {
		case err != nil:
			why = err.Error()
		case p.Path == "" || p.Note != "":
			why = fmt.Sprintf("its parent snapshot %s is not on the disk", p.Name)
		case seen[p.Name] || len(ls) >= maxCopyChain:
			why = fmt.Sprintf("its chain loops or passes %d snapshots", maxCopyChain)
		}
		if why != "" {
			// A copy is complete: nothing is lost, only the layers below.
			return ls, chain, []string{fmt.Sprintf("snapshot %s/%d: %s; it is written whole, as the base layer", cur.Snapshotter, cur.ID, why)}
		}
		seen[p.Name] = true
		ls = append(ls, layers.Layer{FS: l.FS, Dir: p.Path, Name: fmt.Sprintf("%s/%d", p.Snapshotter, p.ID)})
		chain = append(chain, p)
		cur = p
	}
	return ls, chain, nil
}

// ociName names a container's image.
func ociName(c *containerd.Container, noChanges bool) string {
	tag := ShortID(c.ID)
	if noChanges {
		tag += "-image"
	}
	parts := []string{"ctrlift", c.Namespace}
	if c.PodName != "" && c.ContainerName != "" {
		parts = []string{"ctrlift", c.PodNamespace, c.PodName, c.ContainerName}
	}
	return oci.Reference(parts, tag)
}

// imageSource reads from the content store the blobs of the image named
// name in namespace ns, preferring the one whose config is configDigest
// (CRI's image id, which outlives a re-tag), and checks that the config's
// layers make the snapshot chain chainKey. The returned Config holds the
// platform, for a config to be made when the image's own is gone.
func (n *Node) imageSource(st *containerd.State, ns, name, configDigest, chainKey string) (oci.Source, oci.Config, []string) {
	var src oci.Source
	var plat oci.Config
	var warnings []string
	var im *containerd.Image
	if name != "" || configDigest != "" {
		for pass := 0; pass < 3 && im == nil; pass++ {
			for i := range st.Images {
				x := &st.Images[i]
				if x.Namespace != ns {
					continue
				}
				byName, byConfig := x.Name == name, configDigest != "" && x.Config == configDigest
				if pass == 0 && byName && (byConfig || configDigest == "") || pass == 1 && byConfig || pass == 2 && byName {
					im = x
					break
				}
			}
		}
	}
	if im != nil {
		src.Name = im.Name
		if strings.HasPrefix(im.Name, "sha256:") && name != "" {
			src.Name = name
		}
		if b, err := n.readBlob(st, im.Target.Digest); err != nil {
			warnings = append(warnings, fmt.Sprintf("image %s: %v", im.Name, err))
		} else {
			var top struct {
				Manifests []struct {
					MediaType string `json:"mediaType"`
					Digest    string `json:"digest"`
					Platform  *struct {
						Architecture string `json:"architecture"`
						OS           string `json:"os"`
						Variant      string `json:"variant"`
					} `json:"platform"`
				} `json:"manifests"`
			}
			json.Unmarshal(b, &top)
			if len(top.Manifests) == 0 {
				src.Manifest = b
			} else {
				// An index: the platform's manifest, the one with the
				// container's config when it is known.
				src.Index = b
				for _, d := range top.Manifests {
					if strings.Contains(d.MediaType, "index") || strings.Contains(d.MediaType, "list") {
						continue
					}
					mb, err := n.readBlob(st, d.Digest)
					if err != nil {
						continue
					}
					if configDigest == "" || manifestConfig(mb) == configDigest {
						src.Manifest = mb
						if d.Platform != nil {
							plat = oci.Config{Architecture: d.Platform.Architecture, OS: d.Platform.OS, Variant: d.Platform.Variant}
						}
						break
					}
				}
			}
			if src.Manifest != nil {
				if cd := manifestConfig(src.Manifest); cd == "" {
					warnings = append(warnings, fmt.Sprintf("image %s: its manifest names no config", im.Name))
				} else if cb, err := n.readBlob(st, cd); err != nil {
					warnings = append(warnings, fmt.Sprintf("image %s: config: %v", im.Name, err))
				} else {
					src.Config = cb
				}
			} else if src.Index != nil {
				warnings = append(warnings, fmt.Sprintf("image %s: no manifest of its index is in the content store", im.Name))
			}
		}
	}
	if configDigest != "" && (src.Config == nil || manifestConfig(src.Manifest) != configDigest) {
		// The manifest is gone, or the name now names another image: the
		// config CRI resolved may still be there, without its manifest.
		if cb, err := n.readBlob(st, configDigest); err == nil {
			if src.Config != nil {
				warnings = append(warnings, fmt.Sprintf("image %s now names another image than the container's (config %s): the container's config is used, its manifest is unknown", src.Name, configDigest))
			}
			src.Config, src.Manifest, src.Index = cb, nil, nil
		}
	}
	if src.Config != nil && chainKey != "" {
		var cfg struct {
			RootFS struct {
				DiffIDs []string `json:"diff_ids"`
			} `json:"rootfs"`
		}
		json.Unmarshal(src.Config, &cfg)
		if ch := containerd.ChainIDs(cfg.RootFS.DiffIDs); len(ch) == 0 || ch[len(ch)-1] != chainKey {
			warnings = append(warnings, fmt.Sprintf("image %s: its config's layers are not the snapshot chain %s the container runs on; its config is used all the same", src.Name, chainKey))
		}
	}
	if src.Config == nil {
		what := name
		if what == "" {
			what = configDigest
		}
		if what != "" {
			warnings = append(warnings, fmt.Sprintf("the config of image %s is not in the content store: a minimal config was made from the container's OCI spec", what))
		}
		if plat.Architecture == "" {
			plat = n.nodePlatform(st)
		}
	}
	return src, plat, warnings
}

// manifestConfig is the config digest a manifest names.
func manifestConfig(b []byte) string {
	var m struct {
		Config struct {
			Digest string `json:"digest"`
		} `json:"config"`
	}
	json.Unmarshal(b, &m)
	return m.Config.Digest
}

// nodePlatform is the platform of the first image whose config is in the
// content store: the node pulls its own.
func (n *Node) nodePlatform(st *containerd.State) oci.Config {
	for _, im := range st.Images {
		if im.Config == "" {
			continue
		}
		b, err := n.readBlob(st, im.Config)
		if err != nil {
			continue
		}
		var p struct {
			Architecture string `json:"architecture"`
			OS           string `json:"os"`
			Variant      string `json:"variant"`
		}
		if json.Unmarshal(b, &p) == nil && p.Architecture != "" {
			return oci.Config{Architecture: p.Architecture, OS: p.OS, Variant: p.Variant}
		}
	}
	return oci.Config{}
}

// readBlob reads a blob of the content store, at most maxBlob bytes, and
// checks it against its digest.
func (n *Node) readBlob(st *containerd.State, digest string) ([]byte, error) {
	p := st.BlobPath(digest)
	alg, want, _ := strings.Cut(digest, ":")
	if p == "" || alg != "sha256" {
		return nil, fmt.Errorf("blob %q: not a sha256 digest", digest)
	}
	f, err := n.runtime.files.Open(p)
	if err != nil {
		return nil, fmt.Errorf("blob %s is not in the content store (%v)", digest, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Size() > maxBlob {
		return nil, fmt.Errorf("blob %s: %s is not a regular file of at most %d bytes", digest, p, maxBlob)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxBlob+1))
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", digest, err)
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != want {
		return nil, fmt.Errorf("blob %s: %s does not match its digest", digest, p)
	}
	return b, nil
}

// specConfig is the run configuration of a container's OCI spec.
func specConfig(spec json.RawMessage) oci.Config {
	var s struct {
		Process *struct {
			User struct {
				UID      uint32 `json:"uid"`
				GID      uint32 `json:"gid"`
				Username string `json:"username"`
			} `json:"user"`
			Args []string `json:"args"`
			Env  []string `json:"env"`
			Cwd  string   `json:"cwd"`
		} `json:"process"`
	}
	if json.Unmarshal(spec, &s) != nil || s.Process == nil {
		return oci.Config{}
	}
	p := s.Process
	c := oci.Config{Env: p.Env, Cmd: p.Args, WorkingDir: p.Cwd}
	switch {
	case p.User.Username != "":
		c.User = p.User.Username
	case p.User.UID != 0 || p.User.GID != 0:
		c.User = fmt.Sprintf("%d:%d", p.User.UID, p.User.GID)
	}
	return c
}
