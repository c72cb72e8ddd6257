package node

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ctrlift/ctrlift/containerd"
	"github.com/ctrlift/ctrlift/image/tarfs"
)

// logTree writes a tar of a node tree holding files (name → content) and
// opens it with tarfs, the reader of tar inputs; the Node it returns has
// that tree as the filesystem holding a runtime state of containers.
func logTree(t *testing.T, root string, files map[string]string, cs []containerd.Container) *Node {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for name := range files {
		for d := filepath.Dir(name); d != "." && !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
		}
	}
	for d := range dirs {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755}); err != nil {
			t.Fatal(err)
		}
	}
	for name, data := range files {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o640, Size: int64(len(data))}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(data))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "tree.tar")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	fsys, err := tarfs.OpenFile(p, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fsys.Close() })
	src := &source{tree: fsys, files: fsys.IOFS(), tar: fsys}
	src.in = &input{path: p, kind: KindTreeArchive, src: src}
	return &Node{runtime: src, tree: src, state: &containerd.State{Root: root, Containers: cs}, seen: map[string]bool{}}
}

func gz(t *testing.T, s string) string {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.String()
}

func webContainers(dir string) []containerd.Container {
	mk := func(id string, attempt string, created int64) containerd.Container {
		return containerd.Container{Namespace: "k8s.io", ID: id, Kind: "container", PodNamespace: "blog", PodName: "web-1", PodUID: "uid-1",
			ContainerName: "web", LogPath: dir + "/" + attempt + ".log", CreatedAt: time.Unix(created, 0)}
	}
	return []containerd.Container{mk("c0aaaa", "0", 100), mk("c1bbbb", "1", 200)}
}

// TestLogs: every restart's files in order (gzip and plain rotations
// before the current file), partial records joined with their final one
// per stream, across a rotation, times with 0 to 9 fractional digits and
// Z or an offset, malformed lines kept, filters.
func TestLogs(t *testing.T) {
	const dir = "var/log/pods/blog_web-1_uid-1/web"
	files := map[string]string{
		dir + "/0.log.20261127-090000.gz": gz(t, "2026-11-27T09:00:00Z stdout F first\n"+
			"2026-11-27T09:00:00.5Z stdout P hel\n"+
			"2026-11-27T09:00:01.123+00:00 stderr F err one\n"),
		dir + "/0.log.20261127-090100": "2026-11-27T09:00:01.2Z stdout P lo, \n" +
			"2026-11-27T10:00:02.123456789+01:00 stderr P spl\n",
		dir + "/0.log": "2026-11-27T09:00:03.000000001Z stdout F world\n" +
			"2026-11-27T09:00:03.1Z stderr F:x it\n" +
			"not a CRI record\n" +
			"2026-11-27T09:00:04Z stdout F \n" +
			"2026-11-27T09:00:05Z stdout F no newline at the end",
		dir + "/1.log": "2026-11-27T09:01:00.25Z stderr F restarted\n" +
			"2026-11-27T09:01:01Z stdout P cut short\n",
		dir + "/notes.txt": "not a log\n",
	}
	n := logTree(t, "var/lib/containerd", files, webContainers("/var/log/pods/blog_web-1_uid-1/web"))
	type line struct {
		time, stream, text string
		restart            int
		id                 string
		partial, malformed bool
	}
	read := func(ref string, opt LogOptions) []line {
		var out []line
		set, err := n.Logs(ref, opt, func(l *LogLine) error {
			ts := ""
			if !l.Time.IsZero() {
				ts = l.Time.Format(time.RFC3339Nano)
			}
			out = append(out, line{ts, l.Stream, l.Text, l.Restart, l.ContainerID, l.Partial, l.Malformed})
			return nil
		})
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		if len(set.Files) != 4 || set.Files[0].Rotated != "20261127-090000" || !set.Files[0].Gzip || set.Files[2].Rotated != "" || set.Files[3].Restart != 1 {
			t.Errorf("files: %+v", set.Files)
		}
		return out
	}
	want := []line{
		{"2026-11-27T09:00:00Z", "stdout", "first", 0, "c0aaaa", false, false},
		{"2026-11-27T09:00:01.123Z", "stderr", "err one", 0, "c0aaaa", false, false},
		{"2026-11-27T09:00:00.5Z", "stdout", "hello, world", 0, "c0aaaa", false, false},
		{"2026-11-27T09:00:02.123456789Z", "stderr", "split", 0, "c0aaaa", false, false},
		{"", "", "not a CRI record", 0, "c0aaaa", false, true},
		{"2026-11-27T09:00:04Z", "stdout", "", 0, "c0aaaa", false, false},
		{"2026-11-27T09:00:05Z", "stdout", "no newline at the end", 0, "c0aaaa", false, false},
		{"2026-11-27T09:01:00.25Z", "stderr", "restarted", 1, "c1bbbb", false, false},
		{"2026-11-27T09:01:01Z", "stdout", "cut short", 1, "c1bbbb", true, false},
	}
	// The two containers are restarts of one: POD/NAME names both, and so
	// does either id.
	for _, ref := range []string{"web-1/web", "c1bbbb", "blog/web-1/web"} {
		got := read(ref, LogOptions{})
		if len(got) != len(want) {
			t.Fatalf("%s: %d lines, want %d:\n%+v", ref, len(got), len(want), got)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%s: line %d: %+v, want %+v", ref, i, got[i], want[i])
			}
		}
	}
	if w := strings.Join(n.Warnings(), "\n"); !strings.Contains(w, `"notes.txt" is not a CRI log file name`) || !strings.Contains(w, "1 lines are not CRI log records") {
		t.Errorf("warnings: %s", w)
	}
	got := read("web-1/web", LogOptions{Stream: "stderr", Since: time.Date(2026, 11, 27, 9, 0, 2, 0, time.UTC), Until: time.Date(2026, 11, 27, 9, 1, 0, 250000000, time.UTC)})
	if len(got) != 1 || got[0].text != "split" {
		t.Errorf("stderr since 09:00:02 until 09:01:00.25: %+v", got)
	}

	// Timeline reads a container's own restart only.
	c := n.state.Containers[0]
	_, own, err := n.containerLogFiles(&c)
	if err != nil || len(own) != 3 || own[2].Path != dir+"/0.log" {
		t.Errorf("restart 0's files: %+v, %v", own, err)
	}
}

// TestLogsUnderVar: a filesystem holding lib/containerd was mounted at
// /var, so the node's /var/log/pods is log/pods on it.
func TestLogsUnderVar(t *testing.T) {
	files := map[string]string{"log/pods/blog_web-1_uid-1/web/0.log": "2026-11-27T09:00:00Z stdout F on /var\n"}
	cs := webContainers("/var/log/pods/blog_web-1_uid-1/web")[:1]
	n := logTree(t, "lib/containerd", files, cs)
	var got []string
	if _, err := n.Logs("c0aaaa", LogOptions{}, func(l *LogLine) error { got = append(got, l.Text); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != "on /var" {
		t.Errorf("got %q", got)
	}
	// Without a log path, kubelet's layout is assumed.
	cs[0].LogPath = ""
	n = logTree(t, "lib/containerd", files, cs)
	if _, err := n.Logs("c0aaaa", LogOptions{}, func(*LogLine) error { return nil }); err != nil {
		t.Errorf("no log path: %v", err)
	}
	// Not there at all: the error names where it looked.
	n = logTree(t, "var/lib/containerd", map[string]string{"var/log/pods/blog_web-1_uid-2/web/0.log": ""}, webContainers("/var/log/pods/blog_web-1_uid-1/web")[:1])
	if _, err := n.Logs("c0aaaa", LogOptions{}, func(*LogLine) error { return nil }); err == nil || !strings.Contains(err.Error(), "var/log/pods/blog_web-1_uid-1/web") {
		t.Errorf("missing directory: %v", err)
	}
}

// TestLogsEndlessLine: a line longer than the limit without an end (a
// hole read as zeros, a forged size) stops the reading of its file: what
// came before is given, the cut line once, nothing after it.
func TestLogsEndlessLine(t *testing.T) {
	const dir = "var/log/pods/blog_web-1_uid-1/web"
	files := map[string]string{dir + "/0.log": "2026-11-27T09:00:00Z stdout F before\n" +
		strings.Repeat("\x00", 3*maxLogLine) + "\n2026-11-27T09:00:01Z stdout F after\n"}
	n := logTree(t, "var/lib/containerd", files, webContainers("/" + dir)[:1])
	var got []string
	if _, err := n.Logs("c0aaaa", LogOptions{}, func(l *LogLine) error { got = append(got, l.Text); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != "before" || len(got[1]) != maxLogLine {
		t.Errorf("got %d lines: %.40q", len(got), got)
	}
	if w := strings.Join(n.Warnings(), "\n"); !strings.Contains(w, "line 2 has more than 1048576 bytes without a line end") {
		t.Errorf("warnings: %s", w)
	}
}

func TestParseCRILine(t *testing.T) {
	for in, ok := range map[string]bool{
		"2026-11-27T09:00:00Z stdout F x":              true,
		"2026-11-27T09:00:00.123456789-07:00 stderr P": true,
		"2026-11-27T09:00:00Z stdin F x":               false,
		"2026-11-27T09:00:00Z stdout X x":              false,
		"2026-11-27T09:00:00Z stdout Fx x":             false,
		"2026-11-27 09:00:00Z stdout F x":              false,
		"":                                             false,
	} {
		if _, _, _, _, got := parseCRILine([]byte(in)); got != ok {
			t.Errorf("%q: %v, want %v", in, got, ok)
		}
	}
}
