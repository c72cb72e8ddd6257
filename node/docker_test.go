package node

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
)

// google/docker-explorer's test data: /var/lib/docker trees as tarballs.
const dockerExplorer = "../../shared/realworld/docker-explorer/"

func openDockerExplorer(t *testing.T, name string) *Node {
	t.Helper()
	p := dockerExplorer + name
	if _, err := os.Stat(p); err != nil {
		t.Skip(err)
	}
	t.Setenv("TMPDIR", t.TempDir())
	n, err := Open([]string{p}, Options{NoCache: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// The numbers docker-explorer's tests.py expects, through the listing.
func TestDockerListing(t *testing.T) {
	for _, tt := range []struct {
		tree          string
		containers    int
		running, name string
	}{
		{"overlay2.v2.tgz", 5, "8e8b7f23eb7cbd4dfe7e91646ddd0e0f524218e25d50113559f078dfb2690206", "festive_perlman"},
		{"overlay.v2.tgz", 6, "5dc287aa80b460652a5584e80a5c8c1233b0c0691972d75424cf5250b917600a", "elastic_booth"},
		{"aufs.v2.tgz", 7, "7b02fb3e8a665a63e32b909af5babb7d6ba0b64e10003b2d9534c7d5f2af8966", "dreamy_snyder"},
		{"vols.v2.tgz", 4, "", ""},
	} {
		t.Run(tt.tree, func(t *testing.T) {
			n := openDockerExplorer(t, tt.tree)
			l, err := n.Containers(ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(l.Shown) != tt.containers || l.Hidden.Total() != 0 || !n.HasDocker() || n.DockerRoot() != "docker" {
				t.Fatalf("%d shown, %d hidden, docker root %q", len(l.Shown), l.Hidden.Total(), n.DockerRoot())
			}
			var running []string
			for _, c := range l.Shown {
				if c.Engine != EngineDocker || c.Namespace != DockerNamespace || c.DockerConfig != nil {
					t.Errorf("%s: engine %q namespace %q", c.ID, c.Engine, c.Namespace)
				}
				if c.Status == "running" {
					running = append(running, c.ID)
				}
			}
			if tt.running == "" {
				return
			}
			if len(running) != 1 || running[0] != tt.running {
				t.Errorf("running %v, want %s", running, tt.running)
			}
			for _, ref := range []string{"docker://" + tt.running, "docker://" + tt.running[:12], tt.name, "moby/" + tt.running} {
				c, err := n.Resolve(ref)
				if err != nil || c.ID != tt.running || c.DockerName != tt.name {
					t.Errorf("%s: %v %v", ref, c, err)
				}
			}
			var nf *NotFoundError
			if _, err := n.Resolve("containerd://" + tt.running); !errors.As(err, &nf) {
				t.Errorf("containerd:// of a Docker container: %v", err)
			}
			if _, err := n.Resolve("cri-o://" + tt.running); err == nil || !strings.Contains(err.Error(), "Docker state only") {
				t.Errorf("cri-o://: %v", err)
			}
		})
	}
}

func exportNames(t *testing.T, n *Node, ref string, opt ExportOptions) map[string]*tar.Header {
	t.Helper()
	var buf bytes.Buffer
	if _, err := n.Export(ref, &buf, opt); err != nil {
		t.Fatal(err)
	}
	out := map[string]*tar.Header{}
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimPrefix(h.Name, "./")] = h
	}
	return out
}

// The overlay2 chain (container, init, image layer) merged; the files the
// daemon binds are in the export; --changes is the writable layer alone.
func TestDockerExportOverlay2(t *testing.T) {
	n := openDockerExplorer(t, "overlay2.v2.tgz")
	all := exportNames(t, n, "docker://8e8b7f23eb7c", ExportOptions{})
	for _, p := range []string{"tets", "bin/busybox", ".dockerenv", "etc/hostname", "etc/passwd"} {
		if all[p] == nil {
			t.Errorf("%s missing from the export (%d entries)", p, len(all))
		}
	}
	if h := all["etc/hostname"]; h == nil || h.Size != 13 {
		t.Errorf("etc/hostname: %+v", h)
	}
	ch := exportNames(t, n, "festive_perlman", ExportOptions{Changes: true})
	if ch["tets"] == nil || ch["bin/busybox"] != nil {
		t.Errorf("changes: %v", ch)
	}
	c, err := n.Resolve("festive_perlman")
	if err != nil {
		t.Fatal(err)
	}
	ls, err := n.Layers(c, LayerOptions{})
	if err != nil || len(ls) != 3 || ls[0].Name != "overlay2/92fd3b3e7d6101bb701743c9518c45b0d036b898c8a3d7cae84e1a06e6829b53" {
		t.Fatalf("layers %+v: %v", ls, err)
	}
}

// The legacy overlay driver: upper over the image's root.
func TestDockerExportOverlay(t *testing.T) {
	n := openDockerExplorer(t, "overlay.v2.tgz")
	all := exportNames(t, n, "elastic_booth", ExportOptions{})
	if all["bin/busybox"] == nil || all["etc/hostname"] == nil {
		t.Errorf("export: %d entries", len(all))
	}
}

// Named volumes map onto volumes/NAME/_data; binds onto the host's paths.
func TestDockerVolumes(t *testing.T) {
	n := openDockerExplorer(t, "vols.v2.tgz")
	c, err := n.Resolve("alpine_volume")
	if err != nil {
		t.Fatal(err)
	}
	vs, err := n.Volumes(c, VolumesDisk)
	if err != nil {
		t.Fatal(err)
	}
	var vol *Volume
	for i := range vs {
		if vs[i].ContainerPath == "/opt/vols/volume" {
			vol = &vs[i]
		}
	}
	const name = "b44451174b5fd2ad7d1a580b527d66d4812eaea3ed717331183e846d020eb8aa"
	if vol == nil || vol.Kind != "volume" || !vol.OnDisk || !vol.Included || vol.Path != "docker/volumes/"+name+"/_data" ||
		vol.HostPath != "/var/lib/docker/volumes/"+name+"/_data" {
		t.Errorf("volume: %+v", vs)
	}
	c, err = n.Resolve("sad_lichterman")
	if err != nil {
		t.Fatal(err)
	}
	vs, err = n.Volumes(c, VolumesAll)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Volume{}
	for _, v := range vs {
		got[v.ContainerPath] = v
	}
	// The tree is /var/lib/docker alone: /opt/vols/bind is not on it; the
	// volume's directory was removed.
	if v := got["/opt"]; v.Kind != "bind" || v.OnDisk || !strings.Contains(v.Note, "/var/lib and below") {
		t.Errorf("bind: %+v", v)
	}
	if v := got["/var/jenkins_home"]; v.Kind != "volume" || v.OnDisk || v.Note != "not found on the disk" {
		t.Errorf("volume: %+v", v)
	}
}
