//go:build linux

package ext4_test

import (
	"errors"
	"testing"

	"github.com/ctrlift/ctrlift/image/ext4"
	"github.com/ctrlift/ctrlift/internal/hostile"
)

// Found by the hostile-input sweep (internal/hostile, class ext4-names): a
// directory entry named "/.." in a container layer came out of export as
// the tar members "/../" and "/../resolv.conf", a path traversal for
// whoever extracts the export. Names holding a slash or a NUL are now a
// FormatError naming the directory inode and the entry's offset.
func TestDirectoryEntryNameWithSlash(t *testing.T) {
	b := hostile.FixtureBase(t, "testdata/images/ext4/ext4-default.img.zst", hostile.KindExt4)
	dir, err := b.Lookup("names")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"/..", "a/b", "x\x00y", "/"} {
		v := hostile.NewVariant(1, 0, "ext4-names", b)
		off, ok := hostile.RenameEntry(v, dir, name)
		if !ok {
			t.Fatalf("no entry of %q fits %q", dir.Path, name)
		}
		p := v.WriteTemp(t)
		fsys, err := ext4.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		in, err := fsys.Lookup("names")
		if err != nil {
			t.Fatal(err)
		}
		_, err = fsys.ReadDirInode(in)
		var fe *ext4.FormatError
		if !errors.As(err, &fe) || fe.Ino != in.Num || fe.Offset != off-b.FSOffset() {
			t.Errorf("name %q: err %v; want a directory entry FormatError for inode %d at byte %d", name, err, in.Num, off-b.FSOffset())
		}
		fsys.Close()
	}
}
