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

// with applies the layers' own UserXattr marks.
func (o Options) with(ls ...Layer) Options {
	for _, l := range ls {
		o.UserXattr = o.UserXattr || l.UserXattr
	}
	return o
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

// checkLayer refuses, in a walk of one layer alone (WalkLayer), the
// markers whose meaning depends on the layers below: a redirect (a renamed
// directory, or a moved metadata-only file) and metacopy (a file whose data
// is in a lower layer). Exporting such a layer by itself would silently
// give wrong contents; merges (New, Diff) follow them as the kernel does.
func (r rules) checkLayer(in *vfs.Inode, layer string, path string) error {
	for _, f := range []string{"redirect", "metacopy"} {
		if _, ok := r.xattr(in, f); ok {
			return fmt.Errorf("layers: layer %s: %s has %s%s: its contents depend on the layers below, so the layer cannot be read alone (merge it with them): %w", layer, path, r.prefix, f, ErrUnsupported)
		}
	}
	return nil
}

// userxattr reports rules for a rootless (userxattr) mount, on which the
// kernel neither writes nor follows redirects and metacopy.
func (r rules) userxattr() bool { return r.prefix == "user.overlay." }

// Limits on redirects, which come from evidence: PATH_MAX for the whole
// value, NAME_MAX for one component (the kernel's lookup of a longer name
// finds nothing).
const (
	maxRedirect = 4096
	maxName     = 255
)

// metacopy reports whether in is a metadata-only copy-up: a regular file
// with the metacopy xattr, whose data is in a lower layer. The kernel
// ignores the xattr on anything else, accepts an empty value or one of at
// least 4 bytes (struct ovl_metacopy: version, length, flags, digest
// algorithm, then an optional fs-verity digest), and fails the lookup
// (EIO) for 1 to 3 bytes.
func (r rules) metacopy(in *vfs.Inode) (bool, error) {
	if !in.IsRegular() {
		return false, nil
	}
	v, ok := r.xattr(in, "metacopy")
	if !ok {
		return false, nil
	}
	if r.userxattr() {
		return false, fmt.Errorf("has %smetacopy, which the kernel does not follow on a userxattr (rootless) mount: %w", r.prefix, ErrUnsupported)
	}
	if n := len(v); n > 0 && n < 4 {
		return false, fmt.Errorf("%smetacopy of %d bytes (the kernel takes 0 or at least 4, and fails the lookup): %w", r.prefix, n, ErrInvalidOverlay)
	}
	return true, nil
}

// redirect is a parsed overlay redirect: the path (from the root of the
// layers, abs) or the name (in the same directory) that the layers below
// hold the entry's contents under.
type redirect struct {
	raw   string
	abs   bool
	names []string // the components; one for a relative redirect
}

// redirect returns the redirect of a directory or metacopy file, checked
// as the kernel checks it (ovl_get_redirect_xattr): not empty; absolute
// ("/a/b", no empty component, no trailing "/") or one name without "/".
// "." and ".." components, which the kernel's lookup refuses (EACCES),
// NUL bytes and values past PATH_MAX are refused too: such a value can
// only be forged.
func (r rules) redirect(in *vfs.Inode) (*redirect, error) {
	v, ok := r.xattr(in, "redirect")
	if !ok {
		return nil, nil
	}
	if r.userxattr() {
		return nil, fmt.Errorf("has %sredirect, which the kernel does not follow on a userxattr (rootless) mount: %w", r.prefix, ErrUnsupported)
	}
	bad := func(why string) (*redirect, error) {
		return nil, fmt.Errorf("invalid %sredirect %.200q: %s: %w", r.prefix, v, why, ErrInvalidOverlay)
	}
	switch {
	case v == "":
		return bad("empty (the kernel refuses it: EINVAL)")
	case len(v) > maxRedirect:
		return bad(fmt.Sprintf("%d bytes, longer than PATH_MAX", len(v)))
	case strings.IndexByte(v, 0) >= 0:
		return bad("contains a NUL byte")
	}
	rd := &redirect{raw: v, abs: v[0] == '/'}
	if rd.abs {
		rd.names = strings.Split(v[1:], "/")
	} else {
		if strings.Contains(v, "/") {
			return bad("a relative redirect is one name, without '/' (the kernel refuses it: EINVAL)")
		}
		rd.names = []string{v}
	}
	for _, n := range rd.names {
		switch n {
		case "":
			return bad("empty path component (the kernel refuses it: EINVAL)")
		case ".", "..":
			return bad(fmt.Sprintf("%q component (the kernel's lookup refuses it: EACCES); a redirect never leaves the layers", n))
		}
	}
	return rd, nil
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
