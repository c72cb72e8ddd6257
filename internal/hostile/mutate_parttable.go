//go:build linux

package hostile

import (
	"fmt"
)

// --- partition tables ---

func gptCopies(v *Variant) []GPTCopy {
	g := v.Base.GPT
	switch r := v.R.IntN(6); {
	case r < 3 || !g.HaveBackup:
		v.say("primary GPT")
		return []GPTCopy{g.Primary}
	case r < 5:
		v.say("both GPTs")
		return []GPTCopy{g.Primary, g.Backup}
	}
	v.say("backup GPT")
	return []GPTCopy{g.Backup}
}

func genGPTHeader(v *Variant) {
	ss := int64(v.Base.GPT.SectorSize)
	copies := gptCopies(v)
	fix := v.R.IntN(3) != 0
	op := v.R.IntN(6)
	f := pick(v.R, gptHeaderFields)
	val := v.hugeValue(f.Width)
	for _, c := range copies {
		switch op {
		case 0:
			v.zero(c.HeaderOff, ss)
		case 1:
			v.flip(c.HeaderOff, 92)
		default:
			v.setField(c.HeaderOff, f, val, "GPT header")
		}
	}
	if fix {
		for _, c := range copies {
			gptFixCRCs(v, c)
		}
		v.say("CRCs recomputed")
	}
}

func genGPTEntries(v *Variant) {
	g := v.Base.GPT
	copies := gptCopies(v)
	c0 := copies[0]
	idx := 0
	if len(c0.Used) > 0 {
		idx = pick(v.R, c0.Used)
	}
	if v.R.IntN(2) == 0 {
		idx = 0 // STATE
	}
	op := v.R.IntN(8)
	f := pick(v.R, gptEntryFields)
	val := v.hugeValue(f.Width)
	last := uint64(v.Base.Size/int64(g.SectorSize)) - 1
	lbaVals := []uint64{0, 1, 2, last, last + 1, last * 2, 1 << 40, 1<<63 - 1}
	lba := pick(v.R, lbaVals)
	for _, c := range copies {
		e := c.EntriesOff + int64(idx*c.EntrySize)
		switch op {
		case 0:
			v.zero(e, int64(c.EntrySize))
		case 1:
			v.flip(e, int64(c.EntrySize))
		case 2:
			v.zero(c.EntriesOff, int64(c.NumEntries*c.EntrySize))
		case 3:
			// Shift the partition: its filesystem is no longer where it says.
			d := int64(pick(v.R, []int{-8, -1, 1, 2, 8, 2048}))
			first := int64(v.getUint(e+32, 8, false))
			v.putUint(e+32, 8, uint64(max(first+d, 0)), false)
			v.say("entry %d start shifted by %d sectors", idx+1, d)
		case 4:
			v.setField(e, gptEntryFields[v.R.IntN(2)], lba, fmt.Sprintf("GPT entry %d", idx+1))
		case 5:
			// Overlap: copy another used entry's LBAs.
			if len(c.Used) > 1 {
				o := pick(v.R, c.Used)
				v.put(e+32, v.get(c.EntriesOff+int64(o*c.EntrySize)+32, 16))
				v.say("entry %d takes the LBAs of entry %d", idx+1, o+1)
			} else {
				v.setField(e, f, val, "GPT entry")
			}
		case 6:
			name := make([]byte, 72)
			for i := range name {
				name[i] = byte(v.R.UintN(256))
			}
			v.put(e+56, name)
			v.say("entry %d name is random UTF-16", idx+1)
		default:
			v.setField(e, f, val, fmt.Sprintf("GPT entry %d", idx+1))
		}
	}
	if v.R.IntN(4) != 0 {
		for _, c := range copies {
			gptFixCRCs(v, c)
		}
		v.say("CRCs recomputed")
	}
}

func genMBR(v *Variant) {
	m := v.Base.MBR
	switch r := v.R.IntN(6); {
	case r == 0 && len(m.EBRs) > 0:
		// The EBR chain loops: an EBR's next link points at itself or the first.
		i := v.R.IntN(len(m.EBRs))
		ext := m.EBRs[0] / 512
		to := pick(v.R, []int64{m.EBRs[i]/512 - ext, 0})
		v.putUint(m.EBRs[i]+446+16+8, 4, uint64(to), false)
		v.say("EBR %d next link -> relative LBA %d", i, to)
	case r == 1 && len(m.EBRs) > 0:
		e := pick(v.R, m.EBRs) + 446 + 16*int64(v.R.IntN(2))
		v.hugeField(e, mbrEntryFields, "EBR entry")
	case r == 2:
		v.flip(446, 66)
		v.say("in the MBR table")
	case r == 3:
		v.put(510, []byte{0, 0})
		v.say("MBR signature cleared")
	default:
		v.hugeField(pick(v.R, m.Entries), mbrEntryFields, "MBR entry")
	}
}
