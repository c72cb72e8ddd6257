package testutil

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
	"sort"
	"strings"
	"testing"
)

// ManifestLine is one line of the kernel-made ground truth in
// ../shared/fixtures/cos-node/manifests.
type ManifestLine struct {
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

func (m ManifestLine) String() string {
	b, _ := json.Marshal(m)
	return string(b)
}

// IndexRow is one line of a fixture's manifests/index.tsv.
type IndexRow struct {
	NS, Container, Snapshotter string
	Layers                     []string // absolute layer directories, top first
	Manifest                   string
}

// ReadIndex reads manifests/index.tsv.
func ReadIndex(t testing.TB, p string) []IndexRow {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var rows []IndexRow
	for i, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if i == 0 {
			continue
		}
		f := strings.Split(l, "\t")
		if len(f) < 6 {
			t.Fatalf("index.tsv line %d: %q", i+1, l)
		}
		rows = append(rows, IndexRow{NS: f[0], Container: f[1], Snapshotter: f[2], Layers: strings.Split(f[3], ":"), Manifest: f[5]})
	}
	return rows
}

// ReadManifest reads one JSON-lines manifest into a map by path.
func ReadManifest(t testing.TB, p string) map[string]ManifestLine {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]ManifestLine{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m ManifestLine
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

// TarToManifest reads an exported tar back into manifest form, as an
// independent consumer (archive/tar) sees it.
func TarToManifest(t testing.TB, data []byte) map[string]ManifestLine {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	out := map[string]ManifestLine{}
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
		m := ManifestLine{Path: p, Mode: fmt.Sprintf("%04o", h.Mode&0o7777), UID: uint32(h.Uid), GID: uint32(h.Gid), MtimeNs: h.ModTime.UnixNano()}
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

// CompareManifests fails t with every difference between want and got.
func CompareManifests(t testing.TB, name string, want, got map[string]ManifestLine) {
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
