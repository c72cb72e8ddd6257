package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ctrlift/ctrlift/node"
)

func newFindCmd(g *globalFlags) *cobra.Command {
	var p printFlags
	var all, allowMissing bool
	var supportFile string
	var sizes []string
	var newer, older string
	var opt node.FindOptions
	cmd := &cobra.Command{
		Use:   "find [REF...]",
		Short: "Search every container (or image) for files by path, name, digest, size, time, setuid, capabilities",
		Long: `Search the merged filesystem of every container that "list containers"
shows with the same flags (or the containers REF names, pod:K8SNS/POD too;
or with --images the root filesystem of every image, each once) and print
each entry that matches, with its container, pod and image and the layer
it comes from. Criteria combine with AND; the values of one (several
--type, several digests, --sha256 and --md5 together) with OR:

  --path GLOB      the whole path: * and ? within a component, ** across
                   components, [...] a class; without a leading / it
                   matches at any depth (uploads/*.php)
  --name REGEX     the base name (RE2)
  --sha256, --md5  digests of regular files, repeated or comma-separated
  --size [+|-]N    regular files larger than N (+N), smaller than N (-N)
                   or of exactly N bytes; k, M, G, T are powers of 1024;
                   repeat it for a range (--size +1M --size -10M)
  --newer, --older TIME: at or after, before (RFC 3339 or a date, UTC), of
                   --time-field mtime (default), ctime, atime or crtime
  --setid, --caps, --exec: setuid or setgid files, file capabilities
                   (security.capability), files with an execute bit

A file is read at most once however many containers share its layer.
-o json and jsonl give one record per entry (README, "Records") with the
container's namespace, container_id, pod, container_name and image (with
--images: image and chain_id).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if opt.List, err = listOptions(all, supportFile); err != nil {
				return err
			}
			if opt.MinSize, opt.MaxSize, err = parseSizes(sizes); err != nil {
				return err
			}
			if opt.Newer, err = parseWhen("--newer", newer); err != nil {
				return err
			}
			if opt.Older, err = parseWhen("--older", older); err != nil {
				return err
			}
			opt.Refs, opt.Layers = args, node.LayerOptions{AllowMissing: allowMissing}
			if err := opt.Check(); err != nil {
				return err
			}
			n, err := g.state(cmd)
			if err != nil {
				return err
			}
			defer n.Close()
			searched, found := 0, 0
			opt.Done = func(t node.TreeRef, err error) {
				searched++
				if err != nil {
					warn(cmd, "%s: not searched: %v", treeName(t), err)
				}
			}
			out := cmd.OutOrStdout()
			var emit func(node.FindHit) error
			var flush func() error
			switch p.format {
			case "jsonl":
				enc := newJSON(out, false)
				emit = func(h node.FindHit) error { return enc.Encode(h) }
			case "json":
				hits := []node.FindHit{}
				emit = func(h node.FindHit) error { hits = append(hits, h); return nil }
				flush = func() error { return newJSON(out, true).Encode(hits) }
			default:
				tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
				if opt.Images {
					fmt.Fprintln(tw, "NAMESPACE\tIMAGE\tLAYER\tPATH\tMODE\tUID:GID\tSIZE\tMTIME\tSHA256")
				} else {
					fmt.Fprintln(tw, "NAMESPACE\tCONTAINER\tPOD\tNAME\tLAYER\tPATH\tMODE\tUID:GID\tSIZE\tMTIME\tSHA256")
				}
				emit = func(h node.FindHit) error {
					where := []string{h.Namespace, p.short(h.ContainerID), h.Pod, h.ContainerName}
					if opt.Images {
						where = []string{h.Namespace, h.Image}
					}
					cells := append(where, h.Layer, recordName(h.Record), recordMode(h.Record), fmt.Sprintf("%d:%d", h.UID, h.GID),
						recordSize(h.Record), whenNs(h.MtimeNs), recordSum(h.Record, &p))
					for i, c := range cells {
						if c == "" {
							c = "-"
						}
						cells[i] = printableCell(c)
					}
					fmt.Fprintln(tw, strings.Join(cells, "\t"))
					return nil
				}
				flush = tw.Flush
			}
			err = n.Find(opt, func(h node.FindHit) error { found++; return emit(h) })
			if flush != nil {
				if ferr := flush(); err == nil {
					err = ferr
				}
			}
			what := "containers"
			if opt.Images {
				what = "images"
			}
			inform(cmd, "searched %d %s: %d found", searched, what, found)
			return err
		},
	}
	p.register(cmd, listFormats, true)
	registerSelection(cmd, &all, &supportFile)
	registerAllowMissing(cmd, &allowMissing)
	fl := cmd.Flags()
	fl.BoolVar(&opt.Images, "images", false, "search the root filesystem of every image instead of containers")
	fl.StringVar(&opt.Path, "path", "", "path glob: * ? [...] within a component, ** across; without a leading / at any depth")
	fl.StringVar(&opt.Name, "name", "", "regular expression (RE2) on the base name")
	fl.StringSliceVar(&opt.Types, "type", nil, "entry types: "+strings.Join(node.RecordTypes, ", ")+" (repeat or comma-separate)")
	fl.StringSliceVar(&opt.SHA256, "sha256", nil, "sha256 of regular files (repeat or comma-separate)")
	fl.StringSliceVar(&opt.MD5, "md5", nil, "md5 of regular files (repeat or comma-separate)")
	fl.StringArrayVar(&sizes, "size", nil, "regular files larger than N (+N), smaller than N (-N) or of N bytes; k, M, G, T suffixes (powers of 1024); repeat for a range")
	fl.StringVar(&newer, "newer", "", "entries whose --time-field is at or after TIME (RFC 3339, or a date: UTC midnight)")
	fl.StringVar(&older, "older", "", "entries whose --time-field is before TIME (RFC 3339, or a date: UTC midnight)")
	fl.StringVar(&opt.TimeField, "time-field", "mtime", "the time --newer and --older compare: mtime, ctime, atime or crtime")
	fl.BoolVar(&opt.SetID, "setid", false, "setuid or setgid regular files")
	fl.BoolVar(&opt.Caps, "caps", false, "entries with file capabilities (a security.capability xattr)")
	fl.BoolVar(&opt.Exec, "exec", false, "regular files with an execute bit")
	return cmd
}

// treeName names a container or image in messages.
func treeName(t node.TreeRef) string {
	if t.ChainID != "" {
		return "image " + t.Namespace + "/" + t.Image
	}
	s := "container " + t.Namespace + "/" + node.ShortID(t.ContainerID)
	if t.Pod != "" {
		s += " (" + t.Pod + "/" + t.ContainerName + ")"
	}
	return s
}

var sizeArg = regexp.MustCompile(`^([+-]?)([0-9]+)([kKmMgGtT]?)$`)

// parseSizes reads --size values into an inclusive range.
func parseSizes(vals []string) (minSize int64, maxSize *int64, err error) {
	for _, v := range vals {
		m := sizeArg.FindStringSubmatch(strings.TrimSpace(v))
		if m == nil {
			return 0, nil, fmt.Errorf("--size %q: want N, +N or -N bytes, with an optional k, M, G or T suffix", v)
		}
		n, err := strconv.ParseInt(m[2], 10, 64)
		shift := map[string]int{"": 0, "k": 10, "m": 20, "g": 30, "t": 40}[strings.ToLower(m[3])]
		if err != nil || n > (1<<62)>>shift {
			return 0, nil, fmt.Errorf("--size %q: too large", v)
		}
		n <<= shift
		lo, hi := n, n
		switch m[1] {
		case "+":
			lo, hi = n+1, -1
		case "-":
			lo, hi = 0, n-1
		}
		minSize = max(minSize, lo)
		if hi >= 0 && (maxSize == nil || hi < *maxSize) {
			maxSize = &hi
		}
	}
	return minSize, maxSize, nil
}

// parseWhen reads a time of --newer or --older: RFC 3339, or a date.
func parseWhen(flag, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%s %q: want an RFC 3339 time (2026-11-27T09:01:35Z) or a date (2026-11-27)", flag, v)
}
