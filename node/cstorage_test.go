package node

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctrlift/ctrlift/containerd"
	"github.com/ctrlift/ctrlift/internal/testutil"
)

// testdata/images/cstorage: a disk whose root holds a rootful and a
// rootless store written by podman 4.3 (generate.sh).
func cstorageFixture(t *testing.T) (*Node, string) {
	t.Helper()
	return cstorageFixtureAt(t, filepath.Join(testutil.RepoRoot(t), "testdata", "images", "cstorage"), "podman-node.raw.zst")
}

// cstorageFixtureAt opens disk in dir, a fixture laid out as generate.sh's.
func cstorageFixtureAt(t *testing.T, dir, disk string) (*Node, string) {
	t.Helper()
	n, err := Open([]string{filepath.Join(dir, disk)}, Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n, dir
}

type podmanInspect struct {
	ID    string `json:"Id"`
	Name  string
	Pod   string
	State struct {
		Status   string
		ExitCode int32
	}
	IsInfra   bool
	ImageName string
	Mounts    []struct {
		Type, Name, Source, Destination string
	}
}

// Every container podman inspected is listed with its name, pod, state
// and exit code, in the namespace of its store, and each export equals
// the kernel's read-only overlay mount of its layers (the manifests the
// generator wrote), rootless stores included (user.overlay.* markers,
// owners as stored).
func TestPodmanNode(t *testing.T) {
	checkPodmanNode(t, cstorageFixture)
}

// The same for Podman 5's stores (SQLite db.sql), listed as Podman 4's.
func TestPodman5Node(t *testing.T) {
	checkPodmanNode(t, podman5Fixture)
}

func podman5Fixture(t *testing.T) (*Node, string) {
	t.Helper()
	return cstorageFixtureAt(t, filepath.Join(testutil.RepoRoot(t), "testdata", "images", "cstorage", "podman5"), "podman5-node.raw.zst")
}

func checkPodmanNode(t *testing.T, fixture func(*testing.T) (*Node, string)) {
	n, dir := fixture(t)
	l, err := n.Containers(ListOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	if !n.HasCStorage() || len(n.CStorageStores()) != 2 {
		t.Fatalf("stores: %d", len(n.CStorageStores()))
	}
	byID := map[string]containerd.Container{}
	for _, c := range l.Shown {
		byID[c.ID] = c
	}
	pods := map[string]string{}
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
		var podList []struct{ Id, Name string }
		if b, err := os.ReadFile(filepath.Join(dir, "expected", store.name, "pods.json")); err == nil {
			json.Unmarshal(b, &podList)
		}
		for _, p := range podList {
			pods[p.Id] = p.Name
		}
		total += len(exp)
		for _, e := range exp {
			c, ok := byID[e.ID]
			if !ok {
				t.Errorf("%s %s not listed", store.name, e.Name)
				continue
			}
			exit := "-"
			if c.ExitCode != nil {
				exit = fmt.Sprint(*c.ExitCode)
			}
			wantExit := "-"
			if e.State.Status == "exited" {
				wantExit = fmt.Sprint(e.State.ExitCode)
			}
			wantKind := "container"
			if e.IsInfra {
				wantKind = "sandbox"
			}
			got := fmt.Sprintf("%s %s %s pod=%q %s exit=%s %s", c.Engine, c.Namespace, c.ContainerName, c.PodName, c.Status, exit, c.Kind)
			want := fmt.Sprintf("podman %s %s pod=%q %s exit=%s %s", store.ns, e.Name, pods[e.Pod], e.State.Status, wantExit, wantKind)
			if got != want {
				t.Errorf("listed  %s\npodman says %s", got, want)
			}
			if (store.name == "rootless") != (c.UserNamespace != "") {
				t.Errorf("%s: user namespace %q", e.Name, c.UserNamespace)
			}
		}
	}
	if len(l.Shown) != total {
		t.Errorf("%d containers listed, podman inspected %d", len(l.Shown), total)
	}
	shown, err := n.Containers(ListOptions{})
	if err != nil || len(shown.Shown) != total-1 || shown.Hidden.Sandboxes != 1 {
		t.Errorf("default listing: %d shown, %+v (the infra container is hidden): %v", len(shown.Shown), shown.Hidden, err)
	}

	for _, row := range testutil.ReadIndex(t, filepath.Join(dir, "manifests", "index.tsv")) {
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
				got = append(got, "/"+strings.TrimPrefix(l.Dir, "home/podrunner/.local/share/containers/storage/"))
			}
			var want []string
			for _, l := range row.Layers {
				want = append(want, strings.TrimPrefix(l, "/home/podrunner/.local/share/containers/storage/"))
			}
			if row.NS == "rootful" && strings.Join(got, ":") != strings.Join(want, ":") {
				t.Fatalf("chain\n got %v\nwant %v", got, want)
			}
			var buf bytes.Buffer
			if _, err := n.ExportLayers(ls, &buf, ExportOptions{}); err != nil {
				t.Fatal(err)
			}
			exp := testutil.ReadManifest(t, filepath.Join(dir, "manifests", row.Manifest))
			testutil.CompareManifests(t, c.ContainerName, exp, testutil.TarToManifest(t, buf.Bytes()))
		})
	}
}

// Names, id prefixes and pod/name references resolve; cri-o:// refuses a
// node without CRI-O; containerd:// does not select Podman's.
func TestPodmanRefs(t *testing.T) {
	for _, fx := range podmanFixtures {
		t.Run(fx.name, func(t *testing.T) { checkPodmanRefs(t, fx.open) })
	}
}

// podmanFixtures are the Podman 4 (bolt_state.db) and Podman 5 (db.sql)
// disks, made by the same scenario.
var podmanFixtures = []struct {
	name string
	open func(*testing.T) (*Node, string)
}{{"podman4", cstorageFixture}, {"podman5", podman5Fixture}}

func checkPodmanRefs(t *testing.T, fixture func(*testing.T) (*Node, string)) {
	n, _ := fixture(t)
	for _, ref := range []string{"changed", "webpod/web", "rl-exit"} {
		if _, err := n.Resolve(ref); err != nil {
			t.Errorf("%s: %v", ref, err)
		}
	}
	c, err := n.Resolve("failed")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := n.Resolve("podman/" + c.ID[:12]); err == nil {
		t.Errorf("namespace/id takes a full id: %s", got.ID)
	}
	if got, err := n.Resolve("podman/" + c.ID); err != nil || got.ID != c.ID {
		t.Errorf("podman/ID: %v", err)
	}
	if _, err := n.Resolve("containerd://" + c.ID); err == nil {
		t.Errorf("containerd:// selected a Podman container")
	}
	if _, err := n.Resolve("cri-o://" + c.ID); err == nil || !strings.Contains(err.Error(), "holds Podman state only") {
		t.Errorf("cri-o:// on a Podman node: %v", err)
	}
}

// The named volume is the store's volumes/NAME/_data and is exported at
// its mount point; the files Podman bound from /run are not on the disk.
func TestPodmanVolumes(t *testing.T) {
	for _, fx := range podmanFixtures {
		t.Run(fx.name, func(t *testing.T) { checkPodmanVolumes(t, fx.open) })
	}
}

func checkPodmanVolumes(t *testing.T, fixture func(*testing.T) (*Node, string)) {
	n, _ := fixture(t)
	c, err := n.Resolve("web")
	if err != nil {
		t.Fatal(err)
	}
	vs, err := n.Volumes(c, VolumesDisk)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Volume{}
	for _, v := range vs {
		got[v.ContainerPath] = v
	}
	if v := got["/data"]; v.Kind != "volume" || !v.OnDisk || !v.Included || v.Path != "var/lib/containers/storage/volumes/appdata/_data" ||
		v.HostPath != "/var/lib/containers/storage/volumes/appdata/_data" {
		t.Errorf("/data: %+v", v)
	}
	if v := got["/etc/hosts"]; v.OnDisk || v.Included {
		t.Errorf("/etc/hosts: %+v", v)
	}
	all := exportNames(t, n, "web", ExportOptions{})
	if h := all["data/file"]; h == nil || h.Size != 5 {
		t.Errorf("data/file in the export: %+v", h)
	}
}
