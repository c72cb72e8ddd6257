//go:build linux

package ext4_test

import (
	"errors"
	"testing"
	"time"

	"github.com/ctrlift/ctrlift/image/ext4"
	"github.com/ctrlift/ctrlift/internal/hostile"
)

// Found reviewing File.NextData: a forged ext2 triple-indirect chain that
// maps one block 16.7 million times (16 GiB of "data" on a small
// filesystem) made one NextData call walk every pointer. A stretch of data
// longer than the filesystem is now a FormatError naming the inode.
func TestNextDataRepeatedBlockMap(t *testing.T) {
	b := hostile.FixtureBase(t, "testdata/images/ext4/ext2-1k.img.zst", hostile.KindExt4)
	in, err := b.Lookup("indirect/triple")
	if err != nil {
		t.Fatal(err)
	}
	v := hostile.NewVariant(1, 0, "ext4-amplify", b)
	hostile.AmplifyIndirect(v, in)
	fsys, err := ext4.Open(v.WriteTemp(t))
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()
	ino, err := fsys.Lookup("indirect/triple")
	if err != nil {
		t.Fatal(err)
	}
	r, err := fsys.NewFileReader(ino)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var fe *ext4.FormatError
	for off := int64(0); off < r.Size(); {
		s, e, err := r.NextData(off)
		if err != nil {
			if !errors.As(err, &fe) || fe.Ino != ino.Num || fe.Struct != "block map" {
				t.Errorf("NextData(%d): %v; want a block map FormatError for inode %d", off, err, ino.Num)
			}
			t.Log(err)
			break
		}
		if s >= r.Size() {
			t.Fatalf("no error over a %d-byte file", r.Size())
		}
		off = e
	}
	if fe == nil {
		t.Error("NextData found no forged map")
	}
	// Not a timing test: without the fix this walk takes minutes (16.7
	// million pointers); with it well under a second on an idle machine
	// and a few seconds on a loaded one. The bound only keeps a regression
	// from hiding behind the package timeout.
	if d := time.Since(start); d > time.Minute {
		t.Errorf("took %v", d)
	}
}
