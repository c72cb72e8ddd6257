//go:build linux

package qcow2_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/ctrlift/ctrlift/image/qcow2"
	"github.com/ctrlift/ctrlift/internal/hostile"
)

// Found by the hostile-input sweep (seed 1, class qcow2-header): an image
// refused for an unknown incompatible feature bit, or an unknown
// compression type, got an error naming neither the header nor where in
// it (SECURITY.md, promise 6). They, and the other refusals of a header
// value (version 1, encryption, an external data file), now name the
// header field's offset.
func TestHeaderRefusalsLocated(t *testing.T) {
	b := hostile.EvidenceBase(t, hostile.FormatQCOW2)
	for _, tc := range []struct {
		name  string
		off   int64
		width int
		val   uint64
		want  string
	}{
		{"unknown incompatible feature", 72, 8, 1 << 15, "qcow2: header at byte 72: unsupported: unknown incompatible features: bit 15"},
		{"unknown compression type", 104, 1, 2, "qcow2: header at byte 104: unsupported: compression_type 2"},
		{"version 1", 4, 4, 1, "qcow2: header at byte 4: unsupported: qcow version 1 image"},
		{"encrypted", 32, 4, 1, "qcow2: header at byte 32: unsupported: encrypted image (AES)"},
		{"external data file", 72, 8, 4, "qcow2: header at byte 72: unsupported: guest data is in an external data file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := hostile.NewVariant(1, 0, "qcow2-header", b)
			v.SetUint(0, tc.off, tc.width, tc.val, true)
			im, err := qcow2.Open(v.WriteTemp(t), qcow2.Options{})
			if err == nil {
				im.Close()
				t.Fatal("opened")
			}
			if !errors.Is(err, errors.ErrUnsupported) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q; want one wrapping errors.ErrUnsupported and saying %q", err, tc.want)
			}
		})
	}
}
