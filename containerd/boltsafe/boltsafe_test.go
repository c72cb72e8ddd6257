package boltsafe

import (
	"bytes"
	"errors"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cosMetaDB is containerd 1.6.20's meta.db from the cos-node fixture disk.
const cosMetaDB = "../testdata/cos/meta.db"

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sharedDir returns ../shared next to the module root, skipping when absent.
func sharedDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("module root not found")
		}
		dir = parent
	}
	shared := filepath.Join(dir, "..", "shared")
	if _, err := os.Stat(shared); err != nil {
		t.Skipf("shared test data not available: %v", err)
	}
	return shared
}

// readTimed runs Read and fails the test when it takes longer than limit
// twice in a row: a slow first run may be a loaded machine, a hang is not.
func readTimed(t testing.TB, data []byte, limit time.Duration) (*DB, error) {
	t.Helper()
	for try := 0; ; try++ {
		start := time.Now()
		db, err := Read(data)
		d := time.Since(start)
		if d <= limit {
			return db, err
		}
		if try == 1 {
			t.Errorf("Read took %v (limit %v) twice; err=%v", d, limit, err)
			return db, err
		}
	}
}

func TestReadCOSMetaDB(t *testing.T) {
	db, err := Read(readFile(t, cosMetaDB))
	if err != nil {
		t.Fatal(err)
	}
	if db.Info.TxID != 184 || db.Info.Meta != 0 || db.Info.PageSize != 4096 {
		t.Errorf("info = %+v, want meta 0 txid 184 page size 4096", db.Info)
	}
	if got := db.Root.Bucket("v1").Buckets(); !slicesEqual(got, []string{"default", "k8s.io"}) {
		t.Errorf("namespaces = %q", got)
	}
	if v := db.Root.Bucket("v1").Get("version"); !bytes.Equal(v, []byte{6}) {
		t.Errorf("v1/version = %x, want 06 (varint 3)", v)
	}
	ctrs := db.Root.Bucket("v1", "k8s.io", "containers").Buckets()
	if len(ctrs) != 5 {
		t.Errorf("k8s.io has %d containers, want 5", len(ctrs))
	}
	// Empty values (children/<key> = "") must survive as present keys.
	ch := db.Root.Bucket("v1", "default", "snapshots", "native", "sha256:fd5d1a442d95f534943cced007a7d2fbbad232372ed68644fd10d73b2e983cc1", "children")
	if !ch.Has("native-box") || len(ch.Get("native-box")) != 0 {
		t.Errorf("children/native-box missing or not empty: %v", ch.Keys())
	}
	if db.Info.Keys == 0 || db.Info.Buckets < 100 {
		t.Errorf("counts look wrong: %+v", db.Info)
	}
}

func slicesEqual(a, b []string) bool {
	return strings.Join(a, "\x00") == strings.Join(b, "\x00")
}

// TestReadRealWorld reads every bbolt file of the shared real-world set.
func TestReadRealWorld(t *testing.T) {
	shared := sharedDir(t)
	files, _ := filepath.Glob(filepath.Join(shared, "realworld", "*", "*.db"))
	more, _ := filepath.Glob(filepath.Join(shared, "realworld", "*", "*", "*.db"))
	more2, _ := filepath.Glob(filepath.Join(shared, "realworld", "*", "*", "*", "*.db"))
	files = append(append(files, more...), more2...)
	if len(files) < 10 {
		t.Fatalf("found only %d real-world databases", len(files))
	}
	for _, f := range files {
		db, err := Open(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if db.Root.Bucket("v1") == nil {
			t.Errorf("%s: no v1 bucket", f)
		}
		if len(db.Info.Warnings) > 0 {
			t.Errorf("%s: warnings on a sound database: %q", f, db.Info.Warnings)
		}
	}
}

func TestTruncated(t *testing.T) {
	data := readFile(t, cosMetaDB)
	info, pages := pagesOf(t, data)
	// Bytes up to the end of the last reachable page are needed; free pages
	// after it are not.
	needed := 0
	for id, h := range pages {
		needed = max(needed, int(id+uint64(h.overflow)+1)*info.PageSize)
	}
	for _, size := range []int{0, 1, 100, 1023, 4095, 4096, 8191, 8192, 3 * 4096, needed / 2, needed - 4096, needed - 1} {
		_, err := readTimed(t, data[:size], time.Second)
		if err == nil {
			t.Errorf("truncated to %d bytes: no error", size)
		} else if size >= 8192 && !strings.Contains(err.Error(), "page") {
			t.Errorf("truncated to %d bytes: error does not name the page: %v", size, err)
		}
	}
	for _, size := range []int{needed, int(info.HighWater) * info.PageSize} {
		db, err := readTimed(t, data[:size], time.Second)
		if err != nil {
			t.Errorf("truncated to %d bytes (all reachable pages kept): %v", size, err)
		} else if len(db.Info.Warnings) == 0 && size < int(info.HighWater)*info.PageSize {
			t.Errorf("truncated to %d bytes: no warning", size)
		}
	}
}

func setMetaChecksum(data []byte, off int) {
	h := fnv.New64a()
	h.Write(data[off+pageHeaderSize : off+pageHeaderSize+metaChecksumOff])
	le.PutUint64(data[off+pageHeaderSize+metaChecksumOff:], h.Sum64())
}

// pagesOf lists the reachable pages of the meta page in use.
func pagesOf(t *testing.T, data []byte) (Info, map[uint64]pageHeader) {
	t.Helper()
	info, err := Validate(data)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := parseMeta(data, info.Meta*info.PageSize)
	pages := map[uint64]pageHeader{}
	var tmp Info
	if err := walkMetaVisit(data, uint64(info.PageSize), info.Meta*info.PageSize, m, &tmp, func(id uint64, h pageHeader) { pages[id] = h }); err != nil {
		t.Fatal(err)
	}
	return info, pages
}

func TestStructuralDamage(t *testing.T) {
	orig := readFile(t, cosMetaDB)
	info, pages := pagesOf(t, orig)
	ps := info.PageSize
	m, _ := parseMeta(orig, info.Meta*ps)
	rootOff := int(m.root) * ps

	// A leaf element of the root page that is a bucket with its own root page.
	var bucketElem = -1
	rootHdr := readPageHeader(orig[rootOff:])
	for i := 0; i < int(rootHdr.count); i++ {
		e := orig[rootOff+pageHeaderSize+i*leafElemSize:]
		if le.Uint32(e)&leafFlagBucket != 0 {
			pos, ks := le.Uint32(e[4:]), le.Uint32(e[8:])
			voff := rootOff + pageHeaderSize + i*leafElemSize + int(pos) + int(ks)
			if le.Uint64(orig[voff:]) != 0 {
				bucketElem = voff
				break
			}
		}
	}
	if bucketElem < 0 {
		t.Fatal("no non-inline bucket in the root page")
	}
	var leafID, branchID uint64
	for id, h := range pages {
		if h.flags == flagLeaf && h.count >= 2 && id != m.root && (leafID == 0 || id < leafID) {
			leafID = id
		}
		if h.flags == flagBranch && (branchID == 0 || id < branchID) {
			branchID = id
		}
	}
	if leafID == 0 || branchID == 0 {
		t.Fatalf("fixture lacks a leaf (%d) or a branch page (%d)", leafID, branchID)
	}
	branchChild := int(branchID)*ps + pageHeaderSize + 8 // first element's pgid

	tests := []struct {
		name    string
		mutate  func(d []byte)
		wantErr string // substring; "" means the read must succeed
		check   func(t *testing.T, db *DB)
	}{
		{"bucket cycle", func(d []byte) { le.PutUint64(d[bucketElem:], m.root) }, "reached twice", nil},
		{"page points at meta", func(d []byte) { le.PutUint64(d[bucketElem:], 1) }, "pointer to meta page", nil},
		{"page beyond file", func(d []byte) { le.PutUint64(d[bucketElem:], 1<<40) }, "high-water", nil},
		{"page header id", func(d []byte) { le.PutUint64(d[int(leafID)*ps:], leafID+1) }, "page header says", nil},
		{"page type", func(d []byte) { le.PutUint16(d[int(leafID)*ps+8:], flagFreelist) }, "freelist page", nil},
		{"element count", func(d []byte) { le.PutUint16(d[int(leafID)*ps+10:], 0xffff) }, "do not fit", nil},
		{"key offset", func(d []byte) { le.PutUint32(d[int(leafID)*ps+pageHeaderSize+4:], 0xfffffff0) }, "outside", nil},
		{"branch cycle", func(d []byte) { le.PutUint64(d[branchChild:], branchID) }, "reached twice", nil},
		{"branch to sibling", func(d []byte) { le.PutUint64(d[branchChild:], le.Uint64(d[branchChild+branchElemSize:])) }, "separator", nil},
		{"duplicate branch separator", func(d []byte) {
			e := d[int(branchID)*ps+pageHeaderSize:] // second separator -> first key
			le.PutUint32(e[branchElemSize:], le.Uint32(e[0:])-branchElemSize)
			le.PutUint32(e[branchElemSize+4:], le.Uint32(e[4:]))
		}, "separator", nil},
		{"empty branch", func(d []byte) { le.PutUint16(d[int(branchID)*ps+10:], 0) }, "branch page without elements", nil},
		{"overflow count", func(d []byte) { le.PutUint32(d[int(leafID)*ps+12:], 1<<30) }, "overflow", nil},
		{"unsorted keys", func(d []byte) {
			e := d[int(leafID)*ps+pageHeaderSize:]
			copy(e[16:32], e[0:16]) // second element = first (same key offset shifted by 16)
			le.PutUint32(e[20:], le.Uint32(e[4:])-16)
		}, "not above the previous key", nil},
		{"overlapping inline buckets", func(d []byte) { writeNestedInline(d[rootOff:rootOff+ps], m.root, 40) }, "overlapping entries", nil},
		{"both metas bad", func(d []byte) { d[pageHeaderSize] ^= 0xff; d[ps+pageHeaderSize] ^= 0xff }, "no usable meta page", nil},
		{"both checksums bad", func(d []byte) { d[pageHeaderSize+48] ^= 1; d[ps+pageHeaderSize+48] ^= 1 }, "checksum", nil},
		{"newest meta bad: older is used", func(d []byte) { d[info.Meta*ps+pageHeaderSize+60] ^= 1 }, "", func(t *testing.T, db *DB) {
			if db.Info.Meta == info.Meta || db.Info.TxID != info.TxID-1 {
				t.Errorf("used meta %d txid %d, want the other meta, txid %d", db.Info.Meta, db.Info.TxID, info.TxID-1)
			}
			if !strings.Contains(db.Info.OtherMeta, "checksum") {
				t.Errorf("OtherMeta = %q", db.Info.OtherMeta)
			}
		}},
		{"newest meta tree bad: older tree is used", func(d []byte) {
			off := info.Meta * ps
			le.PutUint64(d[off+pageHeaderSize+16:], m.freelist) // root -> freelist page
			setMetaChecksum(d, off)
		}, "", func(t *testing.T, db *DB) {
			if db.Info.Meta == info.Meta || len(db.Info.Warnings) == 0 || !strings.Contains(db.Info.OtherMeta, "page tree invalid") {
				t.Errorf("info = %+v, want fallback to the older meta with a warning", db.Info)
			}
			if db.Root.Bucket("v1", "k8s.io", "containers") == nil {
				t.Error("older tree not readable")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := bytes.Clone(orig)
			tt.mutate(d)
			db, err := readTimed(t, d, time.Second)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if tt.check != nil {
					tt.check(t, db)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not mention %q", err, tt.wantErr)
			}
			t.Log(err)
		})
	}
}

// TestBothMetasInvalidIs checks errors.Is on the sentinel.
func TestBothMetasInvalidIs(t *testing.T) {
	d := bytes.Clone(readFile(t, cosMetaDB))
	clear(d[:2*4096])
	_, err := Read(d)
	if !errors.Is(err, ErrBothMetasInvalid) {
		t.Errorf("err = %v, want ErrBothMetasInvalid", err)
	}
}

// mutate applies one deterministic random corruption. The kinds mimic what
// damaged evidence shows: bit flips, overwritten words, zeroed or copied
// blocks, truncation.
func mutate(r *rand.Rand, d []byte, used int) []byte {
	pos := func() int { return r.IntN(used) }
	switch r.IntN(7) {
	case 0: // bit flip
		p := pos()
		d[p] ^= 1 << r.IntN(8)
	case 1: // random byte
		d[pos()] = byte(r.Uint32())
	case 2: // 64-bit word: a plausible small page id or garbage
		p := pos() &^ 7
		if p+8 <= len(d) {
			if r.IntN(2) == 0 {
				le.PutUint64(d[p:], uint64(r.IntN(used/4096+4)))
			} else {
				le.PutUint64(d[p:], r.Uint64())
			}
		}
	case 3: // zeroed 512-byte sector
		p := pos() &^ 511
		clear(d[p:min(p+512, len(d))])
	case 4: // one page copied over another
		a, b := r.IntN(used/4096)*4096, r.IntN(used/4096)*4096
		copy(d[a:a+4096], d[b:b+4096])
	case 5: // 16-bit field inside a page header (count, flags)
		p := r.IntN(used/4096)*4096 + 8 + 2*r.IntN(4)
		le.PutUint16(d[p:], uint16(r.Uint32()))
	case 6: // truncation
		return d[:r.IntN(used)]
	}
	return d
}

// TestMutations reads a few hundred damaged copies of a real meta.db: each
// must finish within a second, without a panic escaping, with either an
// error or a tree.
func TestMutations(t *testing.T) {
	orig := readFile(t, cosMetaDB)
	info, err := Validate(orig)
	if err != nil {
		t.Fatal(err)
	}
	used := int(info.HighWater) * info.PageSize
	r := rand.New(rand.NewPCG(1, 2))
	var nErr, nOK, nFallback int
	kinds := map[string]int{}
	n := 400
	if testing.Short() {
		n = 100
	}
	for i := 0; i < n; i++ {
		d := bytes.Clone(orig)
		for range 1 + r.IntN(3) {
			d = mutate(r, d, min(used, len(d)))
			if len(d) < 4096 {
				break
			}
		}
		db, err := readTimed(t, d, time.Second)
		if err != nil {
			nErr++
			msg := err.Error()
			if i := strings.Index(msg, ":"); i > 0 {
				msg = msg[:i]
			}
			kinds[msg]++
			continue
		}
		nOK++
		if db.Info.Meta != info.Meta {
			nFallback++
		}
	}
	t.Logf("%d mutations: %d errors, %d read (%d on the older meta page); error kinds %v", n, nErr, nOK, nFallback, kinds)
	if nErr == 0 {
		t.Error("no mutation was detected")
	}
}

// writeNestedInline overwrites a page with a leaf whose two bucket elements
// share one inline value, which again holds two elements sharing the next
// value, levels deep: 2^levels paths through few bytes.
func writeNestedInline(page []byte, id uint64, levels int) {
	clear(page)
	// Innermost: bucket header + empty inline leaf page.
	v := make([]byte, bucketHeaderSize+pageHeaderSize)
	le.PutUint16(v[bucketHeaderSize+8:], flagLeaf)
	nested := func(hdr []byte, inner []byte) []byte {
		// hdr is bucketHeaderSize bytes (nil for the page itself).
		b := append([]byte(nil), hdr...)
		base := len(b)
		b = append(b, make([]byte, pageHeaderSize+2*leafElemSize)...)
		le.PutUint16(b[base+8:], flagLeaf)
		le.PutUint16(b[base+10:], 2)
		b = append(b, 'z', 'a') // key 1 = "za", key 0 = "a": both end where inner starts
		end := len(b)
		for i, ks := range []int{1, 2} {
			e := base + pageHeaderSize + i*leafElemSize
			le.PutUint32(b[e:], leafFlagBucket)
			le.PutUint32(b[e+4:], uint32(end-ks-e))
			le.PutUint32(b[e+8:], uint32(ks))
			le.PutUint32(b[e+12:], uint32(len(inner)))
		}
		return append(b, inner...)
	}
	for range levels {
		v = nested(make([]byte, bucketHeaderSize), v)
	}
	p := nested(nil, v)
	le.PutUint64(p, id)
	copy(page, p)
}
