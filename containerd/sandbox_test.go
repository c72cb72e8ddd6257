package containerd

import (
	"os"
	"strings"
	"testing"
	"testing/fstest"
)

// The databases were written by containerd's own metadata packages
// (testdata/sandboxstore/make.sh): v2.db by containerd v2 (sandboxes in
// v1/<ns>/sandboxes, schema version 4), v1.7.db by containerd v1.7
// (sandboxes at the bolt root in <ns>/sandboxes).
func TestSandboxStore(t *testing.T) {
	const (
		pod  = "5b1c0e0d7a4f4c2e9a3d8b6f1e2c3d4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e"
		app  = "a77c0e0d7a4f4c2e9a3d8b6f1e2c3d4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d01"
		shim = "0d5e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6"
	)
	for _, tt := range []struct {
		file, bucket, sandboxer string
		schema                  int64
	}{
		{"v2.db", "v1/k8s.io/sandboxes", "podsandbox", 4},
		{"v1.7.db", "k8s.io/sandboxes", "", 3},
	} {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile("testdata/sandboxstore/" + tt.file)
			if err != nil {
				t.Fatal(err)
			}
			s := mustLoad(t, fstest.MapFS{"var/lib/containerd/" + MetaDBPath: {Data: data, Mode: 0o600}})
			if s.MetaDB.Schema != tt.schema {
				t.Errorf("schema version %d, want %d", s.MetaDB.Schema, tt.schema)
			}
			for _, w := range s.Warnings {
				if strings.Contains(w, "sandbox") {
					t.Errorf("warning about a sandbox store that is read: %s", w)
				}
			}
			byID := map[string]Container{}
			for _, c := range s.Containers {
				byID[c.ID] = c
			}
			if len(s.Containers) != 4 {
				t.Fatalf("%d containers, want pause, app, shim sandbox and default/debug", len(s.Containers))
			}
			// The pause container carries its sandbox record.
			p := byID[pod]
			if p.Kind != "sandbox" || p.SandboxRecord == nil || p.SandboxRecord.Bucket != tt.bucket ||
				p.SandboxRecord.Sandboxer != tt.sandboxer || p.SandboxRecord.Runtime != "io.containerd.runc.v2" ||
				p.SandboxRecord.Labels["name"] != "cart-0_shop_uid-1_0" || p.SandboxRecord.CreatedAt.IsZero() ||
				p.SandboxRecord.Extensions[criSandboxExtension].JSON == nil || p.SandboxRecord.Spec == nil {
				t.Errorf("pause container's sandbox record: %+v", p.SandboxRecord)
			}
			if p.PodName != "cart-0" || p.PodNamespace != "shop" || p.PodIP != "10.4.0.7" {
				t.Errorf("pause container pod %s/%s %s", p.PodNamespace, p.PodName, p.PodIP)
			}
			// A sandbox with no pause container is listed of its own, pod
			// from the record's CRI metadata, status unknown.
			v := byID[shim]
			if v.Kind != "sandbox" || v.SandboxRecord == nil || v.PodName != "vm-0" || v.PodNamespace != "shop" ||
				v.PodIP != "10.4.0.9" || v.Runtime != "io.containerd.kata.v2" || v.Status != StatusUnknown || v.CreatedAt.IsZero() {
				t.Errorf("record-only sandbox: %+v", v)
			}
			if c := byID[app]; c.Kind != "container" || c.PodIP != "10.4.0.7" || c.SandboxRecord != nil {
				t.Errorf("app container: kind %s ip %s", c.Kind, c.PodIP)
			}
			sandboxes := 0
			for _, c := range s.Containers {
				if c.Kind == "sandbox" {
					sandboxes++
				}
			}
			if len(s.Containers) != 4 || sandboxes != 2 {
				t.Errorf("%d containers, %d sandboxes", len(s.Containers), sandboxes)
			}
		})
	}
}
