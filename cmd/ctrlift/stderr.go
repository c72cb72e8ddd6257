package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
)

// runState is what one run shares across its commands' stderr output:
// -q, and the warnings already printed (each is printed once per run).
type runState struct {
	quiet bool
	seen  map[string]bool
}

type runStateKey struct{}

// startRun attaches a fresh runState to the command about to run.
func startRun(cmd *cobra.Command, quiet bool) {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	cmd.SetContext(context.WithValue(ctx, runStateKey{}, &runState{quiet: quiet, seen: map[string]bool{}}))
}

func stateOf(cmd *cobra.Command) *runState {
	if ctx := cmd.Context(); ctx != nil {
		if s, ok := ctx.Value(runStateKey{}).(*runState); ok {
			return s
		}
	}
	return &runState{seen: map[string]bool{}}
}

// quiet reports -q: no warnings, progress or summaries on stderr.
func quiet(cmd *cobra.Command) bool { return stateOf(cmd).quiet }

// warn prints a warning on stderr once per run, unless -q. Text from the
// image is made printable.
func warn(cmd *cobra.Command, format string, args ...any) {
	s := stateOf(cmd)
	msg := printable(fmt.Sprintf(format, args...))
	if s.quiet || s.seen[msg] {
		return
	}
	s.seen[msg] = true
	fmt.Fprintln(cmd.ErrOrStderr(), "ctrlift: warning:", msg)
}

// inform prints a progress or summary line on stderr, unless -q.
func inform(cmd *cobra.Command, format string, args ...any) {
	if !quiet(cmd) {
		fmt.Fprintf(cmd.ErrOrStderr(), format+"\n", args...)
	}
}
