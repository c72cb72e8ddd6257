package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ctrlift/ctrlift/export"
	"github.com/ctrlift/ctrlift/layers"
)

// diffRow is one changed path, for table and JSON output.
type diffRow struct {
	Change  string `json:"change"` // added, modified, deleted
	Path    string `json:"path"`
	Type    string `json:"type"`
	Mode    string `json:"mode"`
	UID     uint32 `json:"uid"`
	GID     uint32 `json:"gid"`
	Size    int64  `json:"size"`
	Mtime   string `json:"mtime"`
	MtimeNs int64  `json:"mtime_ns"`
	SHA256  string `json:"sha256,omitempty"`
	// SHA256Omitted says why a file has no digest: a sparse file past the
	// hashing budget (see export.Digester).
	SHA256Omitted string  `json:"sha256_omitted,omitempty"`
	Target        *string `json:"target,omitempty"`
	Layer         string  `json:"layer"`
}

func newDiffCmd() *cobra.Command {
	var src sourceFlags
	var cf ctrdFlags
	var allowMissing bool
	cmd := &cobra.Command{
		Use:   "diff REF",
		Short: "List what a container added, modified and deleted relative to its image, without mounting",
		Long: `List the paths a container's writable layer added, modified or deleted
relative to its image layers, with type, size, mtime and sha256 (of the
container's version; for deletions, of the version the image had). Symlinks
are never followed. REF is as for "info container".`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(cf.output, "table", "json", "jsonl"); err != nil {
				return err
			}
			st, fsys, done, err := loadStateFS(cmd, &src, &cf)
			if err != nil {
				return err
			}
			defer done()
			c, err := st.ResolveIn(cf.namespace, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "container %s\n", printable(c.Describe()))
			if c.LayersError != "" && len(c.Layers) == 0 {
				// As export says it: why the chain is empty.
				return fmt.Errorf("container %s: snapshot chain: %s", c.ID, c.LayersError)
			}
			ls, err := toLayers(fsys, c.Layers, allowMissing)
			if err != nil {
				return fmt.Errorf("container %s: %w", c.ID, err)
			}
			var lower *layers.Merged
			if len(ls) > 1 {
				if lower, err = layers.New(ls[1:], layers.Options{AllowMissing: allowMissing}); err != nil {
					return err
				}
			}
			changes, err := layers.Diff(ls[0], lower, layers.Options{})
			if err != nil {
				return err
			}
			rows := make([]diffRow, 0, len(changes))
			dg := export.NewDigester()
			for _, ch := range changes {
				r, err := toDiffRow(ch, dg)
				if err != nil {
					return err
				}
				rows = append(rows, r)
			}
			out := cmd.OutOrStdout()
			switch cf.output {
			case "json":
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				enc.SetEscapeHTML(false)
				return enc.Encode(rows)
			case "jsonl":
				enc := json.NewEncoder(out)
				enc.SetEscapeHTML(false)
				for _, r := range rows {
					if err := enc.Encode(r); err != nil {
						return err
					}
				}
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "CHANGE\tPATH\tTYPE\tMODE\tUID:GID\tSIZE\tMTIME\tSHA256")
			for _, r := range rows {
				p := r.Path
				if r.Target != nil {
					p += " -> " + *r.Target
				}
				sum := r.SHA256
				if len(sum) > 16 {
					sum = sum[:16]
				}
				if r.SHA256Omitted != "" {
					sum = "(not hashed)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d:%d\t%d\t%s\t%s\n", r.Change, printableCell(p), r.Type, r.Mode, r.UID, r.GID, r.Size, r.Mtime, sum)
			}
			return tw.Flush()
		},
	}
	src.register(cmd)
	cf.register(cmd)
	cmd.Flags().BoolVar(&allowMissing, "allow-missing-layers", false, "skip image layers whose content is not on disk")
	return cmd
}

func toDiffRow(ch layers.Change, dg *export.Digester) (diffRow, error) {
	in := ch.Entry.Inode
	r := diffRow{
		Change: ch.Kind.String(), Path: ch.Path, Type: typeName(in), Mode: fmt.Sprintf("%04o", in.Mode&0o7777),
		UID: in.Uid, GID: in.Gid, Size: in.Size, Mtime: rfc3339(in.Mtime), MtimeNs: in.Mtime.UnixNano(),
		Layer: ch.Entry.LayerName,
	}
	switch {
	case in.IsRegular():
		var err error
		r.SHA256, r.SHA256Omitted, err = dg.Sum(ch.Entry.FS(), in)
		if err != nil {
			return r, fmt.Errorf("%s: %w", ch.Path, err)
		}
	case in.IsSymlink():
		t, err := ch.Entry.LinkTarget()
		if err != nil {
			return r, fmt.Errorf("%s: %w", ch.Path, err)
		}
		r.Target = &t
	}
	return r, nil
}
