package main

import (
	"github.com/spf13/cobra"

	"github.com/ctrlift/ctrlift/containerd"
	"github.com/ctrlift/ctrlift/node"
)

func newInfoCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "info",
		Short: "Show everything known about one object",
	}
	cmd.AddCommand(infoContainerCmd(g), infoPathCmd(g))
	return cmd
}

func infoContainerCmd(g *globalFlags) *cobra.Command {
	var p printFlags
	cmd := &cobra.Command{
		Use:   "container REF",
		Short: "Print a container as JSON: record, OCI spec, CRI metadata, status, mounts and snapshot chain",
		Long: `Print a container as JSON: its meta.db record, OCI runtime spec, CRI
metadata (mounts, log path), CRI status (pid, exit code, times) and its
snapshot chain, top (writable) layer first, with the directory of each layer
on the partition, and its volumes: each mount's kind, host path and where
its data is on the disk (or why it is not: secrets live in memory,
persistent volumes on their own disks).

REF is a full container id, a unique id prefix, a runtime-qualified id as
kubectl describe pod prints it (containerd://ID), POD/NAME or
K8SNS/POD/NAME (Kubernetes pod and container names), or a unique
Kubernetes container name. An ambiguous REF lists the candidates.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := g.state(cmd)
			if err != nil {
				return err
			}
			defer n.Close()
			c, err := n.Resolve(args[0])
			if err != nil {
				return err
			}
			vs, err := n.Volumes(c, node.VolumesDisk)
			if err != nil {
				return err
			}
			return printOne(cmd.OutOrStdout(), &p, struct {
				*containerd.Container
				Volumes []node.Volume `json:"volumes"`
			}{c, vs})
		},
	}
	p.register(cmd, []string{"json", "jsonl"}, false)
	return cmd
}
