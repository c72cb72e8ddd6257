//go:build linux

// Command limitexec runs a program under resource limits and reports its
// peak memory: the hostile-input harness runs ctrlift through it, because
// os/exec can set no rlimits on a child, and because a child started by a
// big parent inherits the parent's RSS high-water mark in getrusage until
// it execs (os/exec uses vfork).
//
//	limitexec -as BYTES -fsize BYTES -cpu SECONDS -- PROGRAM ARGS...
//
// The limits apply to limitexec and are inherited by PROGRAM. When fd 3
// is open, "maxrss=KIB exit=CODE signal=NAME cpu=MS" is written to it once
// PROGRAM ends. limitexec exits with PROGRAM's exit code, or 128+signal.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
)

func main() {
	as := flag.Uint64("as", 0, "RLIMIT_AS: address space in bytes (0: unchanged)")
	fsize := flag.Uint64("fsize", 0, "RLIMIT_FSIZE: largest file the program may write, bytes (0: unchanged)")
	cpu := flag.Uint64("cpu", 0, "RLIMIT_CPU: CPU seconds (0: unchanged)")
	flag.Parse()
	args := flag.Args()
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "limitexec: no program")
		os.Exit(125)
	}
	set := func(res int, v uint64) {
		if v == 0 {
			return
		}
		if err := syscall.Setrlimit(res, &syscall.Rlimit{Cur: v, Max: v}); err != nil {
			fmt.Fprintf(os.Stderr, "limitexec: setrlimit %d: %v\n", res, err)
			os.Exit(125)
		}
	}
	set(syscall.RLIMIT_AS, *as)
	set(syscall.RLIMIT_FSIZE, *fsize)
	set(syscall.RLIMIT_CPU, *cpu)
	syscall.Setrlimit(syscall.RLIMIT_CORE, &syscall.Rlimit{}) // no core dumps of hostile runs

	// The harness sends SIGQUIT to the process group of a run that is out
	// of time, to get the program's goroutine dump: it is for PROGRAM only.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGQUIT)

	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		fmt.Fprintln(os.Stderr, "limitexec:", err)
		os.Exit(125)
	}
	ps := cmd.ProcessState
	code, sig := ps.ExitCode(), ""
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		sig = ws.Signal().String()
		code = 128 + int(ws.Signal())
	}
	var rss, cpuMS int64
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss
		cpuMS = (ru.Utime.Nano() + ru.Stime.Nano()) / 1e6
	}
	if f := os.NewFile(3, "report"); f != nil {
		fmt.Fprintf(f, "maxrss=%d exit=%d signal=%q cpu=%d\n", rss, ps.ExitCode(), sig, cpuMS)
		f.Close()
	}
	os.Exit(code)
}
