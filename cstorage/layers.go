package cstorage

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// chain maps a container's layer and its parents onto the overlay
// driver's directories, top first. layers.json's parent links give the
// chain; when the container's layer has no record (a damaged or partial
// copy), the layer's own lower file, a list of l/<short> links read as
// data, gives it instead.
func (s *Store) chain(fsys fs.FS, top string) ([]LayerDir, error) {
	if !ValidID(top) {
		return nil, fmt.Errorf("layer id %q is not 64 hex digits", truncate(top))
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
			return out, fmt.Errorf("layer %s: parent id %q is not 64 hex digits", top, truncate(id))
		}
		dir := path.Join(base, id, "diff")
		if !isDir(fsys, dir) {
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
	if !isDir(fsys, dir) {
		return nil, fmt.Errorf("layer %s: no record in layers.json and %s is not a directory on the disk", top, dir)
	}
	out := []LayerDir{{ID: top, Dir: dir, Kind: "container"}}
	lowerPath := path.Join(base, top, "lower")
	b, err := readFile(fsys, lowerPath, maxLowerFile)
	if err != nil {
		if isNotExist(err) {
			return out, nil
		}
		return nil, err
	}
	var links map[string]string
	for _, e := range strings.Split(strings.TrimSpace(string(b)), ":") {
		if len(out) >= maxLayers {
			return nil, fmt.Errorf("%s: more than %d layers", lowerPath, maxLayers)
		}
		short, ok := strings.CutPrefix(e, "l/")
		if !ok || !validName(short) {
			return nil, fmt.Errorf("%s: entry %q is not l/<link>", lowerPath, truncate(e))
		}
		id, err := LinkTarget(fsys, base, short)
		if err != nil {
			if links == nil {
				links = linkFiles(fsys, base)
			}
			var found bool
			if id, found = links[short]; !found {
				return nil, fmt.Errorf("%s: link %s: %w", lowerPath, short, err)
			}
		}
		d := path.Join(base, id, "diff")
		if !isDir(fsys, d) {
			return nil, fmt.Errorf("layer %s (link %s): %s is not a directory on the disk", id, short, d)
		}
		out = append(out, LayerDir{ID: id, Dir: d, Kind: "image"})
	}
	return out, nil
}

// LinkTarget reads overlay/l/<short>, a symlink to ../<id>/diff, as data
// and returns <id>. short must be one path component.
func LinkTarget(fsys fs.FS, base, short string) (string, error) {
	if !validName(short) {
		return "", fmt.Errorf("link name %q is not a name", truncate(short))
	}
	t, err := fs.ReadLink(fsys, path.Join(base, "l", short))
	if err != nil {
		return "", err
	}
	rest, ok := strings.CutPrefix(t, "../")
	id, ok2 := strings.CutSuffix(rest, "/diff")
	if !ok || !ok2 || !ValidID(id) {
		return "", fmt.Errorf("link target %q is not ../<id>/diff", truncate(t))
	}
	return id, nil
}

// linkFiles maps each layer's short name (overlay/<id>/link) to its id.
func linkFiles(fsys fs.FS, base string) map[string]string {
	m := map[string]string{}
	ents, err := fs.ReadDir(fsys, base)
	if err != nil {
		return m
	}
	for i, e := range ents {
		if i >= maxRecords {
			break
		}
		if !e.IsDir() || !ValidID(e.Name()) {
			continue
		}
		b, err := readFile(fsys, path.Join(base, e.Name(), "link"), maxSmallFile)
		if err != nil {
			continue
		}
		if short := strings.TrimSpace(string(b)); validName(short) {
			if _, dup := m[short]; !dup {
				m[short] = e.Name()
			}
		}
	}
	return m
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
