package xfs

import "fmt"

// LogState is what the internal log says about how the filesystem was
// last left.
type LogState int

const (
	LogClean    LogState = iota // ends with an unmount record, or zeroed
	LogDirty                    // holds transactions not yet written in place
	LogExternal                 // on another device, not in the image
	LogUnknown                  // could not be decoded
)

func (s LogState) String() string {
	switch s {
	case LogClean:
		return "clean"
	case LogDirty:
		return "dirty"
	case LogExternal:
		return "external"
	case LogUnknown:
		return "unknown"
	}
	return "invalid-log-state"
}

// LogState returns the state of the log found when the filesystem was
// opened, and the log blocks (in 512-byte units from the log start) of
// its tail and head.
func (f *FS) LogState() (state LogState, tail, head uint64) {
	return f.logState, f.logTail, f.logHead
}

// checkLog finds the head of the log and whether the last record is a
// clean unmount. The log is a ring of 512-byte basic blocks, each
// stamped with the cycle (pass over the ring) that wrote it: the head is
// where the cycle number drops. A dirty log is replayed in memory unless
// skip; a warning says what was done.
func (f *FS) checkLog(skip bool) {
	state, msg := f.findLogState()
	f.logState = state
	switch {
	case state == LogDirty && skip:
		f.warn("log is dirty (not cleanly unmounted): %s; it was not replayed (as asked), so the tree read is the last checkpointed state and may lack recent changes", msg)
	case state == LogDirty:
		ov, res, err := f.replayLog(f.logTail, f.logTailCycle, f.logHead)
		if err != nil {
			f.warn("log is dirty (not cleanly unmounted): %s; it could not be replayed (%v), so the tree read is the last checkpointed state and may lack recent changes", msg, err)
			break
		}
		f.r = ov
		f.warn("log is dirty (not cleanly unmounted): %s", res.describe())
	}
	switch state {
	case LogExternal:
		f.warn("log is on an external device: whether it is clean cannot be checked")
	case LogUnknown:
		f.warn("log state could not be determined (%s): the filesystem may not have been cleanly unmounted", msg)
	}
	if f.logIncompat != 0 && state == LogClean {
		f.warn("superblock has log-incompatible features 0x%x set, which a clean unmount clears: the filesystem was not cleanly unmounted", f.logIncompat)
	}
}

func (f *FS) findLogState() (LogState, string) {
	if f.logStart == 0 {
		return LogExternal, ""
	}
	start, err := f.fsbToLinear(f.logStart, f.logBlocks, "log", 0, sbOffLogStart)
	if err != nil {
		return LogUnknown, err.Error()
	}
	base := int64(start) * f.blockSize
	n := f.logBlocks << f.blockLog / logBBSize // basic blocks in the ring
	if n < 2 {
		return LogUnknown, fmt.Sprintf("log of %d blocks", f.logBlocks)
	}
	var word [8]byte
	readBB := func(bb uint64, p []byte) error {
		return f.readAt(p, base+int64(bb%n)*logBBSize, "log", 0)
	}
	cycle := func(bb uint64) (uint32, bool, error) {
		if err := readBB(bb, word[:]); err != nil {
			return 0, false, err
		}
		if be.Uint32(word[:]) == logHeaderMagic {
			return be.Uint32(word[4:]), true, nil
		}
		return be.Uint32(word[:]), false, nil
	}
	first, _, err := cycle(0)
	if err != nil {
		return LogUnknown, err.Error()
	}
	if first == 0 {
		// A zeroed log (mkfs -K, xfs_repair -L) holds nothing to replay.
		return LogClean, ""
	}
	last, _, err := cycle(n - 1)
	if err != nil {
		return LogUnknown, err.Error()
	}
	head := n
	if last != first {
		if last+1 != first {
			return LogUnknown, fmt.Sprintf("first block of cycle %d, last of cycle %d", first, last)
		}
		lo, hi := uint64(0), n-1 // cycle(lo) == first, cycle(hi) == last
		for hi-lo > 1 {
			mid := lo + (hi-lo)/2
			c, _, err := cycle(mid)
			if err != nil {
				return LogUnknown, err.Error()
			}
			if c == first {
				lo = mid
			} else {
				hi = mid
			}
		}
		head = hi
	}
	// Writes of the last few in-core logs may land out of order: a block
	// of the old cycle before the head is where the log really ends.
	window := min(head, logMaxRecordBBs)
	buf := make([]byte, window*logBBSize)
	if err := f.readAt(buf, base+int64(head-window)*logBBSize, "log", 0); err != nil {
		return LogUnknown, err.Error()
	}
	for i := uint64(0); i < window; i++ {
		c := be.Uint32(buf[i*logBBSize:])
		if c == logHeaderMagic {
			c = be.Uint32(buf[i*logBBSize+4:])
		}
		if c != first {
			head = head - window + i
			break
		}
	}
	f.logHead = head % n

	// The last record header before the head.
	hdr := make([]byte, logBBSize)
	var rec uint64
	found := false
	for back := uint64(1); back <= min(n, logMaxRecordBBs); back++ {
		rec = (head + n - back) % n
		if err := readBB(rec, hdr); err != nil {
			return LogUnknown, err.Error()
		}
		if be.Uint32(hdr) == logHeaderMagic {
			found = true
			break
		}
	}
	if !found {
		return LogUnknown, fmt.Sprintf("no record header in the %d blocks before the head at block %d", min(n, logMaxRecordBBs), head%n)
	}
	recLen := uint64(be.Uint32(hdr[logOffLen:]))
	hblks := uint64(1)
	if be.Uint32(hdr[logOffVersion:])&2 != 0 {
		if size := uint64(be.Uint32(hdr[logOffSize:])); size > logCycleSize {
			hblks = (size + logCycleSize - 1) / logCycleSize
		}
	}
	tailLSN := be.Uint64(hdr[logOffTailLSN:])
	tailCycle, tailBlock := uint32(tailLSN>>32), tailLSN&0xffffffff
	f.logTail, f.logTailCycle = tailBlock, tailCycle
	recEnd := (rec + hblks + (recLen+logBBSize-1)/logBBSize) % n
	if recEnd != head%n {
		return LogDirty, fmt.Sprintf("the last record (block %d) ends at block %d, not at the head (block %d): a torn write", rec, recEnd, head%n)
	}
	if be.Uint32(hdr[logOffNumLogops:]) == 1 {
		op := make([]byte, logBBSize)
		if err := readBB(rec+hblks, op); err != nil {
			return LogUnknown, err.Error()
		}
		if op[logOpOffFlags]&logUnmountTrans != 0 {
			return LogClean, ""
		}
	}
	return LogDirty, fmt.Sprintf("records from the tail (cycle %d block %d) to the head (cycle %d block %d) hold transactions", tailCycle, tailBlock, first, head%n)
}
