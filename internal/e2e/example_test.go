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

	"github.com/ctrlift/ctrlift/containerd"
	"github.com/ctrlift/ctrlift/export"
	"github.com/ctrlift/ctrlift/image"
	"github.com/ctrlift/ctrlift/image/ext4"
	"github.com/ctrlift/ctrlift/internal/testutil"
	"github.com/ctrlift/ctrlift/layers"
)

func TestExampleNode(t *testing.T) {
	repo := testutil.RepoRoot(t)
	dir := filepath.Join(repo, "testdata", "images", "example")
	d, err := image.Open(filepath.Join(dir, "wordpress-node.raw.zst"), image.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	p, err := d.Select("")
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "STATE" || p.FS.Type != "ext4" {
		t.Fatalf("selected %+v, want the ext4 STATE partition", p)
	}
	fsys, err := ext4.NewReader(p.Reader(), p.Size)
	if err != nil {
		t.Fatal(err)
	}
	root, err := containerd.FindRoot(fsys, "")
	if err != nil {
		t.Fatal(err)
	}
	st, err := containerd.Load(fsys, root)
	if err != nil {
		t.Fatal(err)
	}
	rows := testutil.ReadIndex(t, filepath.Join(dir, "manifests", "index.tsv"))
	if len(rows) != len(st.Containers) {
		t.Errorf("%d containers in meta.db, %d in the manifests", len(st.Containers), len(rows))
	}
	for _, row := range rows {
		t.Run(row.Container[:12], func(t *testing.T) {
			c, err := st.ResolveIn(row.NS, row.Container)
			if err != nil {
				t.Fatal(err)
			}
			// containerd's chain is the one the generator mounted.
			var got []string
			var ls []layers.Layer
			for _, l := range c.Layers {
				got = append(got, "/"+l.Path)
				ls = append(ls, layers.Layer{FS: fsys.Source(), Dir: l.Path, Name: l.SnapshotKey})
			}
			if strings.Join(got, ":") != strings.Join(row.Layers, ":") {
				t.Fatalf("chain\n got %v\nwant %v", got, row.Layers)
			}
			m, err := layers.New(ls, layers.Options{})
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if _, err := export.Tar(&buf, m, export.Options{}); err != nil {
				t.Fatal(err)
			}
			want := testutil.ReadManifest(t, filepath.Join(dir, "manifests", row.Manifest))
			testutil.CompareManifests(t, c.ID, want, testutil.TarToManifest(t, buf.Bytes()))
		})
	}
}
