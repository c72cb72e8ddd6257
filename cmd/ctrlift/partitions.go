package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/ctrlift/ctrlift/image"
)

func newPartitionsCmd() *cobra.Command {
	var src sourceFlags
	var output string
	cmd := &cobra.Command{
		Use:   "partitions -i IMAGE [-o table|json]",
		Short: "List the partitions and filesystems of a disk image",
		Long: `List the partition table of a disk image like fdisk -l: layout (gpt, mbr, or none
for a bare filesystem), logical sector size, warnings (damaged primary GPT, truncated
image, ...), then one line per partition with its filesystem as found by its magic
numbers. START and SIZE are in bytes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "table" && output != "json" {
				return fmt.Errorf("unknown output format %q: use table or json", output)
			}
			d, err := src.openDisk(cmd)
			if err != nil {
				return err
			}
			defer d.Close()
			w := cmd.OutOrStdout()
			if output == "json" {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(d)
			}
			return writePartitionTable(w, d)
		},
	}
	src.registerImage(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

func writePartitionTable(w io.Writer, d *image.Disk) error {
	fmt.Fprintf(w, "Disk %s: %s, %d bytes\n", d.Path, partIEC(d.Size), d.Size)
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
		size := partIEC(p.Size)
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

// partIEC formats a byte count with binary units, as fdisk does.
func partIEC(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
