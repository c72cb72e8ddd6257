package ewf

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"encoding/hex"
	"io"
	"sync"
)

// Check is the outcome of comparing a computed hash with the stored one.
type Check int

const (
	CheckAbsent   Check = iota // the image stores no such hash
	CheckMatch                 // computed equals stored
	CheckMismatch              // computed differs from stored
)

func (c Check) String() string {
	switch c {
	case CheckAbsent:
		return "absent"
	case CheckMatch:
		return "match"
	case CheckMismatch:
		return "mismatch"
	}
	return "unknown"
}

// MarshalText makes JSON show the name.
func (c Check) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// Result is what Verify computed and how it compares with the hashes
// stored at acquisition.
type Result struct {
	Bytes      int64  `json:"bytes"`
	MD5        string `json:"md5"`  // computed, lower-case hex
	SHA1       string `json:"sha1"` // computed, lower-case hex
	StoredMD5  string `json:"stored_md5"`
	StoredSHA1 string `json:"stored_sha1"`
	MD5Check   Check  `json:"md5_check"`
	SHA1Check  Check  `json:"sha1_check"`
}

// OK reports that at least one stored hash exists and none differs.
func (r Result) OK() bool {
	return r.MD5Check != CheckMismatch && r.SHA1Check != CheckMismatch &&
		(r.MD5Check == CheckMatch || r.SHA1Check == CheckMatch)
}

// Verify reads the whole media, hashes it with MD5 and SHA-1 and compares
// them with the stored hashes. A hash mismatch is reported in the Result;
// an unreadable or corrupt chunk is an error (naming the chunk). progress,
// if not nil, is called after each block read.
func (img *Image) Verify(ctx context.Context, progress func(done, total int64)) (Result, error) {
	res := Result{StoredMD5: img.info.MD5, StoredSHA1: img.info.SHA1}
	total := img.size
	cs := img.chunkSize
	block := max((8<<20)/cs, 4*int64(img.workers)) * cs // whole chunks: decoded in parallel, no cache

	// Decoding the next block overlaps hashing this one.
	type piece struct {
		buf []byte
		n   int
		err error
	}
	free := make(chan []byte, 2)
	free <- make([]byte, block)
	free <- make([]byte, block)
	out := make(chan piece)
	stop := make(chan struct{})
	var reader sync.WaitGroup
	defer func() {
		close(stop)
		reader.Wait()
	}()
	reader.Go(func() {
		defer close(out)
		for off := int64(0); off < total; off += block {
			var buf []byte
			select {
			case buf = <-free:
			case <-stop:
				return
			}
			buf = buf[:min(block, total-off)]
			n, err := img.ReadAt(buf, off)
			if err == io.EOF && n == len(buf) {
				err = nil
			}
			select {
			case out <- piece{buf, n, err}:
			case <-stop:
				return
			}
			if err != nil {
				return
			}
		}
	})

	hm, hs := md5.New(), sha1.New()
	for pc := range out {
		if pc.err != nil {
			return res, pc.err
		}
		var both sync.WaitGroup
		both.Go(func() { hs.Write(pc.buf[:pc.n]) })
		hm.Write(pc.buf[:pc.n])
		both.Wait()
		res.Bytes += int64(pc.n)
		free <- pc.buf[:cap(pc.buf)]
		if progress != nil {
			progress(res.Bytes, total)
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
	}
	res.MD5 = hex.EncodeToString(hm.Sum(nil))
	res.SHA1 = hex.EncodeToString(hs.Sum(nil))
	res.MD5Check = compare(res.MD5, res.StoredMD5)
	res.SHA1Check = compare(res.SHA1, res.StoredSHA1)
	return res, nil
}

func compare(computed, stored string) Check {
	switch {
	case stored == "":
		return CheckAbsent
	case computed == stored:
		return CheckMatch
	}
	return CheckMismatch
}
