package docker

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/ctrlift/ctrlift/internal/overlaystore"
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

// readID reads a one-line id file (mount-id, lower-id, link).
func readID(fsys fs.FS, name string) (string, error) {
	b, err := overlaystore.ReadFile(fsys, name, maxSmallFile)
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(string(b))
	if !overlaystore.ValidName(id) {
		return "", fmt.Errorf("%s: %q is not a layer id", name, overlaystore.Truncate(id))
	}
	return id, nil
}

// chain maps container id's writable layer and its parents onto the
// storage driver's directories, top first. The layer store (image/) came
// with Docker 1.10; before it (legacy), the writable layer's directory
// was named by the container id.
func chain(fsys fs.FS, root, driver, id string, legacy bool) ([]Layer, string, error) {
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
	if !overlaystore.ValidName(driver) {
		return nil, "", fmt.Errorf("storage driver %q is not a name", overlaystore.Truncate(driver))
	}
	mid := id
	if !legacy {
		var err error
		if mid, err = readID(fsys, path.Join(root, "image", driver, "layerdb", "mounts", id, "mount-id")); err != nil {
			return nil, "", fmt.Errorf("writable layer: %w", err)
		}
	}
	var ls []Layer
	var err error
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
	if !overlaystore.IsDir(fsys, top) {
		return nil, fmt.Errorf("writable layer %s: not a directory on the disk", top)
	}
	// A container on no image (FROM scratch with nothing) has no lower file.
	lowers, err := overlaystore.ReadLower(fsys, base, mid, overlaystore.ValidName, overlaystore.Limits{
		LowerFile: maxLowerFile, LinkFile: maxSmallFile, Layers: maxLayers - 1, Entries: maxContainers * 4})
	if err != nil {
		return nil, err
	}
	ls := []Layer{{ID: mid, Dir: top, Driver: "overlay2", Kind: "container"}}
	for _, l := range lowers {
		kind := "image"
		if strings.HasSuffix(l.ID, "-init") {
			kind = "init"
		}
		ls = append(ls, Layer{ID: l.ID, Dir: l.Dir, Driver: "overlay2", Kind: kind})
	}
	return ls, nil
}

// overlayChain: the legacy overlay driver keeps a container's changes in
// overlay/<mid>/upper over overlay/<lower-id>/root, the image's whole
// tree (each image layer a full copy).
func overlayChain(fsys fs.FS, root, mid string) ([]Layer, error) {
	base := path.Join(root, "overlay")
	top := path.Join(base, mid, "upper")
	if !overlaystore.IsDir(fsys, top) {
		if r := path.Join(base, mid, "root"); overlaystore.IsDir(fsys, r) {
			return []Layer{{ID: mid, Dir: r, Driver: "overlay", Kind: "image"}}, nil
		}
		return nil, fmt.Errorf("writable layer %s: not a directory on the disk", top)
	}
	ls := []Layer{{ID: mid, Dir: top, Driver: "overlay", Kind: "container"}}
	lid, err := readID(fsys, path.Join(base, mid, "lower-id"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return ls, nil
		}
		return nil, err
	}
	r := path.Join(base, lid, "root")
	if !overlaystore.IsDir(fsys, r) {
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
	if !overlaystore.IsDir(fsys, top) {
		return nil, fmt.Errorf("writable layer %s: not a directory on the disk", top)
	}
	ls := []Layer{{ID: mid, Dir: top, Driver: "aufs", Kind: "container"}}
	listPath := path.Join(base, "layers", mid)
	b, err := overlaystore.ReadFile(fsys, listPath, maxLowerFile)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
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
		if !overlaystore.ValidName(id) {
			return nil, fmt.Errorf("%s: %q is not a layer id", listPath, overlaystore.Truncate(id))
		}
		if id == mid {
			return nil, fmt.Errorf("%s: names the layer itself (a chain that cycles)", listPath)
		}
		dir := path.Join(base, "diff", id)
		if !overlaystore.IsDir(fsys, dir) {
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
