// Package vdisk holds what the virtual-disk readers (image/qcow2,
// image/vmdk, image/vhd, image/vhdx) share: recognising a format by its
// magic bytes, the metadata they report, and the engine that turns a
// format's block map into an io.ReaderAt with a bounded cache of
// decompressed blocks and parallel decompression.
package vdisk

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
)

// Kind is a virtual-disk container format.
type Kind uint8

// Kinds recognised by Sniff.
const (
	Unknown Kind = iota // none of the formats below (a raw disk, or something else)
	QCOW2               // QEMU copy-on-write ("QFI\xfb"; version 1 is refused by package qcow2)
	VMDK                // VMware: sparse extent ("KDMV", "COWD") or text descriptor
	VHD                 // Microsoft Virtual PC / Hyper-V VHD ("conectix" footer)
	VHDX                // Microsoft Hyper-V VHDX ("vhdxfile")
)

var kindNames = [...]string{Unknown: "unknown", QCOW2: "qcow2", VMDK: "vmdk", VHD: "vhd", VHDX: "vhdx"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// MarshalText makes a Kind appear by name in JSON.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Sniff recognises a format by the magic bytes at the start of the file
// (give it SniffLen bytes). A fixed VHD has its only footer at the end of
// the file; SniffAt finds those too.
func Sniff(head []byte) Kind {
	switch {
	case bytes.HasPrefix(head, magicQCOW):
		return QCOW2
	case bytes.HasPrefix(head, magicVMDKSparse), bytes.HasPrefix(head, magicVMDKCOWD):
		return VMDK
	case bytes.HasPrefix(bytes.TrimPrefix(head, utf8BOM), magicVMDKDesc):
		return VMDK
	case bytes.HasPrefix(head, magicVHDX):
		return VHDX
	case isVHDFooter(head):
		return VHD
	}
	return Unknown
}

// SniffAt is Sniff on the first bytes of r, and also recognises a VHD by
// a valid footer in its last 512 bytes (a fixed VHD is a raw disk with a
// footer appended, so its start is the guest's own first sector).
func SniffAt(r io.ReaderAt, size int64) (Kind, error) {
	head := make([]byte, min(size, SniffLen))
	if _, err := r.ReadAt(head, 0); err != nil && err != io.EOF {
		return Unknown, err
	}
	if k := Sniff(head); k != Unknown {
		return k, nil
	}
	if size < vhdFooterLen {
		return Unknown, nil
	}
	tail := make([]byte, vhdFooterLen)
	if _, err := r.ReadAt(tail, size-vhdFooterLen); err != nil && err != io.EOF {
		return Unknown, err
	}
	if isVHDFooter(tail) {
		return VHD, nil
	}
	return Unknown, nil
}

// isVHDFooter checks the cookie and the checksum, so that a raw disk whose
// first or last sector merely contains "conectix" is not taken for a VHD.
func isVHDFooter(b []byte) bool {
	if len(b) < vhdFooterLen || !bytes.HasPrefix(b, magicVHD) {
		return false
	}
	return VHDChecksum(b[:vhdFooterLen]) == binary.BigEndian.Uint32(b[vhdChecksumOffset:])
}

// VHDChecksum is the ones' complement of the sum of all bytes of a VHD
// footer or dynamic header, its 4-byte checksum field (at offset 64 in the
// footer) counted as zero. Use VHDChecksumAt for other field positions.
func VHDChecksum(b []byte) uint32 { return VHDChecksumAt(b, vhdChecksumOffset) }

// VHDChecksumAt is VHDChecksum for a structure whose checksum field is at
// offset at.
func VHDChecksumAt(b []byte, at int) uint32 {
	var sum uint32
	for i, c := range b {
		if i >= at && i < at+4 {
			continue
		}
		sum += uint32(c)
	}
	return ^sum
}
