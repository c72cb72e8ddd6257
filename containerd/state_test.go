package containerd

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	bolt "go.etcd.io/bbolt"
)

// cosMetaDB is the fixture node's meta.db (containerd 1.6.20), copied from
// the cos-node disk so these tests run without ../shared.
func cosFiles(t *testing.T) fstest.MapFS {
	t.Helper()
	m := fstest.MapFS{}
	for dst, src := range map[string]string{
		MetaDBPath: "meta.db",
		"io.containerd.snapshotter.v1.overlayfs/metadata.db": "overlayfs-metadata.db",
		"io.containerd.snapshotter.v1.native/metadata.db":    "native-metadata.db",
	} {
		b, err := os.ReadFile(filepath.Join("testdata", "cos", src))
		if err != nil {
			t.Fatal(err)
		}
		m["var/lib/containerd/"+dst] = &fstest.MapFile{Data: b, Mode: 0o600}
	}
	return m
}

// snapshotterDB writes a snapshotter metadata.db with bbolt itself, in
// containerd's snapshots/storage schema: name -> {id, kind, parent}.
func snapshotterDB(t *testing.T, snaps map[string]string) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "metadata.db")
	db, err := bolt.Open(p, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		v1, _ := tx.CreateBucket([]byte("v1"))
		sb, _ := v1.CreateBucket([]byte("snapshots"))
		id := uint64(0)
		for name, parent := range snaps {
			id++
			b, _ := sb.CreateBucket([]byte(name))
			b.Put([]byte("id"), binary.AppendUvarint(nil, id))
			b.Put([]byte("kind"), []byte{kindCommitted})
			if parent != "" {
				b.Put([]byte("parent"), []byte(parent))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestChainErrors(t *testing.T) {
	fsys := cosFiles(t)
	fsys["var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/metadata.db"].Data = snapshotterDB(t, map[string]string{
		"default/1/a": "default/2/b",
		"default/2/b": "default/1/a", // loop
		"default/3/c": "default/9/gone",
		"default/4/d": "default/4/d", // self loop
	})
	s := mustLoad(t, fsys)
	for _, tt := range []struct{ key, want string }{
		{"a", "loops back"},
		{"d", "loops back"},
		{"c", "missing from the overlayfs snapshotter"},
		{"nope", "not in the snapshotter's metadata.db"},
	} {
		var layers []Layer
		var err error
		within(t, time.Second, func() { layers, err = s.Chain("default", "overlayfs", tt.key) })
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err %v, want %q", tt.key, err, tt.want)
		}
		t.Logf("%s: %d layers, %v", tt.key, len(layers), err)
	}
	// The damaged snapshotter does not stop the rest from loading.
	if c := s.container("default", "native-box"); c == nil || c.LayersError != "" || len(c.Layers) != 1 {
		t.Errorf("native-box: %+v", c)
	}
	if c := s.container("default", "oneshot"); c == nil || c.LayersError == "" {
		t.Errorf("oneshot should report its broken chain: %+v", c)
	}
}

func TestChainAnyKey(t *testing.T) {
	s := mustLoad(t, cosFiles(t))
	// A committed image layer, by meta.db key and by snapshotter name.
	for _, key := range []string{
		"sha256:c5b1b9edde86236ef0a5c9b0e63ef5320a032905495116200f556cf6cbc55d98",
		"k8s.io/8/sha256:c5b1b9edde86236ef0a5c9b0e63ef5320a032905495116200f556cf6cbc55d98",
	} {
		layers, err := s.Chain("k8s.io", "overlayfs", key)
		if err != nil || len(layers) != 3 || layers[0].ID != 4 || layers[2].ID != 1 {
			t.Errorf("%s: %+v %v", key, layers, err)
		}
	}
}

func TestLoadCorruptMetaDB(t *testing.T) {
	fsys := cosFiles(t)
	orig := fsys["var/lib/containerd/"+MetaDBPath].Data
	r := rand.New(rand.NewPCG(3, 4))
	var errs int
	for i := 0; i < 200; i++ {
		d := bytes.Clone(orig)
		for range 1 + r.IntN(4) {
			used := min(len(d), 80*4096) // pages below the high-water mark
			switch r.IntN(3) {
			case 0:
				d[r.IntN(used)] ^= byte(1 + r.IntN(255))
			case 1:
				p := r.IntN(used-8) &^ 7
				binary.LittleEndian.PutUint64(d[p:], uint64(r.IntN(100)))
			case 2:
				d = d[:r.IntN(len(d))]
			}
			if len(d) < 8192 {
				break
			}
		}
		fsys["var/lib/containerd/"+MetaDBPath] = &fstest.MapFile{Data: d}
		var err error
		within(t, time.Second, func() { _, err = Load(fsys, "var/lib/containerd") })
		if err != nil {
			errs++
			if !strings.HasPrefix(err.Error(), "containerd: var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db: bbolt: ") {
				t.Errorf("unclear error: %v", err)
			}
		}
	}
	t.Logf("%d of 200 damaged meta.db copies refused", errs)
	if errs == 0 {
		t.Error("no damage detected")
	}
}

// within fails the test when fn takes longer than limit twice in a row (a
// loaded machine can stall one run; a hang stalls both).
func within(t *testing.T, limit time.Duration, fn func()) {
	t.Helper()
	for try := 0; try < 2; try++ {
		start := time.Now()
		fn()
		if d := time.Since(start); d <= limit {
			return
		} else if try == 1 {
			t.Errorf("took %v twice (limit %v)", d, limit)
		}
	}
}

func TestFindRoot(t *testing.T) {
	fsys := cosFiles(t)
	if r, err := FindRoot(fsys, ""); err != nil || r != "var/lib/containerd" {
		t.Errorf("FindRoot = %q, %v", r, err)
	}
	if r, err := FindRoot(fsys, "/var/lib/containerd/"); err != nil || r != "var/lib/containerd" {
		t.Errorf("override = %q, %v", r, err)
	}
	for _, bad := range []string{"/var/lib", "../../etc", "nope"} {
		_, err := FindRoot(fsys, bad)
		var nf *RootNotFoundError
		if !errors.As(err, &nf) || !nf.Override {
			t.Errorf("override %q: %v", bad, err)
		}
	}
	_, err := FindRoot(fstest.MapFS{"etc/hostname": {}}, "")
	var nf *RootNotFoundError
	if !errors.As(err, &nf) || !strings.Contains(err.Error(), "var/lib/containerd") || !strings.Contains(err.Error(), "lib/containerd") {
		t.Errorf("not found: %v", err)
	}
}
