//go:build linux

package hostile

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ctrlift/ctrlift/containerd"
	"github.com/ctrlift/ctrlift/image"
	"github.com/ctrlift/ctrlift/image/ext4"
	"github.com/ctrlift/ctrlift/image/tarfs"
)

// Kinds of base image; they decide which commands run on a variant.
const (
	KindContainerd = "containerd" // holds containerd state: list, info, diff, export per container
	KindExt4       = "ext4"       // a bare ext2/3/4 image: export --layer-dirs . of the whole tree
	KindTable      = "table"      // a small partitioned disk: partitions, then export of the largest ext fs
	KindTree       = "tree"       // a tar of a containerd root: list, info, diff, export per container
)

// Container names a container of a base image.
type Container struct{ Namespace, ID string }

// BoltFile is a bbolt database stored in the base's ext4 filesystem.
type BoltFile struct {
	Path  string
	Inode *InodeInfo
	Map   *BoltMap
}

// Snapshot is a snapshotter metadata.db record and where its values are.
type Snapshot struct {
	Name   string
	Parent BoltKV // "parent" value; ValLen 0 when the snapshot has none
	ID     BoltKV
	Kind   BoltKV
}

// Base is a pristine image the variants are derived from, with the
// structures the mutations aim at.
type Base struct {
	Name string
	Kind string
	Path string // pristine file; never written
	Size int64
	f    *os.File

	FS      *ext4Geom // the filesystem holding the data (STATE, or the bare fs)
	FSSize  int64
	Inodes  []*InodeInfo
	Journal *InodeInfo // inode 8 when the filesystem has a journal

	MetaDB    *BoltFile
	SnapDBs   []*BoltFile
	Snapshots []Snapshot // of the overlayfs snapshotter
	Layers    []*InodeInfo
	CRIFiles  []*InodeInfo

	Containers []Container
	// containers/storage stores (KindCStorage): record files, l/ links,
	// lower files, Podman's databases.
	StoreFiles []*StoreFile
	StoreLinks []*InodeInfo
	LowerFiles []*StoreFile
	PodmanDBs  []*BoltFile
	GPT        *GPTMap
	MBR        *MBRMap
	Parts      [][2]int64 // partition [start, end) byte ranges

	// PodmanSQLite are Podman 5's db.sql files (KindCStorage).
	PodmanSQLite []*StoreFile

	Boundaries []int64 // offsets where a truncation is interesting

	// Free is a run of never-written blocks of the filesystem (a hole of
	// the image), [start, end) file offsets, where mutations may forge
	// structures; zero when there is none.
	Free [2]int64

	// ExportDirs are the directories exported from a base without
	// containerd state (one is picked per variant).
	ExportDirs []string

	// Tar are the member headers of a tree archive.
	Tar []TarHeader

	// Format is the evidence container of a base built by BuildEvidence
	// (FormatE01, ...); "" for the raw images. Classes without Applies
	// aim at raw images only.
	Format string
	// Set are the files of an evidence base: each variant gets a
	// directory of its own holding them; Set[0] is the file named by -i.
	Set []*SetFile
	// Outside are files put outside the variant's directory, by name in
	// the worker's outside directory (from where a variant's directory is
	// ../../outside): escape targets, which ctrlift must never open.
	Outside map[string]string

	// Hot are guest disk offsets ctrlift reads (evidence bases).
	Hot []int64

	EWF      *EWFMap      // E01 sections, tables and chunks
	QCOW2    *QCOW2Map    // QCOW2 header, L1 and L2 tables
	VMDK     *VMDKMap     // a VMDK sparse extent: header, footer, grain directory and tables
	VMDKDesc *VMDKDescMap // a VMDK descriptor (a file, or embedded in the sparse extent)
	VHD      *VHDMap      // VHD footer, dynamic header and BAT
	VHDX     *VHDXMap     // VHDX headers, region tables, metadata and BAT
	LVM      *LVMMap      // an LVM2 PV: label, metadata areas and their text

	XFS     *xfsGeom  // the XFS filesystem holding the data (FS is nil then)
	XInodes []*XInode // its inodes the mutations aim at
}

// ReadAt reads the pristine image.
func (b *Base) ReadAt(p []byte, off int64) (int, error) { return b.f.ReadAt(p, off) }

// Close releases the pristine files.
func (b *Base) Close() error {
	if b.Set != nil {
		b.closeSet()
		return nil
	}
	return b.f.Close()
}

// OpenBase opens a pristine image of the given kind and locates its
// structures: the partition table, the filesystem of the STATE (or
// largest ext) partition, and for containerd images the databases,
// snapshots, layer directories and a sample of the layers' contents.
func OpenBase(name, kind, file string) (*Base, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	b := &Base{Name: name, Kind: kind, Path: file, Size: st.Size(), f: f}
	if err := b.locate(); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return b, nil
}

func (b *Base) locate() error {
	if b.Kind == KindTree {
		return b.locateTree()
	}
	b.GPT = mapGPT(b.f, b.Size)
	if b.GPT == nil {
		b.MBR = mapMBR(b.f, b.Size)
	}
	d, err := image.Open(b.Path, image.Options{NoCache: true})
	if err != nil {
		return err
	}
	defer d.Close()
	for _, p := range d.Partitions {
		b.Parts = append(b.Parts, [2]int64{p.Start, p.Start + p.Size})
	}
	p, err := d.Select("")
	if err == nil && p.VolumeGroup != "" {
		return b.locateLVM(d, p) // a logical volume: its bytes are not in one place
	}
	if err == nil && p.FS.Type == image.FSXFS {
		return b.locateXFS(p)
	}
	if err != nil || !image.IsExt(p.FS.Type) {
		if b.Kind == KindTable {
			b.addBoundaries()
			return nil // a disk without an ext filesystem: table classes only
		}
		return fmt.Errorf("no ext filesystem: %v", err)
	}
	if b.FS, err = readExt4Geom(b.f, p.Start); err != nil {
		return err
	}
	b.FSSize = p.Size
	fsys, err := ext4.NewReader(p.Reader(), p.Size)
	if err != nil {
		return err
	}
	if j, err := b.FS.inode(8); err == nil && j.Size > 0 && len(j.Runs) > 0 {
		j.Role, j.Path = "journal", "<journal>"
		b.Journal = j
	}
	b.addBoundaries()
	b.findFree()
	if b.Kind == KindContainerd {
		return b.locateContainerd(fsys)
	}
	if b.Kind == KindDocker {
		return b.locateDocker(fsys)
	}
	if b.Kind == KindCStorage {
		return b.locateCStorage(fsys)
	}
	root, err := b.FS.lookup(".")
	if err != nil {
		return err
	}
	b.add(root, "path")
	if err := b.FS.walk(root, 400, func(in *InodeInfo) { b.add(in, "entry") }); err != nil {
		return err
	}
	return b.exportDirs(root)
}

func (b *Base) exportDirs(root *InodeInfo) error {
	// Sparse files cost their data, not their size (SECURITY.md, promise
	// 3), so the whole filesystem is exported, 5 GiB sparse files included.
	b.ExportDirs = []string{"."}
	return nil
}

// findFree looks for the largest hole in the second half of the
// filesystem: blocks nobody wrote, free space.
func (b *Base) findFree() {
	g := b.FS
	end := g.Off + int64(g.BlocksCount)*g.BS
	end = min(end, b.Size)
	fd := int(b.f.Fd())
	for pos := g.Off + (end-g.Off)/2; pos < end; {
		h, err := unix.Seek(fd, pos, unix.SEEK_HOLE)
		if err != nil || h >= end {
			return
		}
		d, err := unix.Seek(fd, h, unix.SEEK_DATA)
		if err != nil {
			d = b.Size
		}
		d = min(d, end)
		start := (h - g.Off + g.BS - 1) / g.BS * g.BS
		stop := (d - g.Off) / g.BS * g.BS
		if stop-start > b.Free[1]-b.Free[0] {
			b.Free = [2]int64{g.Off + start, g.Off + stop}
		}
		pos = d
	}
}

// FSOffset returns the byte offset of the base's filesystem in its file.
func (b *Base) FSOffset() int64 { return b.FS.Off }

// Lookup finds a path of the base's filesystem.
func (b *Base) Lookup(p string) (*InodeInfo, error) { return b.FS.lookup(p) }

func (b *Base) add(in *InodeInfo, role string) *InodeInfo {
	in.Role = role
	b.Inodes = append(b.Inodes, in)
	return in
}

func (b *Base) addBoundaries() {
	add := func(offs ...int64) { b.Boundaries = append(b.Boundaries, offs...) }
	add(0, 512, 1024, 2048, b.Size/2, b.Size-512, b.Size-1)
	for _, p := range b.Parts {
		add(p[0], p[0]+512, p[1]-512, p[1])
	}
	g := b.FS
	if g == nil {
		return
	}
	add(g.Off, g.Off+sbOff, g.Off+sbOff+0x60, g.Off+2*sbOff)
	for _, o := range g.GDTBlocks {
		add(o, o+g.DescSize, o+g.BS)
	}
	for i, t := range g.InodeTables {
		if i > 4 {
			break
		}
		add(g.BlockOff(t), g.BlockOff(t)+g.InodeSize*2)
	}
	add(g.Off+int64(g.BlocksCount)*g.BS-1, g.Off+int64(g.BlocksCount)*g.BS/2)
}

func (b *Base) locateContainerd(fsys *ext4.FS) error {
	root, err := containerd.FindRoot(fsys, "")
	if err != nil {
		return err
	}
	st, err := containerd.Load(fsys, root)
	if err != nil {
		return err
	}
	for _, c := range st.Containers {
		b.Containers = append(b.Containers, Container{c.Namespace, c.ID})
	}
	sort.Slice(b.Containers, func(i, j int) bool { return b.Containers[i].ID < b.Containers[j].ID })
	// The path down to the containerd root and its databases.
	for _, p := range []string{".", "var", "var/lib", root, path.Join(root, "io.containerd.metadata.v1.bolt")} {
		if in, err := b.FS.lookup(p); err == nil {
			b.add(in, "path")
		}
	}
	db, err := b.boltFile(path.Join(root, containerd.MetaDBPath), "metadb")
	if err != nil {
		return err
	}
	b.MetaDB = db
	for _, s := range st.Snapshotters {
		if s.DB == nil {
			continue
		}
		if dir, err := b.FS.lookup(s.Dir); err == nil {
			b.add(dir, "path")
		}
		sdb, err := b.boltFile(path.Join(s.Dir, "metadata.db"), "snapdb")
		if err != nil {
			return err
		}
		b.SnapDBs = append(b.SnapDBs, sdb)
		if s.Name == "overlayfs" {
			b.Snapshots = snapshotsOf(sdb.Map)
		}
		if sn, err := b.FS.lookup(path.Join(s.Dir, "snapshots")); err == nil {
			b.add(sn, "path")
		}
	}
	// Layer directories and a sample of what they hold.
	seen := map[string]bool{}
	for _, c := range st.Containers {
		for _, l := range c.Layers {
			if l.Path == "" || seen[l.Path] {
				continue
			}
			seen[l.Path] = true
			if up, err := b.FS.lookup(path.Dir(l.Path)); err == nil {
				b.add(up, "layer-parent")
			}
			in, err := b.FS.lookup(l.Path)
			if err != nil || !in.IsDir() {
				continue
			}
			b.Layers = append(b.Layers, b.add(in, "layer-dir"))
			var ents []*InodeInfo
			if err := b.FS.walk(in, 2000, func(e *InodeInfo) { ents = append(ents, e) }); err != nil {
				return err
			}
			b.sampleEntries(ents, 40)
		}
	}
	if blobs, err := b.FS.lookup(path.Join(root, "io.containerd.content.v1.content/blobs")); err == nil {
		n := 0
		b.FS.walk(blobs, 200, func(e *InodeInfo) {
			if e.IsReg() && n < 24 {
				b.add(e, "blob")
				n++
			}
		})
	}
	cri, err := b.FS.lookup(path.Join(root, "io.containerd.grpc.v1.cri"))
	if err == nil {
		b.FS.walk(cri, 200, func(e *InodeInfo) {
			if e.IsReg() && e.Size > 0 && e.Size < 1<<16 {
				b.CRIFiles = append(b.CRIFiles, b.add(e, "cri-file"))
			}
		})
	}
	if len(b.Containers) == 0 || b.MetaDB == nil {
		return errors.New("no containers found")
	}
	return nil
}

// sampleEntries keeps up to n entries of a layer, favouring the ones with
// structure worth breaking: directories, deep extent trees, xattrs,
// symlinks and whiteouts.
func (b *Base) sampleEntries(ents []*InodeInfo, n int) {
	score := func(e *InodeInfo) int {
		s := 0
		if e.IsDir() {
			s += 2
		}
		if len(e.Nodes) > 1 {
			s += 4
		}
		if e.EABlk != 0 || e.EAArea[1] != 0 {
			s += 3
		}
		if e.IsSymlink() || e.Mode&0xF000 == 0x2000 {
			s++
		}
		if e.Size > 1<<16 {
			s++
		}
		return s
	}
	sort.SliceStable(ents, func(i, j int) bool { return score(ents[i]) > score(ents[j]) })
	for i, e := range ents {
		if i >= n {
			break
		}
		b.add(e, "layer-entry")
	}
}

func (b *Base) boltFile(p, role string) (*BoltFile, error) {
	in, err := b.FS.lookup(p)
	if err != nil {
		return nil, err
	}
	data, err := b.FS.Contents(in, 64<<20)
	if err != nil {
		return nil, err
	}
	m, err := mapBolt(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	b.add(in, role)
	return &BoltFile{Path: p, Inode: in, Map: m}, nil
}

func snapshotsOf(m *BoltMap) []Snapshot {
	byName := map[string]*Snapshot{}
	var names []string
	for _, kv := range m.KVs {
		if len(kv.Bucket) != 3 || kv.Bucket[0] != "v1" || kv.Bucket[1] != "snapshots" {
			continue
		}
		name := kv.Bucket[2]
		s := byName[name]
		if s == nil {
			s = &Snapshot{Name: name}
			byName[name] = s
			names = append(names, name)
		}
		switch kv.Key {
		case "parent":
			s.Parent = kv
		case "id":
			s.ID = kv
		case "kind":
			s.Kind = kv
		}
	}
	out := make([]Snapshot, 0, len(names))
	for _, n := range names {
		out = append(out, *byName[n])
	}
	return out
}

// pick returns a random element.
func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

// inodesWith returns the base's inodes for which keep is true.
func (b *Base) inodesWith(keep func(*InodeInfo) bool) []*InodeInfo {
	var out []*InodeInfo
	for _, in := range b.Inodes {
		if keep(in) {
			out = append(out, in)
		}
	}
	return out
}

// CopySparse copies n bytes of src from off into a new file dst, skipping
// holes (SEEK_DATA/SEEK_HOLE), and sets its size to n.
func CopySparse(dst string, src *os.File, off, n int64) error {
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if err := copyData(out, src, off, n); err != nil {
		out.Close()
		return err
	}
	if err := out.Truncate(n); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func copyData(out, src *os.File, off, n int64) error {
	buf := make([]byte, 1<<20)
	end := off + n
	pos := off
	for pos < end {
		d, err := unix.Seek(int(src.Fd()), pos, unix.SEEK_DATA)
		if err == unix.ENXIO || err == nil && d >= end {
			return nil // no data after pos
		}
		if err != nil {
			return err
		}
		h, err := unix.Seek(int(src.Fd()), d, unix.SEEK_HOLE)
		if err != nil {
			return err
		}
		h = min(h, end)
		for p := d; p < h; {
			m := min(int64(len(buf)), h-p)
			k, err := src.ReadAt(buf[:m], p)
			if k > 0 {
				if _, err := out.WriteAt(buf[:k], p-off); err != nil {
					return err
				}
			}
			if err != nil && err != io.EOF {
				return err
			}
			if k == 0 {
				break
			}
			p += int64(k)
		}
		pos = h
	}
	return nil
}

// describeInode names an inode for variant descriptions.
func describeInode(in *InodeInfo) string {
	p := in.Path
	if len(p) > 60 {
		p = "…" + p[len(p)-59:]
	}
	return fmt.Sprintf("inode %d (%s, %s)", in.Ino, strings.TrimPrefix(p, "./"), in.Role)
}

// locateTree maps the member headers of a tree archive and lists its
// containers through the tar reader under test.
func (b *Base) locateTree() error {
	b.Tar = mapTar(b.f, b.Size, 1<<20)
	if len(b.Tar) == 0 {
		return errors.New("no tar headers")
	}
	for _, h := range b.Tar {
		b.Boundaries = append(b.Boundaries, h.Off, h.DataOff)
	}
	t, err := tarfs.Open(b.f, b.Size)
	if err != nil {
		return err
	}
	root, err := containerd.FindRoot(t.IOFS(), "")
	if err != nil {
		return err
	}
	st, err := containerd.Load(t.IOFS(), root)
	if err != nil {
		return err
	}
	for _, c := range st.Containers {
		b.Containers = append(b.Containers, Container{c.Namespace, c.ID})
	}
	sort.Slice(b.Containers, func(i, j int) bool { return b.Containers[i].ID < b.Containers[j].ID })
	return nil
}
