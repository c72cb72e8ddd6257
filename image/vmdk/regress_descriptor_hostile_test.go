//go:build linux

package vmdk_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ctrlift/ctrlift/image/vmdk"
	"github.com/ctrlift/ctrlift/internal/hostile"
)

// Found by the hostile-input sweep (seed 1, class vmdk-descriptor): a
// descriptor whose extents add up to more than the reader accepts got an
// error naming neither the file nor the line (SECURITY.md, promise 6). It
// is now a FormatError naming the descriptor and the extent line that
// passes the bound.
func TestExtentsOverflowLocated(t *testing.T) {
	b := hostile.EvidenceBase(t, hostile.FormatVMDKDesc)
	desc := b.VMDKDesc.Text
	ext := b.VMDKDesc.Extents[0]
	lines := strings.Split(desc, "\n")
	// 2^44 sectors (8 PiB) each: the eighth passes 2^56 bytes.
	var zeros []string
	for range 9 {
		zeros = append(zeros, "RW 17592186044416 ZERO")
	}
	lines[ext.Line] = lines[ext.Line] + "\n" + strings.Join(zeros, "\n")
	text := strings.Join(lines, "\n")
	v := hostile.NewVariant(1, 125, "vmdk-descriptor", b)
	v.Ops = append(v.Ops, hostile.FileOp{Name: b.Set[0].Name, Kind: "replace", Data: []byte(text)})
	im, err := vmdk.Open(v.WriteTemp(t), vmdk.Options{})
	if err == nil {
		im.Close()
		t.Fatal("opened")
	}
	// The line of the eighth ZERO extent: the sparse extent and seven
	// before it fit.
	at := strings.Index(text, "RW 17592186044416 ZERO")
	for range 7 {
		at += strings.Index(text[at+1:], "RW 17592186044416 ZERO") + 1
	}
	var fe *vmdk.FormatError
	if !errors.As(err, &fe) || fe.File != b.Set[0].Name || fe.Struct != "descriptor extent line" || fe.Offset != int64(at) ||
		!strings.Contains(fe.Msg, "extents add up to more than") {
		t.Errorf("error %q (%#v); want a FormatError on %s, descriptor extent line at byte %d", err, fe, b.Set[0].Name, at)
	}
}

// Found by the hostile-input sweep (seed 3, classes vmdk-grains and
// vmdk-descriptor): an extent refused for its sparse header's version or
// compression algorithm, or a descriptor for an unknown extent type, got
// an error naming no offset (SECURITY.md, promise 6). They now name the
// header field, or the descriptor line.
func TestRefusalsLocated(t *testing.T) {
	b := hostile.EvidenceBase(t, hostile.FormatVMDKDesc)
	extent := b.Set[1].Name
	for _, tc := range []struct {
		name  string
		off   int64
		width int
		val   uint64
		want  string
	}{
		{"version", 4, 4, 65535, extent + ": sparse header at byte 4: unsupported: sparse extent version 65535"},
		{"compression algorithm", 77, 2, 34888, extent + ": sparse header at byte 77: unsupported: compression algorithm 34888"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := hostile.NewVariant(3, 100, "vmdk-grains", b)
			v.SetUint(1, tc.off, tc.width, tc.val, false)
			openFails(t, v, tc.want)
		})
	}
	t.Run("extent type", func(t *testing.T) {
		ext := b.VMDKDesc.Extents[0]
		lines := strings.Split(b.VMDKDesc.Text, "\n")
		lines[ext.Line] = `RDONLY 1366016 sparse "` + extent + `"`
		text := strings.Join(lines, "\n")
		at := strings.Index(text, "RDONLY 1366016 sparse")
		v := hostile.NewVariant(3, 61, "vmdk-descriptor", b)
		v.Ops = append(v.Ops, hostile.FileOp{Name: b.Set[0].Name, Kind: "replace", Data: []byte(text)})
		openFails(t, v, fmt.Sprintf("%s: descriptor extent line at byte %d: unsupported: unknown extent type \"sparse\"", b.Set[0].Name, at))
	})
}

func openFails(t *testing.T, v *hostile.Variant, want string) {
	t.Helper()
	im, err := vmdk.Open(v.WriteTemp(t), vmdk.Options{})
	if err == nil {
		im.Close()
		t.Fatal("opened")
	}
	if !errors.Is(err, errors.ErrUnsupported) || !strings.Contains(err.Error(), want) {
		t.Errorf("error %q; want one wrapping errors.ErrUnsupported and saying %q", err, want)
	}
}
