package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/ctrlift/ctrlift/export"
	"github.com/ctrlift/ctrlift/layers"
	"github.com/ctrlift/ctrlift/node"
)

type exportFlags struct {
	format       string
	dir          string
	compress     string
	manifest     string
	changes      bool
	noChanges    bool
	all          bool
	supportFile  string
	snapshot     string
	snapshotter  string
	layerDirs    string
	allowMissing bool
	force        bool
	hashInput    bool
	volumeHashFlags
}

func newExportCmd(g *globalFlags) *cobra.Command {
	var ef exportFlags
	cmd := &cobra.Command{
		Use:   "export REF [FILE|-] | export -d DIR [REF...]",
		Short: "Write a container's merged filesystem (or only its changes) as a tar, without mounting",
		Long: `Write a container's filesystem, merged from its snapshot layers the way
overlayfs would, as a deterministic PAX tar (numeric owners, nanosecond
times, xattrs, hardlinks, devices). Files with 1 MiB or more of holes are
GNU sparse entries, as tar --sparse writes them. The same image always
gives a byte-identical tar; its sha256 is printed on stderr.

The destination is an argument: FILE (compressed when its name ends in
.gz or .zst, or as --compress says) or - for standard output (the
default when it is not a terminal). With -d DIR and no REF, every
container that "list containers" shows with the same flags is exported,
one tar and manifest each, plus index.json; with REFs (pod:K8SNS/POD for
a whole pod), those.

With -o oci, FILE is one tar that is both an OCI image layout and a
docker save archive (skopeo oci-archive:, umoci, docker load, trivy
--input): each snapshot of the container's chain as a layer, its
writable layer (what it changed) on top unless --no-changes, and the
image's config from the content store, rewritten for those layers (or
one made from the container's spec when it is gone). Its layers are
gzip-compressed unless --compress says otherwise.

REF is as for "info container": an id, a unique id prefix,
containerd://ID, NAME, POD/NAME or K8SNS/POD/NAME.

  ctrlift export -i node.raw prod/web-1/web web.tar.zst
  ctrlift export -i node.raw REF --changes diff.tar     # OCI layer of what the container changed
  ctrlift export -i node.raw REF -o oci image.tar       # the container as an image (OCI layout + docker save)
  ctrlift export -i node.raw -d out/                    # every workload container, plus index.json
  ctrlift export -i node.raw -d out/ pod:prod/web-1     # the containers of one pod
  ctrlift export -i node.raw --snapshot sha256:... rootfs.tar
  ctrlift export -i node.raw --layer-dirs DIR1:DIR2 x.tar   # explicit layer directories, top first

Symlinks are data: nothing is ever resolved through one, so a link in the
image can never reach the analyst's own files.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runExport(cmd, g, &ef, args)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&ef.format, "output", "o", string(node.FormatTar), "output format: "+formatList())
	fl.StringVarP(&ef.dir, "dir", "d", "", "export into this directory: one tar and manifest per container, plus index.json")
	fl.StringVar(&ef.compress, "compress", "", "gzip, zstd or none (default: from the file name; none for stdout and for -d; with -o oci, of its layers, default gzip)")
	fl.StringVar(&ef.manifest, "manifest", "", "also write a JSON-lines manifest, one record per entry (README, \"Records\")")
	fl.BoolVar(&ef.changes, "changes", false, "only what the container changed: its writable layer (export writes it as an OCI layer tar, deletions as .wh. whiteouts)")
	fl.BoolVar(&ef.noChanges, "no-changes", false, "with -o oci, the image without the container's changes")
	registerSelection(cmd, &ef.all, &ef.supportFile)
	fl.StringVar(&ef.snapshot, "snapshot", "", "export a snapshot chain by snapshot key (e.g. an image's rootfs chain id) instead of a container")
	fl.StringVar(&ef.snapshotter, "snapshotter", "", "snapshotter of --snapshot (default: the one that has the key)")
	fl.StringVar(&ef.layerDirs, "layer-dirs", "", "colon-separated layer directories on the partition, top first (no runtime state needed)")
	registerAllowMissing(cmd, &ef.allowMissing)
	fl.BoolVar(&ef.force, "force", false, "replace existing output files and write into a non-empty -d directory (the input is never written)")
	ef.volumeHashFlags.register(cmd)
	fl.BoolVar(&ef.hashInput, "hash-input", false, "with -d, record each input file's sha256 in index.json (reads the inputs once more)")
	cmd.PreRunE = func(*cobra.Command, []string) error {
		return (&printFlags{format: ef.format, allowed: strings.Split(formatList(), ", ")}).check()
	}
	return cmd
}

func formatList() string {
	var fs []string
	for _, f := range node.ExportFormats {
		fs = append(fs, string(f))
	}
	return strings.Join(fs, ", ")
}

func (ef *exportFlags) options(cmd *cobra.Command) (node.ExportOptions, error) {
	o := node.ExportOptions{
		Format: node.Format(ef.format), Changes: ef.changes, NoChanges: ef.noChanges, Layers: node.LayerOptions{AllowMissing: ef.allowMissing},
		Manifest: ef.manifest, Force: ef.force,
	}
	var err error
	if o.Volumes, o.Hashes, err = ef.parse(); err != nil {
		return o, err
	}
	if ef.compress != "" {
		c, err := export.ParseCompression(ef.compress)
		if err != nil {
			return o, err
		}
		o.Compression = c
	}
	return o, nil
}

func runExport(cmd *cobra.Command, g *globalFlags, ef *exportFlags, args []string) error {
	opt, err := ef.options(cmd)
	if err != nil {
		return err
	}
	if ef.dir != "" {
		return exportDir(cmd, g, ef, opt, args)
	}
	// One tree: what to export (REF, --snapshot or --layer-dirs), then
	// where (FILE, - or standard output).
	byLayers := ef.snapshot != "" || ef.layerDirs != ""
	if ef.snapshot != "" && ef.layerDirs != "" {
		return errors.New("--snapshot and --layer-dirs each say what to export: give one")
	}
	want := 1
	if byLayers {
		want = 0
	}
	if len(args) < want || len(args) > want+1 {
		if byLayers {
			return errors.New("with --snapshot or --layer-dirs, give only the destination: [FILE|-]")
		}
		return errors.New("say what to export and where: export REF [FILE|-], or export -d DIR [REF...]")
	}
	if ef.all || ef.supportFile != "" || ef.hashInput {
		return errors.New("--all, --support-containers and --hash-input select and record containers for -d DIR")
	}
	dest := "-"
	if len(args) > want {
		dest = args[want]
	}
	if dest == "-" && isTerminal(cmd.OutOrStdout()) {
		return errors.New("refusing to write a tar to a terminal: give FILE or redirect standard output")
	}
	// Outputs are checked against the evidence before anything is read.
	var files []string
	if dest != "-" {
		files = append(files, dest)
	}
	if ef.manifest != "" {
		files = append(files, ef.manifest)
	}
	if err := node.CheckOutputs(g.inputs, files, nil, ef.force); err != nil {
		return err
	}
	n, err := g.open(cmd)
	if err != nil {
		return err
	}
	defer n.Close()
	// What to export: a container (with its volumes), or layers named
	// by a snapshot key or given as directories.
	var ls []layers.Layer
	switch {
	case ef.layerDirs != "":
		ls, err = n.DirLayers(strings.Split(ef.layerDirs, ":"))
	case ef.snapshot != "":
		ls, err = n.SnapshotLayers(ef.snapshot, ef.snapshotter, opt.Layers)
	default:
		c, err := n.Resolve(args[0])
		if err != nil {
			return err
		}
		inform(cmd, "container %s", printable(node.Describe(c)))
	}
	if err != nil {
		return err
	}
	if dest == "-" {
		widenPipe(cmd.OutOrStdout())
	}
	bar := startProgress(cmd, &opt)
	start := time.Now()
	var res *node.Exported
	switch {
	case ls == nil && dest == "-":
		res, err = n.Export(args[0], cmd.OutOrStdout(), opt)
	case ls == nil:
		res, err = n.ExportFile(args[0], dest, opt)
	case dest == "-":
		res, err = n.ExportLayers(ls, cmd.OutOrStdout(), opt)
	default:
		res, err = n.ExportLayersFile(ls, dest, opt)
	}
	bar.finish()
	if err != nil {
		return err
	}
	summarize(cmd, dest, res, time.Since(start))
	return nil
}

// exportDir is export -d DIR [REF...].
func exportDir(cmd *cobra.Command, g *globalFlags, ef *exportFlags, opt node.ExportOptions, refs []string) error {
	if ef.manifest != "" {
		return errors.New("-d writes a tar and a manifest per container into DIR; --manifest does not apply")
	}
	if ef.snapshot != "" || ef.layerDirs != "" {
		return errors.New("--snapshot and --layer-dirs export one tree to a FILE, not into -d DIR")
	}
	if opt.Format == node.FormatOCI {
		return errors.New("-o oci writes one container's image to a FILE; -d DIR writes tars only")
	}
	if err := node.CheckOutputs(g.inputs, nil, []string{ef.dir}, ef.force); err != nil {
		return err
	}
	list, err := listOptions(ef.all, ef.supportFile)
	if err != nil {
		return err
	}
	n, err := g.state(cmd)
	if err != nil {
		return err
	}
	defer n.Close()
	all := node.ExportAllOptions{ExportOptions: opt, List: list, SupportName: ef.supportFile, Refs: refs, HashInputs: ef.hashInput}
	all.Done = func(e node.ExportedContainer) {
		if e.Error != "" {
			fmt.Fprintf(cmd.ErrOrStderr(), "ctrlift: %s: %s\n", printable(e.ID), printable(e.Error))
			return
		}
		summarize(cmd, e.File, e.Tar, 0)
	}
	idx, err := n.ExportAll(ef.dir, all)
	if idx != nil {
		for _, s := range idx.Skipped {
			inform(cmd, "skipped %s/%s: %s", printable(s.Namespace), printable(s.ID), printable(s.Reason))
		}
	}
	return err
}

// summarize prints what an export wrote, unless -q.
func summarize(cmd *cobra.Command, name string, res *node.Exported, took time.Duration) {
	for _, s := range res.Skipped {
		inform(cmd, "skipped: %s", printable(s))
	}
	line := fmt.Sprintf("%s: %d entries, %s of file data", printable(name), res.Entries, node.FormatBytes(res.Bytes))
	if took > 0 {
		line += " in " + took.Round(time.Millisecond).String()
	}
	inform(cmd, "%s", line)
	inform(cmd, "tar sha256 %s", res.TarSHA256)
	if o := res.OCI; o != nil {
		inform(cmd, "image %s: manifest %s, %d layers, %s config", printable(o.Name), o.ManifestDigest, len(o.Layers), o.Config)
	}
	if res.Compression != string(export.None) {
		inform(cmd, "%s sha256 %s", res.Compression, res.SHA256)
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progress draws "files done/total, bytes done/total" on a terminal.
type progress struct {
	w    io.Writer
	last time.Time
}

// startProgress sets opt.Progress when stderr is a terminal and -q is off.
func startProgress(cmd *cobra.Command, opt *node.ExportOptions) *progress {
	if quiet(cmd) || !isTerminal(cmd.ErrOrStderr()) {
		return nil
	}
	p := &progress{w: cmd.ErrOrStderr()}
	opt.Progress = p.update
	return p
}

func (p *progress) update(s node.ExportProgress) {
	if time.Since(p.last) < 200*time.Millisecond {
		return
	}
	p.last = time.Now()
	pct := 100.0
	if s.TotalBytes > 0 {
		pct = 100 * float64(s.Bytes) / float64(s.TotalBytes)
	}
	fmt.Fprintf(p.w, "\r%d/%d files, %s/%s (%.0f%%)   ", s.Files, s.TotalFiles, node.FormatBytes(s.Bytes), node.FormatBytes(s.TotalBytes), pct)
}

func (p *progress) finish() {
	if p != nil {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
