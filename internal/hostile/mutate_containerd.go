//go:build linux

package hostile

import (
	"fmt"
	"strings"
)

// genFileSize gives a file that ctrlift reads whole (a database, a CRI
// status, a content blob) a huge or slightly wrong size: its data then
// ends early or continues as a hole.
func genFileSize(v *Variant) {
	files := v.Base.inodesWith(func(in *InodeInfo) bool {
		switch in.Role {
		case "metadb", "snapdb", "cri-file", "blob":
			return true
		}
		return false
	})
	in := pick(v.R, files)
	if v.R.IntN(3) == 0 {
		in = v.Base.MetaDB.Inode
	}
	sizes := []int64{0, 1, in.Size - 1, in.Size + 1, in.Size*2 + 1, 64 << 20, 256<<20 + 1, 1<<31 - 16, 1 << 31, 1<<32 - 1, 1 << 40, 1 << 62, 1<<63 - 1}
	n := uint64(pick(v.R, sizes))
	v.putUint(in.Off+0x04, 4, n&0xFFFFFFFF, false)
	v.putUint(in.Off+0x6C, 4, n>>32, false)
	v.say("i_size of %s: %d -> %d", describeInode(in), in.Size, n)
}

// --- bbolt ---

func pickDB(v *Variant) *BoltFile {
	b := v.Base
	if len(b.SnapDBs) == 0 || v.R.IntN(2) == 0 {
		return b.MetaDB
	}
	return pick(v.R, b.SnapDBs)
}

// SetMetaValue overwrites the value of key in meta.db's bucket path with
// val, which must have the value's length (so the page stays valid).
func SetMetaValue(v *Variant, val []byte, key string, path ...string) error {
	db := v.Base.MetaDB
	if db == nil {
		return fmt.Errorf("%s: no meta.db", v.Base.Name)
	}
	kv, ok := db.Map.BucketKV(key, path...)
	if !ok || kv.IsBucket || kv.ValLen != len(val) {
		return fmt.Errorf("%s: no %d-byte value %s in bucket %v", db.Path, len(val), key, path)
	}
	v.filePut(db.Inode, kv.ValOff, val)
	v.say("%s: value of %s/%s set to %x", db.Path, strings.Join(path, "/"), key, val)
	return nil
}

func genBoltFlip(v *Variant) {
	db := pickDB(v)
	m := db.Map
	n := 1 + v.R.IntN(16)
	for i := 0; i < n; i++ {
		var pos int64
		if v.R.IntN(3) == 0 {
			pos = v.R.Int64N(int64(m.Size))
		} else {
			// Inside a reachable page, where flips matter.
			p := pick(v.R, m.Pages)
			pos = p.Off + v.R.Int64N(int64(m.PageSize))
		}
		c := v.fileGet(db.Inode, pos, 1)
		c[0] ^= byte(1 + v.R.IntN(255))
		v.filePut(db.Inode, pos, c)
	}
	v.say("%d bytes changed in %s", n, db.Path)
}

func genBoltTruncate(v *Variant) {
	db := pickDB(v)
	m := db.Map
	in := db.Inode
	ps := int64(m.PageSize)
	pages := int64(m.Size) / ps
	var size int64
	switch v.R.IntN(4) {
	case 0:
		size = ps * v.R.Int64N(pages) // a page boundary
	case 1:
		size = ps*v.R.Int64N(pages) + 1 + v.R.Int64N(ps-1) // mid-page
	case 2:
		size = v.R.Int64N(2 * ps) // not even two meta pages
	default:
		// The tail pages read as zeros (a hole): blocks never written.
		from := ps * (2 + v.R.Int64N(max(pages-2, 1)))
		for p := from; p < int64(m.Size); p += v.Base.FS.BS {
			v.filePut(in, p, make([]byte, min(v.Base.FS.BS, int64(m.Size)-p)))
		}
		v.say("%s zeroed from byte %d", db.Path, from)
		return
	}
	v.putUint(in.Off+0x04, 4, uint64(size), false)
	v.putUint(in.Off+0x6C, 4, 0, false)
	v.say("%s i_size %d -> %d", db.Path, m.Size, size)
}

func genBoltCycle(v *Variant) {
	db := pickDB(v)
	m := db.Map
	var ptrs []BoltPtr
	for _, p := range m.Ptrs {
		if len(p.Ancestors) > 0 {
			ptrs = append(ptrs, p)
		}
	}
	if len(ptrs) == 0 {
		v.Skip = true
		return
	}
	p := pick(v.R, ptrs)
	var to uint64
	var why string
	switch v.R.IntN(5) {
	case 0, 1:
		to, why = pick(v.R, p.Ancestors), "an ancestor (cycle)"
	case 2:
		to, why = p.Ancestors[len(p.Ancestors)-1], "the page holding it (cycle)"
	case 3:
		to, why = pick(v.R, m.Pages).ID, "another reachable page (shared)"
	default:
		to, why = pick(v.R, []uint64{0, 1}), "a meta page"
	}
	v.filePutUint(db.Inode, p.Off, 8, to)
	v.say("%s: %s at file offset %d (-> page %d) now points at page %d, %s", db.Path, p.Kind, p.Off, p.Target, to, why)
}

func genBoltMeta(v *Variant) {
	db := pickDB(v)
	ps := int64(db.Map.PageSize)
	fixSum := func(meta int64) {
		b := v.fileGet(db.Inode, meta, 16+64)
		v.filePutUint(db.Inode, meta+16+56, 8, boltMetaSum(b))
	}
	both := []int64{0, ps}
	one := []int64{int64(db.Map.Meta) * ps}
	switch v.R.IntN(6) {
	case 0:
		for _, m := range both {
			v.filePut(db.Inode, m, make([]byte, ps))
		}
		v.say("%s: both meta pages zeroed", db.Path)
	case 1:
		for _, m := range both {
			p := m + 16 + v.R.Int64N(64)
			c := v.fileGet(db.Inode, p, 1)
			c[0] ^= byte(1 << v.R.IntN(8))
			v.filePut(db.Inode, p, c)
		}
		v.say("%s: a bit flipped in both meta pages (checksums now wrong)", db.Path)
	case 2, 3:
		// The same field of both metas set, checksums recomputed: bbolt
		// trusts them.
		f := pick(v.R, boltMetaFields)
		val := v.hugeValue(f.Width)
		targets := both
		if v.R.IntN(2) == 0 {
			targets = one
		}
		for _, m := range targets {
			v.filePutUint(db.Inode, m+int64(f.Off), f.Width, val)
			fixSum(m)
		}
		v.say("%s: %s = %d in %d meta page(s), checksum recomputed", db.Path, f.Name, val, len(targets))
	case 4:
		// The newest meta's tree broken (its root to an invalid page), the
		// other meta still checksummed: the reader must fall back or fail.
		m := one[0]
		v.filePutUint(db.Inode, m+32, 8, pick(v.R, []uint64{0, 1, uint64(db.Map.Size) / uint64(ps), 1 << 40}))
		fixSum(m)
		o := ps - m
		c := v.fileGet(db.Inode, o+16, 1)
		c[0] ^= 0xFF
		v.filePut(db.Inode, o+16, c)
		v.say("%s: newest meta's root invalid, other meta's magic broken", db.Path)
	default:
		// Both metas claim the same txid with different roots.
		src := v.fileGet(db.Inode, one[0], 16+64)
		v.filePut(db.Inode, ps-one[0], src)
		v.say("%s: meta page copied over the other", db.Path)
	}
}

// --- containerd state ---

// sameLenOther returns a name of the same length as s among names, not s.
func sameLenOther(v *Variant, names []string, s string) (string, bool) {
	var c []string
	for _, n := range names {
		if len(n) == len(s) && n != s {
			c = append(c, n)
		}
	}
	if len(c) == 0 {
		return "", false
	}
	return pick(v.R, c), true
}

func snapDB(b *Base) *BoltFile {
	for _, d := range b.SnapDBs {
		if strings.Contains(d.Path, "overlayfs") {
			return d
		}
	}
	return nil
}

func genSnapshotChain(v *Variant) {
	b := v.Base
	db := snapDB(b)
	if db == nil {
		v.Skip = true
		return
	}
	var withParent []Snapshot
	for _, s := range b.Snapshots {
		if s.Parent.ValLen > 0 {
			withParent = append(withParent, s)
		}
	}
	if len(withParent) == 0 {
		v.Skip = true
		return
	}
	s := pick(v.R, withParent)
	parent := string(v.fileGet(db.Inode, s.Parent.ValOff, s.Parent.ValLen))
	var names []string
	for _, o := range b.Snapshots {
		names = append(names, o.Name)
	}
	switch v.R.IntN(6) {
	case 0:
		if len(s.Name) == len(parent) {
			v.filePut(db.Inode, s.Parent.ValOff, []byte(s.Name))
			v.say("snapshot %s is its own parent (loop)", s.Name)
			return
		}
		fallthrough
	case 1:
		// The parent's parent is the child: a two-step loop.
		for _, p := range b.Snapshots {
			if p.Name == parent && p.Parent.ValLen == len(s.Name) {
				v.filePut(db.Inode, p.Parent.ValOff, []byte(s.Name))
				v.say("snapshot %s and its parent %s are each other's parent (loop)", s.Name, parent)
				return
			}
		}
		fallthrough
	case 2:
		// Point at a snapshot higher up (a descendant) to make a longer loop.
		if o, ok := sameLenOther(v, names, parent); ok {
			v.filePut(db.Inode, s.Parent.ValOff, []byte(o))
			v.say("snapshot %s's parent %s -> %s", s.Name, parent, o)
			return
		}
		fallthrough
	case 3:
		// A parent name that names no snapshot.
		q := []byte(parent)
		q[len(q)-1] ^= 0x01
		v.filePut(db.Inode, s.Parent.ValOff, q)
		v.say("snapshot %s's parent %q -> %q (missing)", s.Name, parent, q)
	case 4:
		// The snapshot id: a directory that does not exist, or another
		// snapshot's directory.
		if s.ID.ValLen == 0 {
			v.Skip = true
			return
		}
		id := make([]byte, s.ID.ValLen)
		for i := range id {
			id[i] = 0xFF
		}
		id[len(id)-1] = byte(v.R.IntN(0x80))
		if o := pick(v.R, b.Snapshots); v.R.IntN(2) == 0 && o.ID.ValLen == s.ID.ValLen {
			id = v.fileGet(db.Inode, o.ID.ValOff, o.ID.ValLen)
			v.say("snapshot %s takes the id of %s", s.Name, o.Name)
		} else {
			v.say("snapshot %s gets id bytes %x", s.Name, id)
		}
		v.filePut(db.Inode, s.ID.ValOff, id)
	default:
		if s.Kind.ValLen > 0 {
			k := byte(pick(v.R, []int{0, 1, 2, 3, 4, 0x7F, 0xFF}))
			v.filePut(db.Inode, s.Kind.ValOff, []byte{k})
			v.say("snapshot %s kind -> %d", s.Name, k)
		} else {
			v.Skip = true
		}
	}
}

// hostileStrings are same-length replacements for names read from the
// evidence: path traversal, separators, control bytes.
var hostileStrings = []string{"../../../../../../../../../../../../etc/passwd", "/", "..", "a/../../b", "\x00\n\r\t", "%s%n%x", "\xff\xfe"}

func genContainerdValues(v *Variant) {
	b := v.Base
	if len(b.CRIFiles) > 0 && v.R.IntN(4) == 0 {
		f := pick(v.R, b.CRIFiles)
		if v.R.IntN(2) == 0 {
			v.flip(b.FS.FileOff(f, 0), min(f.Size, b.FS.BS))
			v.say("in CRI file %s", f.Path)
		} else {
			v.putUint(f.Off+0x04, 4, uint64(v.R.Int64N(f.Size)), false)
			v.say("CRI file %s cut short", f.Path)
		}
		return
	}
	db := pickDB(v)
	var vals []BoltKV
	for _, kv := range db.Map.KVs {
		if !kv.IsBucket && kv.ValLen > 0 {
			vals = append(vals, kv)
		}
	}
	if len(vals) == 0 {
		v.Skip = true
		return
	}
	kv := pick(v.R, vals)
	where := strings.Join(append(append([]string{}, kv.Bucket...), kv.Key), "/")
	switch v.R.IntN(4) {
	case 0:
		v.filePut(db.Inode, kv.ValOff, make([]byte, kv.ValLen))
		v.say("%s: value of %s zeroed", db.Path, where)
	case 1:
		s := pick(v.R, hostileStrings)
		buf := []byte(strings.Repeat(s, kv.ValLen/len(s)+1))[:kv.ValLen]
		v.filePut(db.Inode, kv.ValOff, buf)
		v.say("%s: value of %s -> %q", db.Path, where, buf)
	default:
		n := 1 + v.R.IntN(4)
		for i := 0; i < n; i++ {
			p := kv.ValOff + v.R.Int64N(int64(kv.ValLen))
			c := v.fileGet(db.Inode, p, 1)
			c[0] ^= byte(1 + v.R.IntN(255))
			v.filePut(db.Inode, p, c)
		}
		v.say("%s: %d bytes of the value of %s changed", db.Path, n, where)
	}
}

// symlinkTargets replace a layer directory: the root, the analyst's /etc,
// an escape, the directory itself, another layer.
var symlinkTargets = []string{"/", "/etc", "../../../../../../../../../../etc", "..", ".", "../1/fs", "/proc/self/root", "/var/lib/containerd", "fs"}

func genLayerSymlink(v *Variant) {
	b := v.Base
	cands := b.inodesWith(func(in *InodeInfo) bool {
		return in.Role == "layer-dir" || in.Role == "layer-parent" || (in.Role == "path" && in.Path != ".")
	})
	in := pick(v.R, b.Layers)
	if v.R.IntN(3) == 0 {
		in = pick(v.R, cands)
	}
	if v.R.IntN(4) == 0 {
		// A slow symlink: the directory's own blocks become the target.
		mode := uint16(v.getUint(in.Off, 2, false))&0x0FFF | 0xA000
		v.putUint(in.Off, 2, uint64(mode), false)
		v.say("%s turned into a symlink whose target is its directory block", describeInode(in))
		return
	}
	t := pick(v.R, symlinkTargets)
	v.putUint(in.Off, 2, 0xA1FF, false)
	flags := uint32(v.getUint(in.Off+0x20, 4, false)) &^ (inodeFlagExtents | inodeFlagInline | inodeFlagIndex)
	v.put32(in.Off+0x20, flags)
	ib := make([]byte, 60)
	copy(ib, t)
	v.put(in.Off+0x28, ib)
	v.putUint(in.Off+0x04, 4, uint64(len(t)), false)
	v.putUint(in.Off+0x1C, 4, 0, false) // i_blocks: a fast symlink
	v.putUint(in.Off+0x68, 4, 0, false) // no xattr block
	v.say("%s replaced by a symlink to %q", describeInode(in), t)
}
