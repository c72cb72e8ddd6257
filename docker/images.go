package docker

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ctrlift/ctrlift/internal/overlaystore"
)

// Limits on the image store read.
const (
	// MaxImageConfig bounds an image config (imagedb/content/sha256/<id>).
	MaxImageConfig = 8 << 20
	// MaxRepositories bounds repositories.json.
	MaxRepositories = 16 << 20
	maxImages       = 100000
)

// Image is one image of the store: its config from
// image/<driver>/imagedb/content/sha256/<id>, its names from
// repositories.json, its size from the layer store.
type Image struct {
	ID           string            `json:"id"`             // sha256:<config digest>
	Driver       string            `json:"driver"`         // the storage driver whose image store holds it
	Tags         []string          `json:"tags,omitempty"` // repo:tag
	Digests      []string          `json:"digests,omitempty"`
	Parent       string            `json:"parent,omitempty"` // images built locally: the image of the previous step
	Created      time.Time         `json:"created,omitzero"`
	Architecture string            `json:"architecture,omitempty"`
	OS           string            `json:"os,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
	DiffIDs      []string          `json:"diff_ids"`
	ChainID      string            `json:"chain_id,omitempty"` // of the top layer: layerdb/sha256/<chain id>
	ConfigSize   int64             `json:"config_size"`
	// Size is the layers' uncompressed size (layerdb's size files), as
	// docker image ls shows it; -1 when a layer's size is unknown.
	Size int64 `json:"size"`
	// Intermediate: untagged and the parent of another image (a build
	// step), hidden by docker image ls.
	Intermediate bool `json:"intermediate,omitempty"`
}

// imageConfig is the part of an image config read.
type imageConfig struct {
	Created      string `json:"created"`
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Config       struct {
		Labels map[string]string `json:"Labels"`
	} `json:"config"`
	RootFS struct {
		Type    string   `json:"type"`
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
}

// LoadImages reads the image store of every storage driver under the
// Docker root at root (image/<driver>/; graph/ before Docker 1.10),
// sorted by id. Images that
// cannot be read are skipped with a warning.
func LoadImages(fsys fs.FS, root string) ([]Image, []string, error) {
	drivers, err := fs.ReadDir(fsys, path.Join(root, "image"))
	if errors.Is(err, fs.ErrNotExist) && overlaystore.IsDir(fsys, path.Join(root, "graph")) {
		return loadGraphImages(fsys, root)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("docker root %s: %w", root, err)
	}
	var out []Image
	var warns []string
	for _, d := range drivers {
		if !d.IsDir() || !overlaystore.ValidName(d.Name()) {
			continue
		}
		imgs, w := loadDriverImages(fsys, path.Join(root, "image", d.Name()), d.Name())
		out, warns = append(out, imgs...), append(warns, w...)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ID != out[j].ID {
			return out[i].ID < out[j].ID
		}
		return out[i].Driver < out[j].Driver
	})
	return out, warns, nil
}

func loadDriverImages(fsys fs.FS, dir, driver string) ([]Image, []string) {
	var warns []string
	content := path.Join(dir, "imagedb", "content", "sha256")
	ents, err := fs.ReadDir(fsys, content)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			warns = append(warns, err.Error())
		}
		return nil, warns
	}
	tags, digests, err := readRepositories(fsys, path.Join(dir, "repositories.json"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		warns = append(warns, err.Error())
	}
	var out []Image
	parents := map[string]bool{}
	for _, e := range ents {
		if len(out) >= maxImages {
			warns = append(warns, fmt.Sprintf("%s: more than %d images: the rest are not read", content, maxImages))
			break
		}
		if !ValidID(e.Name()) {
			warns = append(warns, fmt.Sprintf("%s/%s: not an image id, skipped", content, e.Name()))
			continue
		}
		p := path.Join(content, e.Name())
		b, err := overlaystore.ReadFile(fsys, p, MaxImageConfig)
		if err != nil {
			warns = append(warns, err.Error())
			continue
		}
		// The file is the config itself: its name is its digest.
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != e.Name() {
			warns = append(warns, fmt.Sprintf("%s: content does not match its digest", p))
		}
		var cfg imageConfig
		if err := json.Unmarshal(b, &cfg); err != nil {
			warns = append(warns, fmt.Sprintf("%s: decoding: %v", p, err))
			continue
		}
		id := "sha256:" + e.Name()
		img := Image{ID: id, Driver: driver, Tags: tags[id], Digests: digests[id], Created: parseTime(cfg.Created),
			Architecture: cfg.Architecture, OS: cfg.OS, Labels: cfg.Config.Labels, DiffIDs: cfg.RootFS.DiffIDs, ConfigSize: int64(len(b))}
		if img.DiffIDs == nil {
			img.DiffIDs = []string{}
		}
		if b, err := overlaystore.ReadFile(fsys, path.Join(dir, "imagedb", "metadata", "sha256", e.Name(), "parent"), maxSmallFile); err == nil {
			parent := strings.TrimSpace(string(b))
			if h, ok := strings.CutPrefix(parent, "sha256:"); ok && ValidID(h) {
				img.Parent = parent
				parents[parent] = true
			}
		}
		img.ChainID, img.Size = chainSize(fsys, path.Join(dir, "layerdb", "sha256"), img.DiffIDs)
		out = append(out, img)
	}
	for i := range out {
		out[i].Intermediate = len(out[i].Tags) == 0 && len(out[i].Digests) == 0 && parents[out[i].ID]
	}
	return out, warns
}

// chainSize computes the chain ids of diffIDs (the OCI rule) and sums
// the size files of their layerdb entries: -1 when one is missing.
func chainSize(fsys fs.FS, layerdb string, diffIDs []string) (string, int64) {
	var chain string
	var size int64
	for i, d := range diffIDs {
		if i == 0 {
			chain = d
		} else {
			sum := sha256.Sum256([]byte(chain + " " + d))
			chain = "sha256:" + hex.EncodeToString(sum[:])
		}
		hexID, ok := strings.CutPrefix(chain, "sha256:")
		if !ok || !ValidID(hexID) {
			return "", -1
		}
		if size < 0 {
			continue
		}
		b, err := overlaystore.ReadFile(fsys, path.Join(layerdb, hexID, "size"), maxSmallFile)
		if err != nil {
			size = -1
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || n < 0 {
			size = -1
			continue
		}
		size += n
	}
	return chain, size
}

// readRepositories reads repositories.json: repo -> ref -> image id.
// Refs with "@" are digests, the others tags.
func readRepositories(fsys fs.FS, p string) (tags, digests map[string][]string, err error) {
	tags, digests = map[string][]string{}, map[string][]string{}
	b, err := overlaystore.ReadFile(fsys, p, MaxRepositories)
	if err != nil {
		return tags, digests, err
	}
	var r struct {
		Repositories map[string]map[string]string `json:"Repositories"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return tags, digests, fmt.Errorf("%s: decoding: %w", p, err)
	}
	for _, refs := range r.Repositories {
		for ref, id := range refs {
			if strings.Contains(ref, "@") {
				digests[id] = append(digests[id], ref)
			} else {
				tags[id] = append(tags[id], ref)
			}
		}
	}
	for _, m := range []map[string][]string{tags, digests} {
		for _, v := range m {
			sort.Strings(v)
		}
	}
	return tags, digests, nil
}
