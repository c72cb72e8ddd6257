package ext4_test

// Helpers shared by the conformance tests and benchmarks: finding the
// fixtures, decompressing images sparsely, and loading the expectations that
// testdata/images/ext4/make-ext4.py wrote with e2fsprogs.

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctrlift/ctrlift/image/ext4"
	"github.com/ctrlift/ctrlift/internal/testutil"
	"github.com/klauspost/compress/zstd"
)

// moduleRoot is the directory holding go.mod.
func moduleRoot(t testing.TB) string { return testutil.RepoRoot(t) }

// ext4FixtureDir holds the committed images and their expectations.
func ext4FixtureDir(t testing.TB) string {
	return filepath.Join(moduleRoot(t), "testdata", "images", "ext4")
}

// sharedFixture returns ../shared/<rel> beside the repository, skipping the
// test when it is absent.
func sharedFixture(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join(moduleRoot(t), "..", "shared", filepath.FromSlash(rel))
	if _, err := os.Stat(p); err != nil {
		t.Skipf("shared fixture not available: %v", err)
	}
	return p
}

// needTools skips the test unless every named program is on PATH.
func needTools(t testing.TB, names ...string) { testutil.NeedTools(t, names...) }

// decompressZstd writes the zstd stream in src to dst, leaving runs of
// zeros as holes: the images are mostly empty and the COS disk is 5 GiB.
func decompressZstd(t testing.TB, src, dst string) int64 { return testutil.DecompressZstd(t, src, dst) }

// openFixtureImage decompresses testdata/images/ext4/<name>.img.zst into a
// temporary directory and opens it.
func openFixtureImage(t testing.TB, name string) *ext4.FS {
	t.Helper()
	dst := filepath.Join(t.TempDir(), name+".img")
	decompressZstd(t, filepath.Join(ext4FixtureDir(t), name+".img.zst"), dst)
	fsys, err := ext4.Open(dst)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	t.Cleanup(func() { fsys.Close() })
	return fsys
}

// expectDoc is one NAME.json written by make-ext4.py.
type expectDoc struct {
	Name      string                     `json:"name"`
	BlockSize int64                      `json:"block_size"`
	InodeSize int                        `json:"inode_size"`
	Features  []string                   `json:"features"`
	Facts     map[string]json.RawMessage `json:"facts"`
	Entries   []expectEntry              `json:"entries"`
}

type expectEntry struct {
	Path      string            `json:"path"`
	PathB64   []byte            `json:"path_b64"` // names that are not UTF-8
	Ino       uint32            `json:"ino"`
	Type      string            `json:"type"` // file dir symlink char block fifo socket
	Mode      uint32            `json:"mode"` // raw st_mode
	Uid       uint32            `json:"uid"`
	Gid       uint32            `json:"gid"`
	Nlink     uint32            `json:"nlink"`
	Size      int64             `json:"size"`
	SHA256    string            `json:"sha256"`   // whole content; absent for huge sparse files
	Segments  []segment         `json:"segments"` // data ranges of sparse files; the rest is zeros
	Target    *string           `json:"target"`
	TargetB64 []byte            `json:"target_b64"`
	Rdev      *[2]uint32        `json:"rdev"`
	Xattrs    map[string][]byte `json:"xattrs"`
	Atime     [2]int64          `json:"atime"` // [seconds, nanoseconds]
	Mtime     [2]int64          `json:"mtime"`
	Ctime     [2]int64          `json:"ctime"`
	Crtime    *[2]int64         `json:"crtime"`
	Source    string            `json:"source"` // "mke2fs" for lost+found
}

func (e *expectEntry) name() string {
	if e.PathB64 != nil {
		return string(e.PathB64)
	}
	return e.Path
}

// segment is [offset, length, sha256] of one data range.
type segment struct {
	Off, Len int64
	SHA256   string
}

func (s *segment) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	if len(raw) != 3 {
		return fmt.Errorf("segment %s: want [off, len, sha256]", b)
	}
	if err := json.Unmarshal(raw[0], &s.Off); err != nil {
		return err
	}
	if err := json.Unmarshal(raw[1], &s.Len); err != nil {
		return err
	}
	return json.Unmarshal(raw[2], &s.SHA256)
}

// loadExpect reads <name>.json (or .json.zst) from the fixture directory.
func loadExpect(t testing.TB, name string) *expectDoc {
	t.Helper()
	return loadExpectFrom(t, ext4FixtureDir(t), name)
}

func loadExpectFrom(t testing.TB, dir, name string) *expectDoc {
	t.Helper()
	base := filepath.Join(dir, name+".json")
	var r io.Reader
	if f, err := os.Open(base); err == nil {
		defer f.Close()
		r = f
	} else {
		f, err := os.Open(base + ".zst")
		if err != nil {
			t.Fatalf("no expectation for %s: %v", name, err)
		}
		defer f.Close()
		dec, err := zstd.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		defer dec.Close()
		r = dec
	}
	var doc expectDoc
	if err := json.NewDecoder(r).Decode(&doc); err != nil {
		t.Fatalf("%s expectation: %v", name, err)
	}
	if len(doc.Entries) == 0 {
		t.Fatalf("%s expectation has no entries", name)
	}
	return &doc
}

// fixtureImageNames lists the committed images (NAME.img.zst with NAME.json[.zst]).
func fixtureImageNames(t testing.TB) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(ext4FixtureDir(t), "*.img.zst"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range m {
		names = append(names, strings.TrimSuffix(filepath.Base(p), ".img.zst"))
	}
	return names
}

// errLimiter stops a test from printing thousands of lines for one bug.
type errLimiter struct {
	t   testing.TB
	n   int
	max int
}

func (l *errLimiter) Errorf(format string, args ...any) {
	l.t.Helper()
	l.n++
	if l.n <= l.max {
		l.t.Errorf(format, args...)
	} else if l.n == l.max+1 {
		l.t.Errorf("(further errors suppressed)")
	}
}
