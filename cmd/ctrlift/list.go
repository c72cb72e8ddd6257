package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ctrlift/ctrlift/containerd"
	"github.com/ctrlift/ctrlift/image"
	"github.com/ctrlift/ctrlift/image/ext4"
)

// ctrdFlags are the flags of the commands that read containerd state, on
// top of the image source flags (-i, -p, --no-cache; source.go).
type ctrdFlags struct {
	root      string // --containerd-root
	namespace string // -n
	output    string // -o
}

func (f *ctrdFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.root, "containerd-root", "", "containerd root directory on the partition (default: search var/lib/containerd and other known places)")
	fl.StringVarP(&f.namespace, "namespace", "n", "", "containerd namespace (default: all)")
	fl.StringVarP(&f.output, "output", "o", "table", "output format: table, json or jsonl")
}

func (f *ctrdFlags) check() error {
	switch f.output {
	case "table", "json", "jsonl":
		return nil
	}
	return fmt.Errorf("unknown output format %q (want table, json or jsonl)", f.output)
}

// ctrdCmd completes a command that reads containerd state: it registers the
// image and containerd flags and loads the state before calling run.
func ctrdCmd(c *cobra.Command, run func(cmd *cobra.Command, args []string, st *containerd.State, cf *ctrdFlags) error) *cobra.Command {
	var src sourceFlags
	var cf ctrdFlags
	src.register(c)
	cf.register(c)
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if err := cf.check(); err != nil {
			return err
		}
		st, done, err := loadState(cmd, &src, &cf)
		if err != nil {
			return err
		}
		defer done()
		return run(cmd, args, st, &cf)
	}
	return c
}

// loadState opens the image, finds the containerd root and reads the state.
// Without -p, a root missing from the default partition is looked for on
// the other ext2/3/4 partitions. The source line and warnings go to stderr
// so that stdout stays parseable.
func loadState(cmd *cobra.Command, src *sourceFlags, f *ctrdFlags) (*containerd.State, func(), error) {
	st, _, done, err := loadStateFS(cmd, src, f)
	return st, done, err
}

// loadStateFS is loadState that also returns the source holding the
// containerd root, for commands that read the snapshots' files.
func loadStateFS(cmd *cobra.Command, src *sourceFlags, f *ctrdFlags) (*containerd.State, *openedSource, func(), error) {
	o, err := src.open(cmd)
	if err != nil {
		return nil, nil, nil, err
	}
	used := o
	closeAll := func() {
		if used != o {
			used.Close()
		}
		o.Close()
	}
	root, err := containerd.FindRoot(o.Files, f.root)
	if err != nil && o.Disk == nil {
		o.Close()
		return nil, nil, nil, fmt.Errorf("%s: %w\n  use --containerd-root PATH", o.Describe(), err)
	}
	if err != nil {
		part := o.Partition
		searched := []string{describePartition(part)}
		if src.partition == "" {
			for i := range o.Disk.Partitions {
				p := &o.Disk.Partitions[i]
				if p.Number == part.Number || !image.IsExt(p.FS.Type) {
					continue
				}
				searched = append(searched, describePartition(p))
				e, err := ext4.NewReader(p.Reader(), p.Size)
				if err != nil {
					continue
				}
				if r, err := containerd.FindRoot(e, f.root); err == nil {
					root = r
					used = &openedSource{Tree: e.Source(), Files: e, FS: e, Partition: p}
					src.used = p
					break
				}
				e.Close()
			}
		}
		if used == o {
			var all []string
			for i := range o.Disk.Partitions {
				all = append(all, describePartition(&o.Disk.Partitions[i]))
			}
			o.Close()
			return nil, nil, nil, fmt.Errorf("%w\n  partitions searched: %s\n  partitions on the disk: %s\n  use -p PART or --containerd-root PATH",
				err, strings.Join(searched, "; "), strings.Join(all, "; "))
		}
	}
	st, err := containerd.Load(used.Files, root)
	if err != nil {
		closeAll()
		return nil, nil, nil, err
	}
	inform(cmd, "containerd root %s on %s; meta.db txid %d (meta page %d)", st.Root, used.Describe(), st.MetaDB.TxID, st.MetaDB.MetaPage)
	for _, w := range st.Warnings {
		warn(cmd, "%s", w)
	}
	return st, used, closeAll, nil
}

func newListCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List containerd namespaces, containers, images, snapshots or content",
	}
	cmd.AddCommand(
		listNamespacesCmd(),
		listContainersCmd(),
		listImagesCmd(),
		listSnapshotsCmd(),
		listContentCmd(),
	)
	return cmd
}

func inNS(f *ctrdFlags, ns string) bool { return f.namespace == "" || f.namespace == ns }

func listNamespacesCmd() *cobra.Command {
	return ctrdCmd(&cobra.Command{
		Use:   "namespaces",
		Short: "List containerd namespaces",
		Args:  cobra.NoArgs,
	}, func(cmd *cobra.Command, _ []string, st *containerd.State, cf *ctrdFlags) error {
		type row struct {
			Name       string            `json:"name"`
			Labels     map[string]string `json:"labels,omitempty"`
			Containers int               `json:"containers"`
			Images     int               `json:"images"`
			Snapshots  int               `json:"snapshots"`
			Content    int               `json:"content"`
		}
		var rows []row
		for _, n := range st.Namespaces {
			if !inNS(cf, n.Name) {
				continue
			}
			r := row{Name: n.Name, Labels: n.Labels}
			for _, c := range st.Containers {
				r.Containers += b2i(c.Namespace == n.Name)
			}
			for _, i := range st.Images {
				r.Images += b2i(i.Namespace == n.Name)
			}
			for _, s := range st.Snapshots {
				r.Snapshots += b2i(s.Namespace == n.Name)
			}
			for _, b := range st.Content {
				r.Content += b2i(b.Namespace == n.Name)
			}
			rows = append(rows, r)
		}
		return render(cmd.OutOrStdout(), cf.output, rows,
			[]string{"NAME", "CONTAINERS", "IMAGES", "SNAPSHOTS", "CONTENT", "LABELS"},
			func(r row) []string {
				return []string{r.Name, fmt.Sprint(r.Containers), fmt.Sprint(r.Images), fmt.Sprint(r.Snapshots), fmt.Sprint(r.Content), labels(r.Labels)}
			})
	})
}

func listContainersCmd() *cobra.Command {
	var noTrunc, all bool
	var supportFile string
	cmd := &cobra.Command{
		Use:   "containers",
		Short: "List containers with their Kubernetes pod, status and exit code",
		Long: `List containers with their Kubernetes pod, status and exit code.

The containers of every containerd namespace are shown (k8s.io for
Kubernetes, default for ctr, moby for Docker, or any other: a container
started by hand on a node is what an intruder leaves behind), without pod
sandboxes and support containers (pods of kube-system and other system
namespaces). How many were hidden, and why, is printed on stderr. --all
shows them too; -n shows one namespace; --support-containers FILE takes a
list in container-explorer's supportcontainer.yaml format. "export --all"
exports exactly these containers.`,
		Args: cobra.NoArgs,
	}
	ctrdCmd(cmd, func(cmd *cobra.Command, _ []string, st *containerd.State, cf *ctrdFlags) error {
		opts := containerd.ListOptions{All: all, Namespace: cf.namespace}
		if supportFile != "" {
			var err error
			if opts.Support, err = readSupportFilter(supportFile); err != nil {
				return err
			}
		}
		shown, hidden := st.SelectContainers(opts)
		if n := hidden.Total(); n > 0 {
			inform(cmd, "%d containers hidden (%s); --all shows them", n, describeHidden(hidden))
		}
		rows := make([]containerd.Container, len(shown))
		for i, c := range shown {
			rows[i] = c.Brief()
		}
		trunc := func(s string) string {
			if noTrunc || len(s) <= 12 {
				return s
			}
			return s[:12]
		}
		return render(cmd.OutOrStdout(), cf.output, rows,
			[]string{"NAMESPACE", "CONTAINER ID", "POD", "NAME", "KIND", "IMAGE", "SNAPSHOTTER", "CREATED", "STATUS", "PID", "EXIT"},
			func(c containerd.Container) []string {
				pod := ""
				if c.PodName != "" {
					pod = c.PodNamespace + "/" + c.PodName
				}
				name := c.ContainerName
				if name == "" {
					name = trunc(c.ID)
				}
				pid, exit := "", ""
				if c.PID != 0 {
					pid = fmt.Sprint(c.PID)
				}
				if c.ExitCode != nil {
					exit = fmt.Sprint(*c.ExitCode)
				}
				return []string{c.Namespace, trunc(c.ID), pod, name, c.Kind, c.Image, c.Snapshotter, when(c.CreatedAt), c.Status.String(), pid, exit}
			})
	})
	fl := cmd.Flags()
	fl.BoolVar(&noTrunc, "no-trunc", false, "show full container ids")
	fl.BoolVarP(&all, "all", "a", false, "show sandboxes, support containers and every namespace")
	fl.StringVar(&supportFile, "support-containers", "", "support container list (container-explorer supportcontainer.yaml format) instead of the built-in one")
	return cmd
}

// readSupportFilter reads a --support-containers file.
func readSupportFilter(name string) (*containerd.SupportFilter, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sf, err := containerd.ParseSupportFilter(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return sf, nil
}

func describeHidden(h containerd.Hidden) string {
	var parts []string
	if h.Sandboxes > 0 {
		parts = append(parts, fmt.Sprintf("%d sandboxes", h.Sandboxes))
	}
	if h.Support > 0 {
		parts = append(parts, fmt.Sprintf("%d support containers", h.Support))
	}
	var nss []string
	for ns := range h.Namespaces {
		nss = append(nss, ns)
	}
	sort.Strings(nss)
	for _, ns := range nss {
		parts = append(parts, fmt.Sprintf("%d in namespace %s", h.Namespaces[ns], ns))
	}
	return strings.Join(parts, ", ")
}

func listImagesCmd() *cobra.Command {
	return ctrdCmd(&cobra.Command{
		Use:   "images",
		Short: "List images",
		Args:  cobra.NoArgs,
	}, func(cmd *cobra.Command, _ []string, st *containerd.State, cf *ctrdFlags) error {
		var rows []containerd.Image
		for _, i := range st.Images {
			if inNS(cf, i.Namespace) {
				rows = append(rows, i)
			}
		}
		return render(cmd.OutOrStdout(), cf.output, rows,
			[]string{"NAMESPACE", "NAME", "MEDIA TYPE", "DIGEST", "SIZE", "CREATED", "LABELS"},
			func(i containerd.Image) []string {
				size := "" // unknown without the manifest blob on disk
				if i.Size > 0 {
					size = fmt.Sprint(i.Size)
				}
				return []string{i.Namespace, i.Name, i.Target.MediaType, i.Target.Digest, size, when(i.CreatedAt), labels(i.Labels)}
			})
	})
}

func listSnapshotsCmd() *cobra.Command {
	return ctrdCmd(&cobra.Command{
		Use:   "snapshots",
		Short: "List snapshots with their kind, id, parent, directory and size",
		Args:  cobra.NoArgs,
	}, func(cmd *cobra.Command, _ []string, st *containerd.State, cf *ctrdFlags) error {
		var rows []containerd.Snapshot
		for _, s := range st.Snapshots {
			if inNS(cf, s.Namespace) {
				rows = append(rows, s)
			}
		}
		return render(cmd.OutOrStdout(), cf.output, rows,
			[]string{"NAMESPACE", "SNAPSHOTTER", "KEY", "KIND", "ID", "PARENT", "DIRECTORY", "SIZE", "NOTE"},
			func(s containerd.Snapshot) []string {
				note := ""
				switch {
				case s.Orphan:
					note = "only in snapshotter db"
				case s.Missing:
					note = "missing from snapshotter db"
				}
				return []string{s.Namespace, s.Snapshotter, s.Key, s.Kind.String(), fmt.Sprint(s.ID), s.Parent, s.Path, fmt.Sprint(s.Size), note}
			})
	})
}

func listContentCmd() *cobra.Command {
	return ctrdCmd(&cobra.Command{
		Use:   "content",
		Short: "List content store blobs and whether their files are on disk",
		Args:  cobra.NoArgs,
	}, func(cmd *cobra.Command, _ []string, st *containerd.State, cf *ctrdFlags) error {
		var rows []containerd.Blob
		for _, b := range st.Content {
			if inNS(cf, b.Namespace) {
				rows = append(rows, b)
			}
		}
		return render(cmd.OutOrStdout(), cf.output, rows,
			[]string{"NAMESPACE", "DIGEST", "SIZE", "ON DISK", "CREATED", "LABELS"},
			func(b containerd.Blob) []string {
				return []string{b.Namespace, b.Digest, fmt.Sprint(b.Size), yesNo(b.OnDisk), when(b.CreatedAt), labels(b.Labels)}
			})
	})
}

// render writes rows as a table, a JSON array or JSON lines.
func render[T any](w io.Writer, format string, rows []T, header []string, cells func(T) []string) error {
	switch format {
	case "json":
		if rows == nil {
			rows = []T{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	case "jsonl":
		enc := json.NewEncoder(w)
		for _, r := range rows {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		c := cells(r)
		for i := range c {
			if c[i] == "" {
				c[i] = "-"
			}
			c[i] = printableCell(strings.NewReplacer("\t", " ", "\n", " ").Replace(c[i]))
		}
		fmt.Fprintln(tw, strings.Join(c, "\t"))
	}
	return tw.Flush()
}

func when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func labels(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = k + "=" + m[k]
	}
	return strings.Join(keys, ",")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
