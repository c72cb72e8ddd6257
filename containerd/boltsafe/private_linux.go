//go:build linux

package boltsafe

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// privateCopy puts data into an anonymous memory file (memfd) sealed against
// writes, shrinking and growing: nothing is written to disk, nothing next to
// the evidence, and not even bbolt can change the bytes it maps. cleanup
// releases nothing the caller must keep; bbolt closes the file itself.
func privateCopy(data []byte) (path string, f *os.File, cleanup func(), err error) {
	fd, err := unix.MemfdCreate("ctrlift-bbolt", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return privateTempFile(data)
	}
	f = os.NewFile(uintptr(fd), fmt.Sprintf("/proc/self/fd/%d", fd))
	if _, err := f.Write(data); err != nil {
		f.Close()
		return "", nil, nil, fmt.Errorf("boltsafe: writing private memfd copy: %w", err)
	}
	seals := unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE | unix.F_SEAL_SEAL
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
		f.Close()
		return "", nil, nil, fmt.Errorf("boltsafe: sealing private memfd copy: %w", err)
	}
	return f.Name(), f, func() {}, nil
}
