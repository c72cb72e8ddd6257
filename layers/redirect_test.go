//go:build linux

package layers_test

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ctrlift/ctrlift/image/dirfs"
	"github.com/ctrlift/ctrlift/layers"
)

// xtree builds layer directories on the host with real trusted.overlay.*
// xattrs and whiteouts (so as root), read back through image/dirfs.
type xtree struct {
	t    *testing.T
	root string
}

func newXtree(t *testing.T) *xtree {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: trusted.* xattrs and whiteout devices")
	}
	// tmpfs where there is one: it takes xattr values past a block
	// (redirects longer than PATH_MAX).
	root := t.TempDir()
	var st unix.Statfs_t
	if unix.Statfs("/dev/shm", &st) == nil && st.Type == unix.TMPFS_MAGIC {
		d, err := os.MkdirTemp("/dev/shm", "ctrlift-layers-")
		if err == nil {
			root = d
			t.Cleanup(func() { os.RemoveAll(d) })
		}
	}
	return &xtree{t: t, root: root}
}

// add writes data at p (dirs made as needed); "dir/" makes a directory,
// data "-wh" a whiteout.
func (x *xtree) add(p, data string) {
	x.t.Helper()
	full := filepath.Join(x.root, p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		x.t.Fatal(err)
	}
	var err error
	switch {
	case strings.HasSuffix(p, "/"):
		err = os.MkdirAll(full, 0o755)
	case data == "-wh":
		err = unix.Mknod(full, unix.S_IFCHR, 0)
	default:
		err = os.WriteFile(full, []byte(data), 0o644)
	}
	if err != nil {
		x.t.Fatal(err)
	}
}

func (x *xtree) xattr(p, name, value string) {
	x.t.Helper()
	if err := unix.Lsetxattr(filepath.Join(x.root, p), "trusted.overlay."+name, []byte(value), 0); err != nil {
		x.t.Fatalf("setxattr %s %s: %v", p, name, err)
	}
}

// merge merges the named layer dirs, top first.
func (x *xtree) merge(opt layers.Options, dirs ...string) (*layers.Merged, error) {
	x.t.Helper()
	fsys, err := dirfs.Open(x.root)
	if err != nil {
		x.t.Fatal(err)
	}
	x.t.Cleanup(func() { fsys.Close() })
	if !fsys.TrustedXattrsVisible() {
		x.t.Skip("trusted.* xattrs are not visible to this process")
	}
	var ls []layers.Layer
	for _, d := range dirs {
		ls = append(ls, layers.Layer{FS: fsys, Dir: d, Name: d})
	}
	return layers.New(ls, opt)
}

func (x *xtree) mustMerge(dirs ...string) *layers.Merged {
	x.t.Helper()
	m, err := x.merge(layers.Options{}, dirs...)
	if err != nil {
		x.t.Fatal(err)
	}
	return m
}

// names walks m: path -> contents of files, "/" for directories.
func names(t *testing.T, m *layers.Merged) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := m.Walk(func(p string, e *layers.Entry) error {
		if e.IsDir() {
			out[p] = "/"
			return nil
		}
		if !e.IsRegular() {
			out[p] = e.FileMode().String()
			return nil
		}
		f, err := e.Open()
		if err != nil {
			return err
		}
		b, err := io.ReadAll(f)
		out[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	return out
}

// Redirects the kernel refuses are refused, naming the layer and the
// path in it; none is ever resolved outside the layers.
func TestRedirectInvalid(t *testing.T) {
	for _, v := range []string{
		"a/b", ".", "..", "", "//d", "/", "/d/", "/./d", "/../d", "/d/../d", "/d//x",
		"d\x00x", "/" + strings.Repeat("d/", 2100) + "d",
	} {
		x := newXtree(t)
		x.add("low/d/secret", "s")
		x.add("top/y/", "")
		if err := unix.Lsetxattr(filepath.Join(x.root, "top/y"), "trusted.overlay.redirect", []byte(v), 0); err != nil {
			if len(v) > 4096 && (errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.E2BIG)) {
				t.Logf("a %d-byte xattr does not fit here (%v): not tested", len(v), err)
				continue
			}
			t.Fatal(err)
		}
		m := x.mustMerge("top", "low")
		_, err := m.Lookup("y")
		if !errors.Is(err, layers.ErrInvalidOverlay) || !strings.Contains(err.Error(), "layer 0 (top): y:") {
			t.Errorf("redirect %q: Lookup: %v; want ErrInvalidOverlay naming layer top and y", v, err)
		}
		if err := m.Walk(func(string, *layers.Entry) error { return nil }); !errors.Is(err, layers.ErrInvalidOverlay) {
			t.Errorf("redirect %q: Walk: %v", v, err)
		}
		if _, err := layers.Diff(layers.Layer{FS: m.Layers()[0].FS, Dir: "top", Name: "top"}, nil, layers.Options{}); !errors.Is(err, layers.ErrInvalidOverlay) {
			t.Errorf("redirect %q: Diff: %v", v, err)
		}
	}
}

func TestRedirectFollowed(t *testing.T) {
	x := newXtree(t)
	x.add("low/d/f", "low f")
	x.add("low/d/sub/g", "low g")
	x.add("low/y/old", "same-path dir, not merged")
	x.add("low/e/f", "low e")
	x.add("top/y/", "")
	x.add("top/z/", "")
	x.add("top/long/", "")
	x.add("top/d", "-wh")
	x.add("top/e", "-wh")                                         // as the kernel leaves a rename: else e would show low/e again
	x.xattr("top/y", "redirect", "d")                             // relative
	x.xattr("top/z", "redirect", "/e")                            // absolute
	x.xattr("top/long", "redirect", "/"+strings.Repeat("n", 300)) // no such name (ENAMETOOLONG): nothing below
	// Hidden below: a layer between whites d out.
	x.add("mid/d", "-wh")
	got := names(t, x.mustMerge("top", "low"))
	for p, want := range map[string]string{"y/f": "low f", "y/sub/g": "low g", "z/f": "low e", "long": "/"} {
		if got[p] != want {
			t.Errorf("%s: %q, want %q", p, got[p], want)
		}
	}
	for _, p := range []string{"y/old", "d", "long/f"} {
		if _, ok := got[p]; ok {
			t.Errorf("%s is in the merge", p)
		}
	}
	got = names(t, x.mustMerge("top", "mid", "low"))
	if _, ok := got["y/f"]; ok || got["y"] != "/" {
		t.Errorf("redirect to a path whited out below: %q; want y alone, as the kernel", got)
	}
}

// Redirects that chain through every layer, or point at themselves or at
// each other, end: each layer is consulted once per name.
func TestRedirectChains(t *testing.T) {
	x := newXtree(t)
	const n = 64
	var dirs []string
	for i := range n {
		l := "l" + string(rune('A'+i/26)) + string(rune('a'+i%26))
		dirs = append(dirs, l)
		from, to := "a", "/b"
		if i%2 == 1 {
			from, to = "b", "/a"
		}
		x.add(l+"/"+from+"/f"+l, l)
		x.xattr(l+"/"+from, "redirect", to)
	}
	// As the kernel leaves a rename: the old name whited out, else b
	// would show the same directories as a.
	x.add(dirs[0]+"/b", "-wh")
	x.add("self/s/", "")
	x.xattr("self/s", "redirect", "/s")
	got := names(t, x.mustMerge(dirs...))
	for _, l := range dirs {
		if got["a/f"+l] != l {
			t.Errorf("a/f%s: %q; want it from layer %s, through %d redirects", l, got["a/f"+l], l, n)
		}
	}
	if _, err := x.mustMerge(append([]string{"self"}, dirs...)...).Lookup("s"); err != nil {
		t.Errorf("a redirect to itself: %v", err)
	}
	// Two redirects to one lower directory would show it twice: refused.
	x.add("two/b", "-wh")
	x.add("two/p/", "")
	x.add("two/q/", "")
	x.xattr("two/p", "redirect", "/a")
	x.xattr("two/q", "redirect", "/a")
	err := x.mustMerge(append([]string{"two"}, dirs...)...).Walk(func(string, *layers.Entry) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "already visited") {
		t.Errorf("two redirects to one directory: %v", err)
	}
}

func TestMetacopy(t *testing.T) {
	x := newXtree(t)
	x.add("low/f", "lower data")
	x.add("low/g", "g data")
	x.add("low/dir/", "")
	x.add("mid/f", "")
	x.xattr("mid/f", "metacopy", "") // a chain: data from low
	x.add("top/f", "")
	x.xattr("top/f", "metacopy", "")
	x.add("top/moved", "")
	x.xattr("top/moved", "metacopy", "\x00\x04\x00\x00") // 4 bytes: accepted
	x.xattr("top/moved", "redirect", "/g")
	x.add("top/orphan", "xx")
	x.xattr("top/orphan", "metacopy", "")
	x.add("top/dir", "")
	x.xattr("top/dir", "metacopy", "") // data below is a directory: missing
	x.add("top/plain", "own")
	x.xattr("top/plain", "redirect", "/g") // ignored on a file without metacopy
	if err := os.Symlink("t", filepath.Join(x.root, "top/link")); err != nil {
		t.Fatal(err)
	}
	x.xattr("top/link", "metacopy", "") // ignored on a symlink
	for _, p := range []string{"top/f", "mid/f", "top/moved"} {
		if err := os.Truncate(filepath.Join(x.root, p), 10); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(x.root, "top/f"), 0o600); err != nil {
		t.Fatal(err)
	}
	m := x.mustMerge("top", "mid", "low")
	got := names(t, m)
	for p, want := range map[string]string{"f": "lower data", "moved": "g data", "orphan": "", "dir": "", "plain": "own"} {
		if got[p] != want {
			t.Errorf("%s: %q, want %q", p, got[p], want)
		}
	}
	f, err := m.Lookup("f")
	if err != nil {
		t.Fatal(err)
	}
	if !f.Metacopy || f.DataMissing || f.Layer != 0 || f.DataLayer != 2 || f.Mode&0o777 != 0o600 || f.Size != 10 {
		t.Errorf("f: %+v; want metacopy from layer 0 (mode 0600) with data from layer 2", f)
	}
	if r, err := f.FS().Open(f.Inode); err != nil {
		t.Error(err)
	} else if b, _ := io.ReadAll(r); string(b) != "lower data" {
		t.Errorf("f through FS().Open: %q", b)
	}
	if fi, err := fs.Stat(m, "link"); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("link: %v %v", fi, err)
	}
	// Missing data: kept, flagged and named, size 0.
	for _, p := range []string{"orphan", "dir"} {
		e, err := m.Lookup(p)
		if err != nil {
			t.Fatal(err)
		}
		if !e.Metacopy || !e.DataMissing || e.Size != 0 {
			t.Errorf("%s: %+v; want DataMissing", p, e)
		}
		if !strings.Contains(strings.Join(m.Warnings, "\n"), "/"+p+": metadata-only copy-up") {
			t.Errorf("warnings %q do not name /%s", m.Warnings, p)
		}
	}
	// A size that differs from the data's: the data's, and a warning.
	if e, err := m.Lookup("moved"); err != nil || e.Size != 6 || e.DataLayer != 2 {
		t.Errorf("moved: %+v %v; want the 6 bytes of low/g", e, err)
	}
	if !strings.Contains(strings.Join(m.Warnings, "\n"), "/moved: metadata-only copy-up (overlay metacopy) in layer 0 (top) records size 10, its data (layer 2, low) has 6 bytes") {
		t.Errorf("warnings %q: none on the size of /moved", m.Warnings)
	}
	if n := len(m.Warnings); n != 3 {
		t.Errorf("warnings %q; want 3, once each however often looked up", m.Warnings)
	}

	// Malformed metacopy: refused as the kernel does (EIO).
	x.add("bad/f", "")
	x.xattr("bad/f", "metacopy", "abc")
	if _, err := x.mustMerge("bad", "low").Lookup("f"); !errors.Is(err, layers.ErrInvalidOverlay) || !strings.Contains(err.Error(), "(bad): f:") {
		t.Errorf("metacopy of 3 bytes: %v", err)
	}
	// A one-layer walk cannot read them, nor can userxattr rules.
	if err := layers.WalkLayer(m.Layers()[0], layers.Options{}, func(string, *layers.Entry) error { return nil }); !errors.Is(err, layers.ErrUnsupported) {
		t.Errorf("WalkLayer of a metacopy layer: %v", err)
	}
	x.add("ux/f", "")
	if err := unix.Lsetxattr(filepath.Join(x.root, "ux/f"), "user.overlay.metacopy", nil, 0); err != nil {
		t.Fatal(err)
	}
	if m, err := x.merge(layers.Options{UserXattr: true}, "ux", "low"); err != nil {
		t.Fatal(err)
	} else if _, err := m.Lookup("f"); !errors.Is(err, layers.ErrUnsupported) {
		t.Errorf("userxattr metacopy: %v", err)
	}
}

func TestDiffMetacopy(t *testing.T) {
	x := newXtree(t)
	x.add("low/f", "data")
	x.add("low/g", "g")
	x.add("top/f", "")
	x.xattr("top/f", "metacopy", "")
	x.add("top/h", "")
	x.xattr("top/h", "metacopy", "")
	x.xattr("top/h", "redirect", "/g")
	m := x.mustMerge("top", "low")
	lower := x.mustMerge("low")
	changes, err := layers.Diff(m.Layers()[0], lower, layers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range changes {
		k := c.Kind.String()
		if c.MetadataOnly {
			k += ",metadata"
		}
		b, err := io.ReadAll(must(c.Entry.Open()))
		if err != nil {
			t.Fatal(err)
		}
		got[c.Path] = k + ":" + string(b)
	}
	if want := map[string]string{"/f": "modified,metadata:data", "/h": "added:g"}; len(got) != len(want) || got["/f"] != want["/f"] || got["/h"] != want["/h"] {
		t.Errorf("changes %q; want %q", got, want)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
