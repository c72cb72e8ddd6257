package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/ctrlift/ctrlift/export"
	"github.com/ctrlift/ctrlift/internal/testutil"
)

// TestListContainersNotUTF8 tampers with the example node's real
// containerd meta.db as an intruder could: one container's label key and
// value, and so its Kubernetes container name, and another container's id
// are given bytes that are not UTF-8.
// list containers -o json and -o jsonl must carry those bytes exactly in
// *_b64 siblings, and print the untouched containers as they print them
// from the untampered db.
func TestListContainersNotUTF8(t *testing.T) {
	const metaDB = "var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db"
	const (
		labelled = "eed0799779d813328a9dc977731a0a053d02e317873d58ea5f6dff984d40b548" // wordpress
		renamed  = "ac997aac2288b65048ae83c8dced15ae67c443a932cf9756ae2c943a605df907" // mysql
		oldKey   = "org.opencontainers.image.title"
		badKey   = "org.opencontainers.image.t\xffitle"
		badValue = "word\x80press"
		criName  = "io.kubernetes.container.name"
		badID    = "ac997aac\xc3\x28" + "2288b65048ae83c8dced15ae67c443a932cf9756ae2c943a605df907"
	)
	zst := filepath.Join(testutil.RepoRoot(t), "testdata/images/example/wordpress-node.raw.zst")
	db, errOut, err := run(t, "fs", "cat", "-i", zst, metaDB)
	if err != nil {
		t.Fatal(err, errOut)
	}
	original, tampered := t.TempDir(), t.TempDir()
	for _, dir := range []string{original, tampered} {
		p := filepath.Join(dir, metaDB)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(db), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tamper(t, filepath.Join(tampered, metaDB), func(containers *bolt.Bucket) error {
		labels := containers.Bucket([]byte(labelled)).Bucket([]byte("labels"))
		if labels.Get([]byte(oldKey)) == nil || labels.Get([]byte(criName)) == nil {
			t.Fatalf("container %s has no label %s or %s", labelled, oldKey, criName)
		}
		if err := labels.Delete([]byte(oldKey)); err != nil {
			return err
		}
		if err := labels.Put([]byte(badKey), []byte(badValue)); err != nil {
			return err
		}
		// The Kubernetes container name ctrlift shows comes from this label.
		if err := labels.Put([]byte(criName), []byte(badValue)); err != nil {
			return err
		}
		return renameBucket(containers, renamed, badID)
	})

	list := func(dir, format string) string {
		t.Helper()
		out, errOut, err := run(t, "list", "containers", "--all", "-o", format, "-i", dir)
		if err != nil {
			t.Fatal(err, errOut)
		}
		return out
	}

	// jsonl: the untouched containers' lines are byte for byte the same.
	before := strings.Split(strings.TrimSuffix(list(original, "jsonl"), "\n"), "\n")
	after := strings.Split(strings.TrimSuffix(list(tampered, "jsonl"), "\n"), "\n")
	if len(before) != 6 || len(after) != 6 {
		t.Fatalf("want 6 containers, got %d and %d", len(before), len(after))
	}
	kept := map[string]bool{}
	for _, l := range after {
		kept[l] = true
	}
	var rows []map[string]any
	for _, l := range before {
		if !strings.Contains(l, labelled) && !strings.Contains(l, renamed) && !kept[l] {
			t.Errorf("untouched container printed differently; before:\n%s", l)
		}
	}
	for _, l := range after {
		if !json.Valid([]byte(l)) {
			t.Fatalf("not JSON: %s", l)
		}
		var row map[string]any
		json.Unmarshal([]byte(l), &row)
		rows = append(rows, row)
		if strings.Contains(l, `"id":"ac997aac\\xc3(`) && !strings.Contains(l, `(2288b65048ae83c8dced15ae67c443a932cf9756ae2c943a605df907","id_b64":"`) {
			t.Errorf("id_b64 does not follow id: %s", l)
		}
	}
	checkExact(t, "jsonl", rows, labelled, badKey, badValue, badID)

	// json: the same rows in an indented array, the untouched ones
	// indented as before.
	jsonBefore, jsonAfter := list(original, "json"), list(tampered, "json")
	for _, row := range strings.Split(strings.TrimSuffix(strings.TrimPrefix(jsonBefore, "[\n"), "\n]\n"), "\n  },\n") {
		if !strings.Contains(row, labelled) && !strings.Contains(row, renamed) && !strings.Contains(jsonAfter, row) {
			t.Errorf("untouched container printed differently in json:\n%s", row)
		}
	}
	rows = nil
	if err := json.Unmarshal([]byte(jsonAfter), &rows); err != nil {
		t.Fatal(err)
	}
	checkExact(t, "json", rows, labelled, badKey, badValue, badID)
}

// checkExact finds the tampered rows and decodes their *_b64 siblings.
func checkExact(t *testing.T, format string, rows []map[string]any, labelled, badKey, badValue, badID string) {
	t.Helper()
	unb64 := func(v any) string {
		s, _ := v.(string)
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			t.Errorf("%s: %q is not base64: %v", format, s, err)
		}
		return string(b)
	}
	var sawID, sawLabel bool
	for _, row := range rows {
		id, _ := row["id"].(string)
		switch id {
		case export.EscapeInvalid(badID):
			sawID = true
			if got := unb64(row["id_b64"]); got != badID {
				t.Errorf("%s: id_b64 is %q, want %q", format, got, badID)
			}
		case labelled:
			sawLabel = true
			labels, _ := row["labels"].(map[string]any)
			if labels[export.EscapeInvalid(badKey)] != export.EscapeInvalid(badValue) {
				t.Errorf("%s: labels %v", format, labels)
			}
			exact, _ := row["labels_b64"].(map[string]any)
			if len(exact) != len(labels) {
				t.Errorf("%s: labels_b64 has %d labels, labels %d", format, len(exact), len(labels))
			}
			decoded := map[string]string{}
			for k, v := range exact {
				decoded[unb64(k)] = unb64(v)
			}
			if got := unb64(row["container_name_b64"]); got != badValue {
				t.Errorf("%s: container_name_b64 is %q, want %q", format, got, badValue)
			}
			if decoded[badKey] != badValue {
				t.Errorf("%s: labels_b64 decodes to %q", format, decoded)
			}
			for k, v := range decoded {
				if labels[export.EscapeInvalid(k)] != export.EscapeInvalid(v) {
					t.Errorf("%s: label %q=%q of labels_b64 is %v in labels", format, k, v, labels[export.EscapeInvalid(k)])
				}
			}
		default:
			for k := range row {
				if strings.HasSuffix(k, "_b64") {
					t.Errorf("%s: untouched container %s has %s", format, id, k)
				}
			}
		}
	}
	if !sawID || !sawLabel {
		t.Errorf("%s: tampered containers not listed (id %v, label %v)", format, sawID, sawLabel)
	}
}

// tamper edits a copy of a containerd meta.db with bbolt, as a process
// with write access to the node's disk could.
func tamper(t *testing.T, path string, edit func(containers *bolt.Bucket) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o644, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		ns := tx.Bucket([]byte("v1")).Bucket([]byte("k8s.io"))
		return edit(ns.Bucket([]byte("containers")))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// renameBucket moves bucket from to the name to under parent (bbolt
// cannot rename a bucket: it is copied, then deleted).
func renameBucket(parent *bolt.Bucket, from, to string) error {
	src := parent.Bucket([]byte(from))
	dst, err := parent.CreateBucket([]byte(to))
	if err != nil {
		return err
	}
	if err := copyBucket(dst, src); err != nil {
		return err
	}
	return parent.DeleteBucket([]byte(from))
}

func copyBucket(dst, src *bolt.Bucket) error {
	return src.ForEach(func(k, v []byte) error {
		if v != nil {
			return dst.Put(bytes.Clone(k), bytes.Clone(v))
		}
		sub, err := dst.CreateBucket(bytes.Clone(k))
		if err != nil {
			return err
		}
		return copyBucket(sub, src.Bucket(k))
	})
}
