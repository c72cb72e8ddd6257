package containerd

import (
	"encoding/binary"
	"hash/fnv"
	"os"
	"path/filepath"
	"testing"

	"github.com/ctrlift/ctrlift/containerd/boltsafe"
)

// Found by the hostile-input sweep (internal/hostile): a meta.db whose
// inode size was raised to just under the old 2 GiB limit read as 2 GiB of
// zeros, took 35 s and 4.5 GiB of memory, then succeeded. Only the pages
// below the high-water mark are read now.
func TestReadBoltInflatedSize(t *testing.T) {
	orig, err := os.ReadFile(filepath.Join("testdata", "cos", "overlayfs-metadata.db"))
	if err != nil {
		t.Skip(err)
	}
	head := orig[:min(len(orig), boltsafe.HeadSize)]
	used := boltsafe.UsedSize(head, int64(len(orig)))
	if used <= 0 || used > int64(len(orig)) {
		t.Fatalf("UsedSize = %d for a %d-byte file", used, len(orig))
	}
	dir := t.TempDir()
	for _, size := range []int64{int64(len(orig)), 1<<31 - 16, 1 << 40} {
		// A sparse file: the tail costs no disk, only what is read of it.
		p := filepath.Join(dir, "metadata.db")
		if err := os.WriteFile(p, orig, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, size); err != nil {
			t.Fatal(err)
		}
		data, err := readBolt(os.DirFS(dir), "metadata.db")
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if int64(len(data)) != used {
			t.Errorf("size %d: read %d bytes, want the %d in use", size, len(data), used)
		}
		if _, err := ReadSnapshotterDB(data); err != nil {
			t.Errorf("size %d: %v", size, err)
		}
	}
}

// A forged meta page can claim any high-water mark; the pages it claims
// are still bounded by boltsafe.MaxSize.
func TestReadBoltForgedHighWater(t *testing.T) {
	orig, err := os.ReadFile(filepath.Join("testdata", "cos", "overlayfs-metadata.db"))
	if err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "metadata.db")
	if err := os.WriteFile(p, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, 1<<40); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	le := binary.LittleEndian
	psize := int(le.Uint32(orig[16+8:]))
	for _, off := range []int{0, psize} {
		meta := append([]byte{}, orig[off:off+16+64]...)
		le.PutUint64(meta[16+40:], 1<<30) // pgid: a billion pages
		h := fnv.New64a()
		h.Write(meta[16 : 16+56])
		le.PutUint64(meta[16+56:], h.Sum64()) // the meta checksum bbolt trusts
		if _, err := f.WriteAt(meta, int64(off)); err != nil {
			t.Fatal(err)
		}
	}
	_, err = readBolt(os.DirFS(dir), "metadata.db")
	if err == nil {
		t.Fatal("a forged high-water mark of 2^30 pages was read")
	}
	t.Log(err)
}
