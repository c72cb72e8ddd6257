package cstorage

import (
	"fmt"
	"io/fs"
	"path"

	"github.com/ctrlift/ctrlift/internal/overlaystore"
)

// chain maps a container's layer and its parents onto the overlay
// driver's directories, top first. layers.json's parent links give the
// chain; when the container's layer has no record (a damaged or partial
// copy), the layer's own lower file, a list of l/<short> links read as
// data, gives it instead.
func (s *Store) chain(fsys fs.FS, top string) ([]LayerDir, error) {
	if !ValidID(top) {
		return nil, fmt.Errorf("layer id %q is not 64 hex digits", overlaystore.Truncate(top))
	}
	base := path.Join(s.Root, "overlay")
	if s.layerByID[top] == nil {
		return s.lowerChain(fsys, base, top)
	}
	var out []LayerDir
	seen := map[string]bool{}
	for id := top; id != ""; {
		if len(out) >= maxLayers {
			return nil, fmt.Errorf("layer %s: more than %d layers", top, maxLayers)
		}
		if seen[id] {
			return nil, fmt.Errorf("layer %s: the parent links loop at %s", top, id)
		}
		seen[id] = true
		l := s.layerByID[id]
		if l == nil {
			return out, fmt.Errorf("layer %s: parent %s has no record in layers.json", top, id)
		}
		if !ValidID(id) {
			return out, fmt.Errorf("layer %s: parent id %q is not 64 hex digits", top, overlaystore.Truncate(id))
		}
		dir := path.Join(base, id, "diff")
		if !overlaystore.IsDir(fsys, dir) {
			return out, fmt.Errorf("layer %s: %s is not a directory on the disk", id, dir)
		}
		if l.Incomplete {
			return out, fmt.Errorf("layer %s is marked incomplete (an interrupted pull or commit)", id)
		}
		kind := "image"
		if len(out) == 0 {
			kind = "container"
		}
		out = append(out, LayerDir{ID: id, Dir: dir, Kind: kind})
		id = l.Parent
	}
	return out, nil
}

// lowerChain reads overlay/<top>/lower: l/<short> entries, each a symlink
// l/<short> -> ../<id>/diff read as data, or, when the links are gone,
// matched with the layers' link files.
func (s *Store) lowerChain(fsys fs.FS, base, top string) ([]LayerDir, error) {
	dir := path.Join(base, top, "diff")
	if !overlaystore.IsDir(fsys, dir) {
		return nil, fmt.Errorf("layer %s: no record in layers.json and %s is not a directory on the disk", top, dir)
	}
	lowers, err := overlaystore.ReadLower(fsys, base, top, ValidID, overlaystore.Limits{
		LowerFile: maxLowerFile, LinkFile: maxSmallFile, Layers: maxLayers - 1, Entries: maxRecords})
	if err != nil {
		return nil, err
	}
	out := []LayerDir{{ID: top, Dir: dir, Kind: "container"}}
	for _, l := range lowers {
		out = append(out, LayerDir{ID: l.ID, Dir: l.Dir, Kind: "image"})
	}
	return out, nil
}
