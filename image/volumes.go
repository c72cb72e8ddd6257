package image

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/ctrlift/ctrlift/image/lvm"
)

// Volume systems reported in VolumeGroup.Kind.
const VolumeLVM2 = "lvm2"

// VolumeGroup is a volume system assembled from partitions of one or more
// disks: an LVM2 volume group and its logical volumes. It is listed on
// the first disk (in input order) holding one of its members.
type VolumeGroup struct {
	Kind       string         `json:"kind"` // lvm2
	Name       string         `json:"name"`
	UUID       string         `json:"uuid"`
	Seqno      int64          `json:"seqno"`       // metadata sequence number read (the newest valid copy)
	ExtentSize int64          `json:"extent_size"` // bytes
	Members    []VolumeMember `json:"members"`
	Volumes    []Partition    `json:"volumes"` // the visible logical volumes, named VG/LV
	Warnings   []string       `json:"warnings"`
}

// VolumeMember is one physical volume of a group and where it was found.
type VolumeMember struct {
	Name      string `json:"name"` // as the metadata names it: pv0, pv1, ...
	UUID      string `json:"uuid"`
	Device    string `json:"device"`    // where LVM last saw it (a hint only)
	Disk      string `json:"disk"`      // the input holding it; "" when missing
	Partition int    `json:"partition"` // its partition number on that disk
	Missing   bool   `json:"missing"`   // not among the inputs
}

// AssembleVolumes finds the volume groups whose physical volumes lie on
// partitions of the given disks (the disks of one node, e.g. the two
// given as `-i a -i b` of a striped VG) and lists each on the first disk
// that holds a member, replacing what an earlier call found. NewDisk
// calls it for its own disk alone.
func AssembleVolumes(disks []*Disk) {
	type place struct {
		disk *Disk
		part *Partition
	}
	var pvs []*lvm.PV
	where := map[*lvm.PV]place{}
	for _, d := range disks {
		d.VolumeGroups = []*VolumeGroup{}
		for i := range d.Partitions {
			p := &d.Partitions[i]
			if p.FS.Type != FSLVM2 {
				continue
			}
			pv, err := lvm.ReadPV(p.Reader(), p.Size)
			if err != nil {
				p.Error = err.Error()
				continue
			}
			p.Error = ""
			pvs = append(pvs, pv)
			where[pv] = place{d, p}
		}
	}
	if len(pvs) == 0 {
		return
	}
	vgs := lvm.Assemble(pvs)
	for _, v := range vgs {
		g := &VolumeGroup{Kind: VolumeLVM2, Name: v.Name, UUID: v.UUID, Seqno: v.Seqno, ExtentSize: v.ExtentSize,
			Members: []VolumeMember{}, Volumes: []Partition{}, Warnings: append([]string{}, v.Warnings...)}
		var home *Disk
		for _, ref := range v.PVs {
			m := VolumeMember{Name: ref.Name, UUID: ref.UUID, Device: ref.Device, Missing: ref.PV == nil}
			if pl, ok := where[ref.PV]; ok {
				m.Disk, m.Partition = pl.disk.Path, pl.part.Number
				if home == nil || indexOf(disks, pl.disk) < indexOf(disks, home) {
					home = pl.disk
				}
			}
			g.Members = append(g.Members, m)
		}
		if home == nil { // metadata names none of the PVs it was read from
			home = where[pvs[0]].disk
			for _, pv := range pvs {
				if containsPV(v, pv) {
					home = where[pv].disk
					break
				}
			}
		}
		for _, lv := range v.LVs {
			if !lv.Visible {
				continue
			}
			p := Partition{Name: v.Name + "/" + lv.Name, GUID: lv.UUID, Type: "LVM " + lv.Type, Size: lv.Size, VolumeGroup: v.Name, FS: FSInfo{Type: FSUnknown}}
			if r, err := lv.Open(); err != nil {
				p.err, p.Error = err, err.Error()
			} else {
				p.r = r
				fi, err := detectFS(p.Reader(), p.Size)
				if err != nil {
					g.Warnings = append(g.Warnings, fmt.Sprintf("logical volume %s: %v", p.Name, err))
				}
				p.FS = fi
			}
			g.Volumes = append(g.Volumes, p)
		}
		home.VolumeGroups = append(home.VolumeGroups, g)
	}
	// Copies that could not be read or parsed: in the group's warnings,
	// or as the partition's error when no group was read from it.
	for _, pv := range pvs {
		pl := where[pv]
		if len(pv.Warnings) == 0 {
			continue
		}
		listed := false
		for _, d := range disks {
			for _, g := range d.VolumeGroups {
				for _, m := range g.Members {
					if m.UUID == pv.UUID {
						g.Warnings = append(g.Warnings, pv.Warnings...)
						listed = true
					}
				}
			}
		}
		if !listed {
			pl.part.Error = strings.Join(pv.Warnings, "; ")
		}
	}
}

func containsPV(v *lvm.VG, pv *lvm.PV) bool {
	for _, ref := range v.PVs {
		if ref.PV == pv {
			return true
		}
	}
	return false
}

func indexOf(disks []*Disk, d *Disk) int {
	for i, x := range disks {
		if x == d {
			return i
		}
	}
	return len(disks)
}

// volumes are the logical volumes listed on d.
func (d *Disk) volumes() []*Partition {
	var ps []*Partition
	for _, g := range d.VolumeGroups {
		for i := range g.Volumes {
			ps = append(ps, &g.Volumes[i])
		}
	}
	return ps
}

// PartitionsAndVolumes are the partitions of the table, then the logical
// volumes listed on the disk.
func (d *Disk) PartitionsAndVolumes() []*Partition { return d.candidates() }

// candidates are the partitions of the table, then the logical volumes.
func (d *Disk) candidates() []*Partition {
	ps := make([]*Partition, 0, len(d.Partitions))
	for i := range d.Partitions {
		ps = append(ps, &d.Partitions[i])
	}
	return append(ps, d.volumes()...)
}

// EncryptedError is the error of selecting an encrypted volume: it names
// the scheme and what to do instead.
type EncryptedError struct {
	Disk   string // the input's name
	What   string // e.g. "partition 2", "logical volume vg/home"
	Scheme string // LUKS1, LUKS2, BitLocker
	UUID   string
}

func (e *EncryptedError) Error() string {
	id := ""
	if e.UUID != "" {
		id = " (UUID " + e.UUID + ")"
	}
	howto := "unlock it with its key (cryptsetup open --readonly), image the plaintext device (/dev/mapper/NAME) and pass that image with -i"
	if e.Scheme == "BitLocker" {
		howto = "decrypt it with its password or recovery key (dislocker, or manage-bde on Windows) and pass the plaintext image with -i"
	}
	return fmt.Sprintf("image: %s: %s is %s-encrypted%s, which ctrlift does not decrypt: %s", e.Disk, e.What, e.Scheme, id, howto)
}

// unreadable says why the selected partition cannot be read: a refused
// or incomplete logical volume, an encrypted volume. Nil for anything
// else.
func (p *Partition) unreadable(disk string) error {
	if p.err != nil {
		return fmt.Errorf("image: %s: %w", disk, p.err)
	}
	if scheme := p.encryptionScheme(); scheme != "" {
		what := "partition " + fmt.Sprint(p.Number)
		if p.VolumeGroup != "" {
			what = "logical volume " + p.Name
		}
		return &EncryptedError{Disk: disk, What: what, Scheme: scheme, UUID: p.FS.UUID}
	}
	return nil
}

// encryptionScheme names the encryption of a volume, "" if none is known.
func (p *Partition) encryptionScheme() string {
	switch p.FS.Type {
	case FSLUKS:
		v := make([]byte, 8)
		if _, err := p.Reader().ReadAt(v, 0); err == nil && binary.BigEndian.Uint16(v[6:]) <= 9 {
			return fmt.Sprintf("LUKS%d", binary.BigEndian.Uint16(v[6:]))
		}
		return "LUKS"
	case FSBitLocker:
		return "BitLocker"
	}
	return ""
}
