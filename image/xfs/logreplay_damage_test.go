package xfs

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

// TestLogReplayDamaged damages the first record of the xfs-dirty
// fixture's log (made by the kernel) and checks that the replay either
// stops before it or is not applied at all: the warning says which, and
// the tree read is then the checkpointed one, never a half-applied log.
func TestLogReplayDamaged(t *testing.T) {
	img, err := dirtyImage()
	if err != nil {
		t.Skip(err)
	}
	clean, err := NewReaderOptions(bytes.NewReader(img), int64(len(img)), Options{SkipLogReplay: true})
	if err != nil {
		t.Fatal(err)
	}
	start, err := clean.fsbToLinear(clean.logStart, clean.logBlocks, "log", 0, sbOffLogStart)
	if err != nil {
		t.Fatal(err)
	}
	rec := int64(start)*clean.blockSize + int64(clean.logTail)*logBBSize // the first record's header
	if be.Uint32(img[rec:]) != logHeaderMagic {
		t.Fatalf("no record header at the tail")
	}
	hlen := int64(be.Uint32(img[rec+logOffLen:]))
	data := rec + logBBSize
	// fixCRC recomputes the record checksum so damage reaches the parser.
	fixCRC := func(b []byte) {
		binary.LittleEndian.PutUint32(b[rec+logOffCRC:], logRecordCRC(b[rec:rec+logBBSize], b[data:data+hlen], 0, logRecHdrCRCLen))
	}
	// The record starts with the start operation (no region), then the
	// transaction header's operation at byte 12, its region at 24.
	tests := []struct {
		name   string
		damage func(b []byte)
		want   string
	}{
		{"payload byte, stale CRC", func(b []byte) { b[data+100] ^= 0xff }, "log ends early at a bad record"},
		{"h_len past the head", func(b []byte) { be.PutUint32(b[rec+logOffLen:], 200<<10) }, "log ends early"},
		{"operation flags", func(b []byte) { b[data+12+9] = 0x40; fixCRC(b) }, "could not be replayed"},
		{"operation length", func(b []byte) { be.PutUint32(b[data+12+4:], 1<<30); fixCRC(b) }, "could not be replayed"},
		{"transaction header magic", func(b []byte) { b[data+24] ^= 1; fixCRC(b) }, "could not be replayed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Clone(img)
			tc.damage(b)
			fsys, err := NewReader(bytes.NewReader(b), int64(len(b)))
			if err != nil {
				t.Fatal(err)
			}
			w := strings.Join(fsys.Warnings(), " | ")
			if !strings.Contains(w, "log is dirty") || !strings.Contains(w, tc.want) {
				t.Fatalf("warnings %q, want %q", w, tc.want)
			}
			if _, ok := fsys.r.(*logOverlay); ok && strings.Contains(w, "could not") {
				t.Fatal("overlay installed although the replay failed")
			}
			// Nothing was replayed: the tree is the checkpointed one.
			if _, err := fsys.Lookup("b"); err == nil {
				t.Errorf("b/ (only in the log) is visible: part of the log was applied")
			}
		})
	}
}
