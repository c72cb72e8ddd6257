//go:build linux

package hostile

import (
	"bytes"
	"strings"
)

// escapingIDs replace a 64-digit id in a store file, keeping its length:
// path escapes, separators and ids of no record.
var escapingIDs = []string{
	strings.Repeat("../", 21) + "x",
	"../../../../../../../../../../../../../../../../../../../etc/passw",
	strings.Repeat("a", 31) + "/" + strings.Repeat("b", 32),
	strings.Repeat("0", 64),
	strings.Repeat("A", 64),
	"/" + strings.Repeat("a", 63),
	strings.Repeat(".", 64),
}

// genStoreJSON damages layers.json, images.json or containers.json: an id
// made a path escape or another record's id (parent loops), a structural
// byte changed, a number made huge, a string unterminated, or the file
// cut short.
func genStoreJSON(v *Variant) {
	f := pick(v.R, v.Base.StoreFiles)
	data := f.Data
	ids := hexIDs(data)
	switch k := v.R.IntN(6); {
	case k == 0 && len(ids) > 0:
		at := pick(v.R, ids)
		id := pick(v.R, escapingIDs)
		v.filePut(f.Inode, int64(at), []byte(id))
		v.say("%s: id at byte %d replaced by %q", f.Path, at, id)
	case k == 1 && len(ids) > 1:
		// Another record's id: a layer its own parent, a loop of parents,
		// a container on an image's layer, duplicate records.
		at, other := pick(v.R, ids), pick(v.R, ids)
		v.filePut(f.Inode, int64(at), data[other:other+64])
		v.say("%s: id at byte %d replaced by the id at byte %d", f.Path, at, other)
	case k == 2:
		structural := []int{}
		for i, c := range data {
			if bytes.IndexByte([]byte(`[]{}":,`), c) >= 0 {
				structural = append(structural, i)
			}
		}
		if len(structural) == 0 {
			v.Skip = true
			return
		}
		at := pick(v.R, structural)
		c := pick(v.R, []byte(`[{"\ 0x`))
		v.filePut(f.Inode, int64(at), []byte{c})
		v.say("%s: byte %d %q -> %q", f.Path, at, data[at], c)
	case k == 3:
		var nums []int
		for _, key := range []string{"diff-size", "compressed-size", "uidset", "gidset", "created", "names"} {
			nums = append(nums, keyOffsets(data, key)...)
		}
		if len(nums) == 0 {
			v.Skip = true
			return
		}
		at := pick(v.R, nums)
		val := pick(v.R, []string{"99999999999999999999", "-1", "1e308", "[[[[[[[[[[[[[[[[", `"\ud800"`, "null"})
		n := min(len(val), len(data)-at)
		v.filePut(f.Inode, int64(at), []byte(val[:n]))
		v.say("%s: value at byte %d overwritten with %q", f.Path, at, val[:n])
	case k == 4:
		size := v.R.Int64N(int64(len(data)) + 1)
		v.filePutSize(f.Inode, size)
		v.say("%s: cut to %d of %d bytes", f.Path, size, len(data))
	default:
		n := 1 + v.R.IntN(8)
		for i := 0; i < n; i++ {
			at := v.R.Int64N(int64(len(data)))
			c := v.fileGet(f.Inode, at, 1)
			c[0] ^= byte(1 + v.R.IntN(255))
			v.filePut(f.Inode, at, c)
		}
		v.say("%s: %d bytes changed", f.Path, n)
	}
}

// linkTargets replace an overlay l/ link's target (the link is read as
// data, never followed): escapes, loops back into l/, absolute paths.
var linkTargets = []string{"../../../../../../etc/diff", "/etc", "../l/x/diff", "..", "../" + strings.Repeat("a", 64) + "/../../diff",
	"./diff", "../../overlay/l/diff", "/proc/self/root/diff"}

// genStoreLinks damages the overlay driver's l/ links and lower files,
// and the layers.json record of a layer so that its lower file is what
// gives the chain: link names with / or .., self-references and loops.
func genStoreLinks(v *Variant) {
	b := v.Base
	if len(b.StoreFiles) > 0 && v.R.IntN(2) == 0 {
		// Unknown layer ids in layers.json: chains come from lower files.
		for _, f := range b.StoreFiles {
			if !strings.HasSuffix(f.Path, "layers.json") {
				continue
			}
			for _, at := range hexIDs(f.Data) {
				if v.R.IntN(2) == 0 {
					v.filePut(f.Inode, int64(at), []byte("f"))
				}
			}
		}
		v.say("layers.json ids changed: chains from lower files and l/ links")
	}
	switch k := v.R.IntN(3); {
	case k == 0 && len(b.StoreLinks) > 0:
		in := pick(v.R, b.StoreLinks)
		t := pick(v.R, linkTargets)
		if len(t) > 59 {
			t = t[:59]
		}
		ib := make([]byte, 60)
		copy(ib, t)
		v.put(in.Off+0x28, ib)
		v.putUint(in.Off+0x04, 4, uint64(len(t)), false)
		v.say("%s now points to %q", in.Path, t)
	case k == 1 && len(b.LowerFiles) > 0:
		f := pick(v.R, b.LowerFiles)
		vals := []string{"l/../../../etc", "l/..", "l/.", "l//x", "x/ABCDEFGHIJKLMNOPQRSTUVWXYZ", "l/" + strings.Repeat("A", 26) + ":l/" + strings.Repeat("A", 26)}
		val := pick(v.R, vals)
		n := min(len(val), len(f.Data))
		v.filePut(f.Inode, 0, []byte(val[:n]))
		v.say("%s starts with %q", f.Path, val[:n])
	case len(b.LowerFiles) > 0:
		// A lower file cut short or reading past its end.
		f := pick(v.R, b.LowerFiles)
		v.filePutSize(f.Inode, int64(len(f.Data))*int64(1+v.R.IntN(3)))
		v.say("%s: size changed (repeats or garbage past its end)", f.Path)
	default:
		v.Skip = true
	}
}

// genPodmanBolt damages Podman's bolt_state.db as the bbolt classes do
// meta.db: flipped bytes in reachable pages.
func genPodmanBolt(v *Variant) {
	db := pick(v.R, v.Base.PodmanDBs)
	m := db.Map
	n := 1 + v.R.IntN(16)
	for i := 0; i < n; i++ {
		p := pick(v.R, m.Pages)
		pos := p.Off + v.R.Int64N(int64(m.PageSize))
		c := v.fileGet(db.Inode, pos, 1)
		c[0] ^= byte(1 + v.R.IntN(255))
		v.filePut(db.Inode, pos, c)
	}
	v.say("%d bytes changed in %s", n, db.Path)
}

// filePutSize sets an inode's i_size.
func (v *Variant) filePutSize(in *InodeInfo, n int64) {
	v.putUint(in.Off+0x04, 4, uint64(n)&0xFFFFFFFF, false)
	v.putUint(in.Off+0x6C, 4, uint64(n)>>32, false)
}
