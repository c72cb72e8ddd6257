//go:build linux

package hostile

import (
	"fmt"
)

// Class is one kind of damage.
type Class struct {
	Name    string
	Weight  int              // share of the sweep
	Applies func(*Base) bool // nil: every base
	Gen     func(v *Variant) // aims at a structure of v.Base; sets v.Skip when there is none
}

func hasFS(b *Base) bool         { return b.FS != nil }
func hasContainerd(b *Base) bool { return b.MetaDB != nil }

// Classes are the mutation classes of the sweep, in report order.
var Classes = []Class{
	{Name: "truncate-random", Weight: 6, Gen: genTruncRandom},
	{Name: "truncate-boundary", Weight: 6, Gen: genTruncBoundary},
	{Name: "ext4-superblock", Weight: 6, Applies: hasFS, Gen: genSuperblock},
	{Name: "ext4-group-desc", Weight: 5, Applies: hasFS, Gen: genGroupDesc},
	{Name: "ext4-inode", Weight: 8, Applies: hasFS, Gen: genInode},
	{Name: "ext4-extent", Weight: 7, Applies: hasFS, Gen: genExtent},
	{Name: "ext4-dir", Weight: 8, Applies: hasFS, Gen: genDir},
	{Name: "ext4-names", Weight: 4, Applies: hasFS, Gen: genNames},
	{Name: "ext4-xattr", Weight: 5, Applies: hasFS, Gen: genXattr},
	{Name: "ext4-amplify", Weight: 3, Applies: func(b *Base) bool { return b.FS != nil && b.Free[1]-b.Free[0] >= 8*b.FS.BS }, Gen: genAmplify},
	{Name: "ext4-journal", Weight: 3, Applies: func(b *Base) bool { return b.Journal != nil }, Gen: genJournal},
	{Name: "gpt-header", Weight: 5, Applies: func(b *Base) bool { return b.GPT != nil }, Gen: genGPTHeader},
	{Name: "gpt-entries", Weight: 5, Applies: func(b *Base) bool { return b.GPT != nil }, Gen: genGPTEntries},
	{Name: "mbr", Weight: 2, Applies: func(b *Base) bool { return b.MBR != nil }, Gen: genMBR},
	{Name: "file-size", Weight: 5, Applies: hasContainerd, Gen: genFileSize},
	{Name: "bbolt-flip", Weight: 6, Applies: hasContainerd, Gen: genBoltFlip},
	{Name: "bbolt-truncate", Weight: 4, Applies: hasContainerd, Gen: genBoltTruncate},
	{Name: "bbolt-cycle", Weight: 4, Applies: hasContainerd, Gen: genBoltCycle},
	{Name: "bbolt-meta", Weight: 4, Applies: hasContainerd, Gen: genBoltMeta},
	{Name: "snapshot-chain", Weight: 5, Applies: func(b *Base) bool { return len(b.Snapshots) > 0 }, Gen: genSnapshotChain},
	{Name: "containerd-values", Weight: 5, Applies: hasContainerd, Gen: genContainerdValues},
	{Name: "layer-symlink", Weight: 4, Applies: func(b *Base) bool { return len(b.Layers) > 0 }, Gen: genLayerSymlink},
	{Name: "huge-fields", Weight: 8, Gen: genHugeFields},
	{Name: "tar-header", Weight: 4, Applies: func(b *Base) bool { return len(b.Tar) > 0 }, Gen: genTarHeader},
	// The evidence formats, on the example node converted by the real
	// tools (BuildEvidence).
	{Name: "e01-sections", Weight: 2, Applies: func(b *Base) bool { return b.EWF != nil }, Gen: genE01Sections},
	{Name: "e01-tables", Weight: 2, Applies: func(b *Base) bool { return b.EWF != nil }, Gen: genE01Tables},
	{Name: "qcow2-header", Weight: 2, Applies: func(b *Base) bool { return b.QCOW2 != nil }, Gen: genQCOW2Header},
	{Name: "qcow2-tables", Weight: 2, Applies: func(b *Base) bool { return b.QCOW2 != nil }, Gen: genQCOW2Tables},
	{Name: "vmdk-grains", Weight: 2, Applies: func(b *Base) bool { return b.VMDK != nil }, Gen: genVMDKGrains},
	{Name: "vmdk-descriptor", Weight: 2, Applies: func(b *Base) bool { return b.VMDKDesc != nil }, Gen: genVMDKDescriptor},
	{Name: "vhd-bat", Weight: 2, Applies: func(b *Base) bool { return b.VHD != nil }, Gen: genVHDBAT},
	{Name: "vhdx-regions", Weight: 2, Applies: func(b *Base) bool { return b.VHDX != nil }, Gen: genVHDXRegions},
	// Docker Engine's state, on the Docker node dockerd made.
	{Name: "docker-config", Weight: 3, Applies: hasDocker, Gen: genDockerConfig},
	{Name: "docker-ids", Weight: 3, Applies: hasDocker, Gen: genDockerIDs},
	{Name: "docker-links", Weight: 2, Applies: hasDocker, Gen: genDockerLinks},
	{Name: "docker-logs", Weight: 2, Applies: hasDocker, Gen: genDockerLogs},
	// containers/storage (Podman's fixture disk).
	{Name: "cstorage-json", Weight: 3, Applies: func(b *Base) bool { return len(b.StoreFiles) > 0 }, Gen: genStoreJSON},
	{Name: "cstorage-links", Weight: 2, Applies: func(b *Base) bool { return len(b.StoreLinks) > 0 || len(b.LowerFiles) > 0 }, Gen: genStoreLinks},
	{Name: "podman-bolt", Weight: 2, Applies: func(b *Base) bool { return len(b.PodmanDBs) > 0 }, Gen: genPodmanBolt},
	{Name: "podman-sqlite", Weight: 2, Applies: func(b *Base) bool { return len(b.PodmanSQLite) > 0 }, Gen: genPodmanSQLite},
	// LVM2: the PV label and header, the metadata areas and their text
	// (deep nesting, huge numbers, segment maps past the device, loops).
	{Name: "lvm-label", Weight: 2, Applies: hasLVM, Gen: genLVMLabel},
	{Name: "lvm-metadata", Weight: 4, Applies: hasLVM, Gen: genLVMMetadata},
	// XFS, on the EKS-like node (testdata/images/xfs/eks-node.raw.zst).
	{Name: "xfs-superblock", Weight: 2, Applies: hasXFS, Gen: genXFSSuperblock},
	{Name: "xfs-ag", Weight: 2, Applies: hasXFS, Gen: genXFSAG},
	{Name: "xfs-inode", Weight: 2, Applies: hasXFS, Gen: genXFSInode},
	{Name: "xfs-extents", Weight: 2, Applies: hasXFS, Gen: genXFSExtents},
	{Name: "xfs-btree", Weight: 2, Applies: hasXFS, Gen: genXFSBtree},
	{Name: "xfs-dir", Weight: 2, Applies: hasXFS, Gen: genXFSDir},
	{Name: "xfs-attr", Weight: 2, Applies: hasXFS, Gen: genXFSAttr},
	{Name: "xfs-symlink", Weight: 2, Applies: hasXFS, Gen: genXFSSymlink},
	{Name: "xfs-amplify", Weight: 2, Applies: hasXFS, Gen: genXFSAmplify},
	{Name: "xfs-log", Weight: 2, Applies: hasXFS, Gen: genXFSLog},
}

// AppliesTo reports whether class c aims at base b: a class without
// Applies aims at every raw image, not at the evidence formats.
func (c Class) AppliesTo(b *Base) bool {
	if c.Applies == nil {
		return b.Format == ""
	}
	return c.Applies(b)
}

// ClassByName returns the class called name.
func ClassByName(name string) (Class, bool) {
	for _, c := range Classes {
		if c.Name == name {
			return c, true
		}
	}
	return Class{}, false
}

// --- truncation ---

func genTruncRandom(v *Variant) {
	b := v.Base
	switch {
	case v.R.IntN(3) == 0 || b.FS == nil:
		v.Truncate = v.R.Int64N(b.Size)
		v.say("cut anywhere")
	case v.R.IntN(2) == 0:
		v.Truncate = b.FS.Off + v.R.Int64N(b.FSSize)
		v.say("cut inside the filesystem")
	default:
		in := pick(v.R, b.Inodes)
		offs := append(b.FS.DataBlocks(in), in.Off)
		v.Truncate = pick(v.R, offs) + v.R.Int64N(b.FS.BS)
		v.say("cut inside the data of %s", describeInode(in))
	}
}

func genTruncBoundary(v *Variant) {
	b := v.Base
	cands := append([]int64{}, b.Boundaries...)
	what := "structure boundary"
	if b.FS != nil && v.R.IntN(2) == 0 && len(b.Inodes) > 0 {
		in := pick(v.R, b.Inodes)
		cands = append(b.FS.DataBlocks(in), in.Off, in.Off+b.FS.InodeSize)
		for _, n := range in.Nodes {
			cands = append(cands, n.Off)
		}
		what = "a block of " + describeInode(in)
	}
	if b.GPT != nil && v.R.IntN(3) == 0 {
		g := b.GPT
		cands = []int64{g.Primary.HeaderOff, g.Primary.EntriesOff, g.Primary.EntriesOff + int64(g.Primary.NumEntries*g.Primary.EntrySize)}
		if g.HaveBackup {
			cands = append(cands, g.Backup.EntriesOff, g.Backup.HeaderOff)
		}
		what = "a GPT structure"
	}
	deltas := []int64{0, 0, -1, 1, -512, 512, -4096, 4096, 1024}
	t := pick(v.R, cands) + pick(v.R, deltas)
	t = max(0, min(t, b.Size-1))
	v.Truncate = t
	v.say("cut at %s", what)
}

// --- huge values in length and count fields of every structure ---

func genHugeFields(v *Variant) {
	b := v.Base
	type target struct {
		name string
		fn   func()
	}
	var ts []target
	if g := b.FS; g != nil {
		ts = append(ts,
			target{"superblock", func() { v.hugeField(g.Off+sbOff, superblockFields, "superblock") }},
			target{"group descriptor", func() {
				f := groupDescFields
				if g.DescSize >= 64 {
					f = append(append([]Field{}, f...), groupDesc64Fields...)
				}
				v.hugeField(g.GroupDescOff(v.R.Uint64N(g.Groups)), f, "group descriptor")
			}},
			target{"inode", func() {
				in := pick(v.R, b.Inodes)
				v.hugeField(in.Off, inodeFields, describeInode(in))
			}},
		)
		if nodes := extentNodes(b); len(nodes) > 0 {
			ts = append(ts, target{"extent", func() {
				n := pick(v.R, nodes)
				if v.R.IntN(2) == 0 {
					v.hugeField(n.Off, extentHeaderFields, fmt.Sprintf("extent header of inode %d", n.Ino))
				} else if n.Depth == 0 {
					v.hugeField(n.Off+12, extentLeafFields, fmt.Sprintf("extent of inode %d", n.Ino))
				} else {
					v.hugeField(n.Off+12, extentIndexFields, fmt.Sprintf("extent index of inode %d", n.Ino))
				}
			}})
		}
		if dirs := b.inodesWith(func(in *InodeInfo) bool { return in.IsDir() && len(in.Runs) > 0 }); len(dirs) > 0 {
			ts = append(ts, target{"dirent", func() {
				d := pick(v.R, dirs)
				blk := pick(v.R, g.DataBlocks(d))
				// The first entry (".") or the second ("..", at 12).
				v.hugeField(blk+pick(v.R, []int64{0, 12}), dirEntryFields, "directory entry of "+describeInode(d))
			}})
		}
		if xs := b.inodesWith(func(in *InodeInfo) bool { return in.EABlk != 0 || in.EAArea[1] != 0 }); len(xs) > 0 {
			ts = append(ts, target{"xattr", func() {
				in := pick(v.R, xs)
				if in.EABlk != 0 {
					v.hugeField(in.EABlk+32, xattrEntryFields, "xattr block entry of "+describeInode(in))
				} else {
					v.hugeField(in.EAArea[0]+4, xattrEntryFields, "in-inode xattr entry of "+describeInode(in))
				}
			}})
		}
		if b.Journal != nil {
			ts = append(ts, target{"journal", func() {
				inc := uint32(v.getUint(g.Off+sbOff+0x60, 4, false)) | incompatRecover
				v.put32(g.Off+sbOff+0x60, inc)
				v.hugeField(g.FileOff(b.Journal, 0), journalSBFields, "journal superblock (needs_recovery set)")
			}})
		}
	}
	if b.GPT != nil {
		ts = append(ts, target{"gpt", func() {
			c := b.GPT.Primary
			if v.R.IntN(2) == 0 {
				v.hugeField(c.HeaderOff, gptHeaderFields, "GPT header")
			} else {
				v.hugeField(c.EntriesOff+int64(c.EntrySize*pick(v.R, append(c.Used, 0))), gptEntryFields, "GPT entry")
			}
			gptFixCRCs(v, c)
		}})
	}
	if b.MBR != nil {
		ts = append(ts, target{"mbr", func() { v.hugeField(pick(v.R, b.MBR.Entries), mbrEntryFields, "MBR entry") }})
	}
	if b.MetaDB != nil {
		ts = append(ts, target{"bbolt", func() {
			db := pickDB(v)
			m := db.Map
			switch v.R.IntN(4) {
			case 0:
				f := pick(v.R, boltMetaFields)
				val := v.hugeValue(f.Width)
				for _, mo := range []int64{0, int64(m.PageSize)} {
					v.filePutUint(db.Inode, mo+int64(f.Off), f.Width, val)
					b := v.fileGet(db.Inode, mo, 16+64)
					v.filePutUint(db.Inode, mo+16+56, 8, boltMetaSum(b))
				}
				v.say("%s: both metas %s = %d, checksums recomputed", db.Path, f.Name, val)
			case 1:
				p := pick(v.R, m.Pages)
				f := pick(v.R, boltPageFields)
				val := v.hugeValue(f.Width)
				v.filePutUint(db.Inode, p.Off+int64(f.Off), f.Width, val)
				v.say("%s: page %d %s = %d", db.Path, p.ID, f.Name, val)
			case 2:
				e := pick(v.R, m.Elems)
				fs := boltLeafFields
				if e.Branch {
					fs = boltBranchFields
				}
				f := pick(v.R, fs)
				val := v.hugeValue(f.Width)
				v.filePutUint(db.Inode, e.Off+int64(f.Off), f.Width, val)
				v.say("%s: element at %d (page %d) %s = %d", db.Path, e.Off, e.Page, f.Name, val)
			default:
				p := pick(v.R, m.Ptrs)
				val := v.hugeValue(8)
				v.filePutUint(db.Inode, p.Off, 8, val)
				v.say("%s: %s at %d = %d", db.Path, p.Kind, p.Off, val)
			}
		}})
	}
	if len(ts) == 0 {
		v.Skip = true
		return
	}
	t := pick(v.R, ts)
	t.fn()
}
