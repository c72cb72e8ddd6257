package node

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// Podman's images as podman images -a --format json printed them when the
// fixture was made (expected/*/images.json): every image listed once per
// name, in its store's namespace, with podman's size, creation time and
// labels; the build step podman hides is hidden.
func TestPodmanImages(t *testing.T) {
	n, dir := cstorageFixture(t)
	got, err := n.Images()
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		ns, name, id, created, labels string
		size                          int64
	}
	var have []row
	for _, i := range got {
		if i.Engine != EnginePodman || ImageRuntime(&i) != "podman" {
			t.Errorf("%s: engine %q", i.Name, i.Engine)
		}
		have = append(have, row{i.Namespace, i.Name, strings.TrimPrefix(i.Config, "sha256:"), i.CreatedAt.UTC().Format("2006-01-02T15:04:05"), labelString(i.Labels), i.Size})
	}
	var want []row
	for _, store := range []struct{ ns, dir string }{{"podman", "rootful"}, {"podman@podrunner", "rootless"}} {
		b, err := os.ReadFile(filepath.Join(dir, "expected", store.dir, "images.json"))
		if err != nil {
			t.Fatal(err)
		}
		var imgs []struct {
			ID      string `json:"Id"`
			Names   []string
			Size    int64
			Created int64
			Labels  map[string]string
		}
		if err := json.Unmarshal(b, &imgs); err != nil {
			t.Fatal(err)
		}
		for _, i := range imgs {
			for _, name := range i.Names {
				want = append(want, row{store.ns, name, i.ID, unixUTC(i.Created), labelString(i.Labels), i.Size})
			}
		}
	}
	less := func(r []row) func(i, j int) bool {
		return func(i, j int) bool { return r[i].ns+r[i].name < r[j].ns+r[j].name }
	}
	sort.Slice(have, less(have))
	sort.Slice(want, less(want))
	if len(have) != len(want) || len(want) != 4 {
		t.Fatalf("images:\n%v\nwant\n%v", have, want)
	}
	for i := range want {
		if have[i] != want[i] {
			t.Errorf("image %d: %+v, want %+v", i, have[i], want[i])
		}
	}
}

func labelString(m map[string]string) string {
	var kv []string
	for k, v := range m {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}

func unixUTC(s int64) string { return time.Unix(s, 0).UTC().Format("2006-01-02T15:04:05") }
