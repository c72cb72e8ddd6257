package node

import (
	"fmt"

	"github.com/ctrlift/ctrlift/containerd"
	"github.com/ctrlift/ctrlift/docker"
)

// Docker's containerd image store (the default of Docker 29 on a fresh
// install): dockerd keeps its images in containerd's namespace moby and
// each container's filesystem in a snapshot of containerd's snapshotter,
// keyed by the container id (its parent <id>-init, then the image's chain
// id); config.v2.json still holds the container, its Driver naming the
// snapshotter (overlayfs) and no layerdb mount id beside it. The Docker
// record keeps name, image, state and exit code; the chain comes from
// containerd.

// dockerSnapshotChain gives c, made from dc, the snapshot chain
// containerd holds for it, when the container lives in containerd's
// snapshotter: Docker's graph drivers hold no layers for it and st has a
// snapshot of namespace moby keyed by its id in the snapshotter named by
// its Driver.
func dockerSnapshotChain(st *containerd.State, keys map[snapshotRef]bool, c *containerd.Container, dc *docker.Container) {
	if dc.MountID != "" || len(dc.Layers) > 0 || dc.Driver == "" {
		return // a graph driver's container (overlay2, overlay, aufs)
	}
	if !keys[snapshotRef{dc.Driver, dc.ID}] {
		if !graphDrivers[dc.Driver] {
			where := "no containerd root with that snapshot was found"
			if st.Root != "" && st.MetaDB.Path != "" {
				where = "containerd's root " + st.Root + " has no such snapshot"
			}
			c.LayersError = fmt.Sprintf("the container's layers are a snapshot of containerd's %s snapshotter (namespace %s, key %s): %s",
				dc.Driver, DockerNamespace, dc.ID, where)
		}
		return
	}
	chain, err := st.Chain(DockerNamespace, dc.Driver, dc.ID)
	c.SnapshotKey, c.Layers, c.LayersError = dc.ID, chain, ""
	if err != nil {
		c.LayersError = err.Error()
	}
	if c.Layers == nil {
		c.Layers = []containerd.Layer{}
	}
}

// graphDrivers are Docker's own storage drivers; any other Driver of a
// container names a containerd snapshotter.
var graphDrivers = map[string]bool{"overlay2": true, "overlay": true, "aufs": true, "btrfs": true, "zfs": true,
	"devicemapper": true, "vfs": true, "fuse-overlayfs": true, "windowsfilter": true}

type snapshotRef struct{ snapshotter, key string }

// dockerSnapshotKeys are the snapshots of namespace moby.
func dockerSnapshotKeys(st *containerd.State) map[snapshotRef]bool {
	keys := map[snapshotRef]bool{}
	for _, s := range st.Snapshots {
		if s.Namespace == DockerNamespace && !s.Orphan {
			keys[snapshotRef{s.Snapshotter, s.Key}] = true
		}
	}
	return keys
}

// markDockerImages says which of containerd's images are Docker's: those
// of namespace moby when a Docker root is read beside it (the containerd
// image store). As docker image ls, it leaves out the classic builder's
// intermediate images: untagged (moby-dangling@<digest>) and named as
// another image's parent (label org.mobyproject.image.parent).
func markDockerImages(st *containerd.State) {
	parents := map[string]bool{}
	for _, im := range st.Images {
		if im.Namespace == DockerNamespace && im.Labels[labelBuilderParent] != "" {
			parents[im.Labels[labelBuilderParent]] = true
		}
	}
	kept := st.Images[:0]
	for _, im := range st.Images {
		if im.Namespace == DockerNamespace && im.Engine == "" {
			if im.Name == danglingPrefix+im.Target.Digest && parents[im.Target.Digest] {
				continue
			}
			im.Engine = EngineDocker
		}
		kept = append(kept, im)
	}
	st.Images = kept
}

// How dockerd's containerd image store names what it keeps.
const (
	labelBuilderParent = "org.mobyproject.image.parent" // the image the classic builder's step started from
	danglingPrefix     = "moby-dangling@"               // an image whose last name was removed, kept by digest
)
