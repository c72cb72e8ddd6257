// Package node is ctrlift's library tier: the verbs of the ctrlift
// command, each one call, for Go programs that read containers out of a
// node's evidence without root and without mounting anything.
//
// Data flows one way, and each step is a package of its own:
//
//	evidence          image (raw, .zst/.gz/.xz, GCE export), dirfs, tarfs
//	   │
//	volumes           image: GPT, MBR, bare filesystem → a partition
//	   │
//	filesystem        image/ext4 → vfs.FS (a directory or tar is one too)
//	   │
//	runtime state     containerd: meta.db, snapshotters, CRI files
//	   │
//	layer merge       layers: overlayfs rules over vfs.FS layers
//	   │
//	outputs           export: deterministic tar, manifest of export.Record
//
// Open takes the inputs and finds the filesystem holding the runtime's
// state; Containers lists, Resolve names one container by reference,
// Layers maps it onto its layer directories, Export and ExportAll write
// tars, Diff streams what a container changed, History lists the layers
// behind one path, Find searches every container, LocatePath goes from a
// file of the partition to the containers that have it. Inputs are opened
// read-only and outputs that would touch them are refused.
package node
