package export

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ctrlift/ctrlift/image/ext4"
	"github.com/ctrlift/ctrlift/internal/testutil"
	"github.com/ctrlift/ctrlift/layers"
)

// fixtureFile is what testdata/images/ext4/make-ext4.py recorded of a file
// from the source tree the image was made from.
type fixtureFile struct {
	Path     string
	Type     string
	Size     int64
	SHA256   string
	Segments [][3]any // offset, length, sha256 of the source's data stretches
}

func loadFixture(t *testing.T, name string) (*ext4.FS, map[string]fixtureFile) {
	root := testutil.RepoRoot(t)
	img := testutil.Unzstd(t, filepath.Join(root, "testdata", "images", "ext4", name+".img.zst"))
	fsys, err := ext4.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fsys.Close() })
	js := filepath.Join(root, "testdata", "images", "ext4", name+".json")
	var raw []byte
	if _, err := os.Stat(js); err == nil {
		raw, err = os.ReadFile(js)
		if err != nil {
			t.Fatal(err)
		}
	} else {
		raw, err = os.ReadFile(testutil.Unzstd(t, js+".zst"))
		if err != nil {
			t.Fatal(err)
		}
	}
	var doc struct{ Entries []fixtureFile }
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	files := map[string]fixtureFile{}
	for _, e := range doc.Entries {
		if e.Type == "file" && e.Path != "" {
			files[e.Path] = e
		}
	}
	return fsys, files
}

// TestSparseExport exports images holding sparse files (a 5 GiB one with
// 200 KiB of data, all-hole, many holes, unwritten extents, ext2 indirect
// blocks) and reads the tar back with archive/tar and GNU tar: every file
// must come back with the source's size and bytes, the big holes must not
// be in the tar, and GNU tar must recreate them as holes.
func TestSparseExport(t *testing.T) {
	for _, name := range []string{"ext4-default", "ext2-1k"} {
		t.Run(name, func(t *testing.T) {
			fsys, files := loadFixture(t, name)
			m, err := layers.New([]layers.Layer{{FS: fsys.Source(), Dir: ".", Name: name}}, layers.Options{})
			if err != nil {
				t.Fatal(err)
			}
			var tarball, again, manifest bytes.Buffer
			if _, err := Tar(&tarball, m, Options{Manifest: &manifest}); err != nil {
				t.Fatal(err)
			}
			if _, err := Tar(&again, m, Options{}); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(tarball.Bytes(), again.Bytes()) {
				t.Error("two exports differ")
			}
			var logical int64
			for _, f := range files {
				logical += f.Size
			}
			t.Logf("tar %d bytes for %d bytes of file contents", tarball.Len(), logical)
			if name == "ext4-default" && tarball.Len() > 64<<20 {
				t.Errorf("tar is %d bytes: holes were written out", tarball.Len())
			}

			// archive/tar (docker/podman import, trivy) and the manifest.
			digests := map[string]string{}
			for _, l := range strings.Split(strings.TrimSpace(manifest.String()), "\n") {
				var e struct {
					Path, SHA256  string
					SHA256Omitted string `json:"sha256_omitted"`
				}
				if err := json.Unmarshal([]byte(l), &e); err != nil {
					t.Fatal(err)
				}
				if e.SHA256Omitted != "" {
					e.SHA256 = "omitted"
				}
				digests[strings.TrimPrefix(e.Path, "/")] = e.SHA256
			}
			tr := tar.NewReader(bytes.NewReader(tarball.Bytes()))
			seen, sparse := 0, 0
			for {
				h, err := tr.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if h.PAXRecords["GNU.sparse.major"] == "1" {
					sparse++
				}
				want, ok := files[h.Name]
				if ok && h.Typeflag == tar.TypeLink {
					seen++ // a second name of a file checked under its first
				}
				if !ok || h.Typeflag != tar.TypeReg {
					continue
				}
				seen++
				if h.Size != want.Size {
					t.Errorf("%s: size %d, want %d", h.Name, h.Size, want.Size)
				}
				got, err := digestAndCheck(tr, want)
				if err != nil {
					t.Errorf("%s: %v", h.Name, err)
				}
				// The 5 GiB file is past the hashing budget of a 96 MiB filesystem.
				if d := digests[h.Name]; d != got && !(d == "omitted" && want.Size > minHoleBudget) {
					t.Errorf("%s: manifest sha256 %s, tar content %s", h.Name, d, got)
				}
			}
			if seen != len(files) {
				t.Errorf("archive/tar read %d regular files, want %d", seen, len(files))
			}
			if sparse == 0 {
				t.Error("no sparse entries written")
			}
			t.Logf("%d files, %d sparse entries", seen, sparse)

			// GNU tar restores the files, holes as holes.
			testutil.NeedTools(t, "tar")
			dir := t.TempDir()
			cmd := exec.Command("tar", "-xf", "-", "-C", dir, "--no-same-owner", "--no-same-permissions")
			cmd.Stdin = bytes.NewReader(tarball.Bytes())
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("GNU tar: %v\n%s", err, out)
			}
			for p, want := range files {
				f, err := os.Open(filepath.Join(dir, p))
				if err != nil {
					t.Errorf("GNU tar: %v", err)
					continue
				}
				st, _ := f.Stat()
				if st.Size() != want.Size {
					t.Errorf("GNU tar: %s: size %d, want %d", p, st.Size(), want.Size)
				}
				if want.SHA256 == "" {
					// The 5 GiB file: its data stretches; archive/tar
					// above read all of it.
					for _, sg := range want.Segments {
						off, l := int64(sg[0].(float64)), int64(sg[1].(float64))
						b := make([]byte, l)
						f.ReadAt(b, off)
						if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != sg[2].(string) {
							t.Errorf("GNU tar: %s: data at %d differs", p, off)
						}
					}
				} else if _, err := digestAndCheck(f, want); err != nil {
					t.Errorf("GNU tar: %s: %v", p, err)
				}
				if blocks := st.Sys().(*syscall.Stat_t).Blocks * 512; want.Size >= 64<<20 && blocks > 16<<20 {
					t.Errorf("GNU tar: %s: %d bytes allocated: holes not restored", p, blocks)
				}
				f.Close()
			}
		})
	}
}

// digestAndCheck reads r (the whole file) and checks it against want: its
// sha256 when recorded, else the bytes of each source data stretch.
func digestAndCheck(r io.Reader, want fixtureFile) (string, error) {
	h := sha256.New()
	var pos int64
	var errs []error
	segs := want.Segments
	buf := make([]byte, 1<<20)
	var seg []byte
	for {
		n, err := r.Read(buf)
		chunk := buf[:n]
		h.Write(chunk)
		for len(segs) > 0 && n > 0 {
			off, l := int64(segs[0][0].(float64)), int64(segs[0][1].(float64))
			lo, hi := max(off, pos), min(off+l, pos+int64(n))
			if lo < hi {
				seg = append(seg, chunk[lo-pos:hi-pos]...)
			}
			if off+l > pos+int64(n) {
				break
			}
			if sum := sha256.Sum256(seg); want.SHA256 == "" && hex.EncodeToString(sum[:]) != segs[0][2].(string) {
				errs = append(errs, fmt.Errorf("data stretch at %v differs", segs[0][0]))
			}
			seg, segs = seg[:0], segs[1:]
		}
		pos += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", err
		}
	}
	got := hex.EncodeToString(h.Sum(nil))
	if want.SHA256 != "" && got != want.SHA256 {
		errs = append(errs, errors.New("sha256 "+got+", want "+want.SHA256))
	}
	if pos != want.Size {
		errs = append(errs, errors.New("short read"))
	}
	return got, errors.Join(errs...)
}
