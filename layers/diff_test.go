package layers

import (
	"strings"
	"testing"

	"github.com/ctrlift/ctrlift/internal/testutil"
)

// The frontend container of the cos-node fixture: writable layer 10 over
// image layers 4, 3, 1 (from manifests/index.tsv).
var frontendLayers = []string{"10", "4", "3", "1"}

const overlayDir = "var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/"

func TestDiffCOSNodeFrontend(t *testing.T) {
	fsys := testutil.COSNodeSTATE(t, "cos-node.raw.zst")
	var ls []Layer
	for _, id := range frontendLayers {
		ls = append(ls, Layer{FS: fsys.Source(), Dir: overlayDir + id + "/fs", Name: id})
	}
	lower, err := New(ls[1:], Options{})
	if err != nil {
		t.Fatal(err)
	}
	changes, err := Diff(ls[0], lower, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range changes {
		if prev, dup := got[c.Path]; dup {
			t.Errorf("%s listed twice (%s, %s)", c.Path, prev, c.Kind)
		}
		got[c.Path] = c.Kind.String()
	}
	// What the fixture README says the attacker did, and the kernel's
	// whiteouts in overlay-markers.txt for layer 10.
	for path, kind := range map[string]string{
		"/tmp/evil.sh":               "added",
		"/tmp/.evil-hardlink":        "added",
		"/root/.ssh/authorized_keys": "added",
		"/etc/passwd":                "modified",
		"/app/static/index.html":     "deleted",
		"/etc/issue":                 "deleted",
		"/opt/app/config/app.yaml":   "deleted",
		"/opt/app/data/numbers.txt":  "deleted",
		"/usr/bin/hardlink-b":        "deleted",
		"/var/empty":                 "deleted",
	} {
		if got[path] != kind {
			t.Errorf("%s: got %q, want %q", path, got[path], kind)
		}
	}
	// /var/lib/app/cache was removed and recreated (opaque): what was in
	// it below is deleted, what is in it now is added.
	var cacheDeleted bool
	for p, k := range got {
		if strings.HasPrefix(p, "/var/lib/app/cache/") && k == "deleted" {
			cacheDeleted = true
		}
	}
	if !cacheDeleted {
		t.Errorf("nothing under the opaque /var/lib/app/cache reported deleted; changes: %v", got)
	}
	// Whiteouts are never reported as added files.
	for _, c := range changes {
		if c.Kind != "deleted" && IsWhiteout(c.Entry.Inode) {
			t.Errorf("%s: whiteout reported as %s", c.Path, c.Kind)
		}
	}
	if t.Failed() || testing.Verbose() {
		for _, c := range changes {
			t.Logf("%-8s %s", c.Kind, c.Path)
		}
	}
}
