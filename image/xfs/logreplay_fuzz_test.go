package xfs

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// dirtyImage is the xfs-dirty fixture (testdata/images/xfs), whose log
// the kernel left dirty, decompressed once.
var dirtyImage = sync.OnceValues(func() ([]byte, error) {
	f, err := os.Open(filepath.Join("..", "..", "testdata", "images", "xfs", "xfs-dirty.img.zst"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	d, err := zstd.NewReader(f)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return io.ReadAll(d)
})

// FuzzLogRecord feeds a log record payload (the first 4 bytes: the
// number of operations) to the transaction parser, then replays what it
// committed over the xfs-dirty fixture: no panic, no unbounded work,
// whatever the operations and items say. The seeds are the fixture's
// own records.
func FuzzLogRecord(f *testing.F) {
	img, err := dirtyImage()
	if err != nil {
		f.Skip(err)
	}
	fsys, err := NewReaderOptions(bytes.NewReader(img), int64(len(img)), Options{SkipLogReplay: true})
	if err != nil {
		f.Fatal(err)
	}
	start, err := fsys.fsbToLinear(fsys.logStart, fsys.logBlocks, "log", 0, sbOffLogStart)
	if err != nil {
		f.Fatal(err)
	}
	w := &logWalker{f: fsys, base: int64(start) * fsys.blockSize, n: fsys.logBlocks << fsys.blockLog / logBBSize}
	seeds := 0
	stop, err := w.records(fsys.logTail, fsys.logTailCycle, fsys.logHead, func(r *logRecord) error {
		seed := binary.BigEndian.AppendUint32(nil, r.numOps)
		f.Add(append(seed, r.data...))
		seeds++
		return nil
	})
	if err != nil || stop != "" || seeds == 0 {
		f.Fatalf("fixture log: %d records, stop %q, %v", seeds, stop, err)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < 4 || len(in) > logMaxRecordSize {
			return
		}
		rec := &logRecord{block: 0, lsn: 1<<32 | 2, numOps: binary.BigEndian.Uint32(in), order: binary.LittleEndian, data: in[4:]}
		p := newLogParser()
		if p.record(rec) != nil {
			return
		}
		// Commit what is still open too, to reach the items of partial input.
		for _, t := range p.open {
			p.committed = append(p.committed, t)
		}
		res := &replayResult{unfinished: map[string]int{}}
		ov := &logOverlay{base: fsys.r, size: fsys.size, bbs: map[int64]*[logBBSize]byte{}}
		r := &replayer{f: fsys, ov: ov, res: res, cancel: map[[2]uint64]int{}, pending: map[[2]uint64]uint64{}}
		r.run(p.committed)
		res.describe()
	})
}
