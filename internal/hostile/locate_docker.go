//go:build linux

package hostile

import (
	"errors"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/ctrlift/ctrlift/docker"
	"github.com/ctrlift/ctrlift/image/ext4"
)

// KindDocker is a base holding a Docker Engine root (the Docker node
// fixture dockerd made): list, info, diff, export and logs per container.
const KindDocker = "docker"

// Roles of the Docker state's files in Base.Inodes.
const (
	roleDockerConfig = "docker-config" // config.v2.json, hostconfig.json, image configs, repositories.json
	roleDockerID     = "docker-id"     // mount-id, init-id, overlay2/<id>/link
	roleDockerLower  = "docker-lower"  // overlay2/<id>/lower: l/<link>:l/<link>...
	roleDockerLink   = "docker-link"   // overlay2/l/<link>, a symlink to ../<id>/diff
	roleDockerLog    = "docker-log"    // json-file and local logs, rotated and gzipped
)

func hasDocker(b *Base) bool { return b.Kind == KindDocker }

// locateDocker finds the Docker root through the reader under test and
// maps every file of its state the Docker classes aim at.
func (b *Base) locateDocker(fsys *ext4.FS) error {
	root, err := docker.FindRoot(fsys, "")
	if err != nil {
		return err
	}
	st, err := docker.Load(fsys, root)
	if err != nil {
		return err
	}
	add := func(p, role string) *InodeInfo {
		in, err := b.FS.lookup(p)
		if err != nil {
			return nil
		}
		return b.add(in, role)
	}
	for _, p := range []string{".", "var", "var/lib", root, path.Join(root, "containers"), path.Join(root, "overlay2"), path.Join(root, "overlay2", "l")} {
		add(p, "path")
	}
	seen := map[string]bool{}
	for _, c := range st.Containers {
		b.Containers = append(b.Containers, Container{"moby", c.ID})
		dir := path.Join(root, "containers", c.ID)
		add(path.Join(dir, "config.v2.json"), roleDockerConfig)
		add(path.Join(dir, "hostconfig.json"), roleDockerConfig)
		mounts := path.Join(root, "image", c.Driver, "layerdb", "mounts", c.ID)
		add(path.Join(mounts, "mount-id"), roleDockerID)
		add(path.Join(mounts, "init-id"), roleDockerID)
		if files, err := docker.LogFiles(fsys, root, &c); err == nil {
			for _, f := range files {
				add(f.Path, roleDockerLog)
			}
		}
		for _, l := range c.Layers {
			if seen[l.ID] {
				continue
			}
			seen[l.ID] = true
			layer := path.Join(root, "overlay2", l.ID)
			add(path.Join(layer, "link"), roleDockerID)
			add(path.Join(layer, "lower"), roleDockerLower)
			if in := add(l.Dir, "layer-dir"); in != nil {
				b.Layers = append(b.Layers, in)
				var ents []*InodeInfo
				if err := b.FS.walk(in, 500, func(e *InodeInfo) { ents = append(ents, e) }); err != nil {
					return err
				}
				b.sampleEntries(ents, 10)
			}
		}
	}
	if links, err := b.FS.lookup(path.Join(root, "overlay2", "l")); err == nil {
		b.FS.walk(links, 200, func(e *InodeInfo) {
			if e.IsSymlink() {
				b.add(e, roleDockerLink)
			}
		})
	}
	for _, drv := range []string{"overlay2"} {
		images := path.Join(root, "image", drv)
		add(path.Join(images, "repositories.json"), roleDockerConfig)
		ents, _ := fs.ReadDir(fsys, path.Join(images, "imagedb", "content", "sha256"))
		for _, e := range ents {
			add(path.Join(images, "imagedb", "content", "sha256", e.Name()), roleDockerConfig)
		}
	}
	sort.Slice(b.Containers, func(i, j int) bool { return b.Containers[i].ID < b.Containers[j].ID })
	if len(b.Containers) == 0 {
		return errors.New("no Docker containers found")
	}
	return nil
}

// dockerFiles are the base's inodes of the given role whose contents are
// in data blocks (what the classes patch).
func (b *Base) dockerFiles(role string) []*InodeInfo {
	return b.inodesWith(func(in *InodeInfo) bool {
		return in.Role == role && (in.IsReg() || in.IsSymlink()) && in.Size > 0 && len(in.Runs) > 0
	})
}

// linkName is the short name of an l/ link inode.
func linkName(in *InodeInfo) string { return in.Path[strings.LastIndex(in.Path, "/")+1:] }
