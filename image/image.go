// Package image opens raw disk images read-only and finds their partitions:
// GPT (512- or 4096-byte logical sectors, with fallback to the backup
// table), MBR with logical partitions, or a bare filesystem without a
// table. Compressed images (zstd, gzip, xz, and GCE exports: a tar.gz
// holding disk.raw) are decompressed once into a sparse cache file.
//
// Each partition carries the filesystem found by its magic numbers and is
// handed out as an io.SectionReader of the disk.
package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/ctrlift/ctrlift/image/cache"
	"github.com/ctrlift/ctrlift/image/gpt"
)

// Layouts reported in Disk.Layout.
const (
	LayoutGPT  = "gpt"
	LayoutMBR  = "mbr"
	LayoutNone = "none" // a bare filesystem (or nothing known): one pseudo-partition 0
)

// Options control Open.
type Options struct {
	NoCache  bool      // decompress into a temporary file removed on Close instead of the cache
	CacheDir string    // default: os.UserCacheDir()/ctrlift
	Progress io.Writer // decompression progress; nil = silent
}

// Disk is an opened disk image and its partitions.
type Disk struct {
	Path        string      `json:"path"`               // as given to Open; "" for NewDisk
	RawPath     string      `json:"raw_path"`           // decompressed copy read instead of Path
	Format      string      `json:"format"`             // evidence format: raw, e01, qcow2, vmdk, vhd, vhdx
	Metadata    any         `json:"metadata,omitempty"` // the evidence format's own record (E01 case data and stored hashes, ...)
	Files       []string    `json:"files,omitempty"`    // every file read for the disk when more than the input (E01 segments, VMDK extents)
	Compression string      `json:"compression"`        // e.g. "zstd", "gzip+tar"; "" for raw input
	Size        int64       `json:"size"`               // bytes of raw disk
	Layout      string      `json:"layout"`             // "gpt", "mbr" or "none"
	SectorSize  int         `json:"sector_size"`        // logical sector size of the table
	DiskGUID    string      `json:"disk_guid"`          // GPT disk GUID or MBR disk signature
	Warnings    []string    `json:"warnings"`
	Partitions  []Partition `json:"partitions"`
	// VolumeGroups are the LVM volume groups with a member on this disk
	// (listed on the first disk of several that holds one): see
	// AssembleVolumes.
	VolumeGroups []*VolumeGroup `json:"volume_groups"`

	r      io.ReaderAt
	closer io.Closer
	verify func(ctx context.Context, progress func(done, total int64)) (*VerifyResult, error)
}

// Partition is one partition of a Disk. Start and Size are in bytes and
// always lie within the disk (see Truncated).
type Partition struct {
	Number     int    `json:"number"`    // as the table numbers it; 0 for a disk without table
	Name       string `json:"name"`      // GPT partition name
	GUID       string `json:"guid"`      // GPT unique partition GUID; MBR: PARTUUID as blkid forms it
	TypeGUID   string `json:"type_guid"` // GPT partition type GUID, upper case
	MBRType    string `json:"mbr_type"`  // MBR type byte, e.g. "0x83"
	Type       string `json:"type"`      // readable type
	Start      int64  `json:"start"`
	Size       int64  `json:"size"`
	Attributes uint64 `json:"attributes"` // GPT attribute bits
	Bootable   bool   `json:"bootable"`   // MBR active flag
	Logical    bool   `json:"logical"`    // MBR logical partition
	Truncated  bool   `json:"truncated"`  // the table places (part of) it beyond the end of the image
	FS         FSInfo `json:"fs"`
	// VolumeGroup is set on a logical volume: the group it belongs to
	// (its Name is VG/LV, its Start 0, its GUID the LV's UUID).
	VolumeGroup string `json:"volume_group"`
	// Error says why a volume cannot be read: a refused or incomplete
	// logical volume, a damaged physical volume label.
	Error string `json:"error"`

	r   io.ReaderAt
	err error // why the volume cannot be read (Error's source)
}

// FSInfo is what the filesystem's own superblock says.
type FSInfo struct {
	Type  string `json:"type"` // ext2, ext3, ext4, xfs, vfat, squashfs, btrfs, swap, crypto_LUKS, BitLocker, ..., unknown
	Label string `json:"label"`
	UUID  string `json:"uuid"`
}

// Reader returns a reader of the partition's bytes.
func (p *Partition) Reader() *io.SectionReader {
	if p.r == nil {
		return io.NewSectionReader(strings.NewReader(""), 0, 0)
	}
	return io.NewSectionReader(p.r, p.Start, p.Size)
}

// Open opens the disk image at path read-only. Compressed images are
// recognised by their magic bytes (not their name) and decompressed once
// into a sparse file in the cache directory, never next to the input.
func Open(path string, opt Options) (*Disk, error) {
	f, err := os.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	size, err := inputSize(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("image: %s: %w", path, err)
	}
	head := make([]byte, cache.SniffLen)
	n, err := f.ReadAt(head, 0)
	if err != nil && err != io.EOF {
		f.Close()
		return nil, fmt.Errorf("image: %s: %w", path, err)
	}
	if d, ok, err := openContainer(path, f, size, head[:n]); ok {
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("image: %s: %w", path, err)
		}
		d.Path = path
		return d, nil
	}
	format := cache.Sniff(head[:n])
	var warnings []string
	if format == cache.None {
		if ext := compressedExt(path); ext != "" {
			warnings = append(warnings, fmt.Sprintf("name ends in %s but the content is not compressed; read as a raw image", ext))
		}
		d, err := NewDisk(f, size)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("image: %s: %w", path, err)
		}
		d.Path, d.closer = path, f
		if len(warnings) > 0 {
			d.Warnings = append(warnings, d.Warnings...)
		}
		return d, nil
	}
	res, err := cache.Decompress(f, path, cache.Options{Dir: opt.CacheDir, NoCache: opt.NoCache, Progress: opt.Progress})
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("image: %s: %w", path, err)
	}
	d, err := NewDisk(res.File, res.Size)
	if err != nil {
		res.File.Close()
		return nil, fmt.Errorf("image: %s (decompressed %s): %w", path, res.Format, err)
	}
	d.Path, d.RawPath, d.Compression, d.closer = path, res.Path, res.Format, res.File
	if res.Warning != "" {
		d.Warnings = append([]string{res.Warning}, d.Warnings...)
	}
	return d, nil
}

func inputSize(f *os.File) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	switch {
	case fi.IsDir():
		return 0, errors.New("is a directory")
	case fi.Mode().IsRegular():
		return fi.Size(), nil
	}
	// Block devices report size 0 in stat; seeking to the end works.
	return f.Seek(0, io.SeekEnd)
}

func compressedExt(path string) string {
	for _, ext := range []string{".zst", ".gz", ".tgz", ".xz", ".tar"} {
		if strings.HasSuffix(strings.ToLower(path), ext) {
			return ext
		}
	}
	return ""
}

// Close releases the image file. A decompressed temporary copy made with
// NoCache is gone once it is closed.
func (d *Disk) Close() error {
	if d.closer == nil {
		return nil
	}
	err := d.closer.Close()
	d.closer = nil
	return err
}

// NewDisk reads the partition layout of the raw disk r of the given size.
func NewDisk(r io.ReaderAt, size int64) (*Disk, error) {
	if size <= 0 {
		return nil, fmt.Errorf("empty image (%d bytes)", size)
	}
	d := &Disk{Size: size, Format: FormatRaw, r: r, Warnings: []string{}, Partitions: []Partition{}, VolumeGroups: []*VolumeGroup{}}

	t, err := gpt.Read(r, size)
	switch {
	case err == nil:
		d.fromGPT(t)
	case !errors.Is(err, gpt.ErrNotGPT):
		return nil, err
	default:
		if err := d.fromMBROrBare(); err != nil {
			return nil, err
		}
	}
	for i := range d.Partitions {
		p := &d.Partitions[i]
		p.r = r
		if p.Size == 0 {
			p.FS = FSInfo{Type: FSUnknown}
			continue
		}
		fi, err := detectFS(p.Reader(), p.Size)
		if err != nil {
			d.warnf("partition %d: %v", p.Number, err)
		}
		p.FS = fi
	}
	if d.Layout == LayoutNone && d.Partitions[0].FS.Type == FSUnknown {
		d.warnf("no partition table and no known filesystem found")
	}
	AssembleVolumes([]*Disk{d})
	return d, nil
}

func (d *Disk) warnf(format string, args ...any) {
	d.Warnings = append(d.Warnings, fmt.Sprintf(format, args...))
}

func (d *Disk) fromGPT(t *gpt.Table) {
	d.Layout, d.SectorSize, d.DiskGUID = LayoutGPT, t.SectorSize, t.Header.DiskGUID
	d.Warnings = append(d.Warnings, t.Warnings...)
	for _, gp := range t.Partitions {
		p := Partition{
			Number:     gp.Number,
			Name:       gp.Name,
			GUID:       gp.GUID,
			TypeGUID:   gp.TypeGUID,
			Type:       gpt.TypeName(gp.TypeGUID),
			Attributes: gp.Attributes,
		}
		var sectors uint64
		if gp.LastLBA >= gp.FirstLBA {
			sectors = gp.LastLBA - gp.FirstLBA + 1
		}
		d.place(&p, gp.FirstLBA, sectors, t.SectorSize)
		d.Partitions = append(d.Partitions, p)
	}
}

// place sets p.Start and p.Size from a table's LBAs, clamping to the
// image: a truncated image still yields the data it has, with a warning.
func (d *Disk) place(p *Partition, first, sectors uint64, ss int) {
	disk := uint64(d.Size)
	if first > math.MaxInt64/uint64(ss) || first*uint64(ss) >= disk {
		d.warnf("partition %d starts at LBA %d, beyond the end of the image (%d bytes): no data", p.Number, first, d.Size)
		p.Start, p.Size, p.Truncated = d.Size, 0, sectors > 0
		return
	}
	p.Start = int64(first) * int64(ss)
	avail := (disk - uint64(p.Start)) / uint64(ss)
	if sectors > avail {
		d.warnf("partition %d: the table gives %d sectors but the image holds only %d of them: clamped (truncated image?)", p.Number, sectors, avail)
		p.Size, p.Truncated = d.Size-p.Start, true
		return
	}
	p.Size = int64(sectors) * int64(ss)
}

func (d *Disk) fromMBROrBare() error {
	bare := Partition{Number: 0, Type: "whole disk", Start: 0, Size: d.Size, r: d.r}
	fi, _ := detectFS(bare.Reader(), bare.Size)
	if fi.Type == FSUnknown {
		if entries, id, warnings, ok := readMBR(d.r, d.Size); ok {
			for _, e := range entries {
				if e.typ == 0xEE {
					return errors.New("protective MBR (type 0xee) found but no GPT header at LBA 1 or at the last LBA for 512- or 4096-byte sectors")
				}
			}
			d.Layout, d.SectorSize, d.DiskGUID = LayoutMBR, mbrSectorSize, id
			d.Warnings = append(d.Warnings, warnings...)
			for _, e := range entries {
				p := Partition{
					Number:   e.number,
					MBRType:  fmt.Sprintf("0x%02x", e.typ),
					Type:     mbrTypeName(e.typ),
					Bootable: e.bootable,
					Logical:  e.logical,
				}
				if id != "" {
					p.GUID = fmt.Sprintf("%s-%02x", id, e.number)
				}
				d.place(&p, e.start, e.sectors, mbrSectorSize)
				d.Partitions = append(d.Partitions, p)
			}
			sort.SliceStable(d.Partitions, func(i, j int) bool { return d.Partitions[i].Number < d.Partitions[j].Number })
			return nil
		}
	}
	d.Layout, d.SectorSize = LayoutNone, 512
	d.Partitions = append(d.Partitions, bare)
	return nil
}

// StatePartitions name the partitions node images keep their runtime
// state on, most specific first: COS's STATE, Talos's EPHEMERAL (mounted
// at /var), Bottlerocket's BOTTLEROCKET-DATA (mounted at /local, holding
// /var).
var StatePartitions = []string{"STATE", "EPHEMERAL", "BOTTLEROCKET-DATA"}

// Readable reports whether ctrlift reads filesystems of type t.
func Readable(t string) bool { return IsExt(t) || t == FSXFS }

// Select picks a partition or a logical volume (see VolumeGroups):
//   - "": the first of StatePartitions found as a partition or LV name,
//     then as a filesystem label; else the largest ext2/3/4 or XFS
//     filesystem;
//   - a number: the partition with that number;
//   - otherwise a GPT partition name or VG/LV, then a filesystem label
//     (exact, then case-insensitive).
//
// The error lists the partitions when nothing (or more than one) matches,
// and says why when the one selected cannot be read: encrypted (naming the
// scheme and what to do), a refused or incomplete logical volume.
func (d *Disk) Select(spec string) (*Partition, error) {
	p, err := d.selectPartition(spec)
	if err != nil {
		return nil, err
	}
	if err := p.unreadable(d.name()); err != nil {
		return nil, err
	}
	return p, nil
}

func (d *Disk) selectPartition(spec string) (*Partition, error) {
	if spec == "" {
		for _, name := range StatePartitions {
			for _, match := range []func(*Partition) bool{
				func(p *Partition) bool {
					return p.Name == name || p.VolumeGroup != "" && p.Name == p.VolumeGroup+"/"+name
				},
				func(p *Partition) bool { return p.FS.Label == name },
			} {
				// A physical volume or a volume that cannot be read is no
				// filesystem, whatever its name.
				usable := func(p *Partition) bool { return p.err == nil && p.FS.Type != FSLVM2 && match(p) }
				if p, err := d.pick(name, usable); p != nil || err != nil {
					return p, err
				}
			}
		}
		var best *Partition
		for _, p := range d.candidates() {
			if Readable(p.FS.Type) && p.err == nil && (best == nil || p.Size > best.Size) {
				best = p
			}
		}
		if best == nil {
			for _, p := range d.candidates() {
				var enc *EncryptedError
				if err := p.unreadable(d.name()); errors.As(err, &enc) {
					return nil, err
				}
			}
			return nil, fmt.Errorf("image: %s: no partition named or labelled %s and no ext2/3/4 or XFS filesystem; select one of: %s", d.name(), strings.Join(StatePartitions, ", "), d.describe())
		}
		return best, nil
	}
	if n, err := strconv.Atoi(spec); err == nil {
		for i := range d.Partitions {
			if d.Partitions[i].Number == n {
				return &d.Partitions[i], nil
			}
		}
		return nil, fmt.Errorf("image: %s: no partition number %d; partitions: %s", d.name(), n, d.describe())
	}
	for _, match := range []func(*Partition) bool{
		func(p *Partition) bool { return p.Name == spec },
		func(p *Partition) bool { return p.FS.Label == spec },
		func(p *Partition) bool { return strings.EqualFold(p.Name, spec) },
		func(p *Partition) bool { return strings.EqualFold(p.FS.Label, spec) },
		func(p *Partition) bool { return p.VolumeGroup != "" && p.Name == p.VolumeGroup+"/"+spec }, // an LV by its name alone
	} {
		if p, err := d.pick(spec, match); p != nil || err != nil {
			return p, err
		}
	}
	return nil, fmt.Errorf("image: %s: no partition with number, name or label %q; partitions: %s", d.name(), spec, d.describe())
}

// pick returns the only partition or logical volume matching, nil if
// none, an error if several do.
func (d *Disk) pick(spec string, match func(*Partition) bool) (*Partition, error) {
	var found []*Partition
	for _, p := range d.candidates() {
		if match(p) {
			found = append(found, p)
		}
	}
	switch len(found) {
	case 0:
		return nil, nil
	case 1:
		return found[0], nil
	}
	nums := make([]string, len(found))
	for i, f := range found {
		nums[i] = strconv.Itoa(f.Number)
		if f.VolumeGroup != "" {
			nums[i] = f.Name
		}
	}
	return nil, fmt.Errorf("image: %s: %q matches partitions %s; select one by number", d.name(), spec, strings.Join(nums, ", "))
}

func (d *Disk) name() string {
	if d.Path == "" {
		return "disk"
	}
	return filepath.Base(d.Path)
}

// describe lists the partitions on one line for error messages.
func (d *Disk) describe() string {
	if len(d.Partitions) == 0 {
		return "(none)"
	}
	parts := make([]string, 0, len(d.Partitions))
	for _, p := range d.candidates() {
		s := strconv.Itoa(p.Number)
		if p.VolumeGroup != "" {
			s = "logical volume"
		}
		if p.Name != "" {
			s += " " + strconv.Quote(p.Name)
		}
		s += " " + p.FS.Type
		if p.FS.Label != "" {
			s += " label " + strconv.Quote(p.FS.Label)
		}
		if p.Error != "" {
			s += " (" + p.Error + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}
