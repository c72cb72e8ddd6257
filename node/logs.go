package node

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ctrlift/ctrlift/containerd"
	"github.com/ctrlift/ctrlift/vfs"
)

// Limits on what a log file can make ctrlift hold: a CRI record is at
// most 16 KiB by default (containerd's max_container_log_line_size); a
// longer line, or partial records joined past maxLogLine, is cut there.
// A rotated log is gzipped at about 10 MiB (kubelet's default
// containerLogMaxSize); more than maxGzipLog out of one is a bomb, cut
// there with a warning.
const (
	maxLogLine  = 1 << 20
	maxLogFiles = 10000
	maxGzipLog  = 1 << 30
)

// LogOptions select the lines Logs reads.
type LogOptions struct {
	// Since and Until keep lines logged at or after Since and before
	// Until; zero is unbounded. Lines without a readable time are dropped
	// when either is set.
	Since, Until time.Time
	// Stream keeps one stream: "stdout" or "stderr"; "" keeps both.
	Stream string
}

// LogSet is the CRI log directory of one container name of a pod: every
// restart's log file, rotated ones included, oldest first.
type LogSet struct {
	PodNamespace string    `json:"pod_namespace"`
	PodName      string    `json:"pod"`
	PodUID       string    `json:"pod_uid"`
	Container    string    `json:"container"`
	Dir          string    `json:"dir"` // on the filesystem holding the runtime state
	Files        []LogFile `json:"files"`
	// Containers are the runtime's containers of this name in the pod,
	// one per restart it still knows.
	Containers []containerd.Container `json:"-"`
}

// LogFile is one file of a LogSet.
type LogFile struct {
	Path        string `json:"path"` // on the filesystem holding the runtime state
	Restart     int    `json:"restart"`
	Rotated     string `json:"rotated,omitempty"` // the rotation suffix, e.g. 20261127-090131
	Gzip        bool   `json:"gzip,omitempty"`
	ContainerID string `json:"container_id,omitempty"` // the container of that restart, when the runtime still knows it
	Size        int64  `json:"size"`
	// Format is "" for a CRI log, else the Docker log driver that wrote
	// it: json-file or local.
	Format string `json:"format,omitempty"`
}

// LogLine is one line of a container's output: a CRI record, or partial
// records joined with their final one.
type LogLine struct {
	Time    time.Time // zero for a malformed line
	Stream  string    // stdout or stderr; "" for a malformed line
	Text    string    // without the line end
	Restart int
	// ContainerID is the container of that restart, when known.
	ContainerID string
	File        string // the file it was read from
	Line        int    // line number in File of its first record
	// Partial: the line never got its final record (the container
	// stopped mid-line or the line was longer than ctrlift keeps).
	Partial bool
	// Malformed: not a CRI record; Text is the raw line.
	Malformed bool
	Set       *LogSet
}

// Logs streams the CRI log of the container ref names (see Resolve): the
// files kubelet keeps under var/log/pods/<ns>_<pod>_<uid>/<name>/ for
// every restart of that container (N.log, rotated N.log.<time> and their
// .gz), restart by restart, oldest first. A reference that matches the
// restarts of one container (one pod, one container name) names them all.
// Partial records are joined with their final record, per stream.
func (n *Node) Logs(ref string, opt LogOptions, fn func(*LogLine) error) (*LogSet, error) {
	if opt.Stream != "" && opt.Stream != "stdout" && opt.Stream != "stderr" {
		return nil, fmt.Errorf("stream %q: want stdout or stderr", opt.Stream)
	}
	cs, err := n.logContainers(ref)
	if err != nil {
		return nil, err
	}
	if e := cs[0].Engine; e == EngineDocker || e == EnginePodman {
		set, err := n.ownLogSet(&cs[0])
		if err != nil {
			return nil, err
		}
		return set, n.readLogs(set, set.Files, opt, fn)
	}
	set, err := n.logSet(&cs[0], cs)
	if err != nil {
		return nil, err
	}
	return set, n.readLogs(set, set.Files, opt, fn)
}

// logContainers resolves ref to one container, or to the several
// containers that are restarts of one container of a pod.
func (n *Node) logContainers(ref string) ([]containerd.Container, error) {
	cs, err := n.resolveRestarts(ref, ListOptions{})
	if err != nil {
		return nil, err
	}
	for _, c := range cs[1:] {
		if !sameLogDir(&c, &cs[0]) {
			e := &AmbiguousError{Ref: ref}
			for i := range cs {
				e.Candidates = append(e.Candidates, Describe(&cs[i]))
			}
			return nil, fmt.Errorf("%w\n  a log is one container's, with its restarts: name one", e)
		}
	}
	// Every restart the runtime still knows, to name each file's container.
	if c := cs[0]; c.PodUID != "" && c.ContainerName != "" {
		st, err := n.State()
		if err != nil {
			return nil, err
		}
		have := map[string]bool{}
		for _, x := range cs {
			have[x.Namespace+"/"+x.ID] = true
		}
		for i := range st.Containers {
			if x := &st.Containers[i]; !have[x.Namespace+"/"+x.ID] && n.inNamespace(x.Namespace) && sameLogDir(x, &c) {
				cs = append(cs, *x)
			}
		}
	}
	// The latest restart first: its record names the directory.
	slices.SortStableFunc(cs, func(a, b containerd.Container) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return cs, nil
}

// resolveRestarts is ResolveAll, except that a reference matching several
// containers names them all when they are the restarts of one container
// of a pod (POD/NAME of a container that restarted).
func (n *Node) resolveRestarts(ref string, opt ListOptions) ([]containerd.Container, error) {
	cs, err := n.ResolveAll(ref, opt)
	var amb *AmbiguousError
	if !errors.As(err, &amb) {
		return cs, err
	}
	st, serr := n.State()
	if serr != nil {
		return nil, serr
	}
	want := map[string]bool{}
	for _, d := range amb.Candidates {
		want[d] = true
	}
	cs = nil
	for i := range st.Containers {
		if want[Describe(&st.Containers[i])] {
			cs = append(cs, st.Containers[i])
		}
	}
	if len(cs) == 0 || cs[0].PodUID == "" || cs[0].ContainerName == "" {
		return nil, err
	}
	for _, c := range cs[1:] {
		if !sameLogDir(&c, &cs[0]) {
			return nil, err
		}
	}
	slices.SortStableFunc(cs, func(a, b containerd.Container) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return cs, nil
}

func sameLogDir(a, b *containerd.Container) bool {
	return a.Namespace == b.Namespace && a.PodNamespace == b.PodNamespace && a.PodName == b.PodName &&
		a.PodUID == b.PodUID && a.ContainerName == b.ContainerName && a.Kind == b.Kind
}

var logName = regexp.MustCompile(`^([0-9]{1,9})\.log(?:\.([0-9]{8}-[0-9]{6}))?(\.gz)?$`)

// logSet finds c's log directory on the filesystem holding the runtime
// state and lists its files. restarts are the containers of that
// directory the runtime knows (c among them), to name each file's.
func (n *Node) logSet(c *containerd.Container, restarts []containerd.Container) (*LogSet, error) {
	st, err := n.State()
	if err != nil {
		return nil, err
	}
	src := n.runtime
	if src.tree == nil {
		return nil, fmt.Errorf("%s: a database alone holds no logs; give the disk image or directory it came from", src.describe())
	}
	if c.Kind == "sandbox" {
		return nil, fmt.Errorf("%s is a pod sandbox: it has no log of its own", Describe(c))
	}
	set := &LogSet{PodNamespace: c.PodNamespace, PodName: c.PodName, PodUID: c.PodUID, Container: c.ContainerName, Containers: restarts}
	cands := n.logDirCandidates(st, c)
	if len(cands) == 0 {
		if c.Namespace == DockerNamespace && c.Engine == "" {
			// dockerd's own containerd record: the Docker record beside
			// it was unreadable or is gone (a warning said which).
			return nil, fmt.Errorf("%s is dockerd's containerd record of a container whose Docker record (its config.v2.json under the Docker root's containers/) was not read: Docker keeps the log beside that record", Describe(c))
		}
		return nil, fmt.Errorf("%s: a container not created through CRI (no pod, no log path): the runtime keeps no log of it", Describe(c))
	}
	var dir *vfs.Inode
	var tried []string
	for _, p := range cands {
		in, err := src.tree.Lookup(p)
		if err == nil && in.IsDir() {
			set.Dir, dir = p, in
			break
		}
		tried = append(tried, p)
	}
	if dir == nil {
		return nil, fmt.Errorf("%s: no log directory on %s (looked for %s)", Describe(c), src.describe(), strings.Join(tried, ", "))
	}
	byRestart := map[int]string{}
	for i := range restarts {
		if r, ok := n.restartOf(st, &restarts[i]); ok {
			byRestart[r] = restarts[i].ID
		}
	}
	ents, err := src.tree.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", set.Dir, err)
	}
	for _, e := range ents {
		m := logName.FindStringSubmatch(e.Name)
		if m == nil {
			n.warn(fmt.Sprintf("%s: %q is not a CRI log file name; skipped", set.Dir, e.Name))
			continue
		}
		if len(set.Files) >= maxLogFiles {
			return nil, fmt.Errorf("%s: more than %d log files", set.Dir, maxLogFiles)
		}
		r, _ := strconv.Atoi(m[1])
		p := set.Dir + "/" + e.Name
		in, err := src.tree.LookupAt(dir, e.Name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		if !in.IsRegular() {
			n.warn(fmt.Sprintf("%s: not a regular file (mode %#o); skipped", p, in.Mode))
			continue
		}
		set.Files = append(set.Files, LogFile{Path: p, Restart: r, Rotated: m[2], Gzip: m[3] != "", ContainerID: byRestart[r], Size: in.Size})
	}
	slices.SortFunc(set.Files, func(a, b LogFile) int {
		if a.Restart != b.Restart {
			return a.Restart - b.Restart
		}
		// Rotated files (older) before the current one, by rotation time.
		if (a.Rotated == "") != (b.Rotated == "") {
			if a.Rotated == "" {
				return 1
			}
			return -1
		}
		if c := strings.Compare(a.Rotated, b.Rotated); c != 0 {
			return c
		}
		return strings.Compare(a.Path, b.Path)
	})
	return set, nil
}

// logDirCandidates are the paths, on the filesystem holding the runtime
// state, where c's log directory may be: from its CRI log path, its
// sandbox's log directory, or kubelet's layout. The filesystem's mount
// point on the node is inferred from the runtime root (hostMountPoint):
// var/lib/containerd means it is mounted at /, lib/containerd at /var.
func (n *Node) logDirCandidates(st *containerd.State, c *containerd.Container) []string {
	var nodeDirs []string
	if c.LogPath != "" {
		nodeDirs = append(nodeDirs, path.Dir(path.Clean("/"+c.LogPath)))
	}
	if sb := n.sandboxOf(st, c); sb != nil && sb.Sandbox != nil && sb.Sandbox.LogDirectory != "" && c.ContainerName != "" {
		nodeDirs = append(nodeDirs, path.Join("/", sb.Sandbox.LogDirectory, c.ContainerName))
	}
	if c.PodName != "" && c.PodUID != "" && c.ContainerName != "" {
		nodeDirs = append(nodeDirs, path.Join("/var/log/pods", c.PodNamespace+"_"+c.PodName+"_"+c.PodUID, c.ContainerName))
	}
	mounts := []string{"/", "/var"}
	if m, ok := hostMountPoint(st.Root); ok {
		mounts = append([]string{m}, mounts...)
	}
	var out []string
	seen := map[string]bool{}
	for _, d := range nodeDirs {
		for _, m := range mounts {
			rel, ok := underMount(d, m)
			if ok && rel != "." && !seen[rel] && vfs.ValidPath(rel) {
				seen[rel] = true
				out = append(out, rel)
			}
		}
	}
	return out
}

func (n *Node) sandboxOf(st *containerd.State, c *containerd.Container) *containerd.Container {
	if c.SandboxID == "" {
		return nil
	}
	for i := range st.Containers {
		if s := &st.Containers[i]; s.ID == c.SandboxID && s.Namespace == c.Namespace {
			return s
		}
	}
	return nil
}

// restartOf is c's restart count (CRI attempt): from its log path's file
// name, else from its CRI metadata.
func (n *Node) restartOf(st *containerd.State, c *containerd.Container) (int, bool) {
	if m := logName.FindStringSubmatch(path.Base(c.LogPath)); m != nil && m[2] == "" && m[3] == "" {
		r, err := strconv.Atoi(m[1])
		return r, err == nil
	}
	raw := c.CRIMetadata
	if raw == nil {
		for i := range st.Containers {
			if s := &st.Containers[i]; s.ID == c.ID && s.Namespace == c.Namespace {
				raw = s.CRIMetadata
			}
		}
	}
	var m struct {
		Config struct {
			Metadata struct {
				Attempt *int `json:"attempt"`
			} `json:"metadata"`
		} `json:"Config"`
	}
	if raw == nil || json.Unmarshal(raw, &m) != nil || m.Config.Metadata.Attempt == nil {
		return 0, false
	}
	return *m.Config.Metadata.Attempt, true
}

// readLogs streams the lines of files (of set), restart by restart.
func (n *Node) readLogs(set *LogSet, files []LogFile, opt LogOptions, fn func(*LogLine) error) error {
	src := n.runtime.tree
	var j *logJoiner
	for _, f := range files {
		if j == nil || f.Restart != j.restart {
			if err := j.flush(); err != nil {
				return err
			}
			j = &logJoiner{set: set, restart: f.Restart, opt: opt, fn: fn}
		}
		if err := j.file(n, src, f); err != nil {
			return err
		}
	}
	return j.flush()
}

// logJoiner reads the files of one restart and joins partial records.
type logJoiner struct {
	set     *LogSet
	restart int
	opt     LogOptions
	fn      func(*LogLine) error
	pending [2]*LogLine // stdout, stderr: partial records so far
	sizes   [2]int
}

func streamIndex(s string) int {
	if s == "stderr" {
		return 1
	}
	return 0
}

func (j *logJoiner) file(n *Node, src vfs.FS, f LogFile) error {
	in, err := src.Lookup(f.Path)
	if err != nil {
		return fmt.Errorf("%s: %w", f.Path, err)
	}
	if !in.IsRegular() {
		return fmt.Errorf("%s: not a regular file", f.Path)
	}
	data, err := src.Open(in)
	if err != nil {
		return fmt.Errorf("%s: %w", f.Path, err)
	}
	defer closeData(data)
	var r io.Reader = io.NewSectionReader(data, 0, data.Size())
	if f.Gzip {
		gz, err := gzip.NewReader(r)
		if err != nil {
			return fmt.Errorf("%s: %w", f.Path, err)
		}
		defer gz.Close()
		r = &capReader{r: gz, left: maxGzipLog}
	}
	if f.Format != "" {
		return j.dockerFile(n, r, f)
	}
	br := bufio.NewReaderSize(r, 64<<10)
	var line []byte
	malformed := 0
	firstBad := 0
	for no := 1; ; no++ {
		line = line[:0]
		cut := false
		var rerr error
		for {
			chunk, err := br.ReadSlice('\n')
			if len(line)+len(chunk) > maxLogLine {
				chunk = chunk[:max(0, maxLogLine-len(line))]
				cut = true
			}
			line = append(line, chunk...)
			if err == bufio.ErrBufferFull && !cut {
				continue
			}
			if err == bufio.ErrBufferFull {
				err = nil // the rest of the line is not read
			}
			rerr = err
			break
		}
		if len(line) == 0 && rerr != nil {
			if rerr == io.EOF {
				break
			}
			return fmt.Errorf("%s: line %d: %w", f.Path, no, rerr)
		}
		line = bytes.TrimSuffix(line, []byte("\n"))
		ok, err := j.record(line, f, no, cut)
		if err != nil {
			return err
		}
		if !ok {
			malformed++
			if firstBad == 0 {
				firstBad = no
			}
		}
		if cut {
			// containerd splits output into records of at most 16 KiB;
			// a line past the limit without an end is a hole or a forged
			// size, and reading on would only walk through it.
			n.warn(fmt.Sprintf("%s: line %d has more than %d bytes without a line end; the file is not read past it", f.Path, no, maxLogLine))
			break
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return fmt.Errorf("%s: line %d: %w", f.Path, no, rerr)
		}
	}
	if c, ok := r.(*capReader); ok && c.hit {
		n.warn(fmt.Sprintf("%s: decompresses to more than %d bytes; read up to there", f.Path, int64(maxGzipLog)))
	}
	if malformed > 0 {
		n.warn(fmt.Sprintf("%s: %d lines are not CRI log records (first: line %d); given as they are", f.Path, malformed, firstBad))
	}
	return nil
}

// record handles one line; false when it is not a CRI record.
func (j *logJoiner) record(line []byte, f LogFile, no int, cut bool) (bool, error) {
	t, stream, tag, text, ok := parseCRILine(line)
	if !ok {
		return false, j.emit(&LogLine{Text: string(line), Malformed: true, Restart: j.restart, ContainerID: f.ContainerID, File: f.Path, Line: no, Set: j.set})
	}
	return true, j.add(t, stream, tag == 'F', text, f, no, cut)
}

// add joins one record (final: the last of its line) to the partial
// records of its stream before it, and emits the line it ends.
func (j *logJoiner) add(t time.Time, stream string, final bool, text []byte, f LogFile, no int, cut bool) error {
	k := streamIndex(stream)
	p := j.pending[k]
	if p == nil {
		p = &LogLine{Time: t, Stream: stream, Restart: j.restart, ContainerID: f.ContainerID, File: f.Path, Line: no, Set: j.set}
	}
	if j.sizes[k]+len(text) > maxLogLine {
		text = text[:max(0, maxLogLine-j.sizes[k])]
		cut = true
	}
	p.Text += string(text)
	j.sizes[k] += len(text)
	if final && !cut {
		j.pending[k], j.sizes[k] = nil, 0
		return j.emit(p)
	}
	if cut {
		p.Partial = true
		j.pending[k], j.sizes[k] = nil, 0
		return j.emit(p)
	}
	j.pending[k] = p
	return nil
}

// flush emits partial lines that never got their final record.
func (j *logJoiner) flush() error {
	if j == nil {
		return nil
	}
	for k, p := range j.pending {
		if p != nil {
			p.Partial = true
			j.pending[k] = nil
			if err := j.emit(p); err != nil {
				return err
			}
		}
	}
	return nil
}

func (j *logJoiner) emit(l *LogLine) error {
	o := j.opt
	if o.Stream != "" && l.Stream != o.Stream {
		return nil
	}
	if !o.Since.IsZero() || !o.Until.IsZero() {
		if l.Time.IsZero() || (!o.Since.IsZero() && l.Time.Before(o.Since)) || (!o.Until.IsZero() && !l.Time.Before(o.Until)) {
			return nil
		}
	}
	return j.fn(l)
}

// parseCRILine splits a CRI log record: "<RFC 3339 time> <stdout|stderr>
// <P|F>[:<more tags>] <text>". The time may carry 0 to 9 fractional
// digits and Z or an offset.
func parseCRILine(line []byte) (t time.Time, stream string, tag byte, text []byte, ok bool) {
	ts, rest, found := bytes.Cut(line, []byte(" "))
	if !found || len(ts) > 40 {
		return
	}
	var err error
	if t, err = time.Parse(time.RFC3339Nano, string(ts)); err != nil {
		return
	}
	st, rest, found := bytes.Cut(rest, []byte(" "))
	if !found || (string(st) != "stdout" && string(st) != "stderr") {
		return
	}
	tags, text, _ := bytes.Cut(rest, []byte(" "))
	if len(tags) == 0 || (tags[0] != 'P' && tags[0] != 'F') || (len(tags) > 1 && tags[1] != ':') {
		return
	}
	return t.UTC(), string(st), tags[0], text, true
}

// capReader reads at most left bytes, then reports the end.
type capReader struct {
	r    io.Reader
	left int64
	hit  bool
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		c.hit = true
		return 0, io.EOF
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

// closeData releases a file of a source that holds a descriptor per open
// file (a host directory); image sources hold none.
func closeData(f vfs.File) {
	if c, ok := f.(io.Closer); ok {
		c.Close()
	}
}

// ownLogSet is the log of a container whose runtime keeps it itself
// rather than in kubelet's CRI layout: Docker's and Podman's.
func (n *Node) ownLogSet(c *containerd.Container) (*LogSet, error) {
	if c.Engine == EnginePodman {
		return n.podmanLogSet(c)
	}
	return n.dockerLogSet(c)
}

// containerLogFiles are the log files of c's own restart, for Timeline.
func (n *Node) containerLogFiles(c *containerd.Container) (*LogSet, []LogFile, error) {
	if c.Engine == EngineDocker || c.Engine == EnginePodman {
		set, err := n.ownLogSet(c)
		if err != nil {
			return nil, nil, err
		}
		return set, set.Files, nil
	}
	st, err := n.State()
	if err != nil {
		return nil, nil, err
	}
	r, ok := n.restartOf(st, c)
	if !ok {
		return nil, nil, fmt.Errorf("%s: restart count unknown (no log path, no CRI metadata)", Describe(c))
	}
	set, err := n.logSet(c, []containerd.Container{*c})
	if err != nil {
		return nil, nil, err
	}
	var own []LogFile
	for _, f := range set.Files {
		if f.Restart == r {
			f.ContainerID = c.ID
			own = append(own, f)
		}
	}
	return set, own, nil
}
