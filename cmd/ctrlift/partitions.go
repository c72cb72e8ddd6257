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
	"github.com/ctrlift/ctrlift/image/ewf"
	"github.com/ctrlift/ctrlift/image/vdisk"
	"github.com/ctrlift/ctrlift/node"
)

func newPartitionsCmd(g *globalFlags) *cobra.Command {
	var p printFlags
	var verify bool
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
			image.AssembleVolumes(disks) // a volume group may span the inputs
			if verify {
				return verifyDisks(cmd, &p, disks)
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
	cmd.Flags().BoolVar(&verify, "verify", false, "read each whole disk and compare its MD5 and SHA-1 with those the evidence file stored at acquisition (E01)")
	return cmd
}

func writePartitionTable(w io.Writer, d *image.Disk) error {
	fmt.Fprintf(w, "Disk %s: %s, %d bytes\n", d.Path, node.FormatBytes(d.Size), d.Size)
	if d.Format != "" && d.Format != image.FormatRaw {
		fmt.Fprintf(w, "Format: %s", d.Format)
		if len(d.Files) > 1 {
			fmt.Fprintf(w, ", %d files", len(d.Files))
		}
		fmt.Fprintln(w)
		writeMetadata(w, d.Metadata)
	}
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
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range d.Partitions {
		if p.Error != "" {
			fmt.Fprintf(w, "Partition %d: %s\n", p.Number, printableCell(p.Error))
		}
	}
	for _, g := range d.VolumeGroups {
		writeVolumeGroup(w, g)
	}
	return nil
}

// writeVolumeGroup prints a volume group below the disk that lists it, as
// a tree: its members (the partitions it is built from, on any input),
// then its logical volumes with their filesystems.
func writeVolumeGroup(w io.Writer, g *image.VolumeGroup) {
	fmt.Fprintf(w, "\nVolume group %s (%s, seqno %d, extent size %s, UUID %s)\n", partCell(g.Name), g.Kind, g.Seqno, node.FormatBytes(g.ExtentSize), partCell(g.UUID))
	for _, warn := range g.Warnings {
		fmt.Fprintf(w, "Warning: %s\n", printableCell(warn))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	rows := len(g.Members) + len(g.Volumes)
	branch := func() string {
		rows--
		if rows == 0 {
			return "└─"
		}
		return "├─"
	}
	for _, m := range g.Members {
		where := fmt.Sprintf("%s partition %d", m.Disk, m.Partition)
		if m.Missing {
			where = "missing (last seen as " + m.Device + "): give its disk with -i"
		}
		fmt.Fprintf(tw, "%s PV %s\t%s\t%s\n", branch(), partCell(m.Name), partCell(m.UUID), printableCell(where))
	}
	for _, v := range g.Volumes {
		fs := partCell(v.FS.Type)
		if v.FS.Label != "" {
			fs += " label " + partCell(v.FS.Label)
		}
		if v.FS.UUID != "" {
			fs += " UUID " + partCell(v.FS.UUID)
		}
		if v.Error != "" {
			fs = "not read: " + printableCell(v.Error)
		}
		fmt.Fprintf(tw, "%s LV %s\t%s\t%s\t%s\n", branch(), partCell(v.Name), partCell(v.Type), node.FormatBytes(v.Size), fs)
	}
	tw.Flush()
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

// writeMetadata prints what an evidence container says about the
// acquisition, above the partition table.
func writeMetadata(w io.Writer, meta any) {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	defer tw.Flush()
	if v, ok := meta.(vdisk.Info); ok {
		row := func(k, v string) {
			if v != "" {
				fmt.Fprintf(tw, "  %s:\t%s\n", k, printableCell(v))
			}
		}
		row("Subformat", v.Subformat)
		if v.ClusterSize > 0 {
			row("Cluster size", node.FormatBytes(v.ClusterSize))
		}
		row("Compression", v.Compression)
		row("Backing file", v.Backing)
		for _, f := range v.Files {
			row("Extent", f)
		}
		return
	}
	info, ok := meta.(ewf.Info)
	if !ok {
		return
	}
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "  %s:\t%s\n", k, printableCell(v))
		}
	}
	row("Case number", info.CaseNumber)
	row("Evidence number", info.EvidenceNumber)
	row("Examiner", info.Examiner)
	row("Description", info.Description)
	row("Notes", info.Notes)
	acquired := info.AcquisitionDateText
	if !info.AcquisitionDate.IsZero() {
		acquired = when(info.AcquisitionDate)
	}
	row("Acquired", acquired)
	row("Acquiry software", strings.TrimSpace(info.AcquirySoftware+" "+info.AcquirySoftwareVersion))
	row("Media", fmt.Sprintf("%s, %d sectors of %d bytes", info.MediaType, info.SectorCount, info.BytesPerSector))
	row("Stored MD5", info.MD5)
	row("Stored SHA1", info.SHA1)
}

// verifyDisks is partitions --verify: each disk read whole and its
// hashes compared with the stored ones; a mismatch is an error.
func verifyDisks(cmd *cobra.Command, p *printFlags, disks []*image.Disk) error {
	var bad []string
	for _, d := range disks {
		var progress func(done, total int64)
		if !quiet(cmd) && isTerminal(cmd.ErrOrStderr()) {
			progress = func(done, total int64) {
				fmt.Fprintf(cmd.ErrOrStderr(), "\rverifying %s: %s of %s", d.Path, node.FormatBytes(done), node.FormatBytes(total))
			}
		}
		r, err := d.Verify(cmd.Context(), progress)
		if progress != nil {
			fmt.Fprint(cmd.ErrOrStderr(), "\r\033[K")
		}
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if p.format == "table" {
			fmt.Fprintf(out, "%s: %s of media\n  MD5  %s (stored %s: %s)\n  SHA1 %s (stored %s: %s)\n", d.Path, node.FormatBytes(r.Bytes),
				r.MD5, orNone(r.StoredMD5), r.MD5Check, r.SHA1, orNone(r.StoredSHA1), r.SHA1Check)
		} else if err := newJSON(out, p.format == "json").Encode(struct {
			Path string `json:"path"`
			*image.VerifyResult
		}{d.Path, r}); err != nil {
			return err
		}
		if !r.OK {
			bad = append(bad, d.Path)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("verification failed: %s", strings.Join(bad, ", "))
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
