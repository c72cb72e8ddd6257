package cstorage

import (
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctrlift/ctrlift/image/ext4"
	"github.com/ctrlift/ctrlift/internal/testutil"
)

// The fixture disk's ext4 root starts at sector 2048 (generate.sh).
const fixtureOffset = 2048 * 512

func fixtureDir(t testing.TB) string {
	return filepath.Join(testutil.RepoRoot(t), "testdata", "images", "cstorage")
}

// podmanNode opens the ext4 root of testdata/images/cstorage's disk.
func podmanNode(t testing.TB) fs.FS {
	t.Helper()
	return podmanNodeAt(t, filepath.Join(fixtureDir(t), "podman-node.raw.zst"))
}

// podmanNodeAt opens the ext4 root of a disk laid out as generate.sh's.
func podmanNodeAt(t testing.TB, disk string) fs.FS {
	t.Helper()
	raw := testutil.Unzstd(t, disk)
	f, err := os.Open(raw)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	sr := io.NewSectionReader(f, fixtureOffset, st.Size()-fixtureOffset-34*512)
	fsys, err := ext4.NewReader(sr, sr.Size())
	if err != nil {
		t.Fatal(err)
	}
	return fsys
}

// inspected is the part of `podman container inspect` the tests compare.
type inspected struct {
	ID    string `json:"Id"`
	Name  string
	Pod   string
	State struct {
		Status   string
		ExitCode int32
	}
	IsInfra     bool
	ImageName   string
	GraphDriver struct {
		Data struct{ LowerDir, UpperDir string }
	}
}

func readInspect(t *testing.T, dir, store string) []inspected {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "expected", store, "inspect.json"))
	if err != nil {
		t.Fatal(err)
	}
	var out []inspected
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// Both stores on the disk are found; every container podman inspected is
// read with its name, pod, state, exit code and the layer chain podman
// mounted.
func TestPodmanFixture(t *testing.T) {
	checkPodmanFixture(t, fixtureDir(t), "podman-node.raw.zst", "boltdb")
}

// The same for Podman 5's stores and their SQLite db.sql.
func TestPodman5Fixture(t *testing.T) {
	checkPodmanFixture(t, filepath.Join(fixtureDir(t), "podman5"), "podman5-node.raw.zst", "sqlite")
}

func checkPodmanFixture(t *testing.T, dir, disk, backend string) {
	fsys := podmanNodeAt(t, filepath.Join(dir, disk))
	refs, err := FindStores(fsys, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []StoreRef{
		{Root: "var/lib/containers/storage", Kind: KindRootful},
		{Root: "home/podrunner/.local/share/containers/storage", Kind: KindRootless, User: "podrunner", Home: "home/podrunner"},
	}
	if len(refs) != len(want) || refs[0] != want[0] || refs[1] != want[1] {
		t.Fatalf("stores %+v", refs)
	}
	// A store given explicitly: a rootless one is known by its path.
	if given, err := FindStores(fsys, "/home/podrunner/.local/share/containers/storage/"); err != nil || len(given) != 1 || given[0] != want[1] {
		t.Errorf("given rootless store: %+v, %v", given, err)
	}
	if given, err := FindStores(fsys, "var/lib/containers/storage"); err != nil || len(given) != 1 || given[0].Kind != KindGiven {
		t.Errorf("given store: %+v, %v", given, err)
	}
	if _, err := FindStores(fsys, "var/lib"); err == nil {
		t.Errorf("var/lib taken for a store")
	}
	for i, name := range []string{"rootful", "rootless"} {
		t.Run(name, func(t *testing.T) {
			s, err := Load(fsys, refs[i])
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Warnings) > 0 {
				t.Errorf("warnings: %q", s.Warnings)
			}
			if s.MountProgram {
				t.Errorf("mount program recorded")
			}
			if s.Podman == nil || s.Podman.Backend != backend {
				t.Fatalf("podman state %+v", s.Podman)
			}
			exp := readInspect(t, dir, name)
			if len(exp) != len(s.Containers) {
				t.Errorf("%d containers, podman inspected %d", len(s.Containers), len(exp))
			}
			byID := map[string]*Container{}
			for i := range s.Containers {
				byID[s.Containers[i].ID] = &s.Containers[i]
			}
			for _, e := range exp {
				c := byID[e.ID]
				if c == nil {
					t.Errorf("%s (%s) not read", e.ID, e.Name)
					continue
				}
				pc := s.Podman.Containers[e.ID]
				if pc == nil || pc.Name != e.Name || len(c.Names) == 0 || c.Names[0] != e.Name || pc.PodID != e.Pod || pc.Infra != e.IsInfra {
					t.Errorf("%s: names %v, podman %+v; want %s pod %q", e.ID, c.Names, pc, e.Name, e.Pod)
					continue
				}
				if pc.Status.String() != e.State.Status {
					t.Errorf("%s: status %s, podman says %s", e.Name, pc.Status, e.State.Status)
				}
				if e.State.Status == "exited" && (pc.ExitCode == nil || *pc.ExitCode != e.State.ExitCode) {
					t.Errorf("%s: exit code %v, podman says %d", e.Name, pc.ExitCode, e.State.ExitCode)
				}
				if e.State.Status == "created" && pc.ExitCode != nil {
					t.Errorf("%s: never started, exit code %d", e.Name, *pc.ExitCode)
				}
				var got []string
				for _, l := range c.Chain {
					got = append(got, "/"+l.Dir)
				}
				mounted := e.GraphDriver.Data.UpperDir
				if e.GraphDriver.Data.LowerDir != "" {
					mounted += ":" + e.GraphDriver.Data.LowerDir
				}
				if strings.Join(got, ":") != mounted || c.ChainError != "" {
					t.Errorf("%s: chain %v (%s)\n want %s", e.Name, got, c.ChainError, mounted)
				}
				if c.CRIO != nil || c.ConfigError != "" {
					t.Errorf("%s: a podman container read as CRI-O's: %v %s", e.Name, c.CRIO != nil, c.ConfigError)
				}
			}
			if name == "rootless" {
				m := s.IDMap
				if m == nil || !m.Complete || m.User != "podrunner" || m.UID != 2001 || m.SubUID != 200000 || m.SubUIDs != 65536 || m.HomeUID != 2001 {
					t.Errorf("id map %+v", m)
				}
			}
		})
	}
}

// The lower file and l/ links give the same chain as layers.json's parent
// links, for every container of the fixture.
func TestLowerChainMatches(t *testing.T) {
	fsys := podmanNode(t)
	refs, err := FindStores(fsys, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range refs {
		s, err := Load(fsys, ref)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range s.Containers {
			got, err := s.lowerChain(fsys, ref.Root+"/overlay", c.LayerID)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.Chain) {
				t.Fatalf("%s: lower chain %v, layers.json %v", c.ID, got, c.Chain)
			}
			for i := range got {
				if got[i] != c.Chain[i] {
					t.Errorf("%s: layer %d: %v vs %v", c.ID, i, got[i], c.Chain[i])
				}
			}
		}
	}
}
