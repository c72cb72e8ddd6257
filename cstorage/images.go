package cstorage

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"math"
	"path"
	"slices"

	"github.com/ctrlift/ctrlift/internal/overlaystore"
)

// MaxImageConfig bounds an image's config read from its big-data file.
const MaxImageConfig = 8 << 20

// imageConfig is the part of an OCI or Docker image config read.
type imageConfig struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Config       struct {
		Labels map[string]string `json:"Labels"`
	} `json:"config"`
}

// describeImage fills in what podman images shows beside the record:
// the size (the uncompressed sizes of the top layer and its parents, and
// the big-data items' sizes, as containers/storage sums them), and
// the config's labels, OS and architecture. The config is the big-data
// item named by the config digest ("sha256:<image id>"), kept in
// overlay-images/<id>/ as "=" + base64(name).
func (s *Store) describeImage(fsys fs.FS, img *Image, bigData []string, bigDataSizes map[string]int64) {
	img.Size = s.chainSize(img.TopLayer)
	for _, n := range bigDataSizes {
		if img.Size < 0 || n < 0 || n > math.MaxInt64-img.Size {
			img.Size = -1
			break
		}
		img.Size += n
	}
	key := "sha256:" + img.ID
	if !slices.Contains(bigData, key) {
		return
	}
	p := path.Join(s.Root, "overlay-images", img.ID, "="+base64.StdEncoding.EncodeToString([]byte(key)))
	b, err := overlaystore.ReadFile(fsys, p, MaxImageConfig)
	if err != nil {
		s.warn(err.Error())
		return
	}
	var cfg imageConfig
	if err := json.Unmarshal(b, &cfg); err != nil {
		s.warn(fmt.Sprintf("%s: decoding the image config: %v", p, err))
		return
	}
	img.Architecture, img.OS, img.Labels = cfg.Architecture, cfg.OS, cfg.Config.Labels
}

// chainSize sums DiffSize from layer id down its parents: -1 when a
// layer is missing or has no size, or the chain cycles. Sums are kept per
// layer, so images sharing a deep chain (a forged store can hold 100k of
// each) walk it once in all, not once each.
func (s *Store) chainSize(id string) int64 {
	if s.chainSizes == nil {
		s.chainSizes = map[string]int64{}
	}
	var path []string
	onPath := map[string]bool{}
	base := int64(0)
	for id != "" {
		if n, ok := s.chainSizes[id]; ok {
			base = n
			break
		}
		l := s.layerByID[id]
		if l == nil || onPath[id] || l.DiffSize < 0 || (l.DiffSize == 0 && l.DiffDigest == "") {
			base = -1
			break
		}
		onPath[id] = true
		path = append(path, id)
		id = l.Parent
	}
	// Fill in the walked layers from the bottom up.
	for i := len(path) - 1; i >= 0; i-- {
		if base >= 0 {
			d := s.layerByID[path[i]].DiffSize
			if d > math.MaxInt64-base {
				base = -1
			} else {
				base += d
			}
		}
		s.chainSizes[path[i]] = base
	}
	return base
}
