package node

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctrlift/ctrlift/export"
	"github.com/ctrlift/ctrlift/internal/testutil"
)

// testdata/images/cstorage/fuse: a rootless and a rootful store whose
// containers fuse-overlayfs mounted (podman 4.3 with
// overlay.mount_program). The rootless store has a container with
// whiteouts as 0:0 character devices and one with ".wh.NAME" files, its
// opaque directories user.fuseoverlayfs.opaque; the rootful one's are
// trusted.overlay.opaque. All made the same changes, and every export
// equals fuse-overlayfs's own read-only mount of the container's layers
// (the manifests).
func TestPodmanFuseOverlayNode(t *testing.T) {
	n, dir := cstorageFixtureAt(t, filepath.Join(testutil.RepoRoot(t), "testdata", "images", "cstorage", "fuse"), "fuse-node.raw.zst")
	l, err := n.Containers(ListOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	stores := n.CStorageStores()
	if len(stores) != 2 {
		t.Fatalf("%d stores, want 2", len(stores))
	}
	for _, s := range stores {
		if !s.MountProgram || len(s.Warnings) > 0 {
			t.Errorf("store %s: mount program %v, warnings %q", s.Root, s.MountProgram, s.Warnings)
		}
	}
	names := map[string]string{}
	for _, c := range l.Shown {
		names[c.ID] = c.Namespace + " " + c.ContainerName
	}
	total := 0
	for _, store := range []struct{ name, ns string }{{"rootful", "podman"}, {"rootless", "podman@podrunner"}} {
		b, err := os.ReadFile(filepath.Join(dir, "expected", store.name, "inspect.json"))
		if err != nil {
			t.Fatal(err)
		}
		var exp []podmanInspect
		if err := json.Unmarshal(b, &exp); err != nil {
			t.Fatal(err)
		}
		total += len(exp)
		for _, e := range exp {
			if got, want := names[e.ID], store.ns+" "+e.Name; got != want {
				t.Errorf("%s listed as %q, want %q", e.ID[:12], got, want)
			}
		}
	}
	if len(l.Shown) != total {
		t.Errorf("%d containers listed, podman inspected %d", len(l.Shown), total)
	}

	rows := testutil.ReadIndex(t, filepath.Join(dir, "manifests", "index.tsv"))
	if len(rows) != total {
		t.Fatalf("%d manifests for %d containers", len(rows), total)
	}
	for _, row := range rows {
		t.Run(row.NS+"/"+row.Container[:12], func(t *testing.T) {
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

// diff calls the directories the runtime made to mount on (/dev, /proc,
// /sys) mount points whatever marks fuse-overlayfs left in them: the
// 0:0 device .wh..opq it puts in an opaque directory is no content.
func TestPodmanFuseOverlayMountPoints(t *testing.T) {
	n, _ := cstorageFixtureAt(t, filepath.Join(testutil.RepoRoot(t), "testdata", "images", "cstorage", "fuse"), "fuse-node.raw.zst")
	for _, name := range []string{"fo-chardev", "fo-whfiles", "fo-rootful"} {
		mp := map[string]bool{}
		err := n.Diff(name, DiffOptions{Volumes: VolumesNone}, func(r export.Record) error {
			if r.MountPoint {
				mp[r.Path] = true
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !mp["/dev"] {
			t.Errorf("%s: mount points %v, want /dev among them", name, mp)
		}
	}
}
