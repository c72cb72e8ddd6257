//go:build linux

package vhdx_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ctrlift/ctrlift/image/vhdx"
	"github.com/ctrlift/ctrlift/internal/hostile"
)

// Found by the hostile-input sweep (seeds 1 and 3, class vhdx-regions): a
// disk refused for a required metadata item (or region) this reader does
// not know, or for an unknown header version, got an error naming neither
// the structure nor where it is (SECURITY.md, promise 6). They now name
// the table entry's or the header's offset.
func TestRequiredUnknownLocated(t *testing.T) {
	b := hostile.EvidenceBase(t, hostile.FormatVHDX)
	m := b.VHDX
	t.Run("metadata item", func(t *testing.T) {
		e := m.Meta[0]
		v := hostile.NewVariant(1, 207, "vhdx-regions", b)
		v.SetUint(0, e.Off, 4, 0xfffffffe, false) // an unknown item id
		v.SetUint(0, e.Off+24, 4, 4, false)       // is_required
		check(t, v, fmt.Sprintf("vhdx: metadata table entry at byte %d: unsupported: required metadata item FFFFFFFE-", e.Off))
	})
	t.Run("region", func(t *testing.T) {
		e := m.Regions[0] // in the first region table
		v := hostile.NewVariant(1, 0, "vhdx-regions", b)
		v.SetUint(0, e.Off, 4, 0xfffffffe, false)
		v.SetUint(0, e.Off+28, 4, 1, false) // required
		hostile.VHDXFixCRC(v, 192<<10, 64<<10)
		check(t, v, fmt.Sprintf("vhdx: region table entry at byte %d: unsupported: required region FFFFFFFE-", e.Off))
	})
	// Seed 3, variant 247: the same for an unknown header version.
	t.Run("header version", func(t *testing.T) {
		v := hostile.NewVariant(3, 247, "vhdx-regions", b)
		for _, h := range []int64{64 << 10, 128 << 10} {
			v.SetUint(0, h+66, 2, 0x8000, false)
			hostile.VHDXFixCRC(v, h, 4096)
		}
		check(t, v, "unsupported: header version 32768")
		check(t, v, "vhdx: header at byte ")
	})
}

func check(t *testing.T, v *hostile.Variant, want string) {
	t.Helper()
	im, err := vhdx.Open(v.WriteTemp(t), vhdx.Options{})
	if err == nil {
		im.Close()
		t.Fatal("opened")
	}
	if !errors.Is(err, errors.ErrUnsupported) || !strings.Contains(err.Error(), want) {
		t.Errorf("error %q; want one wrapping errors.ErrUnsupported and saying %q", err, want)
	}
}
