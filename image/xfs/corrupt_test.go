package xfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestRandomCorruption flips bits in the seed image, deterministically,
// near its metadata and anywhere, and requires every variant to
// open-and-walk or fail, quickly, never panic.
func TestRandomCorruption(t *testing.T) {
	img := seed(t)
	offs := structureOffsets(t, img)
	var targets []int64
	for _, o := range offs {
		targets = append(targets, o)
	}
	sort.Slice(targets, func(i, j int) bool { return targets[i] < targets[j] })
	r := rand.New(rand.NewPCG(1, 1))
	n := 600
	if testing.Short() {
		n = 150
	}
	for i := 0; i < n; i++ {
		// A window of 1 KiB around a structure (or anywhere, one time in
		// four), with 1 to 8 bits flipped in it.
		base := r.Int64N(int64(len(img)) - 1024)
		if r.IntN(4) != 0 {
			base = targets[r.IntN(len(targets))]
		}
		patch := bytes.Clone(img[base : base+1024])
		for j := 0; j < 1+r.IntN(8); j++ {
			patch[r.IntN(len(patch))] ^= byte(1 << r.IntN(8))
		}
		done := make(chan any)
		go func() {
			defer func() { done <- recover() }()
			if fsys, err := NewReader(&patched{base: img, off: base, patch: patch}, int64(len(img))); err == nil {
				exercise(fsys)
			}
		}()
		select {
		case p := <-done:
			if p != nil {
				t.Fatalf("variant %d (at byte %d): panic: %v", i, base, p)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("variant %d (at byte %d): no result after 10s", i, base)
		}
	}
}

// TestCorruptStructures damages one named structure of the seed image and
// checks that the error says what and where.
func TestCorruptStructures(t *testing.T) {
	img := seed(t)
	at := structureOffsets(t, img)
	be16 := func(b []byte, off int64, v uint16) { binary.BigEndian.PutUint16(b[off:], v) }
	be32 := func(b []byte, off int64, v uint32) { binary.BigEndian.PutUint32(b[off:], v) }
	be64 := func(b []byte, off int64, v uint64) { binary.BigEndian.PutUint64(b[off:], v) }
	core := int64(dinodeCoreSizeV3)

	tests := []struct {
		name     string
		mutate   func(b []byte) []byte
		read     string // path to read after opening ("" = open only)
		wantErr  []string
		unsupp   bool   // errors.Is(err, errors.ErrUnsupported)
		wantWarn string // no error, but a warning with this text
	}{
		{"zeroed superblock", func(b []byte) []byte { clear(b[:512]); return b }, "", []string{"superblock", "bad magic"}, false, ""},
		{"block size absurd", func(b []byte) []byte { be32(b, sbOffBlockSize, 3000); return b }, "", []string{"superblock", "block size 3000"}, false, ""},
		{"AG count absurd", func(b []byte) []byte { be32(b, sbOffAGCount, 1000); return b }, "", []string{"superblock", "AGs"}, false, ""},
		{"unknown incompat feature", func(b []byte) []byte { b[sbOffFeaturesIncompa] |= 0x80; return b }, "", []string{"unknown incompatible features"}, true, ""},
		{"metadir feature", func(b []byte) []byte { b[sbOffFeaturesIncompa+2] |= 0x01; return b }, "", []string{"metadir"}, true, ""},
		{"superblock checksum", func(b []byte) []byte { b[sbOffFName] ^= 1; return b }, "", nil, false, "superblock at byte 0: checksum"},
		{"truncated image", func(b []byte) []byte { return b[:at["inode regular"]] }, "regular", []string{"inode", "past the end"}, false, ""},
		{"inode magic", func(b []byte) []byte { b[at["inode regular"]] ^= 0xff; return b }, "regular", []string{"inode", "bad magic"}, false, ""},
		{"inode number mismatch", func(b []byte) []byte { b[at["inode regular"]+diOffIno+7] ^= 1; return b }, "regular", []string{"records inode number"}, false, ""},
		{"inode checksum", func(b []byte) []byte { b[at["inode regular"]+diOffGen] ^= 1; return b }, "regular", nil, false, "inode at byte"},
		{"unallocated inode", func(b []byte) []byte { be16(b, at["inode regular"]+diOffMode, 0); return b }, "regular", []string{"unallocated"}, false, ""},
		{"realtime file", func(b []byte) []byte { b[at["inode regular"]+diOffFlags+1] |= FlagRealtime; return b }, "regular", []string{"realtime"}, true, ""},
		{"extent past the end", func(b []byte) []byte {
			// startblock high bits in l0, AG number far out.
			b[at["inode regular"]+core+7] |= 0xff
			return b
		}, "regular", []string{"outside the filesystem"}, false, ""},
		{"extent count absurd", func(b []byte) []byte { be32(b, at["inode regular"]+diOffNextents, 1000); return b }, "regular", []string{"extents, but the fork holds"}, false, ""},
		{"bmbt root level absurd", func(b []byte) []byte { be16(b, at["inode frag/alternating"]+core, 40); return b }, "frag/alternating", []string{"bmbt root level 40"}, false, ""},
		{"bmbt block magic", func(b []byte) []byte { b[at["bmbt frag/alternating"]] ^= 0xff; return b }, "frag/alternating", []string{"bmbt block", "bad magic"}, false, ""},
		{"bmbt block level", func(b []byte) []byte { be16(b, at["bmbt frag/alternating"]+4, 1); return b }, "frag/alternating", []string{"level 1 where the parent implies 0"}, false, ""},
		{"bmbt block owner", func(b []byte) []byte { be64(b, at["bmbt frag/alternating"]+btreeLOffOwner, 12345); return b }, "frag/alternating", []string{"owned by inode 12345"}, false, ""},
		{"directory entry inode", func(b []byte) []byte {
			// The first entry after "." and ".." in the block directory.
			off := at["data block"] + dir3DataHdrSize + 16 + 16
			be64(b, off, 1<<50)
			return b
		}, "block/entry-00001", []string{"directory block", "not of this filesystem"}, false, ""},
		{"directory block magic", func(b []byte) []byte { b[at["data leaf"]] ^= 0xff; return b }, "leaf/entry-00001", []string{"directory block", "bad magic"}, false, ""},
		{"short-form dir count", func(b []byte) []byte { b[at["inode sf"]+core] = 200; return b }, "sf", []string{"short-form directory", "runs past"}, false, ""},
		{"attr leaf count", func(b []byte) []byte { be16(b, at["attr0 x-leaf"]+da3BlkinfoSize, 5000); return b }, "x-leaf", []string{"attribute leaf", "do not fit"}, false, ""},
		{"attr node magic", func(b []byte) []byte { b[at["attr0 x-node"]+daOffMagic] ^= 0xff; return b }, "x-node", []string{"attribute block", "bad magic"}, false, ""},
		{"remote value header", func(b []byte) []byte { b[at["attr1 x-remote"]] ^= 0xff; return b }, "x-remote", []string{"remote attribute value", "bad magic"}, false, ""},
		{"short-form attr size", func(b []byte) []byte {
			in := at["inode x-sf"]
			forkOff := int64(b[in+diOffForkoff]) * 8
			be16(b, in+core+forkOff, 4000)
			return b
		}, "x-sf", []string{"short-form attributes", "total size 4000"}, false, ""},
		{"remote symlink header", func(b []byte) []byte { b[at["data long"]] ^= 0xff; return b }, "long", []string{"symlink", "bad magic"}, false, ""},
		{"symlink length absurd", func(b []byte) []byte { be64(b, at["inode long"]+diOffSize, 5000); return b }, "long", []string{"symlink", "target length 5000"}, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := tc.mutate(bytes.Clone(img))
			fsys, err := NewReader(bytes.NewReader(data), int64(len(data)))
			if err == nil && tc.read != "" {
				err = readPath(fsys, tc.read)
			}
			if tc.wantWarn != "" {
				if err != nil {
					t.Fatalf("error %v, want only a warning", err)
				}
				if w := strings.Join(fsys.Warnings(), "\n"); !strings.Contains(w, tc.wantWarn) {
					t.Fatalf("warnings %q lack %q", w, tc.wantWarn)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if tc.unsupp != errors.Is(err, errors.ErrUnsupported) {
				t.Errorf("error %q: errors.Is(ErrUnsupported) = %v", err, !tc.unsupp)
			}
			var fe *FormatError
			if !tc.unsupp && !errors.As(err, &fe) && !strings.Contains(err.Error(), "byte") {
				t.Errorf("error %q carries no offset", err)
			}
		})
	}
}

// readPath looks a path up and reads what it names.
func readPath(fsys *FS, p string) error {
	in, err := fsys.LookupInode(p)
	if err != nil {
		return err
	}
	switch {
	case in.IsSymlink():
		_, err = fsys.LinkTargetInode(in)
	case in.IsDir():
		_, err = fsys.Entries(in)
	case in.IsRegular():
		var r *File
		if r, err = fsys.OpenInode(in); err == nil {
			_, err = io.Copy(io.Discard, r)
		}
	}
	return err
}
