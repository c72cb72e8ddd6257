package node

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctrlift/ctrlift/internal/testutil"
)

// testdata/images/cstorage/crio: an RHCOS-like XFS root whose ostree
// deployment's /var holds a CRI-O-style store written by the
// containers/storage library (crio/generate.sh).
func crioFixture(t *testing.T) (*Node, string, []string) {
	t.Helper()
	dir := filepath.Join(testutil.RepoRoot(t), "testdata", "images", "cstorage", "crio")
	n, err := Open([]string{filepath.Join(dir, "rhcos-crio-node.raw.zst")}, Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	b, err := os.ReadFile(filepath.Join(dir, "containers.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string // sandbox, container
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		ids = append(ids, strings.Split(l, "\t")[0])
	}
	return n, dir, ids
}

// The sandbox and its container are listed with their pod and names from
// CRI-O's annotations; cri-o:// and Kubernetes references resolve; each
// export equals the kernel's read-only overlay mount of its layers.
func TestCRIONode(t *testing.T) {
	n, dir, ids := crioFixture(t)
	if p := n.Partition(); p == nil || p.FS.Type != "xfs" {
		t.Fatalf("partition %+v", p)
	}
	l, err := n.Containers(ListOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Shown) != 2 {
		t.Fatalf("%d containers", len(l.Shown))
	}
	for _, c := range l.Shown {
		want := "sandbox  shop/web-7d4b9c"
		if c.ID == ids[1] {
			want = "container web shop/web-7d4b9c"
		}
		got := strings.Join([]string{c.Kind, c.ContainerName, c.PodNamespace + "/" + c.PodName}, " ")
		if c.Engine != EngineCRIO || c.Namespace != CRIONamespace || got != want || c.SandboxID != ids[0] || c.Image != "quay.io/acme/web:3" {
			t.Errorf("%s: %s %s %q sandbox %s image %s", c.ID, c.Engine, c.Namespace, got, c.SandboxID, c.Image)
		}
	}
	if st := n.CStorageStores(); len(st) != 1 || st[0].Root != "ostree/deploy/rhcos/var/lib/containers/storage" || st[0].Podman != nil {
		t.Errorf("stores %+v", st)
	}
	for _, ref := range []string{"cri-o://" + ids[1], "cri-o://" + ids[1][:12], "shop/web-7d4b9c/web", "web-7d4b9c/web", "pod:shop/web-7d4b9c"} {
		c, err := n.Resolve(ref)
		if err != nil || c.ID != ids[1] {
			t.Errorf("%s: %v", ref, err)
		}
	}
	if _, err := n.Resolve("docker://" + ids[1]); err == nil {
		t.Errorf("docker:// selected a CRI-O container")
	}
	for _, row := range testutil.ReadIndex(t, filepath.Join(dir, "manifests", "index.tsv")) {
		t.Run(row.Container[:12], func(t *testing.T) {
			c, err := n.Resolve("cri-o://" + row.Container)
			if err != nil {
				t.Fatal(err)
			}
			ls, err := n.Layers(c, LayerOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, l := range ls {
				got = append(got, strings.TrimPrefix(l.Dir, "ostree/deploy/rhcos"))
			}
			if strings.Join(got, ":") != strings.Join(row.Layers, ":") {
				t.Fatalf("chain\n got %v\nwant %v", got, row.Layers)
			}
			var buf bytes.Buffer
			if _, err := n.ExportLayers(ls, &buf, ExportOptions{}); err != nil {
				t.Fatal(err)
			}
			testutil.CompareManifests(t, row.Container[:12], testutil.ReadManifest(t, filepath.Join(dir, "manifests", row.Manifest)),
				testutil.TarToManifest(t, buf.Bytes()))
		})
	}
}

// CRI-O's volumes map onto the ostree deployment's /var: the emptyDir
// and the pod's hosts file are on the disk and exported; the projected
// service-account token never is.
func TestCRIOVolumes(t *testing.T) {
	n, _, ids := crioFixture(t)
	c, err := n.Resolve("cri-o://" + ids[1])
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
	const pod = "ostree/deploy/rhcos/var/lib/kubelet/pods/5f0c7a1e-8d2b-4c3a-9e1f-0a1b2c3d4e5f/"
	if v := got["/cache"]; v.Kind != "emptyDir" || !v.Included || v.Path != pod+"volumes/kubernetes.io~empty-dir/cache" {
		t.Errorf("/cache: %+v", v)
	}
	if v := got["/etc/hosts"]; v.Kind != "file" || !v.Included || v.Path != pod+"etc-hosts" {
		t.Errorf("/etc/hosts: %+v", v)
	}
	if v := got["/var/run/secrets/kubernetes.io/serviceaccount"]; v.OnDisk || v.Included {
		t.Errorf("token: %+v", v)
	}
	all := exportNames(t, n, "cri-o://"+ids[1], ExportOptions{})
	if h := all["cache/page"]; h == nil || h.Size != 7 {
		t.Errorf("cache/page in the export: %+v", h)
	}
	if h := all["tmp-dropper.sh"]; h == nil {
		t.Errorf("the container's own change is not in the export")
	}
}
