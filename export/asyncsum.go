package export

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
)

// asyncSum writes to w and hashes the same bytes on another goroutine, so
// that digesting the tar stream uses a second core instead of doubling the
// time of a large export.
type asyncSum struct {
	w     io.Writer
	h     hash.Hash
	work  chan []byte
	free  chan []byte
	done  chan struct{}
	chunk []byte // bytes gathered for the hasher
}

const asyncChunk = 1 << 20

func newAsyncSum(w io.Writer) *asyncSum {
	s := &asyncSum{w: w, h: sha256.New(), work: make(chan []byte, 4), free: make(chan []byte, 5), done: make(chan struct{})}
	for i := 0; i < 5; i++ {
		s.free <- make([]byte, 0, asyncChunk)
	}
	s.chunk = <-s.free
	go func() {
		defer close(s.done)
		for b := range s.work {
			s.h.Write(b)
			s.free <- b[:0]
		}
	}()
	return s
}

func (s *asyncSum) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	for q := p[:n]; len(q) > 0; {
		k := copy(s.chunk[len(s.chunk):cap(s.chunk)], q)
		s.chunk = s.chunk[:len(s.chunk)+k]
		q = q[k:]
		if len(s.chunk) == cap(s.chunk) {
			s.work <- s.chunk
			s.chunk = <-s.free
		}
	}
	return n, err
}

// sum flushes what is pending, stops the hasher and returns the digest.
func (s *asyncSum) sum() string {
	if len(s.chunk) > 0 {
		s.work <- s.chunk
	}
	close(s.work)
	<-s.done
	return hex.EncodeToString(s.h.Sum(nil))
}
