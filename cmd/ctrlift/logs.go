package main

import (
	"bufio"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ctrlift/ctrlift/node"
)

type logsFlags struct {
	since, until string
	stream       string
}

func newLogsCmd(g *globalFlags) *cobra.Command {
	var p printFlags
	var lf logsFlags
	cmd := &cobra.Command{
		Use:   "logs REF",
		Short: "Print a container's log as kubelet or dockerd kept it (every restart), without mounting",
		Long: `Print a container's output from the CRI log files kubelet keeps on the
node: var/log/pods/<ns>_<pod>_<uid>/<container>/<restart>.log, for every
restart of the container (the restarts the runtime still knows and those
it forgot), rotated files (N.log.<time>, .gz) included, oldest first.
Partial records are joined with their final one; stdout and stderr are
kept apart (--stream, and a field of -o jsonl).

A Docker container's log is its log driver's files under the Docker root:
json-file's containers/<id>/<id>-json.log or the local driver's
containers/<id>/local-logs/container.log, with their rotations (.N,
.N.gz), oldest first; other drivers keep nothing on the disk.

REF is as for "info container"; a REF that matches the restarts of one
container (POD/NAME when it restarted) names them all.

-o table prints the text as kubectl logs does; -o jsonl one object per
line with its time, stream, restart, container id, pod and file.

  ctrlift logs -i node.raw prod/web-1/web
  ctrlift logs -i node.raw prod/web-1/web --stream stderr --since 2026-11-27T09:00:00Z -o jsonl`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opt, err := lf.options()
			if err != nil {
				return err
			}
			n, err := g.state(cmd)
			if err != nil {
				return err
			}
			defer n.Close()
			w := bufio.NewWriterSize(cmd.OutOrStdout(), 64<<10)
			enc := newJSON(w, false)
			lines := 0
			set, err := n.Logs(args[0], opt, func(l *node.LogLine) error {
				lines++
				if p.format == "jsonl" {
					return enc.Encode(logRecord(l))
				}
				_, err := w.WriteString(l.Text + "\n")
				return err
			})
			if ferr := w.Flush(); err == nil {
				err = ferr
			}
			if err != nil {
				return err
			}
			restarts := map[int]bool{}
			var rs []string
			for _, f := range set.Files {
				if !restarts[f.Restart] {
					restarts[f.Restart] = true
					rs = append(rs, fmt.Sprint(f.Restart))
				}
			}
			inform(cmd, "%d lines from %d files of %s (restarts %s)", lines, len(set.Files), printable(set.Dir), strings.Join(rs, ", "))
			return nil
		},
	}
	p.register(cmd, []string{"table", "jsonl"}, false)
	fl := cmd.Flags()
	fl.StringVar(&lf.since, "since", "", "only lines logged at or after this time (RFC 3339, e.g. 2026-11-27T09:01:30Z)")
	fl.StringVar(&lf.until, "until", "", "only lines logged before this time (RFC 3339)")
	fl.StringVar(&lf.stream, "stream", "all", "stdout, stderr or all")
	return cmd
}

func (lf *logsFlags) options() (node.LogOptions, error) {
	var o node.LogOptions
	for _, t := range []struct {
		flag, v string
		dst     *time.Time
	}{{"--since", lf.since, &o.Since}, {"--until", lf.until, &o.Until}} {
		if t.v == "" {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, t.v)
		if err != nil {
			return o, fmt.Errorf("%s %q: want an RFC 3339 time such as 2026-11-27T09:01:30Z", t.flag, t.v)
		}
		*t.dst = at
	}
	switch lf.stream {
	case "all", "":
	case "stdout", "stderr":
		o.Stream = lf.stream
	default:
		return o, fmt.Errorf("--stream %q: want stdout, stderr or all", lf.stream)
	}
	return o, nil
}

// logJSON is one log line of -o jsonl.
type logJSON struct {
	Time         string `json:"time,omitempty"`
	Stream       string `json:"stream,omitempty"`
	Text         string `json:"text"`
	Partial      bool   `json:"partial,omitempty"`
	Malformed    bool   `json:"malformed,omitempty"`
	Restart      int    `json:"restart"`
	ContainerID  string `json:"container_id,omitempty"`
	K8sNamespace string `json:"k8s_namespace"`
	Pod          string `json:"pod"`
	PodUID       string `json:"pod_uid"`
	Container    string `json:"container"`
	File         string `json:"file"`
	Line         int    `json:"line"`
}

func logRecord(l *node.LogLine) logJSON {
	j := logJSON{Stream: l.Stream, Text: l.Text, Partial: l.Partial, Malformed: l.Malformed, Restart: l.Restart,
		ContainerID: l.ContainerID, File: l.File, Line: l.Line}
	if !l.Time.IsZero() {
		j.Time = l.Time.UTC().Format(time.RFC3339Nano)
	}
	if s := l.Set; s != nil {
		j.K8sNamespace, j.Pod, j.PodUID, j.Container = s.PodNamespace, s.PodName, s.PodUID, s.Container
	}
	return j
}
