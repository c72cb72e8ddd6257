package xfs

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ctrlift/ctrlift/internal/testutil"
)

// sharedBlocksByXfsDB sums blockcount x (refcount-1) over the refcount
// records of every AG as xfs_db prints them (one-level trees, as in the
// fixtures).
func sharedBlocksByXfsDB(t *testing.T, img string, agCount uint64) uint64 {
	var total uint64
	rec := regexp.MustCompile(`\d+:\[(\d+),(\d+),(\d+),(\d+)\]`)
	for ag := uint64(0); ag < agCount; ag++ {
		out, err := exec.Command("xfs_db", "-r", "-c", "agf "+strconv.FormatUint(ag, 10), "-c", "addr refcntroot", "-c", "p level recs", img).CombinedOutput()
		if err != nil && !strings.Contains(string(out), "not found") {
			t.Fatalf("xfs_db: %v\n%s", err, out)
		}
		if strings.Contains(string(out), "level = ") && !strings.Contains(string(out), "level = 0") {
			t.Fatalf("AG %d: refcount tree of more than one level; extend the test", ag)
		}
		for _, m := range rec.FindAllStringSubmatch(string(out), -1) {
			n, _ := strconv.ParseUint(m[2], 10, 64)
			refs, _ := strconv.ParseUint(m[3], 10, 64)
			if m[4] == "0" && refs >= 2 {
				total += n * (refs - 1)
			}
		}
	}
	return total
}

// TestDataBoundSharing checks the bound on what all files may map
// together: the filesystem's size, plus with reflink the sharing the
// refcount trees record, counted as xfs_db counts it.
func TestDataBoundSharing(t *testing.T) {
	dir := filepath.Join(testutil.RepoRoot(t), "testdata", "images", "xfs")
	for _, name := range []string{"xfs-default", "xfs-1k", "xfs-nrext64", "xfs-rmapbt"} {
		t.Run(name, func(t *testing.T) {
			img := testutil.Unzstd(t, filepath.Join(dir, name+".img.zst"))
			fsys, err := Open(img)
			if err != nil {
				t.Fatal(err)
			}
			defer fsys.Close()
			got := fsys.DataBound()
			if !fsys.Reflink() {
				if got != fsys.Size() {
					t.Fatalf("without reflink: bound %d, want the size %d", got, fsys.Size())
				}
				return
			}
			// The fixtures hold reflinked clones: the bound exceeds the size.
			if got <= fsys.Size() {
				t.Fatalf("bound %d, want more than the size %d (the fixture shares blocks)", got, fsys.Size())
			}
			if _, err := exec.LookPath("xfs_db"); err != nil {
				t.Skip("xfs_db (xfsprogs) not installed: bound not compared")
			}
			want := fsys.Size() + int64(sharedBlocksByXfsDB(t, img, fsys.agCount))*fsys.BlockSize()
			if got != want {
				t.Fatalf("bound %d, xfs_db's refcount records give %d", got, want)
			}
			if w := fsys.Warnings(); len(w) != 0 {
				t.Fatalf("warnings: %v", w)
			}
		})
	}
}

// TestDataBoundForgedRefcount damages the refcount tree's AGF fields and
// root block: the bound falls back to the filesystem's size (no sharing
// trusted) with a warning naming the structure, never to "unbounded".
func TestDataBoundForgedRefcount(t *testing.T) {
	dir := filepath.Join(testutil.RepoRoot(t), "testdata", "images", "xfs")
	pristine, err := os.ReadFile(testutil.Unzstd(t, filepath.Join(dir, "xfs-default.img.zst")))
	if err != nil {
		t.Fatal(err)
	}
	base, err := NewReader(bytes.NewReader(pristine), int64(len(pristine)))
	if err != nil {
		t.Fatal(err)
	}
	agf := base.sectSize // AG 0's AGF
	root := int64(binary.BigEndian.Uint32(pristine[agf+agfOffRefcntRoot:])) * base.blockSize
	tests := []struct {
		name, warn string
		mutate     func(b []byte)
	}{
		{"level 0", "refcount btree of 0 levels", func(b []byte) { binary.BigEndian.PutUint32(b[agf+agfOffRefcntLevel:], 0) }},
		{"level huge", "levels", func(b []byte) { binary.BigEndian.PutUint32(b[agf+agfOffRefcntLevel:], 1<<31) }},
		{"root outside the AG", "lies outside AG 0", func(b []byte) { binary.BigEndian.PutUint32(b[agf+agfOffRefcntRoot:], 0xFFFFFFF0) }},
		{"root at the AGF", "lies outside", func(b []byte) { binary.BigEndian.PutUint32(b[agf+agfOffRefcntRoot:], 0) }},
		{"root level says 1", "level 1 where the parent implies 0", func(b []byte) { binary.BigEndian.PutUint16(b[root+4:], 1) }},
		{"numrecs huge", "records, room for", func(b []byte) { binary.BigEndian.PutUint16(b[root+6:], 0xFFFF) }},
		{"bad magic", "bad magic", func(b []byte) { b[root] ^= 0xFF }},
		{"AGF seqno", "sequence number", func(b []byte) { binary.BigEndian.PutUint32(b[agf+agfOffSeqno:], 7) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The AG headers and the root block are the first 64 KiB of AG 0:
			// the mutation works on a copy of them, patched over the image.
			head := append([]byte(nil), pristine[:root+base.blockSize]...)
			tc.mutate(head)
			img := &patched{base: pristine, off: 0, patch: head}
			fsys, err := NewReader(img, int64(len(pristine)))
			if err != nil {
				t.Fatal(err)
			}
			if got := fsys.DataBound(); got != fsys.Size() {
				t.Fatalf("bound %d, want the size %d", got, fsys.Size())
			}
			w := strings.Join(fsys.Warnings(), "\n")
			if !strings.Contains(w, tc.warn) || !strings.Contains(w, "at byte") {
				t.Fatalf("warnings %q, want %q with an offset", w, tc.warn)
			}
		})
	}
}
