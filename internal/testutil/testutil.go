// Package testutil finds and prepares the test images the tests share:
// the repository's own fixtures and, when present, ../shared beside it.
package testutil

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ctrlift/ctrlift/image/ext4"
	"github.com/klauspost/compress/zstd"
)

// RepoRoot returns the directory holding go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
}

// Shared returns ../shared beside the repository, skipping the test when
// it is absent.
func Shared(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(RepoRoot(t), "..", "shared")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("../shared not present: %v", err)
	}
	return dir
}

// SharedFile returns a file under ../shared, skipping when it is absent.
func SharedFile(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join(Shared(t), rel)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("%s not present: %v", rel, err)
	}
	return p
}

// Unzstd decompresses a .zst file once into a sparse file in a cache
// directory shared by all test binaries of one machine, and returns its
// path. The cache key is the source's content hash prefix and size.
func Unzstd(t testing.TB, src string) string {
	t.Helper()
	st, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}
	key, err := quickKey(src, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(os.TempDir(), "ctrlift-test-cache")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, key+"-"+filepath.Base(src[:len(src)-len(filepath.Ext(src))]))
	if _, err := os.Stat(dst); err == nil {
		return dst
	}
	tmp, err := os.CreateTemp(dir, ".partial-*")
	if err != nil {
		t.Fatal(err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	DecompressZstd(t, src, tmp.Name())
	if err := os.Rename(tmp.Name(), dst); err != nil {
		t.Fatal(err)
	}
	return dst
}

// DecompressZstd writes the zstd file src to dst as a sparse file (runs of
// zeros become holes: the disk fixtures are mostly empty) and returns its
// size.
func DecompressZstd(t testing.TB, src, dst string) int64 {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	dec, err := zstd.NewReader(in, zstd.WithDecoderMaxWindow(1<<31))
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	n, err := copySparse(out, dec)
	if err != nil {
		t.Fatalf("decompressing %s: %v", src, err)
	}
	return n
}

// NeedTools skips the test unless every named program is on PATH.
func NeedTools(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Skipf("%s not installed", n)
		}
	}
}

func quickKey(path string, size int64) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyN(h, f, 1<<20); err != nil && err != io.EOF {
		return "", err
	}
	fmt.Fprintf(h, "%d", size)
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// copySparse copies r to f, seeking over all-zero 64 KiB chunks.
func copySparse(f *os.File, r io.Reader) (int64, error) {
	buf := make([]byte, 64<<10)
	var off int64
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if !allZero(buf[:n]) {
				if _, werr := f.WriteAt(buf[:n], off); werr != nil {
					return off, werr
				}
			}
			off += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return off, f.Truncate(off)
		}
		if err != nil {
			return off, err
		}
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// COSNodeSTATE decompresses a cos-node fixture disk (image is
// "cos-node.raw.zst" or "cos-node-live.raw.zst") and opens its STATE
// partition, whose start it takes from the fixture's own sgdisk listing.
func COSNodeSTATE(t testing.TB, image string) *ext4.FS {
	t.Helper()
	raw := Unzstd(t, SharedFile(t, filepath.Join("fixtures", "cos-node", image)))
	txt, err := os.ReadFile(SharedFile(t, filepath.Join("fixtures", "cos-node", "expected", "gpt.txt")))
	if err != nil {
		t.Fatal(err)
	}
	var start, end int64 = -1, -1
	for _, l := range strings.Split(string(txt), "\n") {
		f := strings.Fields(l)
		if len(f) >= 7 && f[0] == "1" && f[len(f)-1] == "STATE" {
			start, _ = strconv.ParseInt(f[1], 10, 64)
			end, _ = strconv.ParseInt(f[2], 10, 64)
		}
	}
	if start < 0 {
		t.Fatal("STATE not found in gpt.txt")
	}
	f, err := os.Open(raw)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	sr := io.NewSectionReader(f, start*512, (end-start+1)*512)
	fsys, err := ext4.NewReader(sr, sr.Size())
	if err != nil {
		t.Fatal(err)
	}
	return fsys
}

// DiskDir is where the committed partitioned-disk fixtures are
// (testdata/images/disk, made by make-disks.sh).
func DiskDir(t testing.TB) string {
	return filepath.Join(RepoRoot(t), "testdata", "images", "disk")
}

// DiskRaw decompresses testdata/images/disk/<name>.raw.zst into a sparse
// file in t.TempDir() and returns its path.
func DiskRaw(t testing.TB, name string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), name+".raw")
	DecompressZstd(t, filepath.Join(DiskDir(t), name+".raw.zst"), dst)
	return dst
}

// DiskBytes returns the decompressed disk fixture <name> in memory.
func DiskBytes(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(DiskRaw(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
