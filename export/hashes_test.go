package export

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctrlift/ctrlift/image/ext4"
	"github.com/ctrlift/ctrlift/internal/testutil"
	"github.com/ctrlift/ctrlift/layers"
)

// sparseImage makes an ext4 image with mkfs.ext4 -d from files, each a
// size and the offsets that hold data, and returns it with the digests
// the coreutils tools give each source file (sha256sum, md5sum, sha1sum
// as tools says).
func sparseImage(t *testing.T, tools []string, files map[string][2]int64) (*ext4.FS, map[string][]string) {
	t.Helper()
	testutil.NeedTools(t, append([]string{"mkfs.ext4"}, tools...)...)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.Mkdir(src, 0o755)
	var paths []string
	for name, f := range files {
		p := filepath.Join(src, name)
		w, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		w.WriteAt([]byte("data!"), f[1])
		w.Truncate(f[0])
		w.Close()
		paths = append(paths, p)
	}
	img := filepath.Join(dir, "fs.img")
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-d", src, img, "32M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	want := map[string][]string{}
	for _, tool := range tools {
		out, err := exec.Command(tool, paths...).Output()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			sum, name, _ := strings.Cut(l, "  ")
			want["/"+filepath.Base(name)] = append(want["/"+filepath.Base(name)], sum)
		}
	}
	fsys, err := ext4.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fsys.Close() })
	return fsys, want
}

func manifestOf(t *testing.T, fsys *ext4.FS, hashes ...Hash) map[string]Record {
	t.Helper()
	m, err := layers.New([]layers.Layer{{FS: fsys.Source(), Dir: ".", Name: "fs"}}, layers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var tarball, manifest bytes.Buffer
	if _, err := Tar(&tarball, m, Options{Manifest: &manifest, Hashes: hashes}); err != nil {
		t.Fatal(err)
	}
	out := map[string]Record{}
	for _, l := range strings.Split(strings.TrimSpace(manifest.String()), "\n") {
		var r Record
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		out[r.Path] = r
	}
	return out
}

// TestSparseDigests: a 2 GiB sparse file in a 32 MiB ext4 image made by
// mkfs.ext4 -d gets its sha256 in the manifest (its holes are hashed for
// real), as sha256sum says it of the source file.
func TestSparseDigests(t *testing.T) {
	fsys, want := sparseImage(t, []string{"sha256sum"}, map[string][2]int64{"sparse-2g": {2 << 30, 1 << 30}})
	r := manifestOf(t, fsys)["/sparse-2g"]
	if r.SHA256 != want["/sparse-2g"][0] || r.SHA256Omitted != "" || r.MD5 != "" {
		t.Errorf("sparse-2g: %+v, want sha256 %s", r, want["/sparse-2g"][0])
	}
}

// TestMoreDigests: --hash sha256,md5,sha1 in the manifest and in the
// diff's digester, against coreutils.
func TestMoreDigests(t *testing.T) {
	tools := []string{"sha256sum", "md5sum", "sha1sum"}
	fsys, want := sparseImage(t, tools, map[string][2]int64{"small": {5, 0}, "sparse-64m": {64 << 20, 32 << 20}})
	got := manifestOf(t, fsys, SHA256, MD5, SHA1)
	for p, w := range want {
		r := got[p]
		if d := []string{r.SHA256, r.MD5, r.SHA1}; strings.Join(d, " ") != strings.Join(w, " ") {
			t.Errorf("%s: manifest %v, want %v", p, d, w)
		}
		in, err := fsys.Source().Lookup(strings.TrimPrefix(p, "/"))
		if err != nil {
			t.Fatal(err)
		}
		ds, omitted, err := NewDigester(SHA256, MD5, SHA1).Digests(fsys.Source(), in)
		if d := []string{ds.SHA256, ds.MD5, ds.SHA1}; err != nil || omitted != "" || strings.Join(d, " ") != strings.Join(w, " ") {
			t.Errorf("%s: Digester %v %q %v, want %v", p, d, omitted, err, w)
		}
	}
}

func TestParseHashes(t *testing.T) {
	if h, err := ParseHashes("sha256, MD5,sha1,md5"); err != nil || len(h) != 3 || h[1] != MD5 {
		t.Errorf("%v %v", h, err)
	}
	if _, err := ParseHashes("crc32"); err == nil {
		t.Error("crc32 accepted")
	}
}
