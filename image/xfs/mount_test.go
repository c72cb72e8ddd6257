package xfs_test

// A cross-check against the running kernel: each fixture is loop-mounted
// read-only (norecovery: the kernel then reads the checkpointed state, as
// this reader does with SkipLogReplay) and every path must look the same
// through the mount and through the reader. A dirty log is also replayed
// by the kernel, into a copy, and compared with the reader's replay. Needs root and a kernel that
// mounts the image; skipped otherwise (v4 images: kernels since 2025 may
// be built without v4 support).

import (
	"bytes"
	"crypto/sha256"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ctrlift/ctrlift/image/xfs"
	"golang.org/x/sys/unix"
)

func TestKernelMount(t *testing.T) {
	if testing.Short() {
		t.Skip("mounts every fixture")
	}
	if os.Geteuid() != 0 {
		t.Skip("mounting needs root")
	}
	if _, err := exec.LookPath("mount"); err != nil {
		t.Skip("no mount(8)")
	}
	dir := conformanceDir(t)
	for _, name := range fixtureNames(t, dir) {
		t.Run(name, func(t *testing.T) {
			fsys, img := openFixture(t, dir, name)
			if st, _, _ := fsys.LogState(); st == xfs.LogDirty {
				kernelReplayed(t, fsys, img)
				if _, err := os.Stat(filepath.Join(dir, name+".checkpoint.json")); err != nil {
					return // what is in place is a mix of checkpoints the kernel cannot walk either
				}
				// The checkpointed state, read without replay below.
				f, err := os.Open(img)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				fi, _ := f.Stat()
				if fsys, err = xfs.NewReaderOptions(f, fi.Size(), xfs.Options{SkipLogReplay: true}); err != nil {
					t.Fatal(err)
				}
			}
			mnt := t.TempDir()
			if out, err := exec.Command("mount", "-t", "xfs", "-o", "loop,ro,norecovery", img, mnt).CombinedOutput(); err != nil {
				t.Skipf("the kernel does not mount %s: %v: %s", name, err, bytes.TrimSpace(out))
			}
			defer func() {
				if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
					t.Errorf("umount: %v: %s", err, out)
				}
			}()
			compareWithMount(t, fsys, mnt)
		})
	}
}

// kernelReplayed compares the reader's replay of a dirty log with the
// kernel's: a copy of the image is mounted read-write (which replays the
// log into the copy), unmounted, and mounted again read-only.
func kernelReplayed(t *testing.T, fsys *xfs.FS, img string) {
	t.Helper()
	cp := filepath.Join(t.TempDir(), "replayed.img")
	if out, err := exec.Command("cp", "--sparse=always", img, cp).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "xfs", "-o", "loop", cp, mnt).CombinedOutput(); err != nil {
		t.Skipf("the kernel does not mount (and replay) a copy: %v: %s", err, bytes.TrimSpace(out))
	}
	if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
		t.Fatalf("umount: %v: %s", err, out)
	}
	if out, err := exec.Command("mount", "-t", "xfs", "-o", "loop,ro", cp, mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount the replayed copy: %v: %s", err, bytes.TrimSpace(out))
	}
	defer func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount: %v: %s", err, out)
		}
	}()
	compareWithMount(t, fsys, mnt)
}

func compareWithMount(t *testing.T, fsys *xfs.FS, mnt string) {
	errs := &errLimiter{t: t, max: 40}
	hashed := map[uint64]bool{}
	n := 0
	err := filepath.WalkDir(mnt, func(full string, d fs.DirEntry, err error) error {
		if err != nil {
			errs.Errorf("kernel walk %q: %v", full, err)
			return nil
		}
		n++
		rel, _ := filepath.Rel(mnt, full)
		var st syscall.Stat_t
		if err := syscall.Lstat(full, &st); err != nil {
			errs.Errorf("lstat %q: %v", rel, err)
			return nil
		}
		in, err := fsys.LookupInode(rel)
		if err != nil {
			errs.Errorf("%q: reader: %v", rel, err)
			return nil
		}
		if in.Num != st.Ino || uint32(in.Mode) != st.Mode || in.Uid != st.Uid || in.Gid != st.Gid ||
			in.Size != st.Size || uint64(in.Nlink) != st.Nlink || in.Blocks != st.Blocks {
			errs.Errorf("%q: reader ino %d mode %#o %d:%d size %d nlink %d blocks %d; kernel ino %d mode %#o %d:%d size %d nlink %d blocks %d",
				rel, in.Num, in.Mode, in.Uid, in.Gid, in.Size, in.Nlink, in.Blocks, st.Ino, st.Mode, st.Uid, st.Gid, st.Size, st.Nlink, st.Blocks)
		}
		if in.Mtime.UnixNano() != st.Mtim.Nano() || in.Atime.UnixNano() != st.Atim.Nano() || in.Ctime.UnixNano() != st.Ctim.Nano() {
			errs.Errorf("%q: times differ: reader a=%v m=%v c=%v", rel, in.Atime, in.Mtime, in.Ctime)
		}
		if in.IsCharDev() || in.IsBlockDev() {
			if in.RdevMajor != unix.Major(st.Rdev) || in.RdevMinor != unix.Minor(st.Rdev) {
				errs.Errorf("%q: rdev %d:%d, kernel %d:%d", rel, in.RdevMajor, in.RdevMinor, unix.Major(st.Rdev), unix.Minor(st.Rdev))
			}
		}
		want := kernelXattrs(t, full)
		if len(want) != len(in.Xattrs) {
			errs.Errorf("%q: %d xattrs, kernel lists %d", rel, len(in.Xattrs), len(want))
		}
		for _, x := range in.Xattrs {
			if v, ok := want[x.Name]; !ok || !bytes.Equal(v, x.Value) {
				errs.Errorf("%q: xattr %s differs from the kernel's", rel, x.Name)
			}
		}
		switch {
		case in.IsSymlink():
			target, err := os.Readlink(full)
			if got, err2 := fsys.LinkTargetInode(in); err != nil || err2 != nil || got != target {
				errs.Errorf("%q: target %q (%v), kernel %q (%v)", rel, got, err2, target, err)
			}
		case in.IsRegular() && !hashed[in.Num] && in.Size <= 64<<20:
			hashed[in.Num] = true
			k, err := hashFile(full)
			if err != nil {
				errs.Errorf("%q: kernel read: %v", rel, err)
				break
			}
			r, err := fsys.OpenInode(in)
			if err != nil {
				errs.Errorf("%q: %v", rel, err)
				break
			}
			h := sha256.New()
			if _, err := io.Copy(h, r); err != nil || !bytes.Equal(h.Sum(nil), k) {
				errs.Errorf("%q: content differs from the kernel's (%v)", rel, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d paths compared with the kernel", n)
}

// kernelXattrs lists a path's attributes through the kernel, without the
// trusted.SGI_ACL_* names, which are the storage of system.posix_acl_*.
func kernelXattrs(t *testing.T, p string) map[string][]byte {
	buf := make([]byte, 1<<16)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		t.Errorf("listxattr %q: %v", p, err)
		return nil
	}
	out := map[string][]byte{}
	for _, name := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
		if name == "" || strings.HasPrefix(name, "trusted.SGI_ACL_") {
			continue
		}
		v := make([]byte, 1<<16)
		m, err := unix.Lgetxattr(p, name, v)
		if err != nil {
			t.Errorf("getxattr %q %s: %v", p, name, err)
			continue
		}
		out[name] = v[:m]
	}
	return out
}

func hashFile(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}
