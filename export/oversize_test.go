package export

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctrlift/ctrlift/image/ext4"
	"github.com/ctrlift/ctrlift/internal/testutil"
	"github.com/ctrlift/ctrlift/layers"
)

// A file whose i_size is more than ext4 can address (set with debugfs, as
// a forger would) is exported as recorded, a sparse member of that size,
// with a warning; a file just under the bound (a real, if unusual,
// sparse file) draws none.
func TestExportOversizedFile(t *testing.T) {
	testutil.NeedTools(t, "mkfs.ext4", "debugfs")
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.Mkdir(src, 0o755)
	for _, name := range []string{"forged", "large"} {
		if err := os.WriteFile(filepath.Join(src, name), []byte("data!"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img := filepath.Join(dir, "fs.img")
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-b", "4096", "-d", src, img, "8M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	const bound = int64(1) << 32 * 4096 // 16 TiB
	for name, size := range map[string]int64{"forged": 1 << 62, "large": bound} {
		cmd := fmt.Sprintf("sif /%s size %d", name, size)
		if out, err := exec.Command("debugfs", "-w", "-R", cmd, img).CombinedOutput(); err != nil {
			t.Fatalf("debugfs %s: %v\n%s", cmd, err, out)
		}
	}
	fsys, err := ext4.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()
	m, err := layers.New([]layers.Layer{{FS: fsys.Source(), Dir: ".", Name: "fs"}}, layers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	stats, err := Tar(&out, m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(stats.Warnings) != 1 || !strings.Contains(stats.Warnings[0], "/forged: inode") || !strings.Contains(stats.Warnings[0], "4611686018427387904 bytes, more than a file of its filesystem can hold (17592186044416)") {
		t.Errorf("warnings %q", stats.Warnings)
	}
	sizes := map[string]int64{}
	tr := tar.NewReader(&out)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		sizes[h.Name] = h.Size
	}
	if sizes["forged"] != 1<<62 || sizes["large"] != bound {
		t.Errorf("member sizes %v, want the recorded ones", sizes)
	}
}
