package main

import (
	"archive/tar"
	"os"
	"strings"
	"testing"
)

// A /var/lib/docker tree (google/docker-explorer's overlay2 test data) as
// -i: the listing with its RUNTIME column, docker:// refs, export.
func TestDockerTree(t *testing.T) {
	const img = "../../../shared/realworld/docker-explorer/overlay2.v2.tgz"
	if _, err := os.Stat(img); err != nil {
		t.Skip(err)
	}
	t.Setenv("TMPDIR", t.TempDir())
	out, errOut, err := run(t, "list", "containers", "-i", img, "--no-cache")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 6 || !strings.HasPrefix(lines[0], "RUNTIME  NAMESPACE  CONTAINER ID") {
		t.Fatalf("listing:\n%s", out)
	}
	running := 0
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if f[0] != "docker" || f[1] != "moby" {
			t.Errorf("row %q", l)
		}
		if strings.Contains(l, " running ") {
			running++
			if f[2] != "8e8b7f23eb7c" || f[4] != "festive_perlman" {
				t.Errorf("running row %q", l)
			}
		}
	}
	if running != 1 || !strings.Contains(errOut, "docker root docker on tree archive") || strings.Contains(errOut, "meta.db") {
		t.Errorf("%d running; stderr:\n%s", running, errOut)
	}
	dst := t.TempDir() + "/c.tar"
	if _, _, err := run(t, "export", "docker://8e8b7f23eb7c", dst, "-i", img, "--no-cache"); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[string]bool{}
	tr := tar.NewReader(f)
	for h, err := tr.Next(); err == nil; h, err = tr.Next() {
		seen[strings.TrimPrefix(h.Name, "./")] = true
	}
	if !seen["tets"] || !seen["bin/busybox"] || !seen["etc/hostname"] {
		t.Errorf("export: %d entries", len(seen))
	}
}
