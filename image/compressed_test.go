package image

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctrlift/ctrlift/internal/testutil"
)

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// Open decompresses by content into the cache, reuses it, and writes
// nothing beside the evidence.
func TestOpenCompressed(t *testing.T) {
	in := t.TempDir()
	zst := filepath.Join(in, "evidence.img") // no telling extension
	copyFile(t, filepath.Join(testutil.DiskDir(t), "gpt4k.raw.zst"), zst)
	os.Chmod(zst, 0o444)
	os.Chmod(in, 0o555) // a read-only evidence directory (root ignores it; the listing check does not)
	defer os.Chmod(in, 0o755)
	cacheDir := t.TempDir()
	want := fixtureDisks[1] // gpt4k
	var rawPath string
	for i := range 2 {
		d, err := Open(zst, Options{CacheDir: cacheDir})
		if err != nil {
			t.Fatal(err)
		}
		checkDisk(t, d, want)
		if d.Compression != "zstd" || filepath.Dir(d.RawPath) != cacheDir || d.Path != zst {
			t.Errorf("run %d: compression %q, raw %q, path %q", i, d.Compression, d.RawPath, d.Path)
		}
		if i == 1 && d.RawPath != rawPath {
			t.Errorf("second run used %s, not the cache file %s", d.RawPath, rawPath)
		}
		rawPath = d.RawPath
		d.Close()
	}
	if names := dirNames(t, in); len(names) != 1 || names[0] != "evidence.img" {
		t.Errorf("evidence directory holds %q", names)
	}
	if names := dirNames(t, cacheDir); len(names) != 1 {
		t.Errorf("cache holds %q", names)
	}

	// NoCache: the copy is gone on Close (already unlinked, in fact).
	tmp := t.TempDir()
	d, err := Open(zst, Options{CacheDir: tmp, NoCache: true})
	if err != nil {
		t.Fatal(err)
	}
	checkDisk(t, d, want)
	if d.RawPath != "" || len(dirNames(t, tmp)) != 0 {
		t.Errorf("NoCache: raw path %q, temp dir %q", d.RawPath, dirNames(t, tmp))
	}
	d.Close()
}

// A GCE image export made by tar -S (sparse) opens like the raw disk.
func TestOpenGCEExport(t *testing.T) {
	if _, err := exec.LookPath("tar"); err != nil {
		t.Skip("tar not installed")
	}
	raw := testutil.DiskRaw(t, "gpt512")
	dir := t.TempDir()
	if err := os.Rename(raw, filepath.Join(dir, "disk.raw")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("tar", "--format=oldgnu", "-Sczf", "image.tar.gz", "disk.raw")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	d, err := Open(filepath.Join(dir, "image.tar.gz"), Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Compression != "gzip+tar" {
		t.Errorf("compression %q", d.Compression)
	}
	checkDisk(t, d, fixtureDisks[0])
}

// A raw image whose name says .zst is read as raw, with a warning.
func TestOpenMisnamed(t *testing.T) {
	raw := testutil.DiskRaw(t, "bare-ext4")
	named := raw + ".zst"
	if err := os.Rename(raw, named); err != nil {
		t.Fatal(err)
	}
	d, err := Open(named, Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Compression != "" || len(d.Warnings) != 1 || !strings.Contains(d.Warnings[0], "name ends in .zst but the content is not compressed") {
		t.Errorf("compression %q, warnings %q", d.Compression, d.Warnings)
	}
	if d.Partitions[0].FS.Label != "bare" {
		t.Errorf("%+v", d.Partitions[0])
	}
}

func TestOpenCorruptCompressed(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testutil.DiskDir(t), "gpt512.raw.zst"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "cut.raw.zst")
	if err := os.WriteFile(path, b[:len(b)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	cacheDir := t.TempDir()
	if _, err := Open(path, Options{CacheDir: cacheDir}); err == nil || !strings.Contains(err.Error(), "cache: decompressing cut.raw.zst (zstd) at output offset") {
		t.Errorf("truncated zstd: %v", err)
	}
	if names := dirNames(t, cacheDir); len(names) != 0 {
		t.Errorf("cache holds %q after a failed run", names)
	}
}
