package node

import (
	"fmt"

	"github.com/ctrlift/ctrlift/image"
)

// assembleVolumes finds the volume groups across all disk inputs (a
// striped VG's disks given as several -i) and passes on their warnings.
func (n *Node) assembleVolumes() {
	disks := n.Disks()
	if len(disks) > 1 {
		image.AssembleVolumes(disks)
	}
	for _, d := range disks {
		for _, g := range d.VolumeGroups {
			for _, w := range g.Warnings {
				n.warn(w)
			}
		}
	}
}

// describeVolume names a logical volume, e.g. `logical volume node/var
// (ext4, label "STATE", 384.0 MiB)`.
func describeVolume(p *image.Partition) string {
	s := "logical volume " + p.Name + " (" + p.FS.Type
	if p.FS.Label != "" {
		s += fmt.Sprintf(", label %q", p.FS.Label)
	}
	return s + ", " + FormatBytes(p.Size) + ")"
}
