package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ctrlift/ctrlift/containerd"
	"github.com/ctrlift/ctrlift/export"
	"github.com/ctrlift/ctrlift/node"
)

// stdJSON is what encoding/json prints for v, as ctrlift printed before
// names that are not UTF-8 were kept exactly.
func stdJSON(t *testing.T, v any, indent bool) string {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if indent {
		enc.SetIndent("", "  ")
	}
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func encodeJSON(t *testing.T, v any, indent bool) string {
	t.Helper()
	var buf bytes.Buffer
	if err := newJSON(&buf, indent).Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestJSONExact(t *testing.T) {
	created := time.Date(2026, 11, 27, 9, 1, 27, 0, time.UTC)
	exit := int32(137)
	for _, tc := range []struct {
		name string
		v    any
		want string // one JSON line
	}{{
		name: "container id and label key and value",
		v: containerd.Container{Namespace: "k8s.io", ID: "ab\xffcd", Image: "nginx:1", Snapshotter: "overlayfs", SnapshotKey: "ab\xffcd",
			CreatedAt: created, Labels: map[string]string{"a\xffpp": "word\x80press", "tier": "web"}, Kind: "container", ExitCode: &exit},
		want: `{"namespace":"k8s.io","id":"ab\\xffcd","id_b64":"YWL/Y2Q=","image":"nginx:1","snapshotter":"overlayfs",` +
			`"snapshot_key":"ab\\xffcd","snapshot_key_b64":"YWL/Y2Q=","runtime":"","created_at":"2026-11-27T09:01:27Z",` +
			`"labels":{"a\\xffpp":"word\\x80press","tier":"web"},"labels_b64":{"Yf9wcA==":"d29yZIBwcmVzcw==","dGllcg==":"d2Vi"},` +
			`"kind":"container","pod_name":"","pod_namespace":"","pod_uid":"","container_name":"","sandbox_id":"","status":"","pid":0,"exit_code":137,"layers":null}`,
	}, {
		name: "a bad string in a nested slice of structs gets its sibling there",
		v: containerd.Container{Namespace: "default", ID: "c1", Layers: []containerd.Layer{
			{SnapshotKey: "k\xfe", ID: 3, Kind: containerd.SnapshotActive, Path: "snapshots/3/fs", Snapshotter: "overlayfs"},
			{SnapshotKey: "base", ID: 1, Kind: containerd.SnapshotCommitted, Path: "snapshots/1/fs", Snapshotter: "overlayfs"}}},
		want: `{"namespace":"default","id":"c1","image":"","snapshotter":"","snapshot_key":"","runtime":"","labels":null,"kind":"",` +
			`"pod_name":"","pod_namespace":"","pod_uid":"","container_name":"","sandbox_id":"","status":"","pid":0,` +
			`"layers":[{"snapshot_key":"k\\xfe","snapshot_key_b64":"a/4=","id":3,"kind":"active","path":"snapshots/3/fs","snapshotter":"overlayfs"},` +
			`{"snapshot_key":"base","id":1,"kind":"committed","path":"snapshots/1/fs","snapshotter":"overlayfs"}]}`,
	}, {
		name: "image name, annotation value, diff ids",
		v: containerd.Image{Namespace: "k8s.io", Name: "evil\xc3(:1", Target: containerd.Descriptor{MediaType: "m", Digest: "sha256:00", Size: 1},
			Annotations: map[string]string{"k": "\xe2\x82"}, DiffIDs: []string{"sha256:11", "x\xff"}},
		want: `{"namespace":"k8s.io","name":"evil\\xc3(:1","name_b64":"ZXZpbMMoOjE=","target":{"media_type":"m","digest":"sha256:00","size":1},` +
			`"annotations":{"k":"\\xe2\\x82"},"annotations_b64":{"aw==":"4oI="},"diff_ids":["sha256:11","x\\xff"],"diff_ids_b64":["c2hhMjU2OjEx","eP8="]}`,
	}, {
		name: "omitempty and omitzero fields stay out",
		v:    containerd.Snapshot{Namespace: "n\xff", Snapshotter: "overlayfs", Key: "k", Kind: containerd.SnapshotCommitted, ID: 2},
		want: `{"namespace":"n\\xff","namespace_b64":"bv8=","snapshotter":"overlayfs","key":"k","kind":"committed","id":2,"size":0,"inodes":0}`,
	}, {
		name: "namespace",
		v:    node.Namespace{Name: "\xffns", Labels: map[string]string{"ok": "yes"}, Containers: 1},
		want: `{"name":"\\xffns","name_b64":"/25z","labels":{"ok":"yes"},"containers":1,"images":0,"snapshots":0,"content":0}`,
	}, {
		name: "info container: fields of an embedded pointer promoted",
		v: struct {
			*containerd.Container
			Volumes []node.Volume `json:"volumes"`
		}{&containerd.Container{Namespace: "moby", ID: "x", DockerName: "/we\xb1rd"}, nil},
		want: `{"namespace":"moby","id":"x","image":"","snapshotter":"","snapshot_key":"","runtime":"","labels":null,"kind":"",` +
			`"pod_name":"","pod_namespace":"","pod_uid":"","container_name":"","sandbox_id":"","status":"","pid":0,"layers":null,` +
			`"docker_name":"/we\\xb1rd","docker_name_b64":"L3dlsXJk","volumes":null}`,
	}, {
		// export.Record has its own path_b64 and target_b64: no second sibling.
		name: "record with its own *_b64 fields",
		v: func() export.Record {
			r := export.Record{Path: "/a\xff", PathB64: "L2H/", Type: "symlink", Mode: "0777", Layer: "l\xff"}
			r.SetTarget("/lib/\xff")
			return r
		}(),
		want: `{"path":"/a\\xff","path_b64":"L2H/","type":"symlink","mode":"0777","uid":0,"gid":0,"size":6,"target":"/lib/\\xff","target_b64":"L2xpYi//",` +
			`"mtime_ns":0,"atime_ns":0,"ctime_ns":0,"layer":"l\\xff","layer_b64":"bP8="}`,
	}, {
		name: "maps with other keys, values not UTF-8",
		v:    map[string]any{"ints": map[int][]string{2: {"\xff"}}, "any\xfe": []any{"x\xff", 1}},
		want: `{"any\\xfe":["x\\xff",1],"ints":{"2":["\\xff"]}}`,
	}, {
		name: "a valid U+FFFD is not a bad byte",
		v:    node.Namespace{Name: "\ufffd"},
		want: `{"name":"` + "\ufffd" + `","containers":0,"images":0,"snapshots":0,"content":0}`,
	}, {
		name: "a literal backslash-u-fffd in a name",
		v:    node.Namespace{Name: `\ufffd`},
		want: `{"name":"\\ufffd","containers":0,"images":0,"snapshots":0,"content":0}`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := encodeJSON(t, tc.v, false)
			if got != tc.want+"\n" {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
			if !json.Valid([]byte(got)) {
				t.Errorf("not JSON: %s", got)
			}
			// Indented, it is the same value.
			var a, b any
			if err := json.Unmarshal([]byte(got), &a); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(encodeJSON(t, tc.v, true)), &b); err != nil {
				t.Fatal(err)
			}
			if !equalJSON(a, b) {
				t.Error("indented form differs")
			}
		})
	}
}

// TestJSONExactValidUnchanged: rows that are all UTF-8 print exactly as
// encoding/json prints them, alone and beside a row that is not.
func TestJSONExactValidUnchanged(t *testing.T) {
	exit := int32(3)
	valid := []containerd.Container{
		{Namespace: "k8s.io", ID: "aa", Image: "a && b <c>", Labels: map[string]string{"x": "\ufffd é"}, ExitCode: &exit,
			Spec: json.RawMessage(`{"args":["sh","-c","a \u0026\u0026 b"]}`)},
		{Namespace: "default", ID: "bb", Layers: []containerd.Layer{{SnapshotKey: "k", Path: "p"}}},
	}
	for _, indent := range []bool{false, true} {
		if got, want := encodeJSON(t, valid, indent), strings.ReplaceAll(stdJSON(t, valid, indent), `\u0026`, "&"); got != want {
			t.Errorf("indent %v: got\n%s\nwant\n%s", indent, got, want)
		}
	}
	mixed := []containerd.Container{valid[0], {Namespace: "k8s.io", ID: "b\xff"}, valid[1]}
	got := encodeJSON(t, mixed, true)
	for _, row := range valid {
		// One element of the indented array, as encoding/json indents it.
		want := strings.ReplaceAll(stdJSON(t, []containerd.Container{row}, true), `\u0026`, "&")
		want = strings.TrimSuffix(strings.TrimPrefix(want, "[\n"), "\n]\n")
		if !strings.Contains(got, want) {
			t.Errorf("valid row changed beside a bad one:\n%s\nwant inside it:\n%s", got, want)
		}
	}
	if !strings.Contains(got, `"id": "b\\xff",`+"\n"+`    "id_b64": "Yv8=",`) {
		t.Errorf("bad row:\n%s", got)
	}
}

func TestJSONFields(t *testing.T) {
	type inner struct {
		A string `json:"a"`
		B string
		C string `json:"c"`
	}
	type outer struct {
		inner
		B    string `json:"b2"`
		C    string `json:"c"`
		Skip string `json:"-"`
		Dash string `json:"-,"`
	}
	got := jsonFields(reflect.TypeFor[outer]())
	want := map[string][]int{"a": {0, 0}, "B": {0, 1}, "b2": {1}, "c": {2}, "-": {4}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || !equalInts(g, w) {
			t.Errorf("%s: got %v, want %v", k, g, w)
		}
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// BenchmarkJSONRows encodes the rows of a listing that are all UTF-8 with
// the one encoder and with encoding/json alone: the check for bad bytes
// is the difference.
func BenchmarkJSONRows(b *testing.B) {
	rows := make([]containerd.Container, 200)
	for i := range rows {
		rows[i] = containerd.Container{Namespace: "k8s.io", ID: strings.Repeat("ab", 32), Image: "registry.example/app:1",
			Labels:  map[string]string{"io.kubernetes.pod.name": "app-123", "io.kubernetes.pod.namespace": "prod", "tier": "web"},
			PodName: "app-123", PodNamespace: "prod", Layers: []containerd.Layer{{SnapshotKey: "k", Path: "snapshots/1/fs"}}}
	}
	b.Run("ctrlift", func(b *testing.B) {
		for b.Loop() {
			enc := newJSON(io.Discard, false)
			for _, r := range rows {
				if err := enc.Encode(r); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			enc := json.NewEncoder(htmlUnescaper{io.Discard})
			enc.SetEscapeHTML(false)
			for _, r := range rows {
				if err := enc.Encode(r); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// FuzzJSONExact: whatever bytes a container's id, label and layer key
// hold, the line is valid UTF-8 JSON, the *_b64 siblings give the bytes
// back, and a row that is all UTF-8 prints as encoding/json prints it.
func FuzzJSONExact(f *testing.F) {
	f.Add("ab\xffcd", "k\x80", "v", "layer")
	f.Add("id", "key", "value", "sha256:00")
	f.Add(`\ufffd`, "\ufffd", "\xed\xa0\x80", "")
	f.Fuzz(func(t *testing.T, id, key, value, snapshotKey string) {
		if key == "fixed" {
			return
		}
		valid := func(s ...string) bool {
			for _, s := range s {
				if !utf8.ValidString(s) {
					return false
				}
			}
			return true
		}
		c := containerd.Container{ID: id, Labels: map[string]string{key: value, "fixed": "x"},
			Layers: []containerd.Layer{{SnapshotKey: snapshotKey}}}
		got := encodeJSON(t, c, false)
		if !utf8.ValidString(got) || !json.Valid([]byte(got)) {
			t.Fatalf("not UTF-8 JSON: %q", got)
		}
		if valid(id, key, value, snapshotKey) {
			if want := stdJSON(t, c, false); got != want && !strings.Contains(want, `\u0026`) {
				t.Fatalf("valid row changed:\n%s\nwant\n%s", got, want)
			}
			return
		}
		var row struct {
			ID        string            `json:"id"`
			IDB64     []byte            `json:"id_b64"`
			LabelsB64 map[string][]byte `json:"labels_b64"`
			Layers    []struct {
				KeyB64 []byte `json:"snapshot_key_b64"`
			} `json:"layers"`
		}
		if err := json.Unmarshal([]byte(got), &row); err != nil {
			t.Fatal(err)
		}
		if !utf8.ValidString(id) && string(row.IDB64) != id {
			t.Errorf("id_b64 %q, want %q", row.IDB64, id)
		}
		if !valid(key, value) {
			if row.LabelsB64 == nil {
				t.Fatalf("no labels_b64: %s", got)
			}
			exact := map[string]string{}
			for k, v := range row.LabelsB64 {
				dk, err := base64.StdEncoding.DecodeString(k)
				if err != nil {
					t.Fatal(err)
				}
				exact[string(dk)] = string(v)
			}
			if exact[key] != value || len(exact) != len(c.Labels) {
				t.Errorf("labels_b64 %q, want %q", exact, c.Labels)
			}
		}
		if !utf8.ValidString(snapshotKey) && string(row.Layers[0].KeyB64) != snapshotKey {
			t.Errorf("snapshot_key_b64 %q, want %q", row.Layers[0].KeyB64, snapshotKey)
		}
	})
}
