package containerd

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
)

// maxChain bounds snapshot chains; images have at most a few hundred layers.
const maxChain = 4096

// copySnapshotters make each snapshot a complete tree (a copy, subvolume or
// clone of its parent), so a mount uses the snapshot alone; merging its
// parents below it would resurrect files deleted in it.
var copySnapshotters = map[string]bool{"native": true, "btrfs": true, "zfs": true, "devmapper": true}

// Labels that name a snapshot's layer.
const (
	labelUncompressed = "containerd.io/uncompressed"
	labelLayerDigest  = "containerd.io/snapshot/cri.layer-digest"
)

// Chain returns the snapshot chain of meta.db snapshot key in namespace ns
// of snapshotter, top (key itself) first, base layer last: the order of an
// overlay mount's upperdir then lowerdirs. key may also be a snapshotter
// name (<ns>/<seq>/<key>).
//
// For snapshotters that copy (native, btrfs, zfs, devmapper) the chain is
// the snapshot alone: it already holds its parents' files.
//
// A loop or a missing parent is an error; the layers read up to that point
// are returned with it. For gcfs (image streaming) a parent missing from
// metadata.db is expected: the layers below it are reported Streamed (or
// Cached when found in the gcfs layer cache), derived from the image config
// when it is in the content store.
func (s *State) Chain(ns, snapshotter, key string) ([]Layer, error) {
	sdb := s.snapDBs[snapshotter]
	if sdb == nil {
		if info := s.snapshotterInfo(snapshotter); info != nil && info.Error != "" {
			return nil, fmt.Errorf("snapshotter %q: %s", snapshotter, info.Error)
		}
		return nil, fmt.Errorf("snapshotter %q: no metadata.db under %s", snapshotter, s.Root)
	}
	name := ""
	if sn := s.metaSnap[snapRef{ns, snapshotter, key}]; sn != nil && sdb.Snapshots[sn.Name] != nil {
		name = sn.Name
	} else if sdb.Snapshots[key] != nil {
		name = key
	} else {
		var err error
		if name, err = sdb.findName(ns, key); err != nil {
			return nil, err
		}
	}
	var layers []Layer
	seen := map[string]bool{}
	child := ""
	for cur := name; cur != ""; {
		if seen[cur] {
			return layers, fmt.Errorf("snapshot chain of %q loops back to %q", key, cur)
		}
		if len(layers) >= maxChain {
			return layers, fmt.Errorf("snapshot chain of %q is longer than %d layers", key, maxChain)
		}
		seen[cur] = true
		_, lkey, _ := splitName(cur)
		r := sdb.Snapshots[cur]
		if r == nil {
			if snapshotter == "gcfs" {
				return append(layers, s.gcfsRemote(lkey, cur)...), nil
			}
			return layers, fmt.Errorf("snapshot %q, parent of %q, is missing from the %s snapshotter's metadata.db", cur, child, snapshotter)
		}
		l := Layer{SnapshotKey: lkey, Name: cur, ID: r.ID, Kind: r.Kind, Path: s.snapshotDir(snapshotter, r.ID), Snapshotter: snapshotter}
		if snapshotter == "gcfs" {
			s.gcfsLayer(&l, r)
		} else if st, err := fs.Stat(s.fsys, l.Path); err != nil || !st.IsDir() {
			l.Note = "directory not found on disk"
		}
		if copySnapshotters[snapshotter] {
			l.Parent = r.Parent
			layers = append(layers, l)
			break
		}
		layers = append(layers, l)
		child, cur = cur, r.Parent
	}
	return layers, nil
}

// CopySnapshotter reports whether snapshotter makes each snapshot a
// complete copy of its parent (native, btrfs, zfs, devmapper).
func CopySnapshotter(snapshotter string) bool { return copySnapshotters[snapshotter] }

// ParentLayer returns the parent snapshot of a copying snapshotter's
// layer l (l.Parent), as a Layer; its Note says when its directory is not
// on the disk.
func (s *State) ParentLayer(l Layer) (Layer, error) {
	if l.Parent == "" {
		return Layer{}, fmt.Errorf("snapshot %q has no parent", l.Name)
	}
	sdb := s.snapDBs[l.Snapshotter]
	if sdb == nil {
		return Layer{}, fmt.Errorf("snapshotter %q: no metadata.db", l.Snapshotter)
	}
	r := sdb.Snapshots[l.Parent]
	if r == nil {
		return Layer{}, fmt.Errorf("snapshot %q, parent of %q, is missing from the %s snapshotter's metadata.db", l.Parent, l.Name, l.Snapshotter)
	}
	_, key, _ := splitName(l.Parent)
	p := Layer{SnapshotKey: key, Name: l.Parent, ID: r.ID, Kind: r.Kind, Path: s.snapshotDir(l.Snapshotter, r.ID), Snapshotter: l.Snapshotter, Parent: r.Parent}
	if st, err := fs.Stat(s.fsys, p.Path); err != nil || !st.IsDir() {
		p.Note = "directory not found on disk"
	}
	return p, nil
}

// dirState reports whether dir exists and whether it has any entry.
func (s *State) dirState(dir string) (exists, empty bool) {
	f, err := s.fsys.Open(dir)
	if err != nil {
		return false, true
	}
	defer f.Close()
	rd, ok := f.(fs.ReadDirFile)
	if !ok {
		return true, false
	}
	ents, err := rd.ReadDir(1)
	if len(ents) > 0 {
		return true, false
	}
	return true, err == nil || errors.Is(err, io.EOF)
}

// gcfsCache returns the gcfs layer cache directory of a diff id, if present.
func (s *State) gcfsCache(diffID string) string {
	alg, hex, ok := strings.Cut(diffID, ":")
	if !ok || s.gcfsDir == "" || !digestRE.MatchString(diffID) {
		return ""
	}
	p := path.Join(s.gcfsDir, "layers", alg+"="+hex)
	if st, err := fs.Stat(s.fsys, p); err == nil && st.IsDir() {
		return p
	}
	return ""
}

// diffIDFor finds the diff id of a committed layer snapshot: from an image
// config in the content store (key is then a chain id), or through the
// compressed layer digest label and that blob's uncompressed label.
func (s *State) diffIDFor(key string, labels map[string]string) string {
	if e, ok := s.chains[key]; ok {
		return e.diffIDs[len(e.diffIDs)-1]
	}
	if dg := labels[labelLayerDigest]; dg != "" {
		for _, b := range s.Content {
			if b.Digest == dg && b.Labels[labelUncompressed] != "" {
				return b.Labels[labelUncompressed]
			}
		}
	}
	return ""
}

// gcfsLayer decides where a gcfs snapshot's content is. Image streaming
// mounts committed layers over FUSE at run time, so on disk their fs
// directory is empty unless the layer was cached: then fs may be a symlink
// into the snapshotter's layers/ directory, or layers/sha256=<diffid>
// exists.
func (s *State) gcfsLayer(l *Layer, r *SnapshotRecord) {
	if target, err := fs.ReadLink(s.fsys, l.Path); err == nil {
		// Resolve inside the layer cache by name only: never follow links.
		base := path.Base(target)
		cand := path.Join(s.gcfsDir, "layers", base)
		if st, err := fs.Stat(s.fsys, cand); err == nil && st.IsDir() && validName(base) {
			l.Path, l.Cached = cand, true
			l.Note = "fs is a symlink to " + target
			return
		}
		l.Path, l.Streamed = "", r.Kind == SnapshotCommitted
		l.Note = "fs is a symlink to " + target + ", which is not in the layer cache"
		return
	}
	exists, empty := s.dirState(l.Path)
	if exists && !empty {
		return
	}
	if r.Kind != "committed" {
		// A writable layer nothing was written to.
		if !exists {
			l.Note = "directory not found on disk"
		}
		return
	}
	l.DiffID = s.diffIDFor(l.SnapshotKey, r.Labels)
	if c := s.gcfsCache(l.DiffID); c != "" {
		l.Path, l.Cached = c, true
		return
	}
	l.Path, l.Streamed = "", true
	l.Note = "streamed: no layer content on disk"
}

// gcfsRemote lists the layers below a gcfs snapshot whose parent is not in
// metadata.db (remote snapshots of image streaming).
func (s *State) gcfsRemote(key, name string) []Layer {
	e, ok := s.chains[key]
	if !ok {
		l := Layer{SnapshotKey: key, Name: name, Kind: SnapshotCommitted, Snapshotter: "gcfs", Missing: true, Streamed: true,
			Note: "remote snapshot not in metadata.db and no image config in the content store to list the layers below it"}
		if c := s.gcfsCache(key); c != "" {
			l.Path, l.Cached, l.Streamed = c, true, false
		}
		return []Layer{l}
	}
	chain := ChainIDs(e.diffIDs)
	var out []Layer
	for i := len(chain) - 1; i >= 0; i-- {
		l := Layer{SnapshotKey: chain[i], Kind: SnapshotCommitted, Snapshotter: "gcfs", Missing: true, DiffID: e.diffIDs[i]}
		if c := s.gcfsCache(e.diffIDs[i]); c != "" {
			l.Path, l.Cached = c, true
		} else {
			l.Streamed = true
			l.Note = "streamed: no layer content on disk"
		}
		out = append(out, l)
	}
	return out
}
