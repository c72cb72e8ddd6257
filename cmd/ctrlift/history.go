package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ctrlift/ctrlift/node"
)

func newHistoryCmd(g *globalFlags) *cobra.Command {
	var p printFlags
	var allowMissing bool
	cmd := &cobra.Command{
		Use:   "history REF PATH",
		Short: "Show every layer of a container that holds, deletes or hides a path, with the image history that made it",
		Long: `Show, top (writable) layer first, every layer of the container's snapshot
chain that has something at PATH or hides it:

  holds          the layer has PATH and the container sees it (a directory:
                 one of the layers its listing merges)
  hidden-below   the layer has PATH, but a layer above hides it (a newer
                 copy, a whiteout, an opaque directory)
  whiteout       the layer deletes PATH, or a directory on the way to it
  opaque-hides   a directory on the way to PATH is opaque in the layer
                 (deleted and made again): the layers below are not seen
  nondir-hides   the layer has a file or symlink where the layers below
                 have a directory on the way to PATH

Each row is the entry in that layer (sha256 of files), its snapshot and,
when the image's manifest and config are in the content store, the image
layer it was unpacked from (diff id, blob digest and size) and the image
history entry that made it (created_by). The writable layer has none.
REF is as for "info container". -o json and jsonl give one record per
row (README, "Records"). To go the other way, from a file of the
partition to the containers and images that use it: "info path".`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := g.state(cmd)
			if err != nil {
				return err
			}
			defer n.Close()
			c, err := n.Resolve(args[0])
			if err != nil {
				return err
			}
			inform(cmd, "container %s, image %s", printable(node.Describe(c)), printable(c.Image))
			hits, err := n.HistoryContainer(c, args[1], node.LayerOptions{AllowMissing: allowMissing})
			if err != nil {
				return err
			}
			if len(hits) == 0 {
				return fmt.Errorf("no layer of container %s has %s or hides it", node.ShortID(c.ID), args[1])
			}
			return printList(cmd.OutOrStdout(), &p, hits,
				[]string{"WHAT", "LAYER", "DIFF ID", "PATH", "MODE", "UID:GID", "SIZE", "MTIME", "SHA256", "CREATED BY"},
				func(h node.LayerHit) []string {
					return []string{h.What, h.Layer, p.short(h.DiffID), recordName(h.Record), recordMode(h.Record), fmt.Sprintf("%d:%d", h.UID, h.GID),
						recordSize(h.Record), whenNs(h.MtimeNs), recordSum(h.Record, &p), h.CreatedBy}
				})
		},
	}
	p.register(cmd, listFormats, true)
	registerAllowMissing(cmd, &allowMissing)
	return cmd
}

func infoPathCmd(g *globalFlags) *cobra.Command {
	var p printFlags
	cmd := &cobra.Command{
		Use:   "path PATH",
		Short: "Print which snapshot a path of the partition is in, and the containers and images that use it, as JSON",
		Long: `Print, for a path of the partition inside a snapshot's layer directory
(e.g. var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/10/fs/tmp/x,
as "fs ls" or a timeline of the partition shows it), the snapshot (its
snapshotter, id, key and kind), the path inside the layer and so inside
the containers and images, the entry's record, and every container (pod
sandboxes and support containers too) and image of the selected
namespaces whose snapshot chain has that layer, with its index in the
chain and what the layer does to the path there, as "history" says
(holds: what the container sees).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := g.state(cmd)
			if err != nil {
				return err
			}
			defer n.Close()
			info, err := n.LocatePath(args[0])
			if err != nil {
				return err
			}
			return printOne(cmd.OutOrStdout(), &p, info)
		},
	}
	p.register(cmd, []string{"json", "jsonl"}, false)
	return cmd
}
