package node

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/ctrlift/ctrlift/export"
	"github.com/ctrlift/ctrlift/internal/testutil"
)

// The Docker 29 node fixtures: dockerd 29.8 with its containerd image
// store (the default of a fresh install) and containerd 2.3 wrote them,
// both built from source (testdata/images/docker/make-docker29-node.sh):
// configs in /var/lib/docker/containers, images and container filesystems
// in containerd's namespace moby. In 29/ containerd is the system's
// (/var/lib/containerd), with one image and one container of its own
// namespace k8s.io beside Docker's; in 29-managed/ dockerd started
// containerd itself (/var/lib/docker/containerd/daemon). The docker
// client's and the kernel's views, saved beside each, are the
// expectations.
var docker29Fixtures = []struct {
	dir          string
	croot        string // containerd's root
	k8sContainer string // in namespace k8s.io, made with ctr
}{
	{"29", "var/lib/containerd", "k8s-job"},
	{"29-managed", "var/lib/docker/containerd/daemon", ""},
}

func docker29Path(t *testing.T, dir string) string {
	return filepath.Join(testutil.RepoRoot(t), "testdata", "images", "docker", dir)
}

func openDocker29(t *testing.T, dir string) *Node {
	t.Helper()
	n, err := Open([]string{filepath.Join(docker29Path(t, dir), "docker29-node.raw.zst")}, Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func readInspect29(t *testing.T, dir string) map[string]inspected {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(docker29Path(t, dir), "expected", "inspect.json"))
	if err != nil {
		t.Fatal(err)
	}
	var l []inspected
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatal(err)
	}
	out := map[string]inspected{}
	for _, c := range l {
		out[strings.TrimPrefix(c.Name, "/")] = c
	}
	if len(out) != 4 {
		t.Fatalf("inspect.json: %d containers", len(out))
	}
	return out
}

// Every Docker container is listed once, with docker inspect's name,
// image, state and exit code, and the snapshot containerd keeps under its
// id; dockerd's own containerd record of the running one is not listed
// again; containerd's k8s.io container is listed as containerd's.
func TestDocker29List(t *testing.T) {
	for _, fx := range docker29Fixtures {
		t.Run(fx.dir, func(t *testing.T) { testDocker29List(t, fx.dir, fx.croot, fx.k8sContainer) })
	}
}

func testDocker29List(t *testing.T, dir, croot, k8sContainer string) {
	want := readInspect29(t, dir)
	n := openDocker29(t, dir)
	l, err := n.Containers(ListOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	states := map[string]string{}
	k8s := 0
	for _, c := range l.Shown {
		seen[c.ID]++
		if c.Namespace == "k8s.io" {
			k8s++
			if c.ID != k8sContainer || RuntimeOf(&c) != "containerd" || c.Image != "docker.io/ctrlift/base:1" || len(c.Layers) != 2 {
				t.Errorf("k8s.io container %s: runtime %s image %s, %d layers", c.ID, RuntimeOf(&c), c.Image, len(c.Layers))
			}
			continue
		}
		w, ok := want[c.DockerName]
		if !ok || w.ID != c.ID {
			t.Errorf("%s %q (%s): not in docker inspect", c.ID, c.DockerName, c.Namespace)
			continue
		}
		states[c.DockerName] = string(c.Status)
		if RuntimeOf(&c) != "docker" || c.Namespace != DockerNamespace || c.Image != w.Config.Image || c.ImageRef != w.Image {
			t.Errorf("%s: runtime %s namespace %s image %q (%s); docker: %q (%s)", c.DockerName, RuntimeOf(&c), c.Namespace, c.Image, c.ImageRef, w.Config.Image, w.Image)
		}
		if c.Snapshotter != "overlayfs" || c.SnapshotKey != c.ID || c.LayersError != "" || len(c.Layers) < 3 ||
			c.Layers[0].SnapshotKey != c.ID || c.Layers[1].SnapshotKey != c.ID+"-init" {
			t.Errorf("%s: snapshotter %s key %s, layers %+v (%s)", c.DockerName, c.Snapshotter, c.SnapshotKey, c.Layers, c.LayersError)
		}
		if string(c.Status) != w.State.Status {
			t.Errorf("%s: status %q, docker %q", c.DockerName, c.Status, w.State.Status)
		}
		switch w.State.Status {
		case "exited":
			if c.ExitCode == nil || int(*c.ExitCode) != w.State.ExitCode {
				t.Errorf("%s: exit code %v, docker %d", c.DockerName, c.ExitCode, w.State.ExitCode)
			}
		default:
			if c.ExitCode != nil {
				t.Errorf("%s (%s): exit code %d", c.DockerName, w.State.Status, *c.ExitCode)
			}
		}
		if w.State.Running && c.PID != w.State.Pid {
			t.Errorf("%s: pid %d, docker %d", c.DockerName, c.PID, w.State.Pid)
		}
		if !c.CreatedAt.Equal(w.Created) || !c.StartedAt.Equal(zeroIfUnset(w.State.StartedAt)) || !c.FinishedAt.Equal(zeroIfUnset(w.State.FinishedAt)) {
			t.Errorf("%s: created %v started %v finished %v; docker %v %v %v", c.DockerName, c.CreatedAt, c.StartedAt, c.FinishedAt,
				w.Created, w.State.StartedAt, w.State.FinishedAt)
		}
	}
	for name, w := range want {
		if seen[w.ID] != 1 {
			t.Errorf("%s (%s) listed %d times", name, w.ID, seen[w.ID])
		}
	}
	if (k8s == 1) != (k8sContainer != "") || len(l.Shown) != len(want)+k8s {
		t.Errorf("%d containers listed (%d of k8s.io); docker inspect has %d, ctr one", len(l.Shown), k8s, len(want))
	}
	if got := states["web"] + " " + states["worker"] + " " + states["done"] + " " + states["created"]; got != "running exited exited created" {
		t.Errorf("states: %s", got)
	}
	if st, err := n.State(); err != nil || !n.HasDocker() || n.DockerRoot() != "var/lib/docker" || st.Root != croot {
		t.Errorf("docker root %q, containerd root %q (%v)", n.DockerRoot(), st.Root, err)
	}
}

// Each container's export equals the kernel's read-only overlay mount of
// the layer directories containerd gave for its snapshot; the chain is
// the same, directory for directory.
func TestDocker29Export(t *testing.T) {
	for _, fx := range docker29Fixtures {
		t.Run(fx.dir, func(t *testing.T) { testDocker29Export(t, fx.dir, fx.k8sContainer != "") })
	}
}

func testDocker29Export(t *testing.T, fixture string, withK8s bool) {
	n := openDocker29(t, fixture)
	dir := filepath.Join(docker29Path(t, fixture), "expected", "manifests")
	rows := testutil.ReadIndex(t, filepath.Join(dir, "index.tsv"))
	containers := len(readInspect29(t, fixture))
	if withK8s {
		containers++
	}
	if len(rows) != containers {
		t.Fatalf("index.tsv: %d rows", len(rows))
	}
	for _, row := range rows {
		t.Run(row.NS+"/"+row.Container[:min(12, len(row.Container))], func(t *testing.T) {
			ref := "docker://" + row.Container
			if row.NS != DockerNamespace {
				ref = row.Container
			}
			c, err := n.Resolve(ref)
			if err != nil {
				t.Fatal(err)
			}
			if c.Namespace != row.NS {
				t.Fatalf("%s resolved to %s/%s", ref, c.Namespace, c.ID)
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
			testutil.CompareManifests(t, row.Container, testutil.ReadManifest(t, filepath.Join(dir, row.Manifest)), testutil.TarToManifest(t, buf.Bytes()))
		})
	}
}

// diff shows what docker diff showed (a directory docker marks changed is
// one with a change below it).
func TestDocker29Diff(t *testing.T) {
	for _, fx := range docker29Fixtures {
		t.Run(fx.dir, func(t *testing.T) { testDocker29Diff(t, fx.dir) })
	}
}

func testDocker29Diff(t *testing.T, fixture string) {
	n := openDocker29(t, fixture)
	for name := range readInspect29(t, fixture) {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(docker29Path(t, fixture), "expected", "diff", name+".txt"))
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{}
			for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				if kind, p, ok := strings.Cut(l, " "); ok {
					want[p] = kind
				}
			}
			got := map[string]string{}
			err = n.Diff(name, DiffOptions{Volumes: VolumesNone}, func(r export.Record) error {
				got[r.Path] = map[string]string{"added": "A", "modified": "C", "deleted": "D"}[r.Change]
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			var diffs []string
			for p, k := range want {
				if g := got[p]; g != k && (k != "C" || g != "" || !hasBelow(got, p)) {
					diffs = append(diffs, p+": docker "+k+", ctrlift "+g)
				}
			}
			for p, g := range got {
				if want[p] == "" {
					diffs = append(diffs, p+": ctrlift "+g+", not in docker diff")
				}
			}
			sort.Strings(diffs)
			if len(diffs) > 0 {
				t.Errorf("%d differences from docker diff:\n%s", len(diffs), strings.Join(diffs, "\n"))
			}
			if name == "web" && (want["/var/www/index.html"] != "D" || want["/var/www/shell.php"] != "A" || want["/etc/motd"] != "C") {
				t.Errorf("the fixture's docker diff lacks the generator's changes: %v", want)
			}
		})
	}
}

func hasBelow(paths map[string]string, dir string) bool {
	for q := range paths {
		if strings.HasPrefix(q, dir+"/") {
			return true
		}
	}
	return false
}

// list images shows docker image ls's images once each, from containerd's
// namespace moby (the classic builder's intermediate images left out), and
// containerd's own k8s.io image as containerd's.
func TestDocker29Images(t *testing.T) {
	for _, fx := range docker29Fixtures {
		t.Run(fx.dir, func(t *testing.T) { testDocker29Images(t, fx.dir, fx.k8sContainer != "") })
	}
}

func testDocker29Images(t *testing.T, fixture string, withK8s bool) {
	b, err := os.ReadFile(filepath.Join(docker29Path(t, fixture), "expected", "images.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{} // docker.io/repo:tag -> image id (the manifest digest)
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		tag, id, _ := strings.Cut(l, "\t")
		want["docker.io/"+tag] = id
	}
	n := openDocker29(t, fixture)
	imgs, err := n.Images()
	if err != nil {
		t.Fatal(err)
	}
	docker, k8s := map[string]int{}, 0
	for _, im := range imgs {
		switch {
		case im.Engine == EngineDocker:
			docker[im.Name]++
			if im.Namespace != DockerNamespace || want[im.Name] != im.Target.Digest || im.Config == "" || len(im.DiffIDs) == 0 {
				t.Errorf("%s: namespace %s digest %s config %s diff ids %v; docker image ls: %q", im.Name, im.Namespace, im.Target.Digest, im.Config, im.DiffIDs, want[im.Name])
			}
		case withK8s && im.Namespace == "k8s.io" && im.Name == "docker.io/ctrlift/base:1" && im.Target.Digest == want[im.Name]:
			k8s++
		default:
			t.Errorf("image %s/%s (engine %q) listed", im.Namespace, im.Name, im.Engine)
		}
	}
	for name := range want {
		if docker[name] != 1 {
			t.Errorf("%s listed %d times as Docker's", name, docker[name])
		}
	}
	if len(want) != 2 || len(docker) != len(want) || (k8s == 1) != withK8s {
		t.Errorf("Docker images %v, docker image ls %v; k8s.io %d", docker, want, k8s)
	}
}

// With the Docker root alone selected (no containerd root read), a
// Docker 29 container is still listed from its config, and its layers
// error says where they are.
func TestDocker29WithoutContainerd(t *testing.T) {
	n, err := Open([]string{filepath.Join(docker29Path(t, "29"), "docker29-node.raw.zst")}, Options{CacheDir: t.TempDir(), RuntimeRoot: "/var/lib/docker"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	c, err := n.Resolve("web")
	if err != nil {
		t.Fatal(err)
	}
	const want = "the container's layers are a snapshot of containerd's overlayfs snapshotter (namespace moby, key "
	if RuntimeOf(c) != "docker" || c.Status != "running" || len(c.Layers) != 0 || !strings.HasPrefix(c.LayersError, want+c.ID+"): no containerd root") {
		t.Errorf("%s %s: layers %v, error %q", RuntimeOf(c), c.Status, c.Layers, c.LayersError)
	}
	if _, err := n.Layers(c, LayerOptions{}); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("layers: %v", err)
	}
}
