package layers

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ctrlift/ctrlift/image/dirfs"
)

// TestCompare: two real directory trees, as a native snapshot and its
// parent are, read through the host directory reader.
func TestCompare(t *testing.T) {
	root := t.TempDir()
	write := func(p, data string, mtime time.Time) {
		t.Helper()
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(full, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Date(2023, 11, 14, 22, 13, 20, 0, time.UTC)
	for _, side := range []string{"lower", "upper"} {
		write(side+"/etc/same", "unchanged", old)
		write(side+"/etc/motd", "welcome", old)
		write(side+"/big/hole", "", old)
		os.MkdirAll(filepath.Join(root, side, "gone/deep"), 0o755)
	}
	os.Truncate(filepath.Join(root, "lower/big/hole"), 8<<20)
	os.Truncate(filepath.Join(root, "upper/big/hole"), 8<<20)
	os.Chtimes(filepath.Join(root, "lower/big/hole"), old, old)
	os.Chtimes(filepath.Join(root, "upper/big/hole"), old, old)
	write("lower/gone/deep/file", "x", old)
	write("lower/etc/passwd", "root:x:0:0", old)
	write("upper/etc/passwd", "evil:x:0:0", old) // same size, back-dated
	write("upper/tmp/new", "new", old)
	os.Remove(filepath.Join(root, "upper/etc/motd"))
	os.Symlink("/etc/same", filepath.Join(root, "upper/etc/motd")) // a file became a link
	os.RemoveAll(filepath.Join(root, "upper/gone"))

	d, err := dirfs.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var got []string
	err = Compare(Layer{FS: d, Dir: "upper", Name: "upper"}, Layer{FS: d, Dir: "lower", Name: "lower"}, func(c Change) error {
		if c.Path == "/tmp" || c.Path == "/" {
			return nil // the directory new files live in
		}
		got = append(got, string(c.Kind)+" "+c.Path)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "modified /etc/motd, modified /etc/passwd, deleted /gone, deleted /gone/deep, deleted /gone/deep/file, added /tmp/new"
	if strings.Join(got, ", ") != want {
		t.Errorf("changes:\n got %s\nwant %s", strings.Join(got, ", "), want)
	}
}
