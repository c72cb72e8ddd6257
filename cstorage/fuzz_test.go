package cstorage

import (
	"encoding/json"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

const (
	idA = "ae7feb67b79da5a9bdfdcc90b9715df6dc7cfff7b0db6f9de30da4ccb24ad2af"
	idB = "6b98a612416d8be41d4d2942fe16103cf59ef1da415975b217d6eac91d3eb319"
	idC = "3e68275ef8a855b46a8130c9edd824266910fb280b74876386fc0b8971c0165e"
)

// storeFS is a store whose layers.json and containers.json are given, with
// two layer directories, their link files and l/ links, and a lower file.
func storeFS(layers, containers, lower, link string) fstest.MapFS {
	dir := fs.ModeDir | 0o755
	return fstest.MapFS{
		"s/overlay-layers/layers.json":         {Data: []byte(layers)},
		"s/overlay-containers/containers.json": {Data: []byte(containers)},
		"s/overlay/" + idA + "/diff":           {Mode: dir},
		"s/overlay/" + idA + "/link":           {Data: []byte("AAAA")},
		"s/overlay/" + idB + "/diff":           {Mode: dir},
		"s/overlay/" + idB + "/link":           {Data: []byte("BBBB")},
		"s/overlay/" + idB + "/lower":          {Data: []byte(lower)},
		"s/overlay/l/AAAA":                     {Mode: fs.ModeSymlink | 0o777, Data: []byte(link)},
		"s/overlay/l/BBBB":                     {Mode: fs.ModeSymlink | 0o777, Data: []byte("../" + idB + "/diff")},
		"s/overlay-containers/" + idC:          {Mode: dir},
	}
}

// FuzzStore loads a store from arbitrary layers.json, containers.json, a
// lower file and an l/ link target: never a panic or a hang; every chain
// directory is inside the store's overlay directory and names a layer by
// its id; records with ids that are not ids are never kept.
func FuzzStore(f *testing.F) {
	layers := `[{"id":"` + idA + `","diff-size":3},{"id":"` + idB + `","parent":"` + idA + `"}]`
	ctrs := `[{"id":"` + idC + `","names":["x"],"layer":"` + idB + `","metadata":"{\"image-name\":\"i\"}"}]`
	f.Add(layers, ctrs, "l/AAAA", "../"+idA+"/diff")
	f.Add(`[{"id":"`+idB+`","parent":"`+idB+`"}]`, ctrs, "l/AAAA", "../"+idA+"/diff")
	f.Add(`[]`, ctrs, "l/AAAA:l/BBBB:l/../x", "../../../etc")
	f.Add(`null`, `[{"id":"`+idC+`","layer":"../../etc"}]`, "", "/")
	f.Add(`[{"id":"../x"}`, `{`, "l/", "..")
	f.Fuzz(func(t *testing.T, layers, ctrs, lower, link string) {
		start := time.Now()
		s, err := Load(storeFS(layers, ctrs, lower, link), StoreRef{Root: "s", Kind: KindRootful})
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("took %v", d)
		}
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		for _, l := range s.Layers {
			if !ValidID(l.ID) {
				t.Fatalf("kept layer %q", l.ID)
			}
		}
		for _, c := range s.Containers {
			if !ValidID(c.ID) {
				t.Fatalf("kept container %q", c.ID)
			}
			for _, l := range c.Chain {
				if !ValidID(l.ID) || l.Dir != "s/overlay/"+l.ID+"/diff" {
					t.Fatalf("chain layer %+v", l)
				}
			}
		}
		if _, err := json.Marshal(s); err != nil {
			t.Fatalf("does not encode: %v", err)
		}
	})
}

// FuzzCRIOConfig feeds arbitrary bytes to the config.json reader.
func FuzzCRIOConfig(f *testing.F) {
	f.Add([]byte(`{"annotations":{"io.container.manager":"cri-o","io.kubernetes.cri-o.ContainerType":"container","io.kubernetes.pod.name":"p","io.kubernetes.cri-o.Volumes":"[{\"container_path\":\"/d\",\"host_path\":\"/var/lib/kubelet/pods/u/volumes/kubernetes.io~empty-dir/d\"}]","io.kubernetes.cri-o.Labels":"{\"a\":\"b\"}"}}`))
	f.Add([]byte(`{"annotations":{"io.container.manager":"libpod","io.kubernetes.cri-o.ContainerType":"container"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCRIOConfig(data)
		if err != nil || c == nil {
			return
		}
		if _, err := json.Marshal(c); err != nil {
			t.Fatalf("does not encode: %v", err)
		}
	})
}

// Hostile stores, each refused or read with the damage reported: a
// parent loop, an id with a separator, a lower file with "..", a link
// that climbs out, a store file past its size limit.
func TestHostileStores(t *testing.T) {
	ctrs := `[{"id":"` + idC + `","layer":"` + idB + `"}]`
	for _, tt := range []struct {
		name, layers, ctrs, lower, link string
		want                            string // in the container's chain error, or Load's error
	}{
		{"loop", `[{"id":"` + idB + `","parent":"` + idA + `"},{"id":"` + idA + `","parent":"` + idB + `"}]`, ctrs, "", "", "loop"},
		{"self parent", `[{"id":"` + idB + `","parent":"` + idB + `"}]`, ctrs, "", "", "loop"},
		{"container layer with a slash", `[]`, `[{"id":"` + idC + `","layer":"../../../../etc/passwd"}]`, "", "", "not 64 hex digits"},
		{"lower with dotdot", `[]`, ctrs, "l/../../etc", "", "is not l/<link>"},
		{"lower with slash", `[]`, ctrs, "l/AAAA/../x", "", "is not l/<link>"},
		{"link that climbs", `[]`, ctrs, "l/CCCC", "", "link CCCC"},
		{"link target escapes", `[{"id":"x"}]`, ctrs, "l/AAAA", "../../../../etc/diff", ""},
		{"not an array", `{"id":"x"}`, ctrs, "", "", "not a JSON array"},
		{"unterminated", `[{"id":"` + idA + `"}`, ctrs, "", "", "unterminated"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Load(storeFS(tt.layers, tt.ctrs, tt.lower, tt.link), StoreRef{Root: "s", Kind: KindRootful})
			if err != nil {
				if tt.want == "" || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("Load: %v", err)
				}
				return
			}
			var got string
			for _, c := range s.Containers {
				got += c.ChainError
				for _, l := range c.Chain {
					if strings.Contains(l.Dir, "..") || !strings.HasPrefix(l.Dir, "s/overlay/") {
						t.Errorf("chain dir %s", l.Dir)
					}
				}
			}
			got += strings.Join(s.Warnings, "; ")
			if tt.want != "" && !strings.Contains(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
