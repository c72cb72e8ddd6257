package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ctrlift/ctrlift/image/ewf"
	"github.com/ctrlift/ctrlift/image/qcow2"
	"github.com/ctrlift/ctrlift/image/vdisk"
	"github.com/ctrlift/ctrlift/image/vhd"
	"github.com/ctrlift/ctrlift/image/vhdx"
	"github.com/ctrlift/ctrlift/image/vmdk"
)

// Formats of the evidence file, reported in Disk.Format.
const (
	FormatRaw = "raw" // raw disk (dd), also when stream-compressed
	FormatE01 = "e01" // Expert Witness Format (EnCase, ewfacquire)
	// The virtual-disk formats keep their vdisk.Kind names: qcow2, vmdk,
	// vhd, vhdx.
)

// vdiskImage is a virtual disk opened by its format's package.
type vdiskImage interface {
	containerImage
	Info() vdisk.Info
}

// openVDisk opens a virtual disk with no parent: an image that names a
// backing file or parent is refused by its reader, by name.
func openVDisk(kind vdisk.Kind, path string) (vdiskImage, error) {
	switch kind {
	case vdisk.QCOW2:
		return qcow2.Open(path, qcow2.Options{})
	case vdisk.VMDK:
		return vmdk.Open(path, vmdk.Options{})
	case vdisk.VHD:
		return vhd.Open(path, vhd.Options{})
	case vdisk.VHDX:
		return vhdx.Open(path, vhdx.Options{})
	}
	return nil, fmt.Errorf("no reader for %s", kind)
}

// containerImage is an evidence container read in place: its guest disk
// as an io.ReaderAt, and what the container says about itself.
type containerImage interface {
	io.ReaderAt
	io.Closer
	Size() int64
}

// openContainer opens path in place when it is an evidence container
// format, recognised by its magic (head is its first bytes; f the file,
// whose end holds a fixed VHD's only footer); ok is false for anything
// else.
func openContainer(path string, f *os.File, size int64, head []byte) (d *Disk, ok bool, err error) {
	kind := vdisk.Sniff(head)
	if kind == vdisk.Unknown && !ewf.Sniff(head) {
		if kind, err = vdisk.SniffAt(f, size); err != nil {
			return nil, false, nil // unreadable: the raw path says so
		}
	}
	if kind != vdisk.Unknown {
		img, err := openVDisk(kind, path)
		if err != nil {
			return nil, true, err // the reader names its format
		}
		info := img.Info()
		d, err := diskOf(img, kind.String(), info)
		if err != nil {
			return nil, true, err
		}
		for _, f := range info.Files {
			if !filepath.IsAbs(f) {
				f = filepath.Join(filepath.Dir(path), f) // extents are named from the descriptor's directory
			}
			d.Files = append(d.Files, f)
		}
		for _, w := range info.Warnings {
			d.warnf("%s: %s", kind, w)
		}
		return d, true, nil
	}
	switch {
	case ewf.Sniff(head):
		img, err := ewf.Open(path, ewf.Options{})
		if err != nil {
			return nil, true, err // "ewf: ..."
		}
		info := img.Info()
		d, err := diskOf(img, FormatE01, info)
		if err != nil {
			return nil, true, err
		}
		d.Files = img.Segments()
		d.verify = func(ctx context.Context, progress func(done, total int64)) (*VerifyResult, error) {
			r, err := img.Verify(ctx, progress)
			if err != nil {
				return nil, err
			}
			return &VerifyResult{Bytes: r.Bytes, MD5: r.MD5, SHA1: r.SHA1, StoredMD5: r.StoredMD5, StoredSHA1: r.StoredSHA1,
				MD5Check: r.MD5Check.String(), SHA1Check: r.SHA1Check.String(), OK: r.OK()}, nil
		}
		for _, w := range info.Warnings {
			d.warnf("E01: %s", w)
		}
		return d, true, nil
	}
	return nil, false, nil
}

func diskOf(img containerImage, format string, meta any) (*Disk, error) {
	d, err := NewDisk(img, img.Size())
	if err != nil {
		img.Close()
		return nil, err
	}
	d.Format, d.Metadata, d.closer = format, meta, img
	return d, nil
}

// VerifyResult compares the guest disk's hashes, computed now, with those
// the container stored at acquisition.
type VerifyResult struct {
	Bytes      int64  `json:"bytes"`
	MD5        string `json:"md5,omitempty"`
	SHA1       string `json:"sha1,omitempty"`
	StoredMD5  string `json:"stored_md5,omitempty"`
	StoredSHA1 string `json:"stored_sha1,omitempty"`
	MD5Check   string `json:"md5_check"` // match, mismatch or absent
	SHA1Check  string `json:"sha1_check"`
	OK         bool   `json:"ok"` // a stored hash exists and none differs
}

// ErrNoStoredHash is returned by Verify for formats that store no hash of
// the media (everything but E01).
var ErrNoStoredHash = errors.New("the evidence format stores no hash of the disk to verify")

// Verify reads the whole guest disk and compares its hashes with those
// stored in the evidence container.
func (d *Disk) Verify(ctx context.Context, progress func(done, total int64)) (*VerifyResult, error) {
	if d.verify == nil {
		return nil, fmt.Errorf("%s (%s): %w", d.name(), d.Format, ErrNoStoredHash)
	}
	return d.verify(ctx, progress)
}

// FilesRead are the files the disk is read from besides the input itself
// (E01 segments, VMDK extents): evidence too. Nil-safe.
func (d *Disk) FilesRead() []string {
	if d == nil {
		return nil
	}
	return d.Files
}
