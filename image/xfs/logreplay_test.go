package xfs_test

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctrlift/ctrlift/image/xfs"
)

// TestLogReplaySkip opens each dirty-log fixture without replaying its
// log: the warning says so, the tree is the checkpointed one (as a clean
// kernel mount showed it before the logged changes), and some change the
// kernel's replay made is missing, so replay is what made the difference.
func TestLogReplaySkip(t *testing.T) {
	dir := conformanceDir(t)
	dirty := 0
	for _, name := range fixtureNames(t, dir) {
		doc := loadExpect(t, dir, name)
		if doc.Facts.Log != "dirty" {
			continue
		}
		dirty++
		t.Run(name, func(t *testing.T) {
			p := fixtureImagePath(t, dir, name)
			img, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close()
			st, _ := img.Stat()
			fsys, err := xfs.NewReaderOptions(img, st.Size(), xfs.Options{SkipLogReplay: true})
			if err != nil {
				t.Fatal(err)
			}
			if w := fsys.Warnings(); len(w) != 1 || !strings.Contains(w[0], "log is dirty") || !strings.Contains(w[0], "not replayed (as asked)") {
				t.Errorf("warnings %q, want one saying the dirty log was not replayed", w)
			}
			missing := 0
			for _, e := range doc.Entries {
				if _, err := fs.Lstat(fsys.IOFS(), e.name()); err != nil {
					missing++
				}
			}
			if missing == 0 {
				t.Errorf("without replay all %d expected paths are there: the fixture does not exercise replay", len(doc.Entries))
			}
			raw, err := os.ReadFile(filepath.Join(dir, name+".checkpoint.json"))
			if err != nil {
				t.Logf("no checkpoint expectation (%v): the tree in place is not compared", err)
				return
			}
			var cp expectDoc
			if err := json.Unmarshal(raw, &cp); err != nil {
				t.Fatal(err)
			}
			inCheckpoint := map[string]bool{}
			for _, e := range cp.Entries {
				inCheckpoint[e.name()] = true
			}
			// Paths added after the checkpoint may be partly in place.
			checkTree(t, fsys, &cp, func(p string) bool { return !inCheckpoint[p] })
		})
	}
	if dirty == 0 {
		t.Fatal("no dirty-log fixture")
	}
}

// TestLogReplayWraps makes sure a fixture exercises records that wrap
// from the end of the log ring to its start (the tail is after the head).
func TestLogReplayWraps(t *testing.T) {
	dir := conformanceDir(t)
	fsys, _ := openFixture(t, dir, "xfs-dirty-wrap")
	st, tail, head := fsys.LogState()
	if st != xfs.LogDirty || tail <= head {
		t.Errorf("log %v, tail block %d, head block %d: want a dirty log whose tail is after its head", st, tail, head)
	}
}
