package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A node holding two containerd roots (the system containerd's and the one
// dockerd starts itself) has only the first read; the listing says which
// was left out, and naming it as the runtime root reads it. The roots hold
// the example node's real meta.db, copied out with fs cat.
func TestSecondContainerdRoot(t *testing.T) {
	meta, errOut, err := run(t, "fs", "cat", "-i", exampleNode(t), "var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db")
	if err != nil {
		t.Fatal(err, errOut)
	}
	dir := t.TempDir()
	for _, root := range []string{"var/lib/containerd", "var/lib/docker/containerd/daemon"} {
		p := filepath.Join(dir, root, "io.containerd.metadata.v1.bolt", "meta.db")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(meta), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const warning = "a second containerd root, var/lib/docker/containerd/daemon, was not read (only var/lib/containerd was)"
	out, errOut, err := run(t, "list", "containers", "-a", "-i", dir)
	if err != nil || !strings.Contains(out, "wordpress") || !strings.Contains(errOut, warning) {
		t.Errorf("two roots: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	out, errOut, err = run(t, "list", "containers", "-a", "-i", dir, "--runtime-root", "var/lib/docker/containerd/daemon")
	if err != nil || !strings.Contains(out, "wordpress") || strings.Contains(errOut, "second containerd root") {
		t.Errorf("the second root named: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
}
