package main

import (
	"bufio"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/ctrlift/ctrlift/export"
	"github.com/ctrlift/ctrlift/node"
	"github.com/ctrlift/ctrlift/vfs"
)

// Formats of timeline: JSON lines and CSV as Timesketch imports them, the
// TSK 3.x body file mactime reads.
var timelineFormats = []string{"jsonl", "csv", "bodyfile"}

type timelineFlags struct {
	changes      bool
	logs         bool
	hash         string
	all          bool
	supportFile  string
	layerDirs    string
	allowMissing bool
}

func newTimelineCmd(g *globalFlags) *cobra.Command {
	var p printFlags
	var tf timelineFlags
	cmd := &cobra.Command{
		Use:   "timeline [REF|pod:K8SNS/POD]...",
		Short: "Write a timeline of containers' files, runtime events and logs for mactime, plaso or Timesketch",
		Long: `Write a timeline, sorted by time, of every file of each container's
merged filesystem (with --changes, of its writable layer only: what it
added, modified and, as whiteouts with their own times, deleted), with
the runtime's events: container created and updated (meta.db), started
and finished with its exit code (CRI status), its image stored by
containerd (pulled or imported; no pull time is recorded apart) and, with
--logs, its CRI log lines.

With no REF, every container that "list containers" shows with the same
flags; REFs are as for "info container", pod:K8SNS/POD for a whole pod.

-o jsonl and -o csv (Timesketch import) give one row per time: message,
datetime (ISO 8601, nanoseconds), timestamp (microseconds since the
epoch), timestamp_desc in plaso's words (Content Modification Time, Last
Access Time, Metadata Modification Time, Creation Time, Start Time, End
Time), data_type, and the context: Kubernetes namespace, pod, pod uid,
container, container id, image, layer (writable or snapshotter/id, with
its diff id), change, path in the container, path on the partition,
inode, mode, owner, size and, with --hash (none by default: hashing
reads every file), digests.

-o bodyfile is the TSK 3.x body file (mactime -b FILE; plaso reads it
too): one row per file with its four times in whole seconds, named
/K8SNS/POD/CONTAINER/PATH, with '|', '%', control characters and bytes
that are not UTF-8 percent-encoded; runtime events and log lines are rows
whose name says what happened, with their time as all four.

Rows past 100,000 (or 32 MiB) are sorted in runs spilled to a directory
under $TMPDIR (removed after), so memory stays bounded. mactime drops a
name holding a newline (its parsing stops there); JSON lines and CSV
keep every name whole.

  ctrlift timeline -i node.raw prod/web-1/web -o bodyfile > web.body && mactime -b web.body -d
  ctrlift timeline -i node.raw --logs > node.jsonl        # every workload container, for Timesketch
  ctrlift timeline -i node.raw pod:prod/web-1 --changes -o csv --hash sha256`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTimeline(cmd, g, &p, &tf, args)
		},
	}
	p.register(cmd, timelineFormats, false)
	fl := cmd.Flags()
	fl.BoolVar(&tf.changes, "changes", false, "only what the container changed: its writable layer (export writes it as an OCI layer tar, deletions as .wh. whiteouts)")
	fl.BoolVar(&tf.logs, "logs", false, "add the containers' CRI log lines (var/log/pods)")
	registerTimelineHash(cmd, &tf.hash)
	registerSelection(cmd, &tf.all, &tf.supportFile)
	fl.StringVar(&tf.layerDirs, "layer-dirs", "", "colon-separated layer directories on the partition, top first (no runtime state needed)")
	registerAllowMissing(cmd, &tf.allowMissing)
	return cmd
}

// registerTimelineHash adds --hash as export and diff have it (the same
// help, which TestGrammar holds), but with no digest by default: hashing
// reads every file, which a timeline otherwise does not.
func registerTimelineHash(cmd *cobra.Command, v *string) {
	cmd.Flags().StringVar(v, "hash", "", "digests of each file: any of sha256, md5, sha1, comma-separated (export and diff: sha256 by default)")
}

func runTimeline(cmd *cobra.Command, g *globalFlags, p *printFlags, tf *timelineFlags, args []string) error {
	opt := node.TimelineOptions{Changes: tf.changes, Logs: tf.logs, Layers: node.LayerOptions{AllowMissing: tf.allowMissing}, ByEntry: p.format == "bodyfile"}
	if tf.hash != "" {
		hs, err := export.ParseHashes(tf.hash)
		if err != nil {
			return err
		}
		opt.Hashes = hs
	}
	if tf.layerDirs != "" && (len(args) > 0 || tf.logs) {
		return errors.New("--layer-dirs names the layers: give no REF and no --logs with it")
	}
	list, err := listOptions(tf.all, tf.supportFile)
	if err != nil {
		return err
	}
	var n *node.Node
	if tf.layerDirs != "" {
		n, err = g.open(cmd)
	} else {
		n, err = g.state(cmd)
	}
	if err != nil {
		return err
	}
	defer n.Close()
	bw := bufio.NewWriterSize(cmd.OutOrStdout(), 256<<10)
	out := newTimelineWriter(p.format, bw)
	if tf.layerDirs != "" {
		ls, err := n.DirLayers(strings.Split(tf.layerDirs, ":"))
		if err != nil {
			return err
		}
		err = n.TimelineLayers(ls, opt, out.row)
		if err == nil {
			err = out.flush()
		}
		return err
	}
	opt.List = list
	sel, err := n.Timeline(args, opt, out.row)
	if sel != nil && sel.Hidden.Total() > 0 {
		inform(cmd, "%d containers hidden (%s); --all shows them", sel.Hidden.Total(), describeHidden(sel.Hidden))
	}
	if err != nil {
		return err
	}
	if err := out.flush(); err != nil {
		return err
	}
	inform(cmd, "%d rows, %d containers", sel.Rows, len(sel.Containers))
	return nil
}

// timelineWriter writes rows in one format. JSON lines and CSV share
// one table of columns (timelineColumns), filled once per row; both are
// written by hand, without reflection: a timeline has millions of rows.
type timelineWriter struct {
	format string
	w      *bufio.Writer
	header bool
	vals   [numColumns]string
	line   []byte
}

func newTimelineWriter(format string, w *bufio.Writer) *timelineWriter {
	return &timelineWriter{format: format, w: w}
}

func (t *timelineWriter) flush() error {
	if t.format == "csv" && !t.header {
		t.header = true
		t.line = appendCSV(t.line[:0], timelineColumns[:])
		if _, err := t.w.Write(t.line); err != nil {
			return err
		}
	}
	return t.w.Flush()
}

func (t *timelineWriter) row(r *node.TimelineRow) error {
	switch t.format {
	case "bodyfile":
		t.line = appendBodyfile(t.line[:0], r)
	case "csv":
		if !t.header {
			t.header = true
			if _, err := t.w.Write(appendCSV(nil, timelineColumns[:])); err != nil {
				return err
			}
		}
		timelineValues(&t.vals, r)
		t.line = appendCSV(t.line[:0], t.vals[:])
	default:
		timelineValues(&t.vals, r)
		t.line = appendTimelineJSON(t.line[:0], &t.vals)
	}
	_, err := t.w.Write(t.line)
	return err
}

// The columns of a timeline row, for Timesketch: its required fields,
// then the context. JSON lines leave out empty ones.
const (
	colMessage = iota
	colDatetime
	colTimestamp
	colTimestampDesc
	colDataType
	colEvent
	colK8sNamespace
	colPod
	colPodUID
	colContainer
	colContainerID
	colNamespace
	colImage
	colLayer
	colDiffID
	colChange
	colPath
	colPathB64
	colPartitionPath
	colType
	colInode
	colMode
	colUID
	colGID
	colSize
	colTarget
	colWhiteout
	colOpaque
	colSHA256
	colMD5
	colSHA1
	colHashOmitted
	colExitCode
	colReason
	colStream
	colRestart
	colPartial
	colLogFile
	numColumns
)

// timelineColumns are the columns' names (the CSV header, the JSON keys).
var timelineColumns = [numColumns]string{"message", "datetime", "timestamp", "timestamp_desc", "data_type", "event",
	"k8s_namespace", "pod", "pod_uid", "container", "container_id", "namespace", "image", "layer", "diff_id", "change",
	"path", "path_b64", "partition_path", "type", "inode", "mode", "uid", "gid", "size", "target", "whiteout", "opaque",
	"sha256", "md5", "sha1", "sha256_omitted", "exit_code", "reason", "stream", "restart", "partial", "log_file"}

// bareColumns are written in JSON as numbers or booleans, not strings.
var bareColumns = [numColumns]bool{colTimestamp: true, colInode: true, colUID: true, colGID: true, colSize: true,
	colWhiteout: true, colOpaque: true, colExitCode: true, colRestart: true, colPartial: true}

// isoTime is ISO 8601 in UTC with nanoseconds, as Timesketch reads it.
func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000000") + "+00:00" }

// micros is t in microseconds since the epoch (before 1970, negative).
func micros(t time.Time) int64 { return t.Unix()*1_000_000 + int64(t.Nanosecond()/1000) }

// octalMode is a mode's permission bits as records give them: "0644".
func octalMode(mode uint32) string {
	p := mode & 0o7777
	return string([]byte{'0' + byte(p>>9), '0' + byte(p>>6&7), '0' + byte(p>>3&7), '0' + byte(p&7)})
}

func boolCol(b bool) string {
	if b {
		return "true"
	}
	return ""
}

// timelineValues fills v with r's columns; "" is none.
func timelineValues(v *[numColumns]string, r *node.TimelineRow) {
	*v = [numColumns]string{}
	v[colMessage], v[colDatetime], v[colTimestamp] = r.Message(), isoTime(r.Time), strconv.FormatInt(micros(r.Time), 10)
	v[colTimestampDesc], v[colDataType], v[colEvent] = r.Kind.Description(), r.Kind.DataType(), r.Kind.String()
	if s := r.Source; s != nil {
		v[colK8sNamespace], v[colPod], v[colPodUID], v[colContainer] = s.PodNamespace, s.PodName, s.PodUID, s.ContainerName
		v[colContainerID], v[colNamespace], v[colImage] = s.ContainerID, s.Namespace, s.Image
	}
	switch {
	case r.Kind.IsFile():
		if l := r.LayerInfo(); l != nil {
			v[colLayer], v[colDiffID] = l.Label(), l.DiffID
		}
		v[colChange], v[colPath], v[colPartitionPath], v[colTarget] = r.Change, r.Path, r.PartitionPath(), r.Target
		if !utf8.ValidString(r.Path) {
			v[colPathB64] = base64.StdEncoding.EncodeToString([]byte(r.Path))
		}
		v[colType], v[colInode], v[colMode] = r.FileType(), strconv.FormatUint(r.Inode, 10), octalMode(r.Mode)
		v[colUID], v[colGID], v[colSize] = strconv.FormatUint(uint64(r.UID), 10), strconv.FormatUint(uint64(r.GID), 10), strconv.FormatInt(r.Size, 10)
		v[colWhiteout], v[colOpaque] = boolCol(r.Whiteout), boolCol(r.Opaque)
		v[colSHA256], v[colMD5], v[colSHA1], v[colHashOmitted] = r.SHA256, r.MD5, r.SHA1, r.HashOmitted
	case r.Kind == node.ImageCreated:
		v[colImage] = r.Image
	case r.Kind == node.LogWritten:
		v[colStream], v[colRestart], v[colPartial], v[colLogFile] = r.Stream, strconv.Itoa(r.Restart), boolCol(r.Partial), r.LogFile
	case r.Kind == node.ContainerFinished:
		if r.ExitCode != nil {
			v[colExitCode] = strconv.Itoa(int(*r.ExitCode))
		}
		v[colReason] = r.Reason
	}
}

// appendTimelineJSON appends one JSON line of v's non-empty columns.
// Strings are escaped as encoding/json does, without HTML escaping, and
// bytes that are not UTF-8 become U+FFFD (path_b64 keeps a path exactly).
func appendTimelineJSON(b []byte, v *[numColumns]string) []byte {
	b = append(b, '{')
	first := true
	for i, val := range v {
		if val == "" && i > colDataType {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '"')
		b = append(b, timelineColumns[i]...)
		b = append(b, '"', ':')
		if bareColumns[i] {
			b = append(b, val...)
		} else {
			b = appendJSONString(b, val)
		}
	}
	return append(b, '}', '\n')
}

func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029': // as encoding/json writes them
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&15])
		default:
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return append(b, '"')
}

// appendCSV appends one CSV record (RFC 4180, as encoding/csv writes
// it): a field holding a comma, a quote, a line break or leading space is
// quoted, quotes doubled; text that is not UTF-8 is made valid (path_b64
// keeps a path exactly).
func appendCSV(b []byte, fields []string) []byte {
	for i, f := range fields {
		if i > 0 {
			b = append(b, ',')
		}
		f = strings.ToValidUTF8(f, "\uFFFD")
		if f == "" || !(strings.ContainsAny(f, ",\"\r\n") || f[0] == ' ' || f[0] == '\t' || f == `\.`) {
			b = append(b, f...)
			continue
		}
		b = append(b, '"')
		for j := 0; j < len(f); j++ {
			if f[j] == '"' {
				b = append(b, '"')
			}
			b = append(b, f[j])
		}
		b = append(b, '"')
	}
	return append(b, '\n')
}

// appendBodyfile appends r as a TSK 3.x body file line:
// MD5|name|inode|mode_as_string|UID|GID|size|atime|mtime|ctime|crtime.
func appendBodyfile(b []byte, r *node.TimelineRow) []byte {
	md5 := r.MD5
	if md5 == "" {
		md5 = "0"
	}
	b = append(b, md5...)
	b = append(b, '|')
	prefix := ""
	if r.Source != nil && r.Source.Ref() != "" {
		prefix = "/" + r.Source.Ref()
	}
	if !r.Kind.IsFile() {
		b = appendBodyName(b, prefix+" "+bodyEvent(r))
		b = append(b, "|0|-/----------|0|0|0"...)
		for range 4 {
			b = append(b, '|')
			b = strconv.AppendInt(b, r.Time.Unix(), 10)
		}
		return append(b, '\n')
	}
	name := prefix + r.Path
	if r.Path == "/" && prefix != "" {
		name = prefix + "/"
	}
	if r.Target != "" {
		name += " -> " + r.Target
	}
	if r.Whiteout {
		name += " (deleted)"
	}
	b = appendBodyName(b, name)
	b = append(b, '|')
	b = strconv.AppendUint(b, r.Inode, 10)
	b = append(b, '|')
	b = append(b, tskMode(r.Mode, r.Whiteout)...)
	b = append(b, '|')
	b = strconv.AppendUint(b, uint64(r.UID), 10)
	b = append(b, '|')
	b = strconv.AppendUint(b, uint64(r.GID), 10)
	b = append(b, '|')
	size := r.Size
	if r.Whiteout {
		size = 0
	}
	b = strconv.AppendInt(b, size, 10)
	crtime := int64(0)
	if r.HasCrtime {
		crtime = r.Crtime.Unix()
	}
	for _, t := range [...]int64{r.Atime.Unix(), r.Mtime.Unix(), r.Ctime.Unix(), crtime} {
		b = append(b, '|')
		b = strconv.AppendInt(b, t, 10)
	}
	return append(b, '\n')
}

// bodyEvent says what a row that is not a file is, for its body file
// name: "[container started]", "[stderr] text".
func bodyEvent(r *node.TimelineRow) string {
	if r.Kind == node.LogWritten {
		return "[" + r.Stream + "] " + r.Text
	}
	return "[" + bodyEventName(r) + "]"
}

func bodyEventName(r *node.TimelineRow) string {
	switch r.Kind {
	case node.ContainerFinished:
		s := "container finished"
		if r.ExitCode != nil {
			s += ", exit code " + strconv.Itoa(int(*r.ExitCode))
		}
		if r.Reason != "" {
			s += ": " + r.Reason
		}
		return s
	case node.ImageCreated:
		return "image stored: " + r.Image
	}
	return r.Kind.String()
}

// appendBodyName appends a body file name: '|' (the separator), '%' (the
// escape), control characters and bytes that are not UTF-8 as %XX, which
// mactime decodes.
func appendBodyName(b []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); {
		c := s[i]
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case c == '|' || c == '%' || c < 0x20 || c == 0x7f || (r == utf8.RuneError && n == 1):
			b = append(b, '%', hex[c>>4], hex[c&15])
			i++
		case r >= 0x80 && r < 0xa0: // C1 controls
			for k := 0; k < n; k++ {
				b = append(b, '%', hex[s[i+k]>>4], hex[s[i+k]&15])
			}
			i += n
		default:
			b = append(b, s[i:i+n]...)
			i += n
		}
	}
	return b
}

// tskMode is a mode as TSK's fls -m writes it: the directory entry's type,
// '/', and ls -l's string with TSK's inode type letter (r for a regular
// file; h for a socket, as TSK's table has it), e.g. "r/rrw-r--r--",
// "d/drwxr-xr-x", "l/lrwxrwxrwx". A whiteout is "w/c---------".
func tskMode(mode uint32, whiteout bool) string {
	var name, meta byte
	switch mode & vfs.TypeMask {
	case vfs.TypeRegular:
		name, meta = 'r', 'r'
	case vfs.TypeDir:
		name, meta = 'd', 'd'
	case vfs.TypeSymlink:
		name, meta = 'l', 'l'
	case vfs.TypeChar:
		name, meta = 'c', 'c'
	case vfs.TypeBlock:
		name, meta = 'b', 'b'
	case vfs.TypeFIFO:
		name, meta = 'p', 'p'
	case vfs.TypeSocket:
		name, meta = 's', 'h'
	default:
		name, meta = '-', '-'
	}
	if whiteout {
		name = 'w'
	}
	ls := []byte(lsMode(mode))
	ls[0] = meta
	return string(name) + "/" + string(ls)
}
