//go:build linux

package ext4_test

import (
	"errors"
	"testing"
	"time"

	"github.com/ctrlift/ctrlift/image/ext4"
	"github.com/ctrlift/ctrlift/internal/hostile"
)

// Found by the hostile-input sweep (internal/hostile, class ext4-amplify):
// a directory whose forged extent tree maps its first block 115,600 times
// (451 MiB of the same entries) made every export of the layer take
// seconds and hundreds of MiB. A physical block read twice in one
// directory is now a FormatError naming the inode and the block.
func TestDirectoryBlockMappedTwice(t *testing.T) {
	b := hostile.FixtureBase(t, "testdata/images/ext4/ext4-default.img.zst", hostile.KindExt4)
	for _, leaves := range []int{1, 340} {
		dir, err := b.Lookup("names")
		if err != nil {
			t.Fatal(err)
		}
		v := hostile.NewVariant(1, leaves, "ext4-amplify", b)
		hostile.Amplify(v, dir, leaves)
		p := v.WriteTemp(t)
		fsys, err := ext4.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		in, err := fsys.Lookup("names")
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		ents, err := fsys.ReadDirInode(in)
		var fe *ext4.FormatError
		if !errors.As(err, &fe) || fe.Ino != in.Num || fe.Struct != "directory" {
			t.Errorf("%d leaves: got %d entries, err %v; want a directory FormatError for inode %d", leaves, len(ents), err, in.Num)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%d leaves: took %v", leaves, d)
		}
		t.Log(err)
		fsys.Close()
	}
}
