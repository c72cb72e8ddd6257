package node

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctrlift/ctrlift/internal/testutil"
)

// testdata/images/cstorage/fuse: a rootless store whose containers
// fuse-overlayfs mounted (podman 4.3 with overlay.mount_program), one
// container with whiteouts as 0:0 character devices, one with ".wh.NAME"
// files; both made the same changes, so both exports equal
// fuse-overlayfs's own read-only mount of their layers (the manifests).
func TestPodmanFuseOverlayNode(t *testing.T) {
	n, dir := cstorageFixtureAt(t, filepath.Join(testutil.RepoRoot(t), "testdata", "images", "cstorage", "fuse"), "fuse-node.raw.zst")
	l, err := n.Containers(ListOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	stores := n.CStorageStores()
	if len(stores) != 1 || !stores[0].MountProgram || len(stores[0].Warnings) > 0 {
		t.Fatalf("stores: %d, want one with a mount program and no warning", len(stores))
	}
	b, err := os.ReadFile(filepath.Join(dir, "expected", "rootless", "inspect.json"))
	if err != nil {
		t.Fatal(err)
	}
	var exp []podmanInspect
	if err := json.Unmarshal(b, &exp); err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	for _, c := range l.Shown {
		names[c.ID] = c.Namespace + " " + c.ContainerName
	}
	for _, e := range exp {
		if got, want := names[e.ID], "podman@podrunner "+e.Name; got != want {
			t.Errorf("%s listed as %q, want %q", e.ID[:12], got, want)
		}
	}
	if len(l.Shown) != len(exp) {
		t.Errorf("%d containers listed, podman inspected %d", len(l.Shown), len(exp))
	}

	rows := testutil.ReadIndex(t, filepath.Join(dir, "manifests", "index.tsv"))
	if len(rows) != len(exp) {
		t.Fatalf("%d manifests for %d containers", len(rows), len(exp))
	}
	for _, row := range rows {
		t.Run(row.Container[:12], func(t *testing.T) {
			c, err := n.Resolve(row.Container)
			if err != nil {
				t.Fatal(err)
			}
			ls, err := n.Layers(c, LayerOptions{})
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
			if _, err := n.ExportLayers(ls, &buf, ExportOptions{}); err != nil {
				t.Fatal(err)
			}
			exp := testutil.ReadManifest(t, filepath.Join(dir, "manifests", row.Manifest))
			// What the container deleted and replaced, checked by name too:
			// the manifests must say so for the comparison to mean it.
			for _, p := range []string{"/etc/motd", "/opt/app/old", "/opt/app/version", "/usr/share/doc"} {
				if _, ok := exp[p]; ok {
					t.Fatalf("manifest holds %s, which the container deleted", p)
				}
			}
			for _, p := range []string{"/opt/app/new", "/added.txt", "/newdir/sub/f"} {
				if _, ok := exp[p]; !ok {
					t.Fatalf("manifest lacks %s, which the container added", p)
				}
			}
			testutil.CompareManifests(t, c.ContainerName, exp, testutil.TarToManifest(t, buf.Bytes()))
		})
	}
}
