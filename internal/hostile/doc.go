// Package hostile is ctrlift's mutation harness: it takes real disk images
// (the bundled example node, the cos-node fixture when ../shared is
// present, the generated ext4 and partitioned test images), derives broken
// variants from them deterministically from a seed, and runs the ctrlift
// binary on each variant in a child process with a wall-clock limit, a
// memory limit and, when started as root, as an unprivileged user.
//
// The package's test (sweep_test.go) checks on every variant that ctrlift
// exits with a clear one-line error or succeeds, never shows a Go panic or
// stack trace, stays under 10 s and 512 MiB RSS, leaves the image
// unchanged and writes nothing outside the output path it was given.
// SECURITY.md at the repository root states these promises; `make hostile`
// runs the deep sweep.
//
// The non-test files locate on-disk structures (ext4, bbolt, GPT, MBR,
// and the evidence formats E01, QCOW2, VMDK, VHD and VHDX, whose bases
// the real tools make from the example at setup: BuildEvidence) in a
// pristine image with small raw parsers of their own, so a mutation can
// hit exactly one structure while the rest stays valid. A multi-file base
// (an E01 segment set, a VMDK descriptor and its extent) gets a directory
// of its own per variant; files a variant names outside it are watched
// with inotify and must never be opened.
package hostile
