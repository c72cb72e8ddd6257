package containerd

import (
	"io/fs"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// Facts from ../shared/realworld/README.md and the files themselves.
func TestRealWorldMetaDBs(t *testing.T) {
	tests := []struct {
		file       string
		schema     int64
		containers map[string][]string // namespace -> ids
		images     map[string]int
		blobs      map[string]int
		snapshots  int
	}{
		{
			file:   "container-explorer/dfirlabs/meta.db",
			schema: 3,
			containers: map[string][]string{
				"default": {"nginx-specimen"}, "dfirlabs": {"redis-specimen"},
			},
			images: map[string]int{"default": 1, "dfirlabs": 1},
			// The README says two blobs each; the database holds an index,
			// a manifest, a config and six layers per image.
			blobs:     map[string]int{"default": 9, "dfirlabs": 9},
			snapshots: 14,
		},
		{
			file:       "osv-scalibr/meta_linux_test_single.db",
			containers: map[string][]string{"k8s.io": {"b47fb93b51d091e16ae145b8b1438e5c011fd68cd65305fcd42fd83a13da7a8c"}},
			images:     map[string]int{"k8s.io": 1},
		},
		{
			file:       "osv-scalibr/meta_linux_gcfs.db",
			containers: map[string][]string{"k8s.io": {"b78cb75dd155d2c76a4b9957b6aad88448966914c80c88cb6dc9b746fd13484f"}},
			images:     map[string]int{"k8s.io": 2},
		},
		{
			file:       "osv-scalibr/meta_windows.db",
			schema:     3,
			containers: map[string][]string{"default": {"test_pod", "test_pod2"}},
			images:     map[string]int{"default": 2},
			blobs:      map[string]int{"default": 9},
			snapshots:  5,
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			m, err := ReadMetaDB(realworld(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Warnings) > 0 {
				t.Errorf("warnings: %q", m.Warnings)
			}
			if m.Schema != tt.schema {
				t.Errorf("schema %d, want %d", m.Schema, tt.schema)
			}
			got := map[string][]string{}
			for _, c := range m.Containers {
				got[c.Namespace] = append(got[c.Namespace], c.ID)
				if c.Image == "" || c.Snapshotter == "" || c.SnapshotKey == "" {
					t.Errorf("container %s incomplete: %+v", c.ID, c)
				}
			}
			if !mapsEqual(got, tt.containers) {
				t.Errorf("containers %v, want %v", got, tt.containers)
			}
			count := func(f func(yield func(string) bool)) map[string]int {
				n := map[string]int{}
				for ns := range f {
					n[ns]++
				}
				return n
			}
			imgs := count(func(y func(string) bool) {
				for _, i := range m.Images {
					if !y(i.Namespace) {
						return
					}
				}
			})
			blobs := count(func(y func(string) bool) {
				for _, b := range m.Content {
					if !y(b.Namespace) {
						return
					}
				}
			})
			if !mapsEqualInt(imgs, tt.images) || !mapsEqualInt(blobs, tt.blobs) || len(m.Snapshots) != tt.snapshots {
				t.Errorf("images %v blobs %v snapshots %d, want %v %v %d", imgs, blobs, len(m.Snapshots), tt.images, tt.blobs, tt.snapshots)
			}
		})
	}
}

func mapsEqual(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

func mapsEqualInt(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestRealWorldSnapshotterDBs(t *testing.T) {
	tests := []struct {
		file                          string
		snapshots, parents            int
		committed, active             int
		multiByteIDs, nonContiguousID bool
	}{
		{file: "container-explorer/dfirlabs/metadata.db", snapshots: 14, parents: 12, committed: 12, active: 2},
		{file: "container-explorer/gke/node/metadata.db", snapshots: 138, parents: 124, committed: 119, active: 19, multiByteIDs: true},
		{file: "container-explorer/gke/node2/metadata.db", snapshots: 137, parents: 123, multiByteIDs: true},
		{file: "container-explorer/gke/node3/metadata.db", snapshots: 145, parents: 131, multiByteIDs: true},
		{file: "osv-scalibr/metadata_linux_test.db", snapshots: 31, committed: 22, active: 9},
		{file: "osv-scalibr/metadata_linux_test_long_lived.db", snapshots: 445, committed: 410, active: 35, multiByteIDs: true, nonContiguousID: true},
		{file: "osv-scalibr/metadata_gcfs.db", snapshots: 1, active: 1, multiByteIDs: true},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			s, err := ReadSnapshotterDB(realworld(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Warnings) > 0 {
				t.Errorf("warnings: %q", s.Warnings)
			}
			if len(s.Snapshots) != tt.snapshots {
				t.Errorf("%d snapshots, want %d", len(s.Snapshots), tt.snapshots)
			}
			if tt.parents != 0 && len(s.Parents) != tt.parents {
				t.Errorf("%d parent links, want %d", len(s.Parents), tt.parents)
			}
			kinds := map[string]int{}
			var maxID uint64
			sized := 0
			for _, r := range s.Snapshots {
				kinds[r.Kind.String()]++
				maxID = max(maxID, r.ID)
				if r.ID == 0 || r.CreatedAt.IsZero() {
					t.Errorf("%s: id %d created %v", r.Name, r.ID, r.CreatedAt)
				}
				if r.Kind == "committed" && r.Size > 0 {
					sized++
				}
			}
			if tt.committed+tt.active != 0 && (kinds["committed"] != tt.committed || kinds["active"] != tt.active) {
				t.Errorf("kinds %v, want %d committed %d active", kinds, tt.committed, tt.active)
			}
			if sized < kinds["committed"]*3/4 {
				t.Errorf("only %d of %d committed snapshots have a size", sized, kinds["committed"])
			}
			if tt.multiByteIDs != (maxID > 127) {
				t.Errorf("max id %d", maxID)
			}
			if tt.nonContiguousID && maxID == uint64(len(s.Snapshots)) {
				t.Errorf("ids look contiguous (max %d)", maxID)
			}
			// Every parent link names a snapshot whose parent has that id.
			for _, p := range s.Parents {
				c := s.Snapshots[p.Child]
				if c == nil || c.ID != p.ChildID || s.Snapshots[c.Parent] == nil || s.Snapshots[c.Parent].ID != p.ParentID {
					t.Errorf("parent link %+v does not match the snapshots", p)
				}
			}
		})
	}
}

func TestCRIStatusFiles(t *testing.T) {
	for _, tt := range []struct {
		file  string
		pid   uint32
		state Status
	}{
		{"osv-scalibr/status", 3530, StatusRunning},
		{"osv-scalibr/status_gcfs", 23047, StatusRunning},
		{"osv-scalibr/status_long_lived", 2357250, StatusRunning},
	} {
		st, err := ParseCRIStatus(realworld(t, tt.file))
		if err != nil {
			t.Errorf("%s: %v", tt.file, err)
			continue
		}
		if st.Pid != tt.pid || st.State() != tt.state {
			t.Errorf("%s: pid %d state %s", tt.file, st.Pid, st.State())
		}
	}
}

// rootFS lays real-world files out as a containerd root in memory.
func rootFS(t *testing.T, files map[string]string) fstest.MapFS {
	m := fstest.MapFS{}
	for dst, src := range files {
		m["var/lib/containerd/"+dst] = &fstest.MapFile{Data: realworld(t, src), Mode: 0o600}
	}
	return m
}

func TestRealWorldRoots(t *testing.T) {
	t.Run("dfirlabs", func(t *testing.T) {
		s := mustLoad(t, rootFS(t, map[string]string{
			MetaDBPath: "container-explorer/dfirlabs/meta.db",
			"io.containerd.snapshotter.v1.overlayfs/metadata.db": "container-explorer/dfirlabs/metadata.db",
		}))
		if len(s.Snapshots) != 14 {
			t.Errorf("%d snapshots", len(s.Snapshots))
		}
		for _, sn := range s.Snapshots {
			if sn.Orphan || sn.Missing || sn.ID == 0 {
				t.Errorf("snapshot not joined: %+v", sn)
			}
		}
		for _, c := range s.Containers {
			// nginx and redis images have 6 layers each, plus the writable one.
			if len(c.Layers) != 7 || c.LayersError != "" || c.Layers[0].Kind != "active" || c.Layers[6].Kind != "committed" {
				t.Errorf("%s: %d layers, %s", c.ID, len(c.Layers), c.LayersError)
			}
		}
	})
	t.Run("eks", func(t *testing.T) {
		id := "b47fb93b51d091e16ae145b8b1438e5c011fd68cd65305fcd42fd83a13da7a8c"
		s := mustLoad(t, rootFS(t, map[string]string{
			MetaDBPath: "osv-scalibr/meta_linux_test_single.db",
			"io.containerd.snapshotter.v1.overlayfs/metadata.db": "osv-scalibr/metadata_linux_test.db",
			criDir + "/containers/" + id + "/status":             "osv-scalibr/status",
		}))
		c := s.container("k8s.io", id)
		if c.Status != StatusRunning || c.PID != 3530 {
			t.Errorf("status %s pid %d", c.Status, c.PID)
		}
		// meta.db has no snapshots bucket: the chain is found by name in
		// the snapshotter's metadata.db.
		if c.LayersError != "" || len(c.Layers) < 2 || c.Layers[0].Name != "k8s.io/24/"+id {
			t.Errorf("layers %+v (%s)", c.Layers, c.LayersError)
		}
		if n := len(s.Snapshots); n != 31 {
			t.Errorf("%d snapshots (all orphans of the snapshotter)", n)
		}
	})
	t.Run("gcfs", func(t *testing.T) {
		id := "b78cb75dd155d2c76a4b9957b6aad88448966914c80c88cb6dc9b746fd13484f"
		s := mustLoad(t, rootFS(t, map[string]string{
			MetaDBPath: "osv-scalibr/meta_linux_gcfs.db",
			"io.containerd.snapshotter.v1.gcfs/snapshotter/metadata.db": "osv-scalibr/metadata_gcfs.db",
			criDir + "/containers/" + id + "/status":                    "osv-scalibr/status_gcfs",
		}))
		c := s.container("k8s.io", id)
		if c.Snapshotter != "gcfs" || c.SandboxID != "3900c72dd65f6da3e0422239a634cfb7a9da72c4fadb3d667ad6c81c59b5e9fa" || c.ContainerName != "nginx-test-pod" || c.PID != 23047 {
			t.Errorf("container %+v", c.Brief())
		}
		if c.LayersError != "" || len(c.Layers) != 2 {
			t.Fatalf("layers %+v (%s)", c.Layers, c.LayersError)
		}
		top, below := c.Layers[0], c.Layers[1]
		if top.ID != 404 || top.Kind != "active" || top.Streamed || top.Path != "var/lib/containerd/io.containerd.snapshotter.v1.gcfs/snapshotter/snapshots/404/fs" {
			t.Errorf("top %+v", top)
		}
		if !below.Streamed || !below.Missing || below.Path != "" || below.SnapshotKey != "sha256:13553ab839fc3f04eb110571316ce86c00dc9a7dbd6e0960e577c7d0e94edb37" {
			t.Errorf("streamed layer %+v", below)
		}
	})
	t.Run("windows", func(t *testing.T) {
		s := mustLoad(t, rootFS(t, map[string]string{MetaDBPath: "osv-scalibr/meta_windows.db"}))
		for _, c := range s.Containers {
			if c.Snapshotter != "windows" || !strings.Contains(c.LayersError, "windows") || len(c.Spec) == 0 {
				t.Errorf("%s: %+v", c.ID, c.Brief())
			}
		}
		if len(s.Snapshots) != 5 || !s.Snapshots[0].Missing {
			t.Errorf("snapshots %+v", s.Snapshots)
		}
	})
}

func mustLoad(t *testing.T, fsys fstest.MapFS) *State {
	t.Helper()
	root, err := FindRoot(fsys, "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Load(fsys, root)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestGCFSCachedLayer puts the real gcfs databases in a layout where the
// writable snapshot's fs is a symlink into the snapshotter's layers/
// directory, as container-explorer resolves cached gcfs layers. The layout
// is synthetic (no real node with a layer cache was available); the
// databases are real.
func TestGCFSCachedLayer(t *testing.T) {
	const gcfs = "var/lib/containerd/io.containerd.snapshotter.v1.gcfs/snapshotter/"
	fsys := rootFS(t, map[string]string{
		MetaDBPath: "osv-scalibr/meta_linux_gcfs.db",
		"io.containerd.snapshotter.v1.gcfs/snapshotter/metadata.db": "osv-scalibr/metadata_gcfs.db",
	})
	fsys[gcfs+"snapshots/404/fs"] = &fstest.MapFile{Mode: fs.ModeSymlink, Data: []byte("/var/lib/containerd/io.containerd.snapshotter.v1.gcfs/snapshotter/layers/sha256=0123")}
	fsys[gcfs+"layers/sha256=0123/etc/passwd"] = &fstest.MapFile{Data: []byte("root:x:0:0::/root:/bin/sh\n")}
	s := mustLoad(t, fsys)
	c := s.Containers[0]
	if len(c.Layers) != 2 || !c.Layers[0].Cached || c.Layers[0].Path != gcfs+"layers/sha256=0123" || !c.Layers[1].Streamed {
		t.Errorf("layers %+v", c.Layers)
	}
	// A symlink to a name not in the cache is reported, never followed.
	fsys[gcfs+"snapshots/404/fs"].Data = []byte("../../../../../../etc")
	s = mustLoad(t, fsys)
	if l := s.Containers[0].Layers[0]; l.Cached || l.Path != "" || !strings.Contains(l.Note, "not in the layer cache") {
		t.Errorf("dangling cache link: %+v", l)
	}
}
