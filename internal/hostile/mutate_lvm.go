//go:build linux

package hostile

import (
	"encoding/binary"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// --- LVM2 physical volumes ---

func hasLVM(b *Base) bool { return b.LVM != nil }

// lvmFixLabel recomputes the label's CRC, so the damage reaches the PV
// header parser.
func lvmFixLabel(v *Variant) {
	m := v.Base.LVM
	sec := v.get(m.LabelOff, 512)
	v.put32(m.LabelOff+lvmLabelCRCOff, lvmCRC(sec[lvmLabelCRCTo:]))
}

// lvmFixArea recomputes a metadata area header's CRC.
func lvmFixArea(v *Variant, a LVMArea) {
	h := v.get(a.Off, lvmMdaHdrSize)
	v.put32(a.Off, lvmCRC(h[4:]))
}

// genLVMLabel damages the PV label or header: the sector it claims, the
// header offset, the device size and the area lists (offsets and sizes
// past the device, lists without their end).
func genLVMLabel(v *Variant) {
	m := v.Base.LVM
	switch v.R.IntN(5) {
	case 0:
		v.hugeField(m.LabelOff, lvmLabelFields, "LVM label")
	case 1:
		v.flip(m.PVHdrOff, 512-(m.PVHdrOff-m.LabelOff))
	default:
		v.hugeField(m.PVHdrOff, lvmPVHeaderFields, "LVM PV header")
	}
	if v.R.IntN(4) != 0 {
		lvmFixLabel(v)
		v.say("label CRC recomputed")
	}
}

var lvmNumberRE = regexp.MustCompile(`= (-?\d+)`)

// lvmTextEdits change the metadata text the way a hostile writer would;
// each returns the new text and says what it did.
var lvmTextEdits = []struct {
	name string
	edit func(v *Variant, text string) string
}{
	{"deep sections", func(v *Variant, text string) string {
		n := 30 + v.R.IntN(5000)
		i := strings.Index(text, "{") + 1
		return text[:i] + strings.Repeat("x {\n", n) + strings.Repeat("}\n", n) + text[i:]
	}},
	{"deep arrays", func(v *Variant, text string) string {
		n := 30 + v.R.IntN(50000)
		i := strings.Index(text, "{") + 1
		return text[:i] + "a = " + strings.Repeat("[", n) + strings.Repeat("]", n) + "\n" + text[i:]
	}},
	{"huge number", func(v *Variant, text string) string {
		locs := lvmNumberRE.FindAllStringSubmatchIndex(text, -1)
		if len(locs) == 0 {
			return text
		}
		l := pick(v.R, locs)
		val := pick(v.R, []string{"99999999999999999999999", "9223372036854775807", "-9223372036854775808", "-1", "0", "4294967296", "18446744073709551615"})
		v.say("number %s -> %s", text[l[2]:l[3]], val)
		return text[:l[2]] + val + text[l[3]:]
	}},
	{"segment past the device", func(v *Variant, text string) string {
		re := regexp.MustCompile(`("pv\d+", )(\d+)`)
		locs := re.FindAllStringSubmatchIndex(text, -1)
		if len(locs) == 0 {
			return text
		}
		l := pick(v.R, locs)
		val := pick(v.R, []string{"118", "119", "1000", "4611686018427387904", "9223372036854775807"})
		return text[:l[4]] + val + text[l[5]:]
	}},
	{"extent counts", func(v *Variant, text string) string {
		re := regexp.MustCompile(`(extent_count|pe_count|pe_start|extent_size|stripe_count|stripe_size|start_extent|dev_size) = (\d+)`)
		locs := re.FindAllStringSubmatchIndex(text, -1)
		if len(locs) == 0 {
			return text
		}
		l := pick(v.R, locs)
		val := strconv.FormatUint(v.hugeValue(pick(v.R, []int{4, 8})), 10)
		if val[0] == '1' && len(val) == 20 {
			val = "9223372036854775807"
		}
		v.say("%s = %s", text[l[2]:l[3]], val)
		return text[:l[4]] + val + text[l[5]:]
	}},
	{"loop", func(v *Variant, text string) string {
		// A stripe on an LV (the LV itself or another), a segment type
		// that names other LVs, a PV named twice.
		switch v.R.IntN(3) {
		case 0:
			return regexp.MustCompile(`"pv0", (\d+)`).ReplaceAllString(text, `"var", $1`)
		case 1:
			t := strings.Replace(text, `type = "striped"`, `type = "mirror"`, 1)
			return strings.Replace(t, "stripes = [", "mirrors = [", 1)
		}
		i := strings.Index(text, "physical_volumes {")
		if i < 0 {
			return text
		}
		j := strings.Index(text[i:], "pv0 {")
		if j < 0 {
			return text
		}
		return text[:i+j] + "pv0 {\nid = \"x\"\npe_start = 0\npe_count = 1\n}\n" + text[i+j:]
	}},
	{"cut", func(v *Variant, text string) string {
		return text[:v.R.IntN(len(text))]
	}},
	{"garbage", func(v *Variant, text string) string {
		b := []byte(text)
		for i := 0; i < 1+v.R.IntN(8); i++ {
			b[v.R.IntN(len(b))] = byte(v.R.IntN(256))
		}
		return string(b)
	}},
	{"many values", func(v *Variant, text string) string {
		i := strings.Index(text, "{") + 1
		return text[:i] + "a = [" + strings.Repeat("1,", 200000) + "1]\n" + text[i:]
	}},
}

// genLVMMetadata rewrites the current metadata text of one or every
// metadata area with a hostile edit and recomputes the checksums, so the
// text parser and the VG reader see it; or damages an area header.
func genLVMMetadata(v *Variant) {
	m := v.Base.LVM
	var areas []LVMArea
	for _, a := range m.Areas {
		if a.TextLen > 0 {
			areas = append(areas, a)
		}
	}
	if len(areas) == 0 {
		v.Skip = true
		return
	}
	if v.R.IntN(5) == 0 {
		a := pick(v.R, areas)
		v.hugeField(a.Off, lvmMdaFields, "LVM metadata area header")
		if v.R.IntN(3) != 0 {
			lvmFixArea(v, a)
			v.say("area CRC recomputed")
		}
		return
	}
	e := pick(v.R, lvmTextEdits)
	text := e.edit(v, string(areas[0].Text))
	v.say("metadata text: %s", e.name)
	targets := areas
	if len(areas) > 1 && v.R.IntN(3) == 0 {
		// One copy only, with a higher seqno so it wins.
		targets = areas[:1]
		text = regexp.MustCompile(`seqno = \d+`).ReplaceAllString(text, "seqno = 999")
		v.say("first copy only, seqno 999")
	}
	wrap := v.R.IntN(4) == 0
	for _, a := range targets {
		lvmWriteText(v, a, []byte(text), wrap)
	}
}

// lvmWriteText stores text as the area's current metadata: where the old
// text was, or (wrap) across the end of the ring, then fixes raw_locn
// and the header CRC.
func lvmWriteText(v *Variant, a LVMArea, text []byte, wrap bool) {
	ring := a.Size - lvmMdaHdrSize
	if int64(len(text)) > ring {
		text = text[:ring]
	}
	at := a.TextOff
	if wrap || at+int64(len(text)) > a.Off+a.Size {
		at = a.Off + a.Size - int64(len(text))/2 - 1
		if at < a.Off+lvmMdaHdrSize {
			at = a.Off + lvmMdaHdrSize
		}
	}
	first := min(int64(len(text)), a.Off+a.Size-at)
	v.put(at, text[:first])
	if first < int64(len(text)) {
		v.put(a.Off+lvmMdaHdrSize, text[first:])
		v.say("text wraps the ring of the area at %d", a.Off)
	}
	le := binary.LittleEndian
	loc := make([]byte, 24)
	le.PutUint64(loc, uint64(at-a.Off))
	le.PutUint64(loc[8:], uint64(len(text)))
	le.PutUint32(loc[16:], lvmCRC(text))
	v.put(a.Off+lvmRawLocnOff, loc)
	lvmFixArea(v, a)
	v.say("%d bytes of metadata at %d (%s)", len(text), at, fmt.Sprintf("area at %d", a.Off))
}
