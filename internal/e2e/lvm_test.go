package e2e

import (
	"path/filepath"
	"testing"

	"github.com/ctrlift/ctrlift/internal/testutil"
)

// TestLVMNode: the example's STATE filesystem on LVM logical volumes made
// by lvm2 (testdata/images/lvm/make-lvm.sh): linear in a GPT partition,
// and striped over two whole-disk PVs given as two inputs. Each is found
// by the default choice (its label STATE), reads as the plain image (the
// same containers) and every export equals the kernel's view of the
// original overlay mounts. No privilege needed.
func TestLVMNode(t *testing.T) {
	repo := testutil.RepoRoot(t)
	lvm := func(name string) string { return filepath.Join(repo, "testdata", "images", "lvm", name+".raw.zst") }
	plain := checkNode(t, filepath.Join(repo, "testdata", "images", "example", "wordpress-node.raw.zst"), "STATE", "ext4")
	if got := checkNode(t, lvm("node-lvm-linear"), "node/var", "ext4"); got != plain {
		t.Errorf("containers differ:\nlinear LV %s\nplain     %s", got, plain)
	}
	if got := checkInputs(t, []string{lvm("node-lvm-striped-0"), lvm("node-lvm-striped-1")}, "data/containerd", "ext4"); got != plain {
		t.Errorf("containers differ:\nstriped LV %s\nplain      %s", got, plain)
	}
}
