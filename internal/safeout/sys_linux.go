package safeout

import (
	"errors"
	"io/fs"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// sameDevice reports two device nodes of one device (a second mknod of
// /dev/sdb is not the same inode but is the same disk).
func sameDevice(a, b fs.FileInfo) bool {
	if a.Mode()&fs.ModeDevice == 0 || b.Mode()&fs.ModeDevice == 0 {
		return false
	}
	sa, ok1 := a.Sys().(*syscall.Stat_t)
	sb, ok2 := b.Sys().(*syscall.Stat_t)
	return ok1 && ok2 && sa.Rdev == sb.Rdev && a.Mode().Type() == b.Mode().Type()
}

// renameNoReplace moves tmp to final unless final exists, atomically where
// the filesystem supports RENAME_NOREPLACE, else through a hard link.
func renameNoReplace(tmp, final string) error {
	err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, final, unix.RENAME_NOREPLACE)
	if err == nil || errors.Is(err, unix.EEXIST) {
		if errors.Is(err, unix.EEXIST) {
			return fs.ErrExist
		}
		return nil
	}
	if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.ENOTSUP) {
		return err
	}
	if err := os.Link(tmp, final); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fs.ErrExist
		}
		// No hard links either (vfat): check, then rename.
		if _, serr := os.Lstat(final); serr == nil {
			return fs.ErrExist
		}
		return os.Rename(tmp, final)
	}
	return os.Remove(tmp)
}
