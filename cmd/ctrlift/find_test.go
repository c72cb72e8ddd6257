package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctrlift/ctrlift/internal/testutil"
	"github.com/ctrlift/ctrlift/node"
)

// exampleNode is the bundled example, decompressed into the cache shared
// by test runs.
func exampleNode(t *testing.T) string {
	t.Helper()
	t.Setenv("XDG_CACHE_HOME", filepath.Join(os.TempDir(), "ctrlift-test-cache", "xdg"))
	return filepath.Join(testutil.RepoRoot(t), "testdata", "images", "example", "wordpress-node.raw.zst")
}

const webShellSHA256 = "7269232137042ace5698530a05f82c8be698e51754158b600ecb5e0ce8b7e942"

// find, history and info path on the example node, as the README
// walkthrough uses them: the web shell by digest in every container, the
// deleted access log's layers, the stolen file's snapshot.
func TestFindHistoryCommands(t *testing.T) {
	img := exampleNode(t)
	for _, tt := range []struct {
		args []string
		want []string // lines of stdout, in order, each holding these fields
	}{
		{[]string{"find", "--sha256", webShellSHA256}, []string{
			"NAMESPACE CONTAINER POD NAME LAYER PATH",
			"k8s.io eed0799779d8 blog/wordpress-6d8f7b9c5-q2lzx wordpress overlayfs/10 /var/www/html/wp-content/uploads/2024/01/thumb-150x150.php -rw-r--r-- 33:33 124",
			"k8s.io eed0799779d8 blog/wordpress-6d8f7b9c5-q2lzx wordpress overlayfs/10 /var/www/html/wp-content/uploads/shell.php -rw-r--r-- 33:33 124",
		}},
		{[]string{"find", "--images", "--path", "/var/log/apache2/access.log", "--size", "+12k", "--size=-13k", "--older", "2024-01-01"}, []string{
			"NAMESPACE IMAGE LAYER PATH",
			"k8s.io us-central1-docker.pkg.dev/acme-blog/web/wordpress:6.4.3-apache overlayfs/5 /var/log/apache2/access.log -rw-r----- 0:4 12769",
		}},
		{[]string{"history", "blog/wordpress-6d8f7b9c5-q2lzx/wordpress", "/var/log/apache2/access.log"}, []string{
			"WHAT LAYER DIFF ID PATH",
			"whiteout overlayfs/10 - /var/log/apache2/access.log c--------- 0:0 0:0",
			"hidden-below overlayfs/5 sha256:3105c0a4f22b /var/log/apache2/access.log -rw-r----- 0:4 12769 2023-11-14T22:13:20Z 118f636569b2 mkimages.py: wordpress 6.4.3",
		}},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, errOut, err := run(t, append(tt.args, "-i", img)...)
			if err != nil {
				t.Fatal(err, errOut)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("%d lines, want %d:\n%s", len(lines), len(tt.want), out)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(strings.Join(strings.Fields(lines[i]), " "), w) {
					t.Errorf("line %d: %q, want %q...", i, lines[i], w)
				}
			}
		})
	}

	out, errOut, err := run(t, "find", "-i", img, "--sha256", "SHA256:"+strings.ToUpper(webShellSHA256), "-o", "jsonl", "--all")
	if err != nil {
		t.Fatal(err, errOut)
	}
	var hits []node.FindHit
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var h node.FindHit
		if err := json.Unmarshal([]byte(l), &h); err != nil {
			t.Fatal(err)
		}
		hits = append(hits, h)
	}
	if len(hits) != 2 || hits[1].Path != "/var/www/html/wp-content/uploads/shell.php" || hits[1].ContainerName != "wordpress" ||
		hits[1].SHA256 != webShellSHA256 || hits[1].Inode != hits[0].Inode || !strings.Contains(errOut, "searched 6 containers: 2 found") {
		t.Errorf("jsonl: %+v\n%s", hits, errOut)
	}

	out, errOut, err = run(t, "info", "path", "-i", img, "var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/10/fs/tmp/.wpc")
	if err != nil {
		t.Fatal(err, errOut)
	}
	var info node.PathInfo
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatal(err)
	}
	if info.SnapshotID != 10 || info.InLayer != "/tmp/.wpc" || len(info.Containers) != 1 || info.Containers[0].ContainerName != "wordpress" || info.Containers[0].What != "holds" {
		t.Errorf("info path: %s", out)
	}

	// Nothing there is an error, not an empty table.
	if _, _, err := run(t, "history", "-i", img, "wordpress", "/nowhere"); err == nil || !strings.Contains(err.Error(), "no layer of container eed0799779d8 has /nowhere") {
		t.Errorf("history of nothing: %v", err)
	}
}

// Criteria that cannot be met are refused before the evidence is opened.
func TestFindRefusesEarly(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-image.raw")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--sha256", "abc"}, `sha256 "abc": want 64 hex digits`},
		{[]string{"--size", "1X"}, `--size "1X": want N, +N or -N bytes`},
		{[]string{"--size", "+10", "--size", "-5"}, "no size is at least 11 and at most 4 bytes"},
		{[]string{"--newer", "yesterday"}, `--newer "yesterday": want an RFC 3339 time`},
		{[]string{"--images", "wordpress"}, "references name containers"},
		{[]string{"-o", "yaml"}, `unknown output format "yaml"`},
	} {
		_, _, err := run(t, append([]string{"find", "-i", missing}, tt.args...)...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v, want %q", tt.args, err, tt.want)
		}
	}
}

func TestParseSizes(t *testing.T) {
	for _, tt := range []struct {
		args     []string
		min, max int64 // max -1: none
	}{
		{nil, 0, -1},
		{[]string{"124"}, 124, 124},
		{[]string{"+1M"}, 1<<20 + 1, -1},
		{[]string{"-10k"}, 0, 10<<10 - 1},
		{[]string{"+1k", "-2K", "+1000"}, 1025, 2047},
		{[]string{"-1g", "-3m"}, 0, 3<<20 - 1},
		{[]string{"1T"}, 1 << 40, 1 << 40},
	} {
		lo, hi, err := parseSizes(tt.args)
		got := int64(-1)
		if hi != nil {
			got = *hi
		}
		if err != nil || lo != tt.min || got != tt.max {
			t.Errorf("%v: %d..%d %v, want %d..%d", tt.args, lo, got, err, tt.min, tt.max)
		}
	}
	if _, _, err := parseSizes([]string{"99999999999T"}); err == nil {
		t.Error("overflow accepted")
	}
}
