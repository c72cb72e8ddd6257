package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctrlift/ctrlift/image"
	"github.com/ctrlift/ctrlift/internal/testutil"
)

func lvmFixture(t *testing.T, name string) string {
	t.Helper()
	return filepath.Join(testutil.RepoRoot(t), "testdata", "images", "lvm", name+".raw.zst")
}

// TestLVMLists: the example's STATE on a linear LV and on a striped LV
// over two disks (given as two -i, in either order) lists the same
// containers as the plain image, and every container exports to the same
// tar, byte for byte. The striped set is read once more as an
// unprivileged user.
func TestLVMLists(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", filepath.Join(os.TempDir(), "ctrlift-test-cache"))
	plain := filepath.Join(testutil.RepoRoot(t), "testdata", "images", "example", "wordpress-node.raw.zst")
	linear := []string{"-i", lvmFixture(t, "node-lvm-linear")}
	striped := []string{"-i", lvmFixture(t, "node-lvm-striped-0"), "-i", lvmFixture(t, "node-lvm-striped-1")}
	reversed := []string{"-i", lvmFixture(t, "node-lvm-striped-1"), "-i", lvmFixture(t, "node-lvm-striped-0")}

	list := func(inputs []string) (string, []string) {
		t.Helper()
		out, errOut, err := run(t, append([]string{"list", "containers", "--all", "-o", "json"}, inputs...)...)
		if err != nil {
			t.Fatal(err, errOut)
		}
		var rows []struct{ ID string }
		if err := json.Unmarshal([]byte(out), &rows); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range rows {
			ids = append(ids, r.ID)
		}
		return out, ids
	}
	want, ids := list([]string{"-i", plain})
	if len(ids) != 6 {
		t.Fatalf("the example lists %d containers, want 6", len(ids))
	}
	sums := map[string]string{}
	export := func(inputs []string, id string) string {
		t.Helper()
		out, errOut, err := run(t, append([]string{"export", "-q", "-n", "k8s.io", id, "-"}, inputs...)...)
		if err != nil {
			t.Fatal(err, errOut)
		}
		s := sha256.Sum256([]byte(out))
		return hex.EncodeToString(s[:])
	}
	for _, id := range ids {
		sums[id] = export([]string{"-i", plain}, id)
	}
	for name, inputs := range map[string][]string{"linear": linear, "striped": striped, "striped, disks reversed": reversed} {
		got, _ := list(inputs)
		if got != want {
			t.Errorf("%s: list differs from the plain image's:\n%s\nwant\n%s", name, got, want)
		}
		if name == "striped, disks reversed" {
			continue
		}
		for _, id := range ids {
			if s := export(inputs, id); s != sums[id] {
				t.Errorf("%s: export of %.12s has sha256 %s, the plain image's %s", name, id, s, sums[id])
			}
		}
	}

	// Unprivileged: nothing in reading a volume group needs root.
	if os.Geteuid() == 0 {
		r := runner{bin: ctrliftBinary(t), dir: scratch(t), uid: 65534}
		r.cache = r.dir
		f, err := os.Create(filepath.Join(r.dir, "out.json"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if errOut, err := r.run(t, f, append([]string{"list", "containers", "--all", "-o", "json"}, striped...)...); err != nil {
			t.Fatalf("as uid 65534: %v %s", err, errOut)
		}
		if got, _ := os.ReadFile(f.Name()); string(got) != want {
			t.Errorf("as uid 65534 the striped set lists\n%s", got)
		}
	}
}

func TestLVMPartitions(t *testing.T) {
	out, _, err := runPartitions(t, "-i", lvmFixture(t, "node-lvm-linear"), "--no-cache")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"1       lvm   Linux LVM  1048576  479.0 MiB  LVM2_member",
		"\nVolume group node (lvm2, seqno 7, extent size 4.0 MiB, UUID ",
		"├─ LV node/var    LVM linear ",
		" 384.0 MiB  ext4 label STATE UUID 7d0c1e55-0000-4000-8000-0000000000f1\n",
		"└─ LV node/cpool  LVM cache-pool ",
		"not read: logical volume node/cpool: a cache-pool volume: ctrlift reads linear and striped logical volumes only\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// One disk of the striped pair: the LV is listed, the missing PV named.
	out, _, err = runPartitions(t, "-i", lvmFixture(t, "node-lvm-striped-1"), "--no-cache")
	if err != nil || !strings.Contains(out, "missing (last seen as /dev/loop") || !strings.Contains(out, "not among the inputs: give every disk of the volume group with -i") {
		t.Errorf("one disk of two: %v\n%s", err, out)
	}
	// Both, as JSON: the group on the first disk, members on each.
	out, _, err = runPartitions(t, "-i", lvmFixture(t, "node-lvm-striped-0"), "-i", lvmFixture(t, "node-lvm-striped-1"), "--no-cache", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var ds []image.Disk
	if err := json.Unmarshal([]byte(out), &ds); err != nil || len(ds) != 2 {
		t.Fatal(err, len(ds))
	}
	if len(ds[0].VolumeGroups) != 1 || len(ds[1].VolumeGroups) != 0 {
		t.Fatalf("volume groups %d and %d, want 1 and 0", len(ds[0].VolumeGroups), len(ds[1].VolumeGroups))
	}
	g := ds[0].VolumeGroups[0]
	if g.Name != "data" || len(g.Members) != 2 || g.Members[1].Disk != ds[1].Path || g.Members[1].Missing || len(g.Volumes) != 1 {
		t.Fatalf("%+v", g)
	}
	if v := g.Volumes[0]; v.Name != "data/containerd" || v.Type != "LVM striped" || v.FS.Label != "STATE" || v.Size != 384<<20 || v.Error != "" {
		t.Errorf("%+v", v)
	}
	// -p VG/LV selects it, as does the LV's name alone; a volume without
	// a filesystem is refused, naming it.
	for _, spec := range []string{"node/var", "var"} {
		if _, errOut, err := run(t, "list", "containers", "-i", lvmFixture(t, "node-lvm-linear"), "-p", spec); err != nil {
			t.Errorf("-p %s: %v %s", spec, err, errOut)
		}
	}
	if _, _, err := run(t, "list", "containers", "-i", lvmFixture(t, "node-lvm-linear"), "-p", "node/swap"); err == nil || !strings.Contains(err.Error(), "logical volume node/swap") {
		t.Errorf("-p node/swap: %v", err)
	}
}

// TestEncryptedInput: a LUKS volume made by cryptsetup is refused in one
// line naming the scheme and what to do, never as "unknown".
func TestEncryptedInput(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", filepath.Join(os.TempDir(), "ctrlift-test-cache"))
	inputs := map[string]string{"LUKS2": lvmFixture(t, "luks2")}
	if _, err := exec.LookPath("cryptsetup"); err == nil {
		// LUKS1 and a LUKS2 partition of a GPT disk, made now (formatting
		// a plain file needs neither root nor device-mapper).
		dir := t.TempDir()
		l1 := filepath.Join(dir, "luks1.raw")
		os.WriteFile(l1, nil, 0o644)
		os.Truncate(l1, 4<<20)
		cmd := exec.Command("cryptsetup", "luksFormat", "-q", "--type", "luks1", "--pbkdf-force-iterations", "1000", "--key-size", "256", "--disable-locks", "--key-file", "-", l1)
		cmd.Stdin = strings.NewReader("ctrlift-test")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("cryptsetup: %v %s", err, out)
		}
		inputs["LUKS1"] = l1
	} else {
		t.Log("cryptsetup not installed: LUKS1 not tested")
	}
	for scheme, in := range inputs {
		for _, args := range [][]string{{"list", "containers"}, {"fs", "ls", "/"}} {
			_, _, err := run(t, append(args, "-i", in)...)
			if err == nil || !strings.Contains(err.Error(), "is "+scheme+"-encrypted (UUID ") ||
				!strings.Contains(err.Error(), "which ctrlift does not decrypt: unlock it with its key") || strings.Contains(err.Error(), "\n") {
				t.Errorf("%s %v: %v", scheme, args, err)
			}
		}
		out, _, err := runPartitions(t, "-i", in, "--no-cache")
		if err != nil || !strings.Contains(out, "crypto_LUKS") {
			t.Errorf("partitions of %s: %v\n%s", scheme, err, out)
		}
	}
}
