package ewf

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/adler32"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSniff(t *testing.T) {
	for _, tc := range []struct {
		name string
		head []byte
		want bool
	}{
		{"E01", []byte("EVF\x09\x0d\x0a\xff\x00\x01\x01\x00"), true},
		{"Ex01", []byte("EVF2\x0d\x0a\x81\x00\x02\x01"), true},
		{"L01", []byte("LVF\x09\x0d\x0a\xff\x00"), true},
		{"Lx01", []byte("LEF2\x0d\x0a\x81\x00"), true},
		{"short", []byte("EVF\x09"), false},
		{"empty", nil, false},
		{"raw disk", make([]byte, 512), false},
		{"zstd", []byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0}, false},
	} {
		if got := Sniff(tc.head); got != tc.want {
			t.Errorf("Sniff(%s) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestSegmentName(t *testing.T) {
	for _, tc := range []struct {
		first string
		n     int
		want  string // "" for an error
	}{
		{"disk.E01", 1, "disk.E01"},
		{"disk.E01", 2, "disk.E02"},
		{"disk.E01", 99, "disk.E99"},
		{"disk.E01", 100, "disk.EAA"},
		{"disk.E01", 101, "disk.EAB"},
		{"disk.E01", 126, "disk.EBA"},
		{"disk.E01", 775, "disk.EZZ"},
		{"disk.E01", 776, "disk.FAA"},
		{"disk.E01", 100 + 22*676 - 1, "disk.ZZZ"},
		{"disk.E01", 100 + 22*676, ""},
		{"disk.e01", 100, "disk.eaa"},
		{"disk.s01", 12, "disk.s12"},
		{"a.b.E01", 3, "a.b.E03"},
		{"disk.raw", 1, "disk.raw"}, // a single segment may be named anything
		{"disk.raw", 2, ""},
		{"disk.E02", 2, ""},
		{"disk.101", 2, ""},
	} {
		got, err := segmentName(tc.first, tc.n)
		if tc.want == "" {
			if err == nil {
				t.Errorf("segmentName(%q, %d) = %q, want an error", tc.first, tc.n, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("segmentName(%q, %d) = %q, %v, want %q", tc.first, tc.n, got, err, tc.want)
		}
	}
}

func TestKindStrings(t *testing.T) {
	for _, tc := range []struct {
		got, want string
	}{
		{VariantE01.String(), "EWF-E01"},
		{VariantSMART.String(), "EWF-S01"},
		{Variant(9).String(), "Variant(9)"},
		{MediaFixed.String(), "fixed"},
		{MediaRemovable.String(), "removable"},
		{MediaOptical.String(), "optical"},
		{MediaType(0x42).String(), "unknown (0x42)"},
		{CompressionNone.String(), "none"},
		{CompressionFast.String(), "fast"},
		{CompressionBest.String(), "best"},
		{CompressionUnknown.String(), "unknown"},
		{CheckMatch.String(), "match"},
		{CheckMismatch.String(), "mismatch"},
		{CheckAbsent.String(), "absent"},
	} {
		if tc.got != tc.want {
			t.Errorf("String() = %q, want %q", tc.got, tc.want)
		}
	}
}

// TestCommittedFixture reads testdata/small.E01 (testdata/mkfixtures.sh),
// which needs no tool installed.
func TestCommittedFixture(t *testing.T) {
	for _, opt := range []Options{{}, {Workers: 1, CacheBytes: 1}, {Workers: 8, CacheBytes: 1 << 30}} {
		t.Run(fmt.Sprintf("workers=%d,cache=%d", opt.Workers, opt.CacheBytes), func(t *testing.T) {
			testCommittedFixture(t, opt)
		})
	}
}

func testCommittedFixture(t *testing.T, opt Options) {
	img, err := Open(filepath.Join("testdata", "small.E01"), opt)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	in := img.Info()
	t.Logf("%+v", in)
	for _, c := range []struct{ name, got, want string }{
		{"case", in.CaseNumber, "CASE-2024-001"},
		{"evidence", in.EvidenceNumber, "EV-001"},
		{"examiner", in.Examiner, "Ada Examiner"},
		{"description", in.Description, "Fixture disk für Tests"}, // from header2: header has only a code page
		{"notes", in.Notes, "notes: ünïcode ✓"},
		{"os", in.AcquiryOS, "Linux"},
		{"version", in.AcquirySoftwareVersion, "20140813"},
		{"md5", in.MD5, "4df9c672199c4a59bd8354266452e830"},
		{"sha1", in.SHA1, "0a38dbcb64ffb86be0fa695e98ee534dd4ff4b68"},
		{"acquired", in.AcquisitionDate.Format(time.RFC3339), "2026-12-02T13:39:29Z"},
		{"media", in.MediaType.String(), "removable"},
		{"compression", in.Compression.String(), "fast"},
		{"variant", in.Variant.String(), "EWF-E01"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if in.Physical || in.BytesPerSector != 512 || in.SectorCount != 131 || in.SectorsPerChunk != 16 ||
		in.ChunkSize != 8192 || in.ChunkCount != 9 || in.Segments != 1 || len(in.Warnings) != 0 {
		t.Errorf("geometry %+v", in)
	}
	if img.Size() != 67072 {
		t.Errorf("Size = %d", img.Size())
	}
	js, _ := json.Marshal(in)
	for _, want := range []string{`"variant":"EWF-E01"`, `"media_type":"removable"`, `"compression":"fast"`} {
		if !bytes.Contains(js, []byte(want)) {
			t.Errorf("JSON %s lacks %s", js, want)
		}
	}
	res, err := img.Verify(context.Background(), nil)
	if err != nil || !res.OK() || res.MD5Check != CheckMatch || res.SHA1Check != CheckMatch || res.Bytes != img.Size() {
		t.Fatalf("Verify = %+v, %v", res, err)
	}
	all := make([]byte, img.Size())
	if _, err := img.ReadAt(all, 0); err != nil {
		t.Fatal(err)
	}
	checkRandomReads(t, img, all, 300)
}

// checkRandomReads compares ReadAt of random ranges (crossing chunk and
// segment boundaries, and the end) with want.
func checkRandomReads(t *testing.T, img *Image, want []byte, n int) {
	t.Helper()
	size := int64(len(want))
	r := rand.New(rand.NewPCG(1, 2))
	for i := range n {
		off := r.Int64N(size)
		l := 1 + r.Int64N(min(size, 3*img.chunkSize))
		if i%10 == 0 {
			off = min(max(0, size-l+r.Int64N(2*l)-l/2), size) // around the end
		}
		p := make([]byte, l)
		got, err := img.ReadAt(p, off)
		wantN := min(l, max(size-off, 0))
		switch {
		case off+l <= size && err != nil:
			t.Fatalf("ReadAt(%d, %d): %v", l, off, err)
		case off+l > size && err != io.EOF:
			t.Fatalf("ReadAt(%d, %d) past the end: err %v, want io.EOF", l, off, err)
		case int64(got) != wantN:
			t.Fatalf("ReadAt(%d, %d) = %d bytes, want %d", l, off, got, wantN)
		}
		if got > 0 && !bytes.Equal(p[:got], want[off:off+int64(got)]) {
			t.Fatalf("ReadAt(%d, %d): bytes differ from the raw image", l, off)
		}
	}
}

// TestReadMatchesRaw acquires one raw image with ewfacquire in many forms
// and compares what the reader returns with the raw bytes.
func TestReadMatchesRaw(t *testing.T) {
	needTool(t, "ewfacquire")
	raw := mixedRaw(3<<20+7*512, 1)
	rawPath := rawFile(t, "mixed.raw", raw)
	sum := sha256.Sum256(raw)
	for _, tc := range []struct {
		name     string
		args     []string
		segments int // at least
		variant  Variant
	}{
		{"fast-segments", []string{"-c", "deflate:fast", "-S", "1MiB", "-d", "sha1"}, 2, VariantE01},
		{"none-segments", []string{"-c", "none", "-S", "1MiB"}, 3, VariantE01},
		{"best", []string{"-c", "deflate:best"}, 1, VariantE01},
		{"empty-block", []string{"-c", "empty-block", "-S", "1MiB"}, 2, VariantE01},
		{"chunk-16-sectors", []string{"-c", "deflate:fast", "-b", "16", "-S", "1MiB"}, 2, VariantE01},
		{"chunk-128-sectors", []string{"-c", "deflate:fast", "-b", "128"}, 1, VariantE01},
		{"chunk-1024-sectors", []string{"-c", "none", "-b", "1024", "-S", "1MiB"}, 3, VariantE01},
		{"encase1", []string{"-f", "encase1", "-c", "deflate:fast", "-S", "1MiB"}, 2, VariantE01},
		{"encase2", []string{"-f", "encase2", "-c", "deflate:fast", "-S", "1MiB"}, 2, VariantE01},
		{"encase5", []string{"-f", "encase5", "-c", "deflate:best"}, 1, VariantE01},
		{"encase7", []string{"-f", "encase7", "-c", "deflate:fast", "-S", "1MiB"}, 2, VariantE01},
		{"ftk", []string{"-f", "ftk", "-c", "deflate:fast", "-S", "1MiB"}, 2, VariantE01},
		{"linen6", []string{"-f", "linen6", "-c", "deflate:fast", "-S", "1MiB"}, 2, VariantE01},
		{"smart", []string{"-f", "smart", "-c", "deflate:fast", "-S", "1MiB"}, 2, VariantSMART},
		{"ewf", []string{"-f", "ewf", "-c", "deflate:fast", "-S", "1MiB"}, 2, VariantSMART},
		{"ewfx", []string{"-f", "ewfx", "-c", "deflate:fast", "-S", "1MiB"}, 2, VariantE01},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first := acquire(t, rawPath, tc.args...)
			img, err := Open(first, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close()
			in := img.Info()
			if img.Size() != int64(len(raw)) || in.Segments < tc.segments || in.Variant != tc.variant {
				t.Fatalf("size %d segments %d variant %v, want %d, ≥%d, %v", img.Size(), in.Segments, in.Variant, len(raw), tc.segments, tc.variant)
			}
			h := sha256.New()
			if _, err := io.Copy(h, io.NewSectionReader(img, 0, img.Size())); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(h.Sum(nil), sum[:]) {
				t.Fatal("sha256 of the media differs from the raw image")
			}
			checkRandomReads(t, img, raw, 200)
			res, err := img.Verify(context.Background(), nil)
			if err != nil || !res.OK() || res.MD5Check != CheckMatch {
				t.Fatalf("Verify = %+v, %v", res, err)
			}
		})
	}
}

// ewfinfoValues parses `ewfinfo` output into label → value.
func ewfinfoValues(t *testing.T, path string) map[string]string {
	t.Helper()
	cmd := exec.Command("ewfinfo", path)
	cmd.Env = append(os.Environ(), "LANG=C.UTF-8")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ewfinfo: %v", err)
	}
	m := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), ":"); ok && v != "" {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

// TestInfoMatchesEwfinfo compares Info with what libewf's ewfinfo reads.
func TestInfoMatchesEwfinfo(t *testing.T) {
	needTool(t, "ewfacquire")
	needTool(t, "ewfinfo")
	rawPath := rawFile(t, "mixed.raw", mixedRaw(3<<20+7*512, 1))
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"fixed-physical", []string{"-c", "deflate:fast", "-S", "1MiB", "-d", "sha1", "-C", "CASE-42", "-D", "a description", "-e", "Jane Examiner", "-E", "EV-7", "-N", "some notes"}},
		{"removable-logical", []string{"-c", "deflate:best", "-b", "128", "-m", "removable", "-M", "logical", "-C", "Fall 17/ä", "-N", "Notiz: äöü"}},
		{"optical", []string{"-c", "none", "-m", "optical", "-P", "2048", "-b", "16", "-E", "DVD-1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first := acquire(t, rawPath, tc.args...)
			img, err := Open(first, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close()
			in := img.Info()
			ei := ewfinfoValues(t, first)
			mediaType := map[MediaType]string{MediaFixed: "fixed disk", MediaRemovable: "removable disk", MediaOptical: "optical disk (CD/DVD/BD)"}[in.MediaType]
			compression := map[Compression]string{CompressionNone: "no compression", CompressionFast: "good (fast) compression", CompressionBest: "best compression"}[in.Compression]
			physical := map[bool]string{true: "yes", false: "no"}[in.Physical]
			for _, c := range []struct{ label, got string }{
				{"Case number", in.CaseNumber},
				{"Description", in.Description},
				{"Examiner name", in.Examiner},
				{"Evidence number", in.EvidenceNumber},
				{"Notes", in.Notes},
				{"Operating system used", in.AcquiryOS},
				{"Software version used", in.AcquirySoftwareVersion},
				{"Acquisition date", in.AcquisitionDate.Local().Format("Mon Jan _2 15:04:05 2006")},
				{"System date", in.SystemDate.Local().Format("Mon Jan _2 15:04:05 2006")},
				{"Sectors per chunk", strconv.Itoa(int(in.SectorsPerChunk))},
				{"Error granularity", strconv.Itoa(int(in.ErrorGranularity))},
				{"Bytes per sector", strconv.Itoa(int(in.BytesPerSector))},
				{"Number of sectors", strconv.FormatUint(in.SectorCount, 10)},
				{"Media type", mediaType},
				{"Is physical", physical},
				{"Compression level", compression},
				{"MD5", in.MD5},
				{"SHA1", in.SHA1},
			} {
				if want := ei[c.label]; c.got != want {
					t.Errorf("%s = %q, ewfinfo says %q", c.label, c.got, want)
				}
			}
			if m := regexp.MustCompile(`\((\d+) bytes\)`).FindStringSubmatch(ei["Media size"]); m == nil || m[1] != strconv.FormatInt(img.Size(), 10) {
				t.Errorf("Size %d, ewfinfo media size %q", img.Size(), ei["Media size"])
			}
		})
	}
}

// TestHeavyImage acquires the example node disk (667 MiB, GPT + ext4,
// mostly zeros; ewfacquire takes about 2 s here) and compares the whole
// media with the raw.
func TestHeavyImage(t *testing.T) {
	if testing.Short() {
		t.Skip("heavy: acquires and reads a 667 MiB disk")
	}
	needTool(t, "ewfacquire")
	raw := filepath.Join(fixtureDir, "wordpress-node.raw")
	if err := decompressZstd(filepath.Join("..", "..", "testdata", "images", "example", "wordpress-node.raw.zst"), raw); err != nil {
		t.Skipf("example image: %v", err)
	}
	start := time.Now()
	first := acquire(t, raw, "-c", "empty-block", "-S", "4MiB") // zero chunks deflated, the rest stored: 5 segments
	t.Logf("ewfacquire: %v", time.Since(start))
	img, err := Open(first, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	f, err := os.Open(raw)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	if img.Size() != st.Size() {
		t.Fatalf("Size %d, raw %d", img.Size(), st.Size())
	}
	// Compare in blocks rather than hash: it names the first difference.
	start = time.Now()
	a, b := make([]byte, 4<<20), make([]byte, 4<<20)
	for off := int64(0); off < st.Size(); off += int64(len(a)) {
		n, err := img.ReadAt(a, off)
		if err != nil && err != io.EOF {
			t.Fatal(err)
		}
		m, _ := f.ReadAt(b, off)
		if n != m || !bytes.Equal(a[:n], b[:m]) {
			t.Fatalf("media differs from the raw in the 4 MiB at %d", off)
		}
	}
	t.Logf("read %d MiB in %v, %d segments", st.Size()>>20, time.Since(start), img.Info().Segments)
	// Verify is tested on the small images: hashing 667 MiB twice more
	// would double this test's time.
}

// TestConcurrentReads has many goroutines read one image at once.
func TestConcurrentReads(t *testing.T) {
	needTool(t, "ewfacquire")
	raw := mixedRaw(2<<20, 3)
	first := acquire(t, rawFile(t, "concurrent.raw", raw), "-c", "deflate:fast", "-b", "16", "-S", "1MiB")
	img, err := Open(first, Options{CacheBytes: 64 << 10}) // small: eviction under load
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 9))
			for range 200 {
				off := r.Int64N(int64(len(raw)))
				p := make([]byte, 1+r.IntN(20000))
				n, err := img.ReadAt(p, off)
				if err != nil && err != io.EOF {
					errs <- err
					return
				}
				if !bytes.Equal(p[:n], raw[off:off+int64(n)]) {
					errs <- fmt.Errorf("goroutine %d: bytes differ at %d", g, off)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestSmallSequentialReads reads the media in small steps, as a
// filesystem reader does, which takes the readahead path.
func TestSmallSequentialReads(t *testing.T) {
	needTool(t, "ewfacquire")
	raw := mixedRaw(3<<20+7*512, 1)
	first := acquire(t, rawFile(t, "mixed.raw", raw), "-c", "deflate:fast", "-S", "1MiB", "-d", "sha1")
	img, err := Open(first, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	var got bytes.Buffer
	if _, err := io.CopyBuffer(&got, io.NewSectionReader(img, 0, img.Size()), make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), raw) {
		t.Fatal("bytes differ from the raw image")
	}
}

func TestOpenRefusesOtherFormats(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name        string
		head        string
		unsupported bool
	}{
		{"ex01.Ex01", "EVF2\x0d\x0a\x81\x00\x02\x01", true},
		{"l01.L01", "LVF\x09\x0d\x0a\xff\x00\x01\x01\x00\x00\x00", true},
		{"lx01.Lx01", "LEF2\x0d\x0a\x81\x00\x02\x01", true},
		{"raw.E01", strings.Repeat("\x00", 512), false},
		{"tiny.E01", "EVF", false},
	} {
		p := filepath.Join(dir, tc.name)
		if err := os.WriteFile(p, append([]byte(tc.head), make([]byte, 200)...), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Open(p, Options{})
		if err == nil {
			t.Errorf("%s: opened", tc.name)
			continue
		}
		if errors.Is(err, errors.ErrUnsupported) != tc.unsupported {
			t.Errorf("%s: %v: unsupported = %v, want %v", tc.name, err, errors.Is(err, errors.ErrUnsupported), tc.unsupported)
		}
		var fe *FormatError
		if !errors.As(err, &fe) {
			t.Errorf("%s: %v is not a FormatError", tc.name, err)
		}
	}
}

// TestSymlinks: the first segment may be a symlink (its target's directory
// holds the set); a later segment may not lead out of that directory.
func TestSymlinks(t *testing.T) {
	needTool(t, "ewfacquire")
	first := copySet(t, acquire(t, rawFile(t, "mixed.raw", mixedRaw(3<<20+7*512, 1)), "-c", "none", "-S", "1MiB"))
	dir := filepath.Dir(first)

	link := filepath.Join(t.TempDir(), "link.E01")
	if err := os.Symlink(first, link); err != nil {
		t.Fatal(err)
	}
	img, err := Open(link, Options{})
	if err != nil {
		t.Fatalf("open through a symlink to the first segment: %v", err)
	}
	img.Close()

	// Move E02 out and leave a symlink to it.
	e02 := filepath.Join(dir, "img.E02")
	outside := filepath.Join(t.TempDir(), "img.E02")
	if err := os.Rename(e02, outside); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, e02); err != nil {
		t.Fatal(err)
	}
	if img, err := Open(first, Options{}); err == nil {
		img.Close()
		t.Fatal("opened a set whose segment 2 is a symlink out of its directory")
	} else {
		t.Logf("refused: %v", err)
	}
}

func TestReadAfterClose(t *testing.T) {
	img, err := Open(filepath.Join("testdata", "small.E01"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	img.Close()
	if _, err := img.ReadAt(make([]byte, 10), 0); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("ReadAt after Close: %v", err)
	}
	if err := img.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestVerifyCancel(t *testing.T) {
	img, err := Open(filepath.Join("testdata", "small.E01"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := 0
	if _, err := img.Verify(ctx, func(done, total int64) { calls++ }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Verify with a cancelled context: %v", err)
	}
}

func TestParseHeaderDate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		{"1142163845", time.Unix(1142163845, 0).UTC()},
		{"2002 3 4 10 19 59", time.Date(2002, 3, 4, 10, 19, 59, 0, time.Local)},
		{"Wed Dec  2 13:31:50 2026 UTC", time.Date(2026, 12, 2, 13, 31, 50, 0, time.UTC)},
		{"0", time.Time{}},
		{"", time.Time{}},
		{"2002 13 4 10 19 59", time.Time{}},
		{"yesterday", time.Time{}},
	} {
		if got := parseHeaderDate(tc.in); !got.Equal(tc.want) {
			t.Errorf("parseHeaderDate(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// TestVerifyMismatch changes the stored hashes (keeping their section
// checksums right): Verify reports the mismatch, as a result, not an error.
func TestVerifyMismatch(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "small.E01"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		fixSum    bool
		md5, sha1 Check
		warning   bool
	}{
		{"hashes changed", true, CheckMismatch, CheckMismatch, false},
		{"hash sections damaged", false, CheckAbsent, CheckAbsent, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := bytes.Clone(b)
			for _, s := range listSections(t, d) {
				size, sum := hashSize, hashChecksum
				switch s.typ {
				case secHash:
				case secDigest:
					size, sum = digestSize, digestChecksum
					d[s.dataOffset+digestSHA1] ^= 1
				default:
					continue
				}
				d[s.dataOffset+hashMD5] ^= 1
				if tc.fixSum {
					p := d[s.dataOffset : s.dataOffset+int64(size)]
					binary.LittleEndian.PutUint32(p[sum:], adler32.Checksum(p[:sum]))
				}
			}
			p := filepath.Join(t.TempDir(), "x.E01")
			if err := os.WriteFile(p, d, 0o644); err != nil {
				t.Fatal(err)
			}
			img, err := Open(p, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close()
			var calls int
			var last int64
			res, err := img.Verify(context.Background(), func(done, total int64) {
				calls++
				if done < last || total != img.Size() {
					t.Errorf("progress(%d, %d) after %d", done, total, last)
				}
				last = done
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.MD5Check != tc.md5 || res.SHA1Check != tc.sha1 || res.OK() || calls == 0 || last != img.Size() {
				t.Fatalf("Verify = %+v (ok %v), %d progress calls, want md5 %v sha1 %v", res, res.OK(), calls, tc.md5, tc.sha1)
			}
			if res.MD5 != "4df9c672199c4a59bd8354266452e830" {
				t.Errorf("computed MD5 %s", res.MD5)
			}
			if got := len(img.Info().Warnings) > 0; got != tc.warning {
				t.Errorf("warnings %q", img.Info().Warnings)
			}
		})
	}
}

// TestOpticalSessions acquires an optical disc image, whose last segment
// has a session section.
func TestOpticalSessions(t *testing.T) {
	needTool(t, "ewfacquire")
	raw := rawFile(t, "cd.raw", mixedRaw(2048*600, 4))
	img, err := Open(acquire(t, raw, "-m", "optical", "-P", "2048", "-c", "deflate:fast"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	in := img.Info()
	if in.MediaType != MediaOptical || in.BytesPerSector != 2048 || in.SectorCount != 600 {
		t.Errorf("info %+v", in)
	}
	if len(in.Sessions) != 1 || in.Sessions[0].FirstSector != 16 || in.Sessions[0].Audio {
		t.Errorf("sessions %+v, want one data session stored at sector 16", in.Sessions)
	}
}
