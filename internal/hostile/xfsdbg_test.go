//go:build linux

package hostile

import "testing"

func TestXFSDebug(t *testing.T) {
	bases, _ := openBases(t, scratch(t), nil)
	for _, b := range bases {
		if b.XFS == nil {
			continue
		}
		kinds := map[string]int{}
		fmts := map[[2]uint8]int{}
		for _, in := range b.XInodes {
			fmts[[2]uint8{in.Format, in.AFormat}]++
			for _, blk := range in.Blocks {
				kinds[blk.Kind]++
			}
		}
		t.Logf("%s: %d inodes, %d containers, formats %v, blocks %v, free %v (%d blocks)", b.Name, len(b.XInodes), len(b.Containers), fmts, kinds, b.Free, (b.Free[1]-b.Free[0])/b.XFS.BS)
	}
}
