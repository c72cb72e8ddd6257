package node

import (
	"github.com/ctrlift/ctrlift/containerd"
	"github.com/ctrlift/ctrlift/cstorage"
)

// cstorageImageType: a containers/storage image is keyed by its config's
// digest (its id), as Docker's are.
const cstorageImageType = "application/vnd.oci.image.config.v1+json"

// cstorageImages gives a store's images the shape of containerd's, one
// row per name (the id when it has none), as podman images lists them,
// in the namespace and under the engine of the store's containers.
func cstorageImages(s *cstorage.Store) []containerd.Image {
	ns, engine := storeNamespace(s), EngineCStorage
	switch {
	case s.Podman != nil:
		engine = EnginePodman
	case storeHoldsCRIO(s):
		ns, engine = CRIONamespace, EngineCRIO
	}
	var out []containerd.Image
	under := underImages(s)
	for _, img := range s.Images {
		if len(img.Names) == 0 && under[img.TopLayer] {
			continue // a build step, hidden as podman images hides it
		}
		names := img.Names
		if len(names) == 0 {
			names = []string{"sha256:" + img.ID}
		}
		for _, name := range names {
			ci := containerd.Image{Namespace: ns, Name: name, Engine: engine,
				Target:    containerd.Descriptor{MediaType: cstorageImageType, Digest: "sha256:" + img.ID},
				CreatedAt: img.Created, Labels: img.Labels, Config: "sha256:" + img.ID}
			if img.Size > 0 {
				ci.Size = img.Size
			}
			out = append(out, ci)
		}
	}
	return out
}

// ImageRuntime names the runtime whose store holds an image, as
// RuntimeOf does for containers.
func ImageRuntime(i *containerd.Image) string {
	if i.Engine == "" {
		return RuntimeContainerd.String()
	}
	return i.Engine
}

// storeHoldsCRIO says whether a store's containers are CRI-O's.
func storeHoldsCRIO(s *cstorage.Store) bool {
	for i := range s.Containers {
		if s.Containers[i].CRIO != nil {
			return true
		}
	}
	return false
}

// underImages is the set of layers lying under some image's top layer:
// an unnamed image whose top layer is in it is a build step. Each layer
// is walked once, however many images share it.
func underImages(s *cstorage.Store) map[string]bool {
	under := map[string]bool{}
	for _, img := range s.Images {
		l := s.Layer(img.TopLayer)
		for l != nil && l.Parent != "" && !under[l.Parent] {
			under[l.Parent] = true
			l = s.Layer(l.Parent)
		}
	}
	return under
}
