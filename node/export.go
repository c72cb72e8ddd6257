package node

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ctrlift/ctrlift/containerd"
	"github.com/ctrlift/ctrlift/export"
	"github.com/ctrlift/ctrlift/export/oci"
	"github.com/ctrlift/ctrlift/image/cache"
	"github.com/ctrlift/ctrlift/internal/safeout"
	"github.com/ctrlift/ctrlift/layers"
	"github.com/ctrlift/ctrlift/vfs"
)

// Format is an export's output format.
type Format string

const (
	FormatTar Format = "tar" // a deterministic PAX tar of the tree
	FormatOCI Format = "oci" // the container as an image: an OCI layout and docker save archive (Compression is its layers')
)

func (f Format) String() string { return string(f) }

// ExportFormats are the formats Export writes.
var ExportFormats = []Format{FormatTar, FormatOCI}

// ExportOptions tune Export and ExportAll.
type ExportOptions struct {
	// Format of the output; "" is FormatTar.
	Format Format
	// Changes exports only what the container changed: its writable
	// layer as an OCI layer tar (whiteouts as .wh. files).
	Changes bool
	// NoChanges, with FormatOCI, leaves the container's writable layer
	// out: the image alone.
	NoChanges bool
	// Layers, e.g. whether missing layers are skipped.
	Layers LayerOptions
	// Compression of the output; "" is from the file name for a file
	// (.gz, .zst), none for a writer.
	Compression export.Compression
	// Manifest, when set, is the path of a JSON-lines manifest (one
	// export.Record per entry) written along.
	Manifest string
	// Force replaces existing outputs. The inputs and their decompressed
	// copies are never written, forced or not.
	Force bool
	// Progress, when set, is called as entries are written.
	Progress func(ExportProgress)
	// Volumes says which of a container's mounts are written at their
	// container paths (Export, ExportFile, ExportAll; never with Changes
	// or FormatOCI, whose layers are the image's and the container's own).
	Volumes VolumeMode
	// Hashes are the digests of each file in the manifest; nil is sha256.
	Hashes []export.Hash

	mounts []export.Mount // the included volumes of the container exported
}

// ExportProgress is the state of a running export.
type ExportProgress struct {
	Files, Bytes           int64 // written so far
	TotalFiles, TotalBytes int64 // of the whole tree
}

// Exported describes one written export.
type Exported struct {
	Entries     int64       `json:"entries"`
	Bytes       int64       `json:"file_bytes"` // file content bytes
	Size        int64       `json:"size"`       // bytes written (compressed when compressed)
	SHA256      string      `json:"sha256"`     // of the bytes written
	TarSHA256   string      `json:"tar_sha256"` // of the uncompressed tar stream
	Compression string      `json:"compression"`
	Skipped     []string    `json:"skipped,omitempty"` // entries a tar cannot hold (sockets)
	Warnings    []string    `json:"warnings,omitempty"`
	OCI         *oci.Result `json:"oci,omitempty"` // with FormatOCI: the image written
}

// UnknownFormatError is a format name that is not one of Allowed.
type UnknownFormatError struct {
	Format  string
	Allowed []string
}

func (e *UnknownFormatError) Error() string {
	return fmt.Sprintf("unknown output format %q (want %s)", e.Format, joinOr(e.Allowed))
}

func joinOr(ss []string) string {
	switch len(ss) {
	case 0:
		return "nothing"
	case 1:
		return ss[0]
	}
	s := ""
	for i, x := range ss {
		switch {
		case i == len(ss)-1:
			s += " or " + x
		case i > 0:
			s += ", " + x
		default:
			s = x
		}
	}
	return s
}

func (o ExportOptions) check() error {
	if o.Format == FormatOCI {
		return o.checkOCI()
	}
	if o.NoChanges {
		return errNoChanges
	}
	if o.Format == "" || o.Format == FormatTar {
		return nil
	}
	allowed := make([]string, len(ExportFormats))
	for i, f := range ExportFormats {
		allowed[i] = string(f)
	}
	return &UnknownFormatError{Format: string(o.Format), Allowed: allowed}
}

// Export writes the container ref names (see Resolve) to w: its
// filesystem merged from its layers the way overlayfs would, or with
// opt.Changes only its writable layer, as a deterministic tar.
func (n *Node) Export(ref string, w io.Writer, opt ExportOptions) (*Exported, error) {
	ls, err := n.refLayers(ref, &opt)
	if err != nil {
		return nil, err
	}
	return n.ExportLayers(ls, w, opt)
}

// ExportFile is Export into the file path, which is refused when it names
// an input (or its decompressed copy) and replaced only with opt.Force;
// nothing appears under its name unless the export succeeds.
func (n *Node) ExportFile(ref, path string, opt ExportOptions) (*Exported, error) {
	ls, err := n.refLayers(ref, &opt)
	if err != nil {
		return nil, err
	}
	return n.ExportLayersFile(ls, path, opt)
}

// refLayers resolves ref to its layers, and its volumes into opt.
func (n *Node) refLayers(ref string, opt *ExportOptions) ([]layers.Layer, error) {
	if err := opt.check(); err != nil {
		return nil, err
	}
	c, err := n.Resolve(ref)
	if err != nil {
		return nil, err
	}
	return n.containerLayers(c, opt)
}

// containerLayers is the layers of c, with its volumes set in opt.
func (n *Node) containerLayers(c *containerd.Container, opt *ExportOptions) ([]layers.Layer, error) {
	ls, err := n.Layers(c, opt.Layers)
	if err != nil {
		return nil, err
	}
	opt.mounts = nil
	if !opt.Changes && opt.Format != FormatOCI && opt.Volumes != VolumesNone {
		vs, err := n.Volumes(c, opt.Volumes)
		if err != nil {
			return nil, err
		}
		opt.mounts = n.mounts(vs)
	}
	return ls, nil
}

// ExportLayers is Export for layers given directly (SnapshotLayers,
// DirLayers, Layers), top first.
func (n *Node) ExportLayers(ls []layers.Layer, w io.Writer, opt ExportOptions) (*Exported, error) {
	g, err := n.guard(opt.Force)
	if err != nil {
		return nil, err
	}
	if f, ok := w.(*os.File); ok {
		if err := g.CheckStdout(f); err != nil {
			return nil, err
		}
	}
	if opt.Manifest != "" {
		if err := g.Claim(opt.Manifest); err != nil {
			return nil, err
		}
	}
	return n.write(g, ls, w, "", opt)
}

// ExportLayersFile is ExportFile for layers given directly.
func (n *Node) ExportLayersFile(ls []layers.Layer, path string, opt ExportOptions) (*Exported, error) {
	g, err := n.guard(opt.Force)
	if err != nil {
		return nil, err
	}
	if err := g.Claim(path); err != nil {
		return nil, err
	}
	if opt.Manifest != "" {
		if err := g.Claim(opt.Manifest); err != nil {
			return nil, err
		}
	}
	return n.write(g, ls, nil, path, opt)
}

// CheckOutputs refuses, before anything is read, outputs that name one
// of the inputs or the cache of decompressed inputs, and (without force)
// outputs that exist. dirs are output directories.
func CheckOutputs(inputs, files, dirs []string, force bool) error {
	g := safeout.New(force)
	if err := protectInputs(g, inputs); err != nil {
		return err
	}
	for _, f := range files {
		if err := g.Claim(f); err != nil {
			return err
		}
	}
	for _, d := range dirs {
		if err := checkDir(g, d); err != nil {
			return err
		}
	}
	return nil
}

// checkDir is ClaimDir without creating the directory.
func checkDir(g *safeout.Guard, d string) error {
	if _, err := os.Stat(d); errors.Is(err, fs.ErrNotExist) {
		return g.Claim(filepath.Join(d, "index.json"))
	}
	return g.ClaimDir(d)
}

func protectInputs(g *safeout.Guard, inputs []string) error {
	for _, in := range inputs {
		if err := g.Protect(in, "the input"); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if err := g.Protect(cache.DefaultDir(), "the cache of decompressed inputs"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// guard protects every input and the caches of decompressed copies.
func (n *Node) guard(force bool) (*safeout.Guard, error) {
	g := safeout.New(force)
	var paths []string
	for _, in := range n.inputs {
		paths = append(paths, in.path)
	}
	if err := protectInputs(g, paths); err != nil {
		return nil, err
	}
	for _, in := range n.inputs {
		for _, f := range in.disk.FilesRead() {
			if err := g.Protect(f, "a file of the input"); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, err
			}
		}
		if in.disk != nil && in.disk.RawPath != "" {
			// The whole cache: every file in it is some input's copy.
			if err := g.Protect(filepath.Dir(in.disk.RawPath), "the cache of decompressed inputs, holding the input's copy"); err != nil {
				return nil, err
			}
		}
	}
	return g, nil
}

// countWriter counts what goes through it.
type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// write merges ls and writes the tar (or, with Changes, the top layer's
// OCI diff) to w or to the claimed file path, and the claimed manifest.
func (n *Node) write(g *safeout.Guard, ls []layers.Layer, w io.Writer, path string, opt ExportOptions) (*Exported, error) {
	if err := opt.check(); err != nil {
		return nil, err
	}
	if opt.Format == FormatOCI {
		return n.writeOCI(g, ls, w, path, opt)
	}
	m, err := layers.New(ls, layers.Options{AllowMissing: opt.Layers.AllowMissing})
	if err != nil {
		return nil, err
	}
	res := &Exported{}
	comp := opt.Compression
	if comp == "" {
		comp = export.None
		if path != "" {
			comp = export.CompressionFor(path)
		}
	}
	var file, manifest *safeout.File
	if path != "" {
		if file, err = g.Create(path); err != nil {
			return nil, err
		}
		w = file
	}
	var size countWriter
	var compressed *export.DigestWriter // the compressed output, digested on its own core
	out := io.MultiWriter(w, &size)
	if comp != export.None {
		compressed = export.NewDigestWriter(w)
		out = compressed
	}
	fail := func(err error) (*Exported, error) {
		if compressed != nil {
			compressed.Abort()
		}
		if file != nil {
			file.Abort()
		}
		if manifest != nil {
			manifest.Abort()
		}
		return nil, err
	}
	cw, err := export.Compress(out, comp)
	if err != nil {
		return fail(err)
	}
	eo := export.Options{Hashes: opt.Hashes, Mounts: opt.mounts}
	if opt.Manifest != "" {
		if manifest, err = g.Create(opt.Manifest); err != nil {
			return fail(err)
		}
		eo.Manifest = manifest
	}
	if opt.Progress != nil {
		p := totals(m)
		eo.Progress = func(files, bytes int64) {
			p.Files, p.Bytes = files, bytes
			opt.Progress(p)
		}
	}
	var stats *export.Stats
	if _, native := n.parents[ls[0].Dir]; opt.Changes && native && len(ls) == 1 {
		stats, err = export.ChangeSet(cw, func(fn func(layers.Change) error) error {
			_, err := n.compareWithParent(ls, fn)
			return err
		}, eo)
	} else if opt.Changes {
		stats, err = export.Changes(cw, ls[0], layers.Options{}, eo)
	} else {
		stats, err = export.Tar(cw, m, eo)
	}
	if err != nil {
		return fail(err)
	}
	if err := cw.Close(); err != nil {
		return fail(err)
	}
	if compressed != nil {
		if err := compressed.Close(); err != nil {
			return fail(err)
		}
	}
	if manifest != nil {
		if err := manifest.Commit(); err != nil {
			return fail(err)
		}
	}
	if file != nil {
		if err := file.Commit(); err != nil {
			return fail(err)
		}
	}
	// The merge finds some problems (a metacopy file without data) only
	// as it reads the tree.
	res.Warnings = append(append([]string(nil), m.Warnings...), stats.Warnings...)
	for _, msg := range res.Warnings {
		n.warn(msg)
	}
	res.Entries, res.Bytes, res.Size = stats.Files, stats.Bytes, size.n
	res.SHA256, res.TarSHA256, res.Compression = stats.TarSHA256, stats.TarSHA256, string(comp)
	if compressed != nil { // else the file is the tar, digested by the export
		res.SHA256, res.Size = compressed.Sum(), compressed.Size()
	}
	res.Skipped = stats.Skipped
	return res, nil
}

// totals counts the tree's entries and file bytes: a metadata-only pass
// that reads no file data.
func totals(m *layers.Merged) ExportProgress {
	var p ExportProgress
	m.Walk(func(_ string, e *layers.Entry) error {
		p.TotalFiles++
		if e.IsRegular() {
			p.TotalBytes += e.Size
		}
		return nil
	})
	return p
}

// DiffOptions tune Diff.
type DiffOptions struct {
	Layers LayerOptions
	// Volumes: the included mounts' entries are listed as added, named
	// as their source (VolumesDisk by default; VolumesNone for the
	// writable layer alone).
	Volumes VolumeMode
	// Hashes are the digests of each file; nil is sha256.
	Hashes []export.Hash
}

// Diff streams what a container's writable layer added, modified and
// deleted relative to its image layers, one export.Record per changed
// path with Change set: the layer's changes in path order, then what its
// volumes hold. A file's digests are of the container's version; for
// deletions, of the version the image had. Symlinks are never followed.
func (n *Node) Diff(ref string, opt DiffOptions, fn func(export.Record) error) error {
	c, err := n.Resolve(ref)
	if err != nil {
		return err
	}
	return n.DiffContainer(c, opt, fn)
}

// DiffContainer is Diff for a container already resolved.
func (n *Node) DiffContainer(c *containerd.Container, opt DiffOptions, fn func(export.Record) error) error {
	ls, err := n.Layers(c, opt.Layers)
	if err != nil {
		return err
	}
	dg := export.NewDigester(opt.Hashes...)
	mounts := mountPoints(c)
	emit := func(ch layers.Change) error {
		in := ch.Entry.Inode
		r, err := export.NewRecord(ch.Path, in, ch.Entry.FS())
		if err != nil {
			return fmt.Errorf("%s: %w", ch.Path, err)
		}
		r.Change, r.Layer, r.ContentUnchecked = ch.Kind.String(), ch.Entry.LayerName, ch.ContentUnchecked
		r.MountPoint = ch.Kind == layers.Added && mounts[ch.Path] && isStub(ch.Entry.FS(), in)
		r.MetadataOnly = ch.MetadataOnly
		if ch.Entry.Metacopy {
			r.DataLayer, r.DataMissing = ch.Entry.DataLayerName, ch.Entry.DataMissing
		}
		if in.IsRegular() && !r.DataMissing {
			ds, omitted, err := dg.Digests(ch.Entry.FS(), in)
			if err != nil {
				return fmt.Errorf("%s: %w", ch.Path, err)
			}
			r.SHA256, r.MD5, r.SHA1, r.SHA256Omitted = ds.SHA256, ds.MD5, ds.SHA1, omitted
		}
		return fn(r)
	}
	if err := n.diffLayers(ls, opt, emit); err != nil {
		return err
	}
	if opt.Volumes == VolumesNone {
		return nil
	}
	vs, err := n.Volumes(c, opt.Volumes)
	if err != nil {
		return err
	}
	for _, m := range n.mounts(vs) {
		err := export.WalkMount(m, func(p string, in *vfs.Inode, fsys vfs.FS) error {
			return emit(layers.Change{Path: p, Kind: layers.Added, Entry: layers.NewEntry(in, fsys, m.Name)})
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// diffLayers streams the changes of the writable layer ls[0].
func (n *Node) diffLayers(ls []layers.Layer, opt DiffOptions, emit func(layers.Change) error) error {
	var err error
	if native, err := n.compareWithParent(ls, emit); native {
		return err
	}
	var lower *layers.Merged
	if len(ls) > 1 {
		if lower, err = layers.New(ls[1:], layers.Options{AllowMissing: opt.Layers.AllowMissing}); err != nil {
			return err
		}
	}
	changes, err := layers.Diff(ls[0], lower, layers.Options{})
	if err != nil {
		return err
	}
	for _, ch := range changes {
		if err := emit(ch); err != nil {
			return err
		}
	}
	return nil
}
