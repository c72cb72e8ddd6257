package lvm

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ctrlift/ctrlift/image/gpt"
	"github.com/ctrlift/ctrlift/internal/testutil"
)

// The example's STATE partition (testdata/images/example/expected/gpt.txt).
const (
	stateOff = 577536 * 512
	stateLen = 384 << 20
)

func fixture(t *testing.T, name string) *os.File {
	t.Helper()
	p := testutil.Unzstd(t, filepath.Join(testutil.RepoRoot(t), "testdata", "images", "lvm", name+".raw.zst"))
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func size(t *testing.T, f *os.File) int64 {
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// lvsRow is one line of `lvs --segments` in the fixture's .lvm.txt.
type lvsRow struct {
	name, typ         string
	start, size       int64
	stripes           int
	stripeSize        int64
	ranges            []string // "PV0:2-51"
	hidden            bool
	pvUUIDs, pvStarts []string
}

// readLVM reads the tools' view written by make-lvm.sh: PV UUIDs and
// first-extent offsets from pvs, segments from lvs.
func readLVM(t *testing.T, name string) (pvs [][2]string, rows []lvsRow) {
	t.Helper()
	f, err := os.Open(filepath.Join(testutil.RepoRoot(t), "testdata", "images", "lvm", name+".lvm.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		switch {
		case len(fs) == 0 || fs[0] == "PV" || fs[0] == "LV":
		case strings.HasPrefix(fs[0], "PV") && len(fs) == 6:
			pvs = append(pvs, [2]string{fs[2], strings.TrimSuffix(fs[3], "B")})
		case len(fs) >= 7:
			r := lvsRow{name: strings.Trim(fs[0], "[]"), typ: fs[1], hidden: strings.HasPrefix(fs[0], "["), ranges: fs[6:]}
			r.start, _ = strconv.ParseInt(fs[2], 10, 64)
			r.size, _ = strconv.ParseInt(fs[3], 10, 64)
			r.stripes, _ = strconv.Atoi(fs[4])
			r.stripeSize, _ = strconv.ParseInt(strings.TrimSuffix(fs[5], "B"), 10, 64)
			rows = append(rows, r)
		default:
			t.Fatalf("unexpected line %q", sc.Text())
		}
	}
	return pvs, rows
}

// checkAgainstLVS compares the assembled VG with what pvs and lvs said.
func checkAgainstLVS(t *testing.T, vg *VG, name string) {
	t.Helper()
	pvs, rows := readLVM(t, name)
	if len(vg.PVs) != len(pvs) {
		t.Fatalf("%d PVs, pvs lists %d", len(vg.PVs), len(pvs))
	}
	for i, p := range pvs {
		if vg.PVs[i].UUID != p[0] || strconv.FormatInt(vg.PVs[i].PEStart, 10) != p[1] {
			t.Errorf("PV %d: %s at %d, pvs says %s at %s", i, vg.PVs[i].UUID, vg.PVs[i].PEStart, p[0], p[1])
		}
	}
	segs := map[string][]lvsRow{}
	for _, r := range rows {
		segs[r.name] = append(segs[r.name], r)
	}
	if len(segs) != len(vg.LVs) {
		t.Errorf("%d LVs, lvs lists %d", len(vg.LVs), len(segs))
	}
	for _, lv := range vg.LVs {
		want := segs[lv.Name]
		if len(want) == 0 {
			t.Errorf("LV %s not listed by lvs", lv.Name)
			continue
		}
		if lv.Visible == want[0].hidden {
			t.Errorf("LV %s: visible %v, lvs shows it hidden %v", lv.Name, lv.Visible, want[0].hidden)
		}
		if lv.Err != nil {
			if lv.Type != want[0].typ {
				t.Errorf("LV %s refused as %q, lvs type %s: %v", lv.Name, lv.Type, want[0].typ, lv.Err)
			}
			continue
		}
		var got []lvsRow
		for _, s := range lv.Segments {
			r := lvsRow{name: lv.Name, typ: lv.Type, start: s.StartExtent, size: s.ExtentCount, stripes: len(s.Areas), stripeSize: s.StripeSize}
			for _, a := range s.Areas {
				r.ranges = append(r.ranges, fmt.Sprintf("PV%d:%d-%d", a.PV, a.PE, a.PE+s.ExtentCount/int64(len(s.Areas))-1))
			}
			got = append(got, r)
		}
		// lvs lists segments in its own order; ours are by start.
		for _, w := range want {
			found := false
			for _, g := range got {
				found = found || fmt.Sprint(g) == fmt.Sprint(lvsRow{name: w.name, typ: w.typ, start: w.start, size: w.size, stripes: w.stripes, stripeSize: w.stripeSize, ranges: w.ranges})
			}
			if !found {
				t.Errorf("LV %s: lvs segment %+v not among ours %+v", lv.Name, w, got)
			}
		}
		if len(got) != len(want) {
			t.Errorf("LV %s: %d segments, lvs %d", lv.Name, len(got), len(want))
		}
	}
}

func stateDigest(t *testing.T) string {
	t.Helper()
	p := testutil.Unzstd(t, filepath.Join(testutil.RepoRoot(t), "testdata", "images", "example", "wordpress-node.raw.zst"))
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return digest(t, io.NewSectionReader(f, stateOff, stateLen))
}

func digest(t *testing.T, r io.Reader) string {
	h := sha256.New()
	if _, err := io.CopyBuffer(h, r, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

func findLV(t *testing.T, vg *VG, name string) *LV {
	for _, lv := range vg.LVs {
		if lv.Name == name {
			return lv
		}
	}
	t.Fatalf("no LV %s", name)
	return nil
}

// TestLinear: a PV in a GPT partition with two metadata areas; the LV
// var was extended, so it has two segments around spare.
func TestLinear(t *testing.T) {
	f := fixture(t, "node-lvm-linear")
	tab, err := gpt.Read(f, size(t, f))
	if err != nil {
		t.Fatal(err)
	}
	p := tab.Partitions[0]
	part := io.NewSectionReader(f, int64(p.FirstLBA)*512, int64(p.LastLBA-p.FirstLBA+1)*512)
	pv, err := ReadPV(part, part.Size())
	if err != nil {
		t.Fatal(err)
	}
	if len(pv.Copies) != 2 {
		t.Fatalf("%d metadata areas, want 2 (pvcreate --pvmetadatacopies 2)", len(pv.Copies))
	}
	for _, c := range pv.Copies {
		if c.Err != nil {
			t.Error(c.Err)
		}
	}
	vgs := Assemble([]*PV{pv})
	if len(vgs) != 1 || len(pv.Warnings) > 0 || len(vgs[0].Warnings) > 0 {
		t.Fatalf("%d VGs, warnings %v", len(vgs), pv.Warnings)
	}
	vg := vgs[0]
	if vg.Name != "node" || vg.ExtentSize != 4<<20 {
		t.Errorf("VG %s, extent %d", vg.Name, vg.ExtentSize)
	}
	checkAgainstLVS(t, vg, "node-lvm-linear")
	cpool := findLV(t, vg, "cpool")
	if cpool.Err == nil || !strings.Contains(cpool.Err.Error(), "cache-pool") {
		t.Errorf("cache pool: %v", cpool.Err)
	}
	lv := findLV(t, vg, "var")
	r, err := lv.Open()
	if err != nil {
		t.Fatal(err)
	}
	if lv.Size != stateLen || lv.Type != "linear" {
		t.Fatalf("var: %d bytes, %s", lv.Size, lv.Type)
	}
	if got, want := digest(t, io.NewSectionReader(r, 0, lv.Size)), stateDigest(t); got != want {
		t.Errorf("LV var reads %s, the example's STATE is %s", got, want)
	}
}

// TestStriped: the STATE filesystem striped over two whole-disk PVs; one
// PV alone leaves the LV unreadable, with an error that says what to do.
func TestStriped(t *testing.T) {
	var pvs []*PV
	for _, name := range []string{"node-lvm-striped-1", "node-lvm-striped-0"} { // order does not matter
		f := fixture(t, name)
		pv, err := ReadPV(f, size(t, f))
		if err != nil {
			t.Fatal(err)
		}
		pvs = append(pvs, pv)
	}
	vgs := Assemble(pvs)
	if len(vgs) != 1 || len(vgs[0].Warnings) > 0 {
		t.Fatalf("%d VGs, warnings %v", len(vgs), vgs[0].Warnings)
	}
	checkAgainstLVS(t, vgs[0], "node-lvm-striped")
	lv := findLV(t, vgs[0], "containerd")
	r, err := lv.Open()
	if err != nil {
		t.Fatal(err)
	}
	if lv.Type != "striped" || lv.Segments[0].StripeSize != 64<<10 {
		t.Errorf("%s, stripe %d", lv.Type, lv.Segments[0].StripeSize)
	}
	if got, want := digest(t, io.NewSectionReader(r, 0, lv.Size)), stateDigest(t); got != want {
		t.Errorf("LV containerd reads %s, the example's STATE is %s", got, want)
	}

	vgs = Assemble(pvs[:1])
	lv = findLV(t, vgs[0], "containerd")
	if _, err := lv.Open(); err == nil || !strings.Contains(err.Error(), "not among the inputs") {
		t.Errorf("one PV of two: %v", err)
	}
}

func TestNotPV(t *testing.T) {
	f := fixture(t, "luks2")
	if _, err := ReadPV(f, size(t, f)); !errors.Is(err, ErrNotPV) {
		t.Errorf("LUKS2 file: %v", err)
	}
}

// TestParseTextLimits: the parser's guards, each on a text that breaks one.
func TestParseTextLimits(t *testing.T) {
	deep := strings.Repeat("a {\n", 100) + strings.Repeat("}\n", 100)
	for _, tc := range []struct{ name, text, want string }{
		{"deep sections", deep, "nested deeper"},
		{"deep arrays", "x = " + strings.Repeat("[", 100) + strings.Repeat("]", 100), "nested deeper"},
		{"huge number", "x = 99999999999999999999999", "out of range"},
		{"unclosed string", `x = "abc`, "not closed"},
		{"unclosed section", "vg { x = 1", "not closed"},
		{"stray brace", "}", "without a section"},
		{"bad array", "x = [1 2]", "expected ','"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseText([]byte(tc.text))
			var fe *FormatError
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%v, want a FormatError saying %q", err, tc.want)
			}
		})
	}
}

// TestParseVGRefusals: metadata lvm wrote, with one value changed the way
// a damaged or hostile area would.
func TestParseVGRefusals(t *testing.T) {
	f := fixture(t, "node-lvm-striped-0")
	pv, err := ReadPV(f, size(t, f))
	if err != nil {
		t.Fatal(err)
	}
	text := string(pv.Copies[0].Text)
	for _, tc := range []struct{ name, from, to, want string }{
		{"past the PV", `"pv1", 0`, `"pv1", 40`, "past its"},
		{"unknown PV", `"pv1", 0`, `"pv7", 0`, "not a physical volume"},
		{"self reference", `"pv1", 0`, `"containerd", 0`, "not a physical volume"},
		{"stripe pairs", "stripe_count = 2", "stripe_count = 3", "want 3 pairs"},
		{"uneven stripes", "extent_count = 96", "extent_count = 95", "do not divide"},
		{"huge extent count", "extent_count = 96", "extent_count = 9223372036854775807", "outside"},
		{"thin", `type = "striped"`, `type = "thin"`, "a thin volume"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(text, tc.from) {
				t.Fatalf("metadata lacks %q", tc.from)
			}
			vg, err := ParseVG([]byte(strings.Replace(text, tc.from, tc.to, 1)))
			if err != nil {
				t.Fatal(err)
			}
			lv := findLV(t, vg, "containerd")
			if lv.Err == nil || !strings.Contains(lv.Err.Error(), tc.want) {
				t.Errorf("%v, want %q", lv.Err, tc.want)
			}
		})
	}
}
