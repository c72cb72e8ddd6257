package node

import (
	"archive/tar"
	"bytes"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/ctrlift/ctrlift/export"
)

// cosNode is the shared node disk written by real containerd; tests skip
// without ../shared.
func cosNode(t *testing.T) string {
	t.Helper()
	p := filepath.Join("..", "..", "shared", "fixtures", "cos-node", "cos-node.raw.zst")
	if _, err := os.Stat(p); err != nil {
		t.Skipf("no shared fixture: %v", err)
	}
	return p
}

// A native snapshot is a full copy of its parent: its changes are what
// differs from the parent snapshot, not every file.
func TestNativeDiff(t *testing.T) {
	n, err := Open([]string{cosNode(t)}, Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	got := map[string]string{}
	var stubs []string
	err = n.Diff("native-box", DiffOptions{}, func(r export.Record) error {
		if r.MountPoint {
			stubs = append(stubs, r.Path)
			return nil
		}
		if !strings.HasPrefix(r.Path, "/usr/share/fixture-many/") {
			got[r.Path] = r.Change
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"/tmp/native.txt": "added", "/etc/passwd": "modified", "/etc/motd": "deleted", "/usr/share/fixture-many": "deleted"}
	if len(got) != len(want) {
		t.Errorf("diff: %v, want %v", got, want)
	}
	for p, k := range want {
		if got[p] != k {
			t.Errorf("%s: %q, want %q", p, got[p], k)
		}
	}
	sort.Strings(stubs)
	if strings.Join(stubs, " ") != "/dev /proc /run /sys" {
		t.Errorf("mount points: %v", stubs)
	}
	// The changes as an OCI layer: whiteouts for what was deleted, and
	// nothing below a deleted directory.
	var buf bytes.Buffer
	if _, err := n.Export("native-box", &buf, ExportOptions{Changes: true}); err != nil {
		t.Fatal(err)
	}
	var names []string
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	if got := strings.Join(names, " "); got != "dev/ etc/.wh.motd etc/passwd proc/ run/ sys/ tmp/native.txt usr/share/.wh.fixture-many" {
		t.Errorf("changes tar: %s", got)
	}
}

// Volumes: the frontend wrote exfil.txt into its emptyDir; the export
// holds it at /scratch with the emptyDir's bytes, and the bound files
// (/etc/hosts, ...) are the pod's, not the image's. With VolumesNone the
// root filesystem alone.
func TestVolumesExport(t *testing.T) {
	n, err := Open([]string{cosNode(t)}, Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	read := func(mode VolumeMode) map[string]string {
		var buf bytes.Buffer
		if _, err := n.Export("prod/frontend-7d9c8b5f4-x2x9z/frontend", &buf, ExportOptions{Volumes: mode}); err != nil {
			t.Fatal(err)
		}
		files := map[string]string{}
		tr := tar.NewReader(&buf)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				return files
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(tr)
			files[h.Name] = string(b)
		}
	}
	st, err := n.State()
	if err != nil {
		t.Fatal(err)
	}
	files, err := fs.Glob(n.runtime.files, "var/lib/kubelet/pods/*/volumes/kubernetes.io~empty-dir/scratch/exfil.txt")
	if err != nil || len(files) != 1 {
		t.Fatalf("emptyDir on the disk: %v %v (root %s)", files, err, st.Root)
	}
	want, err := fs.ReadFile(n.runtime.files, files[0])
	if err != nil {
		t.Fatal(err)
	}
	with := read(VolumesDisk)
	if got, ok := with["scratch/exfil.txt"]; !ok || got != string(want) {
		t.Errorf("scratch/exfil.txt: %q (present %v), want %q", got, ok, want)
	}
	if !strings.Contains(with["etc/hosts"], "frontend") && with["etc/hosts"] == "" {
		t.Errorf("etc/hosts is not the pod's: %q", with["etc/hosts"])
	}
	without := read(VolumesNone)
	if _, ok := without["scratch/exfil.txt"]; ok {
		t.Error("VolumesNone exported the volume")
	}
	if with["etc/hosts"] == without["etc/hosts"] {
		t.Errorf("etc/hosts is the same with and without volumes: %q", with["etc/hosts"])
	}
}
