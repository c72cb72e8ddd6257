package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/ctrlift/ctrlift/internal/testutil"
	"github.com/ctrlift/ctrlift/node"
)

// dockerInspect is the part of `docker inspect` the kernel oracle uses,
// as the generator saved it.
type dockerInspect struct {
	ID             string `json:"Id"`
	Name           string
	HostnamePath   string
	HostsPath      string
	ResolvConfPath string
	GraphDriver    struct {
		Name string
		Data struct {
			LowerDir, UpperDir string
		}
	}
	Mounts []struct {
		Type, Source, Destination string
	}
}

// TestDockerNodeKernel: every container of the Docker node fixture
// (testdata/images/docker, made by dockerd 20.10 with make-docker-node.sh)
// exported with its volumes, its bind and the files dockerd binds, equal
// to what the kernel shows: the disk's partition loop-mounted read-only, a
// read-only overlay of the layer chain docker inspect gave, and the mounts
// docker inspect lists bound on it.
func TestDockerNodeKernel(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the kernel oracle needs root (loop and overlay mounts)")
	}
	testutil.NeedTools(t, "mount", "umount")
	dir := filepath.Join(testutil.RepoRoot(t), "testdata", "images", "docker")
	raw := testutil.Unzstd(t, filepath.Join(dir, "docker-node.raw.zst"))
	var want []dockerInspect
	b, err := os.ReadFile(filepath.Join(dir, "expected", "inspect.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	if len(want) != 4 {
		t.Fatalf("inspect.json: %d containers, want 4", len(want))
	}

	n, err := node.Open([]string{raw}, node.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if _, err := n.State(); err != nil {
		t.Fatal(err)
	}
	p := n.Partition()
	if p == nil || p.FS.Type != "ext4" || n.DockerRoot() != "var/lib/docker" {
		t.Fatalf("partition %+v, docker root %q", p, n.DockerRoot())
	}
	disk := t.TempDir()
	if !kernelMount(t, disk, "ext4", raw, "ro,noload,loop,offset="+itoa(p.Start)+",sizelimit="+itoa(p.Size)) {
		return
	}
	for _, w := range want {
		t.Run(strings.TrimPrefix(w.Name, "/"), func(t *testing.T) {
			c, err := n.Resolve("docker://" + w.ID)
			if err != nil {
				t.Fatal(err)
			}
			// The chain is the one dockerd gave.
			chain := append([]string{w.GraphDriver.Data.UpperDir}, strings.Split(w.GraphDriver.Data.LowerDir, ":")...)
			ls, err := n.Layers(c, node.LayerOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, l := range ls {
				got = append(got, "/"+l.Dir)
			}
			if strings.Join(got, ":") != strings.Join(chain, ":") {
				t.Fatalf("chain\n got %v\nwant %v", got, chain)
			}

			var lower []string
			for _, d := range chain {
				lower = append(lower, filepath.Join(disk, d))
			}
			root := t.TempDir()
			if !kernelMount(t, root, "overlay", "overlay", "ro,lowerdir="+strings.Join(lower, ":")) {
				return
			}
			type bind struct{ src, dst string }
			var binds []bind
			for _, m := range w.Mounts {
				binds = append(binds, bind{m.Source, m.Destination})
			}
			for _, f := range []bind{{w.HostnamePath, "/etc/hostname"}, {w.HostsPath, "/etc/hosts"}, {w.ResolvConfPath, "/etc/resolv.conf"}} {
				if f.src != "" {
					binds = append(binds, f)
				}
			}
			sort.Slice(binds, func(i, j int) bool { return binds[i].dst < binds[j].dst })
			for _, m := range binds {
				// The disk is the node's root: a host path is the same path on it.
				dst := filepath.Join(root, m.dst)
				if out, err := exec.Command("mount", "--bind", "-o", "ro", filepath.Join(disk, m.src), dst).CombinedOutput(); err != nil {
					t.Fatalf("bind %s: %v: %s", m.dst, err, out)
				}
				t.Cleanup(func() { exec.Command("umount", dst).Run() })
			}
			var buf bytes.Buffer
			if _, err := n.Export("docker://"+w.ID, &buf, node.ExportOptions{Volumes: node.VolumesAll}); err != nil {
				t.Fatal(err)
			}
			kernel := testutil.HostManifest(t, root)
			testutil.CompareManifests(t, w.Name, kernel, testutil.TarToManifest(t, buf.Bytes()))
			if w.Name == "/web" {
				checkWebFixture(t, kernel)
			}
		})
	}
}

// kernelMount mounts source on dir until the test ends; false (the test
// skipped) when the kernel refuses.
func kernelMount(t *testing.T, dir, fstype, source, opts string) bool {
	t.Helper()
	args := []string{"-o", opts}
	if fstype != "" {
		args = append(args, "-t", fstype)
	}
	out, err := exec.Command("mount", append(args, source, dir)...).CombinedOutput()
	if err != nil {
		t.Skipf("mount %s on %s: %v: %s", source, dir, err, out)
		return false
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return true
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

// checkWebFixture: the container web's view holds what the generator
// made it hold, so that the comparison covers every kind of entry.
func checkWebFixture(t *testing.T, m map[string]testutil.ManifestLine) {
	t.Helper()
	for p, ok := range map[string]func(testutil.ManifestLine) bool{
		"/root/null":               func(l testutil.ManifestLine) bool { return l.Type == "char" && l.Rdev == "1:3" },
		"/root/fifo":               func(l testutil.ManifestLine) bool { return l.Type == "fifo" },
		"/root/keys-link":          func(l testutil.ManifestLine) bool { return l.HardlinkTo == "/root/.ssh/authorized_keys" },
		"/root/shadow-link":        func(l testutil.ManifestLine) bool { return l.Target != nil && *l.Target == "/etc/shadow" },
		"/root/old-mtime":          func(l testutil.ManifestLine) bool { return l.MtimeNs == 1600000000e9 },
		"/tmp/.hidden":             func(l testutil.ManifestLine) bool { return l.Mode == "4755" },
		"/usr/local/bin/pinger":    func(l testutil.ManifestLine) bool { return l.Xattrs["security.capability"] != "" },
		"/etc/motd":                func(l testutil.ManifestLine) bool { return l.Xattrs["user.origin"] != "" },
		"/var/www/shell.php":       func(l testutil.ManifestLine) bool { return l.UID == 33 },
		"/var/www/index-link.html": func(l testutil.ManifestLine) bool { return l.Type == "file" && l.HardlinkTo == "" },
		"/var/cache/app/fresh":     func(l testutil.ManifestLine) bool { return l.Type == "file" },
		"/data/new.txt":            func(l testutil.ManifestLine) bool { return l.Type == "file" },
		"/data/seed.txt":           func(l testutil.ManifestLine) bool { return l.Type == "file" },
		"/share/from-web.txt":      func(l testutil.ManifestLine) bool { return l.Type == "file" },
		"/share/host.txt":          func(l testutil.ManifestLine) bool { return l.Type == "file" },
	} {
		if l, found := m[p]; !found || !ok(l) {
			t.Errorf("the kernel's view of web: %s: %v (present %v)", p, l, found)
		}
	}
	// Deleted in the container (whiteout, opaque directory) or in the
	// image's second layer.
	for _, p := range []string{"/var/www/index.html", "/var/cache/app/a", "/var/cache/app/c", "/var/www/old.html"} {
		if _, found := m[p]; found {
			t.Errorf("the kernel's view of web: %s present", p)
		}
	}
}
