package layers

import (
	"fmt"
	"strings"

	"github.com/ctrlift/ctrlift/vfs"
)

// rules are the overlayfs markers in force: trusted.overlay.* for a normal
// mount (containerd's default), user.overlay.* for a userxattr (rootless)
// mount. A marker of the other namespace is an ordinary xattr: the kernel
// ignores it, so must we, or a container could hide files from an export
// by setting user.overlay.opaque on a directory.
type rules struct{ prefix string }

func (o Options) rules() rules {
	if o.UserXattr {
		return rules{prefix: "user.overlay."}
	}
	return rules{prefix: "trusted.overlay."}
}

func (r rules) xattr(in *vfs.Inode, name string) (string, bool) {
	v, ok := in.Xattr(r.prefix + name)
	return string(v), ok
}

// opaque: the directory hides everything below it.
func (r rules) opaque(in *vfs.Inode) bool {
	v, _ := r.xattr(in, "opaque")
	return in.IsDir() && v == "y"
}

// xwhiteouts: the directory may hold xattr whiteouts (Linux 6.7+: marked
// by overlay.whiteouts, since 6.8 by overlay.opaque=x).
func (r rules) xwhiteouts(dir *vfs.Inode) bool {
	if _, ok := r.xattr(dir, "whiteouts"); ok {
		return true
	}
	v, _ := r.xattr(dir, "opaque")
	return v == "x"
}

// whiteout: the name is deleted from the layers below. parentX says the
// entry's directory in the same layer allows xattr whiteouts.
func (r rules) whiteout(in *vfs.Inode, parentX bool) bool {
	if IsWhiteout(in) {
		return true
	}
	if parentX && in.IsRegular() && in.Size == 0 {
		_, ok := r.xattr(in, "whiteout")
		return ok
	}
	return false
}

// check refuses the overlayfs features containerd does not use and whose
// merge needs the kernel's file handles: redirect_dir and metacopy.
// Exporting such a layer without them would silently give wrong data.
func (r rules) check(in *vfs.Inode, layer string, path string) error {
	for _, f := range []string{"redirect", "metacopy"} {
		if _, ok := r.xattr(in, f); ok {
			return fmt.Errorf("layers: layer %s: %s has %s%s: overlayfs %s is not supported (containerd does not use it): %w", layer, path, r.prefix, f, f, ErrUnsupported)
		}
	}
	return nil
}

// Internal reports whether an xattr is an overlayfs internal that a
// merged view does not show: trusted.overlay.* always, user.overlay.*
// under userxattr rules.
func (o Options) Internal(name string) bool { return o.rules().internal(name) }

func (r rules) internal(name string) bool {
	return strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, r.prefix)
}

// visible drops overlay internals from the inode's xattrs, on a copy.
func (r rules) visible(in *vfs.Inode) *vfs.Inode {
	internal := r.internal
	n := 0
	for _, x := range in.Xattrs {
		if !internal(x.Name) {
			n++
		}
	}
	if n == len(in.Xattrs) {
		return in
	}
	c := *in
	c.Xattrs = make([]vfs.Xattr, 0, n)
	for _, x := range in.Xattrs {
		if !internal(x.Name) {
			c.Xattrs = append(c.Xattrs, x)
		}
	}
	return &c
}
