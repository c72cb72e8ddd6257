package export

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"sync"

	"github.com/ctrlift/ctrlift/vfs"
)

// stream is the tar stream. Entries are gathered in chunks; a full chunk
// is written out and then digested on another goroutine from the same
// memory, so that the digest of the stream takes a second core instead of
// time, and file data is copied once in user space: from the source
// straight into a chunk.
type stream struct {
	w    io.Writer
	h    hash.Hash
	cur  []byte      // the chunk being filled
	work chan []byte // chunks written out, to digest
	free chan []byte // chunks digested, to fill again
	done chan struct{}
}

const (
	streamChunk  = 1 << 20
	streamChunks = 4 // one filled, one written, the rest digested
)

func newStream(w io.Writer) *stream {
	s := &stream{w: w, h: sha256.New(), work: make(chan []byte, streamChunks), free: make(chan []byte, streamChunks), done: make(chan struct{})}
	for i := 0; i < streamChunks; i++ {
		s.free <- make([]byte, 0, streamChunk)
	}
	s.cur = <-s.free
	go func() {
		defer close(s.done)
		for b := range s.work {
			s.h.Write(b)
			s.free <- b[:0]
		}
	}()
	return s
}

// flush writes out the current chunk and hands it to the digest.
func (s *stream) flush() error {
	if len(s.cur) == 0 {
		return nil
	}
	n, err := s.w.Write(s.cur)
	if n < len(s.cur) && err == nil {
		err = io.ErrShortWrite
	}
	s.cur = s.cur[:n] // the digest is of what was written
	s.work <- s.cur
	s.cur = <-s.free
	return err
}

// space returns the free end of the current chunk, never empty.
func (s *stream) space() ([]byte, error) {
	if len(s.cur) == cap(s.cur) {
		if err := s.flush(); err != nil {
			return nil, err
		}
	}
	return s.cur[len(s.cur):cap(s.cur)], nil
}

func (s *stream) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		sp, err := s.space()
		if err != nil {
			return n, err
		}
		k := copy(sp, p[n:])
		s.cur = s.cur[:len(s.cur)+k]
		n += k
	}
	return n, nil
}

// copyData appends n bytes of f from off, reading them into the stream's
// chunks; fileHash, when set, digests them too. With sequential it reads
// with f.Read, from where the last read ended (a plain entry's data, read
// from the start: sources that count what is read in sequence, like the
// OCI writer's dense files, see every byte); otherwise with f.ReadAt. It
// returns how many bytes f had: fewer than n when it ends early.
func (s *stream) copyData(f vfs.File, off, n int64, fileHash io.Writer, sequential bool) (int64, error) {
	var done int64
	empty := 0
	for done < n {
		sp, err := s.space()
		if err != nil {
			return done, err
		}
		want := min(int64(len(sp)), n-done)
		var k int
		if sequential {
			k, err = f.Read(sp[:want])
		} else {
			k, err = f.ReadAt(sp[:want], off+done)
		}
		if k > 0 {
			if fileHash != nil {
				fileHash.Write(sp[:k])
			}
			s.cur = s.cur[:len(s.cur)+k]
			done += int64(k)
			empty = 0
		}
		switch {
		case err == io.EOF && (sequential || int64(k) < want):
			return done, nil
		case err != nil && err != io.EOF:
			return done, err
		case k == 0 && err == nil:
			if empty++; empty >= 100 || !sequential {
				return done, io.ErrNoProgress
			}
		}
	}
	return done, nil
}

// close writes out what is pending (unless the export failed), stops the
// digest and returns it, of what was written.
func (s *stream) close(failed bool) (string, error) {
	var err error
	if !failed {
		err = s.flush()
	}
	close(s.work)
	<-s.done
	return hex.EncodeToString(s.h.Sum(nil)), err
}

// DigestWriter writes to an underlying writer in 1 MiB pieces and digests
// what was written (sha256) on another goroutine, so that hashing a
// compressed export's output takes a core of its own instead of time on
// the compressor's. Close or Abort must be called. Writes may come from
// another goroutine than Abort's: a parallel compressor can still be
// writing a block when a failed export aborts.
type DigestWriter struct {
	mu     sync.Mutex
	s      *stream
	n      int64
	sum    string
	closed bool
}

// NewDigestWriter returns a DigestWriter writing to w.
func NewDigestWriter(w io.Writer) *DigestWriter { return &DigestWriter{s: newStream(w)} }

func (d *DigestWriter) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return 0, errDigestClosed
	}
	n, err := d.s.Write(p)
	d.n += int64(n)
	return n, err
}

var errDigestClosed = errors.New("export: write after the output was closed")

// Close writes out what is pending and stops the digest.
func (d *DigestWriter) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	var err error
	d.sum, err = d.s.close(false)
	return err
}

// Abort stops the digest without writing out what is pending; later
// writes fail.
func (d *DigestWriter) Abort() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.closed {
		d.closed = true
		d.s.close(true)
	}
}

// Sum returns the hex sha256 of what was written out, after Close.
func (d *DigestWriter) Sum() string { return d.sum }

// Size returns how many bytes were written to the DigestWriter.
func (d *DigestWriter) Size() int64 { return d.n }
