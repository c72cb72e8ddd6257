package xfs

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"sort"
	"strings"
)

// A disk copied from a running node holds committed transactions in the
// XFS log that were never written in place (XFS writes metadata back
// lazily: even after sync a new directory may exist only in the log).
// The kernel replays them at mount; we do the same in memory, over an
// overlay of 512-byte basic blocks, so the image is never written.
//
// Replay follows fs/xfs/xfs_log_recover.c: records are walked from the
// tail to the head, operations are gathered into transactions by their
// ticket id, and only committed transactions are applied, in two passes
// (the first collects cancelled buffers). Anything the replay does not
// understand stops it before the first change is applied: the tree read
// is then the last checkpointed one, never a half-applied log.

const (
	logRecHdrCRCLen  = 328 // sizeof(xlog_rec_header) on 64-bit hosts
	logRecHdrCRCLen2 = 324 // ... and on i386
	logExtHdrCRCLen  = 260 // xh_cycle and xh_cycle_data
	logCycleDataBBs  = logCycleSize / logBBSize
	logMaxRecordSize = 256 << 10
	logVersionOKBits = 3

	logStartTrans   = 0x01
	logCommitTrans  = 0x02
	logContinueTr   = 0x04
	logWasContTrans = 0x08
	logEndTrans     = 0x10

	logClientTrans = 0x69
	logClientLog   = 0xaa

	transHeaderMagic = 0x5452414e // "TRAN", in the logging host's byte order
	transHeaderSize  = 16
	maxRegionsInItem = 65536/128/2 + 1

	// maxReplayBytes bounds the memory a replay may hold: the regions
	// of pending transactions and the overlay of replayed blocks.
	maxReplayBytes = 512 << 20
)

// Log item types (xfs_log_format.h).
const (
	liEFI      = 0x1236
	liEFD      = 0x1237
	liIUnlink  = 0x1238
	liInode    = 0x123b
	liBuf      = 0x123c
	liDquot    = 0x123d
	liQuotaoff = 0x123e
	liIcreate  = 0x123f
	liRUI      = 0x1240
	liRUD      = 0x1241
	liCUI      = 0x1242
	liCUD      = 0x1243
	liBUI      = 0x1244
	liBUD      = 0x1245
	liATTRI    = 0x1246
	liATTRD    = 0x1247
	liXMI      = 0x1248
	liXMD      = 0x1249
	liEFIRT    = 0x124a
	liEFDRT    = 0x124b
	liRUIRT    = 0x124c
	liRUDRT    = 0x124d
	liCUIRT    = 0x124e
	liCUDRT    = 0x124f
)

// intentNames maps an intent item type to its name and the type of the
// item that marks it done.
var intentDone = map[uint16]struct {
	name string
	done uint16
}{
	liEFI: {"EFI (extent free)", liEFD}, liEFIRT: {"realtime EFI", liEFDRT},
	liRUI: {"RUI (reverse mapping)", liRUD}, liRUIRT: {"realtime RUI", liRUDRT},
	liCUI: {"CUI (refcount)", liCUD}, liCUIRT: {"realtime CUI", liCUDRT},
	liBUI:   {"BUI (file block mapping)", liBUD},
	liATTRI: {"ATTRI (extended attribute)", liATTRD},
	liXMI:   {"XMI (file range exchange)", liXMD},
}

// Buffer log format flags and chunking.
const (
	blfInodeBuf = 1 << 0
	blfCancel   = 1 << 1
	blfChunk    = 128
	blfMaxBBs   = 128 // a buffer item covers at most 64 KiB
)

// Inode log format fields.
const (
	ilogCore   = 0x001
	ilogDData  = 0x002
	ilogDExt   = 0x004
	ilogDBroot = 0x008
	ilogDev    = 0x010
	ilogAData  = 0x040
	ilogAExt   = 0x080
	ilogABroot = 0x100
	ilogDOwner = 0x200
	ilogAOwner = 0x400
	ilogDFork  = ilogDData | ilogDExt | ilogDBroot
	ilogAFork  = ilogAData | ilogAExt | ilogABroot

	diFlags2BigTime = 1 << 3
	diFlags2NRExt64 = 1 << 4
	diOffNextUnlink = 96
	diOffChangeCnt  = 104
	diOffLSN        = 112
	diOffFlushiter  = 30
)

// ReplayError says why the log was not replayed.
type ReplayError struct {
	Block uint64 // log block (512-byte units from the log start) of the record involved
	Msg   string
}

func (e *ReplayError) Error() string {
	return fmt.Sprintf("log record at block %d: %s", e.Block, e.Msg)
}

// logOverlay serves reads from the image except for the 512-byte basic
// blocks that replay changed.
type logOverlay struct {
	base io.ReaderAt
	size int64
	bbs  map[int64]*[logBBSize]byte
}

func (o *logOverlay) ReadAt(p []byte, off int64) (int, error) {
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		bb := pos / logBBSize
		within := int(pos % logBBSize)
		if b, ok := o.bbs[bb]; ok {
			n := copy(p[done:], b[within:])
			done += n
			continue
		}
		// Extend over following blocks that replay did not change.
		n := min(logBBSize-within, len(p)-done)
		for done+n < len(p) {
			if _, ok := o.bbs[(pos+int64(n))/logBBSize]; ok {
				break
			}
			n += min(logBBSize, len(p)-done-n)
		}
		m, err := o.base.ReadAt(p[done:done+n], pos)
		done += m
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// read fills p from the overlay, failing on a short read.
func (o *logOverlay) read(p []byte, off int64) error {
	if off < 0 || off+int64(len(p)) > o.size {
		return fmt.Errorf("%d bytes at byte %d lie past the end of the image", len(p), off)
	}
	n, err := o.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// write stores p at off in the overlay.
func (o *logOverlay) write(p []byte, off int64) error {
	for done := 0; done < len(p); {
		pos := off + int64(done)
		bb := pos / logBBSize
		within := int(pos % logBBSize)
		b, ok := o.bbs[bb]
		if !ok {
			if len(o.bbs) >= maxReplayBytes/logBBSize {
				return fmt.Errorf("replay changes more than %d MiB", maxReplayBytes>>20)
			}
			b = new([logBBSize]byte)
			if within != 0 || len(p)-done < logBBSize {
				if err := o.read(b[:], bb*logBBSize); err != nil {
					return err
				}
			}
			o.bbs[bb] = b
		}
		done += copy(b[within:], p[done:])
	}
	return nil
}

// logRecord is one log record, its payload with the cycle stamps undone.
type logRecord struct {
	block  uint64 // where its header is
	lsn    uint64
	numOps uint32
	order  binary.ByteOrder // of the host that wrote it (h_fmt)
	data   []byte
}

// logWalker reads the ring of basic blocks.
type logWalker struct {
	f    *FS
	base int64  // byte offset of the log
	n    uint64 // basic blocks in the ring
}

func (w *logWalker) read(bb, count uint64) ([]byte, error) {
	p := make([]byte, count*logBBSize)
	bb %= w.n
	first := min(count, w.n-bb)
	if err := w.f.readAt(p[:first*logBBSize], w.base+int64(bb)*logBBSize, "log", 0); err != nil {
		return nil, err
	}
	if first < count {
		if err := w.f.readAt(p[first*logBBSize:], w.base, "log", 0); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// records calls fn for each valid record from tail to head. It stops at
// the head, or at the first record that is torn or bad, which it
// describes in the returned string.
func (w *logWalker) records(tail uint64, tailCycle uint32, head uint64, fn func(*logRecord) error) (string, error) {
	span := (head + w.n - tail) % w.n
	pos, cycle := tail, tailCycle
	for walked := uint64(0); walked < span; {
		hdr, err := w.read(pos, 1)
		if err != nil {
			return "", err
		}
		bad := func(format string, args ...any) (string, error) {
			return fmt.Sprintf("record at block %d: %s", pos, fmt.Sprintf(format, args...)), nil
		}
		if m := be.Uint32(hdr); m != logHeaderMagic {
			return bad("magic 0x%08x", m)
		}
		if c := be.Uint32(hdr[logOffCycle:]); c != cycle {
			return bad("cycle %d, expected %d", c, cycle)
		}
		if lsn := be.Uint64(hdr[logOffLSN:]); lsn != uint64(cycle)<<32|pos {
			return bad("LSN %d/%d does not name its own place", lsn>>32, lsn&0xffffffff)
		}
		version := be.Uint32(hdr[logOffVersion:])
		if version == 0 || version&^logVersionOKBits != 0 {
			return bad("version 0x%x", version)
		}
		hlen := uint64(be.Uint32(hdr[logOffLen:]))
		hblks := uint64(1)
		if version&2 != 0 {
			hsize := uint64(be.Uint32(hdr[logOffSize:]))
			if hsize > logMaxRecordSize {
				return bad("h_size %d", hsize)
			}
			if hsize > logCycleSize {
				hblks = (hsize + logCycleSize - 1) / logCycleSize
			}
			if hlen > max(hsize, logCycleSize) {
				return bad("length %d exceeds h_size %d", hlen, hsize)
			}
		} else if hlen > logCycleSize {
			return bad("length %d in a v1 log", hlen)
		}
		if hlen == 0 || hlen > logMaxRecordSize {
			return bad("length %d", hlen)
		}
		dataBBs := (hlen + logBBSize - 1) / logBBSize
		if dataBBs > hblks*logCycleDataBBs {
			return bad("%d data blocks but %d header blocks", dataBBs, hblks)
		}
		if walked+hblks+dataBBs > span {
			return bad("runs past the head at block %d (torn write)", head)
		}
		if fmtv := be.Uint32(hdr[logOffFmt:]); fmtv < 1 || fmtv > 3 {
			return bad("unknown format %d", fmtv)
		}
		if string(hdr[logOffFSUUID:logOffFSUUID+16]) != string(w.f.uuid[:]) {
			return bad("filesystem UUID differs from the superblock's")
		}
		full, err := w.read(pos, hblks+dataBBs)
		if err != nil {
			return "", err
		}
		hdrs := full[:hblks*logBBSize]
		data := full[hblks*logBBSize : hblks*logBBSize+hlen]
		// A checksum mismatch ends the log on v5 only: the kernel merely
		// complains about one on v4.
		if w.f.v5 {
			want := binary.LittleEndian.Uint32(hdrs[logOffCRC:])
			extra := uint64(0)
			if w.f.versionNum&versionLogV2Bit != 0 {
				extra = (hlen+logCycleSize-1)/logCycleSize - 1
			}
			if extra >= hblks {
				extra = hblks - 1
			}
			if want != logRecordCRC(hdrs, data, extra, logRecHdrCRCLen) && want != logRecordCRC(hdrs, data, extra, logRecHdrCRCLen2) {
				return bad("checksum mismatch")
			}
		}
		// Undo the cycle stamps: the first word of each data block is
		// kept in the header (and extended headers past 32 KiB).
		for i := uint64(0); i < dataBBs; i++ {
			j, k := i/logCycleDataBBs, i%logCycleDataBBs
			var src []byte
			if j == 0 {
				src = hdrs[logOffCycleData+4*k:]
			} else {
				src = hdrs[j*logBBSize+4+4*k:]
			}
			copy(full[(hblks+i)*logBBSize:(hblks+i)*logBBSize+4], src[:4])
		}
		rec := &logRecord{block: pos, lsn: uint64(cycle)<<32 | pos, numOps: be.Uint32(hdr[logOffNumLogops:]), data: data}
		if be.Uint32(hdr[logOffFmt:]) == 1 {
			rec.order = binary.LittleEndian
		} else {
			rec.order = binary.BigEndian
		}
		if err := fn(rec); err != nil {
			return "", err
		}
		walked += hblks + dataBBs
		pos += hblks + dataBBs
		if pos >= w.n {
			pos -= w.n
			cycle++
		}
	}
	return "", nil
}

// logRecordCRC is xlog_cksum: the header with h_crc zeroed (hdrLen
// bytes), the first extra extended headers, then the payload.
func logRecordCRC(head, data []byte, extra uint64, hdrLen int) uint32 {
	c := crc32c(head[:hdrLen], logOffCRC)
	for i := uint64(1); i <= extra; i++ {
		c = crc32.Update(c, castagnoli, head[i*logBBSize:i*logBBSize+logExtHdrCRCLen])
	}
	return crc32.Update(c, castagnoli, data)
}

// logItem is one logged object: its regions, the first being the format
// structure naming the object.
type logItem struct {
	total   int
	regions [][]byte
}

func (it *logItem) kind(order binary.ByteOrder) uint16 { return order.Uint16(it.regions[0]) }

type logTrans struct {
	tid       uint32
	lsn       uint64
	order     binary.ByteOrder
	gotHeader bool
	items     []*logItem
}

// logParser reassembles transactions from the operations of records.
type logParser struct {
	open      map[uint32]*logTrans
	committed []*logTrans
	held      int64 // bytes of regions held
	unmounts  int
}

func newLogParser() *logParser { return &logParser{open: map[uint32]*logTrans{}} }

func (p *logParser) record(rec *logRecord) error {
	d := rec.data
	off := 0
	for i := uint32(0); i < rec.numOps; i++ {
		if off+logOpHdrSize > len(d) {
			return &ReplayError{rec.block, fmt.Sprintf("operation %d of %d: header past the record's %d bytes", i, rec.numOps, len(d))}
		}
		tid := be.Uint32(d[off:])
		n := int(be.Uint32(d[off+4:]))
		client, flags := d[off+8], d[off+9]
		off += logOpHdrSize
		if client != logClientTrans && client != logClientLog {
			return &ReplayError{rec.block, fmt.Sprintf("operation %d: client id 0x%x", i, client)}
		}
		if n < 0 || n > len(d)-off {
			return &ReplayError{rec.block, fmt.Sprintf("operation %d: length %d past the record's end", i, n)}
		}
		region := d[off : off+n]
		off += n
		if err := p.op(rec, tid, flags, region); err != nil {
			return &ReplayError{rec.block, fmt.Sprintf("operation %d (transaction 0x%x): %v", i, tid, err)}
		}
	}
	return nil
}

func (p *logParser) op(rec *logRecord, tid uint32, flags byte, region []byte) error {
	t := p.open[tid]
	if t == nil {
		if flags&logStartTrans != 0 {
			if len(p.open) >= 1<<16 {
				return fmt.Errorf("too many open transactions")
			}
			p.open[tid] = &logTrans{tid: tid, lsn: rec.lsn, order: rec.order}
		}
		return nil // an operation of a transaction begun before the tail
	}
	if t.order != rec.order {
		return fmt.Errorf("records of one transaction written by hosts of different byte order")
	}
	flags &^= logEndTrans
	if flags&logWasContTrans != 0 {
		flags &^= logContinueTr
	}
	switch flags {
	case 0, logContinueTr:
		return p.add(t, region)
	case logWasContTrans:
		return p.addCont(t, region)
	case logCommitTrans:
		delete(p.open, tid)
		for _, it := range t.items {
			if len(it.regions) != it.total {
				return fmt.Errorf("committed with an item of %d of its %d regions", len(it.regions), it.total)
			}
		}
		if len(t.items) > 0 {
			p.committed = append(p.committed, t)
		}
		return nil
	case logUnmountTrans:
		delete(p.open, tid)
		p.unmounts++
		return nil
	}
	return fmt.Errorf("operation flags 0x%x", flags)
}

func (p *logParser) hold(n int) error {
	p.held += int64(n)
	if p.held > maxReplayBytes {
		return fmt.Errorf("transactions hold more than %d MiB", maxReplayBytes>>20)
	}
	return nil
}

func (p *logParser) add(t *logTrans, region []byte) error {
	if len(region) == 0 {
		return nil
	}
	if !t.gotHeader {
		if len(region) != transHeaderSize {
			return fmt.Errorf("transaction header of %d bytes", len(region))
		}
		if m := t.order.Uint32(region); m != transHeaderMagic {
			return fmt.Errorf("transaction header magic 0x%08x", m)
		}
		t.gotHeader = true
		return nil
	}
	if err := p.hold(len(region)); err != nil {
		return err
	}
	var it *logItem
	if n := len(t.items); n > 0 && len(t.items[n-1].regions) < t.items[n-1].total {
		it = t.items[n-1]
	} else {
		if len(region) < 4 {
			return fmt.Errorf("item format of %d bytes", len(region))
		}
		total := int(t.order.Uint16(region[2:]))
		if total == 0 || total > maxRegionsInItem {
			return fmt.Errorf("item of %d regions", total)
		}
		it = &logItem{total: total}
		t.items = append(t.items, it)
	}
	it.regions = append(it.regions, append([]byte(nil), region...))
	return nil
}

func (p *logParser) addCont(t *logTrans, region []byte) error {
	n := len(t.items)
	if !t.gotHeader || n == 0 || len(t.items[n-1].regions) == 0 {
		return fmt.Errorf("continuation of a region that was never begun")
	}
	if err := p.hold(len(region)); err != nil {
		return err
	}
	it := t.items[n-1]
	last := len(it.regions) - 1
	it.regions[last] = append(it.regions[last], region...)
	return nil
}

// replayResult describes what a replay did.
type replayResult struct {
	trans, bufs, inodes, icreates, cancelled, skippedNewer int
	unfinished                                             map[string]int
	stop                                                   string
}

// replayLog replays the log over an overlay of the image. It returns
// the overlay, or an error naming why nothing was replayed.
func (f *FS) replayLog(tail uint64, tailCycle uint32, head uint64) (*logOverlay, *replayResult, error) {
	start, err := f.fsbToLinear(f.logStart, f.logBlocks, "log", 0, sbOffLogStart)
	if err != nil {
		return nil, nil, err
	}
	w := &logWalker{f: f, base: int64(start) * f.blockSize, n: f.logBlocks << f.blockLog / logBBSize}
	if tail >= w.n || head >= w.n {
		return nil, nil, fmt.Errorf("tail block %d or head block %d outside the log of %d blocks", tail, head, w.n)
	}
	p := newLogParser()
	stop, err := w.records(tail, tailCycle, head, p.record)
	if err != nil {
		return nil, nil, err
	}
	res := &replayResult{stop: stop, unfinished: map[string]int{}}
	ov := &logOverlay{base: f.r, size: f.size, bbs: map[int64]*[logBBSize]byte{}}
	r := &replayer{f: f, ov: ov, res: res, cancel: map[[2]uint64]int{}, pending: map[[2]uint64]uint64{}}
	if err := r.run(p.committed); err != nil {
		return nil, nil, err
	}
	res.trans = len(p.committed)
	return ov, res, nil
}

type replayer struct {
	f       *FS
	ov      *logOverlay
	res     *replayResult
	cancel  map[[2]uint64]int    // (daddr, BBs) -> cancel records not yet passed
	pending map[[2]uint64]uint64 // buffers replayed in the current LSN, to stamp
	curLSN  uint64
}

// bufFormat is the decoded xfs_buf_log_format.
type bufFormat struct {
	flags   uint16
	bbs     uint64
	daddr   uint64
	dataMap []uint32
}

func (r *replayer) bufFormat(it *logItem, order binary.ByteOrder) (*bufFormat, error) {
	b := it.regions[0]
	if len(b) < 20 {
		return nil, fmt.Errorf("buffer item format of %d bytes", len(b))
	}
	bf := &bufFormat{flags: order.Uint16(b[4:]), bbs: uint64(order.Uint16(b[6:])), daddr: order.Uint64(b[8:])}
	mapSize := int(order.Uint32(b[16:]))
	if mapSize > (len(b)-20)/4 || mapSize > blfMaxBBs*logBBSize/blfChunk/32 {
		return nil, fmt.Errorf("buffer item map of %d words in a %d-byte format", mapSize, len(b))
	}
	for i := 0; i < mapSize; i++ {
		bf.dataMap = append(bf.dataMap, order.Uint32(b[20+4*i:]))
	}
	if bf.bbs == 0 || bf.bbs > blfMaxBBs {
		return nil, fmt.Errorf("buffer of %d basic blocks", bf.bbs)
	}
	if end := bf.daddr + bf.bbs; end < bf.daddr || end > uint64(r.f.dBlocks)<<r.f.blockLog/logBBSize {
		return nil, fmt.Errorf("buffer at daddr %d (+%d) past the filesystem", bf.daddr, bf.bbs)
	}
	return bf, nil
}

// runs lists the logged 128-byte chunk runs of a buffer: start chunk and
// chunk count.
func (bf *bufFormat) runs() [][2]int {
	var out [][2]int
	nbits := len(bf.dataMap) * 32
	bit := func(i int) bool { return bf.dataMap[i/32]&(1<<(i%32)) != 0 }
	for i := 0; i < nbits; {
		if !bit(i) {
			i++
			continue
		}
		j := i
		for j < nbits && bit(j) {
			j++
		}
		out = append(out, [2]int{i, j - i})
		i = j
	}
	return out
}

func (r *replayer) run(trans []*logTrans) error {
	// Pass 1: cancelled buffers.
	for _, t := range trans {
		for _, it := range t.items {
			if it.kind(t.order) != liBuf {
				continue
			}
			bf, err := r.bufFormat(it, t.order)
			if err != nil {
				return err
			}
			if bf.flags&blfCancel != 0 {
				r.cancel[[2]uint64{bf.daddr, bf.bbs}]++
			}
		}
	}
	// Pass 2, in order; within a transaction, as xlog_recover_reorder_trans
	// sorts: buffers and inode creation, other items, inode buffers,
	// cancel records.
	intents := map[uint64]uint16{}
	for _, t := range trans {
		if t.lsn != r.curLSN {
			if err := r.flush(); err != nil {
				return err
			}
			r.curLSN = t.lsn
		}
		var first, middle, inodeBufs, cancels []*logItem
		for _, it := range t.items {
			switch it.kind(t.order) {
			case liBuf:
				bf, err := r.bufFormat(it, t.order)
				if err != nil {
					return err
				}
				switch {
				case bf.flags&blfCancel != 0:
					cancels = append(cancels, it)
				case bf.flags&blfInodeBuf != 0:
					inodeBufs = append(inodeBufs, it)
				default:
					first = append(first, it)
				}
			case liIcreate:
				first = append(first, it)
			default:
				middle = append(middle, it)
			}
		}
		for _, group := range [][]*logItem{first, middle, inodeBufs, cancels} {
			for _, it := range group {
				if err := r.item(t, it, intents); err != nil {
					return fmt.Errorf("transaction at LSN %d/%d: %w", t.lsn>>32, t.lsn&0xffffffff, err)
				}
			}
		}
	}
	if err := r.flush(); err != nil {
		return err
	}
	for _, kind := range intents {
		r.res.unfinished[intentDone[kind].name]++
	}
	return nil
}

func (r *replayer) item(t *logTrans, it *logItem, intents map[uint64]uint16) error {
	kind := it.kind(t.order)
	switch kind {
	case liBuf:
		return r.buffer(t, it)
	case liInode:
		return r.inode(t, it)
	case liIcreate:
		return r.icreate(it)
	case liDquot, liQuotaoff, liIUnlink:
		return nil // quota and in-memory unlinked list state: nothing the tree shows
	}
	if in, ok := intentDone[kind]; ok {
		_ = in
		if len(it.regions[0]) < 16 {
			return fmt.Errorf("intent item of %d bytes", len(it.regions[0]))
		}
		intents[t.order.Uint64(it.regions[0][8:])] = kind
		return nil
	}
	for intent, v := range intentDone {
		if v.done == kind {
			if len(it.regions[0]) < 16 {
				return fmt.Errorf("intent done item of %d bytes", len(it.regions[0]))
			}
			id := t.order.Uint64(it.regions[0][8:])
			if intents[id] == intent {
				delete(intents, id)
			}
			return nil
		}
	}
	return fmt.Errorf("unknown log item type 0x%x", kind)
}

func (r *replayer) cancelled(daddr, bbs uint64) bool { return r.cancel[[2]uint64{daddr, bbs}] > 0 }

func (r *replayer) buffer(t *logTrans, it *logItem) error {
	bf, err := r.bufFormat(it, t.order)
	if err != nil {
		return err
	}
	key := [2]uint64{bf.daddr, bf.bbs}
	if bf.flags&blfCancel != 0 {
		if r.cancel[key] > 0 {
			r.cancel[key]--
		}
		r.res.cancelled++
		return nil
	}
	if r.cancelled(bf.daddr, bf.bbs) {
		r.res.cancelled++
		return nil
	}
	buf := make([]byte, bf.bbs*logBBSize)
	off := int64(bf.daddr) * logBBSize
	if err := r.ov.read(buf, off); err != nil {
		return err
	}
	if lsn, ok := r.bufLSN(buf); ok && lsn != 0 && lsn >= t.lsn {
		r.res.skippedNewer++
		return nil
	}
	runs := bf.runs()
	if len(runs) > len(it.regions)-1 {
		return fmt.Errorf("buffer at daddr %d: %d logged runs but %d regions", bf.daddr, len(runs), len(it.regions)-1)
	}
	if bf.flags&blfInodeBuf != 0 {
		if err := r.inodeBuffer(buf, runs, it.regions[1:], t.order); err != nil {
			return fmt.Errorf("inode buffer at daddr %d: %w", bf.daddr, err)
		}
	} else {
		for i, run := range runs {
			src := it.regions[1+i]
			n := run[1] * blfChunk
			if len(src) < n {
				n = len(src) / blfChunk * blfChunk
			}
			at := run[0] * blfChunk
			if at+n > len(buf) {
				return fmt.Errorf("buffer at daddr %d: logged chunk %d past its %d bytes", bf.daddr, run[0], len(buf))
			}
			copy(buf[at:at+n], src[:n])
		}
		if r.f.v5 {
			r.pending[key] = t.lsn
		}
	}
	r.res.bufs++
	return r.ov.write(buf, off)
}

// inodeBuffer replays an inode buffer item: only the di_next_unlinked
// fields it logged (the inodes themselves come from inode items).
func (r *replayer) inodeBuffer(buf []byte, runs [][2]int, regions [][]byte, order binary.ByteOrder) error {
	isz := int(r.f.inodeSize)
	for i := 0; (i+1)*isz <= len(buf); i++ {
		field := i*isz + diOffNextUnlink
		for j, run := range runs {
			start, end := run[0]*blfChunk, (run[0]+run[1])*blfChunk
			if field < start || field+4 > end {
				continue
			}
			src := regions[j]
			if field-start+4 > len(src) {
				return fmt.Errorf("region of %d bytes for %d chunks", len(src), run[1])
			}
			v := src[field-start : field-start+4]
			if be.Uint32(v) == 0 {
				return fmt.Errorf("inode %d of the buffer: logged next_unlinked is zero", i)
			}
			copy(buf[field:], v)
			setInodeCRC(buf[i*isz : (i+1)*isz])
			break
		}
	}
	return nil
}

func setInodeCRC(ino []byte) {
	if ino[diOffVersion] >= 3 {
		binary.LittleEndian.PutUint32(ino[diOffCRC:], crc32c(ino, diOffCRC))
	}
}

// bufLSN finds the LSN a v5 metadata block carries
// (xlog_recover_get_buf_lsn); false means replay it regardless.
func (r *replayer) bufLSN(b []byte) (uint64, bool) {
	if !r.f.v5 || len(b) < 512 {
		return 0, false
	}
	lsnAt, uuidAt := -1, -1
	meta := r.f.metaUUID
	switch be.Uint32(b) {
	case 0x41423342, 0x41423343, 0x41425442, 0x41425443, 0x524d4233, 0x52334643, 0x49414233, 0x49414254: // AG btrees
		lsnAt, uuidAt = 24, 32
	case 0x424d4133, 0x424d4150: // bmbt
		lsnAt, uuidAt = 32, 40
	case 0x58414746: // AGF
		lsnAt, uuidAt = 208, 64
	case 0x5841464c: // AGFL
		lsnAt, uuidAt = 24, 8
	case 0x58414749: // AGI
		lsnAt, uuidAt = 320, 296
	case 0x58534c4d: // symlink
		lsnAt, uuidAt = 48, 16
	case 0x58444233, 0x58444433, 0x58444633: // dir3 block, data, free
		lsnAt, uuidAt = 16, 24
	case 0x58415241: // attr3 remote: written synchronously, no ordering LSN
		return 0, false
	case sbMagic:
		lsnAt, uuidAt = 240, 32
		if r.f.incompat&incompatMetaUUID != 0 {
			uuidAt = sbOffMetaUUID
		}
	}
	if lsnAt < 0 {
		switch be.Uint16(b[8:]) {
		case 0x3df1, 0x3dff, 0x3ebe: // dir3 leaf1, leafn, da3 node
			lsnAt, uuidAt = 24, 32
			meta = r.f.uuid
		}
	}
	if lsnAt < 0 {
		return 0, false
	}
	if string(b[uuidAt:uuidAt+16]) != string(meta[:]) {
		return 0, false
	}
	lsn := be.Uint64(b[lsnAt:])
	if lsn == ^uint64(0) {
		return 0, false
	}
	return lsn, true
}

// flush does what the kernel's write verifiers do when the buffers
// replayed for one LSN are written: stamp that LSN and the checksum.
func (r *replayer) flush() error {
	keys := make([][2]uint64, 0, len(r.pending))
	for k := range r.pending {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i][0] < keys[j][0] || keys[i][0] == keys[j][0] && keys[i][1] < keys[j][1]
	})
	for _, k := range keys {
		buf := make([]byte, k[1]*logBBSize)
		off := int64(k[0]) * logBBSize
		if err := r.ov.read(buf, off); err != nil {
			return err
		}
		if r.stamp(buf, r.pending[k]) {
			if err := r.ov.write(buf, off); err != nil {
				return err
			}
		}
	}
	clear(r.pending)
	return nil
}

// stamp sets the LSN and checksum of a v5 metadata buffer by its magic.
func (r *replayer) stamp(b []byte, lsn uint64) bool {
	set := func(lsnAt, crcAt int) bool {
		if lsnAt >= 0 {
			be.PutUint64(b[lsnAt:], lsn)
		}
		binary.LittleEndian.PutUint32(b[crcAt:], crc32c(b, crcAt))
		return true
	}
	switch be.Uint32(b) {
	case 0x41423342, 0x41423343, 0x524d4233, 0x52334643, 0x49414233, 0x46494233: // AG btrees (short form)
		return set(24, 52)
	case 0x424d4133:
		return set(32, 64)
	case 0x58414746:
		return set(208, 216)
	case 0x5841464c:
		return set(24, 32)
	case 0x58414749:
		return set(320, 312)
	case 0x58444233, 0x58444433, 0x58444633:
		return set(16, 4)
	case sbMagic:
		return set(240, 224)
	case 0x58534c4d: // remote symlink: one header per filesystem block
		bs := int(r.f.blockSize)
		for at := 0; at+bs <= len(b); at += bs {
			if be.Uint32(b[at:]) == 0x58534c4d {
				be.PutUint64(b[at+48:], lsn)
				binary.LittleEndian.PutUint32(b[at+12:], crc32c(b[at:at+bs], 12))
			}
		}
		return true
	}
	switch be.Uint16(b[8:]) {
	case 0x3df1, 0x3dff, 0x3ebe, 0x3bee: // dir3 leaf1, leafn, da3 node, attr3 leaf
		return set(24, 12)
	}
	return false
}

// inodeFormat is the decoded xfs_inode_log_format (either layout).
type inodeFormat struct {
	size, fields uint32
	asize, dsize int
	ino          uint64
	rdev         uint32
	daddr        uint64
	bbs          uint64
	boffset      int64
}

func decodeInodeFormat(b []byte, order binary.ByteOrder) (*inodeFormat, error) {
	f := &inodeFormat{}
	var rest []byte
	switch len(b) {
	case 56:
		f.ino = order.Uint64(b[16:])
		rest = b[24:]
	case 52:
		f.ino = order.Uint64(b[12:])
		rest = b[20:]
	default:
		return nil, fmt.Errorf("inode item format of %d bytes", len(b))
	}
	f.size = uint32(order.Uint16(b[2:]))
	f.fields = order.Uint32(b[4:])
	f.asize = int(order.Uint16(b[8:]))
	f.dsize = int(order.Uint16(b[10:]))
	f.rdev = order.Uint32(rest)
	f.daddr = order.Uint64(rest[16:])
	f.bbs = uint64(int64(int32(order.Uint32(rest[24:]))))
	f.boffset = int64(int32(order.Uint32(rest[28:])))
	return f, nil
}

func (r *replayer) inode(t *logTrans, it *logItem) error {
	in, err := decodeInodeFormat(it.regions[0], t.order)
	if err != nil {
		return err
	}
	if in.fields&(ilogDOwner|ilogAOwner) != 0 {
		return fmt.Errorf("inode %d: a fork owner change (swapext) is logged, which this reader does not replay", in.ino)
	}
	if r.cancelled(in.daddr, in.bbs) {
		r.res.cancelled++
		return nil
	}
	isz := r.f.inodeSize
	if in.bbs == 0 || in.bbs > blfMaxBBs || in.boffset < 0 || in.boffset+isz > int64(in.bbs)*logBBSize || in.boffset%isz != 0 {
		return fmt.Errorf("inode %d: at byte %d of a %d-block buffer", in.ino, in.boffset, in.bbs)
	}
	if end := in.daddr + in.bbs; end < in.daddr || end > uint64(r.f.dBlocks)<<r.f.blockLog/logBBSize {
		return fmt.Errorf("inode %d: buffer at daddr %d past the filesystem", in.ino, in.daddr)
	}
	if len(it.regions) < 2 || int(in.size) != len(it.regions) {
		return fmt.Errorf("inode %d: %d regions, format says %d", in.ino, len(it.regions), in.size)
	}
	off := int64(in.daddr)*logBBSize + in.boffset
	dip := make([]byte, isz)
	if err := r.ov.read(dip, off); err != nil {
		return err
	}
	if be.Uint16(dip) != inodeMagic {
		return fmt.Errorf("inode %d: the place it is logged to holds no inode (magic 0x%04x)", in.ino, be.Uint16(dip))
	}
	ld := it.regions[1]
	o := t.order
	if len(ld) < dinodeCoreSizeV2-4 || o.Uint16(ld) != inodeMagic {
		return fmt.Errorf("inode %d: bad log dinode", in.ino)
	}
	v3 := ld[diOffVersion] >= 3
	core := dinodeCoreSizeV2
	if v3 {
		core = dinodeCoreSizeV3
		if len(ld) < core {
			return fmt.Errorf("inode %d: v3 log dinode of %d bytes", in.ino, len(ld))
		}
	}
	if dip[diOffVersion] >= 3 {
		if lsn := be.Uint64(dip[diOffLSN:]); lsn != 0 && lsn != ^uint64(0) && lsn > t.lsn {
			r.res.skippedNewer++
			return nil
		}
	}
	if !r.f.v5 {
		logged, disk := o.Uint16(ld[diOffFlushiter:]), be.Uint16(dip[diOffFlushiter:])
		if logged < disk && !(disk == 0xffff && logged < 0x7fff) {
			r.res.skippedNewer++
			return nil
		}
	}
	if int(ld[diOffForkoff])*8 > int(isz) {
		return fmt.Errorf("inode %d: fork offset %d", in.ino, ld[diOffForkoff])
	}
	logDinodeToDisk(ld, dip, o, t.lsn)
	dfork := dip[core:]
	if in.fields&ilogDev != 0 {
		be.PutUint32(dfork, in.rdev)
	}
	litino := int(isz) - core
	dsize, aoff := litino, litino
	if fo := int(dip[diOffForkoff]) * 8; fo != 0 {
		if fo > litino {
			return fmt.Errorf("inode %d: fork offset %d past the %d-byte fork area", in.ino, fo, litino)
		}
		dsize, aoff = fo, fo
	}
	next := 2
	if in.fields&ilogDFork != 0 {
		if next >= len(it.regions) {
			return fmt.Errorf("inode %d: data fork logged but no region", in.ino)
		}
		src := it.regions[next]
		next++
		switch in.fields & ilogDFork {
		case ilogDData, ilogDExt:
			if len(src) > dsize {
				return fmt.Errorf("inode %d: %d bytes of data fork in %d", in.ino, len(src), dsize)
			}
			copy(dfork, src)
		case ilogDBroot:
			if err := r.bmbtToBmdr(src, dfork[:dsize]); err != nil {
				return fmt.Errorf("inode %d: data fork root: %w", in.ino, err)
			}
		default:
			return fmt.Errorf("inode %d: data fork fields 0x%x", in.ino, in.fields&ilogDFork)
		}
	}
	if in.fields&ilogAFork != 0 {
		if next >= len(it.regions) {
			return fmt.Errorf("inode %d: attribute fork logged but no region", in.ino)
		}
		src := it.regions[next]
		afork := dfork[aoff:litino]
		switch in.fields & ilogAFork {
		case ilogAData, ilogAExt:
			if len(src) > len(afork) {
				return fmt.Errorf("inode %d: %d bytes of attribute fork in %d", in.ino, len(src), len(afork))
			}
			copy(afork, src)
		case ilogABroot:
			if err := r.bmbtToBmdr(src, afork); err != nil {
				return fmt.Errorf("inode %d: attribute fork root: %w", in.ino, err)
			}
		default:
			return fmt.Errorf("inode %d: attribute fork fields 0x%x", in.ino, in.fields&ilogAFork)
		}
	}
	setInodeCRC(dip)
	r.res.inodes++
	return r.ov.write(dip, off)
}

// logDinodeToDisk converts an xfs_log_dinode (host byte order) onto the
// on-disk dinode, keeping di_next_unlinked (xfs_log_dinode_to_disk).
func logDinodeToDisk(l, d []byte, o binary.ByteOrder, lsn uint64) {
	u16 := func(at int) { be.PutUint16(d[at:], o.Uint16(l[at:])) }
	u32 := func(at int) { be.PutUint32(d[at:], o.Uint32(l[at:])) }
	u64 := func(at int) { be.PutUint64(d[at:], o.Uint64(l[at:])) }
	v3 := l[diOffVersion] >= 3
	var flags2 uint64
	if v3 {
		flags2 = o.Uint64(l[diOffFlags2:])
	}
	ts := func(at int) {
		if flags2&diFlags2BigTime != 0 {
			u64(at)
		} else {
			u32(at)
			u32(at + 4)
		}
	}
	u16(diOffMagic)
	u16(diOffMode)
	d[diOffVersion] = l[diOffVersion]
	d[diOffFormat] = l[diOffFormat]
	d[diOffOnlink], d[diOffOnlink+1] = 0, 0
	u32(diOffUID)
	u32(diOffGID)
	u32(diOffNlink)
	u16(diOffProjidLo)
	u16(diOffProjidHi)
	ts(diOffAtime)
	ts(diOffMtime)
	ts(diOffCtime)
	u64(diOffSize)
	u64(diOffNblocks)
	u32(diOffExtsize)
	d[diOffForkoff] = l[diOffForkoff]
	d[diOffAformat] = l[diOffAformat]
	u32(84) // di_dmevmask
	u16(88) // di_dmstate
	u16(diOffFlags)
	u32(diOffGen)
	if v3 {
		u64(diOffChangeCnt)
		ts(diOffCrtime)
		u64(diOffFlags2)
		u32(diOffCowextsize)
		u64(diOffIno)
		be.PutUint64(d[diOffLSN:], lsn)
		clear(d[132:144])
		copy(d[diOffUUID:diOffUUID+16], l[diOffUUID:diOffUUID+16])
		clear(d[24:32])
	} else {
		clear(d[24:30])
		u16(diOffFlushiter)
	}
	if v3 && flags2&diFlags2NRExt64 != 0 {
		u64(diOffBigNextents)
		u32(diOffNextents)
		u16(diOffAnextents)
	} else {
		u32(diOffNextents)
		u16(diOffAnextents)
	}
}

// bmbtToBmdr converts a logged in-core bmbt root (a long-form btree
// block header) to the on-disk root in the inode fork.
func (r *replayer) bmbtToBmdr(src, dst []byte) error {
	hdr := 24
	if r.f.v5 {
		hdr = 72
	}
	if len(src) < hdr || len(dst) < 4 {
		return fmt.Errorf("root of %d bytes into %d", len(src), len(dst))
	}
	rmax := (len(src) - hdr) / 16
	dmax := (len(dst) - 4) / 16
	n := int(be.Uint16(src[6:]))
	if n > rmax || n > dmax {
		return fmt.Errorf("%d records, room for %d logged and %d on disk", n, rmax, dmax)
	}
	copy(dst[0:4], src[4:8])
	copy(dst[4:4+8*n], src[hdr:hdr+8*n])
	copy(dst[4+8*dmax:4+8*dmax+8*n], src[hdr+8*rmax:hdr+8*rmax+8*n])
	return nil
}

// icreate replays an inode chunk creation: the chunk's inodes are
// initialized as xfs_ialloc_inode_init does.
func (r *replayer) icreate(it *logItem) error {
	b := it.regions[0]
	if len(b) < 28 {
		return fmt.Errorf("icreate item of %d bytes", len(b))
	}
	ag, agbno := uint64(be.Uint32(b[4:])), uint64(be.Uint32(b[8:]))
	count, isize, length, gen := uint64(be.Uint32(b[12:])), int64(be.Uint32(b[16:])), uint64(be.Uint32(b[20:])), be.Uint32(b[24:])
	f := r.f
	if ag >= f.agCount || agbno == 0 || agbno >= f.agBlocks || isize != f.inodeSize || count == 0 ||
		length == 0 || length >= f.agBlocks || agbno+length > f.agBlocks || count>>f.inoPBLog != length || count > 64 {
		return fmt.Errorf("icreate of %d inodes (%d blocks) at AG %d block %d", count, length, ag, agbno)
	}
	// Cluster buffers cancelled later mean the chunk was freed again.
	perCluster := uint64(1)
	if raw := r.inodeClusterBytes(); raw > f.blockSize {
		perCluster = uint64(raw / f.blockSize)
	}
	bbPerCluster := perCluster << f.blockLog / logBBSize
	lin := ag*f.agBlocks + agbno
	nbufs := max(length/perCluster, 1)
	cancelled := uint64(0)
	for i := uint64(0); i < nbufs; i++ {
		if r.cancelled((lin+i*perCluster)<<f.blockLog/logBBSize, bbPerCluster) {
			cancelled++
		}
	}
	if cancelled > 0 {
		r.res.cancelled++
		return nil
	}
	chunk := make([]byte, length<<f.blockLog)
	firstIno := (ag<<f.agBlkLog | agbno) << f.inoPBLog
	for i := uint64(0); i < count; i++ {
		d := chunk[int64(i)*isize : int64(i+1)*isize]
		be.PutUint16(d[diOffMagic:], inodeMagic)
		d[diOffVersion] = 2
		if f.v5 {
			d[diOffVersion] = 3
		}
		be.PutUint32(d[diOffGen:], gen)
		be.PutUint32(d[diOffNextUnlink:], 0xffffffff)
		if f.v5 {
			be.PutUint64(d[diOffIno:], firstIno+i)
			copy(d[diOffUUID:], f.metaUUID[:])
			setInodeCRC(d)
		}
	}
	r.res.icreates++
	return r.ov.write(chunk, int64(lin<<f.blockLog))
}

// inodeClusterBytes is the inode cluster size (xfs_ialloc_setup_geometry).
func (r *replayer) inodeClusterBytes() int64 {
	size := int64(8192)
	if r.f.v5 {
		bigger := size * (r.f.inodeSize / dinodeMinSize)
		if int64(r.f.inoAlign)<<r.f.blockLog >= bigger {
			size = bigger
		}
	}
	return size
}

// describe summarizes a replay for the warning.
func (res *replayResult) describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "replayed %d committed log transactions in memory (%d buffers, %d inodes, %d inode chunks", res.trans, res.bufs, res.inodes, res.icreates)
	if res.cancelled > 0 {
		fmt.Fprintf(&b, "; %d cancelled items skipped", res.cancelled)
	}
	if res.skippedNewer > 0 {
		fmt.Fprintf(&b, "; %d items already on disk", res.skippedNewer)
	}
	b.WriteString(")")
	if res.stop != "" {
		fmt.Fprintf(&b, "; the log ends early at a bad %s", res.stop)
	}
	var names []string
	for n, c := range res.unfinished {
		if strings.HasPrefix(n, "BUI") || strings.HasPrefix(n, "XMI") || strings.HasPrefix(n, "ATTRI") {
			names = append(names, fmt.Sprintf("%d %s", c, n))
		}
	}
	sort.Strings(names)
	if len(names) > 0 {
		fmt.Fprintf(&b, "; unfinished intents the kernel would complete were not: %s, so files they touch may lack that change", strings.Join(names, ", "))
	}
	return b.String()
}
