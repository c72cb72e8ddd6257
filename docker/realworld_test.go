package docker

import (
	"io/fs"
	"os"
	"sort"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/ctrlift/ctrlift/image/tarfs"
)

// realWorld is google/docker-explorer's test data: /var/lib/docker trees
// as tarballs (at docker/ in each).
const realWorld = "../../shared/realworld/docker-explorer/"

func openTree(t *testing.T, name string) fs.FS {
	t.Helper()
	p := realWorld + name
	if _, err := os.Stat(p); err != nil {
		t.Skip(err)
	}
	f, err := tarfs.OpenFile(p, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f.IOFS()
}

func byID(st *State, id string) *Container {
	for i := range st.Containers {
		if st.Containers[i].ID == id {
			return &st.Containers[i]
		}
	}
	return nil
}

func load(t *testing.T, name string) *State {
	t.Helper()
	fsys := openTree(t, name)
	root, err := FindRoot(fsys, "")
	if err != nil {
		t.Fatal(err)
	}
	if root != "docker" {
		t.Fatalf("root %q, want docker", root)
	}
	st, err := Load(fsys, root)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range st.Warnings {
		t.Logf("warning: %s", w)
	}
	return st
}

// The values docker-explorer's tests.py (TestOverlay2Storage) expects.
func TestDockerExplorerOverlay2(t *testing.T) {
	st := load(t, "overlay2.v2.tgz")
	if len(st.Containers) != 5 {
		t.Fatalf("%d containers, want 5", len(st.Containers))
	}
	names := []string{}
	running := 0
	for _, c := range st.Containers {
		names = append(names, c.Name)
		if c.Running {
			running++
		}
		if c.LayersError != "" {
			t.Errorf("%s: %s", c.ID, c.LayersError)
		}
	}
	sort.Strings(names)
	if names[0] != "festive_perlman" || running != 1 {
		t.Errorf("names %v, %d running", names, running)
	}
	c := byID(st, "8e8b7f23eb7cbd4dfe7e91646ddd0e0f524218e25d50113559f078dfb2690206")
	if c == nil {
		t.Fatal("festive_perlman not found")
	}
	if c.Name != "festive_perlman" || c.Image != "busybox" || !c.Running || c.PID != 71799 ||
		c.Created.Format("2006-01-02T15:04:05.999999999Z07:00") != "2018-05-16T10:51:39.271019533Z" ||
		c.StartedAt.Format("2006-01-02T15:04:05.000000") != "2018-05-16T10:51:39.625989" ||
		c.ImageID != "sha256:8ac48589692a53a9b8c2d1ceaa6b402665aa7fe667ba51ccc03002300856d8c7" || c.Driver != "overlay2" {
		t.Errorf("festive_perlman: %+v", *c)
	}
	// mount -t overlay -o lowerdir=l/OTFSLJCXWCECIG6FVNGRTWUZ7D:l/CH5A7XWSBP2DUPV7V47B7DOOGY,upperdir=92fd…/diff
	const mid = "92fd3b3e7d6101bb701743c9518c45b0d036b898c8a3d7cae84e1a06e6829b53"
	want := []string{
		"docker/overlay2/" + mid + "/diff",
		"docker/overlay2/" + mid + "-init/diff",
		"docker/overlay2/583c602e6bded61f85a9deb504a724d5cc7cce3902c8385a7620fe1c78ad3176/diff",
	}
	if c.MountID != mid || len(c.Layers) != len(want) {
		t.Fatalf("mount id %s, layers %+v", c.MountID, c.Layers)
	}
	for i, l := range c.Layers {
		if l.Dir != want[i] {
			t.Errorf("layer %d: %s, want %s", i, l.Dir, want[i])
		}
	}
	if k := []string{c.Layers[0].Kind, c.Layers[1].Kind, c.Layers[2].Kind}; k[0] != "container" || k[1] != "init" || k[2] != "image" {
		t.Errorf("kinds %v", k)
	}
	if c := byID(st, "10acac0b3466813c9e1f85e2aa7d06298e51fbfe86bbcb6b7a19dd33d3798f6a"); c == nil || c.Running || c.ExitCode != 127 || c.PID != 0 {
		t.Errorf("reverent_wing: %+v", c)
	}
}

// TestOverlayStorage in tests.py.
func TestDockerExplorerOverlay(t *testing.T) {
	st := load(t, "overlay.v2.tgz")
	if len(st.Containers) != 6 {
		t.Fatalf("%d containers, want 6", len(st.Containers))
	}
	c := byID(st, "5dc287aa80b460652a5584e80a5c8c1233b0c0691972d75424cf5250b917600a")
	if c == nil || c.Name != "elastic_booth" || c.Image != "busybox:latest" || !c.Running ||
		c.Created.Format("2006-01-02T15:04:05.999999999Z07:00") != "2018-01-26T14:55:56.280943771Z" ||
		c.ImageID != "sha256:5b0d59026729b68570d99bc4f3f7c31a2e4f2a5736435641565d93e7c25bd2c3" {
		t.Fatalf("elastic_booth: %+v", c)
	}
	// lowerdir=overlay/a94d…/root, upperdir=overlay/974e…/upper
	want := []string{
		"docker/overlay/974e2b994f9db74e1ddd6fc546843bc65920e786612a388f25685acf84b3fed1/upper",
		"docker/overlay/a94d714512251b0d8a9bfaacb832e0c6cb70f71cb71976cca7a528a429336aae/root",
	}
	if c.LayersError != "" || len(c.Layers) != 2 || c.Layers[0].Dir != want[0] || c.Layers[1].Dir != want[1] {
		t.Errorf("layers %+v (%s), want %v", c.Layers, c.LayersError, want)
	}
	running := 0
	for _, c := range st.Containers {
		running += b2i(c.Running)
	}
	if running != 1 {
		t.Errorf("%d running, want 1", running)
	}
}

// TestAufsStorage in tests.py: the containers and their aufs chains.
func TestDockerExplorerAufs(t *testing.T) {
	st := load(t, "aufs.v2.tgz")
	if len(st.Containers) != 7 {
		t.Fatalf("%d containers, want 7", len(st.Containers))
	}
	c := byID(st, "7b02fb3e8a665a63e32b909af5babb7d6ba0b64e10003b2d9534c7d5f2af8966")
	if c == nil || c.Name != "dreamy_snyder" || c.Image != "busybox" || !c.Running ||
		c.Created.Format("2006-01-02T15:04:05.999999999Z07:00") != "2017-02-13T16:45:05.629904159Z" {
		t.Fatalf("dreamy_snyder: %+v", c)
	}
	// The mount id docker-explorer's tests.py expects, its -init layer and
	// busybox, from aufs/layers/<mount id>.
	const mid = "b16a494082bba0091e572b58ff80af1b7b5d28737a3eedbe01e73cd7f4e01d23"
	if c.LayersError != "" || c.MountID != mid || len(c.Layers) != 3 || c.Layers[0].Dir != "docker/aufs/diff/"+mid ||
		c.Layers[1].Kind != "init" || c.Layers[2].ID != "d1c54c46d331de21587a16397e8bd95bdbb1015e1a04797c76de128107da83ae" {
		t.Errorf("aufs layers: %+v %q", c.Layers, c.LayersError)
	}
	for _, x := range st.Containers {
		if x.LayersError != "" || len(x.Layers) < 2 || x.Layers[0].Driver != "aufs" {
			t.Errorf("%s: layers %+v %q", x.ID, x.Layers, x.LayersError)
		}
	}
	var vol *Mount
	for i := range c.Mounts {
		if c.Mounts[i].Destination == "/var/jenkins_home" {
			vol = &c.Mounts[i]
		}
	}
	if vol == nil || vol.Type != "volume" || vol.Name != "28297de547b5473a9aff90aaab45ed108ebf019981b40c3c35c226f54c13ac0d" {
		t.Errorf("volume: %+v", c.Mounts)
	}
}

// vols.v2: named volumes and a bind.
func TestDockerExplorerVolumes(t *testing.T) {
	st := load(t, "vols.v2.tgz")
	if len(st.Containers) != 4 {
		t.Fatalf("%d containers, want 4", len(st.Containers))
	}
	c := byID(st, "8b6e90cc742bd63f6acb7ecd40ddadb4e5dee27d8db2b739963f7cd2c7bcff4a")
	if c == nil || len(c.Mounts) != 2 {
		t.Fatalf("sad_lichterman: %+v", c)
	}
	if m := c.Mounts[0]; m.Destination != "/opt" || m.Type != "bind" || m.Source != "/opt/vols/bind" || !m.RW {
		t.Errorf("bind: %+v", m)
	}
	if m := c.Mounts[1]; m.Destination != "/var/jenkins_home" || m.Type != "volume" || m.Name != "eda9ee495beccf988d963bf91de0276847e838b9531ab9118caef38a33894bb4" {
		t.Errorf("volume: %+v", m)
	}
	for _, c := range st.Containers {
		if c.LayersError != "" {
			t.Errorf("%s: %s", c.ID, c.LayersError)
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// aufs.v1: the layout before Docker 1.10 (config.json, graph/,
// repositories-aufs, the writable layer named by the container id), with
// the values docker-explorer's tests.py (TestAufsV1Storage) expects.
func TestDockerExplorerAufsV1(t *testing.T) {
	st := load(t, "aufs.v1.tgz")
	if len(st.Containers) != 3 {
		t.Fatalf("%d containers, want 3", len(st.Containers))
	}
	const id = "de44dd97cfd1c8d1c1aad7f75a435603991a7a39fa4f6b20a69bf4458809209c"
	running := 0
	for _, c := range st.Containers {
		running += b2i(c.Running)
		if !c.Legacy || c.LayersError != "" || len(c.Layers) != 4 {
			t.Errorf("%s: legacy %v, layers %+v %q", c.ID, c.Legacy, c.Layers, c.LayersError)
		}
	}
	if running != 1 {
		t.Errorf("%d running, want 1", running)
	}
	c := byID(st, id)
	if c == nil || c.Name != "angry_rosalind" || c.Image != "busybox" || !c.Running ||
		c.ImageID != "1cee97b18f87b5fa91633db35f587e2c65c093facfa2cbbe83d5ebe06e1d9125" ||
		c.Created.Format("2006-01-02T15:04:05.999999999Z07:00") != "2018-12-27T10:53:17.096746609Z" ||
		c.StartedAt.Format("2006-01-02T15:04:05.999999Z07:00") != "2018-12-27T10:53:17.409426Z" ||
		c.LogPath != "/var/lib/docker/containers/"+id+"/"+id+"-json.log" {
		t.Fatalf("angry_rosalind: %+v", c)
	}
	// The branches of docker-explorer's aufs mount commands, in order: the
	// container's, its -init, then the image's two layers.
	want := []string{id, id + "-init", "1cee97b18f87b5fa91633db35f587e2c65c093facfa2cbbe83d5ebe06e1d9125",
		"df557f39d413a1408f5c28d8aab2892f927237ec22e903ef04b331305130ab38"}
	for i, l := range c.Layers {
		if l.ID != want[i] || l.Dir != "docker/aufs/diff/"+want[i] || l.Driver != "aufs" {
			t.Errorf("layer %d: %+v, want %s", i, l, want[i])
		}
	}
	if c.MountID != id {
		t.Errorf("mount id %q, want the container id", c.MountID)
	}

	imgs, warns, err := LoadImages(openTree(t, "aufs.v1.tgz"), "docker")
	if err != nil || len(warns) != 0 {
		t.Fatalf("images: %v %v", err, warns)
	}
	var tagged []Image
	for _, img := range imgs {
		if !img.Intermediate {
			tagged = append(tagged, img)
		}
	}
	if len(imgs) != 2 || len(tagged) != 1 {
		t.Fatalf("images %+v", imgs)
	}
	img := tagged[0]
	if img.ID != want[2] || len(img.Tags) != 1 || img.Tags[0] != "busybox:latest" || img.Driver != "aufs" ||
		img.Parent != want[3] || img.Created.Format("2006-01-02T15:04:05.999999999Z07:00") != "2018-12-26T08:20:42.831353376Z" || img.Size <= 0 {
		t.Errorf("busybox: %+v", img)
	}
}

// A graph whose parent chain cycles: each image's size is unknown (-1)
// with a warning, nothing loops.
func TestGraphImagesCycle(t *testing.T) {
	a, b := strings.Repeat("a", 64), strings.Repeat("b", 64)
	fsys := fstest.MapFS{
		"graph/" + a + "/json":                       {Data: []byte(`{"id":"` + a + `","parent":"` + b + `"}`)},
		"graph/" + a + "/layersize":                  {Data: []byte("10")},
		"graph/" + b + "/json":                       {Data: []byte(`{"id":"` + b + `","parent":"` + a + `"}`)},
		"graph/" + b + "/layersize":                  {Data: []byte("5")},
		"graph/" + strings.Repeat("c", 64) + "/json": {Data: []byte(`{"id":"` + a + `"}`)},
		"repositories-overlay":                       {Data: []byte(`{"Repositories":{"x":{"latest":"` + a + `","sha256:` + b + `":"` + b + `"}}}`)},
	}
	imgs, warns, err := LoadImages(fsys, ".")
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 2 || imgs[0].Size != -1 || imgs[1].Size != -1 || len(warns) != 3 {
		t.Fatalf("images %+v, warnings %q", imgs, warns)
	}
	if imgs[0].Tags[0] != "x:latest" || imgs[1].Digests[0] != "x@sha256:"+b || imgs[0].Driver != "overlay" {
		t.Errorf("names: %+v", imgs)
	}
}
