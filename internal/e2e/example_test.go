// Package e2e runs the whole pipeline on the bundled example node image:
// compressed disk -> GPT -> ext4 -> containerd -> layer merge -> tar, and
// compares every container with the manifest the kernel's overlay mount
// produced when the image was made (testdata/images/example/manifests).
package e2e

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctrlift/ctrlift/internal/testutil"
	"github.com/ctrlift/ctrlift/node"
)

func TestExampleNode(t *testing.T) {
	repo := testutil.RepoRoot(t)
	dir := filepath.Join(repo, "testdata", "images", "example")
	n, err := node.Open([]string{filepath.Join(dir, "wordpress-node.raw.zst")}, node.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if p := n.Partition(); p == nil || p.Name != "STATE" || p.FS.Type != "ext4" {
		t.Fatalf("selected %+v, want the ext4 STATE partition", p)
	}
	st, err := n.State()
	if err != nil {
		t.Fatal(err)
	}
	rows := testutil.ReadIndex(t, filepath.Join(dir, "manifests", "index.tsv"))
	if len(rows) != len(st.Containers) {
		t.Errorf("%d containers in meta.db, %d in the manifests", len(st.Containers), len(rows))
	}
	for _, row := range rows {
		t.Run(row.Container[:12], func(t *testing.T) {
			c, err := n.Resolve(row.NS + "/" + row.Container)
			if err != nil {
				t.Fatal(err)
			}
			// containerd's chain is the one the generator mounted.
			ls, err := n.Layers(c, node.LayerOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, l := range ls {
				got = append(got, "/"+l.Dir)
			}
			if strings.Join(got, ":") != strings.Join(row.Layers, ":") {
				t.Fatalf("chain\n got %v\nwant %v", got, row.Layers)
			}
			var buf bytes.Buffer
			if _, err := n.ExportLayers(ls, &buf, node.ExportOptions{}); err != nil {
				t.Fatal(err)
			}
			want := testutil.ReadManifest(t, filepath.Join(dir, "manifests", row.Manifest))
			testutil.CompareManifests(t, c.ID, want, testutil.TarToManifest(t, buf.Bytes()))
		})
	}
}
