package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/ctrlift/ctrlift/image"
	"github.com/ctrlift/ctrlift/node"
)

func newPartitionsCmd(g *globalFlags) *cobra.Command {
	var p printFlags
	cmd := &cobra.Command{
		Use:   "partitions",
		Short: "List the partitions and filesystems of a disk image",
		Long: `List the partition table of each disk image given with -i, like fdisk -l:
layout (gpt, mbr, or none for a bare filesystem), logical sector size,
warnings (damaged primary GPT, truncated image, ...), then one line per
partition with its filesystem as found by its magic numbers. START is in
bytes. -o json gives an array of the disks with their partitions; jsonl one disk per line.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(g.inputs) == 0 {
				return errors.New("no input given: use -i IMAGE")
			}
			var disks []*image.Disk
			defer func() {
				for _, d := range disks {
					d.Close()
				}
			}()
			for _, in := range g.inputs {
				d, err := node.OpenDisk(in, g.options(cmd))
				if err != nil {
					return err
				}
				disks = append(disks, d)
			}
			w := cmd.OutOrStdout()
			switch p.format {
			case "json":
				return newJSON(w, true).Encode(disks)
			case "jsonl":
				enc := newJSON(w, false)
				for _, d := range disks {
					if err := enc.Encode(d); err != nil {
						return err
					}
				}
				return nil
			}
			for i, d := range disks {
				if i > 0 {
					fmt.Fprintln(w)
				}
				if err := writePartitionTable(w, d); err != nil {
					return err
				}
			}
			return nil
		},
	}
	p.register(cmd, listFormats, false)
	return cmd
}

func writePartitionTable(w io.Writer, d *image.Disk) error {
	fmt.Fprintf(w, "Disk %s: %s, %d bytes\n", d.Path, node.FormatBytes(d.Size), d.Size)
	if d.Compression != "" {
		where := d.RawPath
		if where == "" {
			where = "a temporary file"
		}
		fmt.Fprintf(w, "Decompressed (%s) into %s\n", d.Compression, where)
	}
	fmt.Fprintf(w, "Layout: %s, sector size %d bytes", d.Layout, d.SectorSize)
	if d.DiskGUID != "" {
		fmt.Fprintf(w, ", disk identifier %s", d.DiskGUID)
	}
	fmt.Fprintln(w)
	for _, warn := range d.Warnings {
		fmt.Fprintf(w, "Warning: %s\n", warn)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NUMBER\tNAME\tTYPE\tSTART\tSIZE\tFS\tLABEL\tUUID")
	for _, p := range d.Partitions {
		size := node.FormatBytes(p.Size)
		if p.Truncated {
			size += " (truncated)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", p.Number, partCell(p.Name), partCell(p.Type), p.Start, size, partCell(p.FS.Type), partCell(p.FS.Label), partCell(p.FS.UUID))
	}
	return tw.Flush()
}

// partCell makes an on-disk string safe for one table cell: "-" when empty,
// quoted when it holds spaces, tabs or unprintable characters.
func partCell(s string) string {
	if s == "" {
		return "-"
	}
	for _, r := range s {
		if !unicode.IsPrint(r) || r == ' ' || r == '"' {
			if s == strings.TrimSpace(s) && !strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) || r == '"' }) {
				return s // inner spaces only, as in "Linux filesystem"
			}
			return strconv.Quote(s)
		}
	}
	return s
}
