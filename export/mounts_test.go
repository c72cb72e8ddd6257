package export

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctrlift/ctrlift/image/dirfs"
	"github.com/ctrlift/ctrlift/layers"
)

// TestMounts: volumes and bind-mounted files replace what the layers hold
// at their mount points, in order, named as their source in the manifest.
func TestMounts(t *testing.T) {
	root := t.TempDir()
	for p, data := range map[string]string{
		"rootfs/etc/hosts":            "", // the runtime's stub
		"rootfs/etc/passwd":           "root:x:0:0:root:/root:/bin/sh\n",
		"rootfs/scratch/.keep":        "hidden", // under the volume: hidden
		"vol/scratch/exfil.txt":       "secrets\n",
		"vol/scratch/sub/inner/x.bin": "xx",
		"inner/data":                  "nested\n",
		"pod/etc-hosts":               "127.0.0.1 localhost\n",
	} {
		full := filepath.Join(root, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d, err := dirfs.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	m, err := layers.New([]layers.Layer{{FS: d, Dir: "rootfs", Name: "layer0"}}, layers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var tarball, manifest bytes.Buffer
	stats, err := Tar(&tarball, m, Options{Manifest: &manifest, Mounts: []Mount{
		{Path: "/scratch", FS: d, Source: "vol/scratch", Name: "volume emptyDir scratch"},
		{Path: "/scratch/sub/inner", FS: d, Source: "inner", Name: "volume inner"},
		{Path: "/etc/hosts", FS: d, Source: "pod/etc-hosts", Name: "file etc-hosts"},
		{Path: "/gone", FS: d, Source: "nowhere", Name: "volume gone"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	contents := map[string]string{}
	tr := tar.NewReader(&tarball)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		b, _ := io.ReadAll(tr)
		contents[h.Name] = string(b)
	}
	want := "./ etc/ etc/hosts etc/passwd scratch/ scratch/exfil.txt scratch/sub/ scratch/sub/inner/ scratch/sub/inner/data"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("entries:\n got %s\nwant %s", got, want)
	}
	if contents["etc/hosts"] != "127.0.0.1 localhost\n" || contents["scratch/exfil.txt"] != "secrets\n" {
		t.Errorf("contents: %q", contents)
	}
	sources := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(manifest.String()), "\n") {
		var r Record
		json.Unmarshal([]byte(l), &r)
		sources[r.Path] = r.Layer
	}
	if sources["/scratch/exfil.txt"] != "volume emptyDir scratch" || sources["/etc/hosts"] != "file etc-hosts" ||
		sources["/scratch/sub/inner/data"] != "volume inner" || sources["/etc/passwd"] != "layer0" {
		t.Errorf("sources: %v", sources)
	}
	if len(stats.Skipped) != 1 || !strings.Contains(stats.Skipped[0], "/gone: volume gone: no mount point") {
		t.Errorf("skipped: %q", stats.Skipped)
	}
}
