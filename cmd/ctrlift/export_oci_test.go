package main

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctrlift/ctrlift/internal/testutil"
)

// export -o oci: the image archive, and the grammar's refusals around it,
// none of which leaves a file behind.
func TestExportOCICLI(t *testing.T) {
	img := filepath.Join(testutil.RepoRoot(t), "testdata", "images", "example", "wordpress-node.raw.zst")
	t.Setenv("XDG_CACHE_HOME", filepath.Join(os.TempDir(), "ctrlift-test-cache", "xdg"))
	const ref = "blog/wordpress-6d8f7b9c5-q2lzx/wordpress"
	dir := t.TempDir()
	for _, tt := range []struct {
		args []string
		err  string
	}{
		{[]string{"-d", filepath.Join(dir, "d"), "-o", "oci"}, "-o oci writes one container's image to a FILE; -d DIR writes tars only"},
		{[]string{ref, filepath.Join(dir, "a.tar"), "--no-changes"}, "--no-changes applies to -o oci"},
		{[]string{ref, filepath.Join(dir, "b.tar"), "-o", "oci", "--changes"}, "--changes writes only its writable layer"},
		{[]string{ref, filepath.Join(dir, "c.tar.gz"), "-o", "oci"}, "-o oci writes an uncompressed tar"},
		{[]string{ref, filepath.Join(dir, "d.tar"), "-o", "oci", "--manifest", filepath.Join(dir, "m.jsonl")}, "-o oci writes no manifest"},
	} {
		_, _, err := run(t, append([]string{"export", "-i", img}, tt.args...)...)
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%v: %v, want %q", tt.args, err, tt.err)
		}
	}
	if names, _ := os.ReadDir(dir); len(names) != 0 {
		t.Errorf("refused commands left %v", names)
	}

	out := filepath.Join(dir, "wordpress.oci.tar")
	_, errOut, err := run(t, "export", "-i", img, ref, out, "-o", "oci", "--compress", "zstd")
	if err != nil {
		t.Fatal(err, errOut)
	}
	if !strings.Contains(errOut, "image ctrlift/blog/wordpress-6d8f7b9c5-q2lzx/wordpress:eed0799779d8: manifest sha256:") ||
		!strings.Contains(errOut, "4 layers, original config") {
		t.Errorf("stderr:\n%s", errOut)
	}
	b, _ := os.ReadFile(out)
	var names []string
	var index []byte
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(h.Name, "blobs/sha256/") || h.Name == "blobs/sha256/" {
			names = append(names, h.Name)
		}
		if h.Name == "index.json" {
			index, _ = io.ReadAll(tr)
		}
	}
	if strings.Join(names, " ") != "blobs/ blobs/sha256/ index.json manifest.json oci-layout" || !bytes.Contains(index, []byte(`"org.opencontainers.image.ref.name":"eed0799779d8"`)) {
		t.Errorf("archive: %v, index.json %s", names, index)
	}
	// The image alone, to standard output.
	stdout, _, err := run(t, "export", "-q", "-i", img, ref, "-", "-o", "oci", "--no-changes")
	if err != nil || !strings.Contains(stdout, `"org.opencontainers.image.ref.name":"eed0799779d8-image"`) {
		t.Errorf("--no-changes to stdout: %v", err)
	}
}
