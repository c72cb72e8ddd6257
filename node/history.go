package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/ctrlift/ctrlift/containerd"
	"github.com/ctrlift/ctrlift/export"
	"github.com/ctrlift/ctrlift/layers"
	"github.com/ctrlift/ctrlift/vfs"
)

// What a layer does to a path, in a LayerHit.
const (
	// HitHolds: the layer has the path and the container sees it (a
	// directory: one of the layers its merged listing comes from).
	HitHolds = "holds"
	// HitHiddenBelow: the layer has the path, but a layer above hides it:
	// a newer copy of a file, a whiteout, an opaque directory.
	HitHiddenBelow = "hidden-below"
	// HitWhiteout: the layer deletes the path, or a directory on the way
	// to it (the record's path says which), from the layers below.
	HitWhiteout = "whiteout"
	// HitOpaqueHides: a directory on the way to the path is opaque in the
	// layer (deleted and made again), so the path of the layers below is
	// not seen.
	HitOpaqueHides = "opaque-hides"
	// HitNonDirHides: the layer has a file or symlink where a directory on
	// the way to the path is in the layers below, which it hides.
	HitNonDirHides = "nondir-hides"
)

// LayerHit is one layer of a chain that holds, deletes or hides a path:
// the entry in that layer (for a whiteout, opaque directory or file on the
// way to the path, that entry), the layer's snapshot and, when the image's
// blobs are in the content store, the image layer it was unpacked from and
// the history entry that made it. The record's path is the entry's path in
// the layer: the container's, but under a renamed directory (overlay
// redirect, see Note) the one the lower layers hold it at.
type LayerHit struct {
	What string `json:"what"`
	export.Record
	LayerIndex  int    `json:"layer_index"` // in the chain, 0 = top
	Snapshotter string `json:"snapshotter"`
	SnapshotID  uint64 `json:"snapshot_id"`
	SnapshotKey string `json:"snapshot_key"`
	Kind        string `json:"snapshot_kind"` // active (a container's writable layer), committed, view
	LayerDir    string `json:"layer_dir"`     // on the partition
	DiffID      string `json:"diff_id,omitempty"`
	// LayerDigest, LayerSize and LayerMediaType are the image manifest's
	// layer blob, as pulled (compressed).
	LayerDigest    string `json:"layer_digest,omitempty"`
	LayerSize      int64  `json:"layer_size,omitempty"`
	LayerMediaType string `json:"layer_media_type,omitempty"`
	// CreatedBy, Created and Comment are the image config's history entry
	// of the layer; a container's writable layer has none.
	CreatedBy string     `json:"created_by,omitempty"`
	Created   *time.Time `json:"created,omitempty"`
	Comment   string     `json:"comment,omitempty"`
	// Note explains an entry under an opaque directory, a renamed
	// directory, a metadata-only copy-up.
	Note string `json:"note,omitempty"`
}

// History lists every layer of the container ref names (see Resolve)
// that holds, deletes or hides path, top (writable) layer first; a layer
// that has nothing to do with the path is left out. Each hit carries the
// layer's entry (sha256 of files), the snapshot, and the image layer and
// history entry it came from when the image's blobs are in the content
// store. For a copying snapshotter (native) the chain is the container's
// snapshot and those it was copied from, each a whole tree: below the top,
// every copy is hidden.
func (n *Node) History(ref, p string, opt LayerOptions) ([]LayerHit, error) {
	c, err := n.Resolve(ref)
	if err != nil {
		return nil, err
	}
	return n.HistoryContainer(c, p, opt)
}

// HistoryContainer is History for a container already resolved.
func (n *Node) HistoryContainer(c *containerd.Container, p string, opt LayerOptions) ([]LayerHit, error) {
	ch, err := n.containerChain(c, opt)
	if err != nil {
		return nil, err
	}
	return n.history(ch, p, export.NewDigester())
}

// chain is a snapshot chain on the disk: each layer with its snapshot, top
// first, and the image it was unpacked from.
type chain struct {
	layers []layers.Layer
	snaps  []containerd.Layer
	copies bool // a copying snapshotter: each layer a whole tree
	image  imageRef
}

// imageRef names the image a chain was unpacked from.
type imageRef struct{ namespace, name, config string }

// containerChain is c's chain, its layers on the disk.
func (n *Node) containerChain(c *containerd.Container, opt LayerOptions) (*chain, error) {
	ls, err := n.Layers(c, opt)
	if err != nil {
		return nil, err
	}
	ch := &chain{image: imageRef{c.Namespace, c.Image, c.ImageRef}}
	if len(ls) == 1 && containerd.CopySnapshotter(c.Layers[0].Snapshotter) {
		st, err := n.State()
		if err != nil {
			return nil, err
		}
		var ws []string
		ch.layers, ch.snaps, ws = copyChain(st, c.Layers[0], ls[0])
		ch.copies = true
		for _, w := range ws {
			n.warn(w)
		}
		return ch, nil
	}
	ch.layers = ls
	for _, l := range ls {
		for _, s := range c.Layers {
			if s.Path == l.Dir {
				ch.snaps = append(ch.snaps, s)
				break
			}
		}
	}
	if len(ch.snaps) != len(ch.layers) {
		return nil, fmt.Errorf("container %s: its layers do not match its snapshot chain", c.ID)
	}
	return ch, nil
}

// history is History on a chain, hashing files with dg.
func (n *Node) history(ch *chain, p string, dg *export.Digester) ([]LayerHit, error) {
	names := splitPath(p)
	looks, err := lookChain(ch, names)
	if err != nil {
		return nil, err
	}
	hits := classify(looks, ch.copies)
	img := n.imageLayers(ch)
	for k := range hits {
		h := &hits[k]
		lk, l, s := looks[h.LayerIndex], ch.layers[h.LayerIndex], ch.snaps[h.LayerIndex]
		in, at := lk.entry, joinPath(lk.names)
		if in == nil {
			in, at = lk.hiderInode, joinPath(lk.names[:lk.hiderDepth])
		}
		r, err := export.NewRecord(at, in, l.FS)
		if err != nil {
			return nil, fmt.Errorf("layer %d (%s): %s: %w", h.LayerIndex, l.Name, at, err)
		}
		r.Layer, r.Whiteout, r.Opaque = l.Name, h.What == HitWhiteout, isOpaque(in)
		var notes []string
		switch {
		case lk.entry != nil && lk.metacopy:
			r.SHA256Omitted = "metadata-only copy-up (overlay metacopy): its data is in a lower layer"
			notes = append(notes, "metadata-only copy-up: its data is the next file below")
		case in.IsRegular() && !r.Whiteout:
			if r.SHA256, r.SHA256Omitted, err = dg.Sum(l.FS, in); err != nil {
				return nil, fmt.Errorf("layer %d (%s): %s: %w", h.LayerIndex, l.Name, at, err)
			}
		}
		if lk.entry != nil && lk.hider == HitOpaqueHides {
			notes = append(notes, "inside the opaque directory "+joinPath(lk.names[:lk.hiderDepth])+", which hides the layers below")
		}
		if lk.note != "" {
			notes = append(notes, lk.note)
		}
		h.Record, h.Note = r, strings.Join(notes, "; ")
		h.Snapshotter, h.SnapshotID, h.SnapshotKey, h.Kind, h.LayerDir = s.Snapshotter, s.ID, s.SnapshotKey, string(s.Kind), l.Dir
		h.DiffID = s.DiffID
		if il, ok := img[s.SnapshotKey]; ok {
			h.DiffID, h.LayerDigest, h.LayerSize, h.LayerMediaType = il.diffID, il.digest, il.size, il.mediaType
			h.CreatedBy, h.Created, h.Comment = il.createdBy, il.created, il.comment
		}
	}
	return hits, nil
}

// lookChain looks names up in each layer of ch alone, top first.
func lookChain(ch *chain, names []string) ([]layerLook, error) {
	looks := make([]layerLook, len(ch.layers))
	for i, l := range ch.layers {
		lk, err := lookLayer(l, names, i == len(ch.layers)-1)
		if err != nil {
			return nil, err
		}
		looks[i] = lk
		if lk.redirected != nil {
			names = lk.redirected // what the layers below look up
		}
	}
	return looks, nil
}

// classify walks down the chain as the kernel's lookup does: the first
// layer that has the path decides; a directory merges with the directories
// below; a whiteout, an opaque directory or a file (on the way, or a file
// at the path) stops it. Layers that hide the path are kept only when a
// layer below has it. In a chain of copies every layer below the top is
// hidden.
func classify(looks []layerLook, copies bool) []LayerHit {
	var hits []LayerHit
	stopped := false  // a layer above hides the path of the layers below
	isDir := false    // a layer above holds a directory: only directories merge with it
	metacopy := false // a layer above holds a metadata-only copy-up: the data is the next file
	for i, lk := range looks {
		stopped = stopped || copies && i > 0
		if lk.entry == nil {
			if lk.hider != "" {
				hits = append(hits, LayerHit{What: lk.hider, LayerIndex: i})
				stopped = true
			}
			continue
		}
		e := lk.entry
		what := HitHolds
		switch {
		case lk.whiteout:
			what = HitWhiteout
		case stopped, isDir && !e.IsDir(), metacopy && !e.IsRegular():
			what = HitHiddenBelow
		}
		hits = append(hits, LayerHit{What: what, LayerIndex: i})
		switch {
		case what != HitHolds:
			stopped = true
		case e.IsDir():
			isDir = true
			stopped = lk.opaque
		case lk.metacopy:
			metacopy = true
		default:
			stopped = true
		}
		if lk.hider == HitOpaqueHides {
			stopped = true
		}
	}
	var out []LayerHit
	for k, h := range hits {
		if looks[h.LayerIndex].entry == nil {
			below := false
			for _, b := range hits[k+1:] {
				below = below || looks[b.LayerIndex].entry != nil
			}
			if !below {
				continue
			}
		}
		out = append(out, h)
	}
	return out
}

// splitPath is a path's components, none for the root.
func splitPath(p string) []string {
	c := CleanPath(p)
	if c == "." {
		return nil
	}
	return strings.Split(c, "/")
}

// joinPath is the absolute path of components.
func joinPath(names []string) string { return "/" + strings.Join(names, "/") }

// layerLook is what one layer alone holds at a path, by the overlay rules
// of a containerd mount (trusted.overlay.* markers).
type layerLook struct {
	names    []string   // the path looked up in this layer
	entry    *vfs.Inode // at the path; nil when absent
	whiteout bool       // entry is a whiteout
	opaque   bool       // entry is an opaque directory
	metacopy bool       // entry is a metadata-only copy-up
	// hider: a whiteout, opaque directory or non-directory on the way
	// (names[:hiderDepth]) that hides the path of the layers below:
	// HitWhiteout, HitOpaqueHides or HitNonDirHides.
	hider      string
	hiderDepth int
	hiderInode *vfs.Inode
	// redirected: the path the layers below look up, when a directory
	// on the way was renamed (overlay redirect).
	redirected []string
	note       string
}

// Overlay markers as containerd's overlayfs snapshotter mounts them
// (trusted.overlay.*), by the rules of package layers.
const overlayPrefix = "trusted.overlay."

func overlayXattr(in *vfs.Inode, name string) (string, bool) {
	v, ok := in.Xattr(overlayPrefix + name)
	return string(v), ok
}

func isOpaque(in *vfs.Inode) bool {
	v, _ := overlayXattr(in, "opaque")
	return in.IsDir() && v == "y"
}

// isWhiteout: a char device 0:0, or an xattr whiteout (Linux 6.7+) in a
// directory marked for them.
func isWhiteout(in, dir *vfs.Inode) bool {
	if layers.IsWhiteout(in) {
		return true
	}
	_, marked := overlayXattr(dir, "whiteouts")
	if v, _ := overlayXattr(dir, "opaque"); v == "x" {
		marked = true
	}
	_, wh := overlayXattr(in, "whiteout")
	return marked && wh && in.IsRegular() && in.Size == 0
}

// lookLayer looks up names in layer l alone, without following symlinks.
func lookLayer(l layers.Layer, names []string, bottom bool) (layerLook, error) {
	lk := layerLook{names: names}
	cur, err := l.FS.Lookup(l.Dir)
	if err != nil {
		return lk, fmt.Errorf("layer %s: directory %s: %w", l.Name, l.Dir, err)
	}
	if !cur.IsDir() {
		return lk, fmt.Errorf("layer %s: %s is not a directory", l.Name, l.Dir)
	}
	if len(names) == 0 {
		lk.entry = cur // the kernel merges every layer's root, opaque or not
		return lk, nil
	}
	hide := func(what string, depth int, in *vfs.Inode) {
		if lk.hider == "" {
			lk.hider, lk.hiderDepth, lk.hiderInode = what, depth, in
		}
	}
	for k, name := range names {
		in, err := l.FS.LookupAt(cur, name)
		if errors.Is(err, fs.ErrNotExist) {
			return lk, nil
		}
		if err != nil {
			return lk, fmt.Errorf("layer %s: %s: %w", l.Name, joinPath(names[:k+1]), err)
		}
		last := k == len(names)-1
		switch {
		case isWhiteout(in, cur) && last:
			lk.entry, lk.whiteout = in, true
			return lk, nil
		case isWhiteout(in, cur):
			lk.hider, lk.hiderDepth, lk.hiderInode = HitWhiteout, k+1, in
			return lk, nil
		case last:
			lk.entry, lk.opaque = in, isOpaque(in)
			if _, ok := overlayXattr(in, "metacopy"); ok && in.IsRegular() && !bottom {
				lk.metacopy = true
			}
			if in.IsDir() && !bottom {
				lk.redirect(k, in)
			}
			return lk, nil
		case !in.IsDir():
			hide(HitNonDirHides, k+1, in)
			return lk, nil
		}
		if isOpaque(in) {
			hide(HitOpaqueHides, k+1, in)
		}
		if !bottom {
			lk.redirect(k, in)
		}
		cur = in
	}
	return lk, nil
}

// redirect applies the overlay redirect of dir, the directory at
// names[:k+1] (a renamed directory), to what the layers below look up.
// The first redirect on the way is followed.
func (lk *layerLook) redirect(k int, dir *vfs.Inode) {
	rd, ok := overlayXattr(dir, "redirect")
	if !ok || lk.redirected != nil {
		return
	}
	names, rest := lk.names, lk.names[k+1:]
	var to []string
	switch {
	case strings.HasPrefix(rd, "/"):
		to = strings.Split(rd[1:], "/")
	case !strings.Contains(rd, "/"):
		to = append(append([]string(nil), names[:k]...), rd)
	}
	for _, n := range to {
		if n == "" || n == "." || n == ".." || strings.IndexByte(n, 0) >= 0 {
			to = nil
			break
		}
	}
	if len(to) == 0 {
		lk.note = fmt.Sprintf("invalid overlay redirect %.200q on %s, not followed", rd, joinPath(names[:k+1]))
		return
	}
	lk.redirected = append(to, rest...)
	lk.note = fmt.Sprintf("renamed directory: the layers below hold %s as %s", joinPath(names[:k+1]), joinPath(to))
}

// imageLayer is one layer of an image: its diff id, blob and history.
type imageLayer struct {
	diffID, digest, mediaType string
	size                      int64
	createdBy, comment        string
	created                   *time.Time
}

// imageLayers reads the chain's image from the content store: its layers
// by chain id (the snapshot key of a committed layer), each with its blob
// from the manifest and its history entry from the config. Entries of the
// history marked empty_layer made no layer; the others pair with the
// layers bottom up. Nil when the blobs are gone.
func (n *Node) imageLayers(ch *chain) map[string]imageLayer {
	st, err := n.State()
	if err != nil || ch.image.name == "" && ch.image.config == "" {
		return nil
	}
	var im *containerd.Image
	for pass := 0; pass < 2 && im == nil; pass++ {
		for i := range st.Images {
			x := &st.Images[i]
			if x.Namespace == ch.image.namespace && (pass == 0 && ch.image.config != "" && x.Config == ch.image.config || pass == 1 && x.Name == ch.image.name) {
				im = x
				break
			}
		}
	}
	config := ch.image.config
	if im != nil && im.Config != "" {
		config = im.Config
	}
	if config == "" {
		return nil
	}
	cb, err := n.readBlob(st, config)
	if err != nil {
		return nil
	}
	var cfg struct {
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
		History []struct {
			Created    *time.Time `json:"created"`
			CreatedBy  string     `json:"created_by"`
			Comment    string     `json:"comment"`
			EmptyLayer bool       `json:"empty_layer"`
		} `json:"history"`
	}
	if json.Unmarshal(cb, &cfg) != nil {
		return nil
	}
	var blobs []struct {
		MediaType string `json:"mediaType"`
		Digest    string `json:"digest"`
		Size      int64  `json:"size"`
	}
	if im != nil {
		blobs = n.manifestLayers(st, im.Target.Digest, config, 0)
	}
	out := map[string]imageLayer{}
	var hist []int // indexes of the history entries that made a layer
	for i, h := range cfg.History {
		if !h.EmptyLayer {
			hist = append(hist, i)
		}
	}
	for i, key := range containerd.ChainIDs(cfg.RootFS.DiffIDs) {
		il := imageLayer{diffID: cfg.RootFS.DiffIDs[i]}
		if len(blobs) == len(cfg.RootFS.DiffIDs) {
			il.digest, il.size, il.mediaType = blobs[i].Digest, blobs[i].Size, blobs[i].MediaType
		}
		if i < len(hist) {
			h := cfg.History[hist[i]]
			il.createdBy, il.created, il.comment = h.CreatedBy, h.Created, h.Comment
		}
		out[key] = il
	}
	return out
}

// manifestLayers are the layer descriptors of the manifest at digest
// whose config is config, through an index when it is one.
func (n *Node) manifestLayers(st *containerd.State, digest, config string, depth int) []struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
} {
	b, err := n.readBlob(st, digest)
	if err != nil || depth > 2 {
		return nil
	}
	var m struct {
		Config struct {
			Digest string `json:"digest"`
		} `json:"config"`
		Layers []struct {
			MediaType string `json:"mediaType"`
			Digest    string `json:"digest"`
			Size      int64  `json:"size"`
		} `json:"layers"`
		Manifests []struct {
			Digest string `json:"digest"`
		} `json:"manifests"`
	}
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	if m.Config.Digest == config {
		return m.Layers
	}
	for _, d := range m.Manifests {
		if ls := n.manifestLayers(st, d.Digest, config, depth+1); ls != nil {
			return ls
		}
	}
	return nil
}
