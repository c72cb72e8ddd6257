package lvm

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/ctrlift/ctrlift/internal/testutil"
)

// fuzzSeeds are the metadata texts and PV heads lvm2 wrote in the
// fixtures.
func fuzzSeeds(f *testing.F) (texts, heads [][]byte) {
	for _, name := range []string{"node-lvm-striped-0", "node-lvm-striped-1"} {
		p := testutil.Unzstd(f, filepath.Join(testutil.RepoRoot(f), "testdata", "images", "lvm", name+".raw.zst"))
		fh, err := os.Open(p)
		if err != nil {
			f.Fatal(err)
		}
		head := make([]byte, 1<<20)
		if _, err := io.ReadFull(fh, head); err != nil {
			f.Fatal(err)
		}
		fh.Close()
		pv, err := ReadPV(bytes.NewReader(head), int64(len(head))+4096)
		if err != nil || len(pv.Copies) == 0 || pv.Copies[0].Err != nil {
			f.Fatalf("%s: %v", name, err)
		}
		texts = append(texts, pv.Copies[0].Text)
		heads = append(heads, head)
	}
	return texts, heads
}

// FuzzParseVG: any text parses to a VG or a FormatError, never a panic;
// every LV it accepts maps only extents its PVs have.
func FuzzParseVG(f *testing.F) {
	texts, _ := fuzzSeeds(f)
	for _, t := range texts {
		f.Add(t)
	}
	f.Add([]byte("vg { a { b { c = [[[1]]] } } }"))
	f.Fuzz(func(t *testing.T, text []byte) {
		vg, err := ParseVG(text)
		if err != nil {
			return
		}
		for _, lv := range vg.LVs {
			if lv.Err != nil {
				continue
			}
			var next int64
			for _, s := range lv.Segments {
				if s.StartExtent != next || len(s.Areas) == 0 {
					t.Fatalf("LV %s: segment %+v after extent %d", lv.Name, s, next)
				}
				next += s.ExtentCount
				for _, a := range s.Areas {
					if ref := vg.PVs[a.PV]; a.PE+s.ExtentCount/int64(len(s.Areas)) > ref.PECount {
						t.Fatalf("LV %s maps past %s", lv.Name, ref.Name)
					}
				}
			}
		}
	})
}

// FuzzReadPV: a damaged PV head (label, PV header, metadata area header
// and text) gives an error or a PV, and reading its LVs stays in bounds.
func FuzzReadPV(f *testing.F) {
	_, heads := fuzzSeeds(f)
	for _, h := range heads {
		f.Add(h[:8192])
	}
	f.Fuzz(func(t *testing.T, head []byte) {
		// The device is larger than the head: reads past it fail as a
		// truncated image's would.
		r := bytes.NewReader(head)
		pv, err := ReadPV(r, 2<<20)
		if err != nil {
			return
		}
		for _, vg := range Assemble([]*PV{pv}) {
			for _, lv := range vg.LVs {
				if rd, err := lv.Open(); err == nil {
					buf := make([]byte, 4096)
					rd.ReadAt(buf, 0)
					rd.ReadAt(buf, lv.Size-1)
				}
			}
		}
	})
}
