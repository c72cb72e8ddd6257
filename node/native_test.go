package node

import (
	"archive/tar"
	"bytes"
	"io"
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
	err = n.Diff("native-box", LayerOptions{}, func(r export.Record) error {
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
