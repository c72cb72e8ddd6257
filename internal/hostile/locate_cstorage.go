//go:build linux

package hostile

import (
	"bytes"
	"errors"
	"path"
	"sort"

	"github.com/ctrlift/ctrlift/cstorage"
	"github.com/ctrlift/ctrlift/image/ext4"
)

// KindCStorage is a disk holding containers/storage stores (Podman,
// CRI-O): list, info, diff and export per container, as for containerd.
const KindCStorage = "cstorage"

// StoreFile is a containers/storage JSON record file (layers.json,
// images.json, containers.json) or a layer's lower file, with its
// contents as the pristine image has them.
type StoreFile struct {
	Path  string
	Inode *InodeInfo
	Data  []byte
}

// locateCStorage finds the stores' record files, the overlay l/ links
// and lower files, Podman's bolt_state.db and the layer directories.
func (b *Base) locateCStorage(fsys *ext4.FS) error {
	refs, err := cstorage.FindStores(fsys, "")
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, ref := range refs {
		s, err := cstorage.Load(fsys, ref)
		if err != nil {
			return err
		}
		ns := "podman"
		if s.Kind == cstorage.KindRootless {
			ns += "@" + s.User
		}
		for _, c := range s.Containers {
			b.Containers = append(b.Containers, Container{ns, c.ID})
		}
		for _, f := range []string{"overlay-layers/layers.json", "overlay-images/images.json", "overlay-containers/containers.json"} {
			if sf := b.storeFile(path.Join(ref.Root, f), "store-json"); sf != nil {
				b.StoreFiles = append(b.StoreFiles, sf)
			}
		}
		if db, err := b.boltFile(path.Join(ref.Root, "libpod/bolt_state.db"), "podmandb"); err == nil {
			b.PodmanDBs = append(b.PodmanDBs, db)
		}
		for _, p := range []string{"db.sql", "libpod/db.sql"} {
			if sf := b.storeFile(path.Join(ref.Root, p), "podman-sqlite"); sf != nil {
				b.PodmanSQLite = append(b.PodmanSQLite, sf)
			}
		}
		overlay := path.Join(ref.Root, "overlay")
		if l, err := b.FS.lookup(path.Join(overlay, "l")); err == nil {
			b.add(l, "path")
			b.FS.walk(l, 200, func(e *InodeInfo) {
				if e.IsSymlink() {
					b.StoreLinks = append(b.StoreLinks, b.add(e, "store-link"))
				}
			})
		}
		for _, c := range s.Containers {
			for _, l := range c.Chain {
				if seen[l.Dir] {
					continue
				}
				seen[l.Dir] = true
				if sf := b.storeFile(path.Join(path.Dir(l.Dir), "lower"), "store-lower"); sf != nil {
					b.LowerFiles = append(b.LowerFiles, sf)
				}
				if up, err := b.FS.lookup(path.Dir(l.Dir)); err == nil {
					b.add(up, "layer-parent")
				}
				in, err := b.FS.lookup(l.Dir)
				if err != nil || !in.IsDir() {
					continue
				}
				b.Layers = append(b.Layers, b.add(in, "layer-dir"))
				var ents []*InodeInfo
				if err := b.FS.walk(in, 2000, func(e *InodeInfo) { ents = append(ents, e) }); err != nil {
					return err
				}
				b.sampleEntries(ents, 20)
			}
		}
	}
	sort.Slice(b.Containers, func(i, j int) bool { return b.Containers[i].ID < b.Containers[j].ID })
	if len(b.Containers) == 0 || len(b.StoreFiles) == 0 {
		return errors.New("no containers/storage containers found")
	}
	return nil
}

func (b *Base) storeFile(p, role string) *StoreFile {
	in, err := b.FS.lookup(p)
	if err != nil || !in.IsReg() {
		return nil
	}
	data, err := b.FS.Contents(in, 16<<20)
	if err != nil {
		return nil
	}
	b.add(in, role)
	return &StoreFile{Path: p, Inode: in, Data: data}
}

// hexIDs are the offsets of the 64-digit ids quoted in a store file.
func hexIDs(data []byte) []int {
	var out []int
	for i := 0; i+66 <= len(data); i++ {
		if data[i] != '"' || data[i+65] != '"' {
			continue
		}
		if cstorage.ValidID(string(data[i+1 : i+65])) {
			out = append(out, i+1)
			i += 65
		}
	}
	return out
}

// keyOffsets are the offsets of the values of "key": in a store file.
func keyOffsets(data []byte, key string) []int {
	var out []int
	pat := []byte(`"` + key + `":`)
	for i := 0; ; {
		j := bytes.Index(data[i:], pat)
		if j < 0 {
			return out
		}
		out = append(out, i+j+len(pat))
		i += j + len(pat)
	}
}
