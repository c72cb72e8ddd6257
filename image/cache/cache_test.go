package cache

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ctrlift/ctrlift/internal/testutil"
)

func TestSniff(t *testing.T) {
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	tw.WriteHeader(&tar.Header{Name: "disk.raw", Mode: 0o644, Size: 0, Typeflag: tar.TypeReg})
	tw.Close()
	badSum := bytes.Clone(tarBuf.Bytes()[:512])
	badSum[0] ^= 1
	tests := []struct {
		name string
		head []byte
		want string
	}{
		{"zstd", []byte{0x28, 0xB5, 0x2F, 0xFD, 0x24}, Zstd},
		{"zstd skippable frame", []byte{0x5E, 0x2A, 0x4D, 0x18, 0}, Zstd},
		{"gzip", []byte{0x1F, 0x8B, 0x08}, Gzip},
		{"xz", []byte{0xFD, '7', 'z', 'X', 'Z', 0x00, 0}, XZ},
		{"bzip2", []byte("BZh91AY&SY"), Bzip2},
		{"tar", tarBuf.Bytes()[:512], Tar},
		{"ustar magic, bad checksum", badSum, None},
		{"zeros", make([]byte, 512), None},
		{"short", []byte{0x28}, None},
		{"empty", nil, None},
	}
	for _, tt := range tests {
		if got := Sniff(tt.head); got != tt.want {
			t.Errorf("%s: Sniff = %q; want %q", tt.name, got, tt.want)
		}
	}
}

// tool runs a real compressor; the test is skipped when it is missing.
func tool(t *testing.T, dir string, name string, args ...string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s not installed", name)
	}
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// listing describes a directory's entries: name, size, mtime.
func listing(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, fmt.Sprintf("%s %d %v", e.Name(), fi.Size(), fi.ModTime()))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func fileHash(t *testing.T, r io.Reader) [32]byte {
	t.Helper()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

// inputs makes each supported input from a 16 MiB disk fixture with the real
// tools, in one directory, and returns it with the raw image's hash.
func inputs(t *testing.T) (dir string, rawHash [32]byte, rawSize int64) {
	raw := testutil.DiskRaw(t, "gpt-badprimary")
	dir = t.TempDir()
	tool(t, dir, "cp", "--sparse=always", raw, filepath.Join(dir, DiskName))
	tool(t, dir, "zstd", "-q", "-3", "-o", "disk.raw.zst", DiskName)
	tool(t, dir, "sh", "-c", "gzip -c disk.raw > disk.raw.gz")
	tool(t, dir, "sh", "-c", "xz -1 -c disk.raw > disk.raw.xz")
	tool(t, dir, "tar", "-Sczf", "export.tar.gz", DiskName) // GCE image export
	tool(t, dir, "tar", "-Scf", "export.tar", DiskName)
	tool(t, dir, "tar", "-S", "-I", "zstd", "-cf", "export.tar.zst", DiskName)
	tool(t, dir, "sh", "-c", "cat disk.raw.zst > renamed.img") // content decides, not the name
	f, err := os.Open(filepath.Join(dir, DiskName))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	return dir, fileHash(t, f), fi.Size()
}

func TestDecompress(t *testing.T) {
	dir, want, wantSize := inputs(t)
	before := listing(t, dir)
	cacheDir := t.TempDir()
	for _, tt := range []struct{ file, format string }{
		{"disk.raw.zst", "zstd"},
		{"disk.raw.gz", "gzip"},
		{"disk.raw.xz", "xz"},
		{"export.tar.gz", "gzip+tar"},
		{"export.tar", "tar"},
		{"export.tar.zst", "zstd+tar"},
		{"renamed.img", "zstd"},
	} {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join(dir, tt.file)
			var progress bytes.Buffer
			res := decompress(t, path, Options{Dir: cacheDir, Progress: &progress})
			defer res.File.Close()
			if res.Format != tt.format || res.Reused || res.Size != wantSize || filepath.Dir(res.Path) != cacheDir {
				t.Errorf("result %+v; want format %s, size %d, fresh, in %s", res, tt.format, wantSize, cacheDir)
			}
			if got := fileHash(t, io.NewSectionReader(res.File, 0, res.Size)); got != want {
				t.Error("decompressed image differs from the original")
			}
			if !strings.HasPrefix(progress.String(), "\rdecompressing "+tt.file+": ") || !strings.HasSuffix(progress.String(), "(100%)\n") {
				t.Errorf("progress output %q", progress.String())
			}
			// Sparse: the 16 MiB image holds 1.2 MiB of data.
			var st syscall.Stat_t
			if err := syscall.Stat(res.Path, &st); err != nil {
				t.Fatal(err)
			}
			if st.Blocks*512 > res.Size/4 {
				t.Errorf("cache file allocates %d bytes of %d: not sparse", st.Blocks*512, res.Size)
			}
			if fi, _ := os.Stat(res.Path); fi.Mode().Perm() != 0o600 {
				t.Errorf("cache file mode %v", fi.Mode())
			}

			again := decompress(t, path, Options{Dir: cacheDir})
			defer again.File.Close()
			if !again.Reused || again.Path != res.Path || again.Format != tt.format || again.Size != wantSize {
				t.Errorf("second run %+v; want the cache file %s reused", again, res.Path)
			}
		})
	}
	if after := listing(t, dir); after != before {
		t.Errorf("the input directory changed:\n%s\nwas:\n%s", after, before)
	}
	// One complete file per input, nothing left over.
	entries, _ := os.ReadDir(cacheDir)
	if len(entries) != 7 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("cache holds %q; want 7 files", names)
	}
}

func decompress(t *testing.T, path string, opt Options) *Result {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := Decompress(f, path, opt)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// A changed input (new mtime) gets a new cache entry.
func TestDecompressInputChanged(t *testing.T) {
	dir, _, _ := inputs(t)
	cacheDir := t.TempDir()
	path := filepath.Join(dir, "disk.raw.gz")
	r1 := decompress(t, path, Options{Dir: cacheDir})
	r1.File.Close()
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	r2 := decompress(t, path, Options{Dir: cacheDir})
	r2.File.Close()
	if r2.Reused || r2.Path == r1.Path {
		t.Errorf("touched input reused %s", r1.Path)
	}
}

func TestDecompressNoCache(t *testing.T) {
	dir, want, wantSize := inputs(t)
	tmp := t.TempDir()
	res := decompress(t, filepath.Join(dir, "export.tar.gz"), Options{Dir: tmp, NoCache: true})
	if res.Path != "" || res.Size != wantSize || res.Format != "gzip+tar" {
		t.Errorf("result %+v", res)
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Errorf("NoCache left %d files in %s", len(entries), tmp)
	}
	if got := fileHash(t, io.NewSectionReader(res.File, 0, res.Size)); got != want {
		t.Error("decompressed image differs from the original")
	}
	res.File.Close()
}

func TestDecompressErrors(t *testing.T) {
	dir, _, _ := inputs(t)
	// Truncated streams: an error, and no file a later run could trust.
	for _, name := range []string{"disk.raw.zst", "disk.raw.gz", "disk.raw.xz", "export.tar.gz"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		cut := filepath.Join(t.TempDir(), "cut-"+name)
		if err := os.WriteFile(cut, b[:len(b)/2], 0o600); err != nil {
			t.Fatal(err)
		}
		cacheDir := t.TempDir()
		f, _ := os.Open(cut)
		_, err = Decompress(f, cut, Options{Dir: cacheDir})
		f.Close()
		if err == nil {
			t.Errorf("%s cut in half: no error", name)
		}
		if entries, _ := os.ReadDir(cacheDir); len(entries) != 0 {
			t.Errorf("%s cut in half: cache holds %d files", name, len(entries))
		}
	}
	// A tarball without disk.raw.
	tool(t, dir, "sh", "-c", "cp disk.raw.gz other.raw.gz && tar -czf notgce.tar.gz other.raw.gz disk.raw.xz")
	f, _ := os.Open(filepath.Join(dir, "notgce.tar.gz"))
	_, err := Decompress(f, filepath.Join(dir, "notgce.tar.gz"), Options{Dir: t.TempDir()})
	f.Close()
	if err == nil || !strings.Contains(err.Error(), `tar: no disk.raw entry (GCE image export) among "other.raw.gz", "disk.raw.xz"`) {
		t.Errorf("tar without disk.raw: %v", err)
	}
	// bzip2 is recognised and refused.
	if _, err := exec.LookPath("bzip2"); err == nil {
		tool(t, dir, "sh", "-c", "head -c 100000 disk.raw | bzip2 > x.bz2")
		f, _ := os.Open(filepath.Join(dir, "x.bz2"))
		_, err := Decompress(f, "x.bz2", Options{Dir: t.TempDir()})
		f.Close()
		if err == nil || !strings.Contains(err.Error(), "bzip2-compressed images are not supported") {
			t.Errorf("bzip2: %v", err)
		}
	}
}

// Leftovers of a killed run are removed once old, and never used.
func TestStalePartial(t *testing.T) {
	dir, _, _ := inputs(t)
	cacheDir := t.TempDir()
	path := filepath.Join(dir, "disk.raw.zst")
	fi, _ := os.Stat(path)
	abs, _ := filepath.Abs(path)
	key := Key(abs, fi.Size(), fi.ModTime())
	old := filepath.Join(cacheDir, key+".123.partial")
	young := filepath.Join(cacheDir, "other.456.partial")
	for _, p := range []string{old, young} {
		if err := os.WriteFile(p, []byte("half"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	past := time.Now().Add(-48 * time.Hour)
	os.Chtimes(old, past, past)
	res := decompress(t, path, Options{Dir: cacheDir})
	res.File.Close()
	if res.Reused {
		t.Error("a partial file was reused")
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Error("stale partial file kept")
	}
	if _, err := os.Stat(young); err != nil {
		t.Error("a young partial file (maybe another run's) was removed")
	}
}

// A user without a usable cache directory (a sandbox with no home) still
// gets the image, through a temporary file, and a warning says why.
func TestDecompressUnusableCacheDir(t *testing.T) {
	dir, want, _ := inputs(t)
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_CACHE_HOME", filepath.Join(blocker, "cache")) // under a regular file: mkdir fails even as root
	t.Setenv("TMPDIR", t.TempDir())
	res := decompress(t, filepath.Join(dir, "disk.raw.zst"), Options{})
	defer res.File.Close()
	if res.Path != "" || !strings.Contains(res.Warning, "not usable") {
		t.Errorf("result %+v", res)
	}
	if got := fileHash(t, io.NewSectionReader(res.File, 0, res.Size)); got != want {
		t.Error("decompressed image differs from the original")
	}
}
