package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctrlift/ctrlift/export"
	"github.com/ctrlift/ctrlift/internal/safeout"
	"github.com/ctrlift/ctrlift/node"
)

const frontend = "prod/frontend-7d9c8b5f4-x2x9z/frontend"

func TestExportCLI(t *testing.T) {
	img := cosImage(t)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.tar"), filepath.Join(dir, "b.tar.zst")
	if _, errOut, err := run(t, "export", "-i", img, frontend, a, "--manifest", filepath.Join(dir, "a.jsonl")); err != nil {
		t.Fatal(err, errOut)
	}
	_, errOut, err := run(t, "export", "-n", "k8s.io", "-i", img, "350ec3c2", b)
	if err != nil {
		t.Fatal(err, errOut)
	}
	// The same tar (its sha256 is printed on stderr) whatever the compression.
	ta, _ := os.ReadFile(a)
	if !strings.Contains(errOut, "tar sha256 "+sha(ta)) {
		t.Errorf("second export's stderr does not give the first tar's sha256 %s:\n%s", sha(ta), errOut)
	}
	// The manifest names every entry, with the attacker's file in it.
	m, _ := os.ReadFile(filepath.Join(dir, "a.jsonl"))
	var evil bool
	for _, l := range strings.Split(strings.TrimSpace(string(m)), "\n") {
		var e struct {
			Path, SHA256 string
			Layer        string
		}
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatal(err)
		}
		if e.Path == "/tmp/evil.sh" {
			evil = e.SHA256 == "0fea129e292e2cb300ab48579789f6d279e86f569ecc13280df7abd91e154069" && strings.HasSuffix(e.Layer, "/10")
		}
	}
	if !evil {
		t.Error("manifest lacks /tmp/evil.sh from layer 10 with its digest")
	}
	// - writes the same tar to stdout.
	out, _, err := run(t, "export", "-q", "-i", img, "containerd://350ec3c288e914e6f883e41d23ea437e9ebee7c3cb9842efb4fd0806e4ae65b7", "-")
	if err != nil || !bytes.Equal([]byte(out), ta) {
		t.Errorf("stdout export differs from the file export (err %v)", err)
	}
}

func TestExportAllCLI(t *testing.T) {
	img := cosImage(t)
	dir := filepath.Join(t.TempDir(), "out")
	_, errOut, err := run(t, "export", "-i", img, "-d", dir, "--hash-input")
	if err != nil {
		t.Fatal(err, errOut)
	}
	var index node.Index
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &index); err != nil {
		t.Fatal(err)
	}
	// Exactly what "list containers" shows: every namespace, so the ctr
	// containers of "default" (debug-shell ran curl | sh) are exported.
	list, _, err := run(t, "list", "containers", "-i", img, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var listed []struct{ Namespace, ID string }
	if err := json.Unmarshal([]byte(list), &listed); err != nil {
		t.Fatal(err)
	}
	if len(index.Containers) != len(listed) || len(listed) != 6 {
		t.Fatalf("index has %d containers, list shows %d, want 6: %s", len(index.Containers), len(listed), b)
	}
	for i, e := range index.Containers {
		if e.ID != listed[i].ID || e.Namespace != listed[i].Namespace {
			t.Errorf("index entry %d is %s/%s, list shows %s/%s", i, e.Namespace, e.ID, listed[i].Namespace, listed[i].ID)
		}
		if e.Error != "" || e.Tar == nil {
			t.Errorf("%s: %s", e.ID, e.Error)
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.File))
		if err != nil {
			t.Error(err)
			continue
		}
		if sha(data) != e.Tar.SHA256 || sha(data) != e.Tar.TarSHA256 || int64(len(data)) != e.Tar.Size || e.Tar.Entries == 0 {
			t.Errorf("%s: index says %+v; file has %d bytes, sha256 %s", e.File, *e.Tar, len(data), sha(data))
		}
		if n := len(testutilManifestLines(t, filepath.Join(dir, e.Manifest))); int64(n) != e.Tar.Entries {
			t.Errorf("%s: %d manifest lines, %d tar entries", e.Manifest, n, e.Tar.Entries)
		}
	}
	for _, id := range []string{"debug-shell", "oneshot", "native-box"} {
		if !strings.Contains(string(b), `"id": "`+id+`"`) {
			t.Errorf("%s not exported", id)
		}
	}
	// The sandboxes are named as skipped, with the reason, here and on stderr.
	if len(index.Skipped) != 2 {
		t.Errorf("skipped %+v", index.Skipped)
	}
	for _, s := range index.Skipped {
		if s.Reason != "pod sandbox" || !strings.Contains(errOut, "skipped "+s.Namespace+"/"+s.ID+": pod sandbox") {
			t.Errorf("skipped %+v not reported (stderr %s)", s, errOut)
		}
	}
	// Provenance: the input, the partition read and the tool.
	raw, _ := os.ReadFile(img)
	fi, _ := os.Stat(img)
	if len(index.Inputs) != 1 {
		t.Fatalf("inputs: %+v", index.Inputs)
	}
	in := index.Inputs[0]
	if in.Path != img || in.Size != fi.Size() || in.SHA256 != sha(raw) || in.Compression != "zstd" || in.Kind != "disk image" ||
		in.Partition == nil || in.Partition.Label != "STATE" || index.Tool.Name != "ctrlift" || index.Tool.Go == "" ||
		index.RuntimeRoot != "var/lib/containerd" {
		t.Errorf("provenance: %+v %+v %+v", in, in.Partition, index.Tool)
	}
	if !strings.Contains(string(b), "k8s.io_prod_frontend-7d9c8b5f4-x2x9z_frontend_350ec3c288e9.tar") {
		t.Errorf("file naming: %s", b)
	}
	// The same input gives the same index, byte for byte, and a full
	// directory is not reused without --force.
	if _, _, err := run(t, "export", "-q", "-i", img, "-d", dir, "--hash-input"); !errors.Is(err, safeout.ErrExists) {
		t.Errorf("non-empty --dir reused: %v", err)
	}
	again := filepath.Join(t.TempDir(), "again")
	if _, _, err := run(t, "export", "-q", "-i", img, "-d", again, "--hash-input"); err != nil {
		t.Fatal(err)
	}
	if b2, _ := os.ReadFile(filepath.Join(again, "index.json")); !bytes.Equal(b, b2) {
		t.Error("two exports of one image give different index.json")
	}
}

func testutilManifestLines(t *testing.T, p string) []string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func TestDiffCLI(t *testing.T) {
	img := cosImage(t)
	out, errOut, err := run(t, "diff", "-o", "json", "-i", img, frontend)
	if err != nil {
		t.Fatal(err, errOut)
	}
	var rows []export.Record
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range rows {
		got[r.Path] = r.Change
	}
	for p, want := range map[string]string{"/tmp/evil.sh": "added", "/etc/passwd": "modified", "/etc/issue": "deleted", "/usr/bin/hardlink-b": "deleted"} {
		if got[p] != want {
			t.Errorf("%s: %q, want %q", p, got[p], want)
		}
	}
}

func TestExportRefusesMissingLayers(t *testing.T) {
	img := cosImage(t)
	dir := t.TempDir()
	// A layer directory that does not exist is an error naming it, and
	// no output is left behind.
	out := filepath.Join(dir, "x.tar")
	_, _, err := run(t, "export", "-q", "-i", img, "--layer-dirs", "var/lib/containerd/nope:var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/1/fs", out)
	if err == nil || !strings.Contains(err.Error(), "var/lib/containerd/nope") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a failed export left its output file")
	}
}

// The grammar's refusals, each before anything is read or written.
func TestExportGrammar(t *testing.T) {
	img := cosImage(t)
	dir := t.TempDir()
	for _, tt := range []struct {
		args []string
		err  string
	}{
		{[]string{"export", "-i", img, frontend, filepath.Join(dir, "x.tar"), "-o", "zip"}, `unknown output format "zip" (want tar or oci)`},
		{[]string{"list", "containers", "-i", img, "-o", "yaml"}, `unknown output format "yaml" (want table, json or jsonl)`},
		{[]string{"info", "container", "-i", img, frontend, "-o", "table"}, `unknown output format "table" (want json or jsonl)`},
		{[]string{"export", "-i", img}, "say what to export and where"},
		{[]string{"export", "-i", img, frontend, "a.tar", "b.tar"}, "say what to export and where"},
		{[]string{"export", "-i", img, "--all", frontend, filepath.Join(dir, "y.tar")}, "select and record containers for -d DIR"},
		{[]string{"export", "-i", img, "--snapshot", "k", "--layer-dirs", "d", filepath.Join(dir, "z.tar")}, "give one"},
		{[]string{"export", "-i", img, "-d", dir, "--manifest", "m.jsonl"}, "--manifest does not apply"},
		{[]string{"export", "-i", img, "docker://350ec3c2", filepath.Join(dir, "d.tar")}, "names a docker container"},
		{[]string{"export", "-i", img, "-d", filepath.Join(dir, "p"), "pod:prod/nope"}, `no container matches "pod:prod/nope"`},
	} {
		_, _, err := run(t, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%v: %v, want %q", tt.args, err, tt.err)
		}
	}
	if names, _ := os.ReadDir(dir); len(names) != 0 {
		t.Errorf("refused commands left %v", names)
	}
	// A pod's containers into a directory: the app and its sidecar, not
	// its sandbox.
	out := filepath.Join(dir, "pod")
	if _, errOut, err := run(t, "export", "-q", "-i", img, "-d", out, "pod:prod/frontend-7d9c8b5f4-x2x9z"); err != nil {
		t.Fatal(err, errOut)
	}
	var index node.Index
	b, _ := os.ReadFile(filepath.Join(out, "index.json"))
	if err := json.Unmarshal(b, &index); err != nil || len(index.Containers) != 2 || index.Containers[0].ContainerName != "frontend" || index.Containers[1].ContainerName != "log-shipper" ||
		len(index.Selection.Refs) != 1 || len(index.Skipped) != 0 {
		t.Errorf("pod export: %v %s", err, b)
	}
}
