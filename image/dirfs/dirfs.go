// Package dirfs reads a directory tree on the host (an extracted or
// read-only-mounted copy of a node's /var/lib/containerd) as a vfs.FS.
//
// The tree is evidence, so access is read-only and confined: every path
// below the root is resolved with openat2(RESOLVE_BENEATH|
// RESOLVE_NO_SYMLINKS|RESOLVE_NO_MAGICLINKS|RESOLVE_NO_XDEV) from the root
// (or, before Linux 5.6, one O_NOFOLLOW openat per component), so no
// symlink below the root is ever followed and no mount point is crossed.
// Nothing is written; files are read with O_NOATIME when allowed, and
// only regular files and directories are ever opened for reading.
//
// Inodes are not held open: each carries its path and dev/ino in Sys
// (*Node), and is reopened by path when needed; finding a different inode
// there is an error. /proc must be mounted: xattrs are read and files
// reopened through /proc/self/fd.
package dirfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ctrlift/ctrlift/vfs"
)

const (
	resolve = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV
	// xattrMax is the kernel's XATTR_SIZE_MAX and XATTR_LIST_MAX.
	xattrMax = 64 << 10
	// linkMax bounds a symlink target (PATH_MAX is 4096).
	linkMax = 64 << 10
	// initUserNS is PROC_USER_INIT_INO, the initial user namespace's inode.
	initUserNS = "user:[4026531837]"
)

// FS is a host directory tree. Its methods are safe for concurrent use
// until Close.
type FS struct {
	dir       string
	root      int    // O_PATH fd of the root
	dev       uint64 // the root's st_dev, for the walk without openat2
	noOpenat2 bool   // kernel before 5.6: walk one component at a time
	trusted   bool
}

// Node is the Sys of every vfs.Inode from an FS: where the inode was found
// and which inode it was, so that it can be reopened and a swapped file
// noticed.
type Node struct {
	Path string // slash-separated, relative to the root; "." is the root
	Dev  uint64 // st_dev, in unix.Mkdev encoding
	Ino  uint64
	fs   *FS
}

var (
	_ vfs.FS    = (*FS)(nil)
	_ vfs.File  = (*File)(nil)
	_ io.Closer = (*File)(nil)
)

// Open opens the directory dir as the root of an FS. dir itself may be
// reached through a symlink; nothing below it is.
func Open(dir string) (*FS, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, pathErr("open", dir, err)
	}
	f := &FS{dir: dir, root: fd}
	st, dev, err := statFd(fd)
	if err == nil {
		f.dev = dev
		err = f.probe(st.Ino)
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("dirfs: open %q: %w", dir, err)
	}
	f.trusted = trustedVisible()
	return f, nil
}

// probe picks openat2 or the walk, and checks that /proc/self/fd works.
func (f *FS) probe(ino uint64) error {
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: resolve}
	fd, err := unix.Openat2(f.root, ".", &how)
	switch {
	case err == unix.ENOSYS || err == unix.EPERM: // old kernel, or a seccomp filter
		f.noOpenat2 = true
	case err != nil:
		return err
	default:
		unix.Close(fd)
	}
	var st unix.Stat_t
	if err := unix.Stat(procFd(f.root), &st); err != nil || uint64(st.Dev) != f.dev || st.Ino != ino {
		return fmt.Errorf("/proc/self/fd is needed to read xattrs and is not usable (%v)", err)
	}
	return nil
}

// Close releases the root.
func (f *FS) Close() error {
	if f.root < 0 {
		return nil
	}
	err := unix.Close(f.root)
	f.root = -1
	return err
}

// Root returns the directory given to Open.
func (f *FS) Root() string { return f.dir }

// DataBound is 0: host files may share data (hardlinks, reflinks).
func (f *FS) DataBound() int64 { return 0 }

// TrustedXattrsVisible reports whether this process can see trusted.*
// xattrs, where overlayfs keeps its whiteout, opaque and redirect markers.
// The kernel lists and returns them only to a process with CAP_SYS_ADMIN
// in the initial user namespace (capable(), not ns_capable()); anyone
// else silently gets none, so merging layers without them would bring
// deleted files back. True when the effective capability set holds
// CAP_SYS_ADMIN and the process is in the initial user namespace (root in
// a rootless container is not). A security module (SELinux, AppArmor)
// that denies the capability despite the effective set is not detected.
// It says nothing of whether the filesystem stores xattrs at all.
func (f *FS) TrustedXattrsVisible() bool { return f.trusted }

func trustedVisible() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if unix.Capget(&hdr, &data[0]) != nil || data[0].Effective&(1<<unix.CAP_SYS_ADMIN) == 0 {
		return false
	}
	buf := make([]byte, 64)
	n, err := unix.Readlink("/proc/self/ns/user", buf)
	if err == unix.ENOENT {
		return true // a kernel without user namespaces
	}
	return err == nil && string(buf[:n]) == initUserNS
}

// Lookup resolves a slash-separated path from the root ("." or "" is the
// root) without following symlinks. ".." is refused.
func (f *FS) Lookup(p string) (*vfs.Inode, error) {
	name := strings.Trim(p, "/")
	var parts []string
	for _, part := range strings.Split(name, "/") {
		if part != "" && part != "." {
			parts = append(parts, part)
		}
	}
	cur, err := f.rootInode(len(parts) == 0)
	if err != nil {
		return nil, err
	}
	for i, part := range parts {
		if !cur.IsDir() {
			if cur.IsSymlink() {
				return nil, fmt.Errorf("dirfs: lookup %q: component before %q is a symlink (not followed)", name, part)
			}
			return nil, fmt.Errorf("dirfs: lookup %q: %w", name, vfs.ErrNotDir)
		}
		if err := checkName(part); err != nil {
			return nil, fmt.Errorf("dirfs: lookup %q: %w", name, err)
		}
		// Intermediate directories need no xattrs.
		if cur, err = f.lookupAt(cur, part, i == len(parts)-1); err != nil {
			return nil, err
		}
	}
	return cur, nil
}

func (f *FS) rootInode(xattrs bool) (*vfs.Inode, error) {
	fd, err := f.openat(f.root, ".", unix.O_PATH)
	if err != nil {
		return nil, pathErr("lookup", ".", err)
	}
	defer unix.Close(fd)
	return f.inode(fd, ".", xattrs)
}

// LookupAt finds name, one component, in dir; an error wrapping
// fs.ErrNotExist when it is absent.
func (f *FS) LookupAt(dir *vfs.Inode, name string) (*vfs.Inode, error) {
	return f.lookupAt(dir, name, true)
}

func (f *FS) lookupAt(dir *vfs.Inode, name string, xattrs bool) (*vfs.Inode, error) {
	n, err := f.node(dir)
	if err != nil {
		return nil, err
	}
	child := join(n.Path, name)
	if err := checkName(name); err != nil {
		return nil, fmt.Errorf("dirfs: lookup %q in %q: %w", name, n.Path, err)
	}
	if !dir.IsDir() {
		return nil, fmt.Errorf("dirfs: lookup %q: %q: %w", child, n.Path, vfs.ErrNotDir)
	}
	pfd, err := f.reopen(n, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return nil, err
	}
	defer unix.Close(pfd)
	fd, err := f.openat(pfd, name, unix.O_PATH)
	if err != nil {
		return nil, pathErr("lookup", child, err)
	}
	defer unix.Close(fd)
	return f.inode(fd, child, xattrs)
}

// ReadDir lists dir in the kernel's readdir order, without "." and "..".
func (f *FS) ReadDir(dir *vfs.Inode) ([]vfs.DirEntry, error) {
	n, err := f.node(dir)
	if err != nil {
		return nil, err
	}
	if !dir.IsDir() {
		return nil, fmt.Errorf("dirfs: readdir %q: %w", n.Path, vfs.ErrNotDir)
	}
	fd, err := f.reopen(n, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var out []vfs.DirEntry
	buf := make([]byte, 32<<10)
	for {
		k, err := retry(func() (int, error) { return unix.Getdents(fd, buf) })
		if err != nil {
			return nil, pathErr("readdir", n.Path, err)
		}
		if k == 0 {
			return out, nil
		}
		// struct linux_dirent64: u64 ino, s64 off, u16 reclen, u8 type, name.
		for off := 0; off < k; {
			reclen := int(binary.NativeEndian.Uint16(buf[off+16:]))
			if reclen < 20 || off+reclen > k {
				return nil, fmt.Errorf("dirfs: readdir %q: malformed dirent", n.Path)
			}
			name := buf[off+19 : off+reclen]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			if s := string(name); s != "." && s != ".." {
				out = append(out, vfs.DirEntry{Name: s, Ino: binary.NativeEndian.Uint64(buf[off:])})
			}
			off += reclen
		}
	}
}

// LinkTarget returns a symlink's target, byte-exact.
func (f *FS) LinkTarget(in *vfs.Inode) (string, error) {
	n, err := f.node(in)
	if err != nil {
		return "", err
	}
	if !in.IsSymlink() {
		return "", fmt.Errorf("dirfs: readlink %q: not a symlink", n.Path)
	}
	fd, err := f.reopen(n, unix.O_PATH)
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	for size := 4096; ; size *= 2 {
		buf := make([]byte, size+1)
		k, err := unix.Readlinkat(fd, "", buf) // "" reads the O_PATH link itself
		if err != nil {
			return "", pathErr("readlink", n.Path, err)
		}
		if k <= size {
			return string(buf[:k]), nil
		}
		if size >= linkMax {
			return "", fmt.Errorf("dirfs: readlink %q: target longer than %d bytes", n.Path, linkMax)
		}
	}
}

// Open opens a regular file's data; anything else is refused, so no FIFO
// (which would block) or device is ever opened. The result is a *File,
// which must be closed.
func (f *FS) Open(in *vfs.Inode) (vfs.File, error) {
	n, err := f.node(in)
	if err != nil {
		return nil, err
	}
	if !in.IsRegular() {
		return nil, fmt.Errorf("dirfs: open %q: not a regular file (mode %#o)", n.Path, in.Mode)
	}
	pfd, err := f.reopen(n, unix.O_PATH)
	if err != nil {
		return nil, err
	}
	defer unix.Close(pfd)
	// Reopening the checked O_PATH fd through /proc opens that very inode:
	// no window in which a device could be swapped in and opened.
	fd, err := openNoatime(func(fl int) (int, error) {
		return unix.Open(procFd(pfd), unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC|fl, 0)
	})
	if err != nil {
		return nil, pathErr("open", n.Path, err)
	}
	st, dev, err := statFd(fd)
	if err == nil && (dev != n.Dev || st.Ino != n.Ino || !st.IsRegular()) {
		err = fmt.Errorf("not the regular file looked up (inode %d)", st.Ino)
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("dirfs: open %q: %w", n.Path, err)
	}
	return &File{f: os.NewFile(uintptr(fd), n.Path), fd: fd, size: st.Size}, nil
}

// File is an open regular file. Size is the size when opened.
type File struct {
	f    *os.File
	fd   int
	size int64
	off  int64 // for Read
}

func (r *File) Size() int64  { return r.size }
func (r *File) Close() error { return r.f.Close() }

// ReadAt reads within the size the file had when opened.
func (r *File) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("dirfs: read %s: negative offset", r.f.Name())
	}
	if off >= r.size {
		return 0, io.EOF
	}
	short := int64(len(p)) > r.size-off
	if short {
		p = p[:r.size-off]
	}
	n, err := r.f.ReadAt(p, off)
	if err == nil && short {
		err = io.EOF
	}
	return n, err
}

// Read reads sequentially from offset 0 with pread, so NextData's lseeks
// do not move it.
func (r *File) Read(p []byte) (int, error) {
	n, err := r.ReadAt(p, r.off)
	r.off += int64(n)
	if n > 0 && err == io.EOF {
		err = nil
	}
	return n, err
}

// NextData returns the first stretch of data at or after off, by lseek's
// SEEK_DATA and SEEK_HOLE; a filesystem without them is all data.
func (r *File) NextData(off int64) (start, end int64, err error) {
	if off < 0 {
		return 0, 0, fmt.Errorf("dirfs: next data %s: negative offset", r.f.Name())
	}
	if off >= r.size {
		return r.size, r.size, nil
	}
	start, err = unix.Seek(r.fd, off, unix.SEEK_DATA)
	switch {
	case err == unix.ENXIO:
		return r.size, r.size, nil
	case err == unix.EINVAL || err == unix.EOPNOTSUPP:
		return off, r.size, nil
	case err != nil:
		return 0, 0, fmt.Errorf("dirfs: next data %s: %w", r.f.Name(), err)
	case start >= r.size: // data past the size it had when opened
		return r.size, r.size, nil
	}
	end, err = unix.Seek(r.fd, start, unix.SEEK_HOLE)
	if err != nil {
		return 0, 0, fmt.Errorf("dirfs: next data %s: %w", r.f.Name(), err)
	}
	return start, min(end, r.size), nil
}

// node returns the Node of an inode of this FS.
func (f *FS) node(in *vfs.Inode) (*Node, error) {
	if in == nil {
		return nil, errors.New("dirfs: nil inode")
	}
	n, ok := in.Sys.(*Node)
	if !ok || n.fs != f {
		return nil, fmt.Errorf("dirfs: inode %d is not of this filesystem", in.Ino)
	}
	return n, nil
}

// reopen opens n's path again and checks it is still the same inode.
func (f *FS) reopen(n *Node, flags int) (int, error) {
	fd, err := f.openat(f.root, n.Path, flags)
	if err != nil {
		return -1, pathErr("reopen", n.Path, err)
	}
	st, dev, err := statFd(fd)
	if err == nil && (dev != n.Dev || st.Ino != n.Ino) {
		err = fmt.Errorf("changed since it was looked up (inode %d on device %#x, now inode %d on %#x)", n.Ino, n.Dev, st.Ino, dev)
	}
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("dirfs: %q: %w", n.Path, err)
	}
	return fd, nil
}

// openat opens rel (built from checked names) below dirfd, confined.
// O_NOATIME is added to non-O_PATH opens when permitted.
func (f *FS) openat(dirfd int, rel string, flags int) (int, error) {
	flags |= unix.O_CLOEXEC | unix.O_NOFOLLOW
	if flags&unix.O_PATH != 0 {
		return f.openat1(dirfd, rel, flags)
	}
	return openNoatime(func(fl int) (int, error) { return f.openat1(dirfd, rel, flags|fl) })
}

func (f *FS) openat1(dirfd int, rel string, flags int) (int, error) {
	if f.noOpenat2 {
		return f.walk(dirfd, rel, flags)
	}
	how := unix.OpenHow{Flags: uint64(flags), Resolve: resolve}
	for i := 0; ; i++ {
		fd, err := unix.Openat2(dirfd, rel, &how)
		// EAGAIN: a rename or mount raced the resolution.
		if (err == unix.EAGAIN || err == unix.EINTR) && i < 16 {
			continue
		}
		return fd, err
	}
}

// walk stands in for openat2 before Linux 5.6: one O_NOFOLLOW openat per
// component, refusing a change of st_dev. A bind mount of the same
// filesystem is not noticed.
func (f *FS) walk(dirfd int, rel string, flags int) (int, error) {
	parts := strings.Split(rel, "/")
	cur := dirfd
	for i, p := range parts {
		if p == "" || p == ".." || (p == "." && rel != ".") {
			return -1, unix.EINVAL
		}
		fl := unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
		if i == len(parts)-1 {
			fl = flags
		}
		fd, err := retry(func() (int, error) { return unix.Openat(cur, p, fl, 0) })
		if cur != dirfd {
			unix.Close(cur)
		}
		if err != nil {
			return -1, err
		}
		if _, dev, err := statFd(fd); err != nil || dev != f.dev {
			unix.Close(fd)
			if err == nil {
				err = unix.EXDEV
			}
			return -1, err
		}
		cur = fd
	}
	return cur, nil
}

// inode makes the vfs.Inode of the open fd found at rel.
func (f *FS) inode(fd int, rel string, xattrs bool) (*vfs.Inode, error) {
	in, dev, err := statFd(fd)
	if err != nil {
		return nil, pathErr("stat", rel, err)
	}
	in.Sys = &Node{Path: rel, Dev: dev, Ino: in.Ino, fs: f}
	if xattrs {
		if in.Xattrs, err = readXattrs(fd); err != nil {
			return nil, fmt.Errorf("dirfs: xattrs of %q: %w", rel, err)
		}
	}
	return in, nil
}

// statFd stats fd itself (a symlink's O_PATH fd stats the link) and
// returns its st_dev too.
func statFd(fd int) (*vfs.Inode, uint64, error) {
	var sx unix.Statx_t
	err := unix.Statx(fd, "", unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW, unix.STATX_BASIC_STATS|unix.STATX_BTIME, &sx)
	if err == unix.ENOSYS { // before Linux 4.11
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return nil, 0, err
		}
		return &vfs.Inode{
			Ino: st.Ino, Mode: st.Mode, Uid: st.Uid, Gid: st.Gid, Size: st.Size,
			Nlink: uint32(st.Nlink), Blocks: st.Blocks,
			Atime: ts(st.Atim.Sec, st.Atim.Nsec), Mtime: ts(st.Mtim.Sec, st.Mtim.Nsec), Ctime: ts(st.Ctim.Sec, st.Ctim.Nsec),
			RdevMajor: unix.Major(uint64(st.Rdev)), RdevMinor: unix.Minor(uint64(st.Rdev)),
		}, uint64(st.Dev), nil
	}
	if err != nil {
		return nil, 0, err
	}
	in := &vfs.Inode{
		Ino: sx.Ino, Mode: uint32(sx.Mode), Uid: sx.Uid, Gid: sx.Gid, Size: int64(sx.Size),
		Nlink: sx.Nlink, Blocks: int64(sx.Blocks),
		Atime: sts(sx.Atime), Mtime: sts(sx.Mtime), Ctime: sts(sx.Ctime),
		RdevMajor: sx.Rdev_major, RdevMinor: sx.Rdev_minor,
	}
	if sx.Mask&unix.STATX_BTIME != 0 {
		in.Crtime, in.HasCrtime = sts(sx.Btime), true
	}
	return in, unix.Mkdev(sx.Dev_major, sx.Dev_minor), nil
}

func ts(sec, nsec int64) time.Time        { return time.Unix(sec, nsec).UTC() }
func sts(t unix.StatxTimestamp) time.Time { return ts(t.Sec, int64(t.Nsec)) }

// readXattrs reads the xattrs of the inode behind an O_PATH fd, sorted by
// name. Following /proc/self/fd/N jumps to that inode and stops there,
// even for a symlink, so the target of a link is never read.
func readXattrs(fd int) ([]vfs.Xattr, error) {
	p := procFd(fd)
	list, err := sized(func(b []byte) (int, error) { return unix.Listxattr(p, b) })
	if err == unix.ENOTSUP {
		return nil, nil // the filesystem has no xattrs
	}
	if err != nil {
		return nil, err
	}
	var xs []vfs.Xattr
	for _, name := range strings.Split(string(list), "\x00") {
		if name == "" {
			continue
		}
		v, err := sized(func(b []byte) (int, error) { return unix.Getxattr(p, name, b) })
		if err == unix.ENODATA {
			continue // removed since listed
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		xs = append(xs, vfs.Xattr{Name: name, Value: v})
	}
	sort.Slice(xs, func(i, j int) bool { return xs[i].Name < xs[j].Name })
	return xs, nil
}

// sized calls an xattr syscall with a buffer of the size it asks for,
// within the kernel's 64 KiB limit, again if it grew in between.
func sized(call func([]byte) (int, error)) ([]byte, error) {
	for range 8 {
		n, err := call(nil)
		if err != nil {
			return nil, err
		}
		if n > xattrMax {
			return nil, fmt.Errorf("%d bytes, more than the kernel's %d", n, xattrMax)
		}
		buf := make([]byte, n)
		if n == 0 {
			return buf, nil
		}
		n, err = call(buf)
		if err == unix.ERANGE {
			continue
		}
		return buf[:n], err
	}
	return nil, unix.ERANGE
}

// openNoatime tries O_NOATIME (owner or CAP_FOWNER) so that reading
// evidence leaves atimes alone, and goes without it on EPERM.
func openNoatime(open func(extra int) (int, error)) (int, error) {
	fd, err := retry(func() (int, error) { return open(unix.O_NOATIME) })
	if err == unix.EPERM {
		fd, err = retry(func() (int, error) { return open(0) })
	}
	return fd, err
}

func retry(call func() (int, error)) (int, error) {
	for {
		n, err := call()
		if err != unix.EINTR {
			return n, err
		}
	}
}

func procFd(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

func join(dir, name string) string {
	if dir == "." {
		return name
	}
	return dir + "/" + name
}

// checkName refuses what is not one plain component.
func checkName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("%q is not a name", name)
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("%q is not one component", name)
	}
	return nil
}

// pathErr makes a one-line error naming p, wrapping the errno (so
// errors.Is finds fs.ErrNotExist, fs.ErrPermission) or vfs.ErrNotDir.
func pathErr(op, p string, err error) error {
	switch err {
	case unix.ELOOP:
		return fmt.Errorf("dirfs: %s %q: a component is a symlink (not followed): %w", op, p, vfs.ErrNotDir)
	case unix.ENOTDIR:
		return fmt.Errorf("dirfs: %s %q: %w", op, p, vfs.ErrNotDir)
	case unix.EXDEV:
		return fmt.Errorf("dirfs: %s %q: crosses a mount point (not followed)", op, p)
	}
	return fmt.Errorf("dirfs: %s %q: %w", op, p, err)
}
