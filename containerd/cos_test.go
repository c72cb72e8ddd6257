package containerd

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// humanSize formats like ctr's content listing (go-units HumanSize).
func humanSize(n int64) string {
	units := []string{"B", "kB", "MB", "GB", "TB"}
	f, i := float64(n), 0
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	return fmt.Sprintf("%.4g%s", f, units[i])
}

func labelSet(s string) map[string]string {
	m := map[string]string{}
	if s == "" || s == "-" {
		return m
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func (s *State) container(ns, id string) *Container {
	for i := range s.Containers {
		if c := &s.Containers[i]; c.Namespace == ns && c.ID == id {
			return c
		}
	}
	return nil
}

// TestCOSNode checks everything containerd's own tools listed on the
// fixture node against what Load reads from the disk image.
func TestCOSNode(t *testing.T) {
	s := loadCOS(t, "cos-node")
	if s.MetaDB.TxID != 184 || s.MetaDB.Schema != 3 {
		t.Errorf("meta.db = %+v, want txid 184 schema 3", s.MetaDB)
	}
	if len(s.Warnings) > 0 {
		t.Errorf("warnings on a clean fixture: %q", s.Warnings)
	}

	var nsNames []string
	for _, r := range table(t, "expected/containerd/namespaces.txt") {
		nsNames = append(nsNames, r["NAME"])
	}
	var got []string
	for _, n := range s.Namespaces {
		got = append(got, n.Name)
	}
	if !slices.Equal(got, nsNames) {
		t.Errorf("namespaces = %q, want %q", got, nsNames)
	}

	for _, ns := range nsNames {
		t.Run(ns, func(t *testing.T) {
			checkContainers(t, s, ns)
			checkImages(t, s, ns)
			checkContent(t, s, ns)
			for _, sn := range []string{"overlayfs", "native"} {
				checkSnapshots(t, s, ns, sn)
			}
		})
	}
	checkChains(t, s)
}

func checkContainers(t *testing.T, s *State, ns string) {
	want := table(t, "expected/containerd/"+ns+"-containers.txt")
	var n int
	for _, c := range s.Containers {
		if c.Namespace == ns {
			n++
		}
	}
	if n != len(want) {
		t.Errorf("%d containers, want %d", n, len(want))
	}
	for _, w := range want {
		id := w["CONTAINER"]
		c := s.container(ns, id)
		if c == nil {
			t.Errorf("container %s missing", id)
			continue
		}
		if c.Image != w["IMAGE"] || c.Runtime != w["RUNTIME"] {
			t.Errorf("%s: image %q runtime %q, want %q %q", id, c.Image, c.Runtime, w["IMAGE"], w["RUNTIME"])
		}
		checkContainerInfo(t, c, expectedPath(t, fmt.Sprintf("expected/containerd/%s-container-%s.json", ns, id)))
	}
}

// checkContainerInfo compares with `ctr containers info` output.
func checkContainerInfo(t *testing.T, c *Container, file string) {
	b, err := os.ReadFile(file)
	if err != nil {
		t.Error(err)
		return
	}
	var w struct {
		ID      string
		Labels  map[string]string
		Image   string
		Runtime struct {
			Name    string
			Options struct {
				TypeURL string `json:"type_url"`
			}
		}
		SnapshotKey string
		Snapshotter string
		CreatedAt   time.Time
		UpdatedAt   time.Time
		Extensions  map[string]struct {
			TypeURL string `json:"type_url"`
			Value   string `json:"value"`
		}
		Spec json.RawMessage
	}
	if err := json.Unmarshal(b, &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(orEmpty(c.Labels), orEmpty(w.Labels)) {
		t.Errorf("%s labels = %v, want %v", c.ID, c.Labels, w.Labels)
	}
	if c.SnapshotKey != w.SnapshotKey || c.Snapshotter != w.Snapshotter || c.Image != w.Image || c.Runtime != w.Runtime.Name {
		t.Errorf("%s record differs: %+v", c.ID, w)
	}
	if c.RuntimeOptions == nil || c.RuntimeOptions.TypeURL != w.Runtime.Options.TypeURL {
		t.Errorf("%s runtime options %+v, want type %q", c.ID, c.RuntimeOptions, w.Runtime.Options.TypeURL)
	}
	if !c.CreatedAt.Equal(w.CreatedAt) || !c.UpdatedAt.Equal(w.UpdatedAt) {
		t.Errorf("%s times %v %v, want %v %v", c.ID, c.CreatedAt, c.UpdatedAt, w.CreatedAt, w.UpdatedAt)
	}
	if !jsonEqual(c.Spec, w.Spec) {
		t.Errorf("%s spec differs", c.ID)
	}
	if len(c.Extensions) != len(w.Extensions) {
		t.Errorf("%s: %d extensions, want %d", c.ID, len(c.Extensions), len(w.Extensions))
	}
	for name, we := range w.Extensions {
		val, _ := base64.StdEncoding.DecodeString(we.Value)
		ge, ok := c.Extensions[name]
		if !ok || ge.TypeURL != we.TypeURL || string(ge.JSON) != string(val) {
			t.Errorf("%s extension %s differs", c.ID, name)
		}
	}
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

func checkImages(t *testing.T, s *State, ns string) {
	want := table(t, "expected/containerd/"+ns+"-images.txt")
	got := map[string]Image{}
	for _, im := range s.Images {
		if im.Namespace == ns {
			got[im.Name] = im
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d images, want %d", len(got), len(want))
	}
	for _, w := range want {
		im, ok := got[w["REF"]]
		if !ok {
			t.Errorf("image %s missing", w["REF"])
			continue
		}
		if im.Target.MediaType != w["TYPE"] || im.Target.Digest != w["DIGEST"] {
			t.Errorf("image %s target %+v, want %s %s", im.Name, im.Target, w["TYPE"], w["DIGEST"])
		}
		if !reflect.DeepEqual(orEmpty(im.Labels), labelSet(w["LABELS"])) {
			t.Errorf("image %s labels %v, want %s", im.Name, im.Labels, w["LABELS"])
		}
		// ctr prints the summed size in IEC units with one decimal.
		if got := fmt.Sprintf("%.1f MiB", float64(im.Size)/(1<<20)); got != w["SIZE"] {
			t.Errorf("image %s size %d = %s, want %s", im.Name, im.Size, got, w["SIZE"])
		}
		if im.CreatedAt.IsZero() || im.Target.Size <= 0 || im.Config == "" || len(im.DiffIDs) == 0 {
			t.Errorf("image %s: incomplete %+v", im.Name, im)
		}
	}
}

func checkContent(t *testing.T, s *State, ns string) {
	want := table(t, "expected/containerd/"+ns+"-content.txt")
	got := map[string]Blob{}
	for _, b := range s.Content {
		if b.Namespace == ns {
			got[b.Digest] = b
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d blobs, want %d", len(got), len(want))
	}
	for _, w := range want {
		b, ok := got[w["DIGEST"]]
		if !ok {
			t.Errorf("blob %s missing", w["DIGEST"])
			continue
		}
		if humanSize(b.Size) != w["SIZE"] {
			t.Errorf("blob %s size %d (%s), want %s", b.Digest, b.Size, humanSize(b.Size), w["SIZE"])
		}
		if !reflect.DeepEqual(orEmpty(b.Labels), labelSet(w["LABELS"])) {
			t.Errorf("blob %s labels %v, want %s", b.Digest, b.Labels, w["LABELS"])
		}
		if !b.OnDisk || b.DiskSize != b.Size || b.CreatedAt.IsZero() {
			t.Errorf("blob %s: on disk %v size %d/%d created %v", b.Digest, b.OnDisk, b.DiskSize, b.Size, b.CreatedAt)
		}
	}
}

func checkSnapshots(t *testing.T, s *State, ns, sn string) {
	want := table(t, fmt.Sprintf("expected/containerd/%s-snapshots-%s.txt", ns, sn))
	got := map[string]Snapshot{}
	for _, x := range s.Snapshots {
		if x.Namespace == ns && x.Snapshotter == sn {
			got[x.Key] = x
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d snapshots, want %d", sn, len(got), len(want))
	}
	for _, w := range want {
		x, ok := got[w["KEY"]]
		if !ok {
			t.Errorf("%s snapshot %s missing", sn, w["KEY"])
			continue
		}
		if x.Parent != w["PARENT"] || !strings.EqualFold(x.Kind.String(), w["KIND"]) {
			t.Errorf("%s snapshot %s: parent %q kind %q, want %q %q", sn, x.Key, x.Parent, x.Kind, w["PARENT"], w["KIND"])
		}
		if x.Orphan || x.Missing || x.ID == 0 || x.Path == "" || x.CreatedAt.IsZero() {
			t.Errorf("%s snapshot %s incomplete: %+v", sn, x.Key, x)
		}
		if x.Kind == "committed" && (x.Size <= 0 || x.Inodes <= 0) {
			t.Errorf("%s snapshot %s: size %d inodes %d", sn, x.Key, x.Size, x.Inodes)
		}
	}
}

// checkChains compares container layer chains with manifests/index.tsv, the
// overlay lowerdir/upperdir order containerd mounted.
func checkChains(t *testing.T, s *State) {
	f, err := os.Open(expectedPath(t, "manifests/index.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	n := 0
	for sc.Scan() {
		fields := strings.Split(sc.Text(), "\t")
		ns, id, sn, dirs := fields[0], fields[1], fields[2], strings.Split(fields[3], ":")
		c := s.container(ns, id)
		if c == nil {
			t.Errorf("index.tsv container %s/%s not found", ns, id)
			continue
		}
		n++
		var got []string
		for _, l := range c.Layers {
			got = append(got, "/"+l.Path)
			if l.Snapshotter != sn || l.Note != "" || l.Streamed || l.Missing {
				t.Errorf("%s/%s layer %+v", ns, id, l)
			}
		}
		if !slices.Equal(got, dirs) {
			t.Errorf("%s/%s layers\n got %q\nwant %q", ns, id, got, dirs)
		}
		if c.Layers[0].SnapshotKey != c.SnapshotKey || c.Layers[0].Kind != "active" {
			t.Errorf("%s/%s top layer %+v", ns, id, c.Layers[0])
		}
	}
	if n != 8 {
		t.Errorf("checked %d chains, want 8", n)
	}
}

// TestCOSNodeCRI compares the CRI view. crictl's expected/cri was captured
// while the pods ran, so PIDs and running states come from the live copy
// of the disk; the clean copy has the states after shutdown.
func TestCOSNodeCRI(t *testing.T) {
	live := loadCOS(t, "cos-node-live")
	clean := loadCOS(t, "cos-node")
	files, _ := filepath.Glob(expectedPath(t, "expected/cri/container-*.json"))
	if len(files) != 3 {
		t.Fatalf("%d expected CRI containers", len(files))
	}
	for _, f := range files {
		var w struct {
			Info struct {
				SandboxID string `json:"sandboxID"`
				Pid       int    `json:"pid"`
			} `json:"info"`
			Status struct {
				ID       string                `json:"id"`
				Metadata struct{ Name string } `json:"metadata"`
				State    int                   `json:"state"`
				Started  int64                 `json:"started_at"`
				Finished int64                 `json:"finished_at"`
				ExitCode int32                 `json:"exit_code"`
				Reason   string                `json:"reason"`
				LogPath  string                `json:"log_path"`
				Labels   map[string]string
				Mounts   []Mount `json:"mounts"`
			} `json:"status"`
		}
		b, _ := os.ReadFile(f)
		if err := json.Unmarshal(b, &w); err != nil {
			t.Fatal(err)
		}
		c := live.container("k8s.io", w.Status.ID)
		if c == nil {
			t.Errorf("live: container %s missing", w.Status.ID)
			continue
		}
		wantState := map[int]Status{0: StatusCreated, 1: StatusRunning, 2: StatusExited, 3: StatusUnknown}[w.Status.State]
		if c.Status != wantState || c.PID != w.Info.Pid {
			t.Errorf("live %s: status %s pid %d, want %s %d", c.ContainerName, c.Status, c.PID, wantState, w.Info.Pid)
		}
		if !c.StartedAt.Equal(unixNano(w.Status.Started)) || !c.FinishedAt.Equal(unixNano(w.Status.Finished)) {
			t.Errorf("live %s: started %v finished %v", c.ContainerName, c.StartedAt, c.FinishedAt)
		}
		if wantState == StatusExited && (c.ExitCode == nil || *c.ExitCode != w.Status.ExitCode || c.Reason != w.Status.Reason) {
			t.Errorf("live %s: exit %v reason %q, want %d %q", c.ContainerName, c.ExitCode, c.Reason, w.Status.ExitCode, w.Status.Reason)
		}
		if c.ContainerName != w.Status.Metadata.Name || c.SandboxID != w.Info.SandboxID || c.LogPath != w.Status.LogPath {
			t.Errorf("live %s: name %q sandbox %q log %q", c.ID, c.ContainerName, c.SandboxID, c.LogPath)
		}
		if !reflect.DeepEqual(c.Mounts, w.Status.Mounts) {
			t.Errorf("live %s: mounts %+v, want %+v", c.ContainerName, c.Mounts, w.Status.Mounts)
		}
		if c.PodName != w.Status.Labels[labelPodName] || c.PodNamespace != w.Status.Labels[labelPodNamespace] || c.PodUID != w.Status.Labels[labelPodUID] {
			t.Errorf("live %s: pod %s/%s %s", c.ContainerName, c.PodNamespace, c.PodName, c.PodUID)
		}
		if c.TaskDir == "" && wantState == StatusRunning {
			t.Errorf("live %s: no task dir", c.ContainerName)
		}
		// After the clean shutdown every container has exited: the
		// runners were killed (137), report kept its own exit code 3.
		cc := clean.container("k8s.io", w.Status.ID)
		wantExit := int32(137)
		if c.ContainerName == "report" {
			wantExit = 3
		}
		if cc.Status != StatusExited || cc.ExitCode == nil || *cc.ExitCode != wantExit || cc.PID != 0 || cc.TaskDir != "" {
			t.Errorf("clean %s: status %s exit %v pid %d task %q", cc.ContainerName, cc.Status, cc.ExitCode, cc.PID, cc.TaskDir)
		}
	}

	sandboxes, _ := filepath.Glob(expectedPath(t, "expected/cri/sandbox-*.json"))
	if len(sandboxes) != 2 {
		t.Fatalf("%d expected sandboxes", len(sandboxes))
	}
	for _, f := range sandboxes {
		var w struct {
			Status struct {
				ID       string `json:"id"`
				Metadata struct {
					Name, UID, Namespace string
				} `json:"metadata"`
				Network struct{ IP string } `json:"network"`
			} `json:"status"`
		}
		b, _ := os.ReadFile(f)
		if err := json.Unmarshal(b, &w); err != nil {
			t.Fatal(err)
		}
		for _, s := range []*State{live, clean} {
			c := s.container("k8s.io", w.Status.ID)
			if c == nil || c.Kind != "sandbox" {
				t.Errorf("sandbox %s missing", w.Status.ID)
				continue
			}
			m := w.Status.Metadata
			if c.PodName != m.Name || c.PodNamespace != m.Namespace || c.PodUID != m.UID || c.PodIP != w.Status.Network.IP {
				t.Errorf("sandbox %s: %s/%s %s %s", c.ID, c.PodNamespace, c.PodName, c.PodUID, c.PodIP)
			}
			if c.Sandbox == nil || c.Sandbox.Hostname != m.Name || c.Sandbox.NetNSPath == "" || len(c.Sandbox.CNIResult) == 0 {
				t.Errorf("sandbox %s info %+v", c.ID, c.Sandbox)
			}
		}
	}
	// Containers inherit their pod's IP.
	if c := clean.container("k8s.io", "350ec3c288e914e6f883e41d23ea437e9ebee7c3cb9842efb4fd0806e4ae65b7"); c.PodIP != "10.8.0.2" {
		t.Errorf("frontend pod ip %q", c.PodIP)
	}
}
