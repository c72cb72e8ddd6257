// Command ctrlift reads containers out of raw Kubernetes node disk images
// without root and without mounting anything.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	root := newRootCmd()
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "ctrlift:", printable(err.Error()))
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "ctrlift",
		Short:         "Container forensics on raw node disk images, read-only and without mounting",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       currentVersion().String(),
	}
	root.SetVersionTemplate("{{.Version}}\n")
	var q bool
	root.PersistentFlags().BoolVarP(&q, "quiet", "q", false, "no warnings, progress or summaries on stderr (errors still)")
	root.PersistentPreRun = func(cmd *cobra.Command, _ []string) { startRun(cmd, q) }
	root.AddCommand(
		// Each command lives in its own file; add its constructor here.
		newPartitionsCmd(),
		newListCmd(), newInfoCmd(),
		newFSCmd(),
		newExportCmd(), newDiffCmd(),
	)
	return root
}
