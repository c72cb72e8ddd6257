package docker

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzConfig feeds arbitrary bytes to the config.v2.json decoder and
// encodes the result as the listings do: never a panic, a hang or an
// encoding failure; an accepted config always has a Docker id.
func FuzzConfig(f *testing.F) {
	f.Add([]byte(`{"ID":"8e8b7f23eb7cbd4dfe7e91646ddd0e0f524218e25d50113559f078dfb2690206","Name":"/x","State":{"Running":true,"Pid":1,"StartedAt":"2018-05-16T10:51:39.62598903Z"},"Config":{"Image":"busybox","Labels":{"a":"b"}},"MountPoints":{"/v":{"Name":"n","Driver":"local","RW":true}}}`))
	f.Add([]byte(`{"ID":"` + string(make([]byte, 64)) + `"}`))
	if m, _ := filepath.Glob("testdata/*.json"); len(m) > 0 {
		for _, p := range m {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		start := time.Now()
		c, err := ParseConfig(data)
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("took %v", d)
		}
		if err != nil {
			return
		}
		if !ValidID(c.ID) {
			t.Fatalf("accepted id %q", c.ID)
		}
		if err := c.parseHostConfig(data); err != nil {
			_ = err
		}
		if _, err := json.Marshal(c); err != nil {
			t.Fatalf("does not encode: %v", err)
		}
	})
}

// Hostile trees: oversized configs, bad ids, link targets that climb.
func TestHostileTree(t *testing.T) {
	dir := t.TempDir()
	id := "8e8b7f23eb7cbd4dfe7e91646ddd0e0f524218e25d50113559f078dfb2690206"
	mk := func(p, s string) {
		t.Helper()
		p = filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mk("image/overlay2/repositories.json", "{}")
	mk("containers/"+id+"/config.v2.json", `{"ID":"`+id+`","Driver":"overlay2"}`)
	mk("image/overlay2/layerdb/mounts/"+id+"/mount-id", "../../etc")
	big := "f" + id[1:]
	mk("containers/"+big+"/config.v2.json", `{"ID":"`+big+`"}`+string(make([]byte, MaxConfigSize)))
	mk("containers/not-an-id/config.v2.json", `{}`)
	other := "e" + id[1:]
	mk("containers/"+other+"/config.v2.json", `{"ID":"`+other+`","Driver":"overlay2"}`)
	mk("image/overlay2/layerdb/mounts/"+other+"/mount-id", "m1")
	mk("overlay2/m1/diff/x", "x")
	mk("overlay2/m1/lower", "l/AAA:l/../BBB")
	if err := os.MkdirAll(filepath.Join(dir, "overlay2/l"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../etc/diff", filepath.Join(dir, "overlay2/l/AAA")); err != nil {
		t.Fatal(err)
	}
	fsys := os.DirFS(dir)
	root, err := FindRoot(fsys, "")
	if err != nil || root != "." {
		t.Fatalf("root %q: %v", root, err)
	}
	st, err := Load(fsys, root)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Containers) != 2 || len(st.Warnings) != 2 {
		t.Fatalf("containers %d, warnings %q", len(st.Containers), st.Warnings)
	}
	for _, c := range st.Containers {
		if c.LayersError == "" || len(c.Layers) != 0 {
			t.Errorf("%s: layers %+v, error %q", c.ID, c.Layers, c.LayersError)
		}
		t.Logf("%s: %s", c.ID[:1], c.LayersError)
	}
}
