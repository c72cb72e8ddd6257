// Package oci writes a container's snapshot layers as an image archive: one
// tar that is at once an OCI image layout (oci-layout, index.json,
// blobs/sha256/…) and a docker save archive (manifest.json naming the same
// blobs), so that skopeo (oci-archive:), umoci, docker load, podman load
// and trivy --input all read it.
//
// Each snapshot is written as its own layer diff (export.Changes: overlay
// whiteouts and opaque directories become .wh. entries; for a copying
// snapshotter, what differs from the parent snapshot), bottom to top,
// with the container's writable layer as the top one unless it is left
// out. OCI layers hold no GNU sparse entries (the image spec advises
// against sparse files): holes are written out as zeros, within a bound.
//
// The archive is deterministic: the same layers and inputs give the same
// bytes. No wall clock is read; the archive's own entries carry a fixed
// time (Image.Created) and come in a fixed order.
package oci

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ctrlift/ctrlift/export"
	"github.com/ctrlift/ctrlift/layers"
	"github.com/ctrlift/ctrlift/vfs"
)

// Media types of what is written.
const (
	MediaTypeIndex    = "application/vnd.oci.image.index.v1+json"
	MediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	MediaTypeLayer    = "application/vnd.oci.image.layer.v1.tar" // +gzip, +zstd when compressed
)

// Annotations written on the manifest and on its descriptor in index.json.
const (
	AnnotationRefName    = "org.opencontainers.image.ref.name" // the tag, in index.json
	AnnotationImageName  = "io.containerd.image.name"          // the whole reference, in index.json
	AnnotationBaseName   = "org.opencontainers.image.base.name"
	AnnotationBaseDigest = "org.opencontainers.image.base.digest"

	// ctrlift's own, under the reverse domain of github.com/ctrlift.
	AnnotationPrefix         = "com.github.ctrlift."
	AnnotationSourceImage    = AnnotationPrefix + "source.image"    // the original image's name
	AnnotationSourceIndex    = AnnotationPrefix + "source.index"    // digest of its index, when its target is one
	AnnotationSourceManifest = AnnotationPrefix + "source.manifest" // digest of its manifest
	AnnotationSourceConfig   = AnnotationPrefix + "source.config"   // digest of its config
	AnnotationSourceDiffIDs  = AnnotationPrefix + "source.diff_ids" // its config's diff ids, base first, comma-separated
	AnnotationLayers         = AnnotationPrefix + "layers"          // the snapshot each layer was rebuilt from, base first, comma-separated
	AnnotationConfig         = AnnotationPrefix + "config"          // "original" (the source config, rewritten) or "synthesized"
	AnnotationChanges        = AnnotationPrefix + "changes"         // "top layer", "left out" or "none" (no writable layer)
)

// DefaultMaxHoleBytes bounds the holes of sparse files written out as
// zeros in one archive, when Options.MaxHoleBytes is 0.
const DefaultMaxHoleBytes = 1 << 30

// maxJSON bounds a source blob (index, manifest, config).
const maxJSON = 16 << 20

// Image is what to write.
type Image struct {
	// Layers are the snapshot layers, top first, as package node gives
	// them.
	Layers []layers.Layer
	// Writable says Layers[0] is the container's writable layer: what the
	// container changed.
	Writable bool
	// NoChanges leaves the writable layer out: the image alone.
	NoChanges bool
	// Copies says the layers are complete trees, each copied from the
	// next (a copying snapshotter's, such as containerd's native): each
	// is written as what differs from the next (layers.Compare), the last
	// whole. Otherwise they are overlay upper directories, each written
	// with its whiteouts and opaque directories.
	Copies bool
	// Source is the original image, as far as the content store still
	// holds it.
	Source Source
	// Config is the configuration written when Source.Config is nil or
	// not a JSON object.
	Config Config
	// Name is the image reference (repository:tag) recorded in index.json
	// (io.containerd.image.name, and the tag as
	// org.opencontainers.image.ref.name) and in manifest.json's RepoTags.
	// "" records none. See Reference.
	Name string
	// Created is the time of the archive's own entries (to the second)
	// and of the writable layer's history entry; zero is the epoch.
	Created time.Time
	// ChangesBy is created_by of the writable layer's history entry.
	ChangesBy string
	// Annotations are added to the manifest's and index.json's.
	Annotations map[string]string
}

// Source is the original image's blobs as stored; nil when gone.
type Source struct {
	Name                    string
	Index, Manifest, Config []byte
}

// Config is the run configuration of a synthesized image config.
type Config struct {
	Architecture, OS, Variant string
	Created                   time.Time
	User                      string
	Env, Entrypoint, Cmd      []string
	WorkingDir                string
}

// Options tune Write.
type Options struct {
	// Compression of the layer blobs; "" is gzip.
	Compression export.Compression
	// TempDir is where layer blobs are staged before they go into the
	// archive; "" is os.TempDir(). They are removed when Write returns.
	TempDir string
	// MaxHoleBytes bounds the holes written out as zeros; 0 is
	// DefaultMaxHoleBytes. Past it Write fails.
	MaxHoleBytes int64
	// Progress, when set, is called as entries are written, with running
	// totals over all layers.
	Progress func(files, bytes int64)
}

// Result describes a written archive.
type Result struct {
	Name           string        `json:"name,omitempty"`
	ManifestDigest string        `json:"manifest_digest"`
	ManifestSize   int64         `json:"manifest_size"`
	ConfigDigest   string        `json:"config_digest"`
	Config         string        `json:"config"`            // "original" or "synthesized"
	Layers         []LayerResult `json:"layers"`            // base first
	Entries        int64         `json:"entries"`           // entries of all layers
	Bytes          int64         `json:"file_bytes"`        // file bytes of all layers
	Skipped        []string      `json:"skipped,omitempty"` // entries a tar cannot hold (sockets)
	Warnings       []string      `json:"warnings,omitempty"`
}

// LayerResult is one layer of the archive.
type LayerResult struct {
	Source    string `json:"source"` // the snapshot: layers.Layer.Name
	MediaType string `json:"media_type"`
	Digest    string `json:"digest"` // of the blob (compressed)
	Size      int64  `json:"size"`
	DiffID    string `json:"diff_id"` // of the uncompressed tar
	Entries   int64  `json:"entries"`
	Changes   bool   `json:"changes,omitempty"` // the container's writable layer
}

// LayerMediaType is the media type of a layer compressed with c.
func LayerMediaType(c export.Compression) (string, error) {
	switch c {
	case export.None:
		return MediaTypeLayer, nil
	case export.Gzip, "":
		return MediaTypeLayer + "+gzip", nil
	case export.Zstd:
		return MediaTypeLayer + "+zstd", nil
	}
	return "", fmt.Errorf("oci: unknown layer compression %q", c)
}

// descriptor is an OCI content descriptor.
type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    *platform         `json:"platform,omitempty"`
}

type platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Variant      string `json:"variant,omitempty"`
}

type manifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	Config        descriptor        `json:"config"`
	Layers        []descriptor      `json:"layers"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

type index struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Manifests     []descriptor `json:"manifests"`
}

// dockerManifest is one image of manifest.json, as docker save writes it.
type dockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// blob is staged content: in memory, or in a temporary file.
type blob struct {
	data []byte
	file string
	size int64
}

// Write writes img to w as an archive and returns its digests.
func Write(w io.Writer, img *Image, opt Options) (*Result, error) {
	comp := opt.Compression
	if comp == "" {
		comp = export.Gzip
	}
	mediaType, err := LayerMediaType(comp)
	if err != nil {
		return nil, err
	}
	ls := img.Layers
	writable := img.Writable && len(ls) > 0
	if writable && img.NoChanges {
		ls, writable = ls[1:], false
	}
	if len(ls) == 0 {
		return nil, errors.New("oci: no layers to write")
	}
	s := &stager{blobs: map[string]*blob{}, dir: opt.TempDir}
	defer s.cleanup()
	res := &Result{Name: img.Name}
	holes := &holeBudget{max: opt.MaxHoleBytes, mapped: map[vfs.FS]int64{}}
	if holes.max <= 0 {
		holes.max = DefaultMaxHoleBytes
	}
	var names []string
	for i := len(ls) - 1; i >= 0; i-- {
		l := ls[i]
		eo := export.Options{}
		if opt.Progress != nil {
			files, bytes := res.Entries, res.Bytes
			eo.Progress = func(f, b int64) { opt.Progress(files+f, bytes+b) }
		}
		var parent *layers.Layer
		if img.Copies && i+1 < len(ls) {
			parent = &ls[i+1]
		}
		lr, stats, err := s.layer(layers.Layer{FS: &denseFS{FS: l.FS, budget: holes}, Dir: l.Dir, Name: l.Name, UserXattr: l.UserXattr}, parent, comp, eo)
		if err != nil {
			return nil, fmt.Errorf("oci: layer %s: %w", l.Name, err)
		}
		lr.Source, lr.MediaType, lr.Changes = l.Name, mediaType, writable && i == 0
		res.Layers = append(res.Layers, *lr)
		res.Entries += stats.Files
		res.Bytes += stats.Bytes
		res.Skipped = append(res.Skipped, stats.Skipped...)
		res.Warnings = append(res.Warnings, stats.Warnings...)
		names = append(names, l.Name)
	}

	// The config: the source's, rewritten for the rebuilt layers, or one
	// made from Config.
	cfg, kind, src, warnings := buildConfig(img, res.Layers, writable)
	res.Warnings = append(res.Warnings, warnings...)
	res.Config = kind
	cfgDesc := s.json(MediaTypeConfig, cfg)
	res.ConfigDigest = cfgDesc.Digest

	ann := map[string]string{
		AnnotationLayers: strings.Join(names, ","),
		AnnotationConfig: kind,
		AnnotationChanges: func() string {
			switch {
			case writable:
				return "top layer"
			case img.Writable:
				return "left out"
			}
			return "none"
		}(),
	}
	if img.Source.Name != "" {
		ann[AnnotationSourceImage] = img.Source.Name
	}
	for _, b := range []struct {
		key  string
		data []byte
	}{{AnnotationSourceIndex, img.Source.Index}, {AnnotationSourceManifest, img.Source.Manifest}, {AnnotationSourceConfig, img.Source.Config}} {
		if b.data != nil {
			// Kept as blobs that nothing references (the image layout
			// allows them), so the annotations can be checked.
			ann[b.key] = s.add(b.data)
		}
	}
	if len(src.diffIDs) > 0 {
		ann[AnnotationSourceDiffIDs] = strings.Join(src.diffIDs, ",")
	}
	if writable && img.Source.Manifest != nil {
		ann[AnnotationBaseDigest] = ann[AnnotationSourceManifest]
		if img.Source.Name != "" {
			ann[AnnotationBaseName] = img.Source.Name
		}
	}
	for k, v := range img.Annotations {
		ann[k] = v
	}

	m := manifest{SchemaVersion: 2, MediaType: MediaTypeManifest, Config: cfgDesc, Annotations: ann}
	for _, l := range res.Layers {
		m.Layers = append(m.Layers, descriptor{MediaType: l.MediaType, Digest: l.Digest, Size: l.Size})
	}
	mb, err := marshal(m)
	if err != nil {
		return nil, err
	}
	mDesc := s.json(MediaTypeManifest, mb)
	res.ManifestDigest, res.ManifestSize = mDesc.Digest, mDesc.Size

	idxAnn := map[string]string{}
	for k, v := range ann {
		idxAnn[k] = v
	}
	var tags []string
	if img.Name != "" {
		idxAnn[AnnotationImageName] = img.Name
		idxAnn[AnnotationRefName] = tagOf(img.Name)
		tags = []string{img.Name}
	}
	mDesc.Annotations = idxAnn
	mDesc.Platform = &platform{Architecture: src.arch, OS: src.os, Variant: src.variant}
	ib, err := marshal(index{SchemaVersion: 2, MediaType: MediaTypeIndex, Manifests: []descriptor{mDesc}})
	if err != nil {
		return nil, err
	}
	dm := dockerManifest{Config: blobPath(cfgDesc.Digest), RepoTags: tags}
	for _, l := range res.Layers {
		dm.Layers = append(dm.Layers, blobPath(l.Digest))
	}
	db, err := marshal([]dockerManifest{dm})
	if err != nil {
		return nil, err
	}
	if err := s.write(w, img.Created, ib, db); err != nil {
		return nil, err
	}
	return res, nil
}

// stager holds the blobs until the archive is written.
type stager struct {
	blobs map[string]*blob // by digest
	dir   string
	temps []string
}

func (s *stager) cleanup() {
	for _, t := range s.temps {
		os.Remove(t)
	}
}

// add stages data and returns its digest.
func (s *stager) add(data []byte) string {
	sum := sha256.Sum256(data)
	d := "sha256:" + hex.EncodeToString(sum[:])
	if _, ok := s.blobs[d]; !ok {
		s.blobs[d] = &blob{data: data, size: int64(len(data))}
	}
	return d
}

func (s *stager) json(mediaType string, data []byte) descriptor {
	return descriptor{MediaType: mediaType, Digest: s.add(data), Size: int64(len(data))}
}

// layer writes l's diff, compressed, into a temporary file: against
// parent, a complete tree l was copied from, when set.
func (s *stager) layer(l layers.Layer, parent *layers.Layer, comp export.Compression, eo export.Options) (*LayerResult, *export.Stats, error) {
	f, err := os.CreateTemp(s.dir, ".ctrlift-oci-layer-*")
	if err != nil {
		return nil, nil, err
	}
	s.temps = append(s.temps, f.Name())
	out := export.NewDigestWriter(f) // the blob, digested on its own core
	cw, err := export.Compress(out, comp)
	if err != nil {
		out.Abort()
		f.Close()
		return nil, nil, err
	}
	var stats *export.Stats
	if parent != nil {
		stats, err = export.ChangeSet(cw, func(fn func(layers.Change) error) error { return layers.Compare(l, *parent, fn) }, eo)
	} else {
		stats, err = export.Changes(cw, l, layers.Options{}, eo)
	}
	if err == nil {
		err = cw.Close()
	}
	if err == nil {
		err = out.Close()
	} else {
		out.Abort()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, nil, err
	}
	d := "sha256:" + out.Sum()
	size := out.Size()
	if _, ok := s.blobs[d]; !ok { // the same diff twice is one blob
		s.blobs[d] = &blob{file: f.Name(), size: size}
	}
	return &LayerResult{Digest: d, Size: size, DiffID: "sha256:" + stats.TarSHA256, Entries: stats.Files}, stats, nil
}

func blobPath(digest string) string { return "blobs/" + strings.Replace(digest, ":", "/", 1) }

// write writes the archive: the blobs by digest, then index.json,
// manifest.json and oci-layout, as docker save orders them; no name
// starts with "./".
func (s *stager) write(w io.Writer, created time.Time, indexJSON, dockerJSON []byte) error {
	mtime := time.Unix(0, 0)
	if !created.IsZero() {
		mtime = created.UTC().Truncate(time.Second)
	}
	tw := tar.NewWriter(w)
	hdr := func(name string, dir bool, size int64) error {
		h := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: size, ModTime: mtime}
		if dir {
			h.Typeflag, h.Mode = tar.TypeDir, 0o755
		}
		return tw.WriteHeader(h)
	}
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := hdr(d, true, 0); err != nil {
			return err
		}
	}
	for _, d := range slices.Sorted(maps.Keys(s.blobs)) {
		b := s.blobs[d]
		if err := hdr(blobPath(d), false, b.size); err != nil {
			return err
		}
		if b.file == "" {
			if _, err := tw.Write(b.data); err != nil {
				return err
			}
			continue
		}
		f, err := os.Open(b.file)
		if err != nil {
			return err
		}
		n, err := io.Copy(tw, f)
		f.Close()
		if err == nil && n != b.size {
			err = fmt.Errorf("oci: staged layer %s: %d of %d bytes", d, n, b.size)
		}
		if err != nil {
			return err
		}
	}
	for _, e := range []struct {
		name string
		data []byte
	}{{"index.json", indexJSON}, {"manifest.json", dockerJSON}, {"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)}} {
		if err := hdr(e.name, false, int64(len(e.data))); err != nil {
			return err
		}
		if _, err := tw.Write(e.data); err != nil {
			return err
		}
	}
	return tw.Close()
}

// marshal is json.Marshal without HTML escaping.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// tagOf is the tag of a reference ("latest" when it has none).
func tagOf(ref string) string {
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		return ref[i+1:]
	}
	return "latest"
}

// Reference builds a valid image reference from path components and a
// tag, as docker's grammar has them: components lowercase, runs of other
// characters become "-"; the tag keeps [A-Za-z0-9_.-], at most 128.
func Reference(components []string, tag string) string {
	var parts []string
	for _, c := range components {
		if c = clean(strings.ToLower(c), "._-", func(r rune) bool { return r >= 'a' && r <= 'z' || r >= '0' && r <= '9' }); c != "" {
			parts = append(parts, c)
		}
	}
	if len(parts) == 0 {
		parts = []string{"image"}
	}
	tag = clean(tag, ".-", func(r rune) bool {
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_'
	})
	if len(tag) > 128 {
		tag = strings.TrimRight(tag[:128], ".-")
	}
	if tag == "" {
		tag = "latest"
	}
	return strings.Join(parts, "/") + ":" + tag
}

// clean keeps the runes ok accepts, single separators from seps between
// them, and turns everything else into "-".
func clean(s, seps string, ok func(rune) bool) string {
	var b strings.Builder
	pending := ""
	for _, r := range s {
		switch {
		case ok(r):
			if b.Len() > 0 {
				b.WriteString(pending)
			}
			pending = ""
			b.WriteRune(r)
		case strings.ContainsRune(seps, r) && pending == "":
			pending = string(r)
		default:
			pending = "-"
		}
	}
	return b.String()
}
