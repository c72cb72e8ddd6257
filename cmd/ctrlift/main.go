// Command ctrlift reads containers out of Kubernetes node disk images
// without root and without mounting anything. Each command is flags and
// one call of package node; the grammar is in README ("Command grammar").
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/ctrlift/ctrlift/internal/safeout"
	"github.com/ctrlift/ctrlift/node"
)

func main() {
	root := newRootCmd()
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "ctrlift:", printable(withHint(err)))
		os.Exit(1)
	}
}

// withHint adds the flag that answers an error: libraries never name
// flags, so the command line does.
func withHint(err error) string {
	msg := err.Error()
	var missing *node.MissingLayerError
	var noRuntime *node.RuntimeNotFoundError
	switch {
	case errors.Is(err, safeout.ErrExists):
		msg += " (--force replaces it)"
	case errors.As(err, &missing):
		msg += "; --allow-missing-layers exports the rest"
	case errors.As(err, &noRuntime):
		msg += "\n  use -p PART or --runtime-root PATH"
	}
	return msg
}

func newRootCmd() *cobra.Command {
	var g globalFlags
	root := &cobra.Command{
		Use:           "ctrlift",
		Short:         "Container forensics on node disk images, read-only and without mounting",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       node.Version().String(),
	}
	root.SetVersionTemplate("{{.Version}}\n")
	g.register(root)
	root.PersistentPreRun = func(cmd *cobra.Command, _ []string) { startRun(cmd, g.quiet) }
	root.AddCommand(
		// Each command lives in its own file; add its constructor here.
		newPartitionsCmd(&g),
		newListCmd(&g), newInfoCmd(&g),
		newFSCmd(&g),
		newExportCmd(&g), newDiffCmd(&g),
		newTimelineCmd(&g),
		newLogsCmd(&g),
		newHistoryCmd(&g),
		newFindCmd(&g),
	)
	return root
}
