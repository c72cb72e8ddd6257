package cstorage

import (
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"syscall"

	"github.com/ctrlift/ctrlift/image/ext4"
	"github.com/ctrlift/ctrlift/internal/overlaystore"
	"github.com/ctrlift/ctrlift/vfs"
)

// IDMap is how a rootless user's namespace mapped ids, from the
// filesystem's own etc/passwd and etc/subuid (etc/subgid): container id 0
// is the user's host id, container ids 1..Count are host ids Start..
// Start+Count-1. Owners in the store's layers are host ids.
type IDMap struct {
	User     string `json:"user"`
	UID      uint32 `json:"uid"`
	GID      uint32 `json:"gid"`
	SubUID   uint32 `json:"subuid_start"`
	SubUIDs  uint32 `json:"subuid_count"`
	SubGID   uint32 `json:"subgid_start"`
	SubGIDs  uint32 `json:"subgid_count"`
	HomeUID  uint32 `json:"home_uid"` // the home directory's owner as stored
	Source   string `json:"source"`   // the files that said so
	Complete bool   `json:"complete"` // passwd and both subid files matched
}

// String describes the mapping in one line.
func (m *IDMap) String() string {
	s := fmt.Sprintf("rootless store of %s (uid %d): container uid 0 = host %d", m.User, m.UID, m.UID)
	if m.SubUIDs > 0 {
		s += fmt.Sprintf(", 1-%d = host %d-%d", m.SubUIDs, m.SubUID, m.SubUID+m.SubUIDs-1)
	}
	if !m.Complete {
		s += " (partial: " + m.Source + ")"
	} else {
		s += " (" + m.Source + ")"
	}
	return s
}

const maxAccountFile = 4 << 20

// readIDMap reads the mapping of a rootless store's user from the files of
// the filesystem that holds it (etc/ beside the home directories: the
// root filesystem, or an ostree deployment's). nil when nothing is known.
func readIDMap(fsys fs.FS, ref StoreRef, warn func(string)) *IDMap {
	st, err := fs.Stat(fsys, ref.Home)
	if err != nil {
		return nil
	}
	m := &IDMap{User: ref.User}
	if u, ok := ownerOf(st); ok {
		m.HomeUID = u
	}
	// The accounts of the filesystem holding the homes. An ostree
	// deployment's etc/ is in its checksum directory, not read here: the
	// mapping is then partial (the home's owner).
	etc := "etc"
	var found []string
	passwdOK := false
	if b, err := overlaystore.ReadFile(fsys, path.Join(etc, "passwd"), maxAccountFile); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Split(line, ":")
			if len(f) >= 4 && f[0] == ref.User {
				u, err1 := strconv.ParseUint(f[2], 10, 32)
				g, err2 := strconv.ParseUint(f[3], 10, 32)
				if err1 == nil && err2 == nil {
					m.UID, m.GID, passwdOK = uint32(u), uint32(g), true
					found = append(found, path.Join(etc, "passwd"))
				}
				break
			}
		}
	}
	if !passwdOK {
		m.UID = m.HomeUID
	}
	sub := func(name string) (uint32, uint32, bool) {
		b, err := overlaystore.ReadFile(fsys, path.Join(etc, name), maxAccountFile)
		if err != nil {
			return 0, 0, false
		}
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Split(strings.TrimSpace(line), ":")
			if len(f) != 3 || (f[0] != ref.User && f[0] != strconv.FormatUint(uint64(m.UID), 10)) {
				continue
			}
			start, err1 := strconv.ParseUint(f[1], 10, 32)
			count, err2 := strconv.ParseUint(f[2], 10, 32)
			if err1 != nil || err2 != nil || count == 0 || start+count > 1<<32 {
				warn(fmt.Sprintf("%s: entry %q is not user:start:count", path.Join(etc, name), overlaystore.Truncate(line)))
				return 0, 0, false
			}
			found = append(found, path.Join(etc, name))
			return uint32(start), uint32(count), true
		}
		return 0, 0, false
	}
	uok, gok := false, false
	m.SubUID, m.SubUIDs, uok = sub("subuid")
	m.SubGID, m.SubGIDs, gok = sub("subgid")
	m.Complete = passwdOK && uok && gok
	if len(found) == 0 {
		m.Source = "the home directory's owner only"
	} else {
		m.Source = strings.Join(found, ", ")
	}
	return m
}

// ownerOf returns the uid in a FileInfo's Sys when it carries one.
func ownerOf(fi fs.FileInfo) (uint32, bool) {
	switch in := fi.Sys().(type) {
	case *vfs.Inode:
		return in.Uid, true
	case *ext4.Inode:
		return in.Uid, true
	case *syscall.Stat_t:
		return in.Uid, true
	}
	return 0, false
}
