package export

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/ctrlift/ctrlift/internal/testutil"
	"github.com/ctrlift/ctrlift/layers"
)

// manifestLine is one line of the kernel-made ground truth in
// ../shared/fixtures/cos-node/manifests.
type manifestLine struct {
	Path       string            `json:"path"`
	Type       string            `json:"type"`
	Mode       string            `json:"mode"`
	UID        uint32            `json:"uid"`
	GID        uint32            `json:"gid"`
	Size       *int64            `json:"size"`
	SHA256     string            `json:"sha256"`
	Target     *string           `json:"target"`
	MtimeNs    int64             `json:"mtime_ns"`
	Rdev       any               `json:"rdev"`
	HardlinkTo string            `json:"hardlink_to"`
	Xattrs     map[string]string `json:"xattrs_b64"`
}

func (m manifestLine) String() string {
	b, _ := json.Marshal(m)
	return string(b)
}

type indexRow struct {
	ns, container, snapshotter string
	layers                     []string
	manifest                   string
}

func readIndex(t *testing.T, p string) []indexRow {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var rows []indexRow
	for i, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if i == 0 {
			continue
		}
		f := strings.Split(l, "\t")
		if len(f) < 6 {
			t.Fatalf("index.tsv line %d: %q", i+1, l)
		}
		rows = append(rows, indexRow{ns: f[0], container: f[1], snapshotter: f[2], layers: strings.Split(f[3], ":"), manifest: f[5]})
	}
	return rows
}

func readManifest(t *testing.T, p string) map[string]manifestLine {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]manifestLine{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m manifestLine
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		out[m.Path] = m
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// tarToManifest reads an exported tar back into manifest form, as an
// independent consumer (archive/tar) sees it.
func tarToManifest(t *testing.T, data []byte) map[string]manifestLine {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	out := map[string]manifestLine{}
	sums := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := "/" + strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
		m := manifestLine{Path: p, Mode: fmt.Sprintf("%04o", h.Mode&0o7777), UID: uint32(h.Uid), GID: uint32(h.Gid), MtimeNs: h.ModTime.UnixNano()}
		switch h.Typeflag {
		case tar.TypeDir:
			m.Type = "dir"
		case tar.TypeReg:
			m.Type = "file"
			hs := sha256.New()
			n, err := io.Copy(hs, tr)
			if err != nil {
				t.Fatal(err)
			}
			m.Size = &n
			m.SHA256 = hex.EncodeToString(hs.Sum(nil))
			sums[p] = m.SHA256
		case tar.TypeLink:
			m.Type = "file"
			m.HardlinkTo = "/" + h.Linkname
			m.SHA256 = sums[m.HardlinkTo]
			if first, ok := out[m.HardlinkTo]; ok {
				m.Size = first.Size
			}
		case tar.TypeSymlink:
			m.Type = "symlink"
			target := h.Linkname
			m.Target = &target
			n := int64(len(target))
			m.Size = &n
		case tar.TypeChar:
			m.Type = "char"
			m.Rdev = fmt.Sprintf("%d:%d", h.Devmajor, h.Devminor)
		case tar.TypeBlock:
			m.Type = "block"
			m.Rdev = fmt.Sprintf("%d:%d", h.Devmajor, h.Devminor)
		case tar.TypeFifo:
			m.Type = "fifo"
		default:
			t.Fatalf("%s: unexpected type %c", p, h.Typeflag)
		}
		for k, v := range h.PAXRecords {
			if x, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
				if m.Xattrs == nil {
					m.Xattrs = map[string]string{}
				}
				m.Xattrs[x] = base64.StdEncoding.EncodeToString([]byte(v))
			}
		}
		if _, dup := out[p]; dup {
			t.Errorf("%s: duplicate tar entry", p)
		}
		out[p] = m
	}
	return out
}

func compareManifests(t *testing.T, name string, want, got map[string]manifestLine) {
	t.Helper()
	var diffs []string
	for p, w := range want {
		g, ok := got[p]
		if !ok {
			diffs = append(diffs, "missing "+p)
			continue
		}
		// Symlink sizes and hardlinked names' sizes are what the manifest
		// gives; compare the fields both sides define.
		if w.Rdev == nil {
			g.Rdev = nil
		} else {
			w.Rdev = fmt.Sprint(w.Rdev)
		}
		if w.Size == nil {
			g.Size = nil
		}
		if w.String() != g.String() {
			diffs = append(diffs, fmt.Sprintf("%s:\n  want %s\n  got  %s", p, w, g))
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			diffs = append(diffs, "unexpected "+p)
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		if len(diffs) > 30 {
			diffs = append(diffs[:30], fmt.Sprintf("... %d more", len(diffs)-30))
		}
		t.Errorf("%s: %d differences from the kernel's view:\n%s", name, len(diffs), strings.Join(diffs, "\n"))
	}
}

// TestCOSNodeManifests exports every container of the cos-node fixture
// (clean and live copies) and compares each entry with the manifest made
// from a real read-only overlay mount.
func TestCOSNodeManifests(t *testing.T) {
	shared := testutil.Shared(t)
	base := filepath.Join(shared, "fixtures", "cos-node")
	for _, c := range []struct{ image, manifests string }{
		{"cos-node.raw.zst", "manifests"},
		{"cos-node-live.raw.zst", "manifests-live"},
	} {
		t.Run(c.manifests, func(t *testing.T) {
			fsys := testutil.COSNodeSTATE(t, c.image)
			for _, row := range readIndex(t, filepath.Join(base, c.manifests, "index.tsv")) {
				t.Run(row.ns+"/"+row.container, func(t *testing.T) {
					var ls []layers.Layer
					for i, d := range row.layers {
						ls = append(ls, layers.Layer{FS: fsys, Dir: strings.TrimPrefix(d, "/"), Name: fmt.Sprint(i)})
					}
					m, err := layers.New(ls, layers.Options{})
					if err != nil {
						t.Fatal(err)
					}
					var buf, buf2 bytes.Buffer
					st, err := Tar(&buf, m, Options{})
					if err != nil {
						t.Fatal(err)
					}
					want := readManifest(t, filepath.Join(base, c.manifests, row.manifest))
					compareManifests(t, row.container, want, tarToManifest(t, buf.Bytes()))
					// A second export is byte-identical.
					if _, err := Tar(&buf2, m, Options{}); err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(buf.Bytes(), buf2.Bytes()) {
						t.Error("two exports differ")
					}
					sum := sha256.Sum256(buf.Bytes())
					if st.TarSHA256 != hex.EncodeToString(sum[:]) {
						t.Errorf("reported sha256 %s, tar hashes to %x", st.TarSHA256, sum)
					}
				})
			}
		})
	}
}
