//go:build linux

package export

import (
	"io"
	"strings"
	"testing"

	"github.com/ctrlift/ctrlift/image/ext4"
	"github.com/ctrlift/ctrlift/internal/hostile"
	"github.com/ctrlift/ctrlift/layers"
)

// countingWriter counts what an export writes.
type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// Found by the hostile-input sweep (internal/hostile, classes ext4-amplify
// and ext4-inode): a forged extent tree that maps one block again and
// again, or a forged i_size, made an export write gigabytes. Holes are now
// sparse entries, and the file data an export reads from one filesystem
// is bounded by its size: ext4 shares no blocks, so more is a forged map.
func TestExportAmplifiedFiles(t *testing.T) {
	b := hostile.FixtureBase(t, "testdata/images/ext4/ext4-default.img.zst", hostile.KindExt4)
	files := []string{"sizes/s4096", "sizes/s4097", "sizes/s12295", "sizes/s49152", "sizes/s53249",
		"sizes/random-64k", "sizes/pattern-1m", "sizes/s4095", "sizes/s59", "sizes/s60", "sizes/s61", "sizes/s1"}
	for _, c := range []struct {
		name   string
		leaves int // forged extent leaves of 340 entries, each one 4 KiB block
		files  int
		want   string
	}{
		// One file maps 115,600 blocks (451 MiB) of a 96 MiB filesystem.
		{"one file", 340, 1, "forged block map"},
		// Each file maps 2,720 blocks (10.6 MiB): together more than 96 MiB.
		{"many files", 8, len(files), "blocks shared between inodes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := hostile.NewVariant(1, c.leaves, "ext4-amplify", b)
			for _, p := range files[:c.files] {
				in, err := b.Lookup(p)
				if err != nil {
					t.Fatal(err)
				}
				hostile.Amplify(v, in, c.leaves)
			}
			p := v.WriteTemp(t)
			fsys, err := ext4.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer fsys.Close()
			m, err := layers.New([]layers.Layer{{FS: fsys.Source(), Dir: "sizes"}}, layers.Options{})
			if err != nil {
				t.Fatal(err)
			}
			var out countingWriter
			_, err = Tar(&out, m, Options{Manifest: io.Discard})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("export: %v; want an error saying %q", err, c.want)
			}
			if out.n > fsys.Size() {
				t.Errorf("wrote %d bytes before failing, more than the filesystem's %d", out.n, fsys.Size())
			}
			t.Logf("%v (after %d bytes)", err, out.n)
		})
	}
}

// A forged i_size on a small file: 16 GiB of holes become a sparse entry
// of a few blocks, and the manifest still gives the file's digest.
func TestExportForgedSize(t *testing.T) {
	b := hostile.FixtureBase(t, "testdata/images/ext4/ext4-default.img.zst", hostile.KindExt4)
	in, err := b.Lookup("sizes/s4097")
	if err != nil {
		t.Fatal(err)
	}
	v := hostile.NewVariant(1, 0, "ext4-inode", b)
	hostile.SetInodeSize(v, in, 1<<40) // 1 TiB
	p := v.WriteTemp(t)
	fsys, err := ext4.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()
	m, err := layers.New([]layers.Layer{{FS: fsys.Source(), Dir: "sizes"}}, layers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var out countingWriter
	var manifest strings.Builder
	if _, err := Tar(&out, m, Options{Manifest: &manifest}); err != nil {
		t.Fatal(err)
	}
	if out.n > 8<<20 {
		t.Errorf("tar of %d bytes: holes written out", out.n)
	}
	for _, l := range strings.Split(manifest.String(), "\n") {
		if strings.Contains(l, `"/s4097"`) {
			if !strings.Contains(l, `"size":1099511627776`) || !strings.Contains(l, `"sha256_omitted":"holes past`) {
				t.Errorf("manifest line: %s", l)
			}
			t.Log(l)
		}
	}
}
