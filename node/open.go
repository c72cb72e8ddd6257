package node

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/ctrlift/ctrlift/containerd"
	"github.com/ctrlift/ctrlift/image"
	"github.com/ctrlift/ctrlift/image/cache"
	"github.com/ctrlift/ctrlift/image/dirfs"
	"github.com/ctrlift/ctrlift/image/ext4"
	"github.com/ctrlift/ctrlift/image/tarfs"
	"github.com/ctrlift/ctrlift/image/xfs"
	"github.com/ctrlift/ctrlift/internal/units"
	"github.com/ctrlift/ctrlift/vfs"
)

// Options say how to open a node's evidence and which runtime state to
// read from it.
type Options struct {
	// Partition selects the filesystem of a disk image: a partition
	// number, GPT partition name, LVM logical volume (VG/LV) or
	// filesystem label. "" picks the one named or labelled STATE, else
	// the largest readable filesystem.
	Partition string
	// RuntimeRoot is the container runtime's root inside the filesystem
	// (e.g. "var/lib/containerd"); "" searches the known places.
	RuntimeRoot string
	// Namespace limits the runtime state to one containerd namespace;
	// "" reads every namespace.
	Namespace string
	// NoCache decompresses a compressed image into a temporary file
	// removed on Close instead of the user cache directory.
	NoCache bool
	// CacheDir replaces the user cache directory for decompressed images.
	CacheDir string
	// Progress receives decompression progress; nil is silent.
	Progress io.Writer
	// Warn receives each warning (a damaged table, a journal that needed
	// replay, a record that could not be decoded) as it is found; nil
	// drops them. They are also kept in Node.Warnings.
	Warn func(msg string)
}

// InputKind says what an input is.
type InputKind int

const (
	KindDisk        InputKind = iota // a disk image, raw or compressed
	KindDirectory                    // a directory tree on the host
	KindTreeArchive                  // a tar of a directory tree
	KindDatabase                     // a loose containerd meta.db
)

func (k InputKind) String() string {
	switch k {
	case KindDisk:
		return "disk image"
	case KindDirectory:
		return "directory"
	case KindTreeArchive:
		return "tree archive"
	case KindDatabase:
		return "database"
	}
	return "InputKind(" + strconv.Itoa(int(k)) + ")"
}

// Node is opened evidence of one node: one or more inputs, the filesystem
// read from them, and (loaded on first use) the runtime state on it.
type Node struct {
	opt      Options
	inputs   []*input
	tree     *source // the filesystem Tree reads
	runtime  *source // the filesystem holding the runtime state (once loaded)
	state    *containerd.State
	stateErr error
	others   []*source             // other filesystems opened while searching
	parents  map[string]copyParent // by layer directory: native snapshots' parents
	warnings []string
	seen     map[string]bool

	docker   *dockerState   // Docker Engine state beside containerd's, when found
	cstorage *cstorageState // containers/storage stores (Podman, CRI-O), when found
}

// input is one opened input as given.
type input struct {
	path string
	kind InputKind
	disk *image.Disk
	src  *source // for directories, tree archives and databases
}

// source is one readable tree: a filesystem of a partition, a directory,
// a tree archive or a loose database.
type source struct {
	in    *input
	tree  vfs.FS // nil for a loose database
	files fs.FS  // the io/fs view, for the runtime state readers
	part  *image.Partition
	ext   *ext4.FS
	xfs   *xfs.FS
	dir   *dirfs.FS
	tar   *tarfs.FS
	loose *looseDB
}

// Open opens the evidence read-only: each input is a disk image (raw,
// .zst, .gz, .xz, a GCE export), a directory holding a node's root, /var
// or /var/lib/containerd, a tar of such a tree, or a loose meta.db. Several
// inputs are the disks of one node (e.g. Bottlerocket's root and data
// volumes): each is opened and the runtime state is searched on all of
// them. Nothing is written next to an input.
func Open(inputs []string, opt Options) (*Node, error) {
	if len(inputs) == 0 {
		return nil, errors.New("no input given")
	}
	n := &Node{opt: opt, seen: map[string]bool{}}
	for _, p := range inputs {
		in, err := n.openInput(p)
		if err != nil {
			n.Close()
			return nil, err
		}
		n.inputs = append(n.inputs, in)
		if in.kind != KindDisk && len(inputs) > 1 {
			n.Close()
			return nil, fmt.Errorf("%s is a %s: only disk images combine with other inputs", p, in.kind)
		}
	}
	n.assembleVolumes()
	if err := n.selectTree(); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

func (n *Node) warn(msg string) {
	if n.seen[msg] {
		return
	}
	n.seen[msg] = true
	n.warnings = append(n.warnings, msg)
	if n.opt.Warn != nil {
		n.opt.Warn(msg)
	}
}

// Warnings are the warnings so far, each once.
func (n *Node) Warnings() []string { return append([]string(nil), n.warnings...) }

func (n *Node) openInput(p string) (*input, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	in := &input{path: p}
	switch {
	case fi.IsDir():
		if n.opt.Partition != "" {
			return nil, fmt.Errorf("%s is a directory: there is no partition to select", p)
		}
		d, err := dirfs.Open(p)
		if err != nil {
			return nil, err
		}
		in.kind = KindDirectory
		in.src = &source{in: in, tree: d, files: vfs.NewIOFS(d), dir: d}
		return in, nil
	case fi.Mode().IsRegular():
		if f, err := os.OpenFile(p, os.O_RDONLY, 0); err == nil {
			if isBolt(f) {
				l, err := newLooseDB(f)
				if err != nil {
					f.Close()
					return nil, err
				}
				in.kind = KindDatabase
				in.src = &source{in: in, files: l, loose: l}
				return in, nil
			}
			f.Close()
		}
		// A tar of a tree (also gzip, zstd or xz compressed); a GCE image
		// export, a tar whose member is disk.raw, stays a disk.
		if isTar, first, _ := tarfs.Probe(p); isTar && strings.TrimPrefix(first, "./") != cache.DiskName {
			if n.opt.Partition != "" {
				return nil, fmt.Errorf("%s is a tar of a directory tree: there is no partition to select", p)
			}
			t, err := tarfs.OpenFile(p, "")
			if err != nil {
				return nil, err
			}
			for _, note := range t.Notes() {
				n.warn(p + ": " + note)
			}
			in.kind = KindTreeArchive
			in.src = &source{in: in, tree: t, files: t.IOFS(), tar: t}
			return in, nil
		}
	}
	d, err := OpenDisk(p, n.opt)
	if err != nil {
		return nil, err
	}
	for _, w := range d.Warnings {
		n.warn(w)
	}
	in.kind, in.disk = KindDisk, d
	return in, nil
}

// OpenDisk opens a disk image alone, for a look at its partitions. A
// directory or a tar of a tree is refused at once as not a disk image.
func OpenDisk(p string, opt Options) (*image.Disk, error) {
	if fi, err := os.Stat(p); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("%s is a directory, not a disk image", p)
	}
	if isTar, first, _ := tarfs.Probe(p); isTar && strings.TrimPrefix(first, "./") != cache.DiskName {
		return nil, fmt.Errorf("%s is a tar of a directory tree (first member %q), not a disk image", p, first)
	}
	return image.Open(p, image.Options{NoCache: opt.NoCache, CacheDir: opt.CacheDir, Progress: opt.Progress})
}

// selectTree picks the filesystem Tree reads: the input's own tree, or
// the selected partition of the first disk that has it.
func (n *Node) selectTree() error {
	first := n.inputs[0]
	if first.kind != KindDisk {
		n.tree = first.src
		return nil
	}
	var firstErr error
	for _, in := range n.inputs {
		p, err := in.disk.Select(n.opt.Partition)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		src, err := n.openPartition(in, p)
		if err != nil {
			return err
		}
		n.tree = src
		return nil
	}
	return firstErr
}

// openPartition reads the filesystem of p: ext2/3/4 or XFS.
func (n *Node) openPartition(in *input, p *image.Partition) (*source, error) {
	switch {
	case image.IsExt(p.FS.Type):
		e, err := ext4.NewReader(p.Reader(), p.Size)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", describePartition(p), err)
		}
		for _, w := range e.Warnings() {
			n.warn(w)
		}
		return &source{in: in, tree: e.Source(), files: e, part: p, ext: e}, nil
	case p.FS.Type == image.FSXFS:
		x, err := xfs.NewReader(p.Reader(), p.Size)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", describePartition(p), err)
		}
		for _, w := range x.Warnings() {
			n.warn(describePartition(p) + ": " + w)
		}
		return &source{in: in, tree: x, files: x.IOFS(), part: p, xfs: x}, nil
	}
	return nil, fmt.Errorf("%s is not an ext2/3/4 or XFS filesystem; select another partition", describePartition(p))
}

// readable reports whether Open can read a filesystem of this type.
func readable(fsType string) bool { return image.Readable(fsType) }

// Close releases every input.
func (n *Node) Close() error {
	for _, s := range n.others {
		s.close()
	}
	if n.tree != nil && n.tree.part != nil {
		n.tree.close()
	}
	for _, in := range n.inputs {
		if in.src != nil {
			in.src.close()
		}
		if in.disk != nil {
			in.disk.Close()
		}
	}
	return nil
}

func (s *source) close() {
	switch {
	case s.ext != nil:
		s.ext.Close()
	case s.xfs != nil:
		s.xfs.Close()
	case s.dir != nil:
		s.dir.Close()
	case s.tar != nil:
		s.tar.Close()
	case s.loose != nil:
		s.loose.Close()
	}
}

// describe names a source, e.g. `partition 1 "STATE" (ext4, label
// "STATE", 1.0 GiB at byte 4456448000)` or `directory /mnt/node/var`.
func (s *source) describe() string {
	switch {
	case s.dir != nil:
		return "directory " + s.dir.Root()
	case s.loose != nil:
		return "loose database " + s.in.path
	case s.tar != nil:
		return fmt.Sprintf("tree archive %s (%s)", s.in.path, s.tar.Format())
	}
	return describePartition(s.part)
}

func describePartition(p *image.Partition) string {
	if p.VolumeGroup != "" {
		return describeVolume(p)
	}
	s := "partition " + strconv.Itoa(p.Number)
	if p.Name != "" {
		s += " " + strconv.Quote(p.Name)
	}
	s += " (" + p.FS.Type
	if p.FS.Label != "" {
		s += ", label " + strconv.Quote(p.FS.Label)
	}
	return s + fmt.Sprintf(", %s at byte %d)", FormatBytes(p.Size), p.Start)
}

// Tree is the filesystem read: the selected partition, the directory or
// the tree archive. A loose database has none.
func (n *Node) Tree() (vfs.FS, error) {
	if n.tree.tree == nil {
		return nil, fmt.Errorf("%s: a database alone holds no files", n.tree.describe())
	}
	return n.tree.tree, nil
}

// Files is Tree as an io/fs.FS, in which symbolic links resolve inside
// the tree only.
func (n *Node) Files() (fs.FS, error) {
	if n.tree.tree == nil {
		return nil, fmt.Errorf("%s: a database alone holds no files", n.tree.describe())
	}
	return n.tree.files, nil
}

// Describe names the filesystem Tree reads.
func (n *Node) Describe() string { return n.tree.describe() }

// Partition is the partition Tree reads; nil for other inputs.
func (n *Node) Partition() *image.Partition { return n.tree.part }

// Disks are the disk images among the inputs.
func (n *Node) Disks() []*image.Disk {
	var ds []*image.Disk
	for _, in := range n.inputs {
		if in.disk != nil {
			ds = append(ds, in.disk)
		}
	}
	return ds
}

// FormatBytes is ctrlift's one byte formatter: binary units with one
// decimal ("1.5 GiB"), bytes below 1 KiB ("512 B").
func FormatBytes(n int64) string { return units.Bytes(n) }
