package containerd

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
)

const maxJSONBlob = 16 << 20

// chainEntry records, for one layer chain id, the diff ids from the base
// layer up to that layer.
type chainEntry struct {
	diffIDs []string
	image   string
}

type ociDescriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
	Platform  *struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
	} `json:"platform"`
}

type ociManifest struct {
	size      int64           // of the manifest blob itself, plus any index above it
	MediaType string          `json:"mediaType"`
	Config    ociDescriptor   `json:"config"`
	Layers    []ociDescriptor `json:"layers"`
	Manifests []ociDescriptor `json:"manifests"` // index / manifest list
}

type ociConfig struct {
	RootFS struct {
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
}

func (s *State) readJSONBlob(digest string, v any) error {
	p := s.BlobPath(digest)
	if p == "" {
		return fmt.Errorf("malformed digest %q", digest)
	}
	data, err := readFile(s.fsys, p, maxJSONBlob)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	return nil
}

// ChainIDs computes OCI chain ids from diff ids, base first:
// chain[0] = diff[0], chain[i] = sha256(chain[i-1] + " " + diff[i]).
func ChainIDs(diffIDs []string) []string {
	out := make([]string, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d
			continue
		}
		sum := sha256.Sum256([]byte(out[i-1] + " " + d))
		out[i] = "sha256:" + hex.EncodeToString(sum[:])
	}
	return out
}

// loadImages resolves each image's config and diff ids from the content
// store when the manifest and config blobs are on disk.
func (s *State) loadImages() {
	s.chains = map[string]chainEntry{}
	for i := range s.Images {
		img := &s.Images[i]
		if img.Target.Digest == "" {
			continue
		}
		m, err := s.manifest(img.Target.Digest, img.Target.Size, 0)
		if err != nil {
			continue // blobs are often garbage collected or never pulled (gcfs)
		}
		img.Size = m.size + m.Config.Size
		for _, l := range m.Layers {
			img.Size += l.Size
		}
		var cfg ociConfig
		if err := s.readJSONBlob(m.Config.Digest, &cfg); err != nil {
			continue
		}
		img.Config = m.Config.Digest
		img.DiffIDs = cfg.RootFS.DiffIDs
		chain := ChainIDs(img.DiffIDs)
		if len(chain) > 0 {
			img.ChainID = chain[len(chain)-1]
		}
		for j, c := range chain {
			if _, ok := s.chains[c]; !ok {
				s.chains[c] = chainEntry{diffIDs: img.DiffIDs[:j+1], image: img.Name}
			}
		}
	}
}

// manifest reads the image manifest at digest, descending into an index to
// the first manifest whose blob is on disk (the platform the node pulled).
func (s *State) manifest(digest string, size int64, depth int) (*ociManifest, error) {
	if depth > 2 {
		return nil, fmt.Errorf("nested indexes")
	}
	var m ociManifest
	if err := s.readJSONBlob(digest, &m); err != nil {
		return nil, err
	}
	m.size = size
	if len(m.Manifests) == 0 {
		if m.Config.Digest == "" {
			return nil, fmt.Errorf("%s: no config", digest)
		}
		return &m, nil
	}
	for _, d := range m.Manifests {
		if strings.Contains(d.MediaType, "index") || strings.Contains(d.MediaType, "list") {
			continue
		}
		if mm, err := s.manifest(d.Digest, d.Size, depth+1); err == nil {
			mm.size += size
			return mm, nil
		}
	}
	return nil, fmt.Errorf("%s: no manifest of the index is on disk", digest)
}
