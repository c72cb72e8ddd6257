package main

import (
	"encoding/json"

	"github.com/spf13/cobra"

	"github.com/ctrlift/ctrlift/containerd"
)

func newInfoCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "info",
		Short: "Show everything known about one object",
	}
	cmd.AddCommand(infoContainerCmd())
	return cmd
}

func infoContainerCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "container REF",
		Short: "Print a container as JSON: record, OCI spec, CRI metadata, status, mounts and snapshot chain",
		Long: `Print a container as JSON: its meta.db record, OCI runtime spec, CRI
metadata (mounts, log path), CRI status (pid, exit code, times) and its
snapshot chain, top (writable) layer first, with the directory of each layer
on the partition.

REF is a full container id, a unique id prefix, containerd://<id> as
kubectl describe pod prints it, POD/NAME or K8SNS/POD/NAME (Kubernetes pod
and container names), or a unique Kubernetes container name. An ambiguous
REF lists the candidates.`,
		Args: cobra.ExactArgs(1),
	}
	ctrdCmd(cmd, func(cmd *cobra.Command, args []string, st *containerd.State, cf *ctrdFlags) error {
		c, err := st.ResolveIn(cf.namespace, args[0])
		if err != nil {
			return err
		}
		enc := json.NewEncoder(cmd.OutOrStdout())
		if cf.output != "jsonl" {
			enc.SetIndent("", "  ") // a container does not fit a table: table means json
		}
		return enc.Encode(c)
	})
	return cmd
}
