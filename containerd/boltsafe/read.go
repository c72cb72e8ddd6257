package boltsafe

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
)

// MaxSize is the largest database Read accepts; it bounds the memory spent
// on one file (the bytes, a private copy, and the decoded tree). Only the
// pages in use count (see UsedSize): 256 MiB of them keeps a forged
// database within ctrlift's 512 MiB memory budget (SECURITY.md).
const MaxSize = 256 << 20

// DB is a validated bbolt database read completely into memory.
type DB struct {
	Root *Bucket // the root bucket; its Buckets() are the top-level buckets
	Info Info    // page size, meta page and txid used, warnings
}

// ErrTimeout is wrapped by the error returned when bbolt does not finish in
// time. It is a last line of defence: validation should make it unreachable.
var ErrTimeout = errors.New("bbolt read timed out")

// Read validates data as a bbolt file, then reads every bucket and key with
// go.etcd.io/bbolt from a private read-only copy. data is not modified and
// may be reused by the caller.
func Read(data []byte) (*DB, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("bbolt: %w", &FormatError{Offset: -1, Msg: fmt.Sprintf("file of %d bytes exceeds the %d-byte limit", len(data), MaxSize)})
	}
	info, err := Validate(data)
	if err != nil {
		return nil, err
	}
	buf, err := steer(data, info)
	if err != nil {
		return nil, err
	}
	root, err := readWithBolt(buf, info.TxID, timeoutFor(len(buf)))
	if err != nil {
		return nil, err
	}
	return &DB{Root: root, Info: info}, nil
}

// ReadFrom reads a whole bbolt file from r (at most MaxSize bytes) and calls
// Read.
func ReadFrom(r io.Reader) (*DB, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("bbolt: reading database: %w", err)
	}
	return Read(data)
}

// Open reads the bbolt file at path, opened read-only, and calls Read. The
// file itself is never handed to bbolt.
func Open(path string) (*DB, error) {
	f, err := os.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	db, err := ReadFrom(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return db, nil
}

func timeoutFor(size int) time.Duration {
	return 10*time.Second + time.Duration(size>>20)*100*time.Millisecond
}

// steer returns the bytes to give bbolt. When validation chose the older meta
// page because the newer one's tree is damaged, it returns a copy in which the
// newer meta page's magic is cleared, so bbolt falls back to the validated
// one, and checks that bbolt's own selection now agrees.
func steer(data []byte, info Info) ([]byte, error) {
	var metas [2]meta
	for i := range metas {
		metas[i], _ = parseMeta(data, i*info.PageSize)
	}
	if selectMeta(metas) == info.Meta {
		return data, nil
	}
	buf := bytes.Clone(data)
	bad := 1 - info.Meta
	clear(buf[bad*info.PageSize+pageHeaderSize:][:4])
	ps, err := bboltPageSize(buf)
	for i := range metas {
		metas[i], _ = parseMeta(buf, i*info.PageSize)
	}
	if err != nil || ps != info.PageSize || selectMeta(metas) != info.Meta {
		return nil, fmt.Errorf("bbolt: cannot make bbolt use meta page %d", info.Meta)
	}
	return buf, nil
}

// readWithBolt opens a private copy of data with bbolt and copies the whole
// tree out. bbolt runs in its own goroutine with panic-on-fault enabled, so
// panics and SIGBUS/SIGSEGV from its mmap become errors.
func readWithBolt(data []byte, wantTxID uint64, timeout time.Duration) (*Bucket, error) {
	path, f, cleanup, err := privateCopy(data)
	if err != nil {
		return nil, err
	}
	type result struct {
		root *Bucket
		err  error
	}
	done := make(chan result, 1)
	go func() {
		var res result
		handedOver := false
		defer func() {
			if r := recover(); r != nil {
				res = result{err: fmt.Errorf("bbolt: failed on this database: %v", r)}
			}
			if !handedOver {
				f.Close()
			}
			cleanup()
			done <- res
		}()
		debug.SetPanicOnFault(true)
		opts := &bolt.Options{
			ReadOnly:     true,
			Timeout:      time.Second, // flock on a private file never waits; be safe anyway
			NoStatistics: true,
			OpenFile: func(string, int, os.FileMode) (*os.File, error) {
				handedOver = true
				return f, nil
			},
		}
		db, err := bolt.Open(path, 0o400, opts)
		if err != nil {
			res.err = fmt.Errorf("bbolt: open: %w", err)
			return
		}
		defer db.Close()
		res.err = db.View(func(tx *bolt.Tx) error {
			if got := uint64(tx.ID()); got != wantTxID {
				return fmt.Errorf("bbolt: chose txid %d, validated txid %d", got, wantTxID)
			}
			root := newBucket(0)
			// Not tx.ForEach: it hands out nil buckets for plain values,
			// which a damaged root page may hold.
			err := copyBucket(tx.Cursor(), tx.Bucket, root)
			res.root = root
			return err
		})
		if res.err != nil {
			res.root = nil
		}
	}()
	select {
	case res := <-done:
		return res.root, res.err
	case <-time.After(timeout):
		// The goroutine cannot be stopped; it is abandoned with its copy.
		return nil, fmt.Errorf("bbolt: %w after %v", ErrTimeout, timeout)
	}
}

func copyBucket(c *bolt.Cursor, open func([]byte) *bolt.Bucket, out *Bucket) error {
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v != nil {
			out.values[string(k)] = bytes.Clone(v)
			continue
		}
		sub := open(k)
		if sub == nil {
			return fmt.Errorf("bbolt: bucket entry %q cannot be opened", clip(k))
		}
		child := newBucket(sub.Sequence())
		out.buckets[string(k)] = child
		if err := copyBucket(sub.Cursor(), sub.Bucket, child); err != nil {
			return fmt.Errorf("%q: %w", clip(k), err)
		}
	}
	return nil
}
