package export

import (
	"encoding/base64"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/ctrlift/ctrlift/vfs"
)

// Record is ctrlift's one JSON form of an inode: a line of an export's
// manifest, of a diff, of fs ls and fs stat. Paths are absolute inside
// the tree ("/etc/passwd"). JSON cannot carry bytes that are not UTF-8, so
// a path or link target that is not valid UTF-8 is also given exactly in
// path_b64 or target_b64. Times are integer nanoseconds since the epoch
// (jq before 1.7 rounds integers above 2^53). Xattr values are base64.
type Record struct {
	Change string `json:"change,omitempty"` // diff: added, modified or deleted
	// MountPoint (diff): an empty file or directory the runtime made as
	// the mount point of a volume, /proc, /dev, ..., not the process.
	MountPoint bool `json:"mount_point,omitempty"`
	// ContentUnchecked (diff): metadata equal, contents not compared
	// (past the comparison budget), reported modified.
	ContentUnchecked bool   `json:"content_unchecked,omitempty"`
	Path             string `json:"path"`
	PathB64          string `json:"path_b64,omitempty"`
	Type             string `json:"type"` // file, dir, symlink, char, block, fifo, socket
	Mode             string `json:"mode"` // permission bits in octal, "0644"
	UID              uint32 `json:"uid"`
	GID              uint32 `json:"gid"`
	Size             *int64 `json:"size,omitempty"`
	Nlink            uint32 `json:"nlink,omitempty"`
	SHA256           string `json:"sha256,omitempty"`
	MD5              string `json:"md5,omitempty"`  // with --hash md5
	SHA1             string `json:"sha1,omitempty"` // with --hash sha1
	// SHA256Omitted says why a file has no digests (only sparse files
	// past the hashing budget, see holeBudget).
	SHA256Omitted string            `json:"sha256_omitted,omitempty"`
	Target        *string           `json:"target,omitempty"`
	TargetB64     string            `json:"target_b64,omitempty"`
	MtimeNs       int64             `json:"mtime_ns"`
	AtimeNs       int64             `json:"atime_ns"`
	CtimeNs       int64             `json:"ctime_ns"`
	CrtimeNs      *int64            `json:"crtime_ns,omitempty"` // creation time (ext4, XFS v5), which tar cannot carry
	Inode         uint64            `json:"inode,omitempty"`     // in its layer's filesystem
	Rdev          string            `json:"rdev,omitempty"`      // "major:minor"
	HardlinkTo    string            `json:"hardlink_to,omitempty"`
	Xattrs        map[string]string `json:"xattrs_b64,omitempty"`
	Flags         string            `json:"flags,omitempty"`      // the source's inode flags, hex
	Blocks        int64             `json:"blocks_512,omitempty"` // allocated space in 512-byte units
	Sparse        bool              `json:"sparse,omitempty"`
	Whiteout      bool              `json:"whiteout,omitempty"`
	Opaque        bool              `json:"opaque,omitempty"`
	Layer         string            `json:"layer,omitempty"`
	// DataLayer: a metadata-only copy-up (overlayfs metacopy) whose data
	// is read from this lower layer. DataMissing: its data is in no layer
	// on the disk; the entry is written with its metadata and no content.
	DataLayer   string `json:"data_layer,omitempty"`
	DataMissing bool   `json:"data_missing,omitempty"`
	// MetadataOnly (diff, modified): only the metadata changed (a
	// metadata-only copy-up).
	MetadataOnly bool `json:"metadata_only,omitempty"`
}

// NewRecord describes in, found at the absolute path p of fsys: every
// field but the digest, hardlink and overlay ones. A symlink's target is
// read from fsys.
func NewRecord(p string, in *vfs.Inode, fsys vfs.FS) (Record, error) {
	_, kind := fileType(in)
	if kind == "" && in.IsSocket() {
		kind = "socket"
	}
	r := Record{
		Path: p, Type: kind, Mode: fmt.Sprintf("%04o", in.Mode&0o7777), UID: in.Uid, GID: in.Gid, Nlink: in.Nlink,
		MtimeNs: in.Mtime.UnixNano(), AtimeNs: in.Atime.UnixNano(), CtimeNs: in.Ctime.UnixNano(), Inode: in.Ino,
		Blocks: in.Blocks, Sparse: in.IsRegular() && in.Sparse(),
	}
	if !utf8.ValidString(p) {
		r.Path, r.PathB64 = EscapeInvalid(p), base64.StdEncoding.EncodeToString([]byte(p))
	}
	if in.Flags != 0 {
		r.Flags = fmt.Sprintf("0x%x", in.Flags)
	}
	if in.HasCrtime {
		ns := in.Crtime.UnixNano()
		r.CrtimeNs = &ns
	}
	switch {
	case in.IsRegular():
		size := in.Size
		r.Size = &size
	case in.IsSymlink():
		t, err := fsys.LinkTarget(in)
		if err != nil {
			return r, err
		}
		r.SetTarget(t)
	case in.IsCharDev() || in.IsBlockDev():
		r.Rdev = fmt.Sprintf("%d:%d", in.RdevMajor, in.RdevMinor)
	}
	if len(in.Xattrs) > 0 {
		r.Xattrs = map[string]string{}
		for _, x := range in.Xattrs {
			r.Xattrs[x.Name] = base64.StdEncoding.EncodeToString(x.Value)
		}
	}
	return r, nil
}

// SetTarget records a symlink's target (and its size, the target's length).
func (r *Record) SetTarget(t string) {
	size := int64(len(t))
	r.Size = &size
	if !utf8.ValidString(t) {
		r.TargetB64 = base64.StdEncoding.EncodeToString([]byte(t))
		t = EscapeInvalid(t)
	}
	r.Target = &t
}

// EscapeInvalid writes each byte of s that is not part of valid UTF-8 as
// \xNN, so that JSON (which would turn it into U+FFFD) shows it visibly;
// the exact bytes are in the *_b64 companion field.
func EscapeInvalid(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			fmt.Fprintf(&b, "\\x%02x", s[i])
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}
