package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/ctrlift/ctrlift/image"
	"github.com/ctrlift/ctrlift/image/ext4"
)

// sourceFlags holds the flags that name the evidence, shared by the
// commands that read a disk image: -i/--image, -p/--partition, --no-cache.
type sourceFlags struct {
	image     string
	partition string
	noCache   bool
}

// registerImage registers -i/--image and --no-cache as persistent flags
// (subcommands inherit them).
func (s *sourceFlags) registerImage(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringVarP(&s.image, "image", "i", "", "raw disk image (also .zst, .gz, .xz, or a GCE export .tar.gz holding disk.raw); opened read-only")
	f.BoolVar(&s.noCache, "no-cache", false, "decompress a compressed image into a temporary file removed on exit instead of the user cache directory")
}

// register registers -i/--image, -p/--partition and --no-cache as
// persistent flags.
func (s *sourceFlags) register(cmd *cobra.Command) {
	s.registerImage(cmd)
	cmd.PersistentFlags().StringVarP(&s.partition, "partition", "p", "", "partition: number, GPT name or filesystem label (default: the one named or labelled STATE, else the largest ext2/3/4)")
}

// openDisk opens the image read-only. Decompression progress goes to
// stderr only when stderr is a terminal.
func (s *sourceFlags) openDisk(cmd *cobra.Command) (*image.Disk, error) {
	if s.image == "" {
		return nil, errors.New("no image given: use -i IMAGE")
	}
	opt := image.Options{NoCache: s.noCache}
	if f, ok := cmd.ErrOrStderr().(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		opt.Progress = f
	}
	return image.Open(s.image, opt)
}

// openedSource is the ext4 filesystem of the selected partition of an
// opened image.
type openedSource struct {
	FS        *ext4.FS
	Disk      *image.Disk
	Partition *image.Partition
}

// Close releases the image.
func (o *openedSource) Close() {
	o.FS.Close()
	o.Disk.Close()
}

// Describe names the selected partition for messages, e.g.
// `partition 1 "STATE" (ext4, label "STATE", 1.0 GiB at byte 4456448000)`.
func (o *openedSource) Describe() string {
	return describePartition(o.Partition)
}

// Others lists the other partitions, for messages suggesting -p.
func (o *openedSource) Others() string {
	var parts []string
	for i := range o.Disk.Partitions {
		p := &o.Disk.Partitions[i]
		if p.Number != o.Partition.Number {
			parts = append(parts, describePartition(p))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "; ")
}

func describePartition(p *image.Partition) string {
	s := "partition " + strconv.Itoa(p.Number)
	if p.Name != "" {
		s += " " + strconv.Quote(p.Name)
	}
	s += " (" + p.FS.Type
	if p.FS.Label != "" {
		s += ", label " + strconv.Quote(p.FS.Label)
	}
	return s + fmt.Sprintf(", %s at byte %d)", partIEC(p.Size), p.Start)
}

// open opens the image, selects the partition (-p) and reads its ext4
// filesystem. Warnings of the disk and of the filesystem go to stderr.
func (s *sourceFlags) open(cmd *cobra.Command) (*openedSource, error) {
	d, err := s.openDisk(cmd)
	if err != nil {
		return nil, err
	}
	stderr := cmd.ErrOrStderr()
	printImageWarnings(stderr, d.Warnings)
	p, err := d.Select(s.partition)
	if err != nil {
		d.Close()
		return nil, err
	}
	if !image.IsExt(p.FS.Type) {
		d.Close()
		return nil, fmt.Errorf("%s is not an ext2/3/4 filesystem; use -p to pick another partition", describePartition(p))
	}
	fsys, err := ext4.NewReader(p.Reader(), p.Size)
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("%s: %w", describePartition(p), err)
	}
	printImageWarnings(stderr, fsys.Warnings())
	return &openedSource{FS: fsys, Disk: d, Partition: p}, nil
}

func printImageWarnings(w io.Writer, warnings []string) {
	for _, s := range warnings {
		fmt.Fprintln(w, "warning:", printable(s))
	}
}
