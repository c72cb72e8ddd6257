package ext4

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// TestRandomCorruption flips bits in a real image, deterministically, and
// requires every variant to open-and-walk or fail, quickly, never panic.
func TestRandomCorruption(t *testing.T) {
	img := testImage(t, "tiny.img.zst")
	r := rand.New(rand.NewPCG(1, 1))
	n := 3000
	if testing.Short() {
		n = 300
	}
	for i := 0; i < n; i++ {
		data := append([]byte{}, img...)
		for j := 0; j < 1+r.IntN(8); j++ {
			data[r.IntN(len(data))] ^= byte(1 << r.IntN(8))
		}
		done := make(chan any)
		go func() {
			defer func() { done <- recover() }()
			if fsys, err := NewReader(bytes.NewReader(data), int64(len(data))); err == nil {
				exercise(fsys)
			}
		}()
		select {
		case p := <-done:
			if p != nil {
				t.Fatalf("variant %d: panic: %v", i, p)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("variant %d: no result after 5s", i)
		}
	}
}

// TestCorruptStructures damages one named structure of a real image and
// checks the error says what and where.
func TestCorruptStructures(t *testing.T) {
	img := smallImage(t)
	clean, err := NewReader(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	lookup := func(p string) *Inode {
		in, err := clean.Lookup(p)
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	big := lookup("dir/big.txt")
	_, bigOff := clean.rawInode(t, big.Num)
	many := lookup("many")
	mr, _ := clean.NewFileReader(many)
	m0, _ := mr.mapBlock(0)
	manyBlock := int64(m0.pblk) * clean.blockSize
	br, _ := clean.NewFileReader(big)
	b0, _ := br.mapBlock(0)
	bigData := int64(b0.pblk) * clean.blockSize

	tests := []struct {
		name    string
		mutate  func(b []byte) []byte
		read    string // path to read after opening ("" = open only)
		wantErr []string
	}{
		{"zeroed superblock", func(b []byte) []byte { clear(b[1024:2048]); return b }, "", []string{"superblock", "bad magic"}},
		{"truncated to 3 KiB", func(b []byte) []byte { return b[:3072] }, "small.txt", []string{"inode", "past the end"}},
		{"truncated in file data", func(b []byte) []byte { return b[:bigData+100] }, "dir/big.txt", []string{"past the end"}},
		{"block size absurd", func(b []byte) []byte { binary.LittleEndian.PutUint32(b[1024+sbLogBlockSize:], 20); return b }, "", []string{"superblock", "log block size"}},
		{"extent magic", func(b []byte) []byte { b[bigOff+inBlock] ^= 0xff; return b }, "dir/big.txt", []string{"inode", "extent node", "bad magic"}},
		{"extent depth absurd", func(b []byte) []byte { binary.LittleEndian.PutUint16(b[bigOff+inBlock+6:], 9); return b }, "dir/big.txt", []string{"depth 9"}},
		{"extent past the end", func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[bigOff+inBlock+12+8:], 0x7fffffff)
			return b
		}, "dir/big.txt", []string{"outside the filesystem"}},
		{"rec_len 0", func(b []byte) []byte { binary.LittleEndian.PutUint16(b[manyBlock+4:], 0); return b }, "many/file-1", []string{"directory entry", "rec_len 0"}},
		{"dir entry inode out of range", func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[manyBlock+24:], 0xfffffff0)
			return b
		}, "many/file-1", []string{"out of range"}},
		{"absurd file size", func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[bigOff+inSizeHigh:], 0xffffffff)
			return b
		}, "dir/big.txt", []string{"absurd size"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := tc.mutate(append([]byte{}, img...))
			fsys, err := NewReader(bytes.NewReader(data), int64(len(data)))
			if err == nil && tc.read != "" {
				var f interface{ Close() error }
				f, err = fsys.Open(tc.read)
				if err == nil {
					_, err = io.ReadAll(f.(io.Reader))
					f.Close()
				}
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			var fe *FormatError
			if !errors.As(err, &fe) && !strings.Contains(err.Error(), "byte") {
				t.Errorf("error %q carries no offset", err)
			}
		})
	}
}
