package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/ctrlift/ctrlift/containerd"
	"github.com/ctrlift/ctrlift/export"
	"github.com/ctrlift/ctrlift/internal/safeout"
	"github.com/ctrlift/ctrlift/layers"
)

type exportFlags struct {
	output        string
	outDir        string
	compress      string
	manifest      string
	changes       bool
	all           bool
	allContainers bool
	snapshot      string
	snapshotter   string
	layerDirs     string
	allowMissing  bool
	quiet         bool // -q, the root's flag
	force         bool
	supportFile   string
}

func newExportCmd() *cobra.Command {
	var src sourceFlags
	var cf ctrdFlags
	var ef exportFlags
	cmd := &cobra.Command{
		Use:   "export [REF]",
		Short: "Write a container's merged filesystem (or only its changes) as a tar, without mounting",
		Long: `Write a container's filesystem, merged from its snapshot layers the way
overlayfs would, as a deterministic PAX tar (numeric owners, nanosecond
times, xattrs, hardlinks, devices). Files with 1 MiB or more of holes are
GNU sparse entries, as tar --sparse writes them. The same image always
gives a byte-identical tar; its sha256 is printed on stderr.

REF is as for "info container": an id, a unique id prefix,
containerd://<id>, POD/NAME or K8SNS/POD/NAME.

  ctrlift export -i node.raw prod/web-1/web -o web.tar.zst
  ctrlift export -i node.raw REF --changes -o diff.tar   # OCI layer of what the container changed
  ctrlift export -i node.raw --all -d out/              # every workload container, plus index.json
  ctrlift export -i node.raw --snapshot sha256:... -o rootfs.tar
  ctrlift export -i node.raw --layer-dirs DIR1:DIR2 -o x.tar   # explicit layer directories, top first

Symlinks are data: nothing is ever resolved through one, so a link in the
image can never reach the analyst's own files.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runExport(cmd, args, &src, &cf, &ef)
		},
	}
	src.register(cmd)
	fl := cmd.Flags()
	fl.BoolVar(&src.hashInput, "hash-input", false, "with --all, record the input file's sha256 in index.json (reads the whole input once more)")
	fl.StringVar(&cf.root, "containerd-root", "", "containerd root directory on the partition (default: var/lib/containerd and other known places)")
	fl.StringVarP(&cf.namespace, "namespace", "n", "", "containerd namespace (default: all)")
	fl.StringVarP(&ef.output, "output", "o", "", "output file, or - for stdout; compression follows .gz/.zst unless --compress is given")
	fl.StringVarP(&ef.outDir, "dir", "d", "", "output directory for --all")
	fl.StringVar(&ef.compress, "compress", "", "gzip, zstd or none (default: from the file name; none for stdout; for --all: none)")
	fl.StringVar(&ef.manifest, "manifest", "", "also write a JSON-lines manifest (path, type, mode, uid, gid, size, sha256 or sha256_omitted, target, mtime_ns, atime_ns, ctime_ns, crtime_ns, inode, rdev, xattrs_b64, sparse, layer)")
	fl.BoolVar(&ef.changes, "changes", false, "export only what the container changed: its writable layer as an OCI layer tar (.wh. whiteouts)")
	fl.BoolVar(&ef.all, "all", false, "export into --dir every container that list containers shows (every namespace; no sandboxes or support containers); the others are named in index.json")
	fl.BoolVar(&ef.allContainers, "all-containers", false, "with --all, include sandboxes and support containers (as list containers --all)")
	fl.StringVar(&ef.snapshot, "snapshot", "", "export a snapshot chain by snapshot key (e.g. an image's rootfs chain id) instead of a container")
	fl.StringVar(&ef.snapshotter, "snapshotter", "", "snapshotter of --snapshot (default: the one that has the key)")
	fl.StringVar(&ef.layerDirs, "layer-dirs", "", "colon-separated layer directories on the partition, top first (no containerd database needed)")
	fl.BoolVar(&ef.allowMissing, "allow-missing-layers", false, "skip layers whose content is not on disk (e.g. GKE image streaming) instead of failing")
	fl.BoolVar(&ef.force, "force", false, "replace existing output files and write into a non-empty --dir (the input is never written)")
	fl.StringVar(&ef.supportFile, "support-containers", "", "with --all, the support container list (container-explorer supportcontainer.yaml format) instead of the built-in one, as for list containers")
	return cmd
}

func runExport(cmd *cobra.Command, args []string, src *sourceFlags, cf *ctrdFlags, ef *exportFlags) error {
	ef.quiet = quiet(cmd)
	modes := 0
	for _, on := range []bool{len(args) == 1, ef.all, ef.snapshot != "", ef.layerDirs != ""} {
		if on {
			modes++
		}
	}
	if modes != 1 {
		return errors.New("say what to export: one of REF, --all, --snapshot KEY or --layer-dirs DIRS")
	}
	if ef.all {
		if ef.outDir == "" {
			return errors.New("--all needs --dir OUTDIR")
		}
		if ef.output != "" || ef.manifest != "" {
			return errors.New("--all writes a tar and a manifest per container into --dir; -o and --manifest do not apply")
		}
	} else if ef.output == "" {
		return errors.New("no output: use -o FILE (or -o - for stdout)")
	}
	// Every output is checked against the evidence before the image is
	// read; the decompressed copy is added when the image is opened.
	g := safeout.New(ef.force)
	if err := src.protect(g); err != nil {
		return err
	}
	if ef.all {
		if err := g.ClaimDir(ef.outDir); err != nil {
			return err
		}
	} else {
		if err := g.Claim(ef.output); err != nil {
			return err
		}
		if ef.manifest != "" {
			if err := g.Claim(ef.manifest); err != nil {
				return err
			}
		}
	}
	if ef.layerDirs != "" {
		o, err := src.open(cmd)
		if err != nil {
			return err
		}
		defer o.Close()
		if err := o.checkOverlayMarkers(); err != nil {
			return err
		}
		var ls []layers.Layer
		for i, d := range strings.Split(ef.layerDirs, ":") {
			ls = append(ls, layers.Layer{FS: o.Tree, Dir: cleanArg(d), Name: fmt.Sprint(i)})
		}
		_, err = exportLayers(cmd, g, ls, ef.output, ef)
		return err
	}
	st, fsys, done, err := loadStateFS(cmd, src, cf)
	if err != nil {
		return err
	}
	defer done()
	switch {
	case ef.snapshot != "":
		chain, err := snapshotChain(st, cf.namespace, ef.snapshotter, ef.snapshot)
		if err != nil {
			return err
		}
		ls, err := toLayers(fsys, chain, ef.allowMissing)
		if err != nil {
			return err
		}
		_, err = exportLayers(cmd, g, ls, ef.output, ef)
		return err
	case ef.all:
		return exportAll(cmd, g, src, st, fsys, ef, cf.namespace)
	}
	c, err := st.ResolveIn(cf.namespace, args[0])
	if err != nil {
		return err
	}
	if !ef.quiet {
		fmt.Fprintf(cmd.ErrOrStderr(), "container %s\n", printable(c.Describe()))
	}
	if c.LayersError != "" && len(c.Layers) == 0 {
		return fmt.Errorf("container %s: snapshot chain: %s", c.ID, c.LayersError)
	}
	ls, err := toLayers(fsys, c.Layers, ef.allowMissing)
	if err != nil {
		return fmt.Errorf("container %s: %w", c.ID, err)
	}
	_, err = exportLayers(cmd, g, ls, ef.output, ef)
	return err
}

// snapshotChain finds key among the snapshots (optionally of one
// namespace and snapshotter) and returns its chain.
func snapshotChain(st *containerd.State, ns, snapshotter, key string) ([]containerd.Layer, error) {
	var found []containerd.Snapshot
	for _, s := range st.Snapshots {
		if s.Key == key && (ns == "" || s.Namespace == ns) && (snapshotter == "" || s.Snapshotter == snapshotter) {
			found = append(found, s)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("no snapshot with key %q (see: ctrlift list snapshots)", key)
	case 1:
	default:
		// The same chain id in several namespaces names the same layers
		// only if it is the same snapshotter directory.
		var where []string
		for _, s := range found {
			where = append(where, s.Namespace+"/"+s.Snapshotter)
		}
		if found[0].Path == "" || !sameSnapshot(found) {
			return nil, fmt.Errorf("snapshot key %q is in several places (%s): use -n and --snapshotter", key, strings.Join(where, ", "))
		}
	}
	s := found[0]
	return st.Chain(s.Namespace, s.Snapshotter, s.Key)
}

func sameSnapshot(ss []containerd.Snapshot) bool {
	for _, s := range ss[1:] {
		if s.Path != ss[0].Path {
			return false
		}
	}
	return true
}

// toLayers maps a containerd snapshot chain onto layer directories of o.
func toLayers(o *openedSource, chain []containerd.Layer, allowMissing bool) ([]layers.Layer, error) {
	if err := o.checkOverlayMarkers(); err != nil {
		return nil, err
	}
	var ls []layers.Layer
	for i, l := range chain {
		name := fmt.Sprintf("%s/%d", l.Snapshotter, l.ID)
		if l.Path == "" || l.Missing {
			why := "its content is not on the disk"
			if l.Streamed {
				why = "it was served by GKE image streaming and never stored on the disk"
			} else if l.Missing {
				why = "it is missing from the snapshotter's metadata.db"
			}
			if allowMissing {
				continue
			}
			return nil, fmt.Errorf("layer %d (snapshot %s, key %s): %s; --allow-missing-layers exports the rest", i, name, l.SnapshotKey, why)
		}
		ls = append(ls, layers.Layer{FS: o.Tree, Dir: l.Path, Name: name})
	}
	if len(ls) == 0 {
		return nil, errors.New("no layer of the chain is on the disk")
	}
	return ls, nil
}

// exported describes one written tar, for the summary and index.json.
type exported struct {
	Entries     int64  `json:"entries"`
	Bytes       int64  `json:"file_bytes"` // file content bytes
	Size        int64  `json:"size"`       // bytes of the file written (compressed when compressed)
	SHA256      string `json:"sha256"`     // of the file written
	TarSHA256   string `json:"tar_sha256"` // of the uncompressed tar stream
	Compression string `json:"compression"`
}

// countWriter counts what goes through it.
type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// exportLayers merges ls and writes the tar (or, with --changes, the top
// layer's OCI diff) to output, and the manifest when asked. Both were
// claimed on g; neither appears under its name unless the export succeeds.
func exportLayers(cmd *cobra.Command, g *safeout.Guard, ls []layers.Layer, output string, ef *exportFlags) (*exported, error) {
	stderr := cmd.ErrOrStderr()
	m, err := layers.New(ls, layers.Options{AllowMissing: ef.allowMissing})
	if err != nil {
		return nil, err
	}
	for _, w := range m.Warnings {
		warn(cmd, "%s", w)
	}
	comp := export.CompressionFor(output)
	if output == "-" {
		comp = export.None
	}
	if ef.compress != "" {
		if comp, err = export.ParseCompression(ef.compress); err != nil {
			return nil, err
		}
	}
	var out io.Writer
	var file, manifest *safeout.File
	if output == "-" {
		out = cmd.OutOrStdout()
	} else {
		if file, err = g.Create(output); err != nil {
			return nil, err
		}
		out = file
	}
	fail := func(err error) (*exported, error) {
		if file != nil {
			file.Abort()
		}
		if manifest != nil {
			manifest.Abort()
		}
		return nil, err
	}
	fileSum := sha256.New()
	var size countWriter
	cw, err := export.Compress(io.MultiWriter(out, fileSum, &size), comp)
	if err != nil {
		return fail(err)
	}
	opt := export.Options{}
	if ef.manifest != "" {
		if manifest, err = g.Create(ef.manifest); err != nil {
			return fail(err)
		}
		opt.Manifest = manifest
	}
	var bar *progress
	if !ef.quiet && isTerminal(stderr) {
		bar = newProgress(stderr, m)
		opt.Progress = bar.update
	}
	start := time.Now()
	var stats *export.Stats
	if ef.changes {
		stats, err = export.Changes(cw, ls[0], layers.Options{}, opt)
	} else {
		stats, err = export.Tar(cw, m, opt)
	}
	if bar != nil {
		bar.finish()
	}
	if err != nil {
		return fail(err)
	}
	if err := cw.Close(); err != nil {
		return fail(err)
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
	res := &exported{
		Entries: stats.Files, Bytes: stats.Bytes, Size: size.n,
		SHA256: hex.EncodeToString(fileSum.Sum(nil)), TarSHA256: stats.TarSHA256, Compression: string(comp),
	}
	if !ef.quiet {
		for _, s := range stats.Skipped {
			fmt.Fprintln(stderr, "skipped:", printable(s))
		}
		fmt.Fprintf(stderr, "%s: %d entries, %s of file data in %s\n", output, stats.Files, iec(stats.Bytes), time.Since(start).Round(time.Millisecond))
		fmt.Fprintf(stderr, "tar sha256 %s\n", stats.TarSHA256)
		if comp != export.None {
			fmt.Fprintf(stderr, "%s sha256 %s\n", comp, res.SHA256)
		}
	}
	return res, nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func iec(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// progress draws "files done/total, bytes done/total" on a terminal.
type progress struct {
	w            io.Writer
	files, bytes int64
	last         time.Time
}

func newProgress(w io.Writer, m *layers.Merged) *progress {
	p := &progress{w: w}
	// A metadata-only pass gives the totals; it reads no file data.
	m.Walk(func(_ string, e *layers.Entry) error {
		p.files++
		if e.IsRegular() {
			p.bytes += e.Size
		}
		return nil
	})
	return p
}

func (p *progress) update(files, bytes int64) {
	if time.Since(p.last) < 200*time.Millisecond {
		return
	}
	p.last = time.Now()
	pct := 100.0
	if p.bytes > 0 {
		pct = 100 * float64(bytes) / float64(p.bytes)
	}
	fmt.Fprintf(p.w, "\r%d/%d files, %s/%s (%.0f%%)   ", files, p.files, iec(bytes), iec(p.bytes), pct)
}

func (p *progress) finish() { fmt.Fprint(p.w, "\r\033[K") }

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// exportIndex is index.json of a multi-container export: what was read,
// by which tool, what was written and what was left out. It holds no
// clock time, so the same input gives the same index.
type exportIndex struct {
	Tool           toolVersion       `json:"tool"`
	Input          inputInfo         `json:"input"`
	ContainerdRoot string            `json:"containerd_root"`
	Selection      exportSelection   `json:"selection"`
	Containers     []exportedEntry   `json:"containers"`
	Skipped        []skippedEntry    `json:"skipped"`
	Failed         int               `json:"failed"`
	Options        map[string]string `json:"options,omitempty"`
}

type exportSelection struct {
	Namespace         string `json:"namespace,omitempty"`
	AllContainers     bool   `json:"all_containers"`
	SupportContainers string `json:"support_containers,omitempty"` // the list file, when not the built-in one
	Changes           bool   `json:"changes"`
}

type exportedEntry struct {
	File          string    `json:"file,omitempty"`
	Manifest      string    `json:"manifest,omitempty"`
	Namespace     string    `json:"namespace"`
	ID            string    `json:"id"`
	Kind          string    `json:"kind,omitempty"`
	PodNamespace  string    `json:"pod_namespace,omitempty"`
	PodName       string    `json:"pod_name,omitempty"`
	ContainerName string    `json:"container_name,omitempty"`
	Image         string    `json:"image"`
	Status        string    `json:"status"`
	Layers        int       `json:"layers"`
	Tar           *exported `json:"tar,omitempty"`
	Error         string    `json:"error,omitempty"`
}

type skippedEntry struct {
	Namespace     string `json:"namespace"`
	ID            string `json:"id"`
	Kind          string `json:"kind,omitempty"`
	PodNamespace  string `json:"pod_namespace,omitempty"`
	PodName       string `json:"pod_name,omitempty"`
	ContainerName string `json:"container_name,omitempty"`
	Image         string `json:"image"`
	Reason        string `json:"reason"`
}

// exportAll writes one tar and manifest per container that "list
// containers" shows with the same selection into ef.outDir, plus
// index.json; the containers left out are named there and on stderr.
func exportAll(cmd *cobra.Command, g *safeout.Guard, src *sourceFlags, st *containerd.State, fsys *openedSource, ef *exportFlags, ns string) error {
	stderr := cmd.ErrOrStderr()
	opts := containerd.ListOptions{All: ef.allContainers, Namespace: ns}
	if ef.supportFile != "" {
		f, err := readSupportFilter(ef.supportFile)
		if err != nil {
			return err
		}
		opts.Support = f
	}
	shown, hidden := st.SelectContainers(opts)
	ext := ".tar"
	comp := export.None
	if ef.compress != "" {
		var err error
		if comp, err = export.ParseCompression(ef.compress); err != nil {
			return err
		}
		switch comp {
		case export.Gzip:
			ext = ".tar.gz"
		case export.Zstd:
			ext = ".tar.zst"
		}
	}
	idx := exportIndex{
		Tool:           currentVersion(),
		ContainerdRoot: st.Root,
		Selection:      exportSelection{Namespace: ns, AllContainers: ef.allContainers, SupportContainers: ef.supportFile, Changes: ef.changes},
		Containers:     []exportedEntry{},
		Skipped:        []skippedEntry{},
	}
	var err error
	if idx.Input, err = src.describeInput(); err != nil {
		return err
	}
	for _, h := range hidden.Containers {
		c := h.Container
		idx.Skipped = append(idx.Skipped, skippedEntry{Namespace: c.Namespace, ID: c.ID, Kind: c.Kind, PodNamespace: c.PodNamespace, PodName: c.PodName, ContainerName: c.ContainerName, Image: c.Image, Reason: h.Reason})
		if !ef.quiet {
			fmt.Fprintf(stderr, "skipped %s/%s: %s\n", printable(c.Namespace), printable(c.ID), printable(h.Reason))
		}
	}
	indexPath := filepath.Join(ef.outDir, "index.json")
	if err := g.Claim(indexPath); err != nil {
		return err
	}
	used := map[string]bool{"index": true}
	for _, c := range shown {
		e := exportedEntry{Namespace: c.Namespace, ID: c.ID, Kind: c.Kind, PodNamespace: c.PodNamespace, PodName: c.PodName, ContainerName: c.ContainerName, Image: c.Image, Status: c.Status.String(), Layers: len(c.Layers)}
		base := uniqueBase(c, used)
		sub := *ef
		sub.compress = string(comp)
		sub.manifest = filepath.Join(ef.outDir, base+".manifest.jsonl")
		file := filepath.Join(ef.outDir, base+ext)
		err := g.Claim(file)
		if err == nil {
			err = g.Claim(sub.manifest)
		}
		var ls []layers.Layer
		if err == nil {
			ls, err = toLayers(fsys, c.Layers, ef.allowMissing)
		}
		if err == nil {
			e.Tar, err = exportLayers(cmd, g, ls, file, &sub)
		}
		if err != nil {
			idx.Failed++
			e.Error = err.Error()
			fmt.Fprintf(stderr, "ctrlift: %s: %s\n", printable(c.ID), printable(err.Error()))
		} else {
			e.File, e.Manifest = base+ext, base+".manifest.jsonl"
		}
		idx.Containers = append(idx.Containers, e)
	}
	err = g.WriteFile(indexPath, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		return enc.Encode(idx)
	})
	if err != nil {
		return err
	}
	if idx.Failed > 0 {
		return fmt.Errorf("%d of %d containers could not be exported (see index.json)", idx.Failed, len(shown))
	}
	return nil
}

// uniqueBase names a container's files: namespace, pod, name and short
// id, or the whole id when two short ids would collide.
func uniqueBase(c containerd.Container, used map[string]bool) string {
	pod := c.PodName
	if c.PodNamespace != "" {
		pod = c.PodNamespace + "_" + c.PodName
	}
	name := c.ContainerName
	if name == "" {
		name = c.Kind
	}
	mk := func(id string) string {
		return unsafeName.ReplaceAllString(strings.Join(nonEmpty(c.Namespace, pod, name, id), "_"), "-")
	}
	base := mk(short(c.ID))
	if used[base] {
		base = mk(c.ID)
	}
	for i := 2; used[base]; i++ {
		base = mk(c.ID) + "-" + strconv.Itoa(i)
	}
	used[base] = true
	return base
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
