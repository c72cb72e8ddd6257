package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctrlift/ctrlift/image"
	"github.com/ctrlift/ctrlift/internal/testutil"
)

// diskFixture returns a committed disk fixture (zstd-compressed; the
// commands decompress it themselves) and keeps temporary files of
// --no-cache in the test's directory.
func diskFixture(t *testing.T, name string) string {
	t.Helper()
	t.Setenv("TMPDIR", t.TempDir())
	return filepath.Join("..", "..", "testdata", "images", "disk", name+".raw.zst")
}

func runPartitions(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	cmd := newRootCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(append([]string{"partitions"}, args...))
	err := cmd.Execute()
	return out.String(), errOut.String(), err
}

func TestPartitionsTable(t *testing.T) {
	out, stderr, err := runPartitions(t, "-i", diskFixture(t, "gpt-badprimary"), "--no-cache")
	if err != nil {
		t.Fatal(err)
	}
	if stderr != "" {
		t.Errorf("stderr %q: progress must stay off when stderr is not a terminal", stderr)
	}
	for _, want := range []string{
		"gpt-badprimary.raw.zst: 16.0 MiB, 16777216 bytes\n",
		"Decompressed (zstd) into a temporary file\n",
		"Layout: gpt, sector size 512 bytes, disk identifier 5A5A0003-0000-4000-8000-000000000000\n",
		"Warning: primary GPT at LBA 1 is invalid",
		"NUMBER  NAME   TYPE              START    SIZE     FS       LABEL  UUID\n",
		"1       STATE  Linux filesystem  1048576  8.0 MiB  ext4     STATE  5a5a0003-0000-4000-8000-0000000000f1\n",
		"2       DATA   Linux filesystem  9437184  4.0 MiB  unknown  -      -\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestPartitionsJSON(t *testing.T) {
	out, _, err := runPartitions(t, "-i", diskFixture(t, "mbr"), "--no-cache", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var ds []image.Disk
	if err := json.Unmarshal([]byte(out), &ds); err != nil || len(ds) != 1 {
		t.Fatal(err, len(ds))
	}
	d := ds[0]
	if d.Layout != "mbr" || len(d.Partitions) != 5 || d.Compression != "zstd" {
		t.Fatalf("%+v", d)
	}
	p := d.Partitions[3]
	if p.Number != 5 || !p.Logical || p.MBRType != "0x83" || p.Start != 28672*512 || p.FS.Type != "ext2" || p.FS.Label != "logical5" {
		t.Errorf("partition 5: %+v", p)
	}
	// Every field is present, in snake_case.
	var raws []map[string]any
	json.Unmarshal([]byte(out), &raws)
	raw := raws[0]
	part := raw["partitions"].([]any)[0].(map[string]any)
	for _, k := range []string{"number", "name", "guid", "type_guid", "mbr_type", "type", "start", "size", "attributes", "bootable", "logical", "truncated", "fs"} {
		if _, ok := part[k]; !ok {
			t.Errorf("JSON partition lacks %q", k)
		}
	}
	for _, k := range []string{"path", "raw_path", "compression", "size", "layout", "sector_size", "disk_guid", "warnings", "partitions"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("JSON disk lacks %q", k)
		}
	}
}

func TestPartitionsErrors(t *testing.T) {
	if _, _, err := runPartitions(t); err == nil || !strings.Contains(err.Error(), "no input given") {
		t.Errorf("without -i: %v", err)
	}
	if _, _, err := runPartitions(t, "-i", diskFixture(t, "mbr"), "-o", "yaml"); err == nil || !strings.Contains(err.Error(), `unknown output format "yaml"`) {
		t.Errorf("-o yaml: %v", err)
	}
	if _, _, err := runPartitions(t, "-i", filepath.Join(t.TempDir(), "missing.raw")); err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing image: %v", err)
	}
}

// A GCE image export (a tar.gz whose member is disk.raw) stays a disk
// image; a tar of anything else is read as a tree.
func TestTarInputKinds(t *testing.T) {
	testutil.NeedTools(t, "tar", "gzip")
	raw := testutil.Unzstd(t, filepath.Join(testutil.RepoRoot(t), "testdata/images/disk/gpt512.raw.zst"))
	dir := t.TempDir()
	data, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "disk.raw"), data, 0o644)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("hi"), 0o644)
	for _, args := range [][]string{{"-Sczf", "gce.tar.gz", "disk.raw"}, {"-czf", "tree.tgz", "notes.txt"}} {
		cmd := exec.Command("tar", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("tar: %v %s", err, out)
		}
	}
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	root := newRootCmd()
	var out, errOut strings.Builder
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs([]string{"partitions", "-i", filepath.Join(dir, "gce.tar.gz")})
	if err := root.Execute(); err != nil || !strings.Contains(out.String(), "Layout: gpt") {
		t.Errorf("GCE export: %v\n%s%s", err, out.String(), errOut.String())
	}
	root = newRootCmd()
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs([]string{"list", "containers", "-i", filepath.Join(dir, "tree.tgz")})
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), "tree archive") || !strings.Contains(err.Error(), "no containerd root found") {
		t.Errorf("tree tar: %v", err)
	}
	for _, input := range []string{filepath.Join(dir, "tree.tgz"), dir} {
		if _, _, err := run(t, "partitions", "-i", input); err == nil || !strings.Contains(err.Error(), "not a disk image") {
			t.Errorf("partitions -i %s: %v", input, err)
		}
	}
	// The fs commands read a tree as they read a partition.
	for _, input := range []string{filepath.Join(dir, "tree.tgz"), dir} {
		if out, errOut, err := run(t, "fs", "cat", "-i", input, "/notes.txt"); err != nil || out != "hi" {
			t.Errorf("fs cat -i %s: %q %v %s", input, out, err, errOut)
		}
	}
}
