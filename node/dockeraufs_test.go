package node

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctrlift/ctrlift/docker"
	"github.com/ctrlift/ctrlift/image/tarfs"
	"github.com/ctrlift/ctrlift/layers"
	"github.com/ctrlift/ctrlift/vfs"
)

// walkMerged lists a merged view: path -> type, mode, owner, size, mtime
// and the data's digest.
func walkMerged(t *testing.T, ls []layers.Layer) map[string]string {
	t.Helper()
	m, err := layers.New(ls, layers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	err = fs.WalkDir(m, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		in := info.Sys().(*layers.Entry).Inode
		if p == "." {
			return nil // the top layer's own directory: a tar has none
		}
		size := in.Size
		if in.IsDir() {
			size = 0 // a directory's size is its filesystem's, a tar gives 0
		}
		s := fmt.Sprintf("%o %d:%d %d %d", in.Mode, in.Uid, in.Gid, size, in.Mtime.UnixNano())
		if in.IsRegular() {
			b, err := fs.ReadFile(m, p)
			if err != nil {
				return err
			}
			s += fmt.Sprintf(" %x", sha256.Sum256(b))
		}
		for _, x := range in.Xattrs {
			s += " " + x.Name + "=" + string(x.Value)
		}
		out[p] = s
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// aufs layers as the aufs driver stores them, untarred as they are: the
// app image's own layer tars, as docker save wrote them (a ".wh." file
// whiteout, a ".wh..wh..opq" opaque directory), read through the aufs
// view over the busybox base merge exactly as the same layers do through
// overlay2 on the disk, which the kernel oracle vouches for
// (internal/e2e's TestDockerNodeKernel).
func TestDockerAufsImageLayers(t *testing.T) {
	n := openDockerNode(t)
	c, err := n.Resolve("created")
	if err != nil {
		t.Fatal(err)
	}
	ls, err := n.Layers(c, LayerOptions{})
	if err != nil || len(ls) != 5 {
		t.Fatalf("layers %v: %v", ls, err)
	}
	overlay := ls[2:] // the image: the RUN layer, the COPY layer, busybox
	var aufs []layers.Layer
	for _, i := range []int{3, 2} {
		p := filepath.Join(dockerNodeDir(t), "expected", "app-layers", fmt.Sprintf("%d.tar", i))
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		st, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		tf, err := tarfs.Open(f, st.Size())
		if err != nil {
			t.Fatal(err)
		}
		var fsys vfs.FS = docker.NewAufsFS(tf)
		aufs = append(aufs, layers.Layer{FS: fsys, Dir: ".", Name: fmt.Sprintf("aufs-%d", i)})
	}
	aufs = append(aufs, ls[4])
	want, got := walkMerged(t, overlay), walkMerged(t, aufs)
	var diffs []string
	for p, w := range want {
		if got[p] != w {
			diffs = append(diffs, fmt.Sprintf("%s:\n  overlay2 %s\n  aufs     %s", p, w, got[p]))
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			diffs = append(diffs, "only in the aufs view: "+p)
		}
		if strings.Contains(p, ".wh.") {
			diffs = append(diffs, "an aufs marker shown: "+p)
		}
	}
	if len(diffs) > 0 {
		t.Errorf("%d differences:\n%s", len(diffs), strings.Join(diffs, "\n"))
	}
	for _, p := range []string{"var/www/old.html", "var/cache/app/a", "var/cache/app/b"} {
		if _, ok := got[p]; ok {
			t.Errorf("%s: deleted by the image, shown", p)
		}
	}
	for _, p := range []string{"var/cache/app/c", "usr/local/bin/web.sh", "var/www/index.html", "bin/busybox"} {
		if _, ok := got[p]; !ok {
			t.Errorf("%s: missing", p)
		}
	}
}

// docker-explorer's aufs tree: the running container's chain is its
// writable layer, its -init layer and the busybox image; the export holds
// the image's files and the daemon's, and none of aufs' own .wh..wh.
// directories.
func TestDockerAufsExport(t *testing.T) {
	n := openDockerExplorer(t, "aufs.v2.tgz")
	c, err := n.Resolve("dreamy_snyder")
	if err != nil {
		t.Fatal(err)
	}
	ls, err := n.Layers(c, LayerOptions{})
	const mid = "b16a494082bba0091e572b58ff80af1b7b5d28737a3eedbe01e73cd7f4e01d23"
	if err != nil || len(ls) != 3 || ls[0].Dir != "docker/aufs/diff/"+mid || ls[1].Dir != "docker/aufs/diff/"+mid+"-init" ||
		ls[2].Dir != "docker/aufs/diff/d1c54c46d331de21587a16397e8bd95bdbb1015e1a04797c76de128107da83ae" {
		t.Fatalf("layers %+v: %v", ls, err)
	}
	all := exportNames(t, n, "dreamy_snyder", ExportOptions{})
	for _, p := range []string{"bin/busybox", ".dockerenv", "etc/hostname", "etc/passwd"} {
		if all[p] == nil {
			t.Errorf("%s missing from the export (%d entries)", p, len(all))
		}
	}
	for p := range all {
		if strings.Contains(p, ".wh.") {
			t.Errorf("aufs marker %s exported", p)
		}
	}
}
