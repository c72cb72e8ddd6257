package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/ctrlift/ctrlift/image"
	"github.com/ctrlift/ctrlift/image/cache"
	"github.com/ctrlift/ctrlift/image/dirfs"
	"github.com/ctrlift/ctrlift/image/ext4"
	"github.com/ctrlift/ctrlift/image/tarfs"
	"github.com/ctrlift/ctrlift/internal/safeout"
	"github.com/ctrlift/ctrlift/vfs"
)

// sourceFlags holds the flags that name the evidence, shared by the
// commands that read a disk image: -i/--image, -p/--partition, --no-cache.
type sourceFlags struct {
	image     string
	partition string
	noCache   bool
	hashInput bool // --hash-input, on the commands that record provenance

	// Set while the command runs: the outputs' guard, which also protects
	// the decompressed copy; the disk and the partition that were read.
	guard *safeout.Guard
	disk  *image.Disk
	used  *image.Partition
}

// registerImage registers -i/--image and --no-cache as persistent flags
// (subcommands inherit them).
func (s *sourceFlags) registerImage(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringVarP(&s.image, "image", "i", "", "the evidence, opened read-only: a raw disk image (also .zst, .gz, .xz, or a GCE export .tar.gz holding disk.raw); a directory or a tar (.tar, .tgz, .tar.zst) of a node's root, /var or /var/lib/containerd; or a loose meta.db")
	f.BoolVar(&s.noCache, "no-cache", false, "decompress a compressed image into a temporary file removed on exit instead of the user cache directory")
}

// register registers -i/--image, -p/--partition and --no-cache as
// persistent flags.
func (s *sourceFlags) register(cmd *cobra.Command) {
	s.registerImage(cmd)
	cmd.PersistentFlags().StringVarP(&s.partition, "partition", "p", "", "partition: number, GPT name or filesystem label (default: the one named or labelled STATE, else the largest ext2/3/4)")
}

// openDisk opens the image read-only. Decompression progress goes to
// stderr only when stderr is a terminal.
func (s *sourceFlags) openDisk(cmd *cobra.Command) (*image.Disk, error) {
	if s.image == "" {
		return nil, errors.New("no image given: use -i IMAGE")
	}
	// Trees are not disks: say so at once instead of scanning a whole
	// archive for a disk.raw member.
	if fi, err := os.Stat(s.image); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("%s is a directory, not a disk image", s.image)
	}
	if isTar, first, _ := tarfs.Probe(s.image); isTar && strings.TrimPrefix(first, "./") != cache.DiskName {
		return nil, fmt.Errorf("%s is a tar of a directory tree (first member %q), not a disk image", s.image, first)
	}
	opt := image.Options{NoCache: s.noCache}
	if f, ok := cmd.ErrOrStderr().(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		opt.Progress = f
	}
	d, err := image.Open(s.image, opt)
	if err != nil {
		return nil, err
	}
	if s.guard != nil && d.RawPath != "" {
		// The whole cache: every file in it is some input's copy.
		if err := s.guard.Protect(filepath.Dir(d.RawPath), "the cache of decompressed inputs, holding the input's copy"); err != nil {
			d.Close()
			return nil, err
		}
	}
	s.disk = d
	return d, nil
}

// protect names the input as evidence to g and remembers g, so that the
// decompressed copy is protected as soon as it is known.
func (s *sourceFlags) protect(g *safeout.Guard) error {
	s.guard = g
	if s.image == "" {
		return nil
	}
	err := g.Protect(s.image, "the input image")
	if err != nil && !errors.Is(err, fs.ErrNotExist) { // if missing, opening it says so
		return err
	}
	if err := g.Protect(cache.DefaultDir(), "the cache of decompressed inputs"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// inputInfo is the provenance of what a command read.
type inputInfo struct {
	Path        string         `json:"path"` // as given
	Kind        string         `json:"kind"` // "disk image" or "directory"
	Size        int64          `json:"size"` // bytes of the file given
	SHA256      string         `json:"sha256,omitempty"`
	Compression string         `json:"compression,omitempty"`
	RawSize     int64          `json:"raw_size"` // bytes of the disk read
	Layout      string         `json:"layout"`
	DiskGUID    string         `json:"disk_guid,omitempty"`
	Partition   *partitionInfo `json:"partition,omitempty"`
}

type partitionInfo struct {
	Number int    `json:"number"`
	Name   string `json:"name,omitempty"`
	GUID   string `json:"guid,omitempty"`
	Start  int64  `json:"start"`
	Size   int64  `json:"size"`
	FS     string `json:"fs"`
	Label  string `json:"label,omitempty"`
	UUID   string `json:"uuid,omitempty"`
}

// describeInput says what was read: the file given, the disk and the
// partition used; with --hash-input, the file's sha256.
func (s *sourceFlags) describeInput() (inputInfo, error) {
	in := inputInfo{Path: s.image}
	fi, err := os.Stat(s.image)
	if err != nil {
		return in, err
	}
	in.Size, in.Kind = fi.Size(), "disk image"
	if fi.IsDir() {
		in.Size, in.Kind = 0, "directory"
		if s.hashInput {
			return in, fmt.Errorf("--hash-input: %s is a directory; hash its files with the manifest instead", s.image)
		}
		return in, nil
	}
	if d := s.disk; d != nil {
		in.Compression, in.RawSize, in.Layout, in.DiskGUID = d.Compression, d.Size, d.Layout, d.DiskGUID
		if fi.Mode()&fs.ModeDevice != 0 {
			in.Size = d.Size
		}
	}
	if p := s.used; p != nil {
		in.Partition = &partitionInfo{Number: p.Number, Name: p.Name, GUID: p.GUID, Start: p.Start, Size: p.Size, FS: p.FS.Type, Label: p.FS.Label, UUID: p.FS.UUID}
	}
	if s.hashInput {
		f, err := os.Open(s.image)
		if err != nil {
			return in, err
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return in, fmt.Errorf("hashing %s: %w", s.image, err)
		}
		in.SHA256 = hex.EncodeToString(h.Sum(nil))
	}
	return in, nil
}

// openedSource is the tree a command reads: the ext4 filesystem of the
// selected partition of a disk image, or a directory tree on the host.
type openedSource struct {
	Tree  vfs.FS // what the layer merge reads
	Files fs.FS  // the io/fs view, for the containerd state reader
	// FS is the ext4 filesystem of a disk image (nil for a directory).
	FS        *ext4.FS
	Disk      *image.Disk
	Partition *image.Partition
	// Dir is the host directory given as input (nil for a disk image).
	Dir *dirfs.FS
	// Loose is a meta.db given on its own: no layers to read (Tree nil).
	Loose *looseDB
	// Tar is a tar of a tree given as input (a /var/lib/docker or
	// /var/lib/containerd packed by an analyst or a test suite).
	Tar     *tarfs.FS
	tarPath string
}

// Close releases the image or directory.
func (o *openedSource) Close() {
	if o.FS != nil {
		o.FS.Close()
	}
	if o.Disk != nil {
		o.Disk.Close()
	}
	if o.Dir != nil {
		o.Dir.Close()
	}
	if o.Loose != nil {
		o.Loose.Close()
	}
	if o.Tar != nil {
		o.Tar.Close()
	}
}

// Describe names what was read, e.g. `partition 1 "STATE" (ext4, label
// "STATE", 1.0 GiB at byte 4456448000)` or `directory /mnt/node/var`.
func (o *openedSource) Describe() string {
	switch {
	case o.Dir != nil:
		return "directory " + o.Dir.Root()
	case o.Loose != nil:
		return "loose database " + o.Loose.f.Name()
	case o.Tar != nil:
		return fmt.Sprintf("tree archive %s (%s)", o.tarPath, o.Tar.Format())
	}
	return describePartition(o.Partition)
}

// checkOverlayMarkers refuses to merge overlay layers read from a host
// directory when the process cannot see trusted.* xattrs: opaque
// directories and xattr whiteouts would be silently lost.
func (o *openedSource) checkOverlayMarkers() error {
	if o.Tree == nil {
		return fmt.Errorf("%s: a database alone holds no layers; give the disk image or directory it came from", o.Describe())
	}
	if o.Dir != nil && !o.Dir.TrustedXattrsVisible() {
		return fmt.Errorf("directory %s: overlay layers keep their opaque and whiteout markers in trusted.overlay.* xattrs, which only root (CAP_SYS_ADMIN) can read; merging without them would be wrong: run as root, or read the disk image instead", o.Dir.Root())
	}
	return nil
}

// Others lists the other partitions, for messages suggesting -p.
func (o *openedSource) Others() string {
	if o.Disk == nil {
		return "none"
	}
	var parts []string
	for i := range o.Disk.Partitions {
		p := &o.Disk.Partitions[i]
		if p.Number != o.Partition.Number {
			parts = append(parts, describePartition(p))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "; ")
}

func describePartition(p *image.Partition) string {
	s := "partition " + strconv.Itoa(p.Number)
	if p.Name != "" {
		s += " " + strconv.Quote(p.Name)
	}
	s += " (" + p.FS.Type
	if p.FS.Label != "" {
		s += ", label " + strconv.Quote(p.FS.Label)
	}
	return s + fmt.Sprintf(", %s at byte %d)", partIEC(p.Size), p.Start)
}

// open opens the image, selects the partition (-p) and reads its ext4
// filesystem. Warnings of the disk and of the filesystem go to stderr.
func (s *sourceFlags) open(cmd *cobra.Command) (*openedSource, error) {
	if s.image != "" {
		if fi, err := os.Stat(s.image); err == nil && fi.IsDir() {
			if s.partition != "" {
				return nil, fmt.Errorf("%s is a directory: -p does not apply", s.image)
			}
			d, err := dirfs.Open(s.image)
			if err != nil {
				return nil, err
			}
			return &openedSource{Tree: d, Files: vfs.NewIOFS(d), Dir: d}, nil
		} else if err == nil && fi.Mode().IsRegular() {
			if f, err := os.OpenFile(s.image, os.O_RDONLY, 0); err == nil {
				if isBolt(f) {
					l, err := newLooseDB(f)
					if err != nil {
						f.Close()
						return nil, err
					}
					return &openedSource{Files: l, Loose: l}, nil
				}
				f.Close()
			}
			// A tar of a tree (also gzip, zstd or xz compressed); a GCE
			// image export, a tar whose member is disk.raw, stays a disk.
			if isTar, first, _ := tarfs.Probe(s.image); isTar && strings.TrimPrefix(first, "./") != cache.DiskName {
				if s.partition != "" {
					return nil, fmt.Errorf("%s is a tar of a directory tree: -p does not apply", s.image)
				}
				t, err := tarfs.OpenFile(s.image, "")
				if err != nil {
					return nil, err
				}
				for _, n := range t.Notes() {
					warn(cmd, "%s: %s", s.image, n)
				}
				return &openedSource{Tree: t, Files: t.IOFS(), Tar: t, tarPath: s.image}, nil
			}
		}
	}
	d, err := s.openDisk(cmd)
	if err != nil {
		return nil, err
	}
	for _, w := range d.Warnings {
		warn(cmd, "%s", w)
	}
	p, err := d.Select(s.partition)
	if err != nil {
		d.Close()
		return nil, err
	}
	if !image.IsExt(p.FS.Type) {
		d.Close()
		return nil, fmt.Errorf("%s is not an ext2/3/4 filesystem; use -p to pick another partition", describePartition(p))
	}
	fsys, err := ext4.NewReader(p.Reader(), p.Size)
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("%s: %w", describePartition(p), err)
	}
	for _, w := range fsys.Warnings() {
		warn(cmd, "%s", w)
	}
	s.used = p
	return &openedSource{Tree: fsys.Source(), Files: fsys, FS: fsys, Disk: d, Partition: p}, nil
}
