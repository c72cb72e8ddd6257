package containerd

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/ctrlift/ctrlift/containerd/boltsafe"
)

// Layout of a containerd root.
const (
	MetaDBPath      = "io.containerd.metadata.v1.bolt/meta.db"
	contentBlobsDir = "io.containerd.content.v1.content/blobs"
	criDir          = "io.containerd.grpc.v1.cri"
	taskDir         = "io.containerd.runtime.v2.task"
	snapshotterPfx  = "io.containerd.snapshotter.v1."
)

// rootCandidates are the containerd roots FindRoot tries, relative to the
// root of the partition being searched, most common first. On COS the
// STATE partition holds var/lib/containerd at its top; a partition mounted
// at /var holds lib/containerd.
var rootCandidates = []string{
	"var/lib/containerd",
	"lib/containerd",
	"containerd",
	"var/lib/rancher/k3s/agent/containerd",
	"var/lib/rancher/rke2/agent/containerd",
	"var/snap/microk8s/common/var/lib/containerd",
	"ProgramData/containerd/root",
	"var/lib/docker/containerd/daemon", // the containerd dockerd starts itself when none runs (Docker's image store in namespace moby)
	".",                                // a copy of /var/lib/containerd itself (a directory or tar input)
}

// RootNotFoundError lists the paths FindRoot searched.
type RootNotFoundError struct {
	Searched []string
	Override bool // the path was given explicitly
	Reason   string
}

func (e *RootNotFoundError) Error() string {
	if e.Override {
		return fmt.Sprintf("containerd root %s: %s", e.Searched[0], e.Reason)
	}
	return fmt.Sprintf("no containerd root found (no %s under any of: %s)", MetaDBPath, strings.Join(e.Searched, ", "))
}

// cleanRel turns a user or on-disk path into a slash path relative to the
// filesystem root, rejecting paths that climb out of it.
func cleanRel(p string) (string, error) {
	p = strings.TrimLeft(strings.ReplaceAll(p, "\\", "/"), "/")
	p = path.Clean(p)
	if p == "" || p == "." {
		return ".", nil
	}
	if !fs.ValidPath(p) {
		return "", fmt.Errorf("path %q leaves the filesystem root", p)
	}
	return p, nil
}

// FindRoot returns the containerd root on fsys: override when set (it must
// hold meta.db), else the first of rootCandidates that holds meta.db. The
// error, a *RootNotFoundError, lists the paths searched.
func FindRoot(fsys fs.FS, override string) (string, error) {
	if override != "" {
		p, err := cleanRel(override)
		if err != nil {
			return "", &RootNotFoundError{Searched: []string{override}, Override: true, Reason: err.Error()}
		}
		st, err := fs.Stat(fsys, p)
		switch {
		case err != nil:
			return "", &RootNotFoundError{Searched: []string{p}, Override: true, Reason: err.Error()}
		case !st.IsDir():
			return "", &RootNotFoundError{Searched: []string{p}, Override: true, Reason: "not a directory"}
		}
		if _, err := fs.Stat(fsys, path.Join(p, MetaDBPath)); err != nil {
			return "", &RootNotFoundError{Searched: []string{p}, Override: true, Reason: fmt.Sprintf("no %s: %v", MetaDBPath, err)}
		}
		return p, nil
	}
	for _, c := range rootCandidates {
		if holdsMetaDB(fsys, c) {
			return c, nil
		}
	}
	return "", &RootNotFoundError{Searched: slices.Clone(rootCandidates)}
}

// OtherRoots returns the containerd roots on fsys, other than root, that
// FindRoot would have taken had root not been there: a node can hold two
// (the system containerd's and one dockerd started itself), and FindRoot
// returns only the first.
func OtherRoots(fsys fs.FS, root string) []string {
	var out []string
	for _, c := range rootCandidates {
		if c == root || c == "." {
			continue
		}
		if holdsMetaDB(fsys, c) {
			out = append(out, c)
		}
	}
	return out
}

// holdsMetaDB says whether root holds containerd's metadata database.
func holdsMetaDB(fsys fs.FS, root string) bool {
	st, err := fs.Stat(fsys, path.Join(root, MetaDBPath))
	return err == nil && st.Mode().IsRegular()
}

// openRegular opens name, which must be a regular file, and returns its size.
func openRegular(fsys fs.FS, name string) (fs.File, int64, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("%s: not a regular file (%v)", name, st.Mode().Type())
	}
	return f, st.Size(), nil
}

// readFile reads a regular file of at most limit bytes.
func readFile(fsys fs.FS, name string, limit int64) ([]byte, error) {
	f, size, err := openRegular(fsys, name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if size > limit {
		return nil, fmt.Errorf("%s: %d bytes exceeds the %d-byte limit", name, size, limit)
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: more than %d bytes", name, limit)
	}
	return b, nil
}

// readBolt reads a bbolt file up to the high-water mark of its meta pages
// (boltsafe.UsedSize): a size field inflated by damage or a sparse tail
// must not turn into gigabytes of zeros in memory.
func readBolt(fsys fs.FS, name string) ([]byte, error) {
	f, size, err := openRegular(fsys, name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	head := make([]byte, min(size, boltsafe.HeadSize))
	if _, err := io.ReadFull(f, head); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	used := boltsafe.UsedSize(head, size)
	if used > boltsafe.MaxSize {
		return nil, fmt.Errorf("%s: %d bytes of pages in use (file size %d) exceed the %d-byte limit", name, used, size, int64(boltsafe.MaxSize))
	}
	if used <= int64(len(head)) {
		return head[:used], nil
	}
	data := make([]byte, used)
	copy(data, head)
	if _, err := io.ReadFull(f, data[len(head):]); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return data, nil
}

func dbInfo(p string, info boltsafe.Info) DBInfo {
	return DBInfo{Path: p, Size: info.Size, PageSize: info.PageSize, MetaPage: info.Meta, TxID: info.TxID, Warnings: info.Warnings}
}

type snapRef struct{ ns, snapshotter, key string }

// Load reads the containerd state under root (see FindRoot) on fsys:
// meta.db, every snapshotter's metadata.db, the content store and the CRI
// plugin's files. A damaged or missing meta.db is an error; problems with
// anything else become State.Warnings.
func Load(fsys fs.FS, root string) (*State, error) {
	root, err := cleanRel(root)
	if err != nil {
		return nil, fmt.Errorf("containerd: %w", err)
	}
	s := &State{Root: root, fsys: fsys, snapDBs: map[string]*SnapshotterDB{}, metaSnap: map[snapRef]*Snapshot{}}
	metaPath := path.Join(root, MetaDBPath)
	data, err := readBolt(fsys, metaPath)
	if err != nil {
		return nil, fmt.Errorf("containerd: meta.db: %w", err)
	}
	m, err := ReadMetaDB(data)
	if err != nil {
		return nil, fmt.Errorf("containerd: %s: %w", metaPath, err)
	}
	s.MetaDB = dbInfo(metaPath, m.Info)
	s.MetaDB.Schema = m.Schema
	s.warnf("meta.db", m.Warnings)
	s.warnf("meta.db", m.Info.Warnings)
	s.Namespaces, s.Containers, s.Images, s.Content = m.Namespaces, m.Containers, m.Images, m.Content

	s.loadSnapshotters(m)
	s.joinSnapshots(m.Snapshots)
	s.loadContent()
	s.loadImages()
	s.loadCRI()
	for i := range s.Containers {
		c := &s.Containers[i]
		c.Layers = []Layer{} // "layers": [] rather than null
		if c.SnapshotKey == "" {
			continue
		}
		layers, err := s.Chain(c.Namespace, c.Snapshotter, c.SnapshotKey)
		if layers != nil {
			c.Layers = layers
		}
		if err != nil {
			c.LayersError = err.Error()
			s.Warnings = append(s.Warnings, fmt.Sprintf("container %s/%s: %v", c.Namespace, c.ID, err))
		}
	}
	return s, nil
}

func (s *State) warnf(prefix string, ws []string) {
	for _, w := range ws {
		s.Warnings = append(s.Warnings, prefix+": "+w)
	}
}

// snapshotterDirs maps snapshotter names to the directory holding their
// metadata.db: <root>/io.containerd.snapshotter.v1.<name>, or its
// snapshotter/ subdirectory (gcfs).
func (s *State) snapshotterDirs(names []string) map[string]string {
	dirs := map[string]string{}
	entries, err := fs.ReadDir(s.fsys, s.Root)
	if err != nil {
		s.Warnings = append(s.Warnings, fmt.Sprintf("reading %s: %v", s.Root, err))
	}
	for _, e := range entries {
		if name, ok := strings.CutPrefix(e.Name(), snapshotterPfx); ok && e.IsDir() && validName(name) {
			dirs[name] = ""
		}
	}
	for _, n := range names {
		if _, ok := dirs[n]; !ok && n != "" {
			if !validName(n) {
				s.Warnings = append(s.Warnings, fmt.Sprintf("snapshotter name %q is not a valid identifier; ignored", n))
				continue
			}
			dirs[n] = ""
		}
	}
	for name := range dirs {
		base := path.Join(s.Root, snapshotterPfx+name)
		dirs[name] = base
		if _, err := fs.Stat(s.fsys, path.Join(base, "metadata.db")); err != nil {
			if _, err := fs.Stat(s.fsys, path.Join(base, "snapshotter", "metadata.db")); err == nil {
				dirs[name] = path.Join(base, "snapshotter")
			}
		}
	}
	return dirs
}

func (s *State) loadSnapshotters(m *MetaDB) {
	var used []string
	for _, sn := range m.Snapshots {
		used = append(used, sn.Snapshotter)
	}
	for _, c := range m.Containers {
		used = append(used, c.Snapshotter)
	}
	dirs := s.snapshotterDirs(used)
	names := make([]string, 0, len(dirs))
	for n := range dirs {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, name := range names {
		info := SnapshotterInfo{Name: name, Dir: dirs[name]}
		if name == "gcfs" {
			s.gcfsDir = dirs[name]
		}
		p := path.Join(dirs[name], "metadata.db")
		data, err := readBolt(s.fsys, p)
		var sdb *SnapshotterDB
		if err == nil {
			sdb, err = ReadSnapshotterDB(data)
		}
		if err != nil {
			missing := errors.Is(err, fs.ErrNotExist)
			if missing {
				info.Error = "no metadata.db"
			} else {
				info.Error = err.Error()
			}
			// An idle plugin directory without a database is normal; only a
			// snapshotter that meta.db refers to must have one.
			if !missing || slices.Contains(used, name) {
				s.Warnings = append(s.Warnings, fmt.Sprintf("snapshotter %s: %s: %s", name, p, info.Error))
			}
			s.Snapshotters = append(s.Snapshotters, info)
			continue
		}
		di := dbInfo(p, sdb.Info)
		info.DB = &di
		info.Snapshots = len(sdb.Snapshots)
		s.warnf("snapshotter "+name, sdb.Warnings)
		s.warnf("snapshotter "+name, sdb.Info.Warnings)
		s.snapDBs[name] = sdb
		s.Snapshotters = append(s.Snapshotters, info)
	}
}

// snapshotDir is where a snapshotter keeps snapshot id's files.
func (s *State) snapshotDir(snapshotter string, id uint64) string {
	info := s.snapshotterInfo(snapshotter)
	if info == nil {
		return ""
	}
	dir := path.Join(info.Dir, "snapshots", fmt.Sprint(id))
	switch snapshotter {
	case "native", "windows", "btrfs":
		return dir
	case "overlayfs", "gcfs", "fuse-overlayfs", "stargz":
		return path.Join(dir, "fs")
	}
	if st, err := fs.Stat(s.fsys, path.Join(dir, "fs")); err == nil && st.IsDir() {
		return path.Join(dir, "fs")
	}
	return dir
}

func (s *State) snapshotterInfo(name string) *SnapshotterInfo {
	for i := range s.Snapshotters {
		if s.Snapshotters[i].Name == name {
			return &s.Snapshotters[i]
		}
	}
	return nil
}

// joinSnapshots completes meta.db's snapshots with their snapshotter
// records, and adds snapshotter records meta.db does not name.
func (s *State) joinSnapshots(meta []Snapshot) {
	used := map[string]map[string]bool{}
	for _, sn := range meta {
		sdb := s.snapDBs[sn.Snapshotter]
		if sdb == nil {
			sn.Missing = true
			s.Snapshots = append(s.Snapshots, sn)
			continue
		}
		name := sn.Name
		if _, ok := sdb.Snapshots[name]; !ok {
			if n, err := sdb.findName(sn.Namespace, sn.Key); err == nil {
				name = n
			}
		}
		r := sdb.Snapshots[name]
		if r == nil {
			sn.Missing = true
			s.Warnings = append(s.Warnings, fmt.Sprintf("snapshot %s/%s/%s (%s) is not in the snapshotter's metadata.db", sn.Namespace, sn.Snapshotter, sn.Key, sn.Name))
			s.Snapshots = append(s.Snapshots, sn)
			continue
		}
		if used[sn.Snapshotter] == nil {
			used[sn.Snapshotter] = map[string]bool{}
		}
		used[sn.Snapshotter][name] = true
		s.Snapshots = append(s.Snapshots, s.merge(sn, r))
	}
	for _, name := range sortedMapKeys(s.snapDBs) {
		sdb := s.snapDBs[name]
		for _, n := range sdb.Names {
			if used[name][n] {
				continue
			}
			r := sdb.Snapshots[n]
			ns, key, _ := splitName(n)
			sn := Snapshot{Namespace: ns, Snapshotter: name, Key: key, Name: n, Orphan: true}
			if r.Parent != "" {
				_, sn.Parent, _ = splitName(r.Parent)
			}
			s.Snapshots = append(s.Snapshots, s.merge(sn, r))
		}
	}
	for i := range s.Snapshots {
		sn := &s.Snapshots[i]
		if !sn.Orphan {
			s.metaSnap[snapRef{sn.Namespace, sn.Snapshotter, sn.Key}] = sn
		}
	}
}

// merge fills a meta.db snapshot with its snapshotter record. meta.db's
// times and labels win; the snapshotter's fill gaps.
func (s *State) merge(sn Snapshot, r *SnapshotRecord) Snapshot {
	sn.Name = r.Name
	sn.ID = r.ID
	sn.Kind = r.Kind
	sn.Size = r.Size
	sn.Inodes = r.Inodes
	sn.Path = s.snapshotDir(sn.Snapshotter, r.ID)
	if sn.CreatedAt.IsZero() {
		sn.CreatedAt = r.CreatedAt
	}
	if sn.UpdatedAt.IsZero() {
		sn.UpdatedAt = r.UpdatedAt
	}
	for k, v := range r.Labels {
		if sn.Labels == nil {
			sn.Labels = map[string]string{}
		}
		if _, ok := sn.Labels[k]; !ok {
			sn.Labels[k] = v
		}
	}
	if !sn.Orphan && r.Parent != "" {
		if _, pk, _ := splitName(r.Parent); pk != sn.Parent {
			s.Warnings = append(s.Warnings, fmt.Sprintf("snapshot %s/%s/%s: meta.db parent %q, snapshotter parent %q", sn.Namespace, sn.Snapshotter, sn.Key, sn.Parent, r.Parent))
		}
	}
	return sn
}

func sortedMapKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// identRE is containerd's identifier grammar (namespaces, container ids,
// snapshotter names). Names from the evidence that do not match are not
// used to build paths.
var identRE = regexp.MustCompile(`^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$`)

// validName reports whether s is a single safe path element: an identifier,
// or a gcfs layer cache name such as sha256=<hex>.
func validName(s string) bool {
	if len(s) > 255 {
		return false
	}
	if alg, hex, ok := strings.Cut(s, "="); ok {
		return digestRE.MatchString(alg + ":" + hex)
	}
	return identRE.MatchString(s)
}

// digestRE is the OCI digest grammar; it keeps on-disk strings from naming
// paths outside the content store.
var digestRE = regexp.MustCompile(`^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$`)

// BlobPath returns where the content store keeps digest, or "" for a
// malformed digest.
func (s *State) BlobPath(digest string) string {
	if !digestRE.MatchString(digest) {
		return ""
	}
	alg, hex, _ := strings.Cut(digest, ":")
	return path.Join(s.Root, contentBlobsDir, alg, hex)
}

func (s *State) loadContent() {
	for i := range s.Content {
		b := &s.Content[i]
		b.Path = s.BlobPath(b.Digest)
		if b.Path == "" {
			s.Warnings = append(s.Warnings, fmt.Sprintf("content %s/%q: malformed digest", b.Namespace, b.Digest))
			continue
		}
		if st, err := fs.Stat(s.fsys, b.Path); err == nil && st.Mode().IsRegular() {
			b.OnDisk = true
			b.DiskSize = st.Size()
		}
	}
}
