package ewf

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/adler32"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// Fixtures are acquired by the real ewfacquire (package ewf-tools) at test
// time, once per configuration and test binary run.

var (
	fixtureDir  string
	fixtureMu   sync.Mutex
	fixtureMade = map[string]string{} // key → first segment path
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ewf-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fixtureDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func needTool(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s not installed (apt-get install ewf-tools)", name)
	}
}

// mixedRaw is a disk-like raw image: random runs, zero stretches, text,
// and a tail that ends mid-chunk for every chunk size used.
func mixedRaw(size int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, size)
	text := []byte("the quick brown fox jumps over the lazy ewf chunk\n")
	for off := 0; off < size; {
		n := min(size-off, 4096+r.IntN(300000))
		switch r.IntN(4) {
		case 0, 1:
			var w [8]byte
			for i := off; i < off+n; i += 8 {
				binary.LittleEndian.PutUint64(w[:], r.Uint64())
				copy(b[i:off+n], w[:])
			}
		case 2: // zeros
		case 3:
			for i := off; i < off+n; i += len(text) {
				copy(b[i:off+n], text)
			}
		}
		off += n
	}
	return b
}

// rawFile writes raw under the fixture directory, once per name.
func rawFile(t testing.TB, name string, raw []byte) string {
	t.Helper()
	p := filepath.Join(fixtureDir, name)
	fixtureMu.Lock()
	defer fixtureMu.Unlock()
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if err := os.WriteFile(p, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// acquire runs ewfacquire on rawPath with args into a directory of its
// own and returns the first segment's path.
func acquire(t testing.TB, rawPath string, args ...string) string {
	t.Helper()
	needTool(t, "ewfacquire")
	key := rawPath + "\x00" + strings.Join(args, "\x00")
	fixtureMu.Lock()
	defer fixtureMu.Unlock()
	if p, ok := fixtureMade[key]; ok {
		return p
	}
	dir, err := os.MkdirTemp(fixtureDir, "acq-")
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "img")
	full := append([]string{"-u", "-q", "-t", target}, args...)
	full = append(full, rawPath)
	cmd := exec.Command("ewfacquire", full...)
	cmd.Env = append(os.Environ(), "LANG=C.UTF-8")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ewfacquire %s: %v\n%s", strings.Join(full, " "), err, out)
	}
	matches, _ := filepath.Glob(target + ".[EeSs]01")
	if len(matches) != 1 {
		t.Fatalf("ewfacquire wrote no first segment beside %s", target)
	}
	fixtureMade[key] = matches[0]
	return matches[0]
}

// segments lists the segment files beside first, in order.
func segmentFiles(t testing.TB, first string) []string {
	t.Helper()
	var out []string
	for n := 1; ; n++ {
		name, err := segmentName(filepath.Base(first), n)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(filepath.Dir(first), name)
		if _, err := os.Stat(p); err != nil {
			return out
		}
		out = append(out, p)
	}
}

// copySet copies an image's segment files into a new directory, so a test
// can damage them.
func copySet(t testing.TB, first string) string {
	t.Helper()
	dir := t.TempDir()
	for _, p := range segmentFiles(t, first) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(p)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, filepath.Base(first))
}

// testSection is one section of a segment file as the tests see it.
type testSection struct {
	typ        string
	off, next  int64
	size       int64
	dataOffset int64
}

func listSections(t testing.TB, data []byte) []testSection {
	t.Helper()
	var out []testSection
	for off := int64(fileHeaderSize); off+sectionDescSize <= int64(len(data)); {
		d := data[off:]
		typ := string(bytes.TrimRight(d[:sdTypeLen], "\x00"))
		next := int64(binary.LittleEndian.Uint64(d[sdNext:]))
		out = append(out, testSection{typ, off, next, int64(binary.LittleEndian.Uint64(d[sdSize:])), off + sectionDescSize})
		if typ == secDone || typ == secNext || next <= off {
			break
		}
		off = next
	}
	return out
}

func findSection(t testing.TB, data []byte, typ string) testSection {
	t.Helper()
	for _, s := range listSections(t, data) {
		if s.typ == typ {
			return s
		}
	}
	t.Fatalf("no %s section", typ)
	return testSection{}
}

// fixDescriptor recomputes a section descriptor's checksum after a change.
func fixDescriptor(data []byte, off int64) {
	d := data[off:]
	binary.LittleEndian.PutUint32(d[sdChecksum:], adler32.Checksum(d[:sdChecksum]))
}

// tableEntries returns a table section's entries (a view into data).
func tableEntriesOf(data []byte, s testSection) []byte {
	n := int64(binary.LittleEndian.Uint32(data[s.dataOffset:]))
	at := s.dataOffset + tableHeaderSize
	return data[at : at+n*tableEntrySize]
}

// setEntry rewrites entry i of the table and table2 of a segment and
// fixes their checksums, as a consistent writer would have.
func setEntry(t testing.TB, data []byte, i int, v uint32) {
	t.Helper()
	for _, s := range listSections(t, data) {
		if s.typ != secTable && s.typ != secTable2 {
			continue
		}
		ents := tableEntriesOf(data, s)
		binary.LittleEndian.PutUint32(ents[i*tableEntrySize:], v)
		end := s.dataOffset + tableHeaderSize + int64(len(ents))
		binary.LittleEndian.PutUint32(data[end:], adler32.Checksum(ents))
	}
}

// chunkRange returns where entry i of the first table puts its chunk.
func chunkRange(t testing.TB, data []byte, i int) (start, end int64, compressed bool) {
	t.Helper()
	s := findSection(t, data, secTable)
	ents := tableEntriesOf(data, s)
	base := int64(binary.LittleEndian.Uint64(data[s.dataOffset+thBaseOffset:]))
	e := binary.LittleEndian.Uint32(ents[i*4:])
	start = base + int64(e&entryOffsetMask)
	if (i+1)*4 < len(ents) {
		end = base + int64(binary.LittleEndian.Uint32(ents[(i+1)*4:])&entryOffsetMask)
	} else {
		end = s.off // the sectors section ends where the table starts
	}
	return start, end, e&entryCompressed != 0
}

// decompressZstd writes the zstd file src to dst (once), leaving holes
// for zero blocks.
func decompressZstd(src, dst string) error {
	fixtureMu.Lock()
	defer fixtureMu.Unlock()
	if _, err := os.Stat(dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	d, err := zstd.NewReader(in)
	if err != nil {
		return err
	}
	defer d.Close()
	tmp := dst + ".part"
	out, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer out.Close()
	buf := make([]byte, 1<<20)
	var off int64
	for {
		n, err := io.ReadFull(d, buf)
		if n > 0 {
			if !allZero(buf[:n]) {
				if _, werr := out.WriteAt(buf[:n], off); werr != nil {
					return werr
				}
			}
			off += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if err := out.Truncate(off); err != nil {
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}
