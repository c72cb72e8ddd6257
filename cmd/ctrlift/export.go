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
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/ctrlift/ctrlift/containerd"
	"github.com/ctrlift/ctrlift/export"
	"github.com/ctrlift/ctrlift/image/ext4"
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
	quiet         bool
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
	fl.StringVar(&cf.root, "containerd-root", "", "containerd root directory on the partition (default: var/lib/containerd and other known places)")
	fl.StringVarP(&cf.namespace, "namespace", "n", "", "containerd namespace (default: all)")
	fl.StringVarP(&ef.output, "output", "o", "", "output file, or - for stdout; compression follows .gz/.zst unless --compress is given")
	fl.StringVarP(&ef.outDir, "dir", "d", "", "output directory for --all")
	fl.StringVar(&ef.compress, "compress", "", "gzip, zstd or none (default: from the file name; none for stdout; for --all: none)")
	fl.StringVar(&ef.manifest, "manifest", "", "also write a JSON-lines manifest (path, type, mode, uid, gid, size, sha256 or sha256_omitted, target, mtime_ns, atime_ns, ctime_ns, crtime_ns, inode, rdev, xattrs_b64, sparse, layer)")
	fl.BoolVar(&ef.changes, "changes", false, "export only what the container changed: its writable layer as an OCI layer tar (.wh. whiteouts)")
	fl.BoolVar(&ef.all, "all", false, "export every workload container into --dir")
	fl.BoolVar(&ef.allContainers, "all-containers", false, "with --all, include sandboxes and support containers")
	fl.StringVar(&ef.snapshot, "snapshot", "", "export a snapshot chain by snapshot key (e.g. an image's rootfs chain id) instead of a container")
	fl.StringVar(&ef.snapshotter, "snapshotter", "", "snapshotter of --snapshot (default: the one that has the key)")
	fl.StringVar(&ef.layerDirs, "layer-dirs", "", "colon-separated layer directories on the partition, top first (no containerd database needed)")
	fl.BoolVar(&ef.allowMissing, "allow-missing-layers", false, "skip layers whose content is not on disk (e.g. GKE image streaming) instead of failing")
	fl.BoolVarP(&ef.quiet, "quiet", "q", false, "no progress or summary on stderr")
	return cmd
}

func runExport(cmd *cobra.Command, args []string, src *sourceFlags, cf *ctrdFlags, ef *exportFlags) error {
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
		if ef.output != "" {
			return errors.New("--all writes into --dir; -o does not apply")
		}
	} else if ef.output == "" {
		return errors.New("no output: use -o FILE (or -o - for stdout)")
	}
	if ef.layerDirs != "" {
		o, err := src.open(cmd)
		if err != nil {
			return err
		}
		defer o.Close()
		var ls []layers.Layer
		for i, d := range strings.Split(ef.layerDirs, ":") {
			ls = append(ls, layers.Layer{FS: o.FS, Dir: cleanArg(d), Name: fmt.Sprint(i)})
		}
		return exportLayers(cmd, ls, ef.output, ef)
	}
	cf.quiet = ef.quiet
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
		return exportLayers(cmd, ls, ef.output, ef)
	case ef.all:
		return exportAll(cmd, st, fsys, ef, cf.namespace)
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
	return exportLayers(cmd, ls, ef.output, ef)
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

// toLayers maps a containerd snapshot chain onto layer directories.
func toLayers(fsys *ext4.FS, chain []containerd.Layer, allowMissing bool) ([]layers.Layer, error) {
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
		ls = append(ls, layers.Layer{FS: fsys, Dir: l.Path, Name: name})
	}
	if len(ls) == 0 {
		return nil, errors.New("no layer of the chain is on the disk")
	}
	return ls, nil
}

// exportLayers merges ls and writes the tar (or, with --changes, the top
// layer's OCI diff) to output.
func exportLayers(cmd *cobra.Command, ls []layers.Layer, output string, ef *exportFlags) error {
	stderr := cmd.ErrOrStderr()
	m, err := layers.New(ls, layers.Options{AllowMissing: ef.allowMissing})
	if err != nil {
		return err
	}
	if !ef.quiet {
		for _, w := range m.Warnings {
			fmt.Fprintln(stderr, "warning:", printable(w))
		}
	}
	comp := export.CompressionFor(output)
	if output == "-" {
		comp = export.None
	}
	if ef.compress != "" {
		if comp, err = export.ParseCompression(ef.compress); err != nil {
			return err
		}
	}
	var out io.Writer
	var file *os.File
	if output == "-" {
		out = cmd.OutOrStdout()
	} else {
		if file, err = createOutput(output); err != nil {
			return err
		}
		out = file
	}
	fail := func(err error) error {
		if file != nil {
			file.Close()
			os.Remove(output)
		}
		return err
	}
	fileSum := sha256.New()
	cw, err := export.Compress(io.MultiWriter(out, fileSum), comp)
	if err != nil {
		return fail(err)
	}
	opt := export.Options{}
	var manifest *os.File
	if ef.manifest != "" {
		if manifest, err = createOutput(ef.manifest); err != nil {
			return fail(err)
		}
		defer manifest.Close()
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
	if file != nil {
		if err := file.Close(); err != nil {
			return fail(err)
		}
	}
	if manifest != nil {
		if err := manifest.Close(); err != nil {
			return err
		}
	}
	if !ef.quiet {
		for _, s := range stats.Skipped {
			fmt.Fprintln(stderr, "skipped:", printable(s))
		}
		fmt.Fprintf(stderr, "%s: %d entries, %s of file data in %s\n", output, stats.Files, iec(stats.Bytes), time.Since(start).Round(time.Millisecond))
		fmt.Fprintf(stderr, "tar sha256 %s\n", stats.TarSHA256)
		if comp != export.None {
			fmt.Fprintf(stderr, "%s sha256 %s\n", comp, hex.EncodeToString(fileSum.Sum(nil)))
		}
	}
	return nil
}

// createOutput creates an output file, refusing to overwrite the evidence
// or any existing file that is not a regular file.
func createOutput(p string) (*os.File, error) {
	if st, err := os.Stat(p); err == nil && !st.Mode().IsRegular() && p != os.DevNull {
		return nil, fmt.Errorf("%s exists and is not a regular file", p)
	}
	return os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
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

// exportAll writes one tar per container into ef.outDir plus index.json.
func exportAll(cmd *cobra.Command, st *containerd.State, fsys *ext4.FS, ef *exportFlags, ns string) error {
	if err := os.MkdirAll(ef.outDir, 0o755); err != nil {
		return err
	}
	shown, _ := st.SelectContainers(containerd.ListOptions{All: ef.allContainers, Namespace: ns})
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
	type indexEntry struct {
		File          string `json:"file"`
		Manifest      string `json:"manifest,omitempty"`
		Namespace     string `json:"namespace"`
		ID            string `json:"id"`
		PodNamespace  string `json:"pod_namespace,omitempty"`
		PodName       string `json:"pod_name,omitempty"`
		ContainerName string `json:"container_name,omitempty"`
		Image         string `json:"image"`
		Layers        int    `json:"layers"`
		Error         string `json:"error,omitempty"`
	}
	var index []indexEntry
	failed := 0
	for _, c := range shown {
		pod := c.PodName
		if c.PodNamespace != "" {
			pod = c.PodNamespace + "_" + c.PodName
		}
		name := c.ContainerName
		if name == "" {
			name = c.Kind
		}
		base := unsafeName.ReplaceAllString(strings.Join(nonEmpty(c.Namespace, pod, name, short(c.ID)), "_"), "-")
		e := indexEntry{File: base + ext, Namespace: c.Namespace, ID: c.ID, PodNamespace: c.PodNamespace, PodName: c.PodName, ContainerName: c.ContainerName, Image: c.Image, Layers: len(c.Layers)}
		sub := *ef
		sub.compress = string(comp)
		// Each tar gets its manifest: the index points an analyst at both.
		e.Manifest = base + ".manifest.jsonl"
		sub.manifest = filepath.Join(ef.outDir, e.Manifest)
		ls, err := toLayers(fsys, c.Layers, ef.allowMissing)
		if err == nil {
			err = exportLayers(cmd, ls, filepath.Join(ef.outDir, e.File), &sub)
		}
		if err != nil {
			failed++
			e.Error = err.Error()
			e.File, e.Manifest = "", ""
			os.Remove(sub.manifest)
			fmt.Fprintf(cmd.ErrOrStderr(), "ctrlift: %s: %s\n", printable(c.ID), printable(err.Error()))
		}
		index = append(index, e)
	}
	f, err := createOutput(filepath.Join(ef.outDir, "index.json"))
	if err != nil {
		return err
	}
	enc := json.NewEncoder(f)
	enc.SetIndent("", "  ")
	if index == nil {
		index = []indexEntry{}
	}
	if err := enc.Encode(index); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d containers could not be exported (see index.json)", failed, len(shown))
	}
	return nil
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
