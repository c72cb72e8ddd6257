package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ctrlift/ctrlift/image/ext4"
	"github.com/ctrlift/ctrlift/vfs"
)

// The fs commands are the mountless ls, cat and stat on one partition, a
// directory or a tar of a tree.

func newFSCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fs",
		Short: "Read a partition's filesystem (or a directory or tar input) without mounting it: ls, cat, stat",
	}
	cmd.AddCommand(fsLsCmd(), fsCatCmd(), fsStatCmd())
	return cmd
}

// inodeJSON is every field of an inode, for -o json.
type inodeJSON struct {
	Path       string      `json:"path"`
	Ino        uint64      `json:"ino"`
	Type       string      `json:"type"`
	Mode       string      `json:"mode"`
	UID        uint32      `json:"uid"`
	GID        uint32      `json:"gid"`
	Size       int64       `json:"size"`
	Nlink      uint32      `json:"nlink"`
	Flags      string      `json:"flags"`
	Blocks     int64       `json:"blocks_512"`
	Sparse     bool        `json:"sparse,omitempty"`
	Generation uint32      `json:"generation,omitempty"` // ext4
	Atime      string      `json:"atime"`
	Mtime      string      `json:"mtime"`
	Ctime      string      `json:"ctime"`
	Crtime     string      `json:"crtime,omitempty"`
	AtimeNs    int64       `json:"atime_ns"`
	MtimeNs    int64       `json:"mtime_ns"`
	CtimeNs    int64       `json:"ctime_ns"`
	CrtimeNs   *int64      `json:"crtime_ns,omitempty"`
	Rdev       string      `json:"rdev,omitempty"`
	Target     *string     `json:"target,omitempty"`
	Xattrs     []xattrJSON `json:"xattrs,omitempty"`
}

type xattrJSON struct {
	Name  string `json:"name"`
	Value string `json:"value_b64"`
}

// typed is an inode of any source (ext4.Inode, vfs.Inode).
type typed interface {
	IsRegular() bool
	IsDir() bool
	IsSymlink() bool
	IsCharDev() bool
	IsBlockDev() bool
	IsFIFO() bool
	IsSocket() bool
}

func typeName(in typed) string {
	switch {
	case in.IsRegular():
		return "file"
	case in.IsDir():
		return "dir"
	case in.IsSymlink():
		return "symlink"
	case in.IsCharDev():
		return "char"
	case in.IsBlockDev():
		return "block"
	case in.IsFIFO():
		return "fifo"
	case in.IsSocket():
		return "socket"
	}
	return "unknown"
}

func rfc3339(t time.Time) string { return t.Format(time.RFC3339Nano) }

func toInodeJSON(fsys vfs.FS, p string, in *vfs.Inode) inodeJSON {
	j := inodeJSON{
		Path: p, Ino: in.Ino, Type: typeName(in), Mode: fmt.Sprintf("%04o", in.Mode&0o7777),
		UID: in.Uid, GID: in.Gid, Size: in.Size, Nlink: in.Nlink, Flags: fmt.Sprintf("0x%x", in.Flags),
		Blocks: in.Blocks, Sparse: in.Sparse(),
		Atime: rfc3339(in.Atime), Mtime: rfc3339(in.Mtime), Ctime: rfc3339(in.Ctime),
		AtimeNs: in.Atime.UnixNano(), MtimeNs: in.Mtime.UnixNano(), CtimeNs: in.Ctime.UnixNano(),
	}
	if e, ok := in.Sys.(*ext4.Inode); ok {
		j.Generation, j.Blocks = e.Generation, e.Blocks
	}
	if in.HasCrtime {
		j.Crtime = rfc3339(in.Crtime)
		ns := in.Crtime.UnixNano()
		j.CrtimeNs = &ns
	}
	if in.IsCharDev() || in.IsBlockDev() {
		j.Rdev = fmt.Sprintf("%d:%d", in.RdevMajor, in.RdevMinor)
	}
	if in.IsSymlink() {
		if t, err := fsys.LinkTarget(in); err == nil {
			j.Target = &t
		}
	}
	for _, x := range in.Xattrs {
		j.Xattrs = append(j.Xattrs, xattrJSON{Name: x.Name, Value: base64.StdEncoding.EncodeToString(x.Value)})
	}
	return j
}

// cleanArg turns a user path ("/var/lib", "var/lib/", ".") into an fs path.
func cleanArg(p string) string {
	p = strings.Trim(path.Clean("/"+p), "/")
	if p == "" {
		return "."
	}
	return p
}

func checkOutput(o string, allowed ...string) error {
	for _, a := range allowed {
		if o == a {
			return nil
		}
	}
	return fmt.Errorf("unknown output format %q (want %s)", o, strings.Join(allowed, ", "))
}

func fsLsCmd() *cobra.Command {
	var src sourceFlags
	var long, recursive bool
	var output string
	cmd := &cobra.Command{
		Use:   "ls [PATH]",
		Short: "List a directory of the partition (symlinks are listed, never followed)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, "table", "json", "jsonl"); err != nil {
				return err
			}
			o, err := src.open(cmd)
			if err != nil {
				return err
			}
			defer o.Close()
			if o.Tree == nil {
				return fmt.Errorf("%s: a database alone has no files to show", o.Describe())
			}
			start := "."
			if len(args) == 1 {
				start = cleanArg(args[0])
			}
			in, err := o.Tree.Lookup(start)
			if err != nil {
				return fmt.Errorf("%s: %w", start, err)
			}
			out := cmd.OutOrStdout()
			tw := tabwriter.NewWriter(out, 0, 0, 1, ' ', 0)
			enc := json.NewEncoder(out)
			enc.SetEscapeHTML(false)
			var all []inodeJSON
			emit := func(p string, in *vfs.Inode) error {
				switch output {
				case "json":
					all = append(all, toInodeJSON(o.Tree, p, in))
				case "jsonl":
					return enc.Encode(toInodeJSON(o.Tree, p, in))
				default:
					if !long {
						fmt.Fprintln(tw, printableCell(p))
						return nil
					}
					name := p
					if in.IsSymlink() {
						if t, err := o.Tree.LinkTarget(in); err == nil {
							name += " -> " + t
						}
					}
					size := strconv.FormatInt(in.Size, 10)
					if in.IsCharDev() || in.IsBlockDev() {
						size = fmt.Sprintf("%d,%d", in.RdevMajor, in.RdevMinor)
					}
					fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%d\t%s\t%s\t%s\n", in.Ino, in.FileMode(), in.Nlink, in.Uid, in.Gid, size, in.Mtime.Format("2006-01-02 15:04:05.000000000"), printableCell(name))
				}
				return nil
			}
			var walk func(dir string, d *vfs.Inode, depth int) error
			walk = func(dir string, d *vfs.Inode, depth int) error {
				if depth > 4096 {
					return fmt.Errorf("%s: directory nesting deeper than 4096 (loop in a corrupt filesystem?)", dir)
				}
				ents, err := o.Tree.ReadDir(d)
				if err != nil {
					return fmt.Errorf("%s: %w", dir, err)
				}
				slices.SortFunc(ents, func(a, b vfs.DirEntry) int { return strings.Compare(a.Name, b.Name) })
				var subdirs []string
				var subIn []*vfs.Inode
				for _, e := range ents {
					in, err := o.Tree.LookupAt(d, e.Name)
					if err != nil {
						return fmt.Errorf("%s/%s: %w", dir, e.Name, err)
					}
					p := path.Join("/", dir, e.Name)
					if err := emit(p, in); err != nil {
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
			if output == "json" {
				enc.SetIndent("", "  ")
				if all == nil {
					all = []inodeJSON{}
				}
				return enc.Encode(all)
			}
			return tw.Flush()
		},
	}
	src.register(cmd)
	fl := cmd.Flags()
	fl.BoolVarP(&long, "long", "l", false, "long listing: inode, mode, links, uid, gid, size, mtime (ns)")
	fl.BoolVarP(&recursive, "recursive", "R", false, "list subdirectories recursively")
	fl.StringVarP(&output, "output", "o", "table", "output format: table, json or jsonl")
	return cmd
}

func fsCatCmd() *cobra.Command {
	var src sourceFlags
	cmd := &cobra.Command{
		Use:   "cat PATH",
		Short: "Write a file of the partition to stdout (symlinks resolve inside the image only)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := src.open(cmd)
			if err != nil {
				return err
			}
			defer o.Close()
			if o.Tree == nil {
				return fmt.Errorf("%s: a database alone has no files to show", o.Describe())
			}
			p := cleanArg(args[0])
			f, err := o.Files.Open(p)
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
			n, err := io.CopyBuffer(cmd.OutOrStdout(), f, make([]byte, 1<<20))
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			if n != st.Size() {
				return fmt.Errorf("%s: wrote %d of %d bytes", args[0], n, st.Size())
			}
			return nil
		},
	}
	src.register(cmd)
	return cmd
}

func fsStatCmd() *cobra.Command {
	var src sourceFlags
	var output string
	cmd := &cobra.Command{
		Use:   "stat PATH",
		Short: "Show every inode field of a path (a final symlink is described, not followed)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, "table", "json"); err != nil {
				return err
			}
			o, err := src.open(cmd)
			if err != nil {
				return err
			}
			defer o.Close()
			if o.Tree == nil {
				return fmt.Errorf("%s: a database alone has no files to show", o.Describe())
			}
			p := cleanArg(args[0])
			in, err := o.Tree.Lookup(p)
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("%s: no such file or directory", args[0])
			}
			if err != nil {
				return err
			}
			j := toInodeJSON(o.Tree, path.Join("/", p), in)
			out := cmd.OutOrStdout()
			if output == "json" {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				enc.SetEscapeHTML(false)
				return enc.Encode(j)
			}
			tw := tabwriter.NewWriter(out, 0, 0, 1, ' ', 0)
			row := func(k string, v any) { fmt.Fprintf(tw, "%s:\t%v\n", k, v) }
			row("Path", j.Path)
			row("Inode", j.Ino)
			row("Type", j.Type)
			row("Mode", fmt.Sprintf("%s (%s)", j.Mode, in.FileMode()))
			row("Uid/Gid", fmt.Sprintf("%d/%d", j.UID, j.GID))
			row("Size", j.Size)
			row("Links", j.Nlink)
			row("Blocks (512 B)", j.Blocks)
			row("Flags", j.Flags)
			row("Generation", j.Generation)
			if j.Rdev != "" {
				row("Device", j.Rdev)
			}
			if j.Target != nil {
				row("Target", strconv.Quote(*j.Target))
			}
			row("Access", j.Atime)
			row("Modify", j.Mtime)
			row("Change", j.Ctime)
			if j.Crtime != "" {
				row("Birth", j.Crtime)
			}
			for _, x := range in.Xattrs {
				row("Xattr "+x.Name, strconv.Quote(string(x.Value)))
			}
			return tw.Flush()
		},
	}
	src.register(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}
