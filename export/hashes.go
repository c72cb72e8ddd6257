package export

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"strings"
)

// Hash is a digest algorithm for the records of a manifest or a diff.
type Hash string

const (
	SHA256 Hash = "sha256"
	MD5    Hash = "md5" // for hash sets that still key on it (NSRL, many IOC feeds)
	SHA1   Hash = "sha1"
)

func (h Hash) String() string { return string(h) }

// ParseHashes reads a comma-separated list such as "sha256,md5,sha1".
func ParseHashes(s string) ([]Hash, error) {
	var out []Hash
	seen := map[Hash]bool{}
	for _, f := range strings.Split(s, ",") {
		h := Hash(strings.ToLower(strings.TrimSpace(f)))
		switch h {
		case SHA256, MD5, SHA1:
		default:
			return nil, fmt.Errorf("unknown hash %q (want sha256, md5 or sha1)", f)
		}
		if !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	return out, nil
}

// fileHashes digests one file's contents with every algorithm asked for.
type fileHashes struct {
	algos []Hash
	hs    []hash.Hash
	w     io.Writer
}

func newFileHashes(algos []Hash) *fileHashes {
	if len(algos) == 0 {
		algos = []Hash{SHA256}
	}
	f := &fileHashes{algos: algos}
	var ws []io.Writer
	for _, a := range algos {
		var h hash.Hash
		switch a {
		case MD5:
			h = md5.New()
		case SHA1:
			h = sha1.New()
		default:
			h = sha256.New()
		}
		f.hs = append(f.hs, h)
		ws = append(ws, h)
	}
	f.w = io.MultiWriter(ws...)
	if len(ws) == 1 {
		f.w = ws[0]
	}
	return f
}

func (f *fileHashes) Reset() {
	for _, h := range f.hs {
		h.Reset()
	}
}

func (f *fileHashes) Write(p []byte) (int, error) { return f.w.Write(p) }

// Digests are a file's digests; empty for algorithms not asked for.
type Digests struct {
	SHA256, MD5, SHA1 string
}

func (f *fileHashes) sums() Digests {
	var d Digests
	for i, a := range f.algos {
		s := hex.EncodeToString(f.hs[i].Sum(nil))
		switch a {
		case MD5:
			d.MD5 = s
		case SHA1:
			d.SHA1 = s
		default:
			d.SHA256 = s
		}
	}
	return d
}

// set puts d into r.
func (r *Record) setDigests(d Digests) { r.SHA256, r.MD5, r.SHA1 = d.SHA256, d.MD5, d.SHA1 }

// digests reads them back from r.
func (r *Record) digests() Digests { return Digests{SHA256: r.SHA256, MD5: r.MD5, SHA1: r.SHA1} }
