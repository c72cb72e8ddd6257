package main

import (
	"errors"
	"os"

	"github.com/spf13/cobra"

	"github.com/ctrlift/ctrlift/export"
	"github.com/ctrlift/ctrlift/node"
)

// globalFlags are the flags every command shares, registered once on the
// root (README, "Command grammar"): the evidence and what to read of it.
type globalFlags struct {
	inputs      []string // -i, repeatable: the disks of one node
	partition   string   // -p
	namespace   string   // -n
	runtimeRoot string   // --runtime-root
	noCache     bool     // --no-cache
	quiet       bool     // -q
}

func (g *globalFlags) register(root *cobra.Command) {
	f := root.PersistentFlags()
	f.StringArrayVarP(&g.inputs, "input", "i", nil, "the evidence, opened read-only: a disk image (raw, .zst, .gz, .xz, a GCE export .tar.gz, E01, QCOW2, VMDK, VHD, VHDX); a directory or a tar (.tar, .tgz, .tar.zst) of a node's root, /var or /var/lib/containerd; or a loose meta.db. Repeat it for the disks of one node")
	f.StringVarP(&g.partition, "partition", "p", "", "partition to read: number, GPT name, LVM VG/LV or filesystem label (default: the one named or labelled STATE, EPHEMERAL or BOTTLEROCKET-DATA, else the largest ext2/3/4 or XFS)")
	f.StringVarP(&g.namespace, "namespace", "n", "", "containerd namespace (default: every namespace)")
	f.StringVar(&g.runtimeRoot, "runtime-root", "", "the container runtime's root inside the filesystem, e.g. var/lib/containerd (default: search the known places)")
	f.BoolVar(&g.noCache, "no-cache", false, "decompress a compressed image into a temporary file removed on exit instead of the user cache directory")
	f.BoolVarP(&g.quiet, "quiet", "q", false, "no warnings, progress or summaries on stderr (errors still)")
	// The flag's old name, kept working for scripts.
	f.StringVar(&g.runtimeRoot, "containerd-root", "", "")
	f.MarkDeprecated("containerd-root", "use --runtime-root")
}

// options are the node.Options the flags say; warnings go to stderr
// through warn, decompression progress only to a terminal.
func (g *globalFlags) options(cmd *cobra.Command) node.Options {
	o := node.Options{
		Partition: g.partition, RuntimeRoot: g.runtimeRoot, Namespace: g.namespace, NoCache: g.noCache,
		Warn: func(msg string) { warn(cmd, "%s", msg) },
	}
	if f, ok := cmd.ErrOrStderr().(*os.File); ok && isTerminal(f) && !g.quiet {
		o.Progress = f
	}
	return o
}

// open opens the evidence the flags name.
func (g *globalFlags) open(cmd *cobra.Command) (*node.Node, error) {
	if len(g.inputs) == 0 {
		return nil, errors.New("no input given: use -i IMAGE")
	}
	return node.Open(g.inputs, g.options(cmd))
}

// state opens the evidence and reads the runtime state, saying on stderr
// where it was found.
func (g *globalFlags) state(cmd *cobra.Command) (*node.Node, error) {
	n, err := g.open(cmd)
	if err != nil {
		return nil, err
	}
	st, err := n.State()
	if err != nil {
		n.Close()
		return nil, err
	}
	if st.MetaDB.Path != "" {
		inform(cmd, "containerd root %s on %s; meta.db txid %d (meta page %d)", st.Root, n.RuntimeSource(), st.MetaDB.TxID, st.MetaDB.MetaPage)
	}
	if n.HasDocker() {
		inform(cmd, "docker root %s on %s", n.DockerRoot(), n.RuntimeSource())
	}
	return n, nil
}

// layerFlags is --allow-missing-layers, on every command that merges layers.
func registerAllowMissing(cmd *cobra.Command, v *bool) {
	cmd.Flags().BoolVar(v, "allow-missing-layers", false, "skip layers whose content is not on the disk (e.g. GKE image streaming) instead of failing")
}

// volumeHashFlags are --volumes and --hash, which mean the same in export
// and diff.
type volumeHashFlags struct {
	volumes string
	hashes  string
}

func (v *volumeHashFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&v.volumes, "volumes", "disk", "mounts written at their container paths: disk (kubelet volumes, image volumes and bound files whose data is on this disk), none (the root filesystem alone) or all (also hostPath mounts)")
	fl.StringVar(&v.hashes, "hash", "sha256", "digests of each file: any of sha256, md5, sha1, comma-separated (export and diff: sha256 by default)")
}

func (v *volumeHashFlags) parse() (node.VolumeMode, []export.Hash, error) {
	m, err := node.ParseVolumeMode(v.volumes)
	if err != nil {
		return 0, nil, err
	}
	h, err := export.ParseHashes(v.hashes)
	return m, h, err
}
