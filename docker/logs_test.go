package docker

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/ctrlift/ctrlift/image/ext4"
	"github.com/ctrlift/ctrlift/internal/testutil"
)

// dockerNodeFS opens the Docker node fixture's partition (dockerd 20.10
// wrote it: testdata/images/docker/make-docker-node.sh) and its state.
func dockerNodeFS(t testing.TB) (fs.FS, *State) {
	t.Helper()
	raw := testutil.Unzstd(t, filepath.Join(testutil.RepoRoot(t), "testdata", "images", "docker", "docker-node.raw.zst"))
	f, err := os.Open(raw)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	// Partition 1 starts at sector 2048 (expected/gpt.txt).
	sr := io.NewSectionReader(f, 2048*512, 160<<20)
	fsys, err := ext4.NewReader(sr, sr.Size())
	if err != nil {
		t.Fatal(err)
	}
	st, err := Load(fsys, "var/lib/docker")
	if err != nil {
		t.Fatal(err)
	}
	return fsys, st
}

// logBytes reads each log file of the container named name, decompressed.
func logBytes(t testing.TB, fsys fs.FS, st *State, name string) ([]LogFile, [][]byte) {
	t.Helper()
	for i := range st.Containers {
		c := &st.Containers[i]
		if c.Name != name {
			continue
		}
		files, err := LogFiles(fsys, st.Root, c)
		if err != nil {
			t.Fatal(err)
		}
		var out [][]byte
		for _, lf := range files {
			b, err := fs.ReadFile(fsys, lf.Path)
			if err != nil {
				t.Fatal(err)
			}
			if lf.Gzip {
				zr, err := gzip.NewReader(bytes.NewReader(b))
				if err != nil {
					t.Fatal(err)
				}
				if b, err = io.ReadAll(zr); err != nil {
					t.Fatal(err)
				}
			}
			out = append(out, b)
		}
		return files, out
	}
	t.Fatalf("no container %s in the fixture", name)
	return nil, nil
}

func readAll(read func(io.Reader, func(*LogRecord) error) error, b []byte) ([]*LogRecord, error) {
	var recs []*LogRecord
	err := read(bytes.NewReader(b), func(r *LogRecord) error {
		recs = append(recs, r)
		return nil
	})
	return recs, err
}

// The files dockerd wrote: their order, and every record read.
func TestLogFilesFixture(t *testing.T) {
	fsys, st := dockerNodeFS(t)
	for _, tt := range []struct {
		name, format string
		read         func(io.Reader, func(*LogRecord) error) error
		rotated      []int
	}{
		{"web", LogJSONFile, ReadJSONLog, []int{2, 1, 0}},
		{"worker", LogLocal, ReadLocalLog, []int{2, 1, 0}},
		{"done", LogJSONFile, ReadJSONLog, []int{0}},
	} {
		files, data := logBytes(t, fsys, st, tt.name)
		if len(files) != len(tt.rotated) {
			t.Fatalf("%s: files %+v", tt.name, files)
		}
		for i, f := range files {
			if f.Rotated != tt.rotated[i] || f.Format != tt.format || f.Gzip != (f.Rotated > 0) {
				t.Errorf("%s: file %d: %+v", tt.name, i, f)
			}
			recs, err := readAll(tt.read, data[i])
			if err != nil || len(recs) == 0 {
				t.Fatalf("%s: %s: %d records, %v", f.Path, tt.name, len(recs), err)
			}
			for _, r := range recs {
				if r.Malformed || r.Time.IsZero() || (r.Stream != "stdout" && r.Stream != "stderr") {
					t.Errorf("%s: %+v", f.Path, r)
				}
			}
		}
	}
}

// A local log cut anywhere: the frames before the cut are read, the cut
// is a LogFormatError at the start of the frame it cuts; a frame's length
// changed is refused at that frame.
func TestLocalLogDamaged(t *testing.T) {
	fsys, st := dockerNodeFS(t)
	_, data := logBytes(t, fsys, st, "worker")
	b := data[len(data)-1]
	whole, err := readAll(ReadLocalLog, b)
	if err != nil {
		t.Fatal(err)
	}
	starts := map[int64]int{}
	for i, r := range whole {
		starts[r.Offset] = i
	}
	for cut := 0; cut < len(b); cut++ {
		recs, err := readAll(ReadLocalLog, b[:cut])
		i, boundary := starts[int64(cut)]
		var fe *LogFormatError
		switch {
		case boundary && (err != nil || len(recs) != i):
			t.Fatalf("cut at frame %d (offset %d): %d records, %v", i, cut, len(recs), err)
		case !boundary && !errors.As(err, &fe):
			t.Fatalf("cut at %d: %v", cut, err)
		case !boundary && fe.Offset != whole[len(recs)].Offset:
			t.Fatalf("cut at %d: error at offset %d, the frame starts at %d", cut, fe.Offset, whole[len(recs)].Offset)
		}
	}
	second := whole[1].Offset
	for _, mangle := range []func([]byte){
		func(c []byte) { c[second] = 0xff },    // length over the limit
		func(c []byte) { c[second+3] ^= 0x01 }, // trailing length differs
	} {
		c := bytes.Clone(b)
		mangle(c)
		recs, err := readAll(ReadLocalLog, c)
		var fe *LogFormatError
		if !errors.As(err, &fe) || fe.Offset != second || len(recs) != 1 {
			t.Errorf("mangled second frame: %d records, %v", len(recs), err)
		}
	}
}

// A json-file log cut mid-line: the last line is malformed, given raw.
func TestJSONLogCut(t *testing.T) {
	fsys, st := dockerNodeFS(t)
	_, data := logBytes(t, fsys, st, "web")
	b := data[len(data)-1]
	recs, err := readAll(ReadJSONLog, b[:len(b)-10])
	if err != nil || len(recs) == 0 || !recs[len(recs)-1].Malformed {
		t.Fatalf("%d records, %v", len(recs), err)
	}
	for _, r := range recs[:len(recs)-1] {
		if r.Malformed {
			t.Errorf("%+v", r)
		}
	}
}

// A json-file log whose size runs on into a hole (a forged size): read up
// to the record limit, then refused at the line that does not end.
func TestJSONLogHole(t *testing.T) {
	fsys, st := dockerNodeFS(t)
	_, data := logBytes(t, fsys, st, "web")
	b := append(bytes.Clone(data[len(data)-1]), make([]byte, 3*MaxLogRecord)...)
	recs, err := readAll(ReadJSONLog, b)
	var fe *LogFormatError
	if !errors.As(err, &fe) || fe.Offset != int64(len(data[len(data)-1])) || len(recs) == 0 || !recs[len(recs)-1].Malformed || len(recs[len(recs)-1].Line) != MaxLogRecord {
		t.Fatalf("%d records, %v", len(recs), err)
	}
}

func fuzzSeeds(f *testing.F, name string) {
	fsys, st := dockerNodeFS(f)
	_, data := logBytes(f, fsys, st, name)
	for _, b := range data {
		f.Add(b)
	}
}

// FuzzReadLocalLog: never a panic or an allocation past the frame limit;
// every record accepted has a stream.
func FuzzReadLocalLog(f *testing.F) {
	fuzzSeeds(f, "worker")
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = ReadLocalLog(bytes.NewReader(data), func(r *LogRecord) error {
			if r.Stream != "stdout" && r.Stream != "stderr" {
				t.Fatalf("stream %q", r.Stream)
			}
			return nil
		})
	})
}

// FuzzReadJSONLog: never a panic; every record is a line of the input.
func FuzzReadJSONLog(f *testing.F) {
	fuzzSeeds(f, "web")
	f.Fuzz(func(t *testing.T, data []byte) {
		n := 0
		_ = ReadJSONLog(bytes.NewReader(data), func(r *LogRecord) error {
			n++
			if !r.Malformed && r.Stream != "stdout" && r.Stream != "stderr" {
				t.Fatalf("stream %q", r.Stream)
			}
			return nil
		})
		if n > bytes.Count(data, []byte("\n"))+1 {
			t.Fatalf("%d records from %d lines", n, bytes.Count(data, []byte("\n"))+1)
		}
	})
}
