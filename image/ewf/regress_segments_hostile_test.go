//go:build linux

package ewf_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ctrlift/ctrlift/image/ewf"
	"github.com/ctrlift/ctrlift/internal/hostile"
)

// Found by the hostile-input sweep (seed 1, class e01-sections): a segment
// file replaced by a FIFO made Open block for ever in open(2), waiting
// for a writer. Segments are now checked to be regular files before they
// are opened, and opened without blocking.
func TestSegmentFIFO(t *testing.T) {
	b := hostile.EvidenceBase(t, hostile.FormatE01)
	for _, kind := range []string{"fifo", "dir"} {
		t.Run(kind, func(t *testing.T) {
			v := hostile.NewVariant(1, 40, "e01-sections", b)
			seg := b.Set[len(b.Set)-1].Name
			v.Ops = append(v.Ops, hostile.FileOp{Name: seg, Kind: kind})
			p := v.WriteTemp(t)
			done := make(chan error, 1)
			go func() {
				img, err := ewf.Open(p, ewf.Options{})
				if err == nil {
					img.Close()
				}
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), seg+": not a regular file") {
					t.Errorf("Open: %v; want an error saying %s is not a regular file", err, seg)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("Open still blocked after 30 s with %s a %s", seg, kind)
			}
		})
	}
}

// Found by the hostile-input sweep (seed 1, class e01-tables): a table and
// its table2 holding one chunk fewer than the volume section counts (the
// header checksums recomputed) got an error about "table section" at no
// offset (SECURITY.md, promise 6). It now names the volume section and
// where it is.
func TestChunkCountLocated(t *testing.T) {
	b := hostile.EvidenceBase(t, hostile.FormatE01)
	m := b.EWF
	v := hostile.NewVariant(1, 113, "e01-tables", b)
	hostile.E01SetTableCount(v, 0, uint32(m.Tables[0].Count-1))
	_, err := ewf.Open(v.WriteTemp(t), ewf.Options{})
	vol := m.Sections[m.Volume]
	var fe *ewf.FormatError
	if !errors.As(err, &fe) || fe.Struct != "volume section" || fe.Offset != vol.Off || fe.Segment != b.Set[vol.File].Name ||
		!strings.Contains(fe.Msg, "segments missing or truncated") {
		t.Errorf("error %v; want a FormatError on the volume section at byte %d of %s", err, vol.Off, b.Set[vol.File].Name)
	}
}
