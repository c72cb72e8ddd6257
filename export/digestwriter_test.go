package export

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
)

// failAfter accepts n bytes, then fails.
type failAfter struct {
	bytes.Buffer
	n int
}

func (f *failAfter) Write(p []byte) (int, error) {
	if f.Len()+len(p) > f.n {
		k := f.n - f.Len()
		f.Buffer.Write(p[:k])
		return k, errors.New("disk full")
	}
	return f.Buffer.Write(p)
}

func TestDigestWriter(t *testing.T) {
	for _, tc := range []struct {
		name        string
		size, piece int
	}{
		{"empty", 0, 1},
		{"one byte", 1, 1},
		{"one chunk", streamChunk, 4096},
		{"one chunk and a byte", streamChunk + 1, 128 << 10},
		{"more chunks than the ring", 5*streamChunk + 12345, 7777},
		{"one large write", 3*streamChunk + 5, 3*streamChunk + 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := make([]byte, tc.size)
			r := rand.New(rand.NewPCG(uint64(tc.size), 1))
			for i := range data {
				data[i] = byte(r.Uint32())
			}
			var out bytes.Buffer
			d := NewDigestWriter(&out)
			for at := 0; at < len(data); at += tc.piece {
				if _, err := d.Write(data[at:min(at+tc.piece, len(data))]); err != nil {
					t.Fatal(err)
				}
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			want := sha256.Sum256(data)
			if !bytes.Equal(out.Bytes(), data) || d.Sum() != hex.EncodeToString(want[:]) || d.Size() != int64(len(data)) {
				t.Errorf("wrote %d bytes (equal %v), size %d, sum %s; want %d bytes, sum %x", out.Len(), bytes.Equal(out.Bytes(), data), d.Size(), d.Sum(), len(data), want)
			}
		})
	}
	t.Run("failed write", func(t *testing.T) {
		w := &failAfter{n: streamChunk + 10}
		d := NewDigestWriter(w)
		var err error
		for i := 0; i < 4 && err == nil; i++ {
			_, err = d.Write(make([]byte, streamChunk))
		}
		if err == nil {
			err = d.Close()
		} else {
			d.Abort()
		}
		if err == nil {
			t.Fatal("a failing writer's error was lost")
		}
		d.Abort() // twice is harmless
		d.Close()
	})
	t.Run("abort while a compressor goroutine writes", func(t *testing.T) {
		d := NewDigestWriter(io.Discard)
		done := make(chan error)
		go func() {
			block := make([]byte, 128<<10)
			for {
				if _, err := d.Write(block); err != nil {
					done <- err
					return
				}
			}
		}()
		d.Write(make([]byte, 3*streamChunk))
		d.Abort()
		if err := <-done; err == nil {
			t.Error("a write after Abort succeeded")
		}
	})
}
