package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctrlift/ctrlift/containerd"
	"github.com/ctrlift/ctrlift/internal/testutil"
)

// cosImage returns the compressed cos-node fixture; the CLI decompresses it
// into $XDG_CACHE_HOME/ctrlift, pointed at a cache shared by test runs.
func cosImage(t *testing.T) string {
	t.Helper()
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		if filepath.Dir(dir) == dir {
			t.Fatal("no go.mod")
		}
		dir = filepath.Dir(dir)
	}
	img := filepath.Join(dir, "..", "shared", "fixtures", "cos-node", "cos-node.raw.zst")
	if _, err := os.Stat(img); err != nil {
		t.Skipf("fixture not available: %v", err)
	}
	t.Setenv("XDG_CACHE_HOME", filepath.Join(os.TempDir(), "ctrlift-test-cache"))
	return img
}

func run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), errOut.String(), err
}

func TestListContainers(t *testing.T) {
	img := cosImage(t)
	out, errOut, err := run(t, "list", "containers", "-i", img)
	if err != nil {
		t.Fatal(err, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	// Every namespace: the containers started with ctr in "default" are
	// shown beside the pods' (debug-shell ran curl | sh).
	if len(lines) != 7 {
		t.Fatalf("want header + 6 containers:\n%s", out)
	}
	for _, want := range [][]string{
		{"prod/frontend-7d9c8b5f4-x2x9z", "frontend", "exited", "137"},
		{"prod/frontend-7d9c8b5f4-x2x9z", "log-shipper", "exited", "137"},
		{"batch/report-28391234-7x2kq", "report", "exited", "3"},
		{"-", "debug-shell", "unknown", "-"},
		{"-", "native-box", "unknown", "-"},
		{"-", "oneshot", "unknown", "-"},
	} {
		found := false
		for _, l := range lines[1:] {
			f := strings.Fields(l)
			if f[2] == want[0] && f[3] == want[1] && f[len(f)-3] == want[2] && f[len(f)-1] == want[3] {
				found = true
			}
		}
		if !found {
			t.Errorf("no row %v in\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "meta.db txid 184 (meta page 0)") || !strings.Contains(errOut, "2 containers hidden (2 sandboxes)") {
		t.Errorf("stderr:\n%s", errOut)
	}

	out, _, err = run(t, "list", "containers", "-i", img, "--all", "--no-trunc", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var all []containerd.Container
	if err := json.Unmarshal([]byte(out), &all); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, c := range all {
		kinds[c.Namespace+"/"+c.Kind]++
		if c.Spec != nil || c.CRIMetadata != nil {
			t.Errorf("%s: listing carries the heavy fields", c.ID)
		}
	}
	if len(all) != 8 || kinds["k8s.io/sandbox"] != 2 || kinds["default/"] != 3 {
		t.Errorf("--all: %v", kinds)
	}
	// The stable snake_case field names.
	for _, key := range []string{`"namespace"`, `"snapshot_key"`, `"created_at"`, `"pod_namespace"`, `"container_name"`, `"exit_code"`, `"layers"`, `"log_path"`, `"finished_at"`} {
		if !strings.Contains(out, key) {
			t.Errorf("json lacks %s", key)
		}
	}
}

func TestInfoContainer(t *testing.T) {
	img := cosImage(t)
	const id = "350ec3c288e914e6f883e41d23ea437e9ebee7c3cb9842efb4fd0806e4ae65b7"
	out, errOut, err := run(t, "info", "container", "containerd://"+id, "-i", img)
	if err != nil {
		t.Fatal(err, errOut)
	}
	var c containerd.Container
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		t.Fatal(err)
	}
	var spec struct {
		Process struct{ Args []string }
	}
	if err := json.Unmarshal(c.Spec, &spec); err != nil || len(spec.Process.Args) == 0 || spec.Process.Args[0] != "/app/server.sh" {
		t.Errorf("spec: %v %+v", err, spec)
	}
	if len(c.Layers) != 4 || c.Layers[0].Path != "var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/10/fs" ||
		c.Layers[3].Path != "var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/1/fs" {
		t.Errorf("layers %+v", c.Layers)
	}
	if len(c.Mounts) != 3 || c.LogPath == "" || c.CRIMetadata == nil {
		t.Errorf("mounts %v log %q", c.Mounts, c.LogPath)
	}

	_, _, err = run(t, "info", "container", "d", "-i", img)
	if err == nil || !strings.Contains(err.Error(), "matches 2 containers") {
		t.Errorf("ambiguous ref: %v", err)
	}
}

func TestListOthers(t *testing.T) {
	img := cosImage(t)
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"list", "namespaces"}, []string{"default", "k8s.io"}},
		{[]string{"list", "images", "-n", "k8s.io"}, []string{"us-central1-docker.pkg.dev/acme-prod/web/frontend:1.4.2", "1.4 MiB"}},
		{[]string{"list", "snapshots", "-n", "default"}, []string{"native-box", "io.containerd.snapshotter.v1.native/snapshots/2 "}},
		{[]string{"list", "content", "-n", "default", "--no-trunc"}, []string{"sha256:597bbd6417c487434ff632af28981037e553640f36ec5c52ab7ba699182b0217", "1.4 MiB", "yes"}},
		{[]string{"list", "content", "-n", "default"}, []string{"sha256:597bbd6417c4 "}},
	} {
		out, errOut, err := run(t, append(tt.args, "-i", img)...)
		if err != nil {
			t.Errorf("%v: %v %s", tt.args, err, errOut)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v: no %q in\n%s", tt.args, w, out)
			}
		}
	}
	_, _, err := run(t, "list", "containers", "-i", img, "-p", "OEM")
	if err == nil || !strings.Contains(err.Error(), "partitions searched: partition 8 \"OEM\"") || !strings.Contains(err.Error(), "var/lib/containerd") {
		t.Errorf("no root: %v", err)
	}
}

// TestListContainerd2Node reads a node whose meta.db was written by
// containerd v2's own metadata package (sandboxes in v1/<ns>/sandboxes),
// laid into an ext4 filesystem by mkfs.ext4: no warning about the sandbox
// store, the pod and the ctr container listed, the sandboxes with --all.
func TestListContainerd2Node(t *testing.T) {
	testutil.NeedTools(t, "mkfs.ext4")
	root := testutil.RepoRoot(t)
	for _, db := range []string{"v2.db", "v1.7.db"} {
		t.Run(db, func(t *testing.T) {
			tree := t.TempDir()
			metaDir := filepath.Join(tree, "var/lib/containerd/io.containerd.metadata.v1.bolt")
			if err := os.MkdirAll(metaDir, 0o755); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(filepath.Join(root, "containerd/testdata/sandboxstore", db))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(metaDir, "meta.db"), data, 0o600); err != nil {
				t.Fatal(err)
			}
			img := filepath.Join(t.TempDir(), "node.img")
			if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-d", tree, img, "8M").CombinedOutput(); err != nil {
				t.Fatalf("mkfs.ext4: %v\n%s", err, out)
			}
			out, errOut, err := run(t, "list", "containers", "-i", img)
			if err != nil {
				t.Fatal(err, errOut)
			}
			if strings.Contains(errOut, "warning") {
				t.Errorf("warnings on a containerd 2.x node:\n%s", errOut)
			}
			if !strings.Contains(errOut, "2 containers hidden (2 sandboxes)") {
				t.Errorf("stderr: %s", errOut)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != 3 || !strings.Contains(out, "shop/cart-0") || !strings.Contains(out, "default    debug") {
				t.Errorf("listing:\n%s", out)
			}
			out, _, err = run(t, "list", "containers", "-i", img, "--all", "-o", "json")
			if err != nil {
				t.Fatal(err)
			}
			var all []containerd.Container
			if err := json.Unmarshal([]byte(out), &all); err != nil {
				t.Fatal(err)
			}
			pods := map[string]string{}
			for _, c := range all {
				if c.Kind == "sandbox" {
					pods[c.PodNamespace+"/"+c.PodName] = c.Status.String()
				}
			}
			if len(all) != 4 || pods["shop/cart-0"] != "unknown" || pods["shop/vm-0"] != "unknown" {
				t.Errorf("--all: %d containers, sandboxes %v", len(all), pods)
			}
			// -q silences the summary on every command.
			if _, errOut, _ := run(t, "list", "containers", "-q", "-i", img); errOut != "" {
				t.Errorf("-q: stderr %q", errOut)
			}
		})
	}
}

// TestListLooseDB: a meta.db given alone lists its containers; what needs
// layers says it needs the disk.
func TestListLooseDB(t *testing.T) {
	db := filepath.Join(testutil.RepoRoot(t), "containerd/testdata/sandboxstore/v2.db")
	out, errOut, err := run(t, "list", "containers", "-i", db, "-o", "json")
	if err != nil {
		t.Fatal(err, errOut)
	}
	var rows []containerd.Container
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || !strings.Contains(errOut, "on loose database") {
		t.Errorf("%d containers; stderr %s", len(rows), errOut)
	}
	if _, _, err := run(t, "export", "-i", db, "debug", filepath.Join(t.TempDir(), "x.tar")); err == nil || !strings.Contains(err.Error(), "holds no layers") {
		t.Errorf("export from a loose database: %v", err)
	}
	if shared := filepath.Join(testutil.RepoRoot(t), "..", "shared", "realworld", "container-explorer", "dfirlabs", "meta.db"); fileExists(shared) {
		out, errOut, err := run(t, "list", "containers", "-i", shared, "--no-trunc")
		if err != nil || !strings.Contains(out, "nginx-specimen") || !strings.Contains(out, "redis-specimen") {
			t.Errorf("dfirlabs meta.db: %v\n%s%s", err, out, errOut)
		}
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
