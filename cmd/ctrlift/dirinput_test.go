//go:build linux

package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctrlift/ctrlift/internal/testutil"
)

// TestDirectoryInput copies the example node's STATE partition out of a
// read-only kernel mount with cp -a (xattrs, devices, owners, hardlinks,
// times kept), and packs the copy with GNU tar, and checks that ctrlift
// reads the copy and the tar as it reads the image: the same containers,
// and each container's export the same in type, mode, owner, size,
// sha256, target, mtime, rdev, xattrs and hardlinks.
func TestDirectoryInput(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: a loop mount and trusted.* xattrs")
	}
	if testing.Short() {
		t.Skip("mounts an image: not in -short")
	}
	testutil.NeedTools(t, "mount", "umount", "cp")
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		t.Skip("no loop device support")
	}
	zst := filepath.Join(testutil.RepoRoot(t), "testdata/images/example/wordpress-node.raw.zst")
	img := testutil.Unzstd(t, zst)
	mnt := t.TempDir()
	// Partition 1, STATE (README's partitions listing); noload: a
	// read-only mount that does not replay the journal.
	out, err := exec.Command("mount", "-t", "ext4", "-o", "ro,noload,loop,offset=295698432,sizelimit=402653184", img, mnt).CombinedOutput()
	if err != nil {
		t.Skipf("loop mount: %v: %s", err, out)
	}
	copyDir := filepath.Join(t.TempDir(), "state")
	out, err = exec.Command("cp", "-a", mnt+"/.", copyDir+"/").CombinedOutput()
	if err2 := exec.Command("umount", mnt).Run(); err2 != nil {
		t.Errorf("umount: %v", err2)
	}
	if err != nil {
		t.Fatalf("cp -a: %v: %s", err, out)
	}

	list := func(input string) []map[string]any {
		t.Helper()
		out, errOut, err := run(t, "list", "containers", "--all", "-o", "json", "-i", input)
		if err != nil {
			t.Fatal(err, errOut)
		}
		var rows []map[string]any
		if err := json.Unmarshal([]byte(out), &rows); err != nil {
			t.Fatal(err)
		}
		return rows
	}
	// The same tree as a PAX tar made by GNU tar, zstd-compressed: owners,
	// devices (whiteouts), xattrs and nanosecond times as recorded.
	tarFile := filepath.Join(t.TempDir(), "state.tar.zst")
	if out, err := exec.Command("tar", "--format=pax", "--xattrs", "--xattrs-include=*", "--sparse", "--numeric-owner", "--zstd",
		"-cf", tarFile, "-C", copyDir, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v: %s", err, out)
	}
	fromImage := list(zst)
	if len(fromImage) == 0 {
		t.Fatal("no containers in the image")
	}
	for _, input := range []string{copyDir, tarFile} {
		got := list(input)
		if len(got) != len(fromImage) {
			t.Fatalf("image lists %d containers, %s %d", len(fromImage), input, len(got))
		}
		for i := range fromImage {
			for _, k := range []string{"namespace", "id", "pod_name", "container_name", "status", "exit_code", "image", "snapshot_key"} {
				if a, b := fromImage[i][k], got[i][k]; !equalJSON(a, b) {
					t.Errorf("container %d %s: image %v, %s %v", i, k, a, input, b)
				}
			}
		}
	}
	// A /var/lib/containerd copy is recognised as a root too.
	if _, errOut, err := run(t, "list", "containers", "-i", filepath.Join(copyDir, "var/lib/containerd")); err != nil {
		t.Errorf("-i a containerd root: %v %s", err, errOut)
	}

	dir := t.TempDir()
	for _, c := range fromImage {
		if c["kind"] != "container" {
			continue
		}
		id := c["id"].(string)
		var manifests [3]string
		for i, input := range []string{zst, copyDir, tarFile} {
			manifests[i] = filepath.Join(dir, id[:12]+[]string{"-image", "-dir", "-tar"}[i]+".jsonl")
			if _, errOut, err := run(t, "export", "-q", "-i", input, "-n", c["namespace"].(string), id, os.DevNull, "--manifest", manifests[i]); err != nil {
				t.Fatalf("export %s from %s: %v %s", id, input, err, errOut)
			}
		}
		want := testutil.ReadManifest(t, manifests[0])
		testutil.CompareManifests(t, id[:12]+" from the directory", want, testutil.ReadManifest(t, manifests[1]))
		testutil.CompareManifests(t, id[:12]+" from the tar", want, testutil.ReadManifest(t, manifests[2]))
		if len(want) < 100 {
			t.Errorf("%s: only %d entries", id[:12], len(want))
		}
	}
	// Unprivileged, the overlay markers (trusted.overlay.*) are invisible:
	// the merge is refused, not done wrongly.
	for p := copyDir; p != filepath.Dir(os.TempDir()); p = filepath.Dir(p) {
		os.Chmod(p, 0o755)
	}
	r := runner{bin: ctrliftBinary(t), dir: scratch(t), uid: 65534}
	r.cache = r.dir
	errOut, err := r.run(t, nil, "export", "-i", copyDir, "--layer-dirs", "var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/10/fs", os.DevNull)
	if err == nil || !strings.Contains(errOut, "trusted.overlay.* xattrs, which only root (CAP_SYS_ADMIN) can read") {
		t.Errorf("unprivileged merge of a directory: %v %q", err, errOut)
	}
	// The web shell of the walkthrough is there, from the writable layer.
	m, _ := os.ReadFile(filepath.Join(dir, "eed0799779d8-dir.jsonl"))
	if !strings.Contains(string(m), `"path":"/var/www/html/wp-content/uploads/shell.php"`) {
		t.Error("the directory export lacks uploads/shell.php")
	}
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
