//go:build linux

package hostile

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"unicode/utf16"

	"github.com/ctrlift/ctrlift/containerd"
	"github.com/ctrlift/ctrlift/image"
	"github.com/ctrlift/ctrlift/image/ext4"
)

// Evidence formats of the bases built by BuildEvidence (Base.Format).
const (
	FormatE01      = "e01"       // ewfacquire: a split set of segment files
	FormatQCOW2    = "qcow2"     // qemu-img convert -c
	FormatVMDK     = "vmdk"      // qemu-img: streamOptimized, one file
	FormatVMDKDesc = "vmdk-desc" // qemu-img: twoGbMaxExtentSparse, a descriptor and its sparse extent
	FormatVHD      = "vhd"       // qemu-img: dynamic VHD
	FormatVHDX     = "vhdx"      // qemu-img: dynamic VHDX
)

// EscapeToken is the name the escape targets (Base.Outside) give their
// first GPT partition in place of STATE: if it ever shows in ctrlift's
// output, a file outside the evidence directory was read.
const EscapeToken = "ESCAPED-CTRLIFT-7QX"

// SetFile is one file of a multi-file base.
type SetFile struct {
	Name string // in the base's directory, and in each variant's
	Path string
	Size int64
	f    *os.File
}

// EvidenceSpec is an evidence base built from a raw disk by the real tools.
type EvidenceSpec struct {
	Name   string
	Format string
	Dir    string   // where the files are
	Files  []string // in Dir; the first is the one named by -i
	// Outside are the escape targets: name under the worker's outside
	// directory -> source file, in Dir.
	Outside map[string]string
	// Raw is the raw disk the base was made from: its structures tell
	// which guest bytes ctrlift reads (Base.Hot).
	Raw string
}

// evidenceTools are the tools each format is made with.
var evidenceTools = map[string]string{
	FormatE01: "ewfacquire", FormatQCOW2: "qemu-img", FormatVMDK: "qemu-img",
	FormatVMDKDesc: "qemu-img", FormatVHD: "qemu-img", FormatVHDX: "qemu-img",
}

// EvidenceFormats are the formats BuildEvidence makes, in base order.
var EvidenceFormats = []string{FormatE01, FormatQCOW2, FormatVMDK, FormatVMDKDesc, FormatVHD, FormatVHDX}

// EvidenceToolsMissing returns the tools a format needs that are not
// installed ("" when all are).
func EvidenceToolsMissing(format string) string {
	t := evidenceTools[format]
	if _, err := exec.LookPath(t); err != nil {
		return t
	}
	return ""
}

func runTool(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "LANG=C")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

// BuildEvidence converts the raw disk at raw into format in the empty
// directory dir with the real tools (qemu-img, ewfacquire): the example
// node's disk as an E01 split set of 1 MiB segments, a compressed QCOW2,
// a streamOptimized VMDK, a VMDK descriptor with one sparse extent, a
// dynamic VHD and a dynamic VHDX. Escape targets for the VMDK descriptor
// and the E01 set (files a variant points at outside its directory) are
// made too.
func BuildEvidence(raw, dir, format string) (*EvidenceSpec, error) {
	s := &EvidenceSpec{Name: "ev-" + format, Format: format, Dir: dir, Raw: raw}
	var err error
	switch format {
	case FormatE01:
		// Fast deflate; 1 MiB segments give a set of several files.
		err = runTool("ewfacquire", "-u", "-q", "-t", filepath.Join(dir, "node"), "-c", "deflate:fast", "-S", "1MiB", "-d", "sha1", raw)
		if err == nil {
			s.Files, err = filepath.Glob(filepath.Join(dir, "node.E*"))
			sort.Strings(s.Files)
			for i := range s.Files {
				s.Files[i] = filepath.Base(s.Files[i])
			}
			if err == nil && len(s.Files) < 3 {
				err = fmt.Errorf("ewfacquire wrote %d segments, want several", len(s.Files))
			}
			// The escape target of a segment replaced by a symlink: an
			// identical copy outside the directory.
			s.Outside = map[string]string{}
			for _, f := range s.Files {
				s.Outside[filepath.Join("e01", f)] = f
			}
		}
	case FormatQCOW2:
		err = runTool("qemu-img", "convert", "-c", "-O", "qcow2", raw, filepath.Join(dir, "node.qcow2"))
		s.Files = []string{"node.qcow2"}
	case FormatVMDK:
		err = runTool("qemu-img", "convert", "-O", "vmdk", "-o", "subformat=streamOptimized", raw, filepath.Join(dir, "node-stream.vmdk"))
		s.Files = []string{"node-stream.vmdk"}
		if err == nil {
			s.Outside, err = escapeTargets(raw, dir)
		}
	case FormatVMDKDesc:
		err = runTool("qemu-img", "convert", "-O", "vmdk", "-o", "subformat=twoGbMaxExtentSparse", raw, filepath.Join(dir, "node.vmdk"))
		s.Files = []string{"node.vmdk", "node-s001.vmdk"}
		if err == nil {
			s.Outside, err = escapeTargets(raw, dir)
		}
	case FormatVHD:
		err = runTool("qemu-img", "convert", "-O", "vpc", "-o", "subformat=dynamic,force_size=on", raw, filepath.Join(dir, "node.vhd"))
		s.Files = []string{"node.vhd"}
	case FormatVHDX:
		err = runTool("qemu-img", "convert", "-O", "vhdx", "-o", "subformat=dynamic", raw, filepath.Join(dir, "node.vhdx"))
		s.Files = []string{"node.vhdx"}
	default:
		err = fmt.Errorf("unknown evidence format %q", format)
	}
	if err != nil {
		return nil, err
	}
	for _, f := range s.Files {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// escapeTargets makes, in dir/outside, the files a VMDK variant names
// outside its directory: the raw disk with its first GPT partition named
// EscapeToken (a FLAT extent) and the same as a monolithicSparse VMDK (a
// SPARSE extent). Read in place of the real extent, they give the same
// containers, and `partitions` prints the token.
func escapeTargets(raw, dir string) (map[string]string, error) {
	out := filepath.Join(dir, "outside")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	flat := filepath.Join(out, "escape-flat.raw")
	src, err := os.Open(raw)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return nil, err
	}
	if err := CopySparse(flat, src, 0, st.Size()); err != nil {
		return nil, err
	}
	if err := renameFirstPartition(flat, EscapeToken); err != nil {
		return nil, err
	}
	sparse := filepath.Join(out, "escape-sparse.vmdk")
	if err := runTool("qemu-img", "convert", "-O", "vmdk", "-o", "subformat=monolithicSparse", flat, sparse); err != nil {
		return nil, err
	}
	return map[string]string{"escape-flat.raw": "outside/escape-flat.raw", "escape-sparse.vmdk": "outside/escape-sparse.vmdk"}, nil
}

// renameFirstPartition renames partition 1 of the GPT disk at p in both
// copies of the table, CRCs recomputed.
func renameFirstPartition(p, name string) error {
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	g := mapGPT(f, st.Size())
	if g == nil || !g.HaveBackup {
		return errors.New("no GPT with a backup")
	}
	b := &Base{Name: "escape", Size: st.Size(), f: f, GPT: g}
	v := NewVariant(0, 0, "escape", b)
	u := utf16.Encode([]rune(name))
	label := make([]byte, 72)
	for i, c := range u {
		if i < 36 {
			le.PutUint16(label[2*i:], c)
		}
	}
	for _, c := range []GPTCopy{g.Primary, g.Backup} {
		v.put(c.EntriesOff+56, label)
		gptFixCRCs(v, c)
	}
	for _, pt := range v.Patches {
		if _, err := f.WriteAt(pt.Data, pt.Off); err != nil {
			return err
		}
	}
	return nil
}

// OpenEvidenceBase opens the evidence base s and locates the structures of
// its format.
func OpenEvidenceBase(s *EvidenceSpec) (*Base, error) {
	b := &Base{Name: s.Name, Kind: KindContainerd, Format: s.Format, Outside: map[string]string{}}
	for rel, src := range s.Outside {
		b.Outside[rel] = filepath.Join(s.Dir, src)
	}
	for _, n := range s.Files {
		p := filepath.Join(s.Dir, n)
		f, err := os.Open(p)
		if err != nil {
			b.Close()
			return nil, err
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			b.Close()
			return nil, err
		}
		b.Set = append(b.Set, &SetFile{Name: n, Path: p, Size: st.Size(), f: f})
	}
	b.f, b.Path, b.Size = b.Set[0].f, b.Set[0].Path, b.Set[0].Size
	b.Hot = hotOffsets(s.Raw)
	if err := b.locateEvidence(); err != nil {
		b.Close()
		return nil, fmt.Errorf("%s: %w", s.Name, err)
	}
	return b, nil
}

func (b *Base) locateEvidence() error {
	var err error
	switch b.Format {
	case FormatE01:
		b.EWF, err = mapEWF(b)
	case FormatQCOW2:
		b.QCOW2, err = mapQCOW2(b.Set[0].f, b.Set[0].Size)
	case FormatVMDK:
		b.VMDK, err = mapVMDKSparse(b, 0)
		if err == nil {
			b.VMDKDesc = &VMDKDescMap{Embedded: true, Text: b.VMDK.Desc, Off: b.VMDK.DescOff, Room: b.VMDK.DescRoom}
		}
	case FormatVMDKDesc:
		b.VMDK, err = mapVMDKSparse(b, 1)
		if err == nil {
			b.VMDKDesc, err = mapVMDKDesc(b)
		}
	case FormatVHD:
		b.VHD, err = mapVHD(b.Set[0].f, b.Set[0].Size)
	case FormatVHDX:
		b.VHDX, err = mapVHDX(b.Set[0].f, b.Set[0].Size)
	default:
		err = fmt.Errorf("unknown format %q", b.Format)
	}
	if err != nil {
		return err
	}
	// The containers, through the readers under test.
	d, err := image.Open(b.Path, image.Options{NoCache: true})
	if err != nil {
		return err
	}
	defer d.Close()
	p, err := d.Select("")
	if err != nil {
		return err
	}
	fsys, err := ext4.NewReader(p.Reader(), p.Size)
	if err != nil {
		return err
	}
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
	if len(b.Containers) == 0 {
		return errors.New("no containers found")
	}
	return nil
}

var (
	hotMu    sync.Mutex
	hotByRaw = map[string][]int64{}
)

// hotOffsets returns guest disk offsets that ctrlift reads on the raw
// disk raw whatever the command: the partition table, the STATE
// filesystem's superblock and group descriptors, and the inode records
// and data blocks of the directories down to containerd, its databases,
// the CRI files and the layer directories.
// A mutation aimed at the block map entry or the compressed block of
// such an offset is sure to be read.
func hotOffsets(raw string) []int64 {
	hotMu.Lock()
	defer hotMu.Unlock()
	if h, ok := hotByRaw[raw]; ok {
		return h
	}
	b, err := OpenBase("hot", KindContainerd, raw)
	if err != nil {
		hotByRaw[raw] = nil
		return nil
	}
	defer b.Close()
	offs := []int64{0, 512, 1024, b.FS.Off + sbOff}
	offs = append(offs, b.FS.GDTBlocks...)
	for _, in := range b.Inodes {
		switch in.Role {
		case "path", "metadb", "snapdb", "cri-file", "layer-dir", "layer-parent":
			// What every list, info, diff and export reads.
		default:
			continue
		}
		offs = append(offs, in.Off)
		blocks := b.FS.DataBlocks(in)
		for i, o := range blocks {
			if i < 64 {
				offs = append(offs, o)
			}
		}
	}
	sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
	offs = slices.Compact(offs)
	hotByRaw[raw] = offs
	return offs
}

// hot picks, three times in four, a guest offset that ctrlift reads.
func (v *Variant) hot() (int64, bool) {
	if len(v.Base.Hot) > 0 && v.R.IntN(4) != 0 {
		return pick(v.R, v.Base.Hot), true
	}
	return 0, false
}

// fileSize is the size of file f of the base.
func (b *Base) fileSize(f int) int64 {
	if b.Set == nil {
		return b.Size
	}
	return b.Set[f].Size
}

// file is file f of the base.
func (b *Base) file(f int) *os.File {
	if b.Set == nil {
		return b.f
	}
	return b.Set[f].f
}

// readIn reads the pristine file f.
func (b *Base) readIn(f int, p []byte, off int64) (int, error) { return b.file(f).ReadAt(p, off) }

// fileLabel names file f in variant descriptions of a multi-file base.
func (b *Base) fileLabel(f int) string {
	if len(b.Set) < 2 {
		return ""
	}
	return " of " + b.Set[f].Name
}

func (b *Base) closeSet() {
	for _, s := range b.Set {
		if s.f != nil {
			s.f.Close()
		}
	}
}

// WriteDir writes a multi-file variant into the new directory dir and
// returns the path of the file named by -i. outside replaces OutsideDir in
// the file operations ("" for dir/../../outside).
func (v *Variant) WriteDir(dir, outside string) (string, error) {
	b := v.Base
	if outside == "" {
		outside = filepath.Join(dir, "..", "..", "outside")
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", err
	}
	for i, s := range b.Set {
		if err := v.writeOne(i, filepath.Join(dir, s.Name)); err != nil {
			return "", err
		}
	}
	for _, op := range v.Ops {
		if err := applyOp(dir, outside, op); err != nil {
			return "", fmt.Errorf("%s %s: %w", op.Kind, op.Name, err)
		}
	}
	return filepath.Join(dir, b.Set[0].Name), nil
}

func applyOp(dir, outside string, op FileOp) error {
	p := filepath.Join(dir, op.Name)
	if op.Kind != "replace" {
		if err := os.RemoveAll(p); err != nil {
			return err
		}
	}
	switch op.Kind {
	case "link":
		return os.Symlink(strings.ReplaceAll(op.Link, OutsideDir, outside), p)
	case "fifo":
		return syscall.Mkfifo(p, 0o644)
	case "dir":
		return os.Mkdir(p, 0o755)
	case "replace":
		return os.WriteFile(p, bytes.ReplaceAll(op.Data, []byte(OutsideDir), []byte(outside)), 0o644)
	case "remove":
		return nil
	}
	return fmt.Errorf("unknown file operation %q", op.Kind)
}

// op records a file operation of a multi-file variant.
func (v *Variant) op(o FileOp) {
	v.Ops = append(v.Ops, o)
	what := o.Kind
	switch o.Kind {
	case "link":
		what = fmt.Sprintf("a symlink to %q", o.Link)
	case "replace":
		what = fmt.Sprintf("%d bytes", len(o.Data))
	case "fifo":
		what = "a FIFO"
	case "dir":
		what = "a directory"
	case "remove":
		what = "removed"
	}
	if o.Reason != "" {
		what += " (" + o.Reason + ")"
	}
	v.say("%s: %s", o.Name, what)
}

// copyFileSparse copies the file src to dst (sparse) with mode 0644.
func copyFileSparse(src, dst string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := CopySparse(dst, f, 0, st.Size()); err != nil {
		return err
	}
	return os.Chmod(dst, 0o644)
}
