package xfs_test

// Helpers shared by the conformance tests and benchmarks: finding the
// fixtures, decompressing images sparsely, and loading the expectations that
// testdata/images/xfs/make-xfs.py wrote from a kernel mount (or, for v4,
// from the source tree and xfs_db).

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctrlift/ctrlift/image/xfs"
	"github.com/ctrlift/ctrlift/internal/testutil"
	"github.com/klauspost/compress/zstd"
)

// fixtureDir holds the committed images and their expectations.
func fixtureDir(t testing.TB) string {
	return filepath.Join(testutil.RepoRoot(t), "testdata", "images", "xfs")
}

// fixtureImagePath decompresses <dir>/<name>.img.zst once into the test
// cache shared by all test binaries (or uses <dir>/<name>.img when the
// generator left it raw). The file must not be written.
func fixtureImagePath(t testing.TB, dir, name string) string {
	t.Helper()
	raw := filepath.Join(dir, name+".img")
	if _, err := os.Stat(raw); err == nil {
		return raw
	}
	return testutil.Unzstd(t, filepath.Join(dir, name+".img.zst"))
}

func openFixture(t testing.TB, dir, name string) (*xfs.FS, string) {
	t.Helper()
	p := fixtureImagePath(t, dir, name)
	fsys, err := xfs.Open(p)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	t.Cleanup(func() { fsys.Close() })
	return fsys, p
}

// expectDoc is one NAME.json written by make-xfs.py.
type expectDoc struct {
	Name      string          `json:"name"`
	BlockSize int64           `json:"block_size"`
	Facts     expectFacts     `json:"facts"`
	Bulk      []expectBulk    `json:"bulk"`
	Entries   []*expectEntry  `json:"entries"`
	Mkfs      []string        `json:"mkfs"`
	Raw       json.RawMessage `json:"-"`
}

type expectFacts struct {
	DirForms   map[string]string `json:"dir_forms"`
	AttrForms  map[string]string `json:"attr_forms"`
	BmbtLevels map[string]int    `json:"bmbt_levels"`
	Log        string            `json:"log"`
}

// expectBulk describes generated names: Count hardlinks named
// Dir/fmt.Sprintf(Format, i), each like the entry Like.
type expectBulk struct {
	Dir    string `json:"dir"`
	Format string `json:"format"`
	Count  int    `json:"count"`
	Like   string `json:"like"`
}

type expectEntry struct {
	Path      string            `json:"path"`
	PathB64   []byte            `json:"path_b64"` // names that are not UTF-8
	Ino       uint64            `json:"ino"`
	Type      string            `json:"type"` // file dir symlink char block fifo socket
	Mode      uint32            `json:"mode"` // raw st_mode
	Uid       uint32            `json:"uid"`
	Gid       uint32            `json:"gid"`
	Nlink     uint32            `json:"nlink"`
	Size      int64             `json:"size"`
	SHA256    string            `json:"sha256"`
	Segments  []segment         `json:"segments"` // data ranges (SEEK_DATA/SEEK_HOLE); nil: one range, the whole file
	Target    *string           `json:"target"`
	TargetB64 []byte            `json:"target_b64"`
	Rdev      *[2]uint32        `json:"rdev"`
	Xattrs    map[string][]byte `json:"xattrs"`
	Atime     [2]int64          `json:"atime"`
	Mtime     [2]int64          `json:"mtime"`
	Ctime     [2]int64          `json:"ctime"`
	Crtime    *[2]int64         `json:"crtime"`
}

func (e *expectEntry) name() string {
	if e.PathB64 != nil {
		return string(e.PathB64)
	}
	return e.Path
}

func (e *expectEntry) target() string {
	if e.Target != nil {
		return *e.Target
	}
	return string(e.TargetB64)
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

// loadExpect reads <name>.json or <name>.json.zst from dir and expands the
// bulk entries.
func loadExpect(t testing.TB, dir, name string) *expectDoc {
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
	for _, b := range doc.Bulk {
		var like *expectEntry
		for _, e := range doc.Entries {
			if e.name() == b.Like {
				like = e
			}
		}
		if like == nil {
			t.Fatalf("%s: bulk entry like %q is not listed", name, b.Like)
		}
		for i := range b.Count {
			p := b.Dir + "/" + fmt.Sprintf(b.Format, i)
			if p == b.Like {
				continue
			}
			c := *like
			c.Path = p
			doc.Entries = append(doc.Entries, &c)
		}
	}
	return &doc
}

// fixtureNames lists the committed images (NAME.img.zst with NAME.json[.zst]).
func fixtureNames(t testing.TB, dir string) []string {
	t.Helper()
	var names []string
	for _, pat := range []string{"*.img.zst", "*.img"} {
		m, err := filepath.Glob(filepath.Join(dir, pat))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range m {
			names = append(names, strings.TrimSuffix(strings.TrimSuffix(filepath.Base(p), ".zst"), ".img"))
		}
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
