package docker

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/ctrlift/ctrlift/internal/overlaystore"
)

// Before Docker 1.10 an image was its top layer: graph/<id>/json held the
// layer's config with its parent's id, graph/<id>/layersize the layer's
// size, and repositories-<driver> the names ({"Repositories": {repo:
// {tag: id}}}). The ids are random, not digests.

// graphImage is the part of graph/<id>/json read.
type graphImage struct {
	ID           string `json:"id"`
	Parent       string `json:"parent"`
	Created      string `json:"created"`
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Config       struct {
		Labels map[string]string `json:"Labels"`
	} `json:"config"`
}

// loadGraphImages reads the image graph of a Docker root from before 1.10.
func loadGraphImages(fsys fs.FS, root string) ([]Image, []string, error) {
	dir := path.Join(root, "graph")
	ents, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, nil, fmt.Errorf("docker root %s: %w", root, err)
	}
	var warns []string
	tags, digests, driver := map[string][]string{}, map[string][]string{}, ""
	if files, err := fs.ReadDir(fsys, root); err == nil {
		for _, f := range files {
			d, ok := strings.CutPrefix(f.Name(), "repositories-")
			if !ok || !f.Type().IsRegular() || !overlaystore.ValidName(d) {
				continue
			}
			driver = d
			if err := readLegacyRepositories(fsys, path.Join(root, f.Name()), tags, digests); err != nil {
				warns = append(warns, err.Error())
			}
		}
	}
	byID := map[string]*graphImage{}
	sizes := map[string]int64{}
	var ids []string
	for _, e := range ents {
		if len(ids) >= maxImages {
			warns = append(warns, fmt.Sprintf("%s: more than %d images: the rest are not read", dir, maxImages))
			break
		}
		if !e.IsDir() || e.Name() == "_tmp" {
			continue
		}
		if !ValidID(e.Name()) {
			warns = append(warns, fmt.Sprintf("%s/%s: not an image id, skipped", dir, e.Name()))
			continue
		}
		p := path.Join(dir, e.Name(), "json")
		b, err := overlaystore.ReadFile(fsys, p, MaxImageConfig)
		if err != nil {
			warns = append(warns, err.Error())
			continue
		}
		var g graphImage
		if err := json.Unmarshal(b, &g); err != nil {
			warns = append(warns, fmt.Sprintf("%s: decoding: %v", p, err))
			continue
		}
		if g.ID != e.Name() {
			warns = append(warns, fmt.Sprintf("%s: names image %q, not its directory's %s", p, overlaystore.Truncate(g.ID), e.Name()))
			continue
		}
		sizes[g.ID] = -1
		if b, err := overlaystore.ReadFile(fsys, path.Join(dir, e.Name(), "layersize"), maxSmallFile); err == nil {
			if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n >= 0 {
				sizes[g.ID] = n
			}
		}
		byID[g.ID] = &g
		ids = append(ids, g.ID)
	}
	sort.Strings(ids)
	parents := map[string]bool{}
	out := make([]Image, 0, len(ids))
	for _, id := range ids {
		g := byID[id]
		img := Image{ID: id, Driver: driver, Tags: tags[id], Digests: digests[id], Created: parseTime(g.Created),
			Architecture: g.Architecture, OS: g.OS, Labels: g.Config.Labels, DiffIDs: []string{}, Size: 0}
		if ValidID(g.Parent) {
			img.Parent = g.Parent
			parents[g.Parent] = true
		}
		// The image is its layer and its ancestors': sum their sizes,
		// -1 when one is unknown, the walk bounded against cycles.
		seen := map[string]bool{}
		for cur := id; cur != ""; {
			if seen[cur] || len(seen) >= maxLayers {
				warns = append(warns, fmt.Sprintf("%s/%s: its parent chain cycles or exceeds %d layers", dir, id, maxLayers))
				img.Size = -1
				break
			}
			seen[cur] = true
			cg, ok := byID[cur]
			if !ok || sizes[cur] < 0 {
				img.Size = -1
				break
			}
			img.Size += sizes[cur]
			cur = ""
			if ValidID(cg.Parent) {
				cur = cg.Parent
			}
		}
		out = append(out, img)
	}
	for i := range out {
		out[i].Intermediate = len(out[i].Tags) == 0 && len(out[i].Digests) == 0 && parents[out[i].ID]
	}
	return out, warns, nil
}

// readLegacyRepositories adds the names of a repositories-<driver> file:
// repo -> tag (or digest) -> image id.
func readLegacyRepositories(fsys fs.FS, p string, tags, digests map[string][]string) error {
	b, err := overlaystore.ReadFile(fsys, p, MaxRepositories)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	var r struct {
		Repositories map[string]map[string]string `json:"Repositories"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("%s: decoding: %w", p, err)
	}
	for repo, refs := range r.Repositories {
		for ref, id := range refs {
			if strings.HasPrefix(ref, "sha256:") {
				digests[id] = append(digests[id], repo+"@"+ref)
			} else {
				tags[id] = append(tags[id], repo+":"+ref)
			}
		}
	}
	for _, m := range []map[string][]string{tags, digests} {
		for _, v := range m {
			sort.Strings(v)
		}
	}
	return nil
}
