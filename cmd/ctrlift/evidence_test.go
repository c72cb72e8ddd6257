package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ctrlift/ctrlift/internal/testutil"
)

// exampleRaw is the bundled example node disk, decompressed once.
var exampleRaw = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "ctrlift-evidence-")
	if err != nil {
		return "", err
	}
	raw := filepath.Join(dir, "node.raw")
	out, err := exec.Command("zstd", "-q", "-d", "-o", raw, filepath.Join("..", "..", "testdata", "images", "example", "wordpress-node.raw.zst")).CombinedOutput()
	if err != nil {
		return "", &exec.ExitError{Stderr: out}
	}
	return raw, nil
})

// evidenceFormats turn the raw example into the formats analysts receive,
// with the real tools: each returns the file to give -i.
var evidenceFormats = []struct {
	name  string
	tools []string
	make  func(t *testing.T, raw, dir string) string
}{
	{"e01-split", []string{"ewfacquire"}, func(t *testing.T, raw, dir string) string {
		target := filepath.Join(dir, "node")
		// 1 MiB segments would be hundreds: 64 MiB of mostly empty
		// chunks still spans several segment files.
		tool(t, "ewfacquire", "-u", "-q", "-t", target, "-c", "deflate:fast", "-S", "1MiB", "-C", "case-42", "-e", "analyst", "-D", "wordpress node", raw)
		return target + ".E01"
	}},
	{"qcow2-zstd-compressed", []string{"qemu-img"}, qemuImg("qcow2", "-c", "-o", "compression_type=zstd")},
	{"qcow2-v2", []string{"qemu-img"}, qemuImg("qcow2", "-o", "compat=0.10")},
	{"vmdk-monolithic-sparse", []string{"qemu-img"}, qemuImg("vmdk", "-o", "subformat=monolithicSparse")},
	{"vmdk-stream-optimized", []string{"qemu-img"}, qemuImg("vmdk", "-o", "subformat=streamOptimized")},
	{"vmdk-two-gb-sparse-descriptor", []string{"qemu-img"}, qemuImg("vmdk", "-o", "subformat=twoGbMaxExtentSparse")},
	{"vhd-fixed", []string{"qemu-img"}, qemuImg("vpc", "-o", "subformat=fixed,force_size=on")},
	{"vhd-dynamic", []string{"qemu-img"}, qemuImg("vpc", "-o", "subformat=dynamic,force_size=on")},
	{"vhdx", []string{"qemu-img"}, qemuImg("vhdx")},
}

// qemuImg converts with qemu-img convert -O format and the options.
func qemuImg(format string, opts ...string) func(t *testing.T, raw, dir string) string {
	return func(t *testing.T, raw, dir string) string {
		out := filepath.Join(dir, "node."+format)
		tool(t, "qemu-img", append(append([]string{"convert", "-q", "-f", "raw", "-O", format}, opts...), raw, out)...)
		return out
	}
}

func tool(t *testing.T, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "LANG=C.UTF-8")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// TestEvidenceFormats: the example node in every evidence format lists
// the same containers and exports byte-identical tars to the raw image,
// with nothing written to the cache.
func TestEvidenceFormats(t *testing.T) {
	testutil.NeedTools(t, "zstd")
	raw, err := exampleRaw()
	if err != nil {
		t.Fatal(err)
	}
	want := containersAndTars(t, raw)
	for _, f := range evidenceFormats {
		t.Run(f.name, func(t *testing.T) {
			testutil.NeedTools(t, f.tools...)
			in := f.make(t, raw, t.TempDir())
			out, _, err := run(t, "partitions", "-o", "json", "-i", in)
			var disks []struct{ Format string }
			if err != nil || json.Unmarshal([]byte(out), &disks) != nil || len(disks) != 1 {
				t.Fatalf("partitions: %v %s", err, out)
			}
			if want, _, _ := strings.Cut(f.name, "-"); disks[0].Format != want {
				t.Errorf("read as %q, want %q", disks[0].Format, want)
			}
			cache := t.TempDir()
			t.Setenv("XDG_CACHE_HOME", cache)
			if got := containersAndTars(t, in); got != want {
				t.Errorf("%s differs from the raw image:\n got %s\nwant %s", f.name, got, want)
			}
			if ents, _ := os.ReadDir(cache); len(ents) != 0 {
				t.Errorf("the cache holds %d entries: the image was not read in place", len(ents))
			}
		})
	}
}

// containersAndTars lists the containers of in and exports each one,
// giving their ids and the tars' sha256.
func containersAndTars(t *testing.T, in string) string {
	t.Helper()
	out, errOut, err := run(t, "list", "containers", "-q", "--all", "-o", "json", "-i", in)
	if err != nil {
		t.Fatal(err, errOut)
	}
	var cs []struct{ Namespace, ID, Status string }
	if err := json.Unmarshal([]byte(out), &cs); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString(out)
	for _, c := range cs {
		_, errOut, err := run(t, "export", "-i", in, "-n", c.Namespace, c.ID, os.DevNull)
		if err != nil {
			t.Fatal(err, errOut)
		}
		for _, l := range strings.Split(errOut, "\n") {
			if strings.HasPrefix(l, "tar sha256 ") {
				b.WriteString(c.ID + " " + l + "\n")
			}
		}
	}
	return b.String()
}

// TestE01Metadata: partitions shows the acquisition record, and --verify
// checks the stored hashes.
func TestE01Metadata(t *testing.T) {
	testutil.NeedTools(t, "zstd", "ewfacquire")
	raw, err := exampleRaw()
	if err != nil {
		t.Fatal(err)
	}
	in := evidenceFormats[0].make(t, raw, t.TempDir())
	out, errOut, err := run(t, "partitions", "-i", in)
	if err != nil {
		t.Fatal(err, errOut)
	}
	for _, w := range []string{"Format: e01, ", "Case number:", "case-42", "Examiner:", "analyst", "Stored MD5:", `1       STATE`} {
		if !strings.Contains(out, w) {
			t.Errorf("partitions lacks %q:\n%s", w, out)
		}
	}
	out, errOut, err = run(t, "partitions", "--verify", "-o", "json", "-i", in)
	if err != nil || !strings.Contains(out, `"ok": true`) || !strings.Contains(out, `"md5_check": "match"`) {
		t.Errorf("--verify: %v %s %s", err, out, errOut)
	}
}
