//go:build linux

package layers_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"strings"
	"testing"
)

// applyOCILayer applies an uncompressed OCI layer tar to dir the way the
// image spec describes, with GNU tar doing the extraction:
//
//   - first, for every entry, the lower content it replaces is removed:
//     ".wh.NAME" deletes NAME, ".wh..wh..opq" empties its directory (of
//     what the layers below put there), a non-directory replaces whatever
//     is at its name, and a directory replaces a non-directory;
//   - then tar extracts everything but the markers, with owners, modes
//     and all xattrs (ACLs and capabilities included).
//
// All removals go through an os.Root, so a symlink already unpacked can
// never lead one outside dir.
func applyOCILayer(t *testing.T, dir string, layer []byte) {
	t.Helper()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	tr := tar.NewReader(bytes.NewReader(layer))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("layer tar: %v", err)
		}
		name := tarPath(h.Name)
		if name == "." {
			continue
		}
		// The layer's own directories replace any non-directory above
		// the entry (a symlink to a directory included).
		parts := strings.Split(name, "/")
		for i := 1; i < len(parts); i++ {
			a := strings.Join(parts[:i], "/")
			if fi, err := root.Lstat(a); err == nil && !fi.IsDir() {
				mustRemoveAll(t, root, a)
			}
		}
		dirName, base := path.Split(name)
		dirName = strings.TrimSuffix(dirName, "/")
		if dirName == "" {
			dirName = "."
		}
		switch {
		case base == ".wh..wh..opq":
			f, err := root.Open(dirName)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			names, err := f.Readdirnames(-1)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range names {
				mustRemoveAll(t, root, path.Join(dirName, n))
			}
		case strings.HasPrefix(base, ".wh."):
			mustRemoveAll(t, root, path.Join(dirName, strings.TrimPrefix(base, ".wh.")))
		default:
			fi, err := root.Lstat(name)
			if err == nil && !(fi.IsDir() && h.Typeflag == tar.TypeDir) {
				mustRemoveAll(t, root, name)
			}
		}
	}
	cmd := exec.Command("tar", "-x", "-f", "-", "-C", dir,
		"--numeric-owner", "--same-owner", "--same-permissions",
		"--xattrs", "--xattrs-include=*", "--exclude=.wh.*")
	cmd.Stdin = bytes.NewReader(layer)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tar -x: %v\n%s", err, out)
	}
}

func mustRemoveAll(t *testing.T, root *os.Root, name string) {
	t.Helper()
	if err := root.RemoveAll(name); err != nil {
		t.Fatalf("removing %s: %v", name, err)
	}
}
