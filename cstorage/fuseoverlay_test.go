package cstorage

import (
	"archive/tar"
	"bytes"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctrlift/ctrlift/image/tarfs"
	"github.com/ctrlift/ctrlift/layers"
)

// fuseLayerTar writes a layer as a tar (the real format tarfs reads): one
// line per entry, a kind byte then a path: f file, d directory, c 0:0
// character device, o directory with user.fuseoverlayfs.opaque=y.
// Parents are made as directories. It returns the paths written.
func fuseLayerTar(t *testing.T, spec string) (string, map[string]byte) {
	t.Helper()
	written := map[string]byte{}
	var order []string
	// The first line naming a path decides its kind, except that a
	// parent is always a directory.
	add := func(p string, kind byte, parent bool) {
		k, ok := written[p]
		switch {
		case !ok:
			order = append(order, p)
			written[p] = kind
		case parent && k != 'd' && k != 'o':
			written[p] = 'd'
		}
	}
	for _, line := range strings.Split(spec, "\n") {
		if len(line) < 2 {
			continue
		}
		kind, p := line[0], strings.Trim(line[1:], "/")
		if !strings.ContainsRune("fdco", rune(kind)) || len(p) > 200 {
			continue
		}
		parts := strings.Split(p, "/")
		if len(parts) > 4 {
			continue
		}
		ok := true
		for _, c := range parts {
			ok = ok && c != "" && c != "." && c != ".." && !strings.ContainsRune(c, 0)
		}
		if !ok {
			continue
		}
		for i := 1; i < len(parts); i++ {
			add(strings.Join(parts[:i], "/"), 'd', true)
		}
		add(p, kind, false)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range order {
		h := &tar.Header{Name: p, Mode: 0o644, Format: tar.FormatPAX}
		switch written[p] {
		case 'f':
			h.Typeflag = tar.TypeReg
		case 'c':
			h.Typeflag = tar.TypeChar
		case 'd', 'o':
			h.Typeflag, h.Name = tar.TypeDir, p+"/"
			if written[p] == 'o' {
				h.PAXRecords = map[string]string{"SCHILY.xattr." + fuseXattrPrefix + "opaque": "y"}
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "layer.tar")
	if err := os.WriteFile(f, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return f, written
}

// FuzzFuseOverlayFS merges an arbitrary upper layer over a fixed lower one
// through FuseOverlayFS, as fuse-overlayfs reads them: never a panic; no
// ".wh." name is shown; a ".wh.NAME" marker hides NAME even when the same
// layer holds NAME; an opaque directory (user.fuseoverlayfs.opaque=y or
// ".wh..wh..opq") shows only what the upper layer holds.
func FuzzFuseOverlayFS(f *testing.F) {
	for _, s := range []string{
		"f.wh.etc\nfetc/new",
		"fa/.wh.x\nfa/x",
		"oa\nfa/new",
		"da\nfa/.wh..wh..opq\nfa/b/z",
		"ca/x\nf.wh..wh..opq\nf.wh.\nf.wh..\nf.wh..wh.plnk",
		"fa/b/.wh.y\nda/b/y/deeper",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		lowerTar, _ := fuseLayerTar(t, "fetc/passwd\nfa/x\nfa/b/y\nda/b/c\nf.hidden\nfz")
		upperTar, upper := fuseLayerTar(t, spec)
		open := func(p string) *tarfs.FS {
			fsys, err := tarfs.OpenFile(p, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { fsys.Close() })
			return fsys
		}
		for _, userXattr := range []bool{false, true} {
			ls := []layers.Layer{
				{FS: NewFuseOverlayFS(open(upperTar), userXattr), Dir: ".", Name: "upper", UserXattr: userXattr},
				{FS: NewFuseOverlayFS(open(lowerTar), userXattr), Dir: ".", Name: "lower", UserXattr: userXattr},
			}
			m, err := layers.New(ls, layers.Options{})
			if err != nil {
				return
			}
			shown := map[string]bool{}
			if err := m.Walk(func(p string, e *layers.Entry) error {
				shown[p] = true
				return nil
			}); err != nil {
				return
			}
			for p := range shown {
				for _, c := range strings.Split(p, "/") {
					if strings.HasPrefix(c, fuseWhiteoutPrefix) {
						t.Fatalf("marker %s shown", p)
					}
				}
			}
			for p, kind := range upper {
				dir, name := path.Split(p)
				if target, ok := fuseWhiteoutTarget(name); ok && shown[dir+target] {
					t.Errorf("%s shown, deleted by %s", dir+target, p)
				}
				if _, hasOpq := upper[p+"/"+fuseOpaqueFile]; (kind == 'o' || hasOpq && kind == 'd') && shown[p] {
					for q := range shown {
						if strings.HasPrefix(q, p+"/") {
							if _, ok := upper[q]; !ok {
								t.Errorf("%s shown under opaque %s", q, p)
							}
						}
					}
				}
			}
		}
	})
}
