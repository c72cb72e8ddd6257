package vdisk

import "errors"

// Info describes an opened virtual disk for display.
type Info struct {
	Format      Kind     `json:"format"`
	Subformat   string   `json:"subformat"`    // e.g. "v3", "streamOptimized", "dynamic", "fixed"
	VirtualSize int64    `json:"virtual_size"` // bytes of guest disk
	ClusterSize int64    `json:"cluster_size"` // allocation unit: cluster, grain or block bytes; 0 if none (flat)
	Compression string   `json:"compression"`  // codec of compressed blocks: qcow2 "zlib"/"zstd" from its header (clusters may still be stored plain); VMDK "deflate"; "" if none
	Backing     string   `json:"backing"`      // parent image the file names ("" if none)
	Files       []string `json:"files"`        // extent files read besides the one opened (VMDK descriptors)
	Warnings    []string `json:"warnings"`
}

// unsupported is an error for a feature a reader recognises but does not
// implement.
type unsupported string

func (u unsupported) Error() string { return string(u) }

// Is makes it match errors.ErrUnsupported.
func (u unsupported) Is(target error) bool { return target == errors.ErrUnsupported }

// ErrUnsupported is wrapped by the readers' errors about images they
// recognise and refuse (encryption, parents not given, unknown features);
// errors.Is(err, errors.ErrUnsupported) holds for them too.
var ErrUnsupported error = unsupported("unsupported")
