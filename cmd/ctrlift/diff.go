package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ctrlift/ctrlift/export"
	"github.com/ctrlift/ctrlift/node"
)

func newDiffCmd(g *globalFlags) *cobra.Command {
	var p printFlags
	var allowMissing bool
	var vh volumeHashFlags
	cmd := &cobra.Command{
		Use:   "diff REF",
		Short: "List what a container added, modified and deleted relative to its image, without mounting",
		Long: `List the paths a container's writable layer added, modified or deleted
relative to its image layers, with type, mode, owner, size, mtime and
sha256 (of the container's version; for deletions, of the version the
image had), then what its volumes hold, as added entries named by their
source (--volumes none leaves them out). A native snapshot is compared
with its parent snapshot. Symlinks are never followed. REF is as for
"info container".
-o json and jsonl give one record per path (README, "Records").`,
		Args: cobra.ExactArgs(1),
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
			inform(cmd, "container %s", printable(node.Describe(c)))
			out := cmd.OutOrStdout()
			opt := node.DiffOptions{Layers: node.LayerOptions{AllowMissing: allowMissing}}
			if opt.Volumes, opt.Hashes, err = vh.parse(); err != nil {
				return err
			}
			switch p.format {
			case "jsonl":
				enc := newJSON(out, false)
				return n.DiffContainer(c, opt, func(r export.Record) error { return enc.Encode(r) })
			case "json":
				rows := []export.Record{}
				if err := n.DiffContainer(c, opt, func(r export.Record) error { rows = append(rows, r); return nil }); err != nil {
					return err
				}
				return newJSON(out, true).Encode(rows)
			}
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "CHANGE\tPATH\tMODE\tUID:GID\tSIZE\tMTIME\tSHA256")
			err = n.DiffContainer(c, opt, func(r export.Record) error {
				change := r.Change
				switch {
				case r.MountPoint:
					change += " (mount point)"
				case r.MetadataOnly:
					change += " (metadata)"
				case r.DataMissing:
					change += " (data missing)"
				case strings.HasPrefix(r.Layer, "volume "):
					change += " (volume)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d:%d\t%s\t%s\t%s\n", change, printableCell(recordName(r)), recordMode(r), r.UID, r.GID, recordSize(r), whenNs(r.MtimeNs), recordSum(r, &p))
				return nil
			})
			if err != nil {
				return err
			}
			return tw.Flush()
		},
	}
	p.register(cmd, listFormats, true)
	registerAllowMissing(cmd, &allowMissing)
	vh.register(cmd)
	return cmd
}

// recordName is a path as ls -l shows it: "link -> target".
func recordName(r export.Record) string {
	if r.Target != nil {
		return r.Path + " -> " + *r.Target
	}
	return r.Path
}

// recordMode is a record's type and mode as ls -l prints them.
func recordMode(r export.Record) string {
	var perm uint32
	fmt.Sscanf(r.Mode, "%o", &perm)
	return lsMode(typeBits(r.Type) | perm)
}

func typeBits(t string) uint32 {
	switch t {
	case "file":
		return 0o100000
	case "dir":
		return 0o040000
	case "symlink":
		return 0o120000
	case "char":
		return 0o020000
	case "block":
		return 0o060000
	case "fifo":
		return 0o010000
	case "socket":
		return 0o140000
	}
	return 0
}

// recordSize is the size column: bytes, or major,minor for a device.
func recordSize(r export.Record) string {
	switch {
	case r.Rdev != "":
		return r.Rdev
	case r.Size != nil:
		return fmt.Sprint(*r.Size)
	}
	return ""
}

func recordSum(r export.Record, p *printFlags) string {
	switch {
	case r.SHA256Omitted != "":
		return "(not hashed)"
	case r.SHA256 == "":
		return ""
	}
	return p.short(r.SHA256)
}
