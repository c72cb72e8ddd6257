package docker

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// Drivers whose layer chains Load maps onto directories.
var supportedDrivers = map[string]bool{"overlay2": true, "overlay": true, "aufs": true}

// unsupportedDrivers say why a driver's layers are not read.
var unsupportedDrivers = map[string]string{
	"btrfs":         "its layers are btrfs subvolumes",
	"zfs":           "its layers are zfs datasets",
	"devicemapper":  "its layers are device-mapper thin volumes",
	"vfs":           "vfs layers are not read yet",
	"windowsfilter": "Windows layers are not read",
}

// validName says whether s names one directory entry written by the
// daemon: no separator, not "." or "..", printable ASCII.
func validName(s string) bool {
	if s == "" || s == "." || s == ".." || len(s) > 255 {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
		default:
			return false
		}
	}
	return true
}

// readID reads a one-line id file (mount-id, lower-id, link).
func readID(fsys fs.FS, name string) (string, error) {
	b, err := readFile(fsys, name, maxSmallFile)
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(string(b))
	if !validName(id) {
		return "", fmt.Errorf("%s: %q is not a layer id", name, truncate(id))
	}
	return id, nil
}

// chain maps container id's writable layer and its parents onto the
// storage driver's directories, top first.
func chain(fsys fs.FS, root, driver, id string) ([]Layer, string, error) {
	if driver == "" {
		return nil, "", fmt.Errorf("no storage driver recorded")
	}
	if !supportedDrivers[driver] {
		why, ok := unsupportedDrivers[driver]
		if !ok {
			why = "an unknown storage driver"
		}
		return nil, "", fmt.Errorf("storage driver %s is not supported: %s", driver, why)
	}
	if !validName(driver) {
		return nil, "", fmt.Errorf("storage driver %q is not a name", truncate(driver))
	}
	mid, err := readID(fsys, path.Join(root, "image", driver, "layerdb", "mounts", id, "mount-id"))
	if err != nil {
		return nil, "", fmt.Errorf("writable layer: %w", err)
	}
	var ls []Layer
	switch driver {
	case "overlay2":
		ls, err = overlay2Chain(fsys, root, mid)
	case "overlay":
		ls, err = overlayChain(fsys, root, mid)
	case "aufs":
		ls, err = aufsChain(fsys, root, mid)
	}
	return ls, mid, err
}

// overlay2Chain: overlay2/<mid>/diff, then each l/<short> of
// overlay2/<mid>/lower, a symlink ../<id>/diff read as data.
func overlay2Chain(fsys fs.FS, root, mid string) ([]Layer, error) {
	base := path.Join(root, "overlay2")
	top := path.Join(base, mid, "diff")
	if !isDir(fsys, top) {
		return nil, fmt.Errorf("writable layer %s: not a directory on the disk", top)
	}
	ls := []Layer{{ID: mid, Dir: top, Driver: "overlay2", Kind: "container"}}
	lowerPath := path.Join(base, mid, "lower")
	b, err := readFile(fsys, lowerPath, maxLowerFile)
	if err != nil {
		if isNotExist(err) {
			return ls, nil // a container on no image (FROM scratch with nothing)
		}
		return nil, err
	}
	var links map[string]string // short name -> layer id, from the link files
	for _, e := range strings.Split(strings.TrimSpace(string(b)), ":") {
		if len(ls) >= maxLayers {
			return nil, fmt.Errorf("%s: more than %d layers", lowerPath, maxLayers)
		}
		short, ok := strings.CutPrefix(e, "l/")
		if !ok || !validName(short) {
			return nil, fmt.Errorf("%s: entry %q is not l/<link>", lowerPath, truncate(e))
		}
		lid, err := linkTarget(fsys, base, short)
		if err != nil {
			if links == nil {
				links = linkFiles(fsys, base)
			}
			var found bool
			if lid, found = links[short]; !found {
				return nil, fmt.Errorf("%s: link %s: %w", lowerPath, short, err)
			}
		}
		dir := path.Join(base, lid, "diff")
		if !isDir(fsys, dir) {
			return nil, fmt.Errorf("layer %s (link %s): not a directory on the disk", dir, short)
		}
		kind := "image"
		if strings.HasSuffix(lid, "-init") {
			kind = "init"
		}
		ls = append(ls, Layer{ID: lid, Dir: dir, Driver: "overlay2", Kind: kind})
	}
	return ls, nil
}

// linkTarget reads overlay2/l/<short>, a symlink to ../<id>/diff, as
// data, and returns <id>.
func linkTarget(fsys fs.FS, base, short string) (string, error) {
	t, err := fs.ReadLink(fsys, path.Join(base, "l", short))
	if err != nil {
		return "", err
	}
	rest, ok := strings.CutPrefix(t, "../")
	id, ok2 := strings.CutSuffix(rest, "/diff")
	if !ok || !ok2 || !validName(id) {
		return "", fmt.Errorf("link target %q is not ../<id>/diff", truncate(t))
	}
	return id, nil
}

// linkFiles maps each layer's short link name (overlay2/<id>/link) to its
// id: what the l/ symlinks say, for a copy that lost them.
func linkFiles(fsys fs.FS, base string) map[string]string {
	m := map[string]string{}
	ents, err := fs.ReadDir(fsys, base)
	if err != nil {
		return m
	}
	for i, e := range ents {
		if i >= maxContainers*4 {
			break
		}
		if !e.IsDir() || e.Name() == "l" || !validName(e.Name()) {
			continue
		}
		if short, err := readID(fsys, path.Join(base, e.Name(), "link")); err == nil {
			if _, dup := m[short]; !dup {
				m[short] = e.Name()
			}
		}
	}
	return m
}

// overlayChain: the legacy overlay driver keeps a container's changes in
// overlay/<mid>/upper over overlay/<lower-id>/root, the image's whole
// tree (each image layer a full copy).
func overlayChain(fsys fs.FS, root, mid string) ([]Layer, error) {
	base := path.Join(root, "overlay")
	top := path.Join(base, mid, "upper")
	if !isDir(fsys, top) {
		if r := path.Join(base, mid, "root"); isDir(fsys, r) {
			return []Layer{{ID: mid, Dir: r, Driver: "overlay", Kind: "image"}}, nil
		}
		return nil, fmt.Errorf("writable layer %s: not a directory on the disk", top)
	}
	ls := []Layer{{ID: mid, Dir: top, Driver: "overlay", Kind: "container"}}
	lid, err := readID(fsys, path.Join(base, mid, "lower-id"))
	if err != nil {
		if isNotExist(err) {
			return ls, nil
		}
		return nil, err
	}
	r := path.Join(base, lid, "root")
	if !isDir(fsys, r) {
		return nil, fmt.Errorf("image layer %s: not a directory on the disk", r)
	}
	return append(ls, Layer{ID: lid, Dir: r, Driver: "overlay", Kind: "image"}), nil
}

// aufsChain: aufs/diff/<mid>, then the layers aufs/layers/<mid> lists,
// one id a line, nearest first (the -init layer, then the image's). The
// layers hold aufs whiteouts (.wh.<name>): read them through AufsFS.
func aufsChain(fsys fs.FS, root, mid string) ([]Layer, error) {
	base := path.Join(root, "aufs")
	top := path.Join(base, "diff", mid)
	if !isDir(fsys, top) {
		return nil, fmt.Errorf("writable layer %s: not a directory on the disk", top)
	}
	ls := []Layer{{ID: mid, Dir: top, Driver: "aufs", Kind: "container"}}
	listPath := path.Join(base, "layers", mid)
	b, err := readFile(fsys, listPath, maxLowerFile)
	if err != nil {
		if isNotExist(err) {
			return ls, nil
		}
		return nil, err
	}
	for _, id := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		id = strings.TrimSpace(id)
		if id == "" {
			continue
		}
		if len(ls) >= maxLayers {
			return nil, fmt.Errorf("%s: more than %d layers", listPath, maxLayers)
		}
		if !validName(id) {
			return nil, fmt.Errorf("%s: %q is not a layer id", listPath, truncate(id))
		}
		if id == mid {
			return nil, fmt.Errorf("%s: names the layer itself (a chain that cycles)", listPath)
		}
		dir := path.Join(base, "diff", id)
		if !isDir(fsys, dir) {
			return nil, fmt.Errorf("layer %s: not a directory on the disk", dir)
		}
		kind := "image"
		if strings.HasSuffix(id, "-init") {
			kind = "init"
		}
		ls = append(ls, Layer{ID: id, Dir: dir, Driver: "aufs", Kind: kind})
	}
	return ls, nil
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
