package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ctrlift/ctrlift/export"
	"github.com/ctrlift/ctrlift/image/ext4"
	"github.com/ctrlift/ctrlift/node"
	"github.com/ctrlift/ctrlift/vfs"
)

// The fs commands are the mountless ls, cat and stat on one partition, a
// directory or a tar of a tree.

func newFSCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fs",
		Short: "Read a partition's filesystem (or a directory or tar input) without mounting it: ls, cat, stat",
	}
	cmd.AddCommand(fsLsCmd(g), fsCatCmd(g), fsStatCmd(g))
	return cmd
}

func fsLsCmd(g *globalFlags) *cobra.Command {
	var p printFlags
	var long, recursive bool
	cmd := &cobra.Command{
		Use:   "ls [PATH]",
		Short: "List a directory of the partition (symlinks are listed, never followed)",
		Long: `List a directory of the partition: names, or with -l the inode, mode,
links, owner, size (major,minor for a device), mtime in ns and a
symlink's target, as ls -l prints them. -o json and jsonl give one
record per entry (README, "Records").`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := g.open(cmd)
			if err != nil {
				return err
			}
			defer n.Close()
			tree, err := n.Tree()
			if err != nil {
				return err
			}
			start := "."
			if len(args) == 1 {
				start = node.CleanPath(args[0])
			}
			in, err := tree.Lookup(start)
			if err != nil {
				return fmt.Errorf("%s: %w", start, err)
			}
			out := cmd.OutOrStdout()
			tw := tabwriter.NewWriter(out, 0, 0, 1, ' ', 0)
			enc := newJSON(out, false)
			var all []export.Record
			emit := func(p0 string, in *vfs.Inode) error {
				r, err := export.NewRecord(p0, in, tree)
				if err != nil {
					return fmt.Errorf("%s: %w", p0, err)
				}
				switch p.format {
				case "json":
					all = append(all, r)
				case "jsonl":
					return enc.Encode(r)
				default:
					if !long {
						fmt.Fprintln(tw, printableCell(p0))
						return nil
					}
					fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%d\t%s\t%s\t%s\n", in.Ino, lsMode(in.Mode), in.Nlink, in.Uid, in.Gid, sizeCell(in), whenNs(r.MtimeNs), printableCell(recordName(r)))
				}
				return nil
			}
			var walk func(dir string, d *vfs.Inode, depth int) error
			walk = func(dir string, d *vfs.Inode, depth int) error {
				if depth > 4096 {
					return fmt.Errorf("%s: directory nesting deeper than 4096 (loop in a corrupt filesystem?)", dir)
				}
				ents, err := tree.ReadDir(d)
				if err != nil {
					return fmt.Errorf("%s: %w", dir, err)
				}
				slices.SortFunc(ents, func(a, b vfs.DirEntry) int { return strings.Compare(a.Name, b.Name) })
				var subdirs []string
				var subIn []*vfs.Inode
				for _, e := range ents {
					in, err := tree.LookupAt(d, e.Name)
					if err != nil {
						return fmt.Errorf("%s/%s: %w", dir, e.Name, err)
					}
					if err := emit(path.Join("/", dir, e.Name), in); err != nil {
						return err
					}
					if recursive && in.IsDir() {
						subdirs = append(subdirs, path.Join(dir, e.Name))
						subIn = append(subIn, in)
					}
				}
				for i, sd := range subdirs {
					if err := walk(sd, subIn[i], depth+1); err != nil {
						return err
					}
				}
				return nil
			}
			if in.IsDir() {
				err = walk(start, in, 0)
			} else {
				err = emit(path.Join("/", start), in)
			}
			if err != nil {
				return err
			}
			if p.format == "json" {
				if all == nil {
					all = []export.Record{}
				}
				return newJSON(out, true).Encode(all)
			}
			return tw.Flush()
		},
	}
	p.register(cmd, listFormats, false)
	fl := cmd.Flags()
	fl.BoolVarP(&long, "long", "l", false, "long listing: inode, mode, links, uid, gid, size, mtime (ns), link target")
	fl.BoolVarP(&recursive, "recursive", "R", false, "list subdirectories recursively")
	return cmd
}

func fsCatCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "cat PATH",
		Short: "Write a file of the partition to stdout (symlinks resolve inside the image only)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := g.open(cmd)
			if err != nil {
				return err
			}
			defer n.Close()
			files, err := n.Files()
			if err != nil {
				return err
			}
			f, err := files.Open(node.CleanPath(args[0]))
			if err != nil {
				return err
			}
			defer f.Close()
			st, err := f.Stat()
			if err != nil {
				return err
			}
			if !st.Mode().IsRegular() {
				return fmt.Errorf("%s: not a regular file (%s)", args[0], st.Mode().Type())
			}
			// An overlayfs metadata-only copy-up holds no data of its own:
			// its bytes here are holes, not what the container read.
			if x, ok := st.Sys().(interface{ Xattr(string) ([]byte, bool) }); ok {
				if _, meta := x.Xattr("trusted.overlay.metacopy"); meta {
					from := "the same path of a lower layer"
					if r, ok := x.Xattr("trusted.overlay.redirect"); ok {
						from = strconv.Quote(string(r)) + " in a lower layer"
					}
					return fmt.Errorf("%s: an overlayfs metadata-only copy-up: its data is %s, not in this file; export the container (or diff it) to read the data the container saw", args[0], from)
				}
			}
			copied, err := io.CopyBuffer(cmd.OutOrStdout(), f, make([]byte, 1<<20))
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			if copied != st.Size() {
				return fmt.Errorf("%s: wrote %d of %d bytes", args[0], copied, st.Size())
			}
			return nil
		},
	}
}

func fsStatCmd(g *globalFlags) *cobra.Command {
	var p printFlags
	cmd := &cobra.Command{
		Use:   "stat PATH",
		Short: "Show every inode field of a path (a final symlink is described, not followed)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := g.open(cmd)
			if err != nil {
				return err
			}
			defer n.Close()
			tree, err := n.Tree()
			if err != nil {
				return err
			}
			p0 := node.CleanPath(args[0])
			in, err := tree.Lookup(p0)
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("%s: no such file or directory", args[0])
			}
			if err != nil {
				return err
			}
			r, err := export.NewRecord(path.Join("/", p0), in, tree)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if p.format != "table" {
				return printOne(out, &p, r)
			}
			tw := tabwriter.NewWriter(out, 0, 0, 1, ' ', 0)
			row := func(k string, v any) { fmt.Fprintf(tw, "%s:\t%v\n", k, v) }
			row("Path", printableCell(r.Path))
			row("Inode", in.Ino)
			row("Type", r.Type)
			row("Mode", fmt.Sprintf("%s (%s)", r.Mode, lsMode(in.Mode)))
			row("Uid/Gid", fmt.Sprintf("%d/%d", r.UID, r.GID))
			row("Size", in.Size)
			row("Links", in.Nlink)
			row("Blocks (512 B)", in.Blocks)
			row("Flags", fmt.Sprintf("0x%x", in.Flags))
			if e, ok := in.Sys.(*ext4.Inode); ok {
				row("Generation", e.Generation)
			}
			if r.Rdev != "" {
				row("Device", r.Rdev)
			}
			if r.Target != nil {
				row("Target", strconv.Quote(*r.Target))
			}
			row("Access", whenNs(r.AtimeNs))
			row("Modify", whenNs(r.MtimeNs))
			row("Change", whenNs(r.CtimeNs))
			if r.CrtimeNs != nil {
				row("Birth", whenNs(*r.CrtimeNs))
			}
			for _, x := range in.Xattrs {
				row("Xattr "+x.Name, strconv.Quote(string(x.Value)))
			}
			return tw.Flush()
		},
	}
	p.register(cmd, []string{"table", "json", "jsonl"}, false)
	return cmd
}

// sizeCell is ls -l's size column: bytes, or major,minor for a device.
func sizeCell(in *vfs.Inode) string {
	if in.IsCharDev() || in.IsBlockDev() {
		return fmt.Sprintf("%d,%d", in.RdevMajor, in.RdevMinor)
	}
	return strconv.FormatInt(in.Size, 10)
}
