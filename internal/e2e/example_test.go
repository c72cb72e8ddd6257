// Package e2e runs the whole pipeline on the bundled example node image:
// compressed disk -> GPT -> ext4 -> containerd -> layer merge -> tar, and
// compares every container with the manifest the kernel's overlay mount
// produced when the image was made (testdata/images/example/manifests).
package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctrlift/ctrlift/internal/testutil"
	"github.com/ctrlift/ctrlift/node"
)

func TestExampleNode(t *testing.T) {
	repo := testutil.RepoRoot(t)
	checkNode(t, filepath.Join(repo, "testdata", "images", "example", "wordpress-node.raw.zst"), "STATE", "ext4")
}

// TestXFSNode: the example node's containerd state copied (cp -a, as root)
// onto the XFS root of an EKS-like disk made by mkfs.xfs and sgdisk
// (testdata/images/xfs/make-eks-node.sh) reads as the ext4 original: the
// same containers, and every export equal to the kernel's view of the
// original overlay mount. Reading needs no privilege; making the disk
// needs root.
func TestXFSNode(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("making the XFS node disk needs root (loop mounts)")
	}
	testutil.NeedTools(t, "mkfs.xfs", "sgdisk", "zstd", "mount")
	repo := testutil.RepoRoot(t)
	disk := filepath.Join(t.TempDir(), "eks-node.raw")
	out, err := exec.Command(filepath.Join(repo, "testdata", "images", "xfs", "make-eks-node.sh"), disk).CombinedOutput()
	if err != nil {
		t.Skipf("make-eks-node.sh (the kernel may lack XFS or loop devices): %v\n%s", err, out)
	}
	xfsList := checkNode(t, disk, "ROOT", "xfs")
	ext4List := checkNode(t, filepath.Join(repo, "testdata", "images", "example", "wordpress-node.raw.zst"), "STATE", "ext4")
	if xfsList != ext4List {
		t.Errorf("containers differ:\nxfs  %s\next4 %s", xfsList, ext4List)
	}
}

// checkNode opens a disk holding the example node's containerd state on
// the partition named part, exports every container and compares it with
// the manifest the kernel's overlay mount gave when the example was made.
// It returns the containers as listed: id, pod, name, status, exit code.
func checkNode(t *testing.T, disk, part, fsType string) string {
	t.Helper()
	return checkInputs(t, []string{disk}, part, fsType)
}

// checkInputs is checkNode for a node given as several inputs (the disks
// of a striped volume group).
func checkInputs(t *testing.T, inputs []string, part, fsType string) string {
	t.Helper()
	dir := filepath.Join(testutil.RepoRoot(t), "testdata", "images", "example")
	n, err := node.Open(inputs, node.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if p := n.Partition(); p == nil || p.Name != part || p.FS.Type != fsType {
		t.Fatalf("selected %+v, want the %s %s partition", p, fsType, part)
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
		t.Run(fsType+"/"+row.Container[:12], func(t *testing.T) {
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
	l, err := n.Containers(node.ListOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, c := range l.Shown {
		exit := "-"
		if c.ExitCode != nil {
			exit = fmt.Sprint(*c.ExitCode)
		}
		fmt.Fprintf(&b, "%s %s/%s/%s %s %s; ", c.ID, c.PodNamespace, c.PodName, c.ContainerName, c.Status, exit)
	}
	return b.String()
}
