package node

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"time"

	"github.com/ctrlift/ctrlift/containerd"
	"github.com/ctrlift/ctrlift/export"
	"github.com/ctrlift/ctrlift/layers"
	"github.com/ctrlift/ctrlift/vfs"
)

// TimeKind says what a timeline row's time is.
type TimeKind string

// The kinds of time of a timeline. A file has four (TimeBorn only where
// the filesystem records it); with TimelineOptions.ByEntry a file is one
// row of kind TimeEntry carrying all four.
const (
	TimeModified      TimeKind = "modified" // mtime
	TimeAccessed      TimeKind = "accessed" // atime
	TimeChanged       TimeKind = "changed"  // ctime
	TimeBorn          TimeKind = "born"     // crtime (ext4, XFS v5)
	TimeEntry         TimeKind = "entry"    // a file's four times in one row (bodyfile)
	ContainerCreated  TimeKind = "container created"
	ContainerUpdated  TimeKind = "container updated"
	ContainerStarted  TimeKind = "container started"
	ContainerFinished TimeKind = "container finished"
	ImageCreated      TimeKind = "image created" // the image record in meta.db: its first pull or import
	LogWritten        TimeKind = "log line"
)

var timeKinds = []TimeKind{TimeModified, TimeAccessed, TimeChanged, TimeBorn, TimeEntry,
	ContainerCreated, ContainerUpdated, ContainerStarted, ContainerFinished, ImageCreated, LogWritten}

func (k TimeKind) String() string { return string(k) }

// IsFile reports a row describing a file.
func (k TimeKind) IsFile() bool {
	switch k {
	case TimeModified, TimeAccessed, TimeChanged, TimeBorn, TimeEntry:
		return true
	}
	return false
}

// Description is the time's description in plaso's words (timestamp_desc
// of plaso and Timesketch).
func (k TimeKind) Description() string {
	switch k {
	case TimeModified, LogWritten: // plaso's cri:container:log:entry says the same
		return "Content Modification Time"
	case TimeAccessed:
		return "Last Access Time"
	case TimeChanged:
		return "Metadata Modification Time"
	case TimeBorn, ContainerCreated, ImageCreated:
		return "Creation Time"
	case ContainerUpdated:
		return "Update Time"
	case ContainerStarted:
		return "Start Time"
	case ContainerFinished:
		return "End Time"
	}
	return string(k)
}

// DataType is the row's data_type, as plaso names its events: fs:stat for
// files, cri:container:log:entry for CRI log lines.
func (k TimeKind) DataType() string {
	switch {
	case k.IsFile():
		return "fs:stat"
	case k == ImageCreated:
		return "containerd:image"
	case k == LogWritten:
		return "cri:container:log:entry"
	}
	return "containerd:container"
}

// TimelineSource is the container a timeline row comes from.
type TimelineSource struct {
	Namespace     string // containerd namespace
	ContainerID   string
	PodNamespace  string
	PodName       string
	PodUID        string
	ContainerName string
	Image         string
	Layers        []TimelineLayer // the layers files come from, top (writable) first
	idx           int
}

// TimelineLayer is one layer of a TimelineSource.
type TimelineLayer struct {
	Name     string // snapshotter/id, e.g. overlayfs/10
	Dir      string // its directory on the partition
	Writable bool   // the container's own layer
	DiffID   string // an image layer's uncompressed digest, when known
}

// Label is "writable" for the container's own layer, else the layer's
// name (snapshotter/id).
func (l *TimelineLayer) Label() string {
	if l.Writable {
		return "writable"
	}
	return l.Name
}

// Ref names the source as references name containers: K8SNS/POD/NAME,
// or NAMESPACE/ID for a container not created through CRI; "" for
// layers given alone.
func (s *TimelineSource) Ref() string {
	switch {
	case s.PodName != "" && s.ContainerName != "":
		return s.PodNamespace + "/" + s.PodName + "/" + s.ContainerName
	case s.ContainerID != "":
		return s.Namespace + "/" + s.ContainerID
	}
	return ""
}

// TimelineRow is one row of a timeline: a time of a file, an event of the
// runtime's state, or a log line.
type TimelineRow struct {
	Time   time.Time
	Kind   TimeKind
	Source *TimelineSource

	// Files (Kind.IsFile()).
	Path      string // absolute in the container
	Layer     int    // index into Source.Layers; -1 for none
	Change    string // with TimelineOptions.Changes: added, modified, deleted; "" when unchanged
	Mode      uint32 // type and permission bits, as vfs.Inode.Mode
	Inode     uint64 // in its layer's filesystem
	UID, GID  uint32
	Size      int64
	Target    string // a symlink's target
	Whiteout  bool   // an overlay whiteout: Path was deleted
	Opaque    bool   // an opaque directory: what the image had below it is hidden
	Mtime     time.Time
	Atime     time.Time
	Ctime     time.Time
	Crtime    time.Time
	HasCrtime bool
	SHA256    string // with TimelineOptions.Hashes
	MD5       string
	SHA1      string
	// HashOmitted says why a file has no digests.
	HashOmitted string

	// Container events.
	ExitCode *int32
	Reason   string
	// Image events: the image's name.
	Image string

	// Log lines.
	Stream  string
	Restart int
	Text    string
	Partial bool
	LogFile string // on the partition

	seq uint64
}

// PartitionPath is where the file is on the partition: its layer's
// directory and its path.
func (r *TimelineRow) PartitionPath() string {
	if l := r.LayerInfo(); l != nil {
		if r.Path == "/" {
			return l.Dir
		}
		return l.Dir + r.Path
	}
	return ""
}

// LayerInfo is the row's layer, or nil.
func (r *TimelineRow) LayerInfo() *TimelineLayer {
	if r.Source == nil || r.Layer < 0 || r.Layer >= len(r.Source.Layers) {
		return nil
	}
	return &r.Source.Layers[r.Layer]
}

// FileType is file, dir, symlink, char, block, fifo or socket.
func (r *TimelineRow) FileType() string {
	switch r.Mode & vfs.TypeMask {
	case vfs.TypeRegular:
		return "file"
	case vfs.TypeDir:
		return "dir"
	case vfs.TypeSymlink:
		return "symlink"
	case vfs.TypeChar:
		return "char"
	case vfs.TypeBlock:
		return "block"
	case vfs.TypeFIFO:
		return "fifo"
	case vfs.TypeSocket:
		return "socket"
	}
	return ""
}

// Message is a one-line description of the row, for Timesketch: the
// file, its metadata and layer; the event; or the log text.
func (r *TimelineRow) Message() string {
	who := ""
	if r.Source != nil {
		who = r.Source.Ref()
	}
	switch r.Kind {
	case ContainerCreated:
		return "container " + who + " created (meta.db)"
	case ContainerUpdated:
		return "container " + who + " record updated (meta.db)"
	case ContainerStarted:
		return "container " + who + " started (CRI status)"
	case ContainerFinished:
		s := "container " + who + " finished"
		if r.ExitCode != nil {
			s += " with exit code " + strconv.Itoa(int(*r.ExitCode))
		}
		if r.Reason != "" {
			s += " (" + r.Reason + ")"
		}
		return s + " (CRI status)"
	case ImageCreated:
		return "image " + r.Image + " created in containerd (meta.db record: its first pull or import)"
	case LogWritten:
		s := r.Stream + ": " + r.Text
		if r.Partial {
			s += " (partial)"
		}
		return s
	}
	b := make([]byte, 0, len(r.Path)+len(r.Target)+64)
	b = append(b, r.Path...)
	if r.Target != "" {
		b = append(b, " -> "...)
		b = append(b, r.Target...)
	}
	b = append(b, ": "...)
	if r.Whiteout {
		b = append(b, "whiteout (deleted)"...)
	} else {
		b = append(b, r.FileType()...)
		b = append(b, ' ')
		b = append(b, octalMode(r.Mode)...)
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(r.UID), 10)
		b = append(b, ':')
		b = strconv.AppendUint(b, uint64(r.GID), 10)
		if r.Mode&vfs.TypeMask == vfs.TypeRegular {
			b = append(b, ' ')
			b = strconv.AppendInt(b, r.Size, 10)
			b = append(b, " bytes"...)
		}
		if r.Opaque {
			b = append(b, ", opaque"...)
		}
	}
	if l := r.LayerInfo(); l != nil {
		b = append(b, ", layer "...)
		b = append(b, l.Label()...)
	}
	if r.Change != "" {
		b = append(b, ", "...)
		b = append(b, r.Change...)
	}
	return string(b)
}

// octalMode is a mode's permission bits in octal, four digits ("0644"),
// as records give them.
func octalMode(mode uint32) string {
	p := mode & 0o7777
	return string([]byte{'0' + byte(p>>9), '0' + byte(p>>6&7), '0' + byte(p>>3&7), '0' + byte(p&7)})
}

// DefaultTimelineRows is how many rows Timeline sorts in memory before it
// spills sorted runs to a temporary directory.
const DefaultTimelineRows = 100_000

// TimelineOptions tune Timeline.
type TimelineOptions struct {
	// Changes: the files of the container's writable layer only, with
	// how each changed the image (whiteouts as deleted, with their own
	// times); otherwise every file of the merged view.
	Changes bool
	// Logs adds the container's CRI log lines (its own restart's files).
	Logs bool
	// Hashes are the digests of file contents to compute (reads every
	// regular file); none by default.
	Hashes []export.Hash
	// Layers, e.g. whether missing layers are skipped.
	Layers LayerOptions
	// ByEntry gives one row per file with its four times (TimeEntry, as
	// a bodyfile wants), sorted by mtime, instead of one row per time.
	ByEntry bool
	// TempDir is where the directory of spilled runs is made; "" is the
	// system's temporary directory. It is removed before Timeline returns.
	TempDir string
	// MemoryRows is how many rows are sorted in memory at once (fewer
	// when they hold more than 32 MiB); 0 is DefaultTimelineRows.
	MemoryRows int
	// List selects the containers as Containers does, when Timeline is
	// given no reference.
	List ListOptions
}

// TimelineSelection is what Timeline made a timeline of.
type TimelineSelection struct {
	Containers []containerd.Container // in the order given or listed
	Hidden     Hidden                 // with no reference: what the listing left out
	Rows       int64                  // rows written
}

// Timeline streams, sorted by time (then in the order found), the times
// of every file of each container's merged view (or, with opt.Changes,
// of its writable layer), the runtime's events (container created,
// updated, started, finished with its exit code; its image stored) and,
// with opt.Logs, its log lines. fn's row is valid only during the call.
// Rows past opt.MemoryRows are sorted in runs spilled to a temporary
// directory and merged, so memory stays bounded whatever the size.
//
// With no refs, the containers are those Containers lists with opt.List;
// otherwise each ref is as for ResolveAll (pod:K8SNS/POD for a whole
// pod), and one that matches the restarts of one container of a pod
// (POD/NAME) names them all.
//
// A container whose layers cannot be read fails the timeline when it is
// the only one; among several it is reported with n's warnings and its
// events are kept.
func (n *Node) Timeline(refs []string, opt TimelineOptions, fn func(*TimelineRow) error) (*TimelineSelection, error) {
	sel := &TimelineSelection{}
	if len(refs) == 0 {
		l, err := n.Containers(opt.List)
		if err != nil {
			return nil, err
		}
		sel.Containers, sel.Hidden = l.Shown, l.Hidden
	}
	seen := map[string]bool{}
	for _, ref := range refs {
		cs, err := n.resolveRestarts(ref, opt.List)
		if err != nil {
			return nil, err
		}
		for _, c := range cs {
			if k := c.Namespace + "/" + c.ID; !seen[k] {
				seen[k] = true
				sel.Containers = append(sel.Containers, c)
			}
		}
	}
	if len(sel.Containers) == 0 {
		return sel, errors.New("no container to make a timeline of")
	}
	err := n.TimelineContainers(sel.Containers, opt, func(r *TimelineRow) error {
		sel.Rows++
		return fn(r)
	})
	return sel, err
}

// TimelineContainers is Timeline for containers already resolved.
func (n *Node) TimelineContainers(cs []containerd.Container, opt TimelineOptions, fn func(*TimelineRow) error) error {
	t := newTimeliner(n, opt)
	defer t.close()
	for i := range cs {
		if err := t.container(&cs[i], len(cs) == 1); err != nil {
			return err
		}
	}
	return t.s.emit(fn)
}

// TimelineLayers is Timeline for layers given directly (DirLayers,
// SnapshotLayers), top first, with no container: files only.
func (n *Node) TimelineLayers(ls []layers.Layer, opt TimelineOptions, fn func(*TimelineRow) error) error {
	t := newTimeliner(n, opt)
	defer t.close()
	src := t.s.source(&TimelineSource{})
	for i, l := range ls {
		src.Layers = append(src.Layers, TimelineLayer{Name: l.Name, Dir: l.Dir, Writable: opt.Changes && i == 0})
	}
	if err := t.files(src, ls); err != nil {
		return err
	}
	return t.s.emit(fn)
}

type timeliner struct {
	n   *Node
	s   *rowSorter
	opt TimelineOptions
	h   *hasher // with opt.Hashes
}

func newTimeliner(n *Node, opt TimelineOptions) *timeliner {
	t := &timeliner{n: n, s: newRowSorter(opt), opt: opt}
	if len(opt.Hashes) > 0 {
		t.h = newHasher(opt.Hashes)
	}
	return t
}

func (t *timeliner) close() {
	t.h.stop()
	t.s.close()
}

func (t *timeliner) container(c *containerd.Container, only bool) error {
	st, err := t.n.State()
	if err != nil {
		return err
	}
	src := t.s.source(&TimelineSource{Namespace: c.Namespace, ContainerID: c.ID, PodNamespace: c.PodNamespace,
		PodName: c.PodName, PodUID: c.PodUID, ContainerName: c.ContainerName, Image: c.Image})
	event := func(k TimeKind, at time.Time, set func(*TimelineRow)) error {
		if at.IsZero() {
			return nil
		}
		r := TimelineRow{Time: at, Kind: k, Source: src, Layer: -1}
		if set != nil {
			set(&r)
		}
		return t.s.add(&r)
	}
	if err := event(ContainerCreated, c.CreatedAt, nil); err != nil {
		return err
	}
	if !c.UpdatedAt.Equal(c.CreatedAt) {
		if err := event(ContainerUpdated, c.UpdatedAt, nil); err != nil {
			return err
		}
	}
	if err := event(ContainerStarted, c.StartedAt, nil); err != nil {
		return err
	}
	if err := event(ContainerFinished, c.FinishedAt, func(r *TimelineRow) { r.ExitCode, r.Reason = c.ExitCode, c.Reason }); err != nil {
		return err
	}
	var img *containerd.Image
	for i := range st.Images {
		if st.Images[i].Namespace == c.Namespace && st.Images[i].Name == c.Image {
			img = &st.Images[i]
			if err := event(ImageCreated, img.CreatedAt, func(r *TimelineRow) { r.Image = img.Name }); err != nil {
				return err
			}
			break
		}
	}
	if err := t.containerFiles(c, src, img); err != nil {
		if only || isWriteErr(err) {
			return err
		}
		t.n.warn(fmt.Sprintf("container %s: the timeline lacks its files from here on: %v", Describe(c), err))
	}
	if t.opt.Logs && c.Kind != "sandbox" {
		if err := t.logs(c, src); err != nil {
			if isWriteErr(err) {
				return err
			}
			t.n.warn(fmt.Sprintf("container %s: the timeline lacks its log: %v", Describe(c), err))
		}
	}
	return nil
}

// spillError is a failure to write or read the spilled runs: never
// a container's fault.
type spillError struct{ err error }

func (e *spillError) Error() string { return "timeline: temporary runs: " + e.err.Error() }
func (e *spillError) Unwrap() error { return e.err }

func isWriteErr(err error) bool {
	var s *spillError
	return errors.As(err, &s)
}

func (t *timeliner) containerFiles(c *containerd.Container, src *TimelineSource, img *containerd.Image) error {
	ls, err := t.n.Layers(c, t.opt.Layers)
	if err != nil {
		return err
	}
	diffIDs := map[string]string{} // chain id → diff id
	if img != nil {
		for i, ch := range containerd.ChainIDs(img.DiffIDs) {
			diffIDs[ch] = img.DiffIDs[i]
		}
	}
	for _, l := range ls {
		tl := TimelineLayer{Name: l.Name, Dir: l.Dir}
		for j, cl := range c.Layers {
			if cl.Path == l.Dir {
				tl.Writable = j == 0 && cl.Kind == containerd.SnapshotActive
				tl.DiffID = cl.DiffID
				if tl.DiffID == "" && !tl.Writable {
					tl.DiffID = diffIDs[cl.SnapshotKey]
				}
				break
			}
		}
		src.Layers = append(src.Layers, tl)
	}
	return t.files(src, ls)
}

// files adds the rows of ls's files: the merged view, or the top layer's
// own entries with Changes.
func (t *timeliner) files(src *TimelineSource, ls []layers.Layer) error {
	err := t.walkFiles(src, ls)
	if t.h != nil {
		if derr := t.h.drain(true, t.rows); err == nil {
			err = derr
		}
	}
	return err
}

func (t *timeliner) walkFiles(src *TimelineSource, ls []layers.Layer) error {
	if !t.opt.Changes {
		m, err := layers.New(ls, layers.Options{AllowMissing: t.opt.Layers.AllowMissing})
		if err != nil {
			return err
		}
		err = m.Walk(func(p string, e *layers.Entry) error {
			return t.entry(src, abs(p), e.Layer, e.Inode, e.FS(), "", false, false)
		})
		for _, w := range m.Warnings {
			t.n.warn(w)
		}
		return err
	}
	if cp, native := t.n.parents[ls[0].Dir]; native && len(ls) == 1 {
		if cp.layer.FS != nil {
			src.Layers = append(src.Layers, TimelineLayer{Name: cp.layer.Name, Dir: cp.layer.Dir})
		}
		_, err := t.n.compareWithParent(ls, func(ch layers.Change) error {
			return t.entry(src, ch.Path, ch.Entry.Layer, ch.Entry.Inode, ch.Entry.FS(), ch.Kind.String(), false, false)
		})
		return err
	}
	var lower *layers.Merged
	if len(ls) > 1 {
		var err error
		if lower, err = layers.New(ls[1:], layers.Options{AllowMissing: t.opt.Layers.AllowMissing}); err != nil {
			return err
		}
	}
	return layers.WalkLayer(ls[0], layers.Options{}, func(p string, e *layers.Entry) error {
		change, err := changeOf(lower, p, e)
		if err != nil {
			return err
		}
		return t.entry(src, abs(p), 0, e.Inode, e.FS(), change, e.Whiteout, e.Opaque)
	})
}

// changeOf says how the writable layer's entry e at p changes the image,
// as Diff does: a whiteout deletes; a name the layers below lack is
// added; a directory that only holds changes below it is unchanged ("").
func changeOf(lower *layers.Merged, p string, e *layers.Entry) (string, error) {
	if e.Whiteout {
		return layers.Deleted.String(), nil
	}
	if p == "." {
		return "", nil
	}
	if lower == nil {
		return layers.Added.String(), nil
	}
	below, err := lower.Lookup(p)
	switch {
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, layers.ErrNotDir):
		return layers.Added.String(), nil
	case err != nil:
		return "", err
	case e.IsDir() && below.IsDir():
		if e.Opaque || e.Mode != below.Mode || e.Uid != below.Uid || e.Gid != below.Gid {
			return layers.Modified.String(), nil
		}
		return "", nil
	}
	return layers.Modified.String(), nil
}

func abs(p string) string {
	if p == "." {
		return "/"
	}
	return "/" + p
}

// entry adds the rows of one file.
func (t *timeliner) entry(src *TimelineSource, p string, layer int, in *vfs.Inode, fsys vfs.FS, change string, whiteout, opaque bool) error {
	r := &TimelineRow{Source: src, Path: p, Layer: layer, Change: change, Mode: in.Mode, Inode: in.Ino, UID: in.Uid, GID: in.Gid,
		Size: in.Size, Whiteout: whiteout, Opaque: opaque, Mtime: in.Mtime, Atime: in.Atime, Ctime: in.Ctime, Crtime: in.Crtime, HasCrtime: in.HasCrtime}
	if in.IsSymlink() {
		target, err := fsys.LinkTarget(in)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		r.Target = target
	}
	if t.h != nil {
		// In order, once its digests (read by the hashing workers) are in.
		var job *hashJob
		if in.IsRegular() && !whiteout {
			job = t.h.submit(fsys, in)
		}
		return t.h.queue(r, job, t.rows)
	}
	return t.rows(r)
}

// rows adds the rows of one file's entry r.
func (t *timeliner) rows(r *TimelineRow) error {
	if t.opt.ByEntry {
		return t.s.addAt(r, TimeEntry, r.Mtime)
	}
	// One row shared by the times' rows.
	for _, k := range [...]struct {
		k  TimeKind
		at time.Time
	}{{TimeModified, r.Mtime}, {TimeAccessed, r.Atime}, {TimeChanged, r.Ctime}, {TimeBorn, r.Crtime}} {
		if k.k == TimeBorn && !r.HasCrtime {
			continue
		}
		if err := t.s.addAt(r, k.k, k.at); err != nil {
			return err
		}
	}
	return nil
}

// logs adds c's own log lines (the files of its restart).
func (t *timeliner) logs(c *containerd.Container, src *TimelineSource) error {
	set, files, err := t.n.containerLogFiles(c)
	if err != nil {
		return err
	}
	skipped := 0
	err = t.n.readLogs(set, files, LogOptions{}, func(l *LogLine) error {
		if l.Time.IsZero() {
			skipped++
			return nil
		}
		r := TimelineRow{Time: l.Time, Kind: LogWritten, Source: src, Layer: -1, Stream: l.Stream, Restart: l.Restart,
			Text: l.Text, Partial: l.Partial, LogFile: l.File}
		return t.s.add(&r)
	})
	if skipped > 0 {
		t.n.warn(fmt.Sprintf("container %s: %d log lines without a time are left out of the timeline (ctrlift logs shows them)", Describe(c), skipped))
	}
	return err
}
