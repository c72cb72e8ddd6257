package boltsafe

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

var updateSeeds = flag.Bool("update-fuzz-seeds", false, "regenerate testdata/fuzz/FuzzRead seeds with bbolt")

// FuzzRead feeds arbitrary bytes to Read. Besides not panicking or hanging,
// whatever Validate accepts must be readable by bbolt: an error from the
// bbolt phase means validation missed something bbolt trips over.
func FuzzRead(f *testing.F) {
	for _, name := range []string{"../testdata/cos/native-metadata.db", "../testdata/cos/overlayfs-metadata.db"} {
		if b, err := os.ReadFile(name); err == nil {
			info, err := Validate(b)
			if err == nil {
				b = b[:int(info.HighWater)*info.PageSize] // smaller inputs fuzz faster
			}
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		start := time.Now()
		_, verr := Validate(data)
		db, err := Read(data)
		if d := time.Since(start); d > 5*time.Second { // generous: fuzz workers share the CPU
			t.Fatalf("took %v", d)
		}
		if verr == nil && err != nil {
			t.Fatalf("validated, then bbolt failed: %v", err)
		}
		if verr != nil && err == nil {
			t.Fatalf("Validate failed (%v) but Read succeeded", verr)
		}
		if err == nil && db.Root == nil {
			t.Fatal("no root bucket")
		}
		if err != nil && !strings.HasPrefix(err.Error(), "bbolt: ") {
			t.Fatalf("error without prefix: %v", err)
		}
	})
}

// TestGenerateFuzzSeeds writes a small containerd-shaped database made by
// bbolt itself (1 KiB pages, so it has branch, overflow and inline-bucket
// pages in a few KiB) into the seed corpus. Run with -update-fuzz-seeds.
func TestGenerateFuzzSeeds(t *testing.T) {
	if !*updateSeeds {
		t.Skip("run with -update-fuzz-seeds to regenerate")
	}
	path := filepath.Join(t.TempDir(), "seed.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{PageSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		v1, _ := tx.CreateBucket([]byte("v1"))
		v1.Put([]byte("version"), []byte{6})
		ns, _ := v1.CreateBucketIfNotExists([]byte("k8s.io"))
		ctrs, _ := ns.CreateBucketIfNotExists([]byte("containers"))
		for i := range 3 {
			c, _ := ctrs.CreateBucket(fmt.Appendf(nil, "%064x", i))
			c.Put([]byte("image"), []byte("docker.io/library/busybox:1.36.1"))
			c.Put([]byte("snapshotter"), []byte("overlayfs"))
			l, _ := c.CreateBucket([]byte("labels"))
			l.Put([]byte("io.cri-containerd.kind"), []byte("container"))
			if i == 0 {
				c.Put([]byte("spec"), []byte(strings.Repeat(`{"ociVersion":"1.0.2"}`, 100))) // overflow pages
			}
		}
		snaps, _ := tx.CreateBucket([]byte("snapshots"))
		for i := range 40 { // enough keys for a branch page
			s, _ := snaps.CreateBucket(fmt.Appendf(nil, "k8s.io/%d/sha256:%060x", i, i))
			s.Put([]byte("id"), []byte{byte(i + 1)})
			s.Put([]byte("kind"), []byte{3})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	info, err := Validate(data)
	if err != nil {
		t.Fatal(err)
	}
	data = data[:int(info.HighWater)*info.PageSize]
	dir := filepath.Join("testdata", "fuzz", "FuzzRead")
	os.MkdirAll(dir, 0o755)
	out := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
	if err := os.WriteFile(filepath.Join(dir, "containerd-shaped-1k-pages"), []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("seed: %d bytes, %+v", len(data), info)
}
