package vfs_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/ctrlift/ctrlift/image/dirfs"
	"github.com/ctrlift/ctrlift/vfs"
)

func tree(t *testing.T, links bool) string {
	t.Helper()
	root := t.TempDir()
	for p, data := range map[string]string{
		"var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db": "db",
		"etc/passwd":    "root:x:0:0\n",
		"empty/.keep":   "",
		"data/big.bin":  string(make([]byte, 100000)),
		"data/small.go": "package x\n",
	} {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if links {
		// fstest.TestFS goes through fs.Sub, whose paths must be UTF-8:
		// the byte-exact name is checked with the links instead.
		os.WriteFile(filepath.Join(root, "etc/\xff\xfe"), []byte("not utf-8"), 0o644)
		os.Symlink("/etc/passwd", filepath.Join(root, "abs"))         // absolute: stays in the tree
		os.Symlink("../../../../etc", filepath.Join(root, "data/up")) // climbs: stops at the root
		os.Symlink("loop", filepath.Join(root, "loop"))
	}
	return root
}

func TestIOFSConformance(t *testing.T) {
	d, err := dirfs.Open(tree(t, false))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := fstest.TestFS(vfs.NewIOFS(d), "etc/passwd", "data/big.bin", "var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db", "empty/.keep"); err != nil {
		t.Error(err)
	}
}

// Symlinks resolve inside the tree, as under chroot: a host path is never
// reached.
func TestIOFSSymlinksStayInside(t *testing.T) {
	d, err := dirfs.Open(tree(t, true))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	v := vfs.NewIOFS(d)
	for _, p := range []string{"abs", "data/up/passwd"} {
		b, err := fs.ReadFile(v, p)
		if err != nil || string(b) != "root:x:0:0\n" {
			t.Errorf("%s: %q %v, want the tree's own etc/passwd", p, b, err)
		}
	}
	if fi, err := v.Lstat("abs"); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("Lstat(abs): %v %v", fi, err)
	}
	if _, err := v.Open("loop"); err == nil {
		t.Error("a symlink loop opened")
	}
	if _, err := v.Open("/etc/passwd"); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("absolute path: %v", err)
	}
	if b, err := fs.ReadFile(v, "etc/\xff\xfe"); err != nil || string(b) != "not utf-8" {
		t.Errorf("non-UTF-8 name: %q %v", b, err)
	}
}
