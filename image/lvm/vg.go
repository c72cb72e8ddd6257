package lvm

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// VG is a volume group as its newest valid metadata describes it.
type VG struct {
	Name       string
	UUID       string
	Seqno      int64
	ExtentSize int64 // bytes
	PVs        []*PVRef
	LVs        []*LV
	Warnings   []string
}

// PVRef is one PV as the VG metadata names it ("pv0", ...), and the PV
// found for it, if any.
type PVRef struct {
	Name    string
	UUID    string
	Device  string // the device path LVM last saw it on (a hint only)
	PEStart int64  // bytes from the start of the PV to its first extent
	PECount int64
	PV      *PV // nil: not among the devices given
}

// LV is a logical volume.
type LV struct {
	Name     string
	UUID     string
	Visible  bool   // lvs shows it; hidden ones are parts of other LVs
	Type     string // linear, striped, or the refused segment type (thin, cache-pool, ...)
	Size     int64  // bytes
	Segments []Segment
	// Err says why the LV cannot be read: a refused type, a missing PV, a
	// damaged segment map. Nil for a readable LV.
	Err error

	vg *VG
}

// Segment maps ExtentCount extents of the LV, from StartExtent, onto
// areas of PVs: one area (linear) or several striped in StripeSize
// chunks.
type Segment struct {
	StartExtent int64
	ExtentCount int64
	Type        string
	StripeSize  int64 // bytes; 0 for one area
	Areas       []Area
}

// Area is where a segment's stripe lies: on PV (an index into VG.PVs)
// from extent PE.
type Area struct {
	PV int
	PE int64
}

// ParseVG reads a VG from its text metadata: the one top-level section is
// the VG.
func ParseVG(text []byte) (*VG, error) {
	root, err := ParseText(text)
	if err != nil {
		return nil, err
	}
	var name string
	var s *Section
	for i, v := range root.Values {
		if v.Kind == KindSection {
			if s != nil {
				return nil, metaErr("more than one volume group section (%q and %q)", name, root.Names[i])
			}
			name, s = root.Names[i], v.Section
		}
	}
	if s == nil {
		return nil, metaErr("no volume group section")
	}
	vg := &VG{Name: name}
	vg.UUID, _ = str(s, "id")
	if vg.Seqno, err = num(s, "seqno", 0, 1<<62); err != nil {
		return nil, err
	}
	ext, err := num(s, "extent_size", 1, 1<<32) // sectors
	if err != nil {
		return nil, err
	}
	vg.ExtentSize = ext * sectorSize
	if f, ok := str(s, "format"); ok && f != "lvm2" {
		return nil, metaErr("format %q (only lvm2 is read)", f)
	}
	pvs := s.Sub("physical_volumes")
	if pvs == nil {
		return nil, metaErr("volume group %s has no physical_volumes section", name)
	}
	if len(pvs.Names) > maxPVs {
		return nil, metaErr("%d physical volumes, more than %d", len(pvs.Names), maxPVs)
	}
	byName := map[string]int{}
	for i, pvName := range pvs.Names {
		ps := pvs.Values[i].Section
		if ps == nil {
			continue
		}
		ref := &PVRef{Name: pvName}
		ref.UUID, _ = str(ps, "id")
		ref.Device, _ = str(ps, "device")
		start, err := num(ps, "pe_start", 0, 1<<52)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", pvName, err)
		}
		ref.PEStart = start * sectorSize
		if ref.PECount, err = num(ps, "pe_count", 0, 1<<40); err != nil {
			return nil, fmt.Errorf("%s: %w", pvName, err)
		}
		if _, dup := byName[pvName]; dup {
			return nil, metaErr("physical volume %s named twice", pvName)
		}
		byName[pvName] = len(vg.PVs)
		vg.PVs = append(vg.PVs, ref)
	}
	if lvs := s.Sub("logical_volumes"); lvs != nil {
		for i, lvName := range lvs.Names {
			if ls := lvs.Values[i].Section; ls != nil {
				vg.LVs = append(vg.LVs, parseLV(vg, lvName, ls, byName))
			}
		}
		refuseSnapshotStores(vg, lvs)
	}
	return vg, nil
}

// refuseSnapshotStores marks the copy-on-write store of each old-style
// snapshot: LVM lists it as a visible, linear LV under the snapshot's
// name, while a hidden LV's "snapshot" segment names it as cow_store.
// Its bytes are exceptions, not a filesystem.
func refuseSnapshotStores(vg *VG, lvs *Section) {
	for _, v := range lvs.Values {
		if v.Section == nil {
			continue
		}
		for _, seg := range v.Section.Values {
			if seg.Kind != KindSection {
				continue
			}
			typ, _ := str(seg.Section, "type")
			cow, _ := str(seg.Section, "cow_store")
			origin, _ := str(seg.Section, "origin")
			if typ != "snapshot" || cow == "" {
				continue
			}
			for _, lv := range vg.LVs {
				if lv.Name == cow && lv.Err == nil {
					lv.Type = "snapshot"
					lv.Err = fmt.Errorf("logical volume %s/%s: a snapshot of %s (its copy-on-write store): ctrlift reads linear and striped logical volumes only; read the origin %s", vg.Name, cow, origin, origin)
				}
			}
		}
	}
}

// readableTypes are the segment types mapped here: striped with one
// stripe is LVM's linear.
var readableTypes = map[string]bool{"striped": true, "linear": true}

// parseLV reads one LV; a problem with it is kept in LV.Err, so the rest
// of the VG stays readable.
func parseLV(vg *VG, name string, s *Section, pvIndex map[string]int) *LV {
	lv := &LV{Name: name, vg: vg}
	lv.UUID, _ = str(s, "id")
	if st, ok := s.Get("status"); ok && st.Kind == KindArray {
		for _, v := range st.Array {
			if v.Kind == KindString && v.Str == "VISIBLE" {
				lv.Visible = true
			}
		}
	}
	fail := func(err error) *LV {
		lv.Err = fmt.Errorf("logical volume %s/%s: %w", vg.Name, name, err)
		return lv
	}
	var segs []*Section
	for i, n := range s.Names {
		if strings.HasPrefix(n, "segment") && s.Values[i].Kind == KindSection {
			segs = append(segs, s.Values[i].Section)
		}
	}
	if len(segs) > maxSegments {
		return fail(metaErr("%d segments, more than %d", len(segs), maxSegments))
	}
	// The size, also of a volume refused below: the sum of its segments.
	var extents int64
	for _, ss := range segs {
		if n, err := num(ss, "extent_count", 1, 1<<40); err == nil {
			extents += n
		}
	}
	if extents <= (1<<62)/vg.ExtentSize {
		lv.Size = extents * vg.ExtentSize
	}
	stripes := 0
	for _, ss := range segs {
		seg, err := parseSegment(ss, pvIndex, vg)
		if err != nil {
			if typ, _ := str(ss, "type"); lv.Type == "" {
				lv.Type = typ
			}
			return fail(err)
		}
		if !readableTypes[seg.Type] {
			lv.Type = seg.Type
			return fail(fmt.Errorf("a %s volume: ctrlift reads linear and striped logical volumes only", seg.Type))
		}
		stripes = max(stripes, len(seg.Areas))
		lv.Segments = append(lv.Segments, seg)
	}
	sort.Slice(lv.Segments, func(i, j int) bool { return lv.Segments[i].StartExtent < lv.Segments[j].StartExtent })
	var next int64
	for _, seg := range lv.Segments {
		if seg.StartExtent != next {
			return fail(metaErr("segment at extent %d leaves a gap or overlap after extent %d", seg.StartExtent, next))
		}
		next += seg.ExtentCount
	}
	if next > (1<<62)/vg.ExtentSize {
		return fail(metaErr("%d extents of %d bytes overflow", next, vg.ExtentSize))
	}
	lv.Size = next * vg.ExtentSize
	lv.Type = "linear"
	if stripes > 1 {
		lv.Type = "striped"
	}
	if len(lv.Segments) == 0 {
		return fail(metaErr("no segments"))
	}
	return lv
}

func parseSegment(s *Section, pvIndex map[string]int, vg *VG) (Segment, error) {
	var seg Segment
	var err error
	if seg.StartExtent, err = num(s, "start_extent", 0, 1<<40); err != nil {
		return seg, err
	}
	if seg.ExtentCount, err = num(s, "extent_count", 1, 1<<40); err != nil {
		return seg, err
	}
	seg.Type, _ = str(s, "type")
	if !readableTypes[seg.Type] {
		return seg, nil // refused by the caller, by name
	}
	count, err := num(s, "stripe_count", 1, maxStripes)
	if err != nil {
		return seg, err
	}
	if count > 1 {
		size, err := num(s, "stripe_size", 1, 1<<32) // sectors
		if err != nil {
			return seg, err
		}
		seg.StripeSize = size * sectorSize
		if seg.StripeSize > vg.ExtentSize || vg.ExtentSize%seg.StripeSize != 0 {
			return seg, metaErr("stripe size %d bytes does not divide the %d-byte extent", seg.StripeSize, vg.ExtentSize)
		}
	}
	if seg.ExtentCount%count != 0 {
		return seg, metaErr("%d extents do not divide into %d stripes", seg.ExtentCount, count)
	}
	areaLen := seg.ExtentCount / count
	arr, ok := s.Get("stripes")
	if !ok || arr.Kind != KindArray || int64(len(arr.Array)) != 2*count {
		return seg, metaErr("stripes: want %d pairs of PV name and extent", count)
	}
	for i := 0; i < len(arr.Array); i += 2 {
		pvName, pe := arr.Array[i], arr.Array[i+1]
		if pvName.Kind != KindString || pe.Kind != KindInt || pe.Int < 0 {
			return seg, metaErr("stripes: entry %d is not a PV name and an extent", i/2)
		}
		idx, ok := pvIndex[pvName.Str]
		if !ok {
			return seg, metaErr("stripes: %q is not a physical volume of the group (areas on other LVs are not read)", pvName.Str)
		}
		ref := vg.PVs[idx]
		if pe.Int > ref.PECount || areaLen > ref.PECount-pe.Int {
			return seg, metaErr("stripe on %s maps extents %d-%d, past its %d extents", ref.Name, pe.Int, pe.Int+areaLen-1, ref.PECount)
		}
		seg.Areas = append(seg.Areas, Area{PV: idx, PE: pe.Int})
	}
	return seg, nil
}

func metaErr(format string, args ...any) error {
	return &FormatError{Struct: "metadata", Offset: -1, Msg: fmt.Sprintf(format, args...)}
}

func str(s *Section, name string) (string, bool) {
	v, ok := s.Get(name)
	if !ok || v.Kind != KindString {
		return "", false
	}
	return v.Str, true
}

// num returns the number called name, which must lie in [lo, hi].
func num(s *Section, name string, lo, hi int64) (int64, error) {
	v, ok := s.Get(name)
	if !ok {
		return 0, metaErr("%s missing", name)
	}
	if v.Kind != KindInt {
		return 0, metaErr("%s is a %s, not a number", name, v.Kind)
	}
	if v.Int < lo || v.Int > hi {
		return 0, metaErr("%s = %d, outside %d..%d", name, v.Int, lo, hi)
	}
	return v.Int, nil
}

// Assemble groups PVs into volume groups, each described by the newest
// valid metadata copy (highest seqno) on any of them, and binds every PV
// the metadata names to the PV found with its UUID. Damaged copies are
// named in their PV's Warnings, stale copies and missing PVs in the VG's;
// an LV on a missing PV gets an Err.
func Assemble(pvs []*PV) []*VG {
	type candidate struct {
		vg  *VG
		pv  int
		cpy Metadata
	}
	best := map[string]candidate{}
	var order []string
	seqs := map[string][]string{}
	for i, pv := range pvs {
		pv.Warnings = nil
		for _, c := range pv.Copies {
			if c.Err != nil {
				pv.Warnings = append(pv.Warnings, fmt.Sprintf("PV %s: %v", pv.UUID, c.Err))
				continue
			}
			vg, err := ParseVG(c.Text)
			if err != nil {
				pv.Warnings = append(pv.Warnings, fmt.Sprintf("PV %s: metadata at byte %d: %v", pv.UUID, c.Offset, err))
				continue
			}
			key := vg.UUID + "\x00" + vg.Name
			seqs[key] = append(seqs[key], strconv.FormatInt(vg.Seqno, 10))
			b, ok := best[key]
			if !ok {
				order = append(order, key)
			}
			if !ok || vg.Seqno > b.vg.Seqno {
				best[key] = candidate{vg, i, c}
			}
		}
	}
	var vgs []*VG
	for _, key := range order {
		vg := best[key].vg
		for _, s := range seqs[key] {
			if s != strconv.FormatInt(vg.Seqno, 10) {
				vg.Warnings = append(vg.Warnings, fmt.Sprintf("volume group %s: metadata copies at seqno %s; the newest, %d, is read", vg.Name, strings.Join(seqs[key], ", "), vg.Seqno))
				break
			}
		}
		for _, ref := range vg.PVs {
			for _, pv := range pvs {
				if pv.UUID == ref.UUID {
					ref.PV = pv
					break
				}
			}
			if ref.PV == nil {
				vg.Warnings = append(vg.Warnings, fmt.Sprintf("volume group %s: PV %s (%s, last seen as %s) is not among the inputs", vg.Name, ref.Name, ref.UUID, ref.Device))
			}
		}
		for _, lv := range vg.LVs {
			if lv.Err == nil {
				lv.Err = lv.checkDevices()
			}
		}
		vgs = append(vgs, vg)
	}
	return vgs
}

// checkDevices makes sure every area is on a PV that is present and lies
// within the bytes it has.
func (lv *LV) checkDevices() error {
	for _, seg := range lv.Segments {
		areaLen := seg.ExtentCount / int64(len(seg.Areas))
		for _, a := range seg.Areas {
			ref := lv.vg.PVs[a.PV]
			if ref.PV == nil {
				return fmt.Errorf("logical volume %s/%s needs PV %s (%s, last seen as %s), which is not among the inputs: give every disk of the volume group with -i", lv.vg.Name, lv.Name, ref.Name, ref.UUID, ref.Device)
			}
			end := ref.PEStart + (a.PE+areaLen)*lv.vg.ExtentSize
			if end > ref.PV.Size || end < 0 {
				return &FormatError{Struct: "segment map", Offset: -1, Msg: fmt.Sprintf("logical volume %s/%s: extents %d-%d of %s end at byte %d, past the %d-byte device", lv.vg.Name, lv.Name, a.PE, a.PE+areaLen-1, ref.Name, end, ref.PV.Size)}
			}
		}
	}
	return nil
}

// Open returns a reader of the LV's bytes.
func (lv *LV) Open() (io.ReaderAt, error) {
	if lv.Err != nil {
		return nil, lv.Err
	}
	return &lvReader{lv: lv}, nil
}

// lvReader maps LV offsets onto the PVs.
type lvReader struct{ lv *LV }

func (r *lvReader) ReadAt(p []byte, off int64) (int, error) {
	lv := r.lv
	if off < 0 {
		return 0, fmt.Errorf("lvm: negative offset %d", off)
	}
	ext := lv.vg.ExtentSize
	n := 0
	for n < len(p) {
		if off >= lv.Size {
			return n, io.EOF
		}
		i := sort.Search(len(lv.Segments), func(i int) bool {
			s := lv.Segments[i]
			return (s.StartExtent+s.ExtentCount)*ext > off
		})
		seg := lv.Segments[i]
		in := off - seg.StartExtent*ext // offset in the segment
		var area Area
		var at, room int64
		if len(seg.Areas) == 1 {
			area, at, room = seg.Areas[0], in, seg.ExtentCount*ext-in
		} else {
			chunk := in / seg.StripeSize
			stripes := int64(len(seg.Areas))
			area = seg.Areas[chunk%stripes]
			at = (chunk/stripes)*seg.StripeSize + in%seg.StripeSize
			room = seg.StripeSize - in%seg.StripeSize
		}
		ref := lv.vg.PVs[area.PV]
		want := min(int64(len(p)-n), room)
		m, err := ref.PV.r.ReadAt(p[n:n+int(want)], ref.PEStart+area.PE*ext+at)
		n += m
		off += int64(m)
		if m < int(want) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		}
	}
	return n, nil
}
