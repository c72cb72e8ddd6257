package main

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ctrlift/ctrlift/containerd"
	"github.com/ctrlift/ctrlift/node"
)

func newListCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List containerd namespaces, containers, images, snapshots or content",
	}
	cmd.AddCommand(
		listNamespacesCmd(g),
		listContainersCmd(g),
		listImagesCmd(g),
		listSnapshotsCmd(g),
		listContentCmd(g),
	)
	return cmd
}

// listCmd completes a listing: -o and --no-trunc, the evidence opened and
// its runtime state read before run.
func listCmd(g *globalFlags, c *cobra.Command, run func(cmd *cobra.Command, n *node.Node, p *printFlags) error) *cobra.Command {
	var p printFlags
	p.register(c, listFormats, true)
	c.Args = cobra.NoArgs
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		n, err := g.state(cmd)
		if err != nil {
			return err
		}
		defer n.Close()
		return run(cmd, n, &p)
	}
	return c
}

func listNamespacesCmd(g *globalFlags) *cobra.Command {
	return listCmd(g, &cobra.Command{Use: "namespaces", Short: "List containerd namespaces"},
		func(cmd *cobra.Command, n *node.Node, p *printFlags) error {
			rows, err := n.Namespaces()
			if err != nil {
				return err
			}
			return printList(cmd.OutOrStdout(), p, rows,
				[]string{"NAME", "CONTAINERS", "IMAGES", "SNAPSHOTS", "CONTENT", "LABELS"},
				func(r node.Namespace) []string {
					return []string{r.Name, fmt.Sprint(r.Containers), fmt.Sprint(r.Images), fmt.Sprint(r.Snapshots), fmt.Sprint(r.Content), labels(r.Labels)}
				})
		})
}

func listContainersCmd(g *globalFlags) *cobra.Command {
	var all bool
	var supportFile string
	cmd := listCmd(g, &cobra.Command{
		Use:   "containers",
		Short: "List containers with their Kubernetes pod, status and exit code",
		Long: `List containers with their Kubernetes pod, status and exit code.

The containers of every containerd namespace are shown (k8s.io for
Kubernetes, default for ctr, moby for Docker, or any other: a container
started by hand on a node is what an intruder leaves behind) and, when the
disk holds a Docker root (/var/lib/docker), Docker Engine's containers
(namespace moby, a RUNTIME column says which), and Podman's and CRI-O's
containers of containers/storage stores (namespaces podman, podman@USER
for a rootless store, cri-o), without pod
sandboxes and support containers (pods of kube-system and other system
namespaces). How many were hidden, and why, is printed on stderr. --all
shows them too; -n shows one namespace; --support-containers FILE takes a
list in container-explorer's supportcontainer.yaml format. "export -d DIR"
exports exactly these containers, with the same flags.`,
	}, func(cmd *cobra.Command, n *node.Node, p *printFlags) error {
		opt, err := listOptions(all, supportFile)
		if err != nil {
			return err
		}
		l, err := n.Containers(opt)
		if err != nil {
			return err
		}
		if h := l.Hidden; h.Total() > 0 {
			inform(cmd, "%d containers hidden (%s); --all shows them", h.Total(), describeHidden(h))
		}
		head := []string{"NAMESPACE", "CONTAINER ID", "POD", "NAME", "KIND", "IMAGE", "SNAPSHOTTER", "CREATED", "STATUS", "PID", "EXIT"}
		withRuntime := n.HasDocker() || n.HasCStorage() // the column appears when the node has other runtimes' containers
		if withRuntime {
			head = append([]string{"RUNTIME"}, head...)
		}
		return printList(cmd.OutOrStdout(), p, l.Shown, head,
			func(c containerd.Container) []string {
				pod := node.PodLabel(&c)
				name := c.ContainerName
				if name == "" {
					name = p.short(c.ID)
				}
				pid, exit := "", ""
				if c.PID != 0 {
					pid = fmt.Sprint(c.PID)
				}
				if c.ExitCode != nil {
					exit = fmt.Sprint(*c.ExitCode)
				}
				row := []string{c.Namespace, p.short(c.ID), pod, name, c.Kind, c.Image, c.Snapshotter, when(c.CreatedAt), c.Status.String(), pid, exit}
				if withRuntime {
					row = append([]string{node.RuntimeOf(&c)}, row...)
				}
				return row
			})
	})
	registerSelection(cmd, &all, &supportFile)
	return cmd
}

// registerSelection adds --all and --support-containers, which mean the
// same in list containers and export -d.
func registerSelection(cmd *cobra.Command, all *bool, supportFile *string) {
	fl := cmd.Flags()
	fl.BoolVarP(all, "all", "a", false, "include what is hidden by default: pod sandboxes and support containers")
	fl.StringVar(supportFile, "support-containers", "", "support container list (container-explorer supportcontainer.yaml format) instead of the built-in one")
}

// listOptions reads --all and --support-containers.
func listOptions(all bool, supportFile string) (node.ListOptions, error) {
	opt := node.ListOptions{All: all}
	if supportFile == "" {
		return opt, nil
	}
	f, err := os.Open(supportFile)
	if err != nil {
		return opt, err
	}
	defer f.Close()
	if opt.Support, err = node.ParseSupportFilter(f); err != nil {
		return opt, fmt.Errorf("%s: %w", supportFile, err)
	}
	return opt, nil
}

func describeHidden(h node.Hidden) string {
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

func listImagesCmd(g *globalFlags) *cobra.Command {
	return listCmd(g, &cobra.Command{Use: "images", Short: "List images"},
		func(cmd *cobra.Command, n *node.Node, p *printFlags) error {
			rows, err := n.Images()
			if err != nil {
				return err
			}
			head := []string{"NAMESPACE", "NAME", "MEDIA TYPE", "DIGEST", "SIZE", "CREATED", "LABELS"}
			withRuntime := n.HasDocker() || n.HasCStorage() // as list containers: other runtimes' image stores beside containerd's
			if withRuntime {
				head = append([]string{"RUNTIME"}, head...)
			}
			return printList(cmd.OutOrStdout(), p, rows, head,
				func(i containerd.Image) []string {
					size := "" // unknown without the manifest blob on disk
					if i.Size > 0 {
						size = node.FormatBytes(i.Size)
					}
					row := []string{i.Namespace, i.Name, i.Target.MediaType, p.short(i.Target.Digest), size, when(i.CreatedAt), labels(i.Labels)}
					if withRuntime {
						row = append([]string{node.ImageRuntime(&i)}, row...)
					}
					return row
				})
		})
}

func listSnapshotsCmd(g *globalFlags) *cobra.Command {
	return listCmd(g, &cobra.Command{Use: "snapshots", Short: "List snapshots with their kind, id, parent, directory and size"},
		func(cmd *cobra.Command, n *node.Node, p *printFlags) error {
			rows, err := n.Snapshots()
			if err != nil {
				return err
			}
			return printList(cmd.OutOrStdout(), p, rows,
				[]string{"NAMESPACE", "SNAPSHOTTER", "KEY", "KIND", "ID", "PARENT", "DIRECTORY", "SIZE", "NOTE"},
				func(s containerd.Snapshot) []string {
					note := ""
					switch {
					case s.Orphan:
						note = "only in snapshotter db"
					case s.Missing:
						note = "missing from snapshotter db"
					}
					return []string{s.Namespace, s.Snapshotter, s.Key, s.Kind.String(), fmt.Sprint(s.ID), s.Parent, s.Path, node.FormatBytes(s.Size), note}
				})
		})
}

func listContentCmd(g *globalFlags) *cobra.Command {
	return listCmd(g, &cobra.Command{Use: "content", Short: "List content store blobs and whether their files are on disk"},
		func(cmd *cobra.Command, n *node.Node, p *printFlags) error {
			rows, err := n.Content()
			if err != nil {
				return err
			}
			return printList(cmd.OutOrStdout(), p, rows,
				[]string{"NAMESPACE", "DIGEST", "SIZE", "ON DISK", "CREATED", "LABELS"},
				func(b containerd.Blob) []string {
					return []string{b.Namespace, p.short(b.Digest), node.FormatBytes(b.Size), yesNo(b.OnDisk), when(b.CreatedAt), labels(b.Labels)}
				})
		})
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
