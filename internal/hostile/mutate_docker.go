//go:build linux

package hostile

import (
	"bytes"
	"strings"
)

// The Docker classes damage what dockerd wrote under /var/lib/docker in
// place: a file keeps its blocks, so new contents have its length (or its
// inode a new size).

// genDockerConfig: config.v2.json, hostconfig.json, an image config or
// repositories.json made huge, deeply nested, invalid UTF-8, hostile in
// its names and ids, or damaged anywhere.
func genDockerConfig(v *Variant) {
	files := v.Base.dockerFiles(roleDockerConfig)
	if len(files) == 0 {
		v.Skip = true
		return
	}
	in := pick(v.R, files)
	data := v.fileGet(in, 0, int(in.Size))
	switch v.R.IntN(6) {
	case 0:
		n := uint64(pick(v.R, []int64{in.Size * 2, 4<<20 + 1, 64 << 20, 1 << 31, 1 << 40, 1<<63 - 1}))
		v.putUint(in.Off+0x04, 4, n&0xFFFFFFFF, false)
		v.putUint(in.Off+0x6C, 4, n>>32, false)
		v.say("%s: i_size %d -> %d", describeInode(in), in.Size, n)
	case 1:
		// As deep as the file is long: [[[[... or {"a":{"a":...
		unit := pick(v.R, []string{"[", `{"a":`, `{"ID":[`})
		v.filePut(in, 0, []byte(strings.Repeat(unit, len(data)/len(unit)+1))[:len(data)])
		v.say("%s: replaced by %d levels of %q", describeInode(in), len(data)/len(unit), unit)
	case 2:
		// Bytes inside strings turned into invalid UTF-8.
		n := 1 + v.R.IntN(8)
		for i := 0; i < n; i++ {
			p := v.R.IntN(len(data))
			if data[p] == '"' || data[p] == '\\' {
				continue
			}
			v.filePut(in, int64(p), []byte{pick(v.R, []byte{0xff, 0xc0, 0xed, 0x80, 0xfe})})
		}
		v.say("%s: %d bytes made invalid UTF-8", describeInode(in), n)
	case 3:
		// A value of a field that names a path, an id or a driver.
		for _, key := range []string{`"ID":"`, `"Name":"`, `"Driver":"`, `"Source":"`, `"LogPath":"`, `"Type":"`, `"HostnamePath":"`} {
			i := bytes.Index(data, []byte(key))
			if i < 0 || v.R.IntN(2) == 0 {
				continue
			}
			start := i + len(key)
			end := bytes.IndexByte(data[start:], '"')
			if end <= 0 {
				continue
			}
			s := pick(v.R, hostileStrings)
			val := []byte(strings.Repeat(s, end/len(s)+1))[:end]
			v.filePut(in, int64(start), jsonSafe(val))
			v.say("%s: %s%q", describeInode(in), key, val)
			return
		}
		fallthrough
	case 4:
		v.flip(v.Base.FS.FileOff(in, 0), min(in.Size, v.Base.FS.BS))
		v.say("in %s", describeInode(in))
	default:
		v.putUint(in.Off+0x04, 4, uint64(v.R.Int64N(in.Size)), false)
		v.say("%s cut short", describeInode(in))
	}
}

// jsonSafe keeps a replacement inside its JSON string: a quote or a
// backslash would end it or escape the next byte.
func jsonSafe(b []byte) []byte {
	out := bytes.Clone(b)
	for i, c := range out {
		if c == '"' || c == '\\' {
			out[i] = '.'
		}
	}
	return out
}

// genDockerIDs: a mount id, init id or link name with a separator or
// "..", or another layer's; a lower file whose entries climb, name links
// that do not exist, or name the layer itself (a chain that cycles).
func genDockerIDs(v *Variant) {
	b := v.Base
	lowers, ids := b.dockerFiles(roleDockerLower), b.dockerFiles(roleDockerID)
	if len(lowers) == 0 && len(ids) == 0 {
		v.Skip = true
		return
	}
	if len(lowers) > 0 && (len(ids) == 0 || v.R.IntN(2) == 0) {
		in := pick(v.R, lowers)
		data := v.fileGet(in, 0, int(in.Size))
		entries := strings.Split(strings.TrimSpace(string(data)), ":")
		links := b.dockerFiles(roleDockerLink)
		switch v.R.IntN(4) {
		case 0:
			// Every entry the first: the chain names one layer again and again.
			rep := strings.Repeat(entries[0]+":", len(entries))
			v.filePut(in, 0, []byte(rep[:len(data)]))
			v.say("%s: every entry %s", describeInode(in), entries[0])
		case 1:
			// An entry that names the layer whose lower this is (the
			// layer's own link, when it has one of the same length).
			self := strings.TrimSuffix(in.Path, "/lower") + "/link"
			for _, l := range b.dockerFiles(roleDockerID) {
				if l.Path == self {
					own := v.fileGet(l, 0, int(l.Size))
					own = bytes.TrimSpace(own)
					if len(own) == len(entries[0])-2 {
						v.filePut(in, 2, own)
						v.say("%s: its first entry is the layer's own link l/%s (a cycle)", describeInode(in), own)
						return
					}
				}
			}
			fallthrough
		case 2:
			s := pick(v.R, []string{"l/../../../../../etc", "../../../../../../..", "l/", "/etc/passwd", "l/.", "l/..", "::::"})
			val := []byte(strings.Repeat(s, len(data)/len(s)+1))[:len(data)]
			v.filePut(in, 0, val)
			v.say("%s: %q", describeInode(in), val)
		default:
			if len(links) == 0 {
				v.Skip = true
				return
			}
			// A link name that names no link (one byte changed).
			p := 2 + v.R.IntN(len(entries[0])-2)
			c := v.fileGet(in, int64(p), 1)
			c[0] ^= 0x01
			v.filePut(in, int64(p), c)
			v.say("%s: a byte of its first link name changed", describeInode(in))
		}
		return
	}
	in := pick(v.R, ids)
	data := v.fileGet(in, 0, int(in.Size))
	s := pick(v.R, hostileStrings)
	if v.R.IntN(3) == 0 {
		// Another layer's id or link, or the same with "-init".
		o := pick(v.R, ids)
		other := v.fileGet(o, 0, int(o.Size))
		v.filePut(in, 0, append(other, make([]byte, max(0, len(data)-len(other)))...)[:len(data)])
		v.say("%s takes the contents of %s", describeInode(in), describeInode(o))
		return
	}
	v.filePut(in, 0, []byte(strings.Repeat(s, len(data)/len(s)+1))[:len(data)])
	v.say("%s: %q", describeInode(in), strings.Repeat(s, len(data)/len(s)+1)[:len(data)])
}

// genDockerLinks: an l/ link whose target leaves the layer store, points
// at the link directory itself, at another link (a loop), or at a layer
// that is not there.
func genDockerLinks(v *Variant) {
	links := v.Base.dockerFiles(roleDockerLink)
	if len(links) == 0 {
		v.Skip = true
		return
	}
	in := pick(v.R, links)
	data := v.fileGet(in, 0, int(in.Size))
	var t string
	switch v.R.IntN(4) {
	case 0:
		o := pick(v.R, links)
		t = "../l/" + linkName(o) // a link to a link; to itself when o is in
	case 1:
		t = "../" + linkName(in) + "/diff"
	case 2:
		t = pick(v.R, []string{"/", "/etc", "../../../../../../../../etc", "..", ".", "../l", "diff", "../../overlay2/l/" + linkName(in)})
	default:
		// The target's id with a separator inside, same length.
		p := 3 + v.R.IntN(max(1, len(data)-8))
		c := bytes.Clone(data)
		c[p] = '/'
		v.filePut(in, 0, c)
		v.say("%s: target %q", describeInode(in), c)
		return
	}
	// A slow symlink's target is its data; the size says how much.
	buf := make([]byte, len(data))
	copy(buf, t)
	v.filePut(in, 0, buf)
	v.putUint(in.Off+0x04, 4, uint64(min(len(t), len(data))), false)
	v.say("%s: target %q", describeInode(in), t[:min(len(t), len(data))])
}

// genDockerLogs: a json-file or local log damaged: a frame length huge or
// wrong, bytes flipped (inside gzip streams too), the file cut or made
// huge.
func genDockerLogs(v *Variant) {
	logs := v.Base.dockerFiles(roleDockerLog)
	if len(logs) == 0 {
		v.Skip = true
		return
	}
	in := pick(v.R, logs)
	switch v.R.IntN(4) {
	case 0:
		// A 4-byte length (the start of a local frame) made huge.
		v.filePut(in, 0, []byte{0x7f, 0xff, 0xff, byte(v.R.IntN(256))})
		v.say("%s: first 4 bytes (a local frame's length) made huge", describeInode(in))
	case 1:
		v.flip(v.Base.FS.FileOff(in, 0), min(in.Size, v.Base.FS.BS))
		v.say("in %s", describeInode(in))
	case 2:
		v.putUint(in.Off+0x04, 4, uint64(v.R.Int64N(in.Size)), false)
		v.say("%s cut short", describeInode(in))
	default:
		n := uint64(pick(v.R, []int64{in.Size + 1, 1 << 30, 1 << 40}))
		v.putUint(in.Off+0x04, 4, n&0xFFFFFFFF, false)
		v.putUint(in.Off+0x6C, 4, n>>32, false)
		v.say("%s: i_size %d -> %d", describeInode(in), in.Size, n)
	}
}
