// Package cstorage reads containers/storage stores, the storage library of
// Podman, CRI-O and Buildah, from a filesystem image: the overlay driver's
// layers.json, images.json and containers.json (and their volatile-*.json
// companions), each layer's overlay/<id>/{diff,link,lower}, and the l/
// short links, which are read as data and never followed. Podman's own
// state (libpod/bolt_state.db) and CRI-O's container metadata
// (overlay-containers/<id>/userdata/config.json) are read beside the store.
//
// Stores are found where hosts keep them: /var/lib/containers/storage
// (rootful Podman and CRI-O), ostree/deploy/<os>/var/lib/containers/storage
// (RHCOS, Fedora CoreOS) and the rootless stores under users' homes
// (.local/share/containers/storage). Owners are reported as stored on the
// disk; for a rootless store the user-namespace mapping is reported when
// the filesystem's etc/passwd and etc/subuid give it.
//
// Every file is read with a size limit; ids and link names are checked to
// be single path components before they name anything.
package cstorage

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/ctrlift/ctrlift/internal/overlaystore"
)

// Limits on what is read from the disk.
const (
	// MaxStoreFile bounds layers.json, images.json and containers.json
	// (a node with thousands of images stays well below).
	MaxStoreFile = 64 << 20
	// MaxConfigFile bounds a container's userdata/config.json.
	MaxConfigFile = 4 << 20
	// maxSmallFile bounds link files.
	maxSmallFile = 4 << 10
	// maxLowerFile bounds an overlay lower file (500 layers of l/<26>).
	maxLowerFile = 64 << 10
	// maxLayers bounds a chain (the overlay driver allows 500).
	maxLayers = 1024
	// maxRecords bounds the records of one store file.
	maxRecords = 200000
	// maxHomes bounds the home directories searched for rootless stores.
	maxHomes = 10000
)

// Kind says what kind of store it is.
type Kind int

const (
	KindRootful  Kind = iota // /var/lib/containers/storage
	KindRootless             // a user's ~/.local/share/containers/storage
	KindGiven                // the root given explicitly
)

func (k Kind) String() string {
	switch k {
	case KindRootful:
		return "rootful"
	case KindRootless:
		return "rootless"
	case KindGiven:
		return "given"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// MarshalText makes Kind a string in JSON.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Store is one containers/storage graph root and what was read from it.
type Store struct {
	Root   string `json:"root"`   // slash path relative to the filesystem root
	Kind   Kind   `json:"kind"`   // rootful, rootless
	Driver string `json:"driver"` // the graph driver whose files were found: overlay
	// Rootless stores: the home directory's user and, when known, how the
	// user namespace mapped ids (owners on the disk are host ids).
	User  string `json:"user,omitempty"`
	IDMap *IDMap `json:"id_map,omitempty"`
	// MountProgram: the driver mounted layers with a mount program
	// (fuse-overlayfs), per overlay/.has-mount-program; its layers are
	// read through FuseOverlayFS.
	MountProgram bool    `json:"mount_program,omitempty"`
	Layers       []Layer `json:"layers"`
	Images       []Image `json:"images"`
	// Containers, sorted by id, with their layer chains.
	Containers []Container `json:"containers"`
	// Podman's state beside the store, when there is one.
	Podman   *PodmanState `json:"podman,omitempty"`
	Warnings []string     `json:"warnings,omitempty"`

	layerByID  map[string]*Layer
	chainSizes map[string]int64 // chainSize's sums by layer id
}

// Layer is one record of layers.json (or volatile-layers.json).
type Layer struct {
	ID               string    `json:"id"`
	Parent           string    `json:"parent,omitempty"`
	Names            []string  `json:"names,omitempty"`
	Created          time.Time `json:"created,omitzero"`
	DiffDigest       string    `json:"diff_digest,omitempty"`
	CompressedDigest string    `json:"compressed_diff_digest,omitempty"`
	DiffSize         int64     `json:"diff_size,omitempty"`
	UIDs             []uint32  `json:"uidset,omitempty"`
	GIDs             []uint32  `json:"gidset,omitempty"`
	Incomplete       bool      `json:"incomplete,omitempty"` // an interrupted pull or commit
	Volatile         bool      `json:"volatile,omitempty"`   // from volatile-layers.json
}

// Image is one record of images.json.
type Image struct {
	ID       string    `json:"id"`
	Digest   string    `json:"digest,omitempty"`
	Names    []string  `json:"names,omitempty"`
	TopLayer string    `json:"layer,omitempty"`
	Created  time.Time `json:"created,omitzero"`
	// Size is what podman images shows: the layers' uncompressed size and
	// the image's manifest, config and other big-data items; -1 when a
	// layer's size is unknown.
	Size         int64             `json:"size"`
	Architecture string            `json:"architecture,omitempty"`
	OS           string            `json:"os,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
}

// Container is one record of containers.json (or
// volatile-containers.json) with its layer chain.
type Container struct {
	ID        string    `json:"id"`
	Names     []string  `json:"names,omitempty"`
	ImageID   string    `json:"image_id,omitempty"`
	ImageName string    `json:"image_name,omitempty"` // from the record's metadata
	LayerID   string    `json:"layer"`
	Created   time.Time `json:"created,omitzero"`
	Volatile  bool      `json:"volatile,omitempty"`
	// Metadata is the record's free-form metadata string as stored
	// (Podman and CRI-O keep JSON there).
	Metadata string `json:"metadata,omitempty"`
	// UserData is overlay-containers/<id>/userdata, relative to the
	// filesystem root ("" when absent).
	UserData    string     `json:"userdata,omitempty"`
	Chain       []LayerDir `json:"chain"` // top (the container's own layer) first
	ChainError  string     `json:"chain_error,omitempty"`
	CRIO        *CRIO      `json:"crio,omitempty"`
	ConfigError string     `json:"config_error,omitempty"`
}

// LayerDir is one layer of a container's chain on the disk.
type LayerDir struct {
	ID   string `json:"id"`
	Dir  string `json:"dir"`  // overlay/<id>/diff, relative to the filesystem root
	Kind string `json:"kind"` // "container" or "image"
}

// FormatError is a store file that does not decode.
type FormatError struct {
	File   string // relative to the filesystem root
	Offset int64  // byte offset of the problem, -1 when unknown
	Msg    string
}

func (e *FormatError) Error() string {
	if e.Offset >= 0 {
		return fmt.Sprintf("%s: at byte %d: %s", e.File, e.Offset, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// Candidates are where FindStores looks, relative to the filesystem
// root; homes are searched as well.
var rootfulCandidates = []string{
	"var/lib/containers/storage",
	"lib/containers/storage", // the filesystem is /var
	"containers/storage",     // the filesystem is /var/lib
	".",                      // a copy of the store itself
}

// FindStores returns the stores on fsys: override alone when set, else
// every rootful, RHCOS and rootless store found.
func FindStores(fsys fs.FS, override string) ([]StoreRef, error) {
	if override != "" {
		p := path.Clean(strings.TrimLeft(override, "/"))
		if p == "" {
			p = "."
		}
		if !fs.ValidPath(p) {
			return nil, fmt.Errorf("containers/storage root %s: the path leaves the filesystem root", override)
		}
		if !IsStore(fsys, p) {
			return nil, fmt.Errorf("containers/storage root %s: no overlay-layers/layers.json or overlay-containers/containers.json", p)
		}
		ref := StoreRef{Root: p, Kind: KindGiven}
		if home, ok := strings.CutSuffix(p, "/.local/share/containers/storage"); ok {
			ref.Kind, ref.Home, ref.User = KindRootless, home, path.Base(home)
		}
		return []StoreRef{ref}, nil
	}
	var out []StoreRef
	seen := map[string]bool{}
	add := func(r StoreRef) {
		if !seen[r.Root] && IsStore(fsys, r.Root) {
			seen[r.Root] = true
			out = append(out, r)
		}
	}
	for _, c := range rootfulCandidates {
		add(StoreRef{Root: c, Kind: KindRootful})
	}
	// RHCOS and Fedora CoreOS: /var of each ostree deployment.
	if ents, err := fs.ReadDir(fsys, "ostree/deploy"); err == nil {
		for i, e := range ents {
			if i >= maxHomes || !e.IsDir() || !overlaystore.ValidName(e.Name()) {
				continue
			}
			add(StoreRef{Root: path.Join("ostree/deploy", e.Name(), "var/lib/containers/storage"), Kind: KindRootful})
			for _, h := range homes(fsys, path.Join("ostree/deploy", e.Name(), "var/home")) {
				add(h)
			}
		}
	}
	for _, base := range []string{"home", "var/home", "root"} {
		if base == "root" {
			add(StoreRef{Root: "root/.local/share/containers/storage", Kind: KindRootless, User: "root", Home: "root"})
			continue
		}
		for _, h := range homes(fsys, base) {
			add(h)
		}
	}
	return out, nil
}

// StoreRef is a store found on the filesystem, before it is read.
type StoreRef struct {
	Root string
	Kind Kind
	User string // rootless: the home directory's name
	Home string // rootless: the home directory, relative to the filesystem root
}

func homes(fsys fs.FS, base string) []StoreRef {
	ents, err := fs.ReadDir(fsys, base)
	if err != nil {
		return nil
	}
	var out []StoreRef
	for i, e := range ents {
		if i >= maxHomes {
			break
		}
		if !e.IsDir() || !overlaystore.ValidName(e.Name()) {
			continue
		}
		home := path.Join(base, e.Name())
		out = append(out, StoreRef{Root: path.Join(home, ".local/share/containers/storage"), Kind: KindRootless, User: e.Name(), Home: home})
	}
	return out
}

// IsStore says whether dir holds an overlay store's layer or container
// records.
func IsStore(fsys fs.FS, dir string) bool {
	for _, f := range []string{"overlay-layers/layers.json", "overlay-containers/containers.json"} {
		if st, err := fs.Stat(fsys, path.Join(dir, f)); err == nil && st.Mode().IsRegular() {
			return true
		}
	}
	return false
}

// Load reads the store ref names: its records, each container's layer
// chain, Podman's state and CRI-O's metadata. A record that cannot be
// used is skipped with a warning; a store file that does not decode is an
// error.
func Load(fsys fs.FS, ref StoreRef) (*Store, error) {
	s := &Store{Root: ref.Root, Kind: ref.Kind, Driver: "overlay", User: ref.User,
		Layers: []Layer{}, Images: []Image{}, Containers: []Container{}, layerByID: map[string]*Layer{}}
	if s.Kind == KindRootless && ref.Home != "" {
		s.IDMap = readIDMap(fsys, ref, s.warn)
	}
	if b, err := overlaystore.ReadFile(fsys, path.Join(ref.Root, "overlay", ".has-mount-program"), maxSmallFile); err == nil && strings.TrimSpace(string(b)) == "true" {
		// Its layers carry fuse-overlayfs's own markers: read them
		// through FuseOverlayFS.
		s.MountProgram = true
	}
	for _, f := range []struct {
		name     string
		volatile bool
	}{{"layers.json", false}, {"volatile-layers.json", true}} {
		var recs []layerRecord
		if err := readRecords(fsys, path.Join(ref.Root, "overlay-layers", f.name), &recs); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, err
		}
		for _, r := range recs {
			if !ValidID(r.ID) {
				s.warn(fmt.Sprintf("%s: layer id %q is not 64 hex digits, skipped", path.Join(ref.Root, "overlay-layers", f.name), overlaystore.Truncate(r.ID)))
				continue
			}
			if _, dup := s.layerByID[r.ID]; dup {
				continue
			}
			s.Layers = append(s.Layers, r.layer(f.volatile))
			s.layerByID[r.ID] = nil
		}
	}
	for i := range s.Layers {
		s.layerByID[s.Layers[i].ID] = &s.Layers[i]
	}
	var imgs []imageRecord
	if err := readRecords(fsys, path.Join(ref.Root, "overlay-images", "images.json"), &imgs); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	for _, r := range imgs {
		if !ValidID(r.ID) {
			s.warn(fmt.Sprintf("%s: image id %q is not 64 hex digits, skipped", path.Join(ref.Root, "overlay-images/images.json"), overlaystore.Truncate(r.ID)))
			continue
		}
		img := Image{ID: r.ID, Digest: r.Digest, Names: r.Names, TopLayer: r.Layer, Created: r.Created}
		s.describeImage(fsys, &img, r.BigData, r.BigDataSizes)
		s.Images = append(s.Images, img)
	}
	seen := map[string]bool{}
	for _, f := range []struct {
		name     string
		volatile bool
	}{{"containers.json", false}, {"volatile-containers.json", true}} {
		file := path.Join(ref.Root, "overlay-containers", f.name)
		var recs []containerRecord
		if err := readRecords(fsys, file, &recs); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, err
		}
		for _, r := range recs {
			if !ValidID(r.ID) {
				s.warn(fmt.Sprintf("%s: container id %q is not 64 hex digits, skipped", file, overlaystore.Truncate(r.ID)))
				continue
			}
			if seen[r.ID] {
				continue
			}
			seen[r.ID] = true
			s.Containers = append(s.Containers, s.container(fsys, r, f.volatile))
		}
	}
	sort.Slice(s.Containers, func(i, j int) bool { return s.Containers[i].ID < s.Containers[j].ID })
	sort.Slice(s.Images, func(i, j int) bool { return s.Images[i].ID < s.Images[j].ID })
	ps, err := loadPodman(fsys, ref.Root)
	switch {
	case err != nil:
		s.warn(err.Error())
	case ps != nil:
		s.Podman = ps
		s.Warnings = append(s.Warnings, ps.Warnings...)
	}
	return s, nil
}

func (s *Store) warn(w string) { s.Warnings = append(s.Warnings, w) }

// Layer returns the layer record with id, or nil.
func (s *Store) Layer(id string) *Layer { return s.layerByID[id] }

type layerRecord struct {
	ID               string    `json:"id"`
	Parent           string    `json:"parent"`
	Names            []string  `json:"names"`
	Created          time.Time `json:"created"`
	CompressedDigest string    `json:"compressed-diff-digest"`
	DiffDigest       string    `json:"diff-digest"`
	DiffSize         *int64    `json:"diff-size"`
	UIDs             []uint32  `json:"uidset"`
	GIDs             []uint32  `json:"gidset"`
	Flags            map[string]any
}

func (r layerRecord) layer(volatile bool) Layer {
	l := Layer{ID: r.ID, Parent: r.Parent, Names: r.Names, Created: r.Created, DiffDigest: r.DiffDigest,
		CompressedDigest: r.CompressedDigest, UIDs: r.UIDs, GIDs: r.GIDs, Volatile: volatile}
	if r.DiffSize != nil {
		l.DiffSize = *r.DiffSize
	}
	if v, ok := r.Flags["incomplete"].(bool); ok && v {
		l.Incomplete = true
	}
	return l
}

type imageRecord struct {
	ID      string    `json:"id"`
	Digest  string    `json:"digest"`
	Names   []string  `json:"names"`
	Layer   string    `json:"layer"`
	Created time.Time `json:"created"`
	BigData []string  `json:"big-data-names"`
	// The size of each big-data item (manifest, config, signatures):
	// podman images counts them in the image's size.
	BigDataSizes map[string]int64 `json:"big-data-sizes"`
}

type containerRecord struct {
	ID       string    `json:"id"`
	Names    []string  `json:"names"`
	Image    string    `json:"image"`
	Layer    string    `json:"layer"`
	Metadata string    `json:"metadata"`
	Created  time.Time `json:"created"`
}

func (s *Store) container(fsys fs.FS, r containerRecord, volatile bool) Container {
	c := Container{ID: r.ID, Names: r.Names, ImageID: r.Image, LayerID: r.Layer, Created: r.Created, Volatile: volatile, Metadata: r.Metadata}
	var md struct {
		ImageName string `json:"image-name"`
	}
	if json.Unmarshal([]byte(r.Metadata), &md) == nil {
		c.ImageName = md.ImageName
	}
	if ud := path.Join(s.Root, "overlay-containers", r.ID, "userdata"); overlaystore.IsDir(fsys, ud) {
		c.UserData = ud
		c.CRIO, c.ConfigError = readCRIO(fsys, ud)
	}
	var err error
	c.Chain, err = s.chain(fsys, r.Layer)
	if err != nil {
		c.ChainError = err.Error()
	}
	if c.Chain == nil {
		c.Chain = []LayerDir{}
	}
	return c
}

// readRecords decodes a store file, a JSON array of records, of at most
// MaxStoreFile bytes and maxRecords records.
func readRecords[T any](fsys fs.FS, name string, out *[]T) error {
	b, err := overlaystore.ReadFile(fsys, name, MaxStoreFile)
	if err != nil {
		return err
	}
	return decodeRecords(name, b, out)
}

func decodeRecords[T any](name string, b []byte, out *[]T) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil {
		return &FormatError{File: name, Offset: dec.InputOffset(), Msg: "not JSON: " + err.Error()}
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		if tok == nil { // "null": an empty store as containers/storage writes it
			return nil
		}
		return &FormatError{File: name, Offset: 0, Msg: "not a JSON array of records"}
	}
	for dec.More() {
		if len(*out) >= maxRecords {
			return &FormatError{File: name, Offset: dec.InputOffset(), Msg: fmt.Sprintf("more than %d records", maxRecords)}
		}
		var r T
		off := dec.InputOffset()
		if err := dec.Decode(&r); err != nil {
			var ute *json.UnmarshalTypeError
			if errors.As(err, &ute) {
				return &FormatError{File: name, Offset: off, Msg: fmt.Sprintf("record %d: %v", len(*out), err)}
			}
			return &FormatError{File: name, Offset: dec.InputOffset(), Msg: fmt.Sprintf("record %d: %v", len(*out), err)}
		}
		*out = append(*out, r)
	}
	if _, err := dec.Token(); err != nil {
		return &FormatError{File: name, Offset: dec.InputOffset(), Msg: "unterminated array: " + err.Error()}
	}
	return nil
}

// ValidID says whether s is a containers/storage id: 64 lowercase hex
// digits.
func ValidID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, r := range s {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return false
		}
	}
	return true
}
