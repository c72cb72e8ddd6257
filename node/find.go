package node

import (
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ctrlift/ctrlift/containerd"
	"github.com/ctrlift/ctrlift/export"
	"github.com/ctrlift/ctrlift/layers"
	"github.com/ctrlift/ctrlift/vfs"
)

// FindOptions say which trees Find searches and what it looks for. The
// criteria combine with AND; the values of one criterion (several types,
// several digests, SHA256 and MD5 together) with OR. No criterion finds
// every entry.
type FindOptions struct {
	// List selects the containers searched, as Containers does; Refs
	// names them instead (pod:K8SNS/POD too).
	List ListOptions
	Refs []string
	// Images searches the root filesystem of every image (each once, however
	// many names it has) instead of containers.
	Images bool
	Layers LayerOptions

	// Path is a glob matched against the whole path in the tree
	// ("/var/www/x.php"): * and ? match within one component, ** any
	// number of components, [...] a class. A pattern without a leading /
	// matches at any depth, as if it began with **/.
	Path string
	// Name is a regular expression (RE2) matched against the base name.
	Name string
	// Types are record types: file, dir, symlink, char, block, fifo, socket.
	Types []string
	// SHA256 and MD5 are digests of regular files, hex ("sha256:" or
	// "md5:" prefixes allowed).
	SHA256, MD5 []string
	// MinSize and MaxSize bound the size of regular files, in bytes,
	// inclusive; MaxSize nil is no bound.
	MinSize int64
	MaxSize *int64
	// Newer (at or after) and Older (before) bound TimeField: "mtime"
	// (""), "ctime", "atime" or "crtime" (an entry without a creation
	// time does not match).
	Newer, Older time.Time
	TimeField    string
	// SetID: regular files with the setuid or setgid bit. Caps: entries
	// with file capabilities (a security.capability xattr). Exec: regular
	// files with an execute bit.
	SetID, Caps, Exec bool

	// Done, when set, is called after each tree with the error that
	// stopped its search (nil when it was searched whole).
	Done func(t TreeRef, err error)
}

// FindHit is one entry found: the tree it is in and its record, whose
// layer is the one the merged view takes it from. Regular files carry
// their sha256 (and md5 when FindOptions.MD5 is set).
type FindHit struct {
	TreeRef
	export.Record
}

// Find searches every container Containers lists with opt.List (or those
// opt.Refs name, or with opt.Images every image) and calls fn with each
// entry that matches, container by container, in path order. A file's
// data is read at most once however many containers share its layer.
// Trees that cannot be read are skipped (opt.Done is told why) and Find
// then fails after searching the others; an error from fn stops it.
func (n *Node) Find(opt FindOptions, fn func(FindHit) error) error {
	_, err := n.find(opt, fn)
	return err
}

// find is Find, returning the finder for its counts.
func (n *Node) find(opt FindOptions, fn func(FindHit) error) (*finder, error) {
	m, err := opt.matcher()
	if err != nil {
		return nil, err
	}
	trees, err := n.findTrees(opt)
	if err != nil {
		return nil, err
	}
	hashes := []export.Hash{export.SHA256}
	if len(m.md5) > 0 {
		hashes = append(hashes, export.MD5)
	}
	s := &finder{n: n, m: m, fn: fn, dg: export.NewDigester(hashes...), sums: map[sumKey]sumResult{}, shared: sharedLayers(trees)}
	return s, s.run(trees, opt)
}

func (s *finder) run(trees []findTree, opt FindOptions) error {
	failed, first := 0, error(nil)
	for _, t := range trees {
		err := s.search(t, opt)
		var stop fnError
		if errors.As(err, &stop) {
			return stop.err
		}
		if opt.Done != nil {
			opt.Done(t.ref, err)
		}
		if err != nil {
			failed++
			if first == nil {
				first = err
			}
		}
	}
	if failed > 0 {
		what := "containers"
		if opt.Images {
			what = "images"
		}
		return fmt.Errorf("%d of %d %s could not be searched (the first: %v)", failed, len(trees), what, first)
	}
	return nil
}

// findTree is one tree to search: a container or an image.
type findTree struct {
	ref       TreeRef
	container *containerd.Container
	image     *imageTree
}

func (n *Node) findTrees(opt FindOptions) ([]findTree, error) {
	var out []findTree
	if opt.Images {
		its, err := n.imageTrees()
		if err != nil {
			return nil, err
		}
		for i := range its {
			out = append(out, findTree{ref: its[i].ref, image: &its[i]})
		}
		return out, nil
	}
	st, err := n.State()
	if err != nil {
		return nil, err
	}
	var cs []containerd.Container
	if len(opt.Refs) > 0 {
		seen := map[string]bool{}
		for _, ref := range opt.Refs {
			found, err := n.ResolveAll(ref, opt.List)
			if err != nil {
				return nil, err
			}
			for _, c := range found {
				if key := c.Namespace + "/" + c.ID; !seen[key] {
					seen[key] = true
					cs = append(cs, c)
				}
			}
		}
	} else {
		cs, _ = selectContainers(st, n.opt.Namespace, opt.List)
	}
	for i := range cs {
		out = append(out, findTree{ref: containerTree(&cs[i]), container: &cs[i]})
	}
	return out, nil
}

// finder is one Find: the criteria, and the digests of the files read.
type finder struct {
	n    *Node
	m    *matcher
	fn   func(FindHit) error
	dg   *export.Digester
	sums map[sumKey]sumResult
	read int // files whose data was read
	// shared are the layer directories of several trees: only their files
	// (and hard links) can be met twice, so only theirs are remembered.
	shared map[string]bool
}

// sharedLayers are the layer directories in more than one of the trees.
func sharedLayers(trees []findTree) map[string]bool {
	seen, shared := map[string]bool{}, map[string]bool{}
	for _, t := range trees {
		var snaps []containerd.Layer
		switch {
		case t.container != nil:
			snaps = t.container.Layers
		case t.image != nil:
			snaps = t.image.snaps
		}
		for _, l := range snaps {
			shared[l.Path] = seen[l.Path]
			seen[l.Path] = true
		}
	}
	return shared
}

// sumKey is a file of a layer filesystem: the same inode seen through
// several containers is read once.
type sumKey struct {
	fs  vfs.FS
	ino uint64
}

type sumResult struct {
	d       export.Digests
	omitted string
}

// fnError carries an error of Find's callback out of a walk.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }

func (s *finder) search(t findTree, opt FindOptions) error {
	var ls []layers.Layer
	var err error
	if t.image != nil {
		var ch *chain
		if ch, err = s.n.imageChain(*t.image, opt.Layers); err == nil {
			ls = ch.layers
		}
	} else {
		ls, err = s.n.Layers(t.container, opt.Layers)
	}
	if err != nil {
		return err
	}
	merged, err := layers.New(ls, layers.Options{AllowMissing: opt.Layers.AllowMissing})
	if err != nil {
		return err
	}
	err = merged.Walk(func(p string, e *layers.Entry) error {
		abs := "/" + p
		if p == "." {
			abs = "/"
		}
		ok, sum := s.match(abs, e, ls)
		if !ok {
			return nil
		}
		r, err := export.NewRecord(abs, e.Inode, e.FS())
		if err != nil {
			return fmt.Errorf("%s: %w", abs, err)
		}
		r.Layer = e.LayerName
		if e.IsRegular() {
			if sum == nil {
				sum = s.sum(abs, e, ls)
			}
			r.SHA256, r.MD5, r.SHA256Omitted = sum.d.SHA256, sum.d.MD5, sum.omitted
		}
		if err := s.fn(FindHit{TreeRef: t.ref, Record: r}); err != nil {
			return fnError{err}
		}
		return nil
	})
	for _, w := range merged.Warnings {
		s.n.warn(w)
	}
	return err
}

// match applies the criteria, the digests last; it returns them when it
// read the file.
func (s *finder) match(abs string, e *layers.Entry, ls []layers.Layer) (bool, *sumResult) {
	m, in := s.m, e.Inode
	if len(m.types) > 0 && !m.types[recordType(in)] {
		return false, nil
	}
	if m.path != nil && !m.path.MatchString(abs) {
		return false, nil
	}
	if m.name != nil && !m.name.MatchString(path.Base(abs)) {
		return false, nil
	}
	if (m.setID && !(in.IsRegular() && in.Mode&0o6000 != 0)) || (m.exec && !(in.IsRegular() && in.Mode&0o111 != 0)) {
		return false, nil
	}
	if m.caps {
		if _, ok := in.Xattr("security.capability"); !ok {
			return false, nil
		}
	}
	if m.sized && !(in.IsRegular() && in.Size >= m.minSize && (m.maxSize == nil || in.Size <= *m.maxSize)) {
		return false, nil
	}
	if m.timed {
		t, ok := m.when(in)
		if !ok || (!m.newer.IsZero() && t.Before(m.newer)) || (!m.older.IsZero() && !t.Before(m.older)) {
			return false, nil
		}
	}
	if len(m.sha256) == 0 && len(m.md5) == 0 {
		return true, nil
	}
	if !in.IsRegular() {
		return false, nil
	}
	sum := s.sum(abs, e, ls)
	return m.sha256[sum.d.SHA256] || m.md5[sum.d.MD5], sum
}

// sum returns a regular file's digests, reading it only the first time
// its inode is seen. A file that cannot be read is reported and has none.
func (s *finder) sum(abs string, e *layers.Entry, ls []layers.Layer) *sumResult {
	key := sumKey{ls[e.Layer].FS, e.Ino}
	if e.Metacopy || !s.shared[ls[e.Layer].Dir] && e.Nlink < 2 {
		key = sumKey{} // read once anyway, or its data is elsewhere
	} else if r, ok := s.sums[key]; ok {
		return &r
	}
	s.read++
	d, omitted, err := s.dg.Digests(e.FS(), e.Inode)
	if err != nil {
		omitted = "not readable: " + err.Error()
		s.n.warn(fmt.Sprintf("%s (layer %s): %v", abs, e.LayerName, err))
	}
	r := sumResult{d: d, omitted: omitted}
	if key.fs != nil {
		s.sums[key] = r
	}
	return &r
}

// matcher is FindOptions checked and compiled.
type matcher struct {
	types        map[string]bool
	path, name   *regexp.Regexp
	sha256, md5  map[string]bool
	sized        bool
	minSize      int64
	maxSize      *int64
	timed        bool
	newer, older time.Time
	when         func(*vfs.Inode) (time.Time, bool)
	setID, caps  bool
	exec         bool
}

// RecordTypes are the types of export.Record, which FindOptions.Types
// takes.
var RecordTypes = []string{"file", "dir", "symlink", "char", "block", "fifo", "socket"}

// Check refuses options that cannot be met, before anything is read.
func (o FindOptions) Check() error {
	_, err := o.matcher()
	return err
}

func (o FindOptions) matcher() (*matcher, error) {
	if o.Images && len(o.Refs) > 0 {
		return nil, errors.New("references name containers; images are searched all at once")
	}
	m := &matcher{setID: o.SetID, caps: o.Caps, exec: o.Exec, minSize: o.MinSize, maxSize: o.MaxSize, newer: o.Newer, older: o.Older}
	if len(o.Types) > 0 {
		m.types = map[string]bool{}
		for _, t := range o.Types {
			if !slices.Contains(RecordTypes, t) {
				return nil, fmt.Errorf("unknown type %q (want %s)", t, joinOr(RecordTypes))
			}
			m.types[t] = true
		}
	}
	var err error
	if o.Path != "" {
		if m.path, err = globRegexp(o.Path); err != nil {
			return nil, err
		}
	}
	if o.Name != "" {
		if m.name, err = regexp.Compile(o.Name); err != nil {
			return nil, fmt.Errorf("name pattern: %w", err)
		}
	}
	if m.sha256, err = digestSet("sha256", 32, o.SHA256); err != nil {
		return nil, err
	}
	if m.md5, err = digestSet("md5", 16, o.MD5); err != nil {
		return nil, err
	}
	if o.MinSize < 0 {
		return nil, fmt.Errorf("minimum size %d is negative", o.MinSize)
	}
	if o.MaxSize != nil && *o.MaxSize < o.MinSize {
		return nil, fmt.Errorf("no size is at least %d and at most %d bytes", o.MinSize, *o.MaxSize)
	}
	m.sized = o.MinSize > 0 || o.MaxSize != nil
	if !o.Newer.IsZero() && !o.Older.IsZero() && !o.Older.After(o.Newer) {
		return nil, fmt.Errorf("no time is at or after %s and before %s", o.Newer.Format(time.RFC3339Nano), o.Older.Format(time.RFC3339Nano))
	}
	m.timed = !o.Newer.IsZero() || !o.Older.IsZero()
	switch o.TimeField {
	case "", "mtime":
		m.when = func(in *vfs.Inode) (time.Time, bool) { return in.Mtime, true }
	case "ctime":
		m.when = func(in *vfs.Inode) (time.Time, bool) { return in.Ctime, true }
	case "atime":
		m.when = func(in *vfs.Inode) (time.Time, bool) { return in.Atime, true }
	case "crtime":
		m.when = func(in *vfs.Inode) (time.Time, bool) { return in.Crtime, in.HasCrtime }
	default:
		return nil, fmt.Errorf("unknown time field %q (want mtime, ctime, atime or crtime)", o.TimeField)
	}
	return m, nil
}

// digestSet reads hex digests of size bytes, an optional "algo:" prefix.
func digestSet(algo string, size int, ds []string) (map[string]bool, error) {
	if len(ds) == 0 {
		return nil, nil
	}
	set := map[string]bool{}
	for _, d := range ds {
		h := strings.ToLower(strings.TrimSpace(d))
		h = strings.TrimPrefix(h, algo+":")
		if b, err := hex.DecodeString(h); err != nil || len(b) != size {
			return nil, fmt.Errorf("%s %q: want %d hex digits", algo, d, 2*size)
		}
		set[h] = true
	}
	return set, nil
}

// globRegexp compiles a path glob (see FindOptions.Path).
func globRegexp(glob string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString("^")
	g := glob
	if !strings.HasPrefix(g, "/") {
		b.WriteString("(?:.*/)?")
	} else {
		b.WriteString("/")
		g = g[1:]
	}
	for i := 0; i < len(g); i++ {
		switch c := g[i]; c {
		case '*':
			if strings.HasPrefix(g[i:], "**/") {
				b.WriteString("(?:.*/)?")
				i += 2
			} else if strings.HasPrefix(g[i:], "**") {
				b.WriteString(".*")
				i++
			} else {
				b.WriteString("[^/]*")
			}
		case '?':
			b.WriteString("[^/]")
		case '[':
			// A class: "!" or "^" first negates, a "]" first is one of it.
			j := i + 1
			if j < len(g) && (g[j] == '!' || g[j] == '^') {
				j++
			}
			if j < len(g) && g[j] == ']' {
				j++
			}
			end := strings.IndexByte(g[j:], ']')
			if end < 0 {
				return nil, fmt.Errorf("path pattern %q: [ without ]", glob)
			}
			b.WriteString("[")
			for k := i + 1; k < j+end; k++ {
				switch c := g[k]; {
				case k == i+1 && c == '!':
					b.WriteString("^")
				case c == '\\' || c == ']' || c == '[':
					b.WriteString(`\` + string(c))
				default:
					b.WriteByte(c)
				}
			}
			b.WriteString("]")
			i = j + end
		case '\\':
			if i+1 < len(g) {
				i++ // the next character, literally
			}
			fallthrough
		default:
			// Go's regexp reads a name's bytes that are not UTF-8 as
			// U+FFFD each: such a byte of the pattern matches any of them.
			r, size := utf8.DecodeRuneInString(g[i:])
			if r == utf8.RuneError && size == 1 {
				b.WriteString(`\x{fffd}`)
			} else {
				b.WriteString(regexp.QuoteMeta(g[i : i+size]))
			}
			i += size - 1
		}
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, fmt.Errorf("path pattern %q: %w", glob, err)
	}
	return re, nil
}

// recordType is an inode's type as export.Record names it.
func recordType(in *vfs.Inode) string {
	switch in.Mode & vfs.TypeMask {
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
