package node

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ctrlift/ctrlift/containerd"
	"github.com/ctrlift/ctrlift/export"
	"github.com/ctrlift/ctrlift/vfs"
)

// TestRowSorterSpills: rows sorted in runs spilled to disk and merged
// come out exactly as an in-memory sort gives them (ties in the order
// added, every field intact), whatever the run size and merge fan-in, and
// the spill directory is gone afterwards.
func TestRowSorterSpills(t *testing.T) {
	srcs := []*TimelineSource{{ContainerName: "a", Layers: []TimelineLayer{{Name: "overlayfs/1"}}}, {ContainerName: "b"}}
	rng := rand.New(rand.NewPCG(1, 2))
	var rows []TimelineRow
	for i := range 5000 {
		code := int32(i % 7)
		r := TimelineRow{
			// Few distinct times, some before 1970 and past 2262, so that
			// ties and extreme values are exercised.
			Time:   time.Unix(int64(rng.IntN(50))*1_000_000_000-20_000_000_000, int64(rng.IntN(3))).UTC(),
			Kind:   timeKinds[i%len(timeKinds)],
			Layer:  i%3 - 1,
			Path:   fmt.Sprintf("/d/%d\nname|%%\xff", i),
			Change: "added", Target: "t", SHA256: "s", MD5: "m", SHA1: "h", HashOmitted: "o", Reason: "Error",
			Image: "img", Stream: "stderr", Text: strings.Repeat("x", i%100), LogFile: "f",
			Mode: 0o100644, Inode: uint64(i), UID: 33, GID: 4, Size: int64(i) - 10, Restart: i % 4,
			Mtime: time.Unix(1700000000, 5).UTC(), Atime: time.Unix(-5, 7).UTC(), Ctime: time.Unix(1<<40, 999999999).UTC(),
			Crtime: time.Unix(1795770095, 145649811).UTC(), HasCrtime: i%2 == 0, Whiteout: i%5 == 0, Opaque: i%11 == 0, Partial: i%13 == 0,
		}
		if i%3 == 0 {
			r.ExitCode = &code
		}
		rows = append(rows, r)
	}
	collect := func(memRows int) ([]TimelineRow, string) {
		tmp := t.TempDir()
		s := newRowSorter(TimelineOptions{MemoryRows: memRows, TempDir: tmp})
		for i := range srcs {
			s.source(srcs[i])
		}
		for i := range rows {
			r := rows[i]
			r.Source = srcs[i%2]
			if err := s.add(&r); err != nil {
				t.Fatal(err)
			}
		}
		var out []TimelineRow
		if err := s.emit(func(r *TimelineRow) error { out = append(out, *r); return nil }); err != nil {
			t.Fatal(err)
		}
		spilled := s.dir
		s.close()
		if spilled != "" {
			if _, err := os.Stat(spilled); !os.IsNotExist(err) {
				t.Errorf("spill directory %s left behind: %v", spilled, err)
			}
		}
		if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
			t.Errorf("%d files left in the temporary directory", len(ents))
		}
		return out, spilled
	}
	want, spilled := collect(0)
	if spilled != "" {
		t.Fatal("5000 rows spilled with the default memory")
	}
	for i := 1; i < len(want); i++ {
		a, b := &want[i-1], &want[i]
		if a.Time.After(b.Time) || (a.Time.Equal(b.Time) && a.seq > b.seq) {
			t.Fatalf("row %d out of order", i)
		}
	}
	// 7 rows a run: 715 runs, merged in steps of maxFanIn.
	for _, mem := range []int{7, 100, 4999} {
		got, spilled := collect(mem)
		if spilled == "" {
			t.Fatalf("MemoryRows %d: nothing spilled", mem)
		}
		if len(got) != len(want) {
			t.Fatalf("MemoryRows %d: %d rows, want %d", mem, len(got), len(want))
		}
		for i := range want {
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Fatalf("MemoryRows %d: row %d differs:\n got %+v\nwant %+v", mem, i, got[i], want[i])
			}
		}
	}
}

// TestRowSorterCorruptRun: a damaged run is an error, not a panic.
func TestRowSorterCorruptRun(t *testing.T) {
	s := newRowSorter(TimelineOptions{MemoryRows: 2, TempDir: t.TempDir()})
	defer s.close()
	src := s.source(&TimelineSource{})
	for i := range 5 {
		if err := s.add(&TimelineRow{Time: time.Unix(int64(i), 0), Kind: TimeModified, Source: src, Path: "/x"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(s.dir, "run-000000"), []byte{0x05, 1, 2}, 0o600); err != nil {
		t.Fatal(err)
	}
	err := s.emit(func(*TimelineRow) error { return nil })
	if err == nil || !isWriteErr(err) {
		t.Fatalf("corrupt run: %v", err)
	}
}

func TestTimeKindWords(t *testing.T) {
	for k, want := range map[TimeKind]string{
		TimeModified: "Content Modification Time", TimeAccessed: "Last Access Time",
		TimeChanged: "Metadata Modification Time", TimeBorn: "Creation Time",
		ContainerStarted: "Start Time", ContainerFinished: "End Time",
	} {
		if got := k.Description(); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
}

// TestTimelineExample: the example's wordpress container, merged and
// --changes, the same rows whether sorted in memory or in spilled runs;
// the web shell's birth and back-dated mtime, in the writable layer.
func TestTimelineExample(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	n, err := Open([]string{exampleImage(t)}, Options{NoCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	c, err := n.Resolve("blog/wordpress-6d8f7b9c5-q2lzx/wordpress")
	if err != nil {
		t.Fatal(err)
	}
	rows := func(opt TimelineOptions) []TimelineRow {
		var out []TimelineRow
		if err := n.TimelineContainers([]containerd.Container{*c}, opt, func(r *TimelineRow) error { out = append(out, *r); return nil }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	mem := rows(TimelineOptions{Logs: true})
	spilled := rows(TimelineOptions{Logs: true, MemoryRows: 50, TempDir: t.TempDir()})
	if len(mem) != 378*4+4+8 || !reflect.DeepEqual(mem, spilled) {
		t.Fatalf("%d rows in memory, %d spilled, equal %v", len(mem), len(spilled), reflect.DeepEqual(mem, spilled))
	}
	shell := map[TimeKind]string{}
	for _, r := range mem {
		if r.Path == "/var/www/html/wp-content/uploads/shell.php" {
			shell[r.Kind] = r.Time.Format(time.RFC3339Nano) + " " + r.LayerInfo().Label() + " " + r.PartitionPath()
		}
	}
	const dir = " writable var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/10/fs/var/www/html/wp-content/uploads/shell.php"
	want := map[TimeKind]string{TimeModified: "2023-11-14T22:13:20Z" + dir, TimeBorn: "2026-11-27T09:01:35.145649811Z" + dir,
		TimeChanged: "2026-11-27T09:01:35.148063525Z" + dir, TimeAccessed: "2026-11-27T09:01:36.288178444Z" + dir}
	if !reflect.DeepEqual(shell, want) {
		t.Errorf("shell.php: %v", shell)
	}
	changes := rows(TimelineOptions{Changes: true, ByEntry: true, Hashes: []export.Hash{export.SHA256}})
	kinds := map[string]int{}
	for _, r := range changes {
		if r.Kind == TimeEntry {
			kinds[r.Change]++
			if r.Layer != 0 || !r.Source.Layers[0].Writable {
				t.Errorf("%s: layer %d", r.Path, r.Layer)
			}
		}
		if r.Path == "/var/log/apache2/access.log" && (!r.Whiteout || r.Change != "deleted" || r.Mode&vfs.TypeMask != vfs.TypeChar) {
			t.Errorf("access.log: %+v", r)
		}
		if r.Path == "/var/www/html/wp-content/uploads/shell.php" && !strings.HasPrefix(r.SHA256, "726923213704") {
			t.Errorf("shell.php sha256 %s", r.SHA256)
		}
	}
	if kinds["deleted"] != 2 || kinds["added"] < 10 || kinds["modified"] < 3 {
		t.Errorf("changes: %v", kinds)
	}
}
