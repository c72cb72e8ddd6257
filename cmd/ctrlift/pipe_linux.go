package main

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// widenPipe raises the capacity of a pipe on standard output to 1 MiB
// (the unprivileged maximum), best effort: with the default 64 KiB the
// writer and the reader wake each other for every 64 KiB, which cost a
// quarter of a compressed export's time.
func widenPipe(w io.Writer) {
	f, ok := w.(*os.File)
	if !ok {
		return
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		return
	}
	unix.FcntlInt(f.Fd(), unix.F_SETPIPE_SZ, 1<<20)
}
